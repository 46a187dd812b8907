/* balance = leastconn and maxconn through the real binary: exact distributions of connections
 * held open, the emptied server filled first, full servers skipped, and no_server when every
 * server is full. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "expect.h"
#include "harness.h"

TestSuite(leastconn, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

#define T HARNESS_TIMEOUT_MS
#define MAXB 3

static struct harness_cert crt;

/* A proxy in front of n echo backends whose server lines get opts[i] after the address. */
static struct proxy *start(int port, const char *balance, struct backend **b, unsigned n,
			   const char *const *opts)
{
	char be[1024];
	size_t len = (size_t)snprintf(be, sizeof(be), "[backend app]\nbalance = %s\ncheck = none\n",
				      balance);
	for (unsigned i = 0; i < n; i++) {
		b[i] = backend_start(BACKEND_ECHO, 0, NULL, 0);
		cr_assert(b[i]);
		len += (size_t)snprintf(be + len, sizeof(be) - len, "server = %s %s\n",
					backend_addr(b[i]), opts ? opts[i] : "");
	}
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	const char *ini = harness_config_web("l.ini", port, &crt, NULL, NULL, be);
	cr_assert(ini);
	struct proxy *p = proxy_start(ini, port);
	cr_assert(p, "proxy did not start");
	return p;
}

static unsigned active(struct backend *b)
{
	struct backend_stats st;
	backend_get_stats(b, &st);
	return st.active;
}

/* Opens a client and echoes once, so that its backend connection is up. */
static struct tlsc *echo_open(int port)
{
	struct tlsc_opts o = { .sni = "demo.test" };
	char buf[8];
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	cr_assert(c, "TLS connect failed");
	cr_assert_eq(tlsc_write_all(c, "ping", 4, T), 0);
	cr_assert_eq(tlsc_read(c, buf, sizeof(buf), T), 4);
	return c;
}

/* echo_open, and in *which the backend that accepted it (with check = none, where only
 * clients connect). */
static struct tlsc *hold(int port, struct backend **b, unsigned n, unsigned *which)
{
	unsigned before[MAXB];
	for (unsigned i = 0; i < n; i++)
		before[i] = backend_accepted(b[i]);
	struct tlsc *c = echo_open(port);
	*which = n;
	for (unsigned i = 0; i < n; i++)
		if (backend_accepted(b[i]) == before[i] + 1)
			*which = i;
	cr_assert_lt(*which, n, "no backend took the connection");
	return c;
}

/* 40 connections held open over weights 1, 1, 2: exactly 10, 10 and 20. */
Test(leastconn, weights_share_the_open_connections_exactly)
{
	static const char *const w[MAXB] = { "weight=1", "weight=1", "weight=2" };
	struct backend *b[MAXB];
	struct tlsc *c[40];
	unsigned count[MAXB] = { 0 }, which;
	int port = harness_free_port();
	struct proxy *p = start(port, "leastconn", b, MAXB, w);
	for (int i = 0; i < 40; i++) {
		c[i] = hold(port, b, MAXB, &which);
		count[which]++;
	}
	cr_assert_eq(count[0], 10u);
	cr_assert_eq(count[1], 10u);
	cr_assert_eq(count[2], 20u);
	for (unsigned i = 0; i < MAXB; i++)
		cr_assert_eq(active(b[i]), count[i], "backend %u holds %u", i, active(b[i]));
	for (int i = 0; i < 40; i++)
		tlsc_close(c[i]);
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 40, T), 40);
	cr_assert_eq(proxy_stop(p, T), 0);
	harness_pass();
}

/* Two of four connections end, both on the same server: the next two go there, where
 * round-robin would give one to each. */
