/* The backend core (see bcore.h): one connection state machine per mode, on one epoll loop. */
#include "bcore.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#define BCONN_BUF 65536

struct bconn {
	int fd;
	unsigned char *out; /* bytes waiting to be written */
	size_t outlen, outoff;
	uint64_t src_sent; /* SOURCE/RESET: pattern bytes queued so far */
	bool rd_eof, wr_done, replied, finished;
	EVP_MD_CTX *md; /* hash of what was read */
	uint64_t nin;
	char req[8192]; /* HELLO request */
	size_t reqlen;
	size_t idx;     /* its place in core->conns */
	uint32_t armed; /* the epoll events it is registered for */
};

void bcore_pattern(uint64_t offset, void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		uint64_t x = offset + i;

		p[i] = (unsigned char)((x * 131u) ^ (x >> 8) ^ (x >> 16) ^ (x >> 24));
	}
}

void bcore_hex32(const unsigned char *md, char out[65])
{
	static const char hx[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[64] = '\0';
}

static void sha_final_hex(EVP_MD_CTX *md, char out[65])
{
	unsigned char d[32];
	unsigned int dl = sizeof(d);

	EVP_DigestFinal_ex(md, d, &dl);
	bcore_hex32(d, out);
}

static void bstat_add(struct bcore *b, unsigned *ctr, int delta)
{
	pthread_mutex_lock(&b->mu);
	*ctr += delta;
	pthread_mutex_unlock(&b->mu);
}

static void bstat_bytes(struct bcore *b, uint64_t *ctr, uint64_t n)
{
	pthread_mutex_lock(&b->mu);
	*ctr += n;
	pthread_mutex_unlock(&b->mu);
}

/* Takes c out of the epoll set ep and frees it. The explicit removal matters: closing the
 * socket removes it only once no other descriptor refers to it, and a child forked by the test
 * (proxy_start, harness_run) holds a copy of every socket until its close_range, so a closed
 * but still registered socket would go on reporting events that name the freed c. */
static void bconn_free(struct bcore *b, int ep, struct bconn *c)
{
	char hex[65];

	if (c->md) {
		sha_final_hex(c->md, hex);
		pthread_mutex_lock(&b->mu);
		b->st.last_in = c->nin;
		memcpy(b->st.last_sha, hex, sizeof(hex));
		pthread_mutex_unlock(&b->mu);
		EVP_MD_CTX_free(c->md);
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	free(c);
	bstat_add(b, &b->st.active, -1);
}

static bool bconn_wants_read(const struct bcore *b, const struct bconn *c)
{
	if (c->rd_eof)
		return false;
	switch (b->mode) {
	case BACKEND_ECHO:
		return c->outoff == c->outlen;
	case BACKEND_HELLO:
		return !c->replied;
	case BACKEND_SINK:
		return !c->replied;
	default:
		return true;
	}
}

static bool bconn_wants_write(const struct bcore *b, const struct bconn *c)
{
	if (c->outoff < c->outlen)
		return true;
	if (b->mode == BACKEND_RESET)
		return c->nin > 0 && c->src_sent < b->bytes;
	return b->mode == BACKEND_SOURCE && c->src_sent < b->bytes;
}

static void bconn_reply(struct bconn *c, const char *data, size_t len)
{
	if (len > BCONN_BUF)
		len = BCONN_BUF;
	memcpy(c->out, data, len);
	c->outlen = len;
	c->outoff = 0;
	c->replied = true;
}

static void bconn_hello_reply(struct bcore *b, struct bconn *c)
{
	char body[300], resp[600];
	int bl = snprintf(body, sizeof(body), "hello from %.255s\n", b->name);
	int rl = snprintf(resp, sizeof(resp),
			  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
			  "Connection: close\r\n\r\n%s",
			  bl, body);

	bconn_reply(c, resp, (size_t)rl);
}

/* Consumes n freshly read bytes at buf according to the mode. */
static void bconn_consume(struct bcore *b, struct bconn *c, const unsigned char *buf, size_t n)
{
	c->nin += n;
	if (c->md)
		EVP_DigestUpdate(c->md, buf, n);
	if (b->mode == BACKEND_HELLO) {
		size_t k = n < sizeof(c->req) - 1 - c->reqlen ? n : sizeof(c->req) - 1 - c->reqlen;

		memcpy(c->req + c->reqlen, buf, k);
		c->reqlen += k;
		c->req[c->reqlen] = '\0';
		if (strstr(c->req, "\r\n\r\n") || c->reqlen == sizeof(c->req) - 1)
			bconn_hello_reply(b, c);
	}
}

static void bconn_read(struct bcore *b, struct bconn *c)
{
	unsigned char scratch[16384];
	unsigned char *dst = b->mode == BACKEND_ECHO ? c->out : scratch;
	size_t cap = b->mode == BACKEND_ECHO ? BCONN_BUF : sizeof(scratch);
	ssize_t n = read(c->fd, dst, cap);

	if (n > 0) {
		bstat_bytes(b, &b->st.bytes_in, (uint64_t)n);
		if (b->mode == BACKEND_ECHO) {
			c->outlen = (size_t)n;
			c->outoff = 0;
		}
		bconn_consume(b, c, dst, (size_t)n);
	} else if (n == 0) {
		c->rd_eof = true;
		bstat_add(b, &b->st.eofs, 1);
	} else if (errno != EAGAIN && errno != EINTR) {
		c->finished = true; /* reset by the peer */
	}
}

static void bconn_write(struct bcore *b, struct bconn *c)
{
	ssize_t n;

	if (c->outoff == c->outlen && c->src_sent < b->bytes &&
	    (b->mode == BACKEND_SOURCE || b->mode == BACKEND_RESET)) {
		uint64_t left = b->bytes - c->src_sent;
		size_t k = left < BCONN_BUF ? (size_t)left : BCONN_BUF;

		bcore_pattern(c->src_sent, c->out, k);
		c->outlen = k;
		c->outoff = 0;
		c->src_sent += k;
	}
	if (c->outoff == c->outlen)
		return;
	n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
	if (n > 0) {
		c->outoff += (size_t)n;
		bstat_bytes(b, &b->st.bytes_out, (uint64_t)n);
	} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
		c->finished = true;
	}
}

/* Moves a connection to its next state once its current work is done. */
static void bconn_advance(struct bcore *b, struct bconn *c)
{
	bool drained = c->outoff == c->outlen && !bconn_wants_write(b, c);

	switch (b->mode) {
	case BACKEND_HELLO:
		if (c->rd_eof && !c->replied)
			bconn_hello_reply(b, c);
		else if (c->replied && drained)
			c->finished = true;
		break;
	case BACKEND_SINK:
		if (c->rd_eof && !c->replied) {
			char hex[66];

			sha_final_hex(c->md, hex);
			pthread_mutex_lock(&b->mu);
			memcpy(b->st.last_sha, hex, 65);
			b->st.last_in = c->nin;
			pthread_mutex_unlock(&b->mu);
			EVP_MD_CTX_free(c->md);
			c->md = NULL;
			hex[64] = '\n';
			bconn_reply(c, hex, 65);
		} else if (c->replied && drained) {
			c->finished = true;
		}
		break;
	case BACKEND_RESET:
		if (c->nin > 0 && drained) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };

			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			c->finished = true;
		}
		break;
	case BACKEND_SILENT:
		c->finished = c->finished || c->rd_eof;
		break;
	default: /* ECHO, SOURCE: half-close aware */
		if (drained && !c->wr_done && (c->rd_eof || b->mode == BACKEND_SOURCE)) {
			shutdown(c->fd, SHUT_WR);
			c->wr_done = true;
		}
		if (c->wr_done && c->rd_eof)
			c->finished = true;
	}
}

