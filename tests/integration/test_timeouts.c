/* Bad and slow clients: garbage instead of a ClientHello, handshake and idle timeouts, and
 * the max_connections limit. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "expect.h"
#include "harness.h"

TestSuite(timeouts, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

static struct proxy *start(struct backend *b, const char *global_extra, const char *fe_extra,
			   int *port)
{
	return start_web(b, global_extra, fe_extra, port);
}

/* A blocking plain TCP connection to the proxy. */
static int raw_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(fd >= 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Waits up to timeout_ms for the peer to close fd (EOF or reset, discarding any bytes).
 * Returns the ms it took, or -1 if it stayed open. */
static int wait_closed(int fd, int timeout_ms)
{
	int64_t start = harness_now_ms(), deadline = start + timeout_ms;
	char buf[4096];

	for (;;) {
		int left = (int)(deadline - harness_now_ms());
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, left) != 1)
			return -1;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return (int)(harness_now_ms() - start);
	}
}

/* A full TLS echo exchange: the proxy still serves. */
static void expect_echo_works(int port)
{
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	char buf[16];

	cr_assert(c, "proxy no longer serves");
	cr_assert_eq(tlsc_write_all(c, "hello", 5, 5000), 0);
	cr_assert_eq(tlsc_read(c, buf, sizeof(buf), 5000), 5, "%s", tlsc_error(c));
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	tlsc_close(c);
}

static char *find_close(struct proxy *p, const char *reason)
{
	char *line = alog_wait_find(proxy_access_log(p), "close", reason, HARNESS_TIMEOUT_MS);

	cr_assert(line, "no access-log line with close=%s", reason);
	return line;
}

Test(timeouts, garbage_client_hello)
{
	static const char garbage[] = "GET / HTTP/1.1\r\nHost: demo.test\r\n\r\n";
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port, fd, ms;
	struct proxy *p = start(b, NULL, "handshake_timeout = 5s\n", &port);
	char err[512], *line;

	fd = raw_connect(port);
	cr_assert_eq(write(fd, garbage, sizeof(garbage) - 1), (ssize_t)sizeof(garbage) - 1);
	ms = wait_closed(fd, 4000);
	cr_assert(ms >= 0, "proxy kept a non-TLS client open");
	close(fd);
	line = find_close(p, "handshake_failed");
	cr_assert_eq(json_str(line, "error", err, sizeof(err)), 0, "no error field: %s", line);
	cr_assert_str_not_empty(err, "empty error: %s", line);
	free(line);
	cr_assert_eq(backend_accepted(b), 0, "a failed handshake reached the backend");
	expect_echo_works(port);
	harness_pass();
}

Test(timeouts, silent_client_handshake_timeout)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port, fd, ms;
	struct proxy *p = start(b, NULL, "handshake_timeout = 500ms\n", &port);
	char *line;

	fd = raw_connect(port);
	ms = wait_closed(fd, 5000);
	close(fd);
	cr_assert(ms >= 0, "silent client not closed within 5 s");
	cr_assert(ms >= 400, "closed after %d ms, before the 500 ms handshake_timeout", ms);
	line = find_close(p, "handshake_timeout");
	free(line);
	expect_echo_works(port);
	harness_pass();
}

Test(timeouts, idle_connection_closed)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port;
	struct proxy *p = start(b, NULL, "idle_timeout = 500ms\n", &port);
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	int64_t t0;
	char buf[16], *line;
	ssize_t n;

	cr_assert(c);
	cr_assert_eq(tlsc_write_all(c, "x", 1, 5000), 0);
	cr_assert_eq(tlsc_read(c, buf, sizeof(buf), 5000), 1);
	t0 = harness_now_ms();
	n = tlsc_read(c, buf, sizeof(buf), 5000);
	cr_assert_eq(n, 0, "idle connection not ended (read %zd: %s)", n, tlsc_error(c));
	cr_assert_geq(harness_now_ms() - t0, 400, "ended before idle_timeout");
	tlsc_close(c);
	line = find_close(p, "idle_timeout");
	cr_assert(backend_wait_idle(b, HARNESS_TIMEOUT_MS), "backend side left open");
	free(line);
	harness_pass();
}

Test(timeouts, active_connection_not_idle)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port, i;
	struct proxy *p = start(b, NULL, "idle_timeout = 500ms\n", &port);
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	char buf[16], *line;
	double bytes;

	cr_assert(c);
	/* One byte every 100 ms for 1.5 s: three idle_timeouts long, never idle. */
	for (i = 0; i < 15; i++) {
		int64_t next = harness_now_ms() + 100;

		cr_assert_eq(tlsc_write_all(c, "a", 1, 1000), 0, "write %d: %s", i, tlsc_error(c));
		cr_assert_eq(tlsc_read(c, buf, 1, 1000), 1, "read %d: %s", i, tlsc_error(c));
		while (harness_now_ms() < next)
			usleep(10000);
	}
	cr_assert_eq(tlsc_shutdown(c), 0);
	cr_assert_eq(tlsc_read(c, buf, sizeof(buf), 5000), 0);
	tlsc_close(c);
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 1, HARNESS_TIMEOUT_MS), 1);
	line = alog_line(proxy_access_log(p), 0);
	cr_assert_eq(json_str(line, "close", buf, sizeof(buf)), 0, "%s", line);
	cr_assert_str_eq(buf, "client_eof", "%s", line);
	cr_assert_eq(json_num(line, "bytes_in", &bytes), 0, "%s", line);
	cr_assert_eq(bytes, 15, "%s", line);
	free(line);
	harness_pass();
}

Test(timeouts, max_connections_pauses_accepting)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port;
	struct proxy *p = start(b, "workers = 2\nmax_connections = 2\n", NULL, &port);
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c1 = tlsc_connect("127.0.0.1", port, &o);
	struct tlsc *c2 = tlsc_connect("127.0.0.1", port, &o);
	struct tlsc *c3;
	char buf[16];

	cr_assert(c1 && c2);
	cr_assert(backend_wait_accepted(b, 2, HARNESS_TIMEOUT_MS));
	c3 = tlsc_open("127.0.0.1", port, &o);
	cr_assert(c3, "third TCP connect failed (the kernel backlog should take it)");
	cr_assert_eq(tlsc_handshake(c3, 800), 0,
		     "third handshake completed (or failed: %s) with 2 open", tlsc_error(c3));
	cr_assert_eq(tlsc_shutdown(c1), 0);
	cr_assert_eq(tlsc_read(c1, buf, sizeof(buf), 5000), 0);
	tlsc_close(c1);
	cr_assert_eq(tlsc_handshake(c3, 5000), 1, "third client not served after one closed: %s",
		     tlsc_error(c3));
	cr_assert_eq(tlsc_write_all(c3, "abc", 3, 5000), 0);
	cr_assert_eq(tlsc_read(c3, buf, sizeof(buf), 5000), 3);
	cr_assert_eq(alog_count(proxy_access_log(p), "close", "handshake_failed"), 0);
	tlsc_close(c2);
	tlsc_close(c3);
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 3, HARNESS_TIMEOUT_MS), 3,
		     "connections not all logged after the clients left");
	cr_assert_eq(proxy_stop(p, 5000), 0, "no clean exit after every client left");
	harness_pass();
}
