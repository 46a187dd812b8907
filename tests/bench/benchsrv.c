/*
 * tlsplice-benchsrv: single-threaded epoll TCP backend for benchmarks.
 *
 *   echo    write back everything read; stop reading while a write is pending
 *   sink    read and discard
 *   source  write a pattern until the peer closes (or -n bytes per connection)
 *
 * Memory per idle connection is one small struct: the read buffer is shared and
 * only bytes the peer could not take yet are copied aside.
 *
 * Why the benchmark does not run the tests' backend core (tests/harness/bcore.c):
 * this server shares the load core with the load generator, so its cost per byte is
 * part of every figure. It is edge-triggered and drains each socket to EAGAIN
 * through one 256 KiB buffer (no epoll_ctl per read, no buffer per connection: the
 * idle phase holds thousands of connections), sets TCP_NODELAY for the rr latencies,
 * raises RLIMIT_NOFILE and stops itself after -d seconds. It needs only libc, so
 * scripts/bench.sh can still build it alone with cc when the test tree does not build.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUFSZ (256 * 1024)
#define PATLEN 65521u

enum mode { B_ECHO, B_SINK, B_SOURCE };

struct bconn {
	int fd;
	unsigned char *pend; /* echo: bytes not yet written back */
	size_t pend_len, pend_off;
	uint64_t out; /* source: bytes written */
};

static enum mode mode = B_ECHO;
static uint64_t source_limit;
static unsigned char buf[BUFSZ];
static unsigned char pat[PATLEN + BUFSZ];
static volatile sig_atomic_t stop_flag;
static uint64_t accepted, closed_n;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void bconn_close(struct bconn *c)
{
	close(c->fd);
	free(c->pend);
	free(c);
	closed_n++;
}

/* Writes what is pending; returns 1 when all is out, 0 on EAGAIN, -1 on error. */
static int flush_pending(struct bconn *c)
{
	while (c->pend_off < c->pend_len) {
		ssize_t w = write(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off);
		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		c->pend_off += (size_t)w;
	}
	free(c->pend);
	c->pend = NULL;
	c->pend_len = c->pend_off = 0;
	return 1;
}

/* Echo: returns -1 when the connection should be closed. */
static int do_echo(struct bconn *c)
{
	int f = flush_pending(c);
	if (f <= 0)
		return f;
	for (;;) {
		ssize_t r = read(c->fd, buf, sizeof buf), w;
		if (r == 0)
			return -1;
		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
		w = write(c->fd, buf, (size_t)r);
		if (w < 0 && errno != EAGAIN)
			return -1;
		if (w < 0)
			w = 0;
		if (w < r) {
			c->pend_len = (size_t)(r - w);
			c->pend = malloc(c->pend_len);
			if (!c->pend)
				return -1;
			memcpy(c->pend, buf + w, c->pend_len);
			return 0;
		}
	}
}

static int drain(struct bconn *c)
{
	for (;;) {
		ssize_t r = read(c->fd, buf, sizeof buf);
		if (r == 0)
			return -1;
		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
	}
}

static int do_source(struct bconn *c)
{
	if (drain(c) < 0)
		return -1;
	while (source_limit == 0 || c->out < source_limit) {
		size_t len = BUFSZ;
		if (source_limit && source_limit - c->out < len)
			len = (size_t)(source_limit - c->out);
		ssize_t w = write(c->fd, pat + c->out % PATLEN, len);
		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		c->out += (uint64_t)w;
	}
	shutdown(c->fd, SHUT_WR);
	return 0;
}

static void accept_all(int ep, int lfd)
{
	for (int i = 0; i < 1024; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		if (fd < 0)
			return;
		struct bconn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
					  .data.ptr = c };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			bconn_close(c);
			continue;
		}
		accepted++;
	}
}

static int listen_on(const char *hostport)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
	int fd, one = 1;

	if (!colon || (size_t)(colon - hostport) >= sizeof host) {
		fprintf(stderr, "benchsrv: bad address '%s'\n", hostport);
		return -1;
	}
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
		fprintf(stderr, "benchsrv: cannot resolve '%s'\n", hostport);
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
		fprintf(stderr, "benchsrv: %s: %s\n", hostport, strerror(errno));
		freeaddrinfo(ai);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static int handle(struct bconn *c)
{
	switch (mode) {
	case B_ECHO:
		return do_echo(c);
	case B_SINK:
		return drain(c);
	case B_SOURCE:
		return do_source(c);
	}
	return -1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: tlsplice-benchsrv -l HOST:PORT [-m echo|sink|source] "
		   "[-n BYTES] [-d MAXSECS]\n");
}

static int parse_args(int argc, char **argv, const char **addr, double *maxsecs)
{
	int ch;
	while ((ch = getopt(argc, argv, "l:m:n:d:h")) != -1) {
		switch (ch) {
		case 'l':
			*addr = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "echo") == 0)
				mode = B_ECHO;
			else if (strcmp(optarg, "sink") == 0)
				mode = B_SINK;
			else if (strcmp(optarg, "source") == 0)
				mode = B_SOURCE;
			else
				return -1;
			break;
		case 'n':
			source_limit = strtoull(optarg, NULL, 10);
			break;
		case 'd':
			*maxsecs = strtod(optarg, NULL);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	return *addr ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *addr = NULL;
	double maxsecs = 3600.0;
	struct sigaction sa = { .sa_handler = on_signal };
	struct epoll_event evs[256];
	struct rlimit rl;
	struct timespec t0, t;

	if (parse_args(argc, argv, &addr, &maxsecs) < 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (size_t i = 0; i < sizeof pat; i++)
		pat[i] = (unsigned char)((i % PATLEN) * 131u + 7u);
	int lfd = listen_on(addr), ep = epoll_create1(EPOLL_CLOEXEC);
	if (lfd < 0 || ep < 0)
		return 1;
	struct epoll_event lev = { .events = EPOLLIN | EPOLLET, .data.ptr = NULL };
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!stop_flag) {
		int n = epoll_wait(ep, evs, 256, 500);
		for (int i = 0; i < n; i++) {
			struct bconn *c = evs[i].data.ptr;
			if (!c)
				accept_all(ep, lfd);
			else if (handle(c) < 0)
				bconn_close(c);
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((double)(t.tv_sec - t0.tv_sec) > maxsecs)
			break;
	}
	fprintf(stderr, "benchsrv: accepted=%" PRIu64 " closed=%" PRIu64 "\n", accepted, closed_n);
	return 0;
}
