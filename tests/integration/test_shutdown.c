/* SIGTERM: listeners close at once, live connections drain, exit at the last one or at
 * shutdown_timeout. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "blast.h"
#include "expect.h"
#include "harness.h"

TestSuite(shutdown, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

#define MIB (1024u * 1024u)

static struct proxy *start(struct backend *b, const char *global_extra, int *port)
{
	return start_web(b, global_extra, NULL, port);
}

/* After SIGTERM the listener must go away promptly and a connect be refused. */
static void expect_refused_soon(int port)
{
	int64_t deadline = harness_now_ms() + 1000;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd, rc, err;

	while (harness_port_listening(port) && harness_now_ms() < deadline)
		usleep(5000);
	cr_assert(!harness_port_listening(port), "still listening 1 s after SIGTERM");
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	err = errno;
	close(fd);
	cr_assert(rc != 0 && err == ECONNREFUSED, "connect after SIGTERM was not refused");
}

Test(shutdown, sigterm_drains_live_transfer)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port;
	struct proxy *p = start(b, "shutdown_timeout = 20s\n", &port);
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	unsigned char *buf = malloc(MIB), *back = malloc(MIB);
	struct tlsc_transfer t = { .send_bytes = 16 * MIB, .timeout_ms = 60000 };
	char want[65], *line;
	double v;
	int64_t t_end;

	cr_assert(c && buf && back);
	/* Prove the connection is relaying before the signal. */
	harness_pattern(0, buf, MIB);
	cr_assert_eq(tlsc_write_all(c, buf, MIB, 10000), 0);
	for (size_t got = 0; got < MIB;) {
		ssize_t n = tlsc_read(c, back + got, MIB - got, 10000);

		cr_assert_gt(n, 0, "echo stopped: %s", tlsc_error(c));
		got += (size_t)n;
	}
	cr_assert_eq(memcmp(buf, back, MIB), 0);

	cr_assert_eq(proxy_signal(p, SIGTERM), 0);
	expect_refused_soon(port);
	cr_assert(proxy_running(p), "exited with a live connection");

	cr_assert_eq(tlsc_transfer_run(c, &t), 0, "transfer after SIGTERM: %s", tlsc_error(c));
	t_end = harness_now_ms();
	harness_pattern_sha256_hex(t.send_bytes, want);
	cr_assert_eq(t.received, t.send_bytes);
	cr_assert_str_eq(t.recv_sha, want, "data corrupted during drain");
	tlsc_close(c);
	cr_assert_eq(proxy_wait(p, 5000), 0, "exit status after drain");
	cr_assert_lt(harness_now_ms() - t_end, 5000);

	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 1, 1000), 1);
	line = alog_line(proxy_access_log(p), 0);
	cr_assert(alog_count(proxy_access_log(p), "close", "client_eof") == 1, "%s", line);
	cr_assert_eq(json_num(line, "bytes_in", &v), 0);
	cr_assert_eq(v, (double)(MIB + t.send_bytes), "%s", line);
	cr_assert_eq(json_num(line, "bytes_out", &v), 0);
	cr_assert_eq(v, (double)(MIB + t.send_bytes), "%s", line);
	free(line);
	free(buf);
	free(back);
	harness_pass();
}

Test(shutdown, sigterm_stuck_connection_closed_at_timeout)
{
	struct backend *b = backend_start(BACKEND_SILENT, 0, NULL, 0);
	int port, code;
	struct proxy *p = start(b, "shutdown_timeout = 500ms\n", &port);
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	int64_t t0;
	char buf[16], *line;
	ssize_t n;

	cr_assert(c);
	cr_assert_eq(tlsc_write_all(c, "stuck", 5, 5000), 0);
	cr_assert(backend_wait_accepted(b, 1, HARNESS_TIMEOUT_MS));
	t0 = harness_now_ms();
	cr_assert_eq(proxy_signal(p, SIGTERM), 0);
	code = proxy_wait(p, 10000);
	cr_assert_eq(code, 0, "exit status %d", code);
	cr_assert_geq(harness_now_ms() - t0, 400, "exited before shutdown_timeout");
	n = tlsc_read(c, buf, sizeof(buf), 2000);
	cr_assert(n <= 0, "stuck client still open after exit");
	tlsc_close(c);
	line = alog_wait_find(proxy_access_log(p), "close", "shutdown", 1000);
	cr_assert(line, "no close=shutdown line");
	free(line);
	harness_pass();
}

Test(shutdown, sigint_idle_exits_at_once)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port;
	struct proxy *p = start(b, "shutdown_timeout = 20s\n", &port);

	cr_assert_eq(proxy_signal(p, SIGINT), 0);
	cr_assert_eq(proxy_wait(p, 5000), 0, "no clean exit without connections");
	harness_pass();
}

/* The shutdown timeout ends connections while the worker is in the middle of reading from
 * clients whose records OpenSSL holds half-read: nothing of a connection may run after it is
 * freed. The proxy is stopped while four senders fill their sockets, and resumed shortly
 * before the timeout, so the forced close arrives while the worker relays. (Under ASan a use-after-free aborts the
 * proxy: exit status 1 instead of 0.) */
