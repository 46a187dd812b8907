/* Server names through the real binary, with a resolver the test controls: each test runs
 * in a mount namespace of its own (the tests run as root) where a temporary file is bound
 * over /etc/hosts, and /etc/resolv.conf names 127.0.0.1 so that no query leaves the
 * machine. Rewriting the file in place changes the answers; the proxy's log says when the
 * new addresses are in use ("new addresses applied"), so nothing waits on a guess. */
#include <criterion/criterion.h>

#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>

#include "harness.h"

#define SLACK_MS 3000 /* scheduling slack on a shared, possibly sanitized machine */

static char hosts_path[4096];

TestSuite(dns, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

/* Rewrites the bound hosts file in place (the bind mount follows the inode, not the name). */
static void hosts_write(const char *text)
{
	FILE *f = fopen(hosts_path, "w");
	cr_assert(f, "cannot write %s", hosts_path);
	cr_assert(fputs(text, f) >= 0);
	cr_assert_eq(fclose(f), 0);
}

/* A private /etc/hosts (text) and /etc/resolv.conf for this test and what it starts. Before
 * any thread: unshare refuses a process with several. */
static void private_resolver(const char *text)
{
	const char *resolv = harness_write_file("resolv.conf", "nameserver 127.0.0.1\n"
							       "options timeout:1 attempts:1\n");
	const char *hosts = harness_write_file("hosts", "%s", text);

	cr_assert(resolv && hosts);
	snprintf(hosts_path, sizeof(hosts_path), "%s", hosts);
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare: %m (the tests run as root)");
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "mount: %m");
	cr_assert_eq(mount(hosts, "/etc/hosts", NULL, MS_BIND, NULL), 0, "bind hosts: %m");
	cr_assert_eq(mount(resolv, "/etc/resolv.conf", NULL, MS_BIND, NULL), 0, "bind: %m");
}

static int metrics_port;

static const char *write_config(int port, const char *backend_body)
{
	struct harness_cert crt;

	metrics_port = harness_free_port();
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	return harness_write_file("dns.ini",
				  "[global]\nworkers = 2\nmetrics = 127.0.0.1:%d\n"
				  "[frontend web]\nlisten = 127.0.0.1:%d\ncert = %s\nkey = %s\n"
				  "backend = app\n"
				  "[backend app]\ncheck = none\n%s",
				  metrics_port, port, crt.cert, crt.key, backend_body);
}

/* The server's carried-connections counter as the metrics endpoint shows it; -1 if absent. */
static long metric_connections(const char *label)
{
	char *text = harness_http_get(metrics_port, "/metrics", 3000);
	char want[256];
	long v = -1;

	cr_assert(text, "no metrics");
	snprintf(want, sizeof(want),
		 "tlsplice_server_connections_total{backend=\"app\",server=\"%s\"} ", label);
	const char *at = strstr(text, want);
	if (at)
		v = atol(at + strlen(want));
	free(text);
	return v;
}

static int log_count(struct proxy *p, const char *needle)
{
	char *text = harness_read_file(proxy_stderr_path(p), NULL);
	int n = 0;

	for (const char *at = text; at && (at = strstr(at, needle)); at += strlen(needle))
		n++;
	free(text);
	return n;
}

/* Polls the proxy's stderr until needle occurs at least n times; false at the deadline. */
static bool log_wait(struct proxy *p, const char *needle, int n, int timeout_ms)
{
	int64_t end = harness_now_ms() + timeout_ms;

	do {
		if (log_count(p, needle) >= n)
			return true;
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	} while (harness_now_ms() < end);
	return false;
}

/* One connection through the proxy to an echo backend, left open after one round trip. */
static struct tlsc *echo_open(int port, const char *msg)
{
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	char buf[64];
	size_t len = strlen(msg), got = 0;

	cr_assert(c, "connect through the proxy failed");
	cr_assert_eq(tlsc_write_all(c, msg, len, 3000), 0);
	while (got < len) {
		ssize_t n = tlsc_read(c, buf + got, len - got, 3000);
		cr_assert_gt(n, 0, "no echo: %s", tlsc_error(c));
		got += (size_t)n;
	}
	cr_assert_eq(memcmp(buf, msg, len), 0);
	return c;
}

static void echo_once(int port)
{
	tlsc_close(echo_open(port, "ping"));
}

