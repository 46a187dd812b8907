/* The access log across reloads: a reload that turns it off stops it, and one that turns it
 * on again writes to the new target. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "harness_proc.h"

TestSuite(logs, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

static struct harness_cert crt;

/* Writes l.ini: one worker, access_log = target, one echo backend. */
static const char *write_config(int port, struct backend *b, const char *target)
{
	char global[4200], be[256];
	snprintf(global, sizeof(global), "workers = 1\naccess_log = %s\n", target);
	snprintf(be, sizeof(be), "[backend app]\nserver = %s\ncheck = none\n", backend_addr(b));
	const char *ini = harness_config_web("l.ini", port, &crt, global, NULL, be);
	cr_assert(ini);
	return ini;
}

/* One echo round trip, then the client closes; returns once the proxy holds no socket but
 * its listeners again (nsock), i.e. the worker has torn the connection down and logged it.
 * The backend seeing its connection closed is not enough: it closes before the proxy reads
 * that close. */
static void echo_and_close(struct proxy *p, int nsock, int port, struct backend *b)
{
	struct tlsc_opts o = { .sni = "demo.test" };
	char buf[8];
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	cr_assert(c, "TLS connect failed");
	cr_assert_eq(tlsc_write_all(c, "ping", 4, HARNESS_TIMEOUT_MS), 0);
	cr_assert_eq(tlsc_read(c, buf, sizeof(buf), HARNESS_TIMEOUT_MS), 4);
	tlsc_close(c);
	cr_assert(backend_wait_idle(b, HARNESS_TIMEOUT_MS), "backend connection still open");
	int64_t end = harness_now_ms() + HARNESS_TIMEOUT_MS;
	while (proc_count_sockets(proxy_pid(p)) > nsock && harness_now_ms() < end)
		usleep(5000);
	cr_assert_eq(proc_count_sockets(proxy_pid(p)), nsock,
		     "the proxy still holds the connection");
}

/* Sends SIGHUP and waits until stderr reports the n-th "configuration reloaded". */
static void reload(struct proxy *p, int n)
{
	cr_assert_eq(proxy_signal(p, SIGHUP), 0);
	int64_t end = harness_now_ms() + HARNESS_TIMEOUT_MS;
	int seen = 0;
	while (seen < n && harness_now_ms() < end) {
		char *err = harness_read_file(proxy_stderr_path(p), NULL);
		seen = 0;
		for (const char *s = err; s && (s = strstr(s, "configuration reloaded")); s++)
			seen++;
		free(err);
		if (seen < n)
			usleep(20000);
	}
	cr_assert_eq(seen, n, "reload %d not reported", n);
}

Test(logs, reload_to_off_stops_the_access_log)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	const char *log1 = harness_path("access1.log");
	char log2[4096];
	snprintf(log2, sizeof(log2), "%s", harness_path("access2.log"));
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	struct proxy *p = proxy_start(write_config(port, b, log1), port);
	cr_assert(p);
	int nsock = proc_count_sockets(proxy_pid(p)); /* the listener */
	echo_and_close(p, nsock, port, b);
	cr_assert_eq(alog_wait_lines(log1, 1, HARNESS_TIMEOUT_MS), 1);

	write_config(port, b, "off");
	reload(p, 1);
	echo_and_close(p, nsock, port, b);

	/* on again, to another file */
	write_config(port, b, log2);
	reload(p, 2);
	echo_and_close(p, nsock, port, b);
	cr_assert_eq(alog_wait_lines(log2, 1, HARNESS_TIMEOUT_MS), 1,
		     "no line after logging resumed");
	cr_assert_eq(alog_wait_lines(log1, 2, 0), 1,
		     "a connection was logged while access_log = off");
	cr_assert_eq(alog_wait_lines(log2, 2, 0), 1, "the new file has more than its one line");
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}
