/* The relay: each direction reads from its source into one buffer and writes that buffer
 * to its sink, so every byte is copied once in user space (the TLS record layer decrypts
 * straight into the buffer that write() drains, and read() fills the buffer that SSL_write
 * encrypts from). Each direction ends on its own: the source's end is passed on as a
 * half-close (FIN to the backend, close_notify and FIN to the client). */
#include "tlsplice/relay.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tlsplice/conn.h"
#include "tlsplice/pool.h"
#include "tlsplice/tls.h"
#include "tlsplice/worker.h"

/* Records moved per direction per pump before yielding to other connections. */
#define RELAY_BUDGET 16

static void buf_release(struct conn *c, struct relay_dir *d)
{
	if (d->buf) {
		worker_buf_put(c->w, d->buf);
		d->buf = NULL;
	}
	d->off = d->len = 0;
}

static void moved(struct conn *c, struct relay_dir *d, size_t n)
{
	d->bytes += n;
	c->last_active_ms = pool_now_ms();
}

/* Drains d's buffer into the backend; returns 1 when empty, 0 when blocked, -1 on error. */
static int up_flush(struct conn *c, struct relay_dir *d)
{
	while (d->off < d->len) {
		ssize_t n = send(c->bfd, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
		if (n > 0) {
			d->off += (uint32_t)n;
			moved(c, d, (size_t)n);
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return 0;
		} else {
			conn_fail(c, "server_eof", "write to server: %s", strerror(errno));
			return -1;
		}
	}
	buf_release(c, d);
	return 1;
}

/* Client TLS -> backend. */
static int pump_up(struct conn *c)
{
	struct relay_dir *d = &c->up;
	char err[128];
	for (int round = 0; round < RELAY_BUDGET; round++) {
		int r = up_flush(c, d);
		if (r <= 0)
			return r < 0 ? -1 : RELAY_BWRITE;
		if (d->eof) {
			if (!d->shut) {
				shutdown(c->bfd, SHUT_WR);
				d->shut = true;
			}
			return 0;
		}
		if (!d->buf && !(d->buf = worker_buf_get(c->w))) {
			conn_fail(c, "error", "out of memory");
			return -1;
		}
		int n = SSL_read(c->ssl, d->buf, RELAY_BUF_SIZE);
		switch (tls_classify(c->ssl, n, err, sizeof(err))) {
		case TLS_OK:
			d->off = 0;
			d->len = (uint32_t)n;
			break;
		case TLS_WANT_READ:
			buf_release(c, d);
			return RELAY_CREAD;
		case TLS_WANT_WRITE:
			buf_release(c, d);
			return RELAY_CWRITE;
		case TLS_CLOSED:
			buf_release(c, d);
			d->eof = true;
			conn_end(c, "client_eof");
			break;
		case TLS_FATAL:
			conn_fail(c, "client_eof", "%s", err);
			return -1;
		}
	}
	return d->off < d->len ? RELAY_BWRITE : RELAY_CREAD;
}

/* Sends close_notify then FIN to the client; returns wanted events, -1 on error. */
static int down_shut(struct conn *c, struct relay_dir *d)
{
	char err[128];
	int r = SSL_shutdown(c->ssl);
	if (r < 0) {
		switch (tls_classify(c->ssl, r, err, sizeof(err))) {
		case TLS_WANT_WRITE:
			return RELAY_CWRITE;
		case TLS_WANT_READ: /* only ever while waiting for the peer's close_notify */
		case TLS_OK:
		case TLS_CLOSED:
			break;
		case TLS_FATAL:
			conn_fail(c, "client_eof", "%s", err);
			return -1;
		}
	}
	shutdown(c->cfd, SHUT_WR);
	d->shut = true;
	return 0;
}

/* Drains d's buffer into the client's TLS; 1 when empty, else the wanted event or -1. */
static int down_flush(struct conn *c, struct relay_dir *d)
{
	char err[128];
	while (d->off < d->len) {
		int n = SSL_write(c->ssl, d->buf + d->off, (int)(d->len - d->off));
		switch (tls_classify(c->ssl, n, err, sizeof(err))) {
		case TLS_OK:
			d->off += (uint32_t)n;
			moved(c, d, (size_t)n);
			break;
		case TLS_WANT_WRITE:
			return -RELAY_CWRITE;
		case TLS_WANT_READ:
			return -RELAY_CREAD;
		case TLS_CLOSED:
			conn_fail(c, "client_eof", "connection closed by client");
			return 0;
		case TLS_FATAL:
			conn_fail(c, "client_eof", "%s", err);
			return 0;
		}
	}
	buf_release(c, d);
	return 1;
}

/* Backend -> client TLS. */
static int pump_down(struct conn *c)
{
	struct relay_dir *d = &c->down;
	for (int round = 0; round < RELAY_BUDGET; round++) {
		int r = down_flush(c, d);
		if (r == 0)
			return -1;
		if (r < 0)
			return -r;
		if (d->eof)
			return d->shut ? 0 : down_shut(c, d);
		if (!d->buf && !(d->buf = worker_buf_get(c->w))) {
			conn_fail(c, "error", "out of memory");
			return -1;
		}
		ssize_t n = read(c->bfd, d->buf, RELAY_BUF_SIZE);
		if (n > 0) {
			d->off = 0;
			d->len = (uint32_t)n;
		} else if (n == 0) {
			buf_release(c, d);
			d->eof = true;
			conn_end(c, "server_eof");
		} else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			buf_release(c, d);
			return RELAY_BREAD;
		} else {
			conn_fail(c, "server_eof", "read from server: %s", strerror(errno));
			return -1;
		}
	}
	return d->off < d->len ? RELAY_CWRITE : RELAY_BREAD;
}

int relay_pump(struct conn *c)
{
	int up = c->up.shut ? 0 : pump_up(c);
	if (up < 0 || c->state == CONN_CLOSED)
		return 0;
	int down = c->down.shut ? 0 : pump_down(c);
	if (down < 0 || c->state == CONN_CLOSED)
		return 0;
	if (c->up.shut && c->down.shut) {
		c->state = CONN_CLOSED;
		return 0;
	}
	return up | down;
}

void relay_finish(struct conn *c)
{
	buf_release(c, &c->up);
	buf_release(c, &c->down);
}

const char *relay_mode_name(const struct conn *c)
{
	if (c->up.splice && c->down.splice)
		return "splice";
	if (c->up.splice || c->down.splice)
		return "mixed";
	return "userspace";
}
