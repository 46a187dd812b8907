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