Test(dns, answers_share_by_weight_and_a_removed_one_drains)
{
	private_resolver("127.0.0.2 app.test\n127.0.0.3 app.test\n");
	int bport = harness_free_port(), port = harness_free_port();
	struct backend *b2 = backend_start_on(BACKEND_ECHO, "127.0.0.2", bport, "b2", 0);
	struct backend *b3 = backend_start_on(BACKEND_ECHO, "127.0.0.3", bport, "b3", 0);
	char body[256], label2[128], label3[128];

	cr_assert(b2 && b3, "backends on 127.0.0.2 and 127.0.0.3");
	snprintf(body, sizeof(body), "server = app.test:%d weight=3\nresolve_interval = 200ms\n",
		 bport);
	struct proxy *p = proxy_start(write_config(port, body), port);
	cr_assert(p, "proxy did not start");

	/* both answers are servers of the line's weight: an even split, exactly */
	for (int i = 0; i < 12; i++)
		echo_once(port);
	cr_assert_eq(backend_accepted(b2), 6, "127.0.0.2 took %u of 12", backend_accepted(b2));
	cr_assert_eq(backend_accepted(b3), 6, "127.0.0.3 took %u of 12", backend_accepted(b3));
	snprintf(label2, sizeof(label2), "app.test:%d (127.0.0.2)", bport);
	snprintf(label3, sizeof(label3), "app.test:%d (127.0.0.3)", bport);
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 12, HARNESS_TIMEOUT_MS), 12);
	cr_assert_eq(alog_count(proxy_access_log(p), "server", label2), 6);
	cr_assert_eq(alog_count(proxy_access_log(p), "server", label3), 6);
	cr_assert_eq(metric_connections(label2), 6);
	cr_assert_eq(metric_connections(label3), 6);

	/* a connection stays open on 127.0.0.2 (round-robin's next slot is its) */
	struct tlsc *kept = NULL;
	for (int i = 0; i < 2 && backend_accepted(b2) == 6; i++) {
		tlsc_close(kept);
		kept = echo_open(port, "hold");
	}
	cr_assert_eq(backend_accepted(b2), 7, "no connection landed on 127.0.0.2");
	unsigned b3_before = backend_accepted(b3);

	/* 127.0.0.2 leaves the answers: it drains */
	hosts_write("127.0.0.3 app.test\n");
	cr_assert(log_wait(p, "new addresses applied", 1, 200 + SLACK_MS),
		  "the new answers were not applied");
	cr_assert_eq(log_count(p, "now resolves to 127.0.0.3"), 1);
	for (int i = 0; i < 6; i++)
		echo_once(port);
	cr_assert_eq(backend_accepted(b2), 7, "a new connection went to the removed address");
	cr_assert_eq(backend_accepted(b3), b3_before + 6);
	/* the address that stayed kept its state and counters through the new generation */
	cr_assert_eq(metric_connections(label3), (long)backend_accepted(b3));
	cr_assert_eq(metric_connections(label2), -1, "a removed server is not shown any more");

	/* the open one still works, and its end is logged against its server */
	const char msg[] = "still here";
	char buf[32];
	size_t got = 0;
	cr_assert_eq(tlsc_write_all(kept, msg, sizeof(msg) - 1, 3000), 0);
	while (got < sizeof(msg) - 1) {
		ssize_t n = tlsc_read(kept, buf + got, sizeof(msg) - 1 - got, 3000);
		cr_assert_gt(n, 0, "the drained connection broke: %s", tlsc_error(kept));
		got += (size_t)n;
	}
	cr_assert_eq(memcmp(buf, msg, got), 0);
	tlsc_close(kept);
	int lines = (int)(backend_accepted(b2) + backend_accepted(b3));
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), lines, HARNESS_TIMEOUT_MS), lines);
	cr_assert_eq(alog_count(proxy_access_log(p), "server", label2), 7);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

