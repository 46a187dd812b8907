/* Health checks through the real binary: active tcp and send-expect checks with rise/fall,
 * passive failures and recovery with check = none, backup servers, and no fd leaks with
 * many checked servers. State changes are observed in the proxy's stderr log
 * ("backend B server HOST:PORT is DOWN|UP: ..."), traffic through the backends' replies
 * and accept counters. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define SLACK_MS 600 /* scheduling slack on a shared, possibly sanitized machine */

/* Writes the config with one frontend on port and the given [backend app] body. */
static const char *write_config(int port, int metrics_port, const char *backend_body)
{
	struct harness_cert crt;

	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	return harness_write_file(
		"health.ini",
		"[global]\nworkers = 2\nlog_level = info\nmetrics = 127.0.0.1:%d\n"
		"[frontend web]\nlisten = 127.0.0.1:%d\ncert = %s\nkey = %s\n"
		"backend = app\n"
		"[backend app]\nconnect_timeout = 500ms\n%s",
		metrics_port, port, crt.cert, crt.key, backend_body);
}

/* One request through the proxy; returns the name of the HELLO backend that answered
 * (malloc'd), or NULL if no backend answered. */
static char *fetch(int port)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: demo.test\r\n\r\n";
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	char buf[1024], *name = NULL;
	ssize_t n;

	if (!c)
		return NULL;
	if (tlsc_write_all(c, req, sizeof(req) - 1, 3000) == 0 &&
	    (n = tlsc_read_all(c, buf, sizeof(buf) - 1, 3000)) > 0) {
		buf[n] = '\0';
		char *at = strstr(buf, "hello from ");
		if (at) {
			at += strlen("hello from ");
			name = strndup(at, strcspn(at, "\r\n"));
		}
	}
	tlsc_close(c);
	return name;
}

/* Sends n requests; counts which backend answered each (names are one letter a..z). */
static void fetch_many(int port, int n, int counts[26], int *failed)
{
	*failed = 0;
	memset(counts, 0, 26 * sizeof(int));
	for (int i = 0; i < n; i++) {
		char *name = fetch(port);
		if (name && name[0] >= 'a' && name[0] <= 'z' && !name[1])
			counts[name[0] - 'a']++;
		else
			(*failed)++;
		free(name);
	}
}

/* Number of occurrences of needle in the proxy's stderr. */
static int log_count(struct proxy *p, const char *needle)
{
	char *text = harness_read_file(proxy_stderr_path(p), NULL);
	int n = 0;

	for (const char *at = text; at && (at = strstr(at, needle)); at += strlen(needle))
		n++;
	free(text);
	return n;
}

/* Polls the proxy's stderr until needle occurs at least n times; returns the time it was
 * seen (harness_now_ms), or -1 at the deadline. */
static int64_t log_wait(struct proxy *p, const char *needle, int n, int timeout_ms)
{
	int64_t end = harness_now_ms() + timeout_ms;

	do {
		if (log_count(p, needle) >= n)
			return harness_now_ms();
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	} while (harness_now_ms() < end);
	return -1;
}

static const char *state_line(const struct backend *b, const char *state)
{
	static char buf[2][128];
	static int k;

	k ^= 1;
	snprintf(buf[k], sizeof(buf[k]), "backend app server %s is %s:", backend_addr(b), state);
	return buf[k];
}

/* A metrics sample for server addr, -1 if missing. */
static double server_metric(int metrics_port, const char *name, const char *addr)
{
	char series[256];
	char *text = harness_http_get(metrics_port, "/metrics", 3000);
	double v;

	snprintf(series, sizeof(series), "%s{backend=\"app\",server=\"%s\"}", name, addr);
	v = text ? metrics_value(text, series) : -1;
	free(text);
	return v;
}

static int count_proxy_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	cr_assert_not_null(d, "cannot open %s", path);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Fewest fds over a short burst of samples: check sockets open and close all the time,
 * the floor is what the process keeps. */