Test(leastconn, the_server_that_emptied_is_filled_first)
{
	struct backend *b[2];
	struct tlsc *c[4];
	unsigned on[4], which;
	int port = harness_free_port();
	struct proxy *p = start(port, "leastconn", b, 2, NULL);
	for (int i = 0; i < 4; i++)
		c[i] = hold(port, b, 2, &on[i]);
	cr_assert_eq(active(b[0]), 2);
	cr_assert_eq(active(b[1]), 2);
	for (int i = 0; i < 4; i++)
		if (on[i] == 0)
			tlsc_close(c[i]);
	/* the proxy logs a connection after it has given its server's slot back */
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 2, T), 2);
	struct tlsc *n1 = hold(port, b, 2, &which);
	cr_assert_eq(which, 0u, "the first new connection went to the busier server");
	struct tlsc *n2 = hold(port, b, 2, &which);
	cr_assert_eq(which, 0u, "the second new connection went to the busier server");
	tlsc_close(n1);
	tlsc_close(n2);
	for (int i = 0; i < 4; i++)
		if (on[i] == 1)
			tlsc_close(c[i]);
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 6, T), 6);
	cr_assert_eq(proxy_stop(p, T), 0);
	harness_pass();
}

/* Round-robin with maxconn 2 and 3: five held connections fill both; the sixth closes with
 * no_server; a freed slot is used again. */
static void full_servers_case(const char *balance)
{
	static const char *const m[2] = { "maxconn=2", "maxconn=3" };
	struct backend *b[2];
	struct tlsc *c[5];
	unsigned on[5];
	int port = harness_free_port();
	struct proxy *p = start(port, balance, b, 2, m);
	for (int i = 0; i < 5; i++)
		c[i] = hold(port, b, 2, &on[i]);
	cr_assert_eq(active(b[0]), 2);
	cr_assert_eq(active(b[1]), 3);

	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *extra = tlsc_connect("127.0.0.1", port, &o);
	char buf[8];
	cr_assert(extra, "the handshake is completed before no_server");
	cr_assert_leq(tlsc_read(extra, buf, sizeof(buf), T), 0, "a full pool relayed bytes");
	tlsc_close(extra);
	char *line = alog_wait_find(proxy_access_log(p), "close", "no_server", T);
	cr_assert(line, "no no_server line");
	expect_str(line, "error", "every server up in backend app is at its maxconn");
	free(line);

	for (int i = 0; i < 5; i++)
		if (on[i] == 0) {
			tlsc_close(c[i]);
			c[i] = NULL;
			break;
		}
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 2, T), 2);
	unsigned which;
	struct tlsc *again = hold(port, b, 2, &which);
	cr_assert_eq(which, 0u, "the freed slot was not used");
	tlsc_close(again);
	for (int i = 0; i < 5; i++)
		tlsc_close(c[i]);
	cr_assert_eq(backend_accepted(b[0]) + backend_accepted(b[1]), 6u);
	cr_assert_eq(proxy_stop(p, T), 0);
}

Test(leastconn, roundrobin_skips_full_servers)
{
	full_servers_case("roundrobin");
	harness_pass();
}

Test(leastconn, leastconn_skips_full_servers)
{
	full_servers_case("leastconn");
	harness_pass();
}

/* The value of one metrics series, polled (bounded) until it equals want. */
static bool wait_metric(int mport, const char *series, double want)
{
	double v = -1;
	for (int64_t end = harness_now_ms() + T; harness_now_ms() < end;) {
		char *m = harness_http_get(mport, "/metrics", T);
		v = m ? metrics_value(m, series) : -1;
		free(m);
		if (v == want)
			return true;
		usleep(20000);
	}
	return false;
}

/* slowstart = 0: a server that has just come back up carries none of 10 connections held
 * open, where leastconn alone would give it 5 (its weight ramps from 0; the exact shares along
 * the ramp are in test_pool). */
