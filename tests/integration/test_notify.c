/* systemd integration through the real binary, without systemd: the test binds a datagram
 * socket and names it in NOTIFY_SOCKET, then reads what the proxy reports (READY=1,
 * RELOADING=1 with MONOTONIC_USEC, STOPPING=1, STATUS=); and it hands the proxy a listening
 * socket as socket activation does (descriptor 3, LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES). */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "harness.h"

#define REQ "GET / HTTP/1.1\r\nHost: demo.test\r\n\r\n"

TestSuite(notify, .init = harness_setup, .fini = harness_teardown, .timeout = 60);

/* The datagram socket the proxy notifies, named in NOTIFY_SOCKET for the processes this
 * test starts. */
static int notify_listen(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = harness_path("notify.sock");
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_lt(strlen(path), sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
	cr_assert_eq(setenv("NOTIFY_SOCKET", path, 1), 0);
	return fd;
}

/* The next datagram (malloc'd, NUL-terminated), NULL at the deadline. */
static char *notify_next(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[2048];

	if (poll(&p, 1, timeout_ms) <= 0)
		return NULL;
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

/* Datagrams until one contains needle (malloc'd); the STATUS-only ones in between are
 * skipped. NULL at the deadline. */
static char *notify_wait(int fd, const char *needle)
{
	int64_t end = harness_now_ms() + HARNESS_TIMEOUT_MS;

	while (harness_now_ms() < end) {
		char *m = notify_next(fd, (int)(end - harness_now_ms()));
		if (!m)
			return NULL;
		if (strstr(m, needle))
			return m;
		cr_assert(strncmp(m, "STATUS=", 7) == 0, "unexpected notification '%s' before '%s'",
			  m, needle);
		free(m);
	}
	return NULL;
}

static const char *write_ini(int port, const char *backend, const char *extra)
{
	struct harness_cert crt;
	char backends[256];

	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	snprintf(backends, sizeof(backends), "[backend app]\nserver = %s\ncheck = none\n", backend);
	return harness_config_web("n.ini", port, &crt, extra ? extra : "workers = 2\n", NULL,
				  backends);
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

Test(notify, ready_reloading_stopping_and_status)
{
	struct backend *b = backend_start(BACKEND_HELLO, 0, "a", 0);
	int port = harness_free_port();
	int nfd = notify_listen();
	char extra[1200];

	snprintf(extra, sizeof(extra), "workers = 2\ncontrol = %s\n", harness_path("c.sock"));
	const char *ini = write_ini(port, backend_addr(b), extra);
	struct proxy *p = proxy_start(ini, 0);
	cr_assert(p);
	char *m = notify_wait(nfd, "READY=1");
	cr_assert(m, "no READY=1");
	cr_assert(strstr(m, "STATUS=serving; 0 connections, generation 1"), "%s", m);
	free(m);
	/* READY comes once listening: a connect succeeds right away */
	cr_assert(harness_wait_port("127.0.0.1", port, 1000));

	int64_t before = mono_us();
	cr_assert_eq(proxy_signal(p, SIGHUP), 0);
	m = notify_wait(nfd, "RELOADING=1");
	int64_t after = mono_us();
	cr_assert(m, "no RELOADING=1");
	const char *at = strstr(m, "MONOTONIC_USEC=");
	cr_assert(at, "no MONOTONIC_USEC in '%s'", m);
	long long us = atoll(at + 15);
	cr_assert(us >= before && us <= after, "MONOTONIC_USEC %lld not in [%lld, %lld]", us,
		  (long long)before, (long long)after);
	free(m);
	m = notify_wait(nfd, "READY=1");
	cr_assert(m && strstr(m, "generation 2"), "%s", m);
	free(m);

	/* a reload that fails still ends with READY=1, and says so */
	harness_write_file("n.ini", "[global]\ncontrol = %s\n[frontend x]\nlisten = nowhere\n",
			   harness_path("c.sock"));
	free(ctl_cmd(harness_path("c.sock"), "reload"));
	m = notify_wait(nfd, "RELOADING=1");
	cr_assert(m);
	free(m);
	m = notify_wait(nfd, "READY=1");
	cr_assert(m && strstr(m, "STATUS=reload failed; "), "%s", m);
	free(m);

	cr_assert_eq(proxy_signal(p, SIGTERM), 0);
	m = notify_wait(nfd, "STOPPING=1");
	cr_assert(m && strstr(m, "STATUS=draining; "), "%s", m);
	free(m);
	cr_assert_eq(proxy_wait(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

/* Starts the proxy with lfd as descriptor 3 and the LISTEN_* variables for it. */
static pid_t spawn_activated(const char *ini, int lfd, const char *names, const char *out)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid > 0)
		return pid;
	int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fo < 0 || dup2(fo, 1) < 0 || dup2(fo, 2) < 0 || dup2(lfd, 3) < 0)
		_exit(127);
	close_range(4, ~0u, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	char spid[32];
	snprintf(spid, sizeof(spid), "%d", (int)getpid());
	setenv("LISTEN_PID", spid, 1);
	setenv("LISTEN_FDS", "1", 1);
	setenv("LISTEN_FDNAMES", names, 1);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execl(harness_tlsplice_bin(), harness_tlsplice_bin(), "-c", ini, (char *)NULL);
	_exit(127);
}

/* A listening socket on 127.0.0.1:port, without SO_REUSEPORT: the proxy cannot bind beside
 * it, so it serves only if it takes this one. */
static int plain_listener(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
	cr_assert_eq(listen(fd, 128), 0);
	return fd;
}

static int stop_child(pid_t pid)
{
	int st;

	kill(pid, SIGTERM);
	for (int i = 0; i < 1000; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		nanosleep(&(struct timespec){ 0, 10 * 1000000L }, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

Test(notify, socket_activation_serves_the_passed_socket)
{
	struct backend *b = backend_start(BACKEND_HELLO, 0, "a", 0);
	struct tlsc_opts o = { .sni = "demo.test" };
	int port = harness_free_port();
	int nfd = notify_listen();
	const char *ini = write_ini(port, backend_addr(b), NULL);
	int lfd = plain_listener(port);

	/* connected before the proxy runs: it waits in the passed socket's backlog */
	struct tlsc *early = tlsc_open("127.0.0.1", port, &o);
	cr_assert(early);
	const char *out = harness_path("proxy.out");
	pid_t pid = spawn_activated(ini, lfd, "web", out);
	close(lfd);
	char *m = notify_wait(nfd, "READY=1");
	cr_assert(m, "the proxy did not get ready: %s", harness_read_file(out, NULL));
	free(m);
	int r = 0;
	for (int i = 0; i < 100 && r == 0; i++)
		r = tlsc_handshake(early, 100);
	cr_assert_eq(r, 1, "the connection queued before the start was lost: %s",
		     tlsc_error(early));
	char buf[256];
	cr_assert_eq(tlsc_write_all(early, REQ, sizeof(REQ) - 1, 3000), 0);
	ssize_t n = tlsc_read_all(early, buf, sizeof(buf) - 1, 3000);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	cr_assert(strstr(buf, "hello from a"), "%s", buf);
	tlsc_close(early);
	for (int i = 0; i < 4; i++) {
		struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
		cr_assert(c, "connection %d through the passed socket failed", i);
		tlsc_close(c);
	}
	char want[128];
	snprintf(want, sizeof(want),
		 "listen 127.0.0.1:%d: socket passed by the service manager, "
		 "named web",
		 port);
	char *log = harness_read_file(out, NULL);
	cr_assert(log && strstr(log, want), "no '%s' in:\n%s", want, log);
	free(log);
	cr_assert_eq(stop_child(pid), 0);
	harness_pass();
}

Test(notify, passed_socket_matching_no_listen_line_is_closed)
{
	struct backend *b = backend_start(BACKEND_HELLO, 0, "a", 0);
	int port = harness_free_port(), other = harness_free_port();
	int nfd = notify_listen();
	const char *ini = write_ini(port, backend_addr(b), NULL);
	int lfd = plain_listener(other);
	const char *out = harness_path("proxy.out");

	pid_t pid = spawn_activated(ini, lfd, "stray", out);
	close(lfd);
	char *m = notify_wait(nfd, "READY=1");
	cr_assert(m);
	free(m);
	/* its own socket serves; the stray one is gone */
	cr_assert(harness_wait_port("127.0.0.1", port, 1000));
	cr_assert(harness_wait_port_closed("127.0.0.1", other, 3000));
	char *log = harness_read_file(out, NULL);
	cr_assert(log && strstr(log, "matches no listen line; closed"), "%s", log);
	free(log);
	cr_assert_eq(stop_child(pid), 0);
	harness_pass();
}

/* An upgrade: MAINPID= names the new process, which reports READY=1 itself, and the old
 * one, draining, never says STOPPING=1 (the service goes on). */
Test(notify, upgrade_reports_mainpid_and_no_stopping)
{
	struct backend *b = backend_start(BACKEND_HELLO, 0, "a", 0);
	int port = harness_free_port();
	int nfd = notify_listen();
	char extra[1200], want[64];

	prctl(PR_SET_CHILD_SUBREAPER, 1); /* the new process becomes ours to end */
	snprintf(extra, sizeof(extra), "workers = 2\ncontrol = %s\n", harness_path("c.sock"));
	struct proxy *p = proxy_start(write_ini(port, backend_addr(b), extra), 0);
	cr_assert(p);
	free(notify_wait(nfd, "READY=1"));
	char *ans = ctl_cmd(harness_path("c.sock"), "upgrade");
	int pid = 0;
	cr_assert(ans && sscanf(ans, "ok: pid %d serves;", &pid) == 1, "%s", ans);
	free(ans);
	cr_assert_eq(proxy_wait(p, HARNESS_TIMEOUT_MS), 0, "the old process did not exit");
	/* everything both sent until the old one exited */
	bool mainpid = false, ready = false;
	snprintf(want, sizeof(want), "MAINPID=%d", pid);
	for (char *m; (m = notify_next(nfd, 200));) {
		cr_assert(!strstr(m, "STOPPING=1"), "STOPPING=1 during an upgrade: %s", m);
		mainpid = mainpid || strstr(m, want);
		ready = ready || strstr(m, "READY=1");
		free(m);
	}
	cr_assert(mainpid, "no %s", want);
	cr_assert(ready, "no READY=1 from the new process");
	kill(pid, SIGTERM);
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	harness_pass();
}
