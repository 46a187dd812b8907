/* tlsplice-testbackend: plain TCP servers for demos and tests.
 *
 *   tlsplice-testbackend --listen HOST:PORT --mode hello|echo|sink|source [--name NAME] [--bytes N]
 *
 * hello:  reads a request up to "\r\n\r\n", answers an HTTP/1.1 200 with "hello from NAME\n".
 * echo:   echoes everything; on the peer's EOF finishes writing, then shuts down its write side.
 * sink:   reads to EOF, answers the hex SHA-256 of what it read plus "\n".
 * source: sends N pattern bytes, then closes.
 * One epoll loop, non-blocking sockets. Prints "listening on HOST:PORT" once bound; exits 0 on
 * SIGTERM/SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#define BUF_SIZE 65536
#define REQ_MAX 8192

enum mode { MODE_HELLO, MODE_ECHO, MODE_SINK, MODE_SOURCE };

struct opts {
	char host[256];
	char port[16];
	enum mode mode;
	const char *name;
	uint64_t bytes;
};

struct conn {
	int fd;
	unsigned char out[BUF_SIZE]; /* bytes waiting to be written */
	size_t outlen, outoff;
	uint64_t src_sent;
	bool rd_eof, replied, wr_done;
	EVP_MD_CTX *md;
	char req[REQ_MAX];
	size_t reqlen;
};

static const struct opts *g_opts;

static void usage(FILE *f)
{
	fprintf(f, "usage: tlsplice-testbackend --listen HOST:PORT --mode hello|echo|sink|source"
		   " [--name NAME] [--bytes N]\n");
}

/* Splits "HOST:PORT" or "[V6]:PORT". */
static int split_hostport(const char *s, struct opts *o)
{
	const char *colon = strrchr(s, ':');
	const char *h = s;
	size_t hl;

	if (!colon || !colon[1] || strlen(colon + 1) >= sizeof(o->port))
		return -1;
	hl = (size_t)(colon - s);
	if (*s == '[') {
		if (hl < 2 || s[hl - 1] != ']')
			return -1;
		h = s + 1;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(o->host))
		return -1;
	memcpy(o->host, h, hl);
	o->host[hl] = '\0';
	strcpy(o->port, colon + 1);
	return 0;
}

static int parse_mode(const char *s, enum mode *m)
{
	static const char *const names[] = { "hello", "echo", "sink", "source" };

	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*m = (enum mode)i;
			return 0;
		}
	}
	return -1;
}

/* Returns 0, or 2 after printing a usage error. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' }, { "mode", required_argument, NULL, 'm' },
		{ "name", required_argument, NULL, 'n' },   { "bytes", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	bool have_listen = false, have_mode = false;
	char *end;
	int c;

	o->name = "backend";
	while ((c = getopt_long(argc, argv, "l:m:n:b:h", longopts, NULL)) != -1) {
		if (c == 'l' && split_hostport(optarg, o) == 0)
			have_listen = true;
		else if (c == 'm' && parse_mode(optarg, &o->mode) == 0)
			have_mode = true;
		else if (c == 'n')
			o->name = optarg;
		else if (c == 'b' && (o->bytes = strtoull(optarg, &end, 10), *optarg && !*end))
			continue;
		else if (c == 'h')
			return usage(stdout), exit(0), 0;
		else
			return usage(stderr), 2;
	}
	if (!have_listen || !have_mode || optind != argc)
		return usage(stderr), 2;
	return 0;
}

static int listen_socket(const struct opts *o)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res;
	int fd, one = 1, rc;

	rc = getaddrinfo(o->host, o->port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "tlsplice-testbackend: %s:%s: %s\n", o->host, o->port,
			gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
			fprintf(stderr, "tlsplice-testbackend: bind %s:%s: %s\n", o->host, o->port,
				strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

/* The bound address as HOST:PORT (the real port when 0 was asked for). */
static void print_ready(int fd, const struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char port[16] = "?";

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, port, sizeof(port), NI_NUMERICSERV);
	if (strchr(o->host, ':'))
		printf("listening on [%s]:%s\n", o->host, port);
	else
		printf("listening on %s:%s\n", o->host, port);
	fflush(stdout);
}

/* Byte i of the source stream; position-dependent so reordering shows up in a hash. */
static void fill_pattern(uint64_t offset, unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t x = offset + i;

		p[i] = (unsigned char)((x * 131u) ^ (x >> 8) ^ (x >> 16) ^ (x >> 24));
	}
}

static void set_reply(struct conn *c, const void *data, size_t len)
{
	if (len > sizeof(c->out))
		len = sizeof(c->out);
	memcpy(c->out, data, len);
	c->outlen = len;
	c->outoff = 0;
	c->replied = true;
}

static void hello_reply(struct conn *c)
{
	char body[300], resp[600];
	int bl = snprintf(body, sizeof(body), "hello from %.255s\n", g_opts->name);
	int rl = snprintf(resp, sizeof(resp),
			  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
			  "Connection: close\r\n\r\n%s",
			  bl, body);

	set_reply(c, resp, (size_t)rl);
}

static void sink_reply(struct conn *c)
{
	static const char hx[] = "0123456789abcdef";
	unsigned char d[32];
	unsigned int dl = sizeof(d);
	char hex[65];

	EVP_DigestFinal_ex(c->md, d, &dl);
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = hx[d[i] >> 4];
		hex[2 * i + 1] = hx[d[i] & 15];
	}
	hex[64] = '\n';
	set_reply(c, hex, sizeof(hex));
}

