/* The access log across reloads: a reload that turns it off stops it, and one that turns it
 * on again writes to the new target. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* A connection that needed a retry says so: attempts, and which servers it tried. */
Test(logs, a_retried_connection_logs_attempts_and_servers_tried)
{
	struct backend *good = backend_start(BACKEND_ECHO, 0, NULL, 0);
	struct backend *dead = backend_start(BACKEND_ECHO, 0, NULL, 0);
	cr_assert(good && dead);
	char dead_addr[64], be[256], want[256];
	snprintf(dead_addr, sizeof(dead_addr), "%s", backend_addr(dead));
	backend_stop(dead); /* its port now refuses */
	int port = harness_free_port();
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	/* check = none and the default check_fall = 3: the dead server stays in the rotation.
	 * Weights 1 and 2 give the order good, dead, good: the first connection goes straight
	 * to good, the second tries dead first and is retried on good */
	snprintf(be, sizeof(be), "[backend app]\nserver = %s\nserver = %s weight=2\ncheck = none\n",
		 dead_addr, backend_addr(good));
	const char *ini = harness_config_web("r.ini", port, &crt, "workers = 1\n", NULL, be);
	struct proxy *p = proxy_start(ini, port);
	cr_assert(p);
	int nsock = proc_count_sockets(proxy_pid(p));
	echo_and_close(p, nsock, port, good);
	echo_and_close(p, nsock, port, good);
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 2, HARNESS_TIMEOUT_MS), 2);
	int retried = 0, direct = 0;
	for (int i = 0; i < 2; i++) {
		char *line = alog_line(proxy_access_log(p), i);
		double attempts;
		cr_assert(line && json_num(line, "attempts", &attempts) == 0, "%s", line);
		if (attempts == 2) {
			snprintf(want, sizeof(want), "\"servers_tried\":\"%s,%s\"", dead_addr,
				 backend_addr(good));
			cr_assert(strstr(line, want), "no '%s' in %s", want, line);
			retried++;
		} else {
			cr_assert_eq(attempts, 1, "%s", line);
			cr_assert(strstr(line, "\"servers_tried\":\"\""), "%s", line);
			direct++;
		}
		free(line);
	}
	cr_assert(retried == 1 && direct == 1, "retried %d, direct %d", retried, direct);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

/* Whether the proxy's stderr has a line containing needle. */
static bool stderr_has(struct proxy *p, const char *needle)
{
	char *err = harness_read_file(proxy_stderr_path(p), NULL);
	bool has = err && strstr(err, needle);
	free(err);
	return has;
}

/* What an operator reads first: each listener with its frontend and certificates, where
 * metrics and the access log go, kernel TLS, workers, and the privileges it runs with. */
Test(logs, start_up_says_what_runs_where)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port(), mport = harness_free_port();
	char global[4300], want[4400], day[16];
	const char *alog = harness_path("startup.log");
	cr_assert_eq(harness_cert_create_days("demo", "demo.test", 20, &crt), 0);
	snprintf(global, sizeof(global), "workers = 2\nmetrics = 127.0.0.1:%d\naccess_log = %s\n",
		 mport, alog);
	char be[256];
	snprintf(be, sizeof(be), "[backend app]\nserver = %s\ncheck = none\n", backend_addr(b));
	struct proxy *p = proxy_start(harness_config_web("s.ini", port, &crt, global, NULL, be),
				      port);
	cr_assert(p);
	time_t t = time(NULL) + 20 * 86400;
	struct tm tm;
	strftime(day, sizeof(day), "%Y-%m-%d", gmtime_r(&t, &tm));
	int64_t end = harness_now_ms() + HARNESS_TIMEOUT_MS;
	while (!stderr_has(p, "started:") && harness_now_ms() < end)
		usleep(10000);
	snprintf(want, sizeof(want),
		 "listening on 127.0.0.1:%d: frontend web, backend app, certificates "
		 "/CN=demo.test (expires %s)",
		 port, day);
	cr_assert(stderr_has(p, want), "no '%s'", want);
	snprintf(want, sizeof(want), "metrics: 127.0.0.1:%d; access log: %s", mport, alog);
	cr_assert(stderr_has(p, want), "no '%s'", want);
	cr_assert(stderr_has(p, "kTLS: "), "kTLS availability");
	/* and the cipher suites the kernel takes over, or that it takes none */
	const char *suites = harness_kernel_ktls()
				     ? "; cipher suites offloaded: TLS 1.3 TLS_AES_128_GCM_SHA256"
				     : "; cipher suites offloaded: none; ktls = auto";
	cr_assert(stderr_has(p, suites), "no '%s'", suites);
	cr_assert(stderr_has(p, "started: 2 workers"));
	snprintf(want, sizeof(want), "running as uid %u gid %u", (unsigned)getuid(),
		 (unsigned)getgid());
	cr_assert(stderr_has(p, want), "no '%s'", want);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

/* Counts the proxy's stderr lines containing needle. */
static int stderr_count(struct proxy *p, const char *needle)
{
	char *err = harness_read_file(proxy_stderr_path(p), NULL);
	int n = 0;
	for (const char *s = err; s && (s = strstr(s, needle)); s++)
		n++;
	free(err);
	return n;
}

/* Writes rl.ini: workers as given, backend app with the servers given. */
static const char *write_reload_config(int port, int workers, const char *servers)
{
	char global[64], be[512];
	snprintf(global, sizeof(global), "workers = %d\n", workers);
	snprintf(be, sizeof(be), "[backend app]\n%scheck = none\n", servers);
	return harness_config_web("rl.ini", port, &crt, global, NULL, be);
}

/* A reload says what it changed, and warns about workers only while the file differs from
 * what runs (not from the file before). */
Test(logs, reload_summarises_what_changed)
{
	struct backend *a = backend_start(BACKEND_ECHO, 0, NULL, 0);
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	char one[128], two[256], want[256];
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	snprintf(one, sizeof(one), "server = %s\n", backend_addr(a));
	snprintf(two, sizeof(two), "server = %s weight=3\nserver = %s\n", backend_addr(a),
		 backend_addr(b));
	struct proxy *p = proxy_start(write_reload_config(port, 1, one), port);
	cr_assert(p);

	write_reload_config(port, 1, two);
	reload(p, 1);
	snprintf(want, sizeof(want), "reload: server added: %s (backend app)", backend_addr(b));
	cr_assert_eq(stderr_count(p, want), 1, "no '%s'", want);
	snprintf(want, sizeof(want), "reload: server %s (backend app): weight 1 -> 3",
		 backend_addr(a));
	cr_assert_eq(stderr_count(p, want), 1, "no '%s'", want);
	cr_assert_eq(stderr_count(p, "reload: frontend web: 1 certificate read again"), 1);
	cr_assert_eq(stderr_count(p, "take effect at the next restart"), 0, "workers unchanged");

	write_reload_config(port, 2, two);
	reload(p, 2);
	cr_assert_eq(stderr_count(p, "take effect at the next restart"), 1);
	/* back to what runs: nothing waits for a restart any more */
	write_reload_config(port, 1, one);
	reload(p, 3);
	cr_assert_eq(stderr_count(p, "take effect at the next restart"), 1,
		     "warned although the file matches what runs");
	snprintf(want, sizeof(want), "reload: server removed: %s (backend app)", backend_addr(b));
	cr_assert_eq(stderr_count(p, want), 1, "no '%s'", want);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}