static uint32_t bconn_events(const struct bcore *b, const struct bconn *c)
{
	uint32_t ev = 0;

	if (bconn_wants_read(b, c))
		ev |= EPOLLIN;
	if (bconn_wants_write(b, c))
		ev |= EPOLLOUT;
	return ev;
}

/* Takes a freshly accepted socket into the loop; closes it if it cannot. */
static void bconn_add(struct bcore *b, int ep, int fd)
{
	struct bconn *c = calloc(1, sizeof(*c));
	struct bconn **n = realloc(b->conns, (b->nconns + 1) * sizeof(*n));
	struct epoll_event ev;

	if (n)
		b->conns = n;
	if (!c || !n || !(c->out = malloc(BCONN_BUF)))
		goto drop;
	c->fd = fd;
	if (b->mode != BACKEND_ECHO && b->mode != BACKEND_HELLO) {
		c->md = EVP_MD_CTX_new();
		if (!c->md || !EVP_DigestInit_ex(c->md, EVP_sha256(), NULL))
			goto drop;
	}
	c->armed = bconn_events(b, c);
	ev = (struct epoll_event){ .events = c->armed, .data.ptr = c };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		goto drop;
	c->idx = b->nconns;
	b->conns[b->nconns++] = c;
	pthread_mutex_lock(&b->mu);
	b->st.accepted++;
	b->st.active++;
	pthread_mutex_unlock(&b->mu);
	return;
drop:
	if (c) {
		EVP_MD_CTX_free(c->md);
		free(c->out);
	}
	free(c);
	close(fd);
}