Test(leastconn, slowstart_spares_a_server_that_just_came_up)
{
	struct backend *a = backend_start(BACKEND_ECHO, 0, NULL, 0);
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	struct tlsc *c[10];
	char be[512], global[64], series[160];
	int port = harness_free_port(), mport = harness_free_port();
	backend_stop(b);
	snprintf(be, sizeof(be),
		 "[backend app]\nbalance = leastconn\nslowstart = 10m\nserver = %s\nserver = %s\n"
		 "check = tcp\ncheck_interval = 100ms\ncheck_rise = 1\ncheck_fall = 1\n",
		 backend_addr(a), backend_addr(b));
	snprintf(global, sizeof(global), "metrics = 127.0.0.1:%d\n", mport);
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	struct proxy *p = proxy_start(harness_config_web("s.ini", port, &crt, global, NULL, be),
				      port);
	cr_assert(p);
	snprintf(series, sizeof(series), "tlsplice_server_up{backend=\"app\",server=\"%s\"}",
		 backend_addr(b));
	cr_assert(wait_metric(mport, series, 0), "the stopped server is not down");
	cr_assert_eq(backend_restart(b), 0);
	cr_assert(wait_metric(mport, series, 1), "the restarted server is not up");
	for (int i = 0; i < 10; i++) /* all held open at once */
		c[i] = echo_open(port);
	for (int i = 0; i < 10; i++)
		tlsc_close(c[i]);
	/* checks connect to the backends too: the log says where clients went */
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 10, T), 10);
	cr_assert_eq(alog_count(proxy_access_log(p), "server", backend_addr(a)), 10);
	cr_assert_eq(alog_count(proxy_access_log(p), "server", backend_addr(b)), 0,
		     "the ramping server took connections");
	cr_assert_eq(proxy_stop(p, T), 0);
	harness_pass();
}

/* backend_maxqueue = 1 in front of one server of maxconn 1 (one worker, TLS 1.2, so that a
 * client's finished handshake means the proxy has queued it): the second client waits and
 * gets through when the first ends; the third finds the queue full; a client that waits
 * longer than queue_timeout is closed with no_server. */
Test(leastconn, the_queue_holds_clients_until_a_slot_frees)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	struct tlsc_opts o = { .sni = "demo.test", .max_version = TLS1_2_VERSION };
	char be[512], buf[8];
	int port = harness_free_port();
	snprintf(be, sizeof(be),
		 "[backend app]\nserver = %s maxconn=1\ncheck = none\nbackend_maxqueue = 1\n"
		 "queue_timeout = 2s\n",
		 backend_addr(b));
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	struct proxy *p = proxy_start(
		harness_config_web("q.ini", port, &crt, "workers = 1\n", NULL, be), port);
	cr_assert(p);
	struct tlsc *first = echo_open(port);
	struct tlsc *waiting = tlsc_connect("127.0.0.1", port, &o);
	cr_assert(waiting);
	cr_assert_eq(tlsc_write_all(waiting, "ping", 4, T), 0);
	struct tlsc *refused = tlsc_connect("127.0.0.1", port, &o);
	cr_assert(refused);
	char *line = alog_wait_find(proxy_access_log(p), "close", "no_server", T);
	cr_assert(line, "the client beyond the queue was not refused");
	expect_str(line, "error", "no server free in backend app and its queue is full");
	free(line);
	tlsc_close(refused);
	cr_assert_eq(backend_accepted(b), 1, "the queue did not hold the second client");

	tlsc_close(first);
	cr_assert_eq(tlsc_read(waiting, buf, sizeof(buf), T), 4,
		     "the queued client never got through");
	cr_assert_eq(memcmp(buf, "ping", 4), 0);
	cr_assert_eq(backend_accepted(b), 2);

	struct tlsc *late = tlsc_connect("127.0.0.1", port, &o);
	cr_assert(late);
	line = alog_wait_find(proxy_access_log(p), "error",
			      "no server free within queue_timeout 2000 ms", T);
	cr_assert(line, "the client that waited too long was not closed");
	expect_str(line, "close", "no_server");
	double ms = 0;
	cr_assert_eq(json_num(line, "duration_ms", &ms), 0);
	cr_assert_geq(ms, 1900.0, "%s", line);
	free(line);
	tlsc_close(late);
	tlsc_close(waiting);
	cr_assert_eq(backend_accepted(b), 2, "a client beyond maxconn reached the server");
	cr_assert_eq(proxy_stop(p, T), 0);
	harness_pass();
}
