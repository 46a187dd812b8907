/* The descriptor budget against the real binary, started under a given RLIMIT_NOFILE: the
 * soft limit is raised to what max_connections needs, and a hard limit too low for it
 * lowers max_connections with a warning, so extra clients wait in the backlog instead of
 * failing for want of descriptors. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "harness_proc.h"

TestSuite(fdbudget, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

static struct harness_cert crt;

/* Makes the proxy start under soft/hard RLIMIT_NOFILE: a wrapper sets them, then execs it. */
static void limit_binary(long soft, long hard)
{
	char real[4096];
	snprintf(real, sizeof(real), "%s", harness_tlsplice_bin());
	const char *sh = harness_write_file(
		"limited.sh", "#!/bin/sh\nulimit -Sn %ld && ulimit -Hn %ld && exec '%s' \"$@\"\n",
		soft < hard ? soft : hard, hard, real);
	cr_assert(sh);
	cr_assert_eq(chmod(sh, 0755), 0);
	cr_assert_eq(setenv("TLSPLICE_BIN", sh, 1), 0);
}

static struct proxy *start(struct backend *b, const char *global, int *port)
{
	char be[256];
	*port = harness_free_port();
	snprintf(be, sizeof(be), "[backend app]\nserver = %s\ncheck = none\n", backend_addr(b));
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	const char *ini = harness_config_web("b.ini", *port, &crt, global, NULL, be);
	cr_assert(ini);
	struct proxy *p = proxy_start(ini, *port);
	cr_assert(p, "proxy did not start");
	return p;
}

/* The effective max_connections from the start-up warning, -1 if there is none; the whole
 * warning line goes to line. */
static long effective_max(struct proxy *p, char *line, size_t cap)
{
	static const char key[] = "running with max_connections = ";
	char *err = harness_read_file(proxy_stderr_path(p), NULL);
	long v = -1;
	char *at = err ? strstr(err, key) : NULL;
	if (at) {
		v = strtol(at + sizeof(key) - 1, NULL, 10);
		char *b = at, *e = strchr(at, '\n');
		while (b > err && b[-1] != '\n')
			b--;
		snprintf(line, cap, "%.*s", (int)((e ? e : at + strlen(at)) - b), b);
	}
	free(err);
	return v;
}

Test(fdbudget, low_hard_limit_lowers_max_connections_and_pauses)
{
	enum { EXTRA = 20 };
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port;
	char warn[1024] = "";
	limit_binary(256, 256);
	struct proxy *p = start(b, "workers = 1\n", &port);
	long soft, hard, eff = effective_max(p, warn, sizeof(warn));
	cr_assert_eq(proc_nofile(proxy_pid(p), &soft, &hard), 0);
	cr_assert_eq(hard, 256);
	cr_assert(eff > 0 && eff < 10000, "no warning with the effective max_connections");
	cr_assert(strstr(warn, "max_connections = 10000") && strstr(warn, " 256"),
		  "the warning lacks the configured value or the limit: %s", warn);
	cr_log_info("hard limit 256: %s", warn);

	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc **held = calloc((size_t)eff + EXTRA, sizeof(*held));
	cr_assert(held);
	for (long i = 0; i < eff; i++) {
		held[i] = tlsc_connect("127.0.0.1", port, &o);
		cr_assert(held[i], "client %ld of %ld failed", i, eff);
	}
	for (long i = eff; i < eff + EXTRA; i++) {
		held[i] = tlsc_open("127.0.0.1", port, &o);
		cr_assert(held[i], "TCP connect %ld failed (the backlog should take it)", i);
	}
	for (long i = eff; i < eff + EXTRA; i++)
		cr_assert_eq(tlsc_handshake(held[i], i == eff ? 500 : 0), 0,
			     "client %ld served beyond the %ld that fit (%s)", i, eff,
			     tlsc_error(held[i]));
	for (long i = 0; i < eff; i++)
		tlsc_close(held[i]);
	char buf[8];
	for (long i = eff; i < eff + EXTRA; i++) {
		cr_assert_eq(tlsc_handshake(held[i], HARNESS_TIMEOUT_MS), 1, "client %ld: %s", i,
			     tlsc_error(held[i]));
		cr_assert_eq(tlsc_write_all(held[i], "ping", 4, HARNESS_TIMEOUT_MS), 0);
		cr_assert_eq(tlsc_read(held[i], buf, sizeof(buf), HARNESS_TIMEOUT_MS), 4,
			     "client %ld", i);
		tlsc_close(held[i]);
	}
	free(held);
	int n = (int)eff + EXTRA;
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), n, HARNESS_TIMEOUT_MS), n);
	cr_assert_eq(alog_count(proxy_access_log(p), "close", "no_server"), 0);
	cr_assert_eq(alog_count(proxy_access_log(p), "close", "error"), 0);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

/* What the budget plans per connection: client and backend, and where the kernel has kTLS,
 * a pipe (two fds) for each direction that splices. */
static long fds_per_conn(void)
{
	return harness_kernel_ktls() ? 6 : 2;
}

Test(fdbudget, soft_limit_raised_to_what_is_needed)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port;
	char warn[1024];
	limit_binary(1024, 20000);
	struct proxy *p = start(b, "workers = 1\nmax_connections = 1000\n", &port);
	long soft, hard;
	cr_assert_eq(proc_nofile(proxy_pid(p), &soft, &hard), 0);
	cr_log_info("max_connections 1000 under 1024/20000: soft limit now %ld", soft);
	cr_assert_eq(hard, 20000);
	long per = fds_per_conn();
	cr_assert(soft >= 1000 * per && soft <= 1000 * per + 200,
		  "soft limit %ld for 1000 connections of %ld fds", soft, per);
	cr_assert_eq(effective_max(p, warn, sizeof(warn)), -1, "unexpected warning: %s", warn);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

Test(fdbudget, default_under_hard_20000)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port;
	char warn[1024] = "";
	limit_binary(1024, 20000);
	struct proxy *p = start(b, "workers = 1\n", &port);
	long soft, hard, eff = effective_max(p, warn, sizeof(warn));
	cr_assert_eq(proc_nofile(proxy_pid(p), &soft, &hard), 0);
	cr_log_info("default under 1024/20000: soft %ld; %s", soft, warn);
	cr_assert_eq(soft, 20000, "the soft limit was not raised to the hard one");
	long per = fds_per_conn();
	cr_assert(eff > (20000 - 200) / per && eff < 20000 / per,
		  "effective max_connections %ld with %ld fds each", eff, per);
	cr_assert(strstr(warn, "max_connections = 10000") && strstr(warn, "20000"), "%s", warn);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}
