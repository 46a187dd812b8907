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
