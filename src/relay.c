/* The relay. Each direction has its own path, chosen once the handshake is done:
 *  - userspace: the TLS record layer decrypts straight into the buffer that write() drains,
 *    and read() fills the buffer that SSL_write encrypts from (one copy per direction);
 *  - splice: where the kernel holds that direction's TLS, socket -> pipe -> socket, and no
 *    payload enters user space; a pipe is held only while bytes are in flight;
 *  - kread: client->backend with the kernel decrypting but splice off: recvmsg reads.
 * Each direction ends on its own: the source's end is passed on as a half-close (FIN to the
 * backend; close_notify then FIN to the client). */
#include "tlsplice/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tlsplice/conn.h"
#include <openssl/err.h>
#include "tlsplice/ktls.h"
#include "tlsplice/pool.h"
#include "tlsplice/tls.h"
#include "tlsplice/worker.h"

/* Records (or pipe loads) moved per direction per pump before yielding to others. */
#define RELAY_BUDGET 16
#define SPLICE_CHUNK (256 * 1024) /* as much as a pipe holds (bufpool_pipe_get sizes it) */
#define SPLICE_BATCH (128 * 1024) /* gathered from kernel receive before one splice out */
#define TLS_RECORD_MAX 16384 /* plaintext of one record */
#define SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)

static bool again(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK;
}

static void buf_release(struct conn *c, struct relay_dir *d)
{
	if (d->buf) {
		bufpool_buf_put(&c->w->pool, d->buf);
		d->buf = NULL;
	}
	d->off = d->len = 0;
}

static void moved(struct conn *c, struct relay_dir *d, size_t n)
{
	d->bytes += n;
	c->moved = true; /* relay_pump reads the clock once for all transfers of a pump */
}

static bool buf_get(struct conn *c, struct relay_dir *d)
{
	if (!d->buf && !(d->buf = bufpool_buf_get(&c->w->pool))) {
		conn_fail(c, CLOSE_ERROR, "out of memory");
		return false;
	}
	return true;
}

/* ---- userspace sending: OpenSSL writes one record per BIO call; gathering them in our
 * buffer lets one send carry several ---- */

static BIO_METHOD *tx_method;
static pthread_once_t tx_once = PTHREAD_ONCE_INIT;

static int tx_write(BIO *b, const char *data, size_t len, size_t *written)
{
	struct conn *c = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (!c->tx.buf && !(c->tx.buf = bufpool_buf_get(&c->w->pool)))
		return -1;
	if (c->tx.len + len > RELAY_BUF_CAP) {
		BIO_set_retry_write(b); /* full: OpenSSL keeps the record until we have sent */
		return 0;
	}
	memcpy(c->tx.buf + c->tx.len, data, len);
	c->tx.len += (uint32_t)len;
	*written = len;
	return 1;
}

static long tx_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	return cmd == BIO_CTRL_FLUSH; /* sending is ours; everything else is unsupported */
}

static void tx_method_init(void)
{
	tx_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tlsplice-tx");
	if (tx_method) {
		BIO_meth_set_write_ex(tx_method, tx_write);
		BIO_meth_set_ctrl(tx_method, tx_ctrl);
	}
}

/* After the handshake, where sending stays in user space: the SSL writes into c->tx. */
static void tx_init(struct conn *c)
{
	BIO *b;
	pthread_once(&tx_once, tx_method_init);
	if (!tx_method || !(b = BIO_new(tx_method)))
		return; /* the socket BIO stays: one send per record */
	BIO_set_data(b, c);
	BIO_set_init(b, 1);
	SSL_set0_wbio(c->ssl, b);
	c->tx.on = true;
}