static void bconn_accept(struct bcore *b, int ep, int lfd)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		bconn_add(b, ep, fd);
	}
}

/* One readiness report for c: read, write, then the next state; the connection is closed
 * and dropped once it is finished, else registered for what it waits for now. */
static void bconn_step(struct bcore *b, int ep, struct bconn *c, uint32_t revents)
{
	if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && bconn_wants_read(b, c))
		bconn_read(b, c);
	if (!c->finished && (revents & (EPOLLOUT | EPOLLERR)) && bconn_wants_write(b, c))
		bconn_write(b, c);
	if (!c->finished)
		bconn_advance(b, c);
	if (c->finished) {
		b->conns[c->idx] = b->conns[--b->nconns];
		b->conns[c->idx]->idx = c->idx;
		bconn_free(b, ep, c);
		return;
	}
	if (bconn_events(b, c) != c->armed) {
		struct epoll_event ev = { .events = bconn_events(b, c), .data.ptr = c };

		if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
			c->armed = ev.events;
	}
}

static int loop_add(int ep, int fd, void *mark)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = mark };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int bcore_run(struct bcore *b, int lfd, int stop_fd)
{
	static char listen_mark, stop_mark;
	struct epoll_event evs[64];
	int ep = epoll_create1(EPOLL_CLOEXEC), rc = -1;

	if (ep < 0)
		return -1;
	if (loop_add(ep, lfd, &listen_mark) != 0 || loop_add(ep, stop_fd, &stop_mark) != 0)
		goto out;
	for (;;) {
		int i, n = epoll_wait(ep, evs, 64, -1);

		if (n < 0 && errno != EINTR)
			goto out;
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == &stop_mark) {
				rc = 0;
				goto out;
			}
			if (evs[i].data.ptr == &listen_mark)
				bconn_accept(b, ep, lfd);
			else
				bconn_step(b, ep, evs[i].data.ptr, evs[i].events);
		}
	}
out:
	while (b->nconns > 0)
		bconn_free(b, ep, b->conns[--b->nconns]);
	close(ep);
	return rc;
}

void bcore_init(struct bcore *b, enum backend_mode mode, const char *name, uint64_t bytes)
{
	memset(b, 0, sizeof(*b));
	b->mode = mode;
	b->bytes = bytes;
	snprintf(b->name, sizeof(b->name), "%s", name ? name : "backend");
	pthread_mutex_init(&b->mu, NULL);
}

void bcore_finish(struct bcore *b)
{
	pthread_mutex_destroy(&b->mu);
	free(b->conns);
	b->conns = NULL;
}

void bcore_get_stats(struct bcore *b, struct backend_stats *out)
{
	pthread_mutex_lock(&b->mu);
	*out = b->st;
	pthread_mutex_unlock(&b->mu);
}