Test(dns, name_without_address_starts_and_follows_when_it_resolves)
{
	private_resolver("127.0.0.9 other.test\n");
	int bport = harness_free_port(), port = harness_free_port();
	struct backend *b3 = backend_start_on(BACKEND_ECHO, "127.0.0.3", bport, "b3", 0);
	char body[256];

	cr_assert(b3);
	snprintf(body, sizeof(body), "server = app.test:%d\nresolve_interval = 200ms\n", bport);
	struct proxy *p = proxy_start(write_config(port, body), port);
	cr_assert(p, "proxy did not start (resolve_required is off)");
	cr_assert(log_wait(p, "cannot resolve 'app.test:", 1, SLACK_MS));
	hosts_write("127.0.0.3 app.test\n");
	cr_assert(log_wait(p, "new addresses applied", 1, 200 + SLACK_MS));
	echo_once(port);
	cr_assert_eq(backend_accepted(b3), 1);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

Test(dns, check_warns_about_a_name_that_does_not_resolve)
{
	private_resolver("127.0.0.9 other.test\n");
	int port = harness_free_port();
	const char *ini = write_config(port, "server = nothere.test:9\n");
	const char *argv[] = { "-t", "-c", ini, NULL };
	struct run_result r;
	char want[4200];

	harness_run(&r, HARNESS_TIMEOUT_MS, argv);
	cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
	/* the server line is the file's 11th */
	snprintf(want, sizeof(want), "%s:11: [backend app] server: cannot resolve 'nothere.test:9'",
		 ini);
	cr_assert(strstr(r.err, want), "no warning '%s' in: %s", want, r.err);
	cr_assert(strstr(r.out, "configuration OK"));
	run_result_finish(&r);
	harness_pass();
}

Test(dns, resolve_required_makes_it_an_error)
{
	private_resolver("127.0.0.9 other.test\n");
	int port = harness_free_port();
	const char *ini = write_config(port, "server = nothere.test:9\nresolve_required = on\n");
	const char *check[] = { "-t", "-c", ini, NULL };
	const char *start[] = { "-c", ini, NULL };
	struct run_result r;
	char want[4200];

	snprintf(want, sizeof(want), "%s:11: [backend app] server: cannot resolve 'nothere.test:9'",
		 ini);
	harness_run(&r, HARNESS_TIMEOUT_MS, check);
	cr_assert_eq(r.status, 1, "-t exit %d", r.status);
	cr_assert(strstr(r.err, want), "no error '%s' in: %s", want, r.err);
	run_result_finish(&r);
	harness_run(&r, HARNESS_TIMEOUT_MS, start);
	cr_assert_eq(r.status, 1, "start exit %d", r.status);
	cr_assert(strstr(r.err, want), "no error '%s' in: %s", want, r.err);
	cr_assert_not(harness_port_listening(port));
	run_result_finish(&r);
	harness_pass();
}

Test(dns, bad_keys_are_reported_with_file_and_line)
{
	int port = harness_free_port();
	const char *ini = write_config(port, "server = 127.0.0.1:9\nresolve_interval = 10ms\n"
					     "resolve_required = maybe\n");
	const char *argv[] = { "-t", "-c", ini, NULL };
	struct run_result r;
	char want[4200];

	harness_run(&r, HARNESS_TIMEOUT_MS, argv);
	cr_assert_eq(r.status, 1, "exit %d", r.status);
	snprintf(want, sizeof(want),
		 "%s:12: [backend app] resolve_interval: bad duration '10ms' (at least 100ms)",
		 ini);
	cr_assert(strstr(r.err, want), "no '%s' in: %s", want, r.err);
	snprintf(want, sizeof(want), "%s:13: [backend app] resolve_required: bad boolean 'maybe'",
		 ini);
	cr_assert(strstr(r.err, want), "no '%s' in: %s", want, r.err);
	run_result_finish(&r);
	harness_pass();
}

Test(dns, names_are_followed_after_a_reload)
{
	private_resolver("127.0.0.2 app.test\n");
	int bport = harness_free_port(), port = harness_free_port();
	struct backend *b2 = backend_start_on(BACKEND_ECHO, "127.0.0.2", bport, "b2", 0);
	struct backend *b3 = backend_start_on(BACKEND_ECHO, "127.0.0.3", bport, "b3", 0);
	char body[256];

	cr_assert(b2 && b3);
	snprintf(body, sizeof(body), "server = app.test:%d\nresolve_interval = 200ms\n", bport);
	struct proxy *p = proxy_start(write_config(port, body), port);
	cr_assert(p, "proxy did not start");
	echo_once(port);
	cr_assert_eq(backend_accepted(b2), 1);
	cr_assert_eq(proxy_signal(p, SIGHUP), 0);
	cr_assert(log_wait(p, "configuration reloaded", 1, SLACK_MS));
	hosts_write("127.0.0.3 app.test\n");
	cr_assert(log_wait(p, "new addresses applied", 1, 200 + SLACK_MS),
		  "the reloaded file's names are not followed");
	echo_once(port);
	cr_assert_eq(backend_accepted(b3), 1);
	cr_assert_eq(backend_accepted(b2), 1);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

/* A reload does not look names up on the main loop: a line it keeps takes the answers the
 * resolver holds (here the first ones, as the next lookup is an hour away). */
Test(dns, a_reload_keeps_the_answers_of_the_lines_it_keeps)
{
	private_resolver("127.0.0.2 app.test\n");
	int bport = harness_free_port(), port = harness_free_port();
	struct backend *b2 = backend_start_on(BACKEND_ECHO, "127.0.0.2", bport, "b2", 0);
	struct backend *b3 = backend_start_on(BACKEND_ECHO, "127.0.0.3", bport, "b3", 0);
	char body[256];

	cr_assert(b2 && b3);
	snprintf(body, sizeof(body), "server = app.test:%d\nresolve_interval = 1h\n", bport);
	struct proxy *p = proxy_start(write_config(port, body), port);
	cr_assert(p, "proxy did not start");
	hosts_write("127.0.0.3 app.test\n");
	cr_assert_eq(proxy_signal(p, SIGHUP), 0);
	cr_assert(log_wait(p, "configuration reloaded", 1, SLACK_MS));
	echo_once(port);
	cr_assert_eq(backend_accepted(b2), 1, "the reload looked the name up again");
	cr_assert_eq(backend_accepted(b3), 0);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}