static int proxy_fd_floor(pid_t pid)
{
	int best = -1;

	for (int i = 0; i < 30; i++) {
		int n = count_proxy_fds(pid);
		best = best < 0 || n < best ? n : best;
		struct timespec ts = { 0, 5 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return best;
}

/* A port on which connects are refused and that nobody else can take while fd stays open:
 * bound without SO_REUSEADDR, never listening. */
static int reserve_refusing_port(int *fd)
{
	struct sockaddr_in in = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(in);

	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(*fd >= 0);
	cr_assert_eq(bind(*fd, (struct sockaddr *)&in, sizeof(in)), 0);
	cr_assert_eq(getsockname(*fd, (struct sockaddr *)&in, &len), 0);
	return ntohs(in.sin_port);
}

/* Hello servers a and b with the check lines of fmt; b is stopped before the proxy starts
 * if stop_b. The proxy's port and metrics port in *port and *mport. */
static struct proxy *start_two(struct backend **a, struct backend **b, bool stop_b, int *port,
			       int *mport, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static struct proxy *start_two(struct backend **a, struct backend **b, bool stop_b, int *port,
			       int *mport, const char *fmt, ...)
{
	char body[512], checks[384];
	va_list ap;

	*a = backend_start(BACKEND_HELLO, 0, "a", 0);
	*b = backend_start(BACKEND_HELLO, 0, "b", 0);
	*port = harness_free_port();
	*mport = harness_free_port();
	cr_assert(*a && *b);
	va_start(ap, fmt);
	vsnprintf(checks, sizeof(checks), fmt, ap);
	va_end(ap);
	snprintf(body, sizeof(body), "server = %s\nserver = %s\n%s", backend_addr(*a),
		 backend_addr(*b), checks);
	if (stop_b)
		backend_stop(*b);
	struct proxy *p = proxy_start(write_config(*port, *mport, body), *port);
	cr_assert_not_null(p);
	return p;
}

TestSuite(health, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

Test(health, dead_server_gets_no_traffic_after_fall_checks)
{
	struct backend *a, *b;
	int port, mport, counts[26], failed;
	struct proxy *p = start_two(&a, &b, false, &port, &mport,
				    "check = tcp\ncheck_interval = 200ms\ncheck_timeout = 200ms\n"
				    "check_rise = 2\ncheck_fall = 2\n");
	fetch_many(port, 10, counts, &failed);
	cr_assert_eq(failed, 0);
	cr_assert(counts[0] > 0 && counts[1] > 0, "both servers serve while up (a=%d b=%d)",
		  counts[0], counts[1]);

	backend_stop(b);
	int64_t seen = log_wait(p, state_line(b, "DOWN"), 1, 200 * 2 + 200 + SLACK_MS);
	cr_assert(seen >= 0, "b must be marked down within interval*fall + timeout");
	cr_assert_eq(log_count(p, state_line(a, "DOWN")), 0, "a never failed a check");

	double fails = server_metric(mport, "tlsplice_server_connect_failures_total",
				     backend_addr(b));
	fetch_many(port, 20, counts, &failed);
	cr_assert_eq(failed, 0, "a alone serves every connection");
	cr_assert_eq(counts[0], 20);
	cr_assert_eq(
		server_metric(mport, "tlsplice_server_connect_failures_total", backend_addr(b)),
		fails, "no client connection may be sent to a server that is down");
	cr_assert_geq(server_metric(mport, "tlsplice_server_check_failures_total", backend_addr(b)),
		      2);
	cr_assert_eq(server_metric(mport, "tlsplice_server_up", backend_addr(b)), 0);
	cr_assert_eq(server_metric(mport, "tlsplice_server_up", backend_addr(a)), 1);
	harness_pass();
}

Test(health, restarted_server_gets_traffic_after_rise_checks)
{
	struct backend *a, *b;
	int port, mport, counts[26], failed;
	struct proxy *p = start_two(&a, &b, true, &port, &mport,
				    "check = tcp\ncheck_interval = 150ms\ncheck_timeout = 150ms\n"
				    "check_rise = 3\ncheck_fall = 1\n");
	/* the first check decides at once, whatever fall says */
	cr_assert(log_wait(p, state_line(b, "DOWN"), 1, 150 + SLACK_MS) >= 0);

	unsigned before = backend_accepted(b);
	cr_assert_eq(backend_restart(b), 0);
	int64_t restarted = harness_now_ms();
	int64_t up = log_wait(p, state_line(b, "UP"), 1, 150 * 3 + 150 + SLACK_MS);
	cr_assert(up >= 0, "b must come back after rise checks");
	/* three passing checks are two intervals apart at least (20ms for timer rounding) */
	cr_assert_geq(up - restarted, 150 * 2 - 20, "UP after %lld ms: too early for rise = 3",
		      (long long)(up - restarted));
	cr_assert_eq(log_count(p, "is UP: check passed (3/3)"), 1);
	cr_assert(backend_wait_accepted(b, before + 3, 2000), "the checks reached b");

	fetch_many(port, 10, counts, &failed);
	cr_assert_eq(failed, 0);
	cr_assert_geq(counts[1], 3, "b serves its round-robin share again (a=%d b=%d)", counts[0],
		      counts[1]);
	harness_pass();
}

Test(health, send_expect_with_the_wrong_reply_marks_down)
{
	struct backend *a, *b;
	int port, mport, counts[26], failed;
	/* both answer HTTP, but only a's body contains the expected text */
	struct proxy *p = start_two(&a, &b, false, &port, &mport,
				    "check = send-expect\n"
				    "check_send = GET /health HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n\n"
				    "check_expect = hello from a\ncheck_interval = 100ms\n"
				    "check_timeout = 300ms\ncheck_rise = 2\ncheck_fall = 2\n");
	cr_assert(log_wait(p, state_line(b, "DOWN"), 1, 100 + 300 + SLACK_MS) >= 0);
	/* a keeps passing: several rounds, never down */
	cr_assert(backend_wait_accepted(a, 5, 100 * 5 + SLACK_MS * 2));
	cr_assert_eq(log_count(p, state_line(a, "DOWN")), 0);
	fetch_many(port, 10, counts, &failed);
	cr_assert_eq(failed, 0);
	cr_assert_eq(counts[0], 10, "only a is up (a=%d b=%d)", counts[0], counts[1]);
	harness_pass();
}

/* Sends requests until b's DOWN line appears; returns the start time of the request that
 * caused it, -1 if it never did. */
static int64_t fetch_until_down(struct proxy *p, int port, struct backend *b, int max)
{
	for (int i = 0; i < max; i++) {
		int64_t t = harness_now_ms();
		char *name = fetch(port);
		cr_assert_not_null(name, "retries must hide the failed server from clients");
		cr_assert_str_eq(name, "a");
		free(name);
		if (log_wait(p, state_line(b, "DOWN"), 1, 50) >= 0)
			return t;
	}
	return -1;
}

Test(health, passive_failures_with_check_none)
{
	struct backend *a, *b;
	int port, mport;
	const int interval = 1000;
	struct proxy *p = start_two(
		&a, &b, false, &port, &mport,
		"check = none\ncheck_interval = %dms\ncheck_fall = 2\nretries = 2\n", interval);
	backend_stop(b);
	int64_t t_down = fetch_until_down(p, port, b, 12);
	cr_assert(t_down >= 0, "b must be marked down by failed live connects");
	cr_assert_eq(log_count(p, "(2/2)"), 1, "down after check_fall = 2 failed connects");
	cr_assert_eq(
		server_metric(mport, "tlsplice_server_connect_failures_total", backend_addr(b)), 2);
	cr_assert_eq(server_metric(mport, "tlsplice_server_check_failures_total", backend_addr(b)),
		     0, "check = none runs no checks");

	/* b is back, but it is down until one client connection probes it after interval */
	cr_assert_eq(backend_restart(b), 0);
	unsigned before = backend_accepted(b);
	for (int i = 0; i < 5 && harness_now_ms() < t_down + interval / 2; i++) {
		char *name = fetch(port);
		cr_assert_str_eq(name ? name : "", "a");
		free(name);
	}
	cr_assert_eq(backend_accepted(b), before, "no connection to b before check_interval");

	int64_t probe = -1, end = harness_now_ms() + interval * 3;
	while (probe < 0 && harness_now_ms() < end) {
		char *name = fetch(port);
		cr_assert_not_null(name);
		if (strcmp(name, "b") == 0)
			probe = harness_now_ms();
		free(name);
	}
	cr_assert(probe >= 0, "b must get a probing connection after check_interval");
	cr_assert_geq(probe, t_down + interval, "the probe must wait for check_interval");
	cr_assert(log_wait(p, state_line(b, "UP"), 1, 2000) >= 0, "a successful probe marks up");
	harness_pass();
}

Test(health, backup_serves_only_while_every_primary_is_down)
{
	struct backend *a = backend_start(BACKEND_HELLO, 0, "a", 0);
	struct backend *b = backend_start(BACKEND_HELLO, 0, "b", 0);
	struct backend *c = backend_start(BACKEND_HELLO, 0, "c", 0);
	int port = harness_free_port(), mport = harness_free_port(), counts[26], failed;
	const int wait = 100 + 200 + SLACK_MS;
	char body[512];

	cr_assert(a && b && c);
	snprintf(body, sizeof(body),
		 "server = %s\nserver = %s\nserver = %s backup\ncheck = tcp\n"
		 "check_interval = 100ms\ncheck_timeout = 200ms\ncheck_rise = 1\ncheck_fall = 1\n",
		 backend_addr(a), backend_addr(b), backend_addr(c));
	struct proxy *p = proxy_start(write_config(port, mport, body), port);
	cr_assert_not_null(p);
	fetch_many(port, 10, counts, &failed);
	cr_assert(failed == 0 && counts[2] == 0 && counts[0] && counts[1]);

	backend_stop(a);
	cr_assert(log_wait(p, state_line(a, "DOWN"), 1, wait) >= 0);
	fetch_many(port, 10, counts, &failed);
	cr_assert(failed == 0 && counts[1] == 10, "b alone while a primary is up (b=%d c=%d)",
		  counts[1], counts[2]);

	backend_stop(b);
	cr_assert(log_wait(p, state_line(b, "DOWN"), 1, wait) >= 0);
	fetch_many(port, 10, counts, &failed);
	cr_assert(failed == 0 && counts[2] == 10, "the backup takes over (c=%d, failed=%d)",
		  counts[2], failed);

	cr_assert_eq(backend_restart(a), 0);
	cr_assert(log_wait(p, state_line(a, "UP"), 1, wait) >= 0);
	fetch_many(port, 10, counts, &failed);
	cr_assert(failed == 0 && counts[0] == 10, "the backup steps back (a=%d c=%d)", counts[0],
		  counts[2]);
	harness_pass();
}

Test(health, hundred_checked_servers_leak_no_fds)
{
	enum { NLIVE = 10, NSERVERS = 100 };
	struct backend *live[NLIVE];
	int port = harness_free_port(), mport = harness_free_port(), counts[26], failed;
	size_t cap = 8192, len = 0;
	char *body = malloc(cap);

	cr_assert_not_null(body);
	for (int i = 0; i < NLIVE; i++) {
		char name[2] = { (char)('a' + i), 0 };
		live[i] = backend_start(BACKEND_HELLO, 0, name, 0);
		cr_assert_not_null(live[i]);
		len += (size_t)snprintf(body + len, cap - len, "server = %s\n",
					backend_addr(live[i]));
	}
	int dead_fd[NSERVERS];
	for (int i = NLIVE; i < NSERVERS; i++)
		len += (size_t)snprintf(body + len, cap - len, "server = 127.0.0.1:%d\n",
					reserve_refusing_port(&dead_fd[i]));
	snprintf(body + len, cap - len,
		 "check = tcp\ncheck_interval = 100ms\n"
		 "check_timeout = 500ms\ncheck_rise = 1\ncheck_fall = 1\n");
	struct proxy *p = proxy_start(write_config(port, mport, body), port);
	free(body);
	cr_assert_not_null(p);
	cr_assert(log_wait(p, "is DOWN:", NSERVERS - NLIVE, 2000) >= 0,
		  "the first round marks every dead server down");
	fetch_many(port, 5, counts, &failed);
	cr_assert_eq(failed, 0);
	int floor_before = proxy_fd_floor(proxy_pid(p));

	/* about 20 more rounds of 100 checks */
	unsigned target[NLIVE];
	for (int i = 0; i < NLIVE; i++)
		target[i] = backend_accepted(live[i]) + 20;
	for (int i = 0; i < NLIVE; i++)
		cr_assert(backend_wait_accepted(live[i], target[i], 10000));
	int floor_after = proxy_fd_floor(proxy_pid(p));
	cr_assert_leq(floor_after, floor_before, "fds grew from %d to %d over 2000 checks",
		      floor_before, floor_after);
	cr_assert_eq(log_count(p, "is DOWN:"), NSERVERS - NLIVE, "no server flapped");
	cr_assert_eq(log_count(p, "is UP:"), 0, "live servers were never down");

	fetch_many(port, 20, counts, &failed);
	cr_assert_eq(failed, 0, "the relay still works");
	for (int i = 0; i < NLIVE; i++)
		cr_assert_geq(counts[i], 1, "round-robin over every live server (%c=%d)", 'a' + i,
			      counts[i]);
	for (int i = NLIVE; i < NSERVERS; i++)
		close(dead_fd[i]);
	harness_pass();
}

Test(health, state_and_checks_survive_a_reload)
{
	struct backend *a, *b;
	int port, mport, counts[26], failed;
	struct proxy *p = start_two(&a, &b, true, &port, &mport,
				    "check = tcp\ncheck_interval = 100ms\ncheck_timeout = 200ms\n"
				    "check_rise = 2\ncheck_fall = 2\n");
	cr_assert(log_wait(p, state_line(b, "DOWN"), 1, 100 + 200 + SLACK_MS) >= 0);

	for (int i = 1; i <= 3; i++) { /* each reload replaces the pools and the check thread */
		cr_assert_eq(proxy_signal(p, SIGHUP), 0);
		cr_assert(log_wait(p, "configuration reloaded", i, 5000) >= 0, "reload %d", i);
	}
	/* the new generation knows b is down: no fresh "up until the first check" */
	fetch_many(port, 10, counts, &failed);
	cr_assert(failed == 0 && counts[0] == 10, "b stays down across the reload (a=%d b=%d)",
		  counts[0], counts[1]);

	/* and the new generation's checks run: b comes back after rise */
	cr_assert_eq(backend_restart(b), 0);
	cr_assert(log_wait(p, state_line(b, "UP"), 1, 100 * 2 + 200 + SLACK_MS) >= 0);
	cr_assert_eq(log_count(p, state_line(b, "UP")), 1);
	cr_assert(proxy_running(p));
	fetch_many(port, 10, counts, &failed);
	cr_assert(failed == 0 && counts[1] > 0, "b serves again (a=%d b=%d)", counts[0], counts[1]);
	harness_pass();
}

Test(health, reload_to_check_none_probes_a_server_checks_took_down)
{
	struct backend *a, *b;
	int port, mport;
	const int interval = 500;
	char body[512];
	/* checks are 10 s apart: after the first round took b down, none runs again */
	struct proxy *p = start_two(&a, &b, true, &port, &mport,
				    "check = tcp\ncheck_interval = 10s\ncheck_timeout = 200ms\n"
				    "check_rise = 2\ncheck_fall = 1\n");
	cr_assert(log_wait(p, state_line(b, "DOWN"), 1, 200 + SLACK_MS) >= 0);
	cr_assert_eq(backend_restart(b), 0);

	snprintf(body, sizeof(body),
		 "server = %s\nserver = %s\ncheck = none\ncheck_interval = %dms\n", backend_addr(a),
		 backend_addr(b), interval);
	write_config(port, mport, body);
	int64_t t_reload = harness_now_ms();
	cr_assert_eq(proxy_signal(p, SIGHUP), 0);
	cr_assert(log_wait(p, "configuration reloaded", 1, 5000) >= 0);

	/* no check is left to revive b: one client connection must probe it after interval */
	int64_t probe = -1, end = harness_now_ms() + interval * 4 + SLACK_MS;
	while (probe < 0 && harness_now_ms() < end) {
		char *name = fetch(port);
		cr_assert_not_null(name, "a keeps serving");
		if (strcmp(name, "b") == 0)
			probe = harness_now_ms();
		free(name);
	}
	cr_assert(probe >= 0, "b must get a probing connection after check_interval");
	cr_assert_geq(probe, t_reload + interval, "the probe must wait for check_interval");
	cr_assert(log_wait(p, state_line(b, "UP"), 1, 2000) >= 0, "a successful probe marks up");
	harness_pass();
}

/* A DOWN line says how many servers of its backend remain up; a backend left with none logs
 * one line saying so, and one when a server is back. */
Test(health, down_lines_count_what_remains_and_an_empty_backend_is_logged_once)
{
	struct backend *a, *b;
	int port, mport;
	/* what is logged, not when: the bound only ends a hung run */
	const int wait = 10000;
	struct proxy *p = start_two(&a, &b, false, &port, &mport,
				    "check = tcp\ncheck_interval = 100ms\ncheck_timeout = 200ms\n"
				    "check_rise = 1\ncheck_fall = 1\n");
	char line[256];

	backend_stop(a);
	cr_assert(log_wait(p, state_line(a, "DOWN"), 1, wait) >= 0);
	cr_assert(log_wait(p, "; 1 of 2 servers of backend app up", 1, wait) >= 0,
		  "the DOWN line does not say what remains");
	cr_assert_eq(log_count(p, "backend app has no server available"), 0);

	backend_stop(b);
	cr_assert(log_wait(p, state_line(b, "DOWN"), 1, wait) >= 0);
	cr_assert(log_wait(p, "; 0 of 2 servers of backend app up", 1, wait) >= 0);
	cr_assert(log_wait(p, "backend app has no server available", 1, wait) >= 0);

	cr_assert_eq(backend_restart(a), 0);
	cr_assert(log_wait(p, state_line(a, "UP"), 1, wait) >= 0);
	snprintf(line, sizeof(line), "backend app has a server available again: %s",
		 backend_addr(a));
	cr_assert(log_wait(p, line, 1, wait) >= 0, "no recovery line");
	cr_assert_eq(backend_restart(b), 0);
	cr_assert(log_wait(p, state_line(b, "UP"), 1, wait) >= 0);
	cr_assert_eq(log_count(p, "has no server available"), 1, "one line, not one per check");
	cr_assert_eq(log_count(p, "has a server available again"), 1);
	harness_pass();
}

/* The "no server available" state lives with the backend's pool, which a reload builds
 * anew: it must carry over as health state does, or the recovery line never comes. */
Test(health, an_empty_backend_recovers_in_the_log_after_a_reload)
{
	struct backend *a, *b;
	int port, mport;
	/* what is logged, not when: the bound only ends a hung run */
	const int wait = 10000;
	struct proxy *p = start_two(&a, &b, false, &port, &mport,
				    "check = tcp\ncheck_interval = 100ms\ncheck_timeout = 200ms\n"
				    "check_rise = 1\ncheck_fall = 1\n");
	char line[256];

	backend_stop(a);
	backend_stop(b);
	cr_assert(log_wait(p, "backend app has no server available", 1, 2 * wait) >= 0);
	cr_assert_eq(proxy_signal(p, SIGHUP), 0);
	cr_assert(log_wait(p, "configuration reloaded", 1, 5000) >= 0);

	cr_assert_eq(backend_restart(a), 0);
	cr_assert(log_wait(p, state_line(a, "UP"), 1, wait) >= 0);
	snprintf(line, sizeof(line), "backend app has a server available again: %s",
		 backend_addr(a));
	cr_assert(log_wait(p, line, 1, wait) >= 0, "no recovery line after the reload");
	cr_assert_eq(log_count(p, "has no server available"), 1, "logged again by the reload");
	harness_pass();
}

/* A reload that removes the last server up leaves the backend empty without any server
 * changing state: the reload itself says so, once. */
Test(health, a_reload_that_removes_the_last_server_up_logs_the_empty_backend)
{
	struct backend *a, *b;
	int port, mport;
	/* what is logged, not when: the bound only ends a hung run */
	const int wait = 10000;
	const char *checks = "check = tcp\ncheck_interval = 100ms\ncheck_timeout = 200ms\n"
			     "check_rise = 1\ncheck_fall = 1\n";
	struct proxy *p = start_two(&a, &b, false, &port, &mport, "%s", checks);
	char body[512];

	backend_stop(a);
	cr_assert(log_wait(p, state_line(a, "DOWN"), 1, wait) >= 0);
	snprintf(body, sizeof(body), "server = %s\n%s", backend_addr(a), checks);
	write_config(port, mport, body);
	cr_assert_eq(proxy_signal(p, SIGHUP), 0);
	cr_assert(log_wait(p, "configuration reloaded", 1, 5000) >= 0);
	cr_assert_eq(log_count(p, "backend app has no server available"), 1,
		     "the reload left no server up and did not say so");
	harness_pass();
}

/* A reload that adds a server that is up ends an outage at once: it says so. */
Test(health, a_reload_that_adds_a_server_up_ends_the_outage_in_the_log)
{
	struct backend *a, *b;
	int port, mport;
	/* what is logged, not when: the bound only ends a hung run */
	const int wait = 10000;
	const char *checks = "check = tcp\ncheck_interval = 100ms\ncheck_timeout = 200ms\n"
			     "check_rise = 1\ncheck_fall = 1\n";
	struct proxy *p = start_two(&a, &b, true, &port, &mport, "%s", checks);
	struct backend *c = backend_start(BACKEND_HELLO, 0, "c", 0);
	char body[512], line[256];

	cr_assert(c);
	backend_stop(a);
	cr_assert(log_wait(p, "backend app has no server available", 1, 2 * wait) >= 0);
	snprintf(body, sizeof(body), "server = %s\nserver = %s\nserver = %s\n%s", backend_addr(a),
		 backend_addr(b), backend_addr(c), checks);
	write_config(port, mport, body);
	cr_assert_eq(proxy_signal(p, SIGHUP), 0);
	cr_assert(log_wait(p, "configuration reloaded", 1, 5000) >= 0);
	snprintf(line, sizeof(line), "backend app has a server available again: %s",
		 backend_addr(c));
	cr_assert_eq(log_count(p, line), 1, "the reload ended the outage and did not say so");
	harness_pass();
}