Test(shutdown, forced_close_while_clients_keep_sockets_full)
{
	struct fast_sink sink;
	struct harness_cert crt;
	char backends[256];
	int port = harness_free_port(), code;
	struct proxy *p;
	struct tlsc_opts o = { .sni = "demo.test", .min_version = TLS1_3_VERSION };
	struct blaster bl[BLASTERS];
	int64_t t_term;
	char *line = NULL;

	BLAST_SKIP_IF_EMULATED();
	cr_assert_eq(sink_start(&sink), 0);
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	snprintf(backends, sizeof(backends), "[backend app]\nserver = %s\ncheck = none\n",
		 sink.addr);
	p = proxy_start(harness_config_web("web.ini", port, &crt,
					   "workers = 1\nshutdown_timeout = 1s\n", NULL, backends),
			port);
	cr_assert(p);
	for (int i = 0; i < BLASTERS; i++) {
		struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
		cr_assert(c);
		cr_assert_eq(blast_prepare(&bl[i], c, 1152 * BLAST_GROUP), 0);
	}
	cr_assert(sink_wait_accepted(&sink, BLASTERS, HARNESS_TIMEOUT_MS));
	cr_assert(blast_warm_up(bl, BLASTERS, &sink, 128));
	t_term = harness_now_ms();
	cr_assert_eq(proxy_signal(p, SIGTERM), 0);
	for (int64_t end = t_term + HARNESS_TIMEOUT_MS; !line && harness_now_ms() < end;
	     usleep(1000)) {
		line = harness_read_file(proxy_stderr_path(p), NULL);
		if (line && !strstr(line, "stopping")) {
			free(line);
			line = NULL;
		}
	}
	cr_assert(line, "no 'stopping' line after SIGTERM");
	free(line);
	cr_assert_eq(proxy_signal(p, SIGSTOP), 0);
	cr_assert(blast_wait_stopped(proxy_pid(p), HARNESS_TIMEOUT_MS));
	for (int i = 0; i < BLASTERS; i++)
		cr_assert_eq(blast_start(&bl[i], 0, 60000), 0);
	cr_assert(blast_wait_blocked(bl, BLASTERS, HARNESS_TIMEOUT_MS));
	/* resume a little before shutdown_timeout: the worker is then busy relaying what was
	 * queued (and what the senders keep sending) when the forced close comes */
	cr_assert_lt(harness_now_ms(), t_term + 700, "too slow to set up before the timeout");
	while (harness_now_ms() < t_term + 700)
		usleep(1000);
	cr_assert_eq(proxy_signal(p, SIGCONT), 0);
	code = proxy_wait(p, 15000);
	for (int i = 0; i < BLASTERS; i++)
		blast_stop(&bl[i]);
	sink_stop(&sink);
	cr_assert_eq(code, 0, "exit status %d after the forced close", code);
	line = alog_wait_find(proxy_access_log(p), "close", "shutdown", 1000);
	cr_assert(line, "no close=shutdown line");
	free(line);
	harness_pass();
}

/* Whether GET /healthz answers with status (200, 503). */
static bool healthz_is(int mport, const char *status)
{
	char *r = harness_http_get(mport, "/healthz", HARNESS_TIMEOUT_MS);
	bool is = r && strncmp(r + strcspn(r, " ") + 1, status, 3) == 0;
	free(r);
	return is;
}

/* Behind an L4 balancer: on SIGTERM /healthz turns 503 at once, but the listeners keep
 * accepting for shutdown_grace, until the balancer has seen it; only then does the drain
 * begin. */
Test(shutdown, grace_keeps_accepting_while_healthz_answers_503)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port, mport = harness_free_port();
	char global[160], buf[8];
	snprintf(global, sizeof(global),
		 "shutdown_grace = 5s\nshutdown_timeout = 5s\nmetrics = 127.0.0.1:%d\n", mport);
	struct proxy *p = start(b, global, &port);
	cr_assert(p);
	cr_assert(healthz_is(mport, "200"));

	int64_t t0 = harness_now_ms();
	cr_assert_eq(proxy_signal(p, SIGTERM), 0);
	bool draining = false;
	while (!draining && harness_now_ms() - t0 < HARNESS_TIMEOUT_MS)
		draining = healthz_is(mport, "503");
	cr_assert(draining, "/healthz did not turn 503 after SIGTERM");

	/* a client that comes while the balancer still sends is served */
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	cr_assert(c, "connect during shutdown_grace failed");
	cr_assert_eq(tlsc_write_all(c, "ping", 4, HARNESS_TIMEOUT_MS), 0);
	cr_assert_eq(tlsc_read(c, buf, sizeof(buf), HARNESS_TIMEOUT_MS), 4);
	tlsc_close(c);
	cr_assert_lt(harness_now_ms() - t0, 5000,
		     "served after the grace: the test proves nothing");
	cr_assert(proxy_running(p));

	/* then the listeners close and, with nothing open, it exits */
	cr_assert_eq(proxy_wait(p, 5000 + HARNESS_TIMEOUT_MS), 0);
	cr_assert_geq(harness_now_ms() - t0, 4900, "exited before shutdown_grace was over");
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 1, 1000), 1);
	harness_pass();
}
