/* Unix-socket servers (server = unix:/path): relay, weights with TCP servers, the PROXY header,
 * health checks and retries, and the name unix:/path in the log and the metrics. */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bcore.h"
#include "expect.h"
#include "harness.h"

TestSuite(unix_server, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

#define T HARNESS_TIMEOUT_MS

/* A backend core (bcore.h) serving a Unix socket in the test's folder on its own thread. */
struct ubackend {
	struct bcore core;
	char path[108];
	int lfd, stop[2];
	pthread_t th;
	bool running;
};

static int unix_listen(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 64) == 0,
		  "cannot listen on %s", path);
	return fd;
}

static void *ubackend_main(void *arg)
{
	struct ubackend *u = arg;
	bcore_run(&u->core, u->lfd, u->stop[0]);
	return NULL;
}

static void ubackend_start(struct ubackend *u, const char *name, enum backend_mode mode)
{
	memset(u, 0, sizeof(*u));
	const char *path = harness_path(name);
	cr_assert_lt(strlen(path), sizeof(u->path), "temp dir too deep for a socket path");
	snprintf(u->path, sizeof(u->path), "%s", path);
	bcore_init(&u->core, mode, name, 0);
	u->lfd = unix_listen(u->path);
	cr_assert_eq(pipe(u->stop), 0);
	cr_assert_eq(pthread_create(&u->th, NULL, ubackend_main, u), 0);
	u->running = true;
}

static void ubackend_stop(struct ubackend *u)
{
	if (!u->running)
		return;
	(void)!write(u->stop[1], "x", 1);
	pthread_join(u->th, NULL);
	close(u->lfd);
	close(u->stop[0]);
	close(u->stop[1]);
	bcore_finish(&u->core);
	u->running = false;
}

static unsigned ubackend_accepted(struct ubackend *u)
{
	struct backend_stats st;
	bcore_get_stats(&u->core, &st);
	return st.accepted;
}

static struct proxy *start(int port, const char *global, const char *fe, const char *be)
{
	struct harness_cert crt;
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	const char *ini = harness_config_web("u.ini", port, &crt, global, fe, be);
	cr_assert(ini);
	struct proxy *p = proxy_start(ini, port);
	cr_assert(p, "proxy did not start");
	return p;
}

static void echo(int port)
{
	struct tlsc_opts o = { .sni = "demo.test" };
	char buf[8];
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	cr_assert(c);
	cr_assert_eq(tlsc_write_all(c, "ping", 4, T), 0);
	cr_assert_eq(tlsc_read(c, buf, sizeof(buf), T), 4);
	cr_assert_eq(memcmp(buf, "ping", 4), 0);
	tlsc_close(c);
}

/* A Unix server of weight 2 beside a TCP server of weight 1: 9 connections give 6 and 3, the
 * log names each server as written, and so do the metrics. */
Test(unix_server, weighted_with_a_tcp_server_and_named_everywhere)
{
	struct ubackend u;
	char be[512], global[64], name[160], series[256];
	int port = harness_free_port(), mport = harness_free_port();
	ubackend_start(&u, "app.sock", BACKEND_ECHO);
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	snprintf(be, sizeof(be),
		 "[backend app]\nserver = unix:%s weight=2\nserver = %s\ncheck = none\n", u.path,
		 backend_addr(b));
	snprintf(global, sizeof(global), "metrics = 127.0.0.1:%d\n", mport);
	struct proxy *p = start(port, global, NULL, be);
	for (int i = 0; i < 9; i++)
		echo(port);
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 9, T), 9);
	snprintf(name, sizeof(name), "unix:%s", u.path);
	cr_assert_eq(alog_count(proxy_access_log(p), "server", name), 6);
	cr_assert_eq(alog_count(proxy_access_log(p), "server", backend_addr(b)), 3);
	cr_assert_eq(alog_count(proxy_access_log(p), "close", "client_eof"), 9);
	cr_assert_eq(ubackend_accepted(&u), 6);
	char *m = harness_http_get(mport, "/metrics", T);
	cr_assert(m);
	snprintf(series, sizeof(series),
		 "tlsplice_server_connections_total{backend=\"app\",server=\"%s\"}", name);
	cr_assert_eq(metrics_value(m, series), 6, "%s in:\n%s", series, m);
	free(m);
	cr_assert_eq(proxy_stop(p, T), 0);
	ubackend_stop(&u);
	harness_pass();
}

