/* In-process backends: one poll thread per backend serving hello, echo, sink, source, reset
 * and silent connections (see harness.h). */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
};

struct backend {
	enum backend_mode mode;
	int port;
	char name[64];
	uint64_t bytes;
	char addr[32];
	int lfd;
	int wake[2];
	pthread_t th;
	bool running;
	pthread_mutex_t mu;
	struct backend_stats st;
	struct bconn **conns; /* owned by the thread */
	size_t nconns;
};

static void bstat_add(struct backend *b, unsigned *ctr, int delta)
{
	pthread_mutex_lock(&b->mu);
	*ctr += delta;
	pthread_mutex_unlock(&b->mu);
}

static void bstat_bytes(struct backend *b, uint64_t *ctr, uint64_t n)
{
	pthread_mutex_lock(&b->mu);
	*ctr += n;
	pthread_mutex_unlock(&b->mu);
}

static void bconn_free(struct backend *b, struct bconn *c)
{
	char hex[65];

	if (c->md) {
		harness_sha_final_hex(c->md, hex);
		pthread_mutex_lock(&b->mu);
		b->st.last_in = c->nin;
		memcpy(b->st.last_sha, hex, sizeof(hex));
		pthread_mutex_unlock(&b->mu);
		EVP_MD_CTX_free(c->md);
	}
	close(c->fd);
	free(c->out);
	free(c);
	bstat_add(b, &b->st.active, -1);
}

static void bconn_accept(struct backend *b)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(b->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct bconn *c, **n;

		if (fd < 0)
			return;
		c = calloc(1, sizeof(*c));
		n = realloc(b->conns, (b->nconns + 1) * sizeof(*n));
		if (!c || !n || !(c->out = malloc(BCONN_BUF))) {
			free(c ? c->out : NULL);
			free(c);
			if (n)
				b->conns = n;
			close(fd);
			continue;
		}
		b->conns = n;
		c->fd = fd;
		if (b->mode != BACKEND_ECHO && b->mode != BACKEND_HELLO) {
			c->md = EVP_MD_CTX_new();
			EVP_DigestInit_ex(c->md, EVP_sha256(), NULL);
		}
		b->conns[b->nconns++] = c;
		pthread_mutex_lock(&b->mu);
		b->st.accepted++;
		b->st.active++;
		pthread_mutex_unlock(&b->mu);
	}
}

static bool bconn_wants_read(const struct backend *b, const struct bconn *c)
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

static bool bconn_wants_write(const struct backend *b, const struct bconn *c)
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

static void bconn_hello_reply(struct backend *b, struct bconn *c)
{
	char body[128], resp[512];
	int bl = snprintf(body, sizeof(body), "hello from %s\n", b->name);
	int rl = snprintf(resp, sizeof(resp),
			  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
			  "Connection: close\r\n\r\n%s",
			  bl, body);

	bconn_reply(c, resp, (size_t)rl);
}

/* Consumes n freshly read bytes at buf according to the mode. */
static void bconn_consume(struct backend *b, struct bconn *c, const unsigned char *buf, size_t n)
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

static void bconn_read(struct backend *b, struct bconn *c)
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