/* Sends the gathered ciphertext: 0 when all is sent, RELAY_CWRITE when blocked, -1. */
static int tx_flush(struct conn *c)
{
	while (c->tx.off < c->tx.len) {
		ssize_t n = send(c->cfd, c->tx.buf + c->tx.off, c->tx.len - c->tx.off, MSG_NOSIGNAL);
		if (n > 0) {
			c->tx.off += (uint32_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && again(errno)) {
			return RELAY_CWRITE;
		} else {
			conn_fail(c, CLOSE_CLIENT_EOF, "write to client: %s", strerror(errno));
			return -1;
		}
	}
	if (c->tx.buf)
		bufpool_buf_put(&c->w->pool, c->tx.buf);
	c->tx.buf = NULL;
	c->tx.off = c->tx.len = 0;
	return 0;
}

/* Drains d's pipe into fd: 0 when empty (the pipe goes back to the pool), 1 when fd would
 * block, -1 when the connection failed (reason: the side fd belongs to). */
static int pipe_flush(struct conn *c, struct relay_dir *d, int fd, enum close_reason reason,
		      const char *what)
{
	while (d->in_pipe > 0) {
		ssize_t n = splice(d->pipe[0], NULL, fd, NULL, d->in_pipe, SPLICE_FLAGS);
		if (n > 0) {
			d->in_pipe -= (uint32_t)n;
			moved(c, d, (size_t)n);
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && again(errno)) {
			return 1;
		} else {
			conn_fail(c, reason, "%s: %s", what, n < 0 ? strerror(errno) : "closed");
			return -1;
		}
	}
	bufpool_pipe_put(&c->w->pool, d->pipe, true);
	return 0;
}

/* The userspace path: OpenSSL reports each record's type and each alert it reads, so that a
 * failure can be told in the record policy's words. */
static void on_tls_msg(int write_p, int version, int type, const void *buf, size_t len,
		       SSL *ssl, void *arg)
{
	struct conn *c = arg;
	const unsigned char *b = buf;
	if (write_p || len == 0)
		return;
	if (type == SSL3_RT_HEADER || type == SSL3_RT_INNER_CONTENT_TYPE)
		c->up.last_type = b[0]; /* TLS 1.3: the outer 23, then the inner type */
	else if (type == SSL3_RT_ALERT && len == 2) {
		c->up.alert_level = b[0];
		c->up.alert = b[1];
	}
}

void relay_init(struct conn *c, bool splice)
{
	c->up.want = c->down.want = RELAY_ANY;
	c->up.tls13 = c->tls_version && strcmp(c->tls_version, "TLSv1.3") == 0;
	c->up.last_type = c->up.alert_level = c->up.alert = -1;
	c->tx.alert = -1;
	if (c->ssl && !(c->ktls & KTLS_RX)) {
		SSL_set_msg_callback(c->ssl, on_tls_msg);
		SSL_set_msg_callback_arg(c->ssl, c);
	}
	if (c->ssl && !(c->ktls & KTLS_TX))
		tx_init(c);
	c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
	c->up.splice = splice && (c->ktls & KTLS_RX);
	c->up.kread = !splice && (c->ktls & KTLS_RX);
	c->down.splice = splice && (c->ktls & KTLS_TX);
}

/* ---- client -> backend ---- */

/* Drains up's buffer into the backend; 1 when empty, 0 when blocked, -1 on error. */
static int up_flush(struct conn *c, struct relay_dir *d)
{
	while (d->off < d->len) {
		ssize_t n = send(c->bfd, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL);
		if (n > 0) {
			d->off += (uint32_t)n;
			moved(c, d, (size_t)n);
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && again(errno)) {
			return 0;
		} else {
			conn_fail(c, CLOSE_SERVER_EOF, "write to server: %s", strerror(errno));
			return -1;
		}
	}
	buf_release(c, d);
	return 1;
}

/* Acts on the record policy's verdict on a record that carried no data to relay: 1 when the
 * relay goes on, -1 when the connection ends. */
static int up_verdict(struct conn *c, struct relay_dir *d, const struct record_verdict *v)
{
	switch (v->action) {
	case RECORD_RELAY:
	case RECORD_IGNORE:
		return 1;
	case RECORD_WARN: /* the kernel path's answer to what OpenSSL answers by itself */
		if (c->ktls & KTLS_TX)
			ktls_send_alert(c->cfd, 1, v->alert);
		return 1;
	case RECORD_CLOSE_NOTIFY:
		d->eof = true;
		conn_end(c, CLOSE_CLIENT_EOF);
		return 1;
	case RECORD_KEY_UPDATE:
		conn_fail(c, CLOSE_KEY_UPDATE, "client sent a TLS 1.3 KeyUpdate; this kernel cannot re-key");
		return -1;
	case RECORD_FATAL:
		c->tx.fatal = true;
		c->tx.alert = (int16_t)v->alert;
		conn_fail(c, CLOSE_CLIENT_EOF, "%s", v->text);
		return -1;
	}
	return -1;
}

/* Reads one record from a kernel-receive socket into up's buffer and applies the record
 * policy: 1 when the relay goes on (d->len bytes to send, maybe none), -2 to wait for
 * readable, -1 when the connection ends. */
static int up_kernel_record(struct conn *c, struct relay_dir *d)
{
	struct record_verdict v;
	unsigned char type;
	size_t len;
	if (!buf_get(c, d))
		return -1;
	d->off = d->len = 0;
	int r = ktls_recv_record(c->cfd, d->buf, RELAY_BUF_SIZE, &len, &type);
	if (r < 0 && again(errno)) {
		buf_release(c, d);
		return -2;
	}
	if (r == 0) { /* a FIN, and only a FIN: an empty record has a type */
		buf_release(c, d);
		d->eof = true;
		conn_end(c, CLOSE_CLIENT_EOF);
		return 1;
	}
	if (r < 0)
		record_from_errno(errno, &v);
	else /* recvmsg joins consecutive data records; the kernel bounds each (EMSGSIZE) */
		record_classify(d->tls13 ? RECORD_TLS13 : RECORD_TLS12, type, (const uint8_t *)d->buf,
				type == RECORD_DATA && len > TLS_RECORD_MAX ? TLS_RECORD_MAX : len,
				&d->rec, &v);
	if (v.action == RECORD_RELAY && len > 0) {
		d->len = (uint32_t)len;
		return 1;
	}
	buf_release(c, d);
	return up_verdict(c, d, &v);
}

/* The userspace path failed reading: 1 when the records before the bad one go out first,
 * -1 when the connection ends now. Record errors are told in the record policy's words
 * (OpenSSL has queued its alert already), anything else in OpenSSL's. */
static int up_openssl_failed(struct conn *c, struct relay_dir *d, int reason, const char *err)
{
	struct record_verdict v;
	if (!record_from_openssl(reason, d->last_type, d->alert_level, d->alert, &v)) {
		conn_fail(c, CLOSE_CLIENT_EOF, "%s", err);
		return -1;
	}
	v.alert = -1; /* OpenSSL sends it: the flush, FIN and drain are left to teardown */
	if (!d->len)
		return up_verdict(c, d, &v);
	d->verdict = v; /* those records were sound: the backend gets them, as on the kernel path */
	d->failed = true;
	return 1;
}

/* Decrypts records from the client into up's (empty) buffer until it cannot hold another
 * whole record or nothing more is there, so one write to the backend carries several
 * records. 1 on progress, 2 on progress that drained the socket, -2 to wait for readable,
 * -3 for writable, -1 when it ends. */
static int up_read(struct conn *c, struct relay_dir *d)
{
	char err[128];
	if (d->failed) /* what came before the bad record is out: now act on it */
		return up_verdict(c, d, &d->verdict);
	if (d->kread)
		return up_kernel_record(c, d);
	if (!buf_get(c, d))
		return -1;
	d->off = d->len = 0;
	while (RELAY_BUF_SIZE - d->len >= TLS_RECORD_MAX) {
		int n = SSL_read(c->ssl, d->buf + d->len, (int)(RELAY_BUF_SIZE - d->len));
		int reason = n > 0 ? 0 : ERR_GET_REASON(ERR_peek_last_error());
		switch (tls_classify(c->ssl, n, err, sizeof(err))) {
		case TLS_OK:
			d->len += (uint32_t)n;
			/* OpenSSL reads ahead: once it holds nothing more, the socket was
			 * drained too, and trying again would only fail with EAGAIN */
			if (!SSL_has_pending(c->ssl))
				return 2;
			continue;
		case TLS_WANT_READ:
			break;
		case TLS_WANT_WRITE:
			if (d->len)
				return 1;
			buf_release(c, d);
			return -3;
		case TLS_CLOSED:
			d->eof = true;
			conn_end(c, CLOSE_CLIENT_EOF);
			return 1;
		case TLS_FATAL:
			return up_openssl_failed(c, d, reason, err);
		}
		break;
	}
	if (d->len)
		return 1;
	buf_release(c, d);
	return -2;
}

/* Pipe -> backend; 1 when the pipe is empty, 0 when blocked, -1 on error. */
static int up_pipe_flush(struct conn *c, struct relay_dir *d)
{
	int r = pipe_flush(c, d, c->bfd, CLOSE_SERVER_EOF, "write to server");
	return r == 0 ? 1 : r > 0 ? 0 : -1;
}

/* Client socket -> pipe. Kernel receive splices one record per call, so records are
 * gathered in the pipe and one splice moves them all to the backend. 1 on progress, 2 on
 * progress that emptied the socket, -2 to wait for readable, -1 when it ends. */
static int up_splice_in(struct conn *c, struct relay_dir *d)
{
	if (d->failed)
		return up_verdict(c, d, &d->verdict);
	if (d->pipe[0] < 0 && bufpool_pipe_get(&c->w->pool, d->pipe) < 0) {
		conn_fail(c, CLOSE_ERROR, "pipe: %s", strerror(errno));
		return -1;
	}
	ssize_t n = 0;
	while (d->in_pipe < SPLICE_BATCH) {
		n = splice(c->cfd, NULL, d->pipe[1], NULL, SPLICE_CHUNK, SPLICE_FLAGS);
		if (n > 0)
			d->in_pipe += (uint32_t)n;
		else if (!(n < 0 && errno == EINTR))
			break;
	}
	if (d->in_pipe >= SPLICE_BATCH)
		return 1;
	/* a socket error (EBADMSG: a record failed to decrypt, EMSGSIZE: too long, a reset) is
	 * reported once: keep it, and act on it once what was gathered is out */
	if (n < 0 && !again(errno) && errno != EINVAL && errno != EIO) {
		record_from_errno(errno, &d->verdict);
		d->failed = true;
		return 1;
	}
	/* EAGAIN, a FIN or a control record stays where it is: move what was gathered first */
	if (d->in_pipe > 0)
		return n < 0 && again(errno) ? 2 : 1;
	bufpool_pipe_put(&c->w->pool, d->pipe, true);
	if (n < 0 && again(errno))
		return -2;
	/* 0 is a FIN or an empty record, EINVAL/EIO a control record: recvmsg tells them apart
	 * (and reads any data that arrived meanwhile, which up_flush then sends) */
	return up_kernel_record(c, d);
}

/* Client TLS -> backend. Returns the events to wait for, or -1. */
static int pump_up(struct conn *c)
{
	struct relay_dir *d = &c->up;
	bool drained = false;
	for (int round = 0;; round++) {
		int r = up_flush(c, d);
		if (r > 0 && d->splice)
			r = up_pipe_flush(c, d);
		if (r <= 0)
			return r < 0 ? -1 : RELAY_BWRITE;
		if (d->eof) {
			/* a FIN for the backend; when the other way is over too, close sends it */
			if (!d->shut && !c->down.shut)
				shutdown(c->bfd, SHUT_WR);
			d->shut = true;
			return 0;
		}
		if (drained)
			return RELAY_CREAD; /* epoll says when there is more */
		if (round == RELAY_BUDGET) {
			/* yield to other connections; bytes OpenSSL already holds would never make
			 * the socket readable again, so ask to be run again instead */
			bool held = c->ssl && !d->splice && SSL_has_pending(c->ssl);
			return held || d->failed ? RELAY_AGAIN : RELAY_CREAD;
		}
		r = d->splice ? up_splice_in(c, d) : up_read(c, d);
		drained = r == 2;
		if (r == -1)
			return -1;
		if (r == -2)
			return RELAY_CREAD;
		if (r == -3)
			return RELAY_CWRITE;
	}
}

/* ---- backend -> client ---- */

/* Queues close_notify once (through our BIO, OpenSSL's socket BIO or kernel TX). */
static int queue_close_notify(struct conn *c)
{
	char err[128];
	if (c->tx.notify)
		return 0;
	if (!c->ssl) {
		if (ktls_send_close_notify(c->cfd) < 0 && again(errno))
			return RELAY_CWRITE;
	} else {
		int r = SSL_shutdown(c->ssl);
		if (r < 0) {
			enum tls_result t = tls_classify(c->ssl, r, err, sizeof(err));
			if (t == TLS_WANT_WRITE && !c->tx.on)
				return RELAY_CWRITE;
			if (t == TLS_FATAL) {
				conn_fail(c, CLOSE_CLIENT_EOF, "%s", err);
				return -1;
			}
		}
	}
	c->tx.notify = true;
	return 0;
}

/* Sends close_notify then FIN to the client; returns wanted events, -1 on error. */
static int down_shut(struct conn *c, struct relay_dir *d)
{
	int r = queue_close_notify(c);
	if (r == 0)
		r = tx_flush(c);
	if (r != 0)
		return r;
	if (!c->up.shut) /* else close right after sends the FIN */
		shutdown(c->cfd, SHUT_WR);
	d->shut = true;
	return 0;
}

void relay_close_notify(struct conn *c)
{
	if (c->down.shut || queue_close_notify(c) != 0)
		return;
	if (c->tx.on)
		tx_flush(c); /* what does not go out now is dropped with the connection */
	ERR_clear_error();
}

/* Drains down's buffer into the client's TLS; 0 when empty, else the wanted event or -1.
 * With our BIO, records pile up in c->tx (OpenSSL hands over one per SSL_write in partial
 * write mode) and go out together when it is full or the buffer is drained. */
static int down_flush(struct conn *c, struct relay_dir *d)
{
	char err[128];
	int r;
	while (d->off < d->len) {
		int n = SSL_write(c->ssl, d->buf + d->off, (int)(d->len - d->off));
		switch (tls_classify(c->ssl, n, err, sizeof(err))) {
		case TLS_OK:
			d->off += (uint32_t)n;
			moved(c, d, (size_t)n);
			break;
		case TLS_WANT_WRITE:
			if (!c->tx.on)
				return RELAY_CWRITE;
			if ((r = tx_flush(c)) != 0) /* our buffer is full: send, then retry */
				return r;
			break;
		case TLS_WANT_READ:
			return RELAY_CREAD;
		case TLS_CLOSED:
			conn_fail(c, CLOSE_CLIENT_EOF, "connection closed by client");
			return -1;
		case TLS_FATAL:
			conn_fail(c, CLOSE_CLIENT_EOF, "%s", err);
			return -1;
		}
	}
	if ((r = tx_flush(c)) != 0)
		return r;
	buf_release(c, d);
	return 0;
}

/* Pipe -> client (the kernel encrypts); 0 when empty, RELAY_CWRITE when blocked, -1. */
static int down_pipe_flush(struct conn *c, struct relay_dir *d)
{
	/* no SPLICE_F_MORE: every chunk goes out as records at once */
	int r = pipe_flush(c, d, c->cfd, CLOSE_CLIENT_EOF, "write to client");
	return r > 0 ? RELAY_CWRITE : r;
}

/* Backend -> buffer or pipe: 1 on progress, 2 on progress that emptied the socket, -4 to
 * wait for readable, -1 when it ends. */
static int down_read(struct conn *c, struct relay_dir *d)
{
	ssize_t n;
	if (d->splice) {
		if (d->pipe[0] < 0 && bufpool_pipe_get(&c->w->pool, d->pipe) < 0) {
			conn_fail(c, CLOSE_ERROR, "pipe: %s", strerror(errno));
			return -1;
		}
		n = splice(c->bfd, NULL, d->pipe[1], NULL, SPLICE_CHUNK, SPLICE_FLAGS);
		if (n > 0)
			d->in_pipe += (uint32_t)n;
		else
			bufpool_pipe_put(&c->w->pool, d->pipe, true);
	} else {
		if (!buf_get(c, d))
			return -1;
		n = read(c->bfd, d->buf, RELAY_BUF_SIZE);
		if (n > 0) {
			d->off = 0;
			d->len = (uint32_t)n;
		} else {
			buf_release(c, d);
		}
	}
	if (n > 0)
		return n < (d->splice ? SPLICE_CHUNK : RELAY_BUF_SIZE) ? 2 : 1; /* 2: drained */
	if (n < 0 && errno == EINTR)
		return 1;
	if (n == 0) {
		d->eof = true;
		conn_end(c, CLOSE_SERVER_EOF);
		return 1;
	}
	if (again(errno))
		return -4;
	conn_fail(c, CLOSE_SERVER_EOF, "read from server: %s", strerror(errno));
	return -1;
}

/* Backend -> client TLS. Returns the events to wait for, or -1. */
static int pump_down(struct conn *c)
{
	struct relay_dir *d = &c->down;
	bool drained = false;
	for (int round = 0;; round++) {
		int r = d->splice ? down_pipe_flush(c, d) : down_flush(c, d);
		if (r != 0)
			return r;
		if (d->eof)
			return d->shut ? 0 : down_shut(c, d);
		/* yield after the budget; after a short read, epoll says when there is more */
		if (round == RELAY_BUDGET || drained)
			return RELAY_BREAD;
		r = down_read(c, d);
		drained = r == 2;
		if (r == -1)
			return -1;
		if (r == -4)
			return RELAY_BREAD;
	}
}

int relay_pump(struct conn *c, int ready)
{
	/* run only the directions waiting for what just happened: a request/response exchange
	 * then costs no read that can only fail with EAGAIN */
	if (!c->up.shut && (c->up.want & ready)) {
		c->up.want = pump_up(c);
		if (c->up.want < 0 || c->state == CONN_CLOSED)
			return 0;
	}
	if (!c->down.shut && (c->down.want & ready)) {
		c->down.want = pump_down(c);
		if (c->down.want < 0 || c->state == CONN_CLOSED)
			return 0;
	}
	/* records OpenSSL wrote on its own while reading (a KeyUpdate answer) */
	if (c->tx.len > c->tx.off) {
		int r = tx_flush(c);
		if (r < 0)
			return 0;
		c->down.want |= r;
	}
	if (c->moved) {
		c->moved = false;
		c->last_active_ms = conn_clock_ms();
	}
	if (c->up.shut && c->down.shut) {
		c->state = CONN_CLOSED;
		return 0;
	}
	return (c->up.shut ? 0 : c->up.want) | (c->down.shut ? 0 : c->down.want);
}

/* After a fatal record error: the alert (OpenSSL's, gathered in c->tx, or the policy's
 * through kernel TX), a FIN, then what the client had already sent is read and dropped:
 * closing with unread bytes would send a reset, and the client could lose the alert. */
static void fatal_goodbye(struct conn *c)
{
	enum { DRAIN_READS = 64 };
	if (c->ktls & KTLS_TX) {
		/* a receive error (EBADMSG, EMSGSIZE) stays on the socket as its pending error and
		 * fails every send: reading SO_ERROR clears it */
		int err;
		socklen_t len = sizeof(err);
		getsockopt(c->cfd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (c->tx.alert >= 0)
			ktls_send_alert(c->cfd, 2, c->tx.alert);
	} else if (c->tx.on) {
		tx_flush(c);
	}
	shutdown(c->cfd, SHUT_WR);
	for (int i = 0; i < DRAIN_READS; i++) {
		char scratch[4096];
		size_t len;
		unsigned char type;
		ssize_t n = c->ktls & KTLS_RX ? ktls_recv_record(c->cfd, scratch, sizeof(scratch),
								 &len, &type)
					      : read(c->cfd, scratch, sizeof(scratch));
		if (n <= 0)
			break;
	}
}

void relay_finish(struct conn *c)
{
	if (c->tx.fatal)
		fatal_goodbye(c);
	if (c->tx.buf)
		bufpool_buf_put(&c->w->pool, c->tx.buf);
	c->tx.buf = NULL;
	buf_release(c, &c->up);
	buf_release(c, &c->down);
	bufpool_pipe_put(&c->w->pool, c->up.pipe, c->up.in_pipe == 0);
	bufpool_pipe_put(&c->w->pool, c->down.pipe, c->down.in_pipe == 0);
}

const char *relay_mode_name(const struct conn *c)
{
	if (c->up.splice && c->down.splice)
		return "splice";
	if (c->up.splice || c->down.splice)
		return "mixed";
	return "userspace";
}
