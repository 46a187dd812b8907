/* The harness the other suites share, checked on its own: a fault in it shows elsewhere only
 * as a rare crash of whichever test happened to meet it. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TestSuite(harness, .init = harness_setup, .fini = harness_teardown, .timeout = 60);

static int tcp_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Reads until EOF (bounded): the bytes read, or -1. */
static ssize_t read_to_eof(int fd, char *buf, size_t cap)
{
	size_t got = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, HARNESS_TIMEOUT_MS) != 1)
			return -1;
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0)
			return -1;
		if (n == 0)
			return (ssize_t)got;
		got += (size_t)n;
		if (got == cap)
			return -1;
	}
}

static void echo_once(int port, const char *msg)
{
	char buf[64];
	int fd = tcp_connect(port);

	cr_assert_eq(write(fd, msg, strlen(msg)), (ssize_t)strlen(msg));
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	ssize_t n = read_to_eof(fd, buf, sizeof(buf));
	cr_assert_eq(n, (ssize_t)strlen(msg));
	cr_assert_eq(memcmp(buf, msg, (size_t)n), 0);
	close(fd);
}

/* Each proxy_start and harness_run forks while backend threads serve: until the child's
 * close_range it holds a copy of every backend socket, so a socket the backend closes in that
 * window is still open, and still in the backend's epoll set unless taken out of it. Its
 * next event then named a connection already freed (a crash of the test, "double free or
 * corruption", in about one clean run in five under load). Here the child holds them for as
 * long as the test needs. */
Test(harness, backend_survives_a_forked_child_holding_its_sockets)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, "a", 0);
	int hold[2];

	cr_assert(b);
	cr_assert_eq(pipe(hold), 0);
	int fd = tcp_connect(backend_port(b));
	cr_assert(backend_wait_accepted(b, 1, HARNESS_TIMEOUT_MS));
	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		char c;
		/* every descriptor stays open until the test writes, or ends (EOF) */
		close(hold[1]);
		(void)!read(hold[0], &c, 1);
		_exit(0);
	}
	/* the backend echoes, sees the end, shuts its side and closes the connection */
	char buf[64];
	cr_assert_eq(write(fd, "held", 4), 4);
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	cr_assert_eq(read_to_eof(fd, buf, sizeof(buf)), 4);
	close(fd);
	cr_assert(backend_wait_idle(b, HARNESS_TIMEOUT_MS));
	/* its loop goes round again, and more, while the child still holds the closed socket */
	for (int i = 0; i < 20; i++)
		echo_once(backend_port(b), "ping");
	cr_assert(backend_wait_idle(b, HARNESS_TIMEOUT_MS)); /* it frees each just after its FIN */
	struct backend_stats st;
	backend_get_stats(b, &st);
	cr_assert_eq(st.accepted, 21);
	cr_assert_eq(write(hold[1], "x", 1), 1);
	int status = -1;
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(hold[0]);
	close(hold[1]);
	harness_pass();
}

/* harness_free_port found a free port and let it go; the proxy bound it later. In between,
 * any socket bound to port 0 could take it (the hundred backends of a health test did: the
 * proxy could not listen, "Address already in use"), and so could a test running beside it.
 * The ports now lie outside the kernel's ephemeral range and come from a counter that the
 * test processes share. */
Test(harness, free_ports_lie_outside_the_ephemeral_range_and_no_two_tests_share_one)
{
	enum { N = 300 };
	int lo = 0, hi = 0, p[2], ports[2 * N];
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

	cr_assert(f);
	cr_assert_eq(fscanf(f, "%d %d", &lo, &hi), 2);
	fclose(f);
	cr_assert_eq(pipe(p), 0);
	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		/* another test process asking at the same time */
		for (int i = 0; i < N; i++) {
			int port = harness_free_port();
			if (write(p[1], &port, sizeof(port)) != (ssize_t)sizeof(port))
				_exit(1);
		}
		_exit(0);
	}
	close(p[1]);
	for (int i = 0; i < N; i++)
		ports[i] = harness_free_port();
	for (int i = N; i < 2 * N; i++)
		cr_assert_eq(read(p[0], &ports[i], sizeof(int)), (ssize_t)sizeof(int));
	int status = -1;
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(p[0]);
	for (int i = 0; i < 2 * N; i++) {
		cr_assert_gt(ports[i], 0);
		cr_assert(ports[i] < lo || ports[i] > hi, "port %d is in the ephemeral range %d-%d",
			  ports[i], lo, hi);
		for (int j = 0; j < i; j++)
			cr_assert_neq(ports[i], ports[j], "port %d handed out twice", ports[i]);
	}

	/* and a burst of listeners on port 0 leaves a port handed out free to bind */
	int port = harness_free_port(), fds[200];
	for (int i = 0; i < 200; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t sl = sizeof(sa);
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_geq(fds[i], 0);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		cr_assert_eq(bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
		cr_assert_eq(listen(fds[i], 1), 0);
		cr_assert_eq(getsockname(fds[i], (struct sockaddr *)&sa, &sl), 0);
		cr_assert_neq(ntohs(sa.sin_port), port);
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(lfd);
	for (int i = 0; i < 200; i++)
		close(fds[i]);
	harness_pass();
}