/* The PROXY header goes to a Unix server as to a TCP one: the client's TCP addresses. */
Test(unix_server, proxy_header_to_a_unix_server)
{
	char be[256], got[256], want[128];
	int port = harness_free_port();
	const char *path = harness_path("pp.sock");
	int lfd = unix_listen(path);
	snprintf(be, sizeof(be), "[backend app]\nserver = unix:%s\ncheck = none\n", path);
	struct proxy *p = start(port, NULL, "proxy_protocol = v1\n", be);
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	cr_assert(c);
	cr_assert_eq(tlsc_write_all(c, "ping", 4, T), 0);
	struct pollfd pf = { .fd = lfd, .events = POLLIN };
	cr_assert_eq(poll(&pf, 1, T), 1, "no connection on the Unix socket");
	int fd = accept(lfd, NULL, NULL);
	cr_assert(fd >= 0);
	size_t len = 0;
	pf.fd = fd;
	while (len < 4 || memcmp(got + len - 4, "ping", 4) != 0) {
		cr_assert_eq(poll(&pf, 1, T), 1, "the header and ping did not come");
		ssize_t n = read(fd, got + len, sizeof(got) - 1 - len);
		cr_assert_gt(n, 0);
		len += (size_t)n;
	}
	got[len] = '\0';
	snprintf(want, sizeof(want), "PROXY TCP4 127.0.0.1 127.0.0.1 %s %d\r\nping",
		 strrchr(tlsc_local_addr(c), ':') + 1, port);
	cr_assert_str_eq(got, want);
	close(fd);
	close(lfd);
	tlsc_close(c);
	cr_assert_eq(proxy_stop(p, T), 0);
	harness_pass();
}

/* Checks see a missing socket as down and one that appears as up again; meanwhile the TCP
 * server carries every connection. */
Test(unix_server, checks_and_retries)
{
	struct ubackend u;
	char be[512], global[64], series[256];
	int port = harness_free_port(), mport = harness_free_port();
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	const char *path = harness_path("late.sock");
	snprintf(be, sizeof(be),
		 "[backend app]\nserver = unix:%s\nserver = %s\ncheck = tcp\n"
		 "check_interval = 100ms\ncheck_rise = 1\ncheck_fall = 1\nretries = 1\n",
		 path, backend_addr(b));
	snprintf(global, sizeof(global), "metrics = 127.0.0.1:%d\n", mport);
	struct proxy *p = start(port, global, NULL, be);
	snprintf(series, sizeof(series), "tlsplice_server_up{backend=\"app\",server=\"unix:%s\"}",
		 path);
	double up = -1;
	for (int64_t end = harness_now_ms() + T; harness_now_ms() < end && up != 0;) {
		char *m = harness_http_get(mport, "/metrics", T);
		up = m ? metrics_value(m, series) : -1;
		free(m);
		if (up != 0)
			usleep(20000);
	}
	cr_assert_eq(up, 0, "the missing socket is not down");
	char name[160];
	snprintf(name, sizeof(name), "unix:%s", path);
	for (int i = 0; i < 4; i++)
		echo(port);
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 4, T), 4);
	cr_assert_eq(alog_count(proxy_access_log(p), "server", backend_addr(b)), 4);

	ubackend_start(&u, "late.sock", BACKEND_ECHO);
	for (int64_t end = harness_now_ms() + T; harness_now_ms() < end && up != 1;) {
		char *m = harness_http_get(mport, "/metrics", T);
		up = m ? metrics_value(m, series) : -1;
		free(m);
		if (up != 1)
			usleep(20000);
	}
	cr_assert_eq(up, 1, "the socket that appeared is not up");
	for (int i = 0; i < 4; i++)
		echo(port);
	/* checks connect too: the log, not the backend's count, says what clients did */
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 8, T), 8);
	cr_assert_eq(alog_count(proxy_access_log(p), "server", name), 2);
	cr_assert_eq(alog_count(proxy_access_log(p), "server", backend_addr(b)), 6);
	cr_assert_eq(proxy_stop(p, T), 0);
	ubackend_stop(&u);
	harness_pass();
}