static bool wants_read(const struct conn *c)
{
	if (c->rd_eof)
		return false;
	if (g_opts->mode == MODE_ECHO)
		return c->outoff == c->outlen;
	if (g_opts->mode == MODE_SOURCE)
		return true; /* to notice the peer going away */
	return !c->replied;
}

static bool wants_write(const struct conn *c)
{
	return c->outoff < c->outlen || (g_opts->mode == MODE_SOURCE && c->src_sent < g_opts->bytes);
}

/* Reads once. Returns -1 when the connection must be dropped. */
static int conn_read(struct conn *c)
{
	unsigned char scratch[BUF_SIZE];
	unsigned char *dst = g_opts->mode == MODE_ECHO ? c->out : scratch;
	ssize_t n = read(c->fd, dst, BUF_SIZE);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0) {
		c->rd_eof = true;
		return 0;
	}
	if (g_opts->mode == MODE_ECHO) {
		c->outlen = (size_t)n;
		c->outoff = 0;
	} else if (g_opts->mode == MODE_SINK) {
		EVP_DigestUpdate(c->md, dst, (size_t)n);
	} else if (g_opts->mode == MODE_HELLO) {
		size_t room = sizeof(c->req) - 1 - c->reqlen;
		size_t k = (size_t)n < room ? (size_t)n : room;

		memcpy(c->req + c->reqlen, dst, k);
		c->reqlen += k;
		c->req[c->reqlen] = '\0';
		if (strstr(c->req, "\r\n\r\n") || c->reqlen == sizeof(c->req) - 1)
			hello_reply(c);
	}
	return 0;
}

static int conn_write(struct conn *c)
{
	ssize_t n;

	if (c->outoff == c->outlen && g_opts->mode == MODE_SOURCE && c->src_sent < g_opts->bytes) {
		uint64_t left = g_opts->bytes - c->src_sent;

		c->outlen = left < BUF_SIZE ? (size_t)left : BUF_SIZE;
		c->outoff = 0;
		fill_pattern(c->src_sent, c->out, c->outlen);
		c->src_sent += c->outlen;
	}
	if (c->outoff == c->outlen)
		return 0;
	n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	c->outoff += (size_t)n;
	return 0;
}

/* After I/O: 1 when the connection is complete and can be closed, else 0. */
static int conn_advance(struct conn *c)
{
	bool drained = !wants_write(c);

	switch (g_opts->mode) {
	case MODE_HELLO:
		if (c->rd_eof && !c->replied)
			hello_reply(c);
		return c->replied && !wants_write(c);
	case MODE_SINK:
		if (c->rd_eof && !c->replied)
			sink_reply(c);
		return c->replied && !wants_write(c);
	case MODE_SOURCE:
		return drained || c->rd_eof;
	default:
		if (c->rd_eof && drained && !c->wr_done) {
			shutdown(c->fd, SHUT_WR);
			c->wr_done = true;
		}
		return c->wr_done;
	}
}

static void conn_destroy(struct conn *c)
{
	if (!c)
		return;
	close(c->fd);
	EVP_MD_CTX_free(c->md);
	free(c);
}

static int conn_rearm(int ep, struct conn *c)
{
	struct epoll_event ev = { .data.ptr = c };

	ev.events = (wants_read(c) ? EPOLLIN : 0) | (wants_write(c) ? EPOLLOUT : 0);
	return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_event(int ep, struct conn *c, uint32_t events)
{
	int rc = 0;

	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && wants_read(c))
		rc = conn_read(c);
	if (rc == 0 && (events & (EPOLLOUT | EPOLLERR)) && wants_write(c))
		rc = conn_write(c);
	if (rc == 0 && conn_advance(c) == 0 && conn_rearm(ep, c) == 0)
		return;
	conn_destroy(c); /* closing removes it from the epoll set */
}

static void accept_all(int ep, int lfd)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev;
		struct conn *c;

		if (fd < 0)
			return;
		c = calloc(1, sizeof(*c));
		if (c && g_opts->mode == MODE_SINK) {
			c->md = EVP_MD_CTX_new();
			if (!c->md || !EVP_DigestInit_ex(c->md, EVP_sha256(), NULL))
				goto drop;
		}
		if (!c)
			goto drop;
		c->fd = fd;
		ev.data.ptr = c;
		ev.events = (wants_read(c) ? EPOLLIN : 0) | (wants_write(c) ? EPOLLOUT : 0);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0)
			continue;
drop:
		if (c)
			c->fd = fd;
		else
			close(fd);
		conn_destroy(c);
	}
}

/* Runs until SIGTERM/SIGINT. Open connections are dropped at exit. */
static int serve(int lfd, int sfd)
{
	static int lmark, smark;
	struct epoll_event evs[64];
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &lmark };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0)
		return 1;
	ev.data.ptr = &smark;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) != 0)
		return 1;
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);

		if (n < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &smark)
				return 0;
			if (evs[i].data.ptr == &lmark)
				accept_all(ep, lfd);
			else
				conn_event(ep, evs[i].data.ptr, evs[i].events);
		}
	}
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	sigset_t set;
	int lfd, sfd, rc;

	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc;
	g_opts = &o;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* Signals arrive through signalfd so the loop can finish cleanly. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0 || (sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0)
		return 1;
	lfd = listen_socket(&o);
	if (lfd < 0)
		return 1;
	print_ready(lfd, &o);
	rc = serve(lfd, sfd);
	close(lfd);
	close(sfd);
	return rc;
}