static void bconn_write(struct backend *b, struct bconn *c)
{
	ssize_t n;

	if (c->outoff == c->outlen && c->src_sent < b->bytes &&
	    (b->mode == BACKEND_SOURCE || b->mode == BACKEND_RESET)) {
		uint64_t left = b->bytes - c->src_sent;
		size_t k = left < BCONN_BUF ? (size_t)left : BCONN_BUF;

		harness_pattern(c->src_sent, c->out, k);
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
static void bconn_advance(struct backend *b, struct bconn *c)
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

			harness_sha_final_hex(c->md, hex);
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

static short bconn_events(const struct backend *b, const struct bconn *c)
{
	short ev = 0;

	if (bconn_wants_read(b, c))
		ev |= POLLIN;
	if (bconn_wants_write(b, c))
		ev |= POLLOUT;
	return ev;
}

static void bconn_step(struct backend *b, struct bconn *c, short revents)
{
	if ((revents & (POLLIN | POLLHUP | POLLERR)) && bconn_wants_read(b, c))
		bconn_read(b, c);
	if (!c->finished && (revents & (POLLOUT | POLLERR)) && bconn_wants_write(b, c))
		bconn_write(b, c);
	if (!c->finished)
		bconn_advance(b, c);
}

/* Drops finished connections from the thread's list. */
static void backend_reap(struct backend *b)
{
	size_t i = 0;

	while (i < b->nconns) {
		if (b->conns[i]->finished) {
			bconn_free(b, b->conns[i]);
			b->conns[i] = b->conns[--b->nconns];
		} else {
			i++;
		}
	}
}

static void *backend_main(void *arg)
{
	struct backend *b = arg;
	struct pollfd *pf = NULL;

	for (;;) {
		size_t i, n = b->nconns + 2;
		struct pollfd *np = realloc(pf, n * sizeof(*pf));

		if (!np)
			break;
		pf = np;
		pf[0] = (struct pollfd){ .fd = b->wake[0], .events = POLLIN };
		pf[1] = (struct pollfd){ .fd = b->lfd, .events = POLLIN };
		for (i = 0; i < b->nconns; i++)
			pf[i + 2] = (struct pollfd){ .fd = b->conns[i]->fd,
						     .events = bconn_events(b, b->conns[i]) };
		if (poll(pf, n, 1000) < 0 && errno != EINTR)
			break;
		if (pf[0].revents)
			break;
		for (i = 0; i < b->nconns; i++)
			if (pf[i + 2].revents)
				bconn_step(b, b->conns[i], pf[i + 2].revents);
		backend_reap(b);
		if (pf[1].revents & POLLIN)
			bconn_accept(b);
	}
	free(pf);
	while (b->nconns > 0)
		bconn_free(b, b->conns[--b->nconns]);
	return NULL;
}

static int listen_on(int port, int *port_out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	socklen_t sl = sizeof(sa);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 512) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		harness_log("backend listen on %d: %s", port, strerror(errno));
		close(fd);
		return -1;
	}
	*port_out = ntohs(sa.sin_port);
	return fd;
}

int backend_restart(struct backend *b)
{
	if (b->running)
		return 0;
	b->lfd = listen_on(b->port, &b->port);
	if (b->lfd < 0)
		return -1;
	if (pipe2(b->wake, O_CLOEXEC | O_NONBLOCK) != 0)
		goto err_listen;
	if (pthread_create(&b->th, NULL, backend_main, b) != 0)
		goto err_pipe;
	b->running = true;
	return 0;
err_pipe:
	close(b->wake[0]);
	close(b->wake[1]);
err_listen:
	close(b->lfd);
	return -1;
}

struct backend *backend_start(enum backend_mode mode, int port, const char *name, uint64_t bytes)
{
	struct backend *b = calloc(1, sizeof(*b));

	if (!b || H.nbackends >= MAX_TRACKED) {
		free(b);
		return NULL;
	}
	b->mode = mode;
	b->port = port;
	b->bytes = bytes;
	snprintf(b->name, sizeof(b->name), "%s", name ? name : "backend");
	pthread_mutex_init(&b->mu, NULL);
	if (backend_restart(b) != 0) {
		free(b);
		return NULL;
	}
	snprintf(b->addr, sizeof(b->addr), "127.0.0.1:%d", b->port);
	H.backends[H.nbackends++] = b;
	return b;
}

int backend_port(const struct backend *b)
{
	return b->port;
}

const char *backend_addr(const struct backend *b)
{
	return b->addr;
}

void backend_get_stats(struct backend *b, struct backend_stats *out)
{
	pthread_mutex_lock(&b->mu);
	*out = b->st;
	pthread_mutex_unlock(&b->mu);
}

unsigned backend_accepted(struct backend *b)
{
	struct backend_stats st;

	backend_get_stats(b, &st);
	return st.accepted;
}

bool backend_wait_accepted(struct backend *b, unsigned n, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;

	while (backend_accepted(b) < n) {
		if (harness_now_ms() >= deadline)
			return false;
		harness_nap_ms(5);
	}
	return true;
}

bool backend_wait_idle(struct backend *b, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	struct backend_stats st;

	for (;;) {
		backend_get_stats(b, &st);
		if (st.active == 0)
			return true;
		if (harness_now_ms() >= deadline)
			return false;
		harness_nap_ms(5);
	}
}

void backend_stop(struct backend *b)
{
	if (!b->running)
		return;
	if (write(b->wake[1], "x", 1) != 1)
		harness_log("backend wake: %s", strerror(errno));
	pthread_join(b->th, NULL);
	close(b->wake[0]);
	close(b->wake[1]);
	close(b->lfd);
	b->running = false;
}

void backend_destroy(struct backend *b)
{
	size_t i;

	if (!b)
		return;
	backend_stop(b);
	for (i = 0; i < H.nbackends; i++)
		if (H.backends[i] == b)
			H.backends[i] = H.backends[--H.nbackends];
	pthread_mutex_destroy(&b->mu);
	free(b->conns);
	free(b);
}
