/* The client's TLS in user space: the record layer decrypts straight into the buffer that
 * the backend's send drains, and SSL_write encrypts from the buffer the backend's read
 * filled (one copy per direction). Where sending stays in user space, OpenSSL writes its
 * records into a buffer of ours, so that one send carries several. Also what ends the
 * session, whatever part of it the kernel holds: close_notify and the goodbye after a
 * fatal record error. */
#include "tlsplice/ep.h"

#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>

#include "tlsplice/ktls.h"
#include "tlsplice/tls.h"

/* ---- OpenSSL writes one record per BIO call; gathering them lets one send carry several */

static BIO_METHOD *tx_method;
static pthread_once_t tx_once = PTHREAD_ONCE_INIT;

static int tx_write(BIO *b, const char *data, size_t len, size_t *written)
{
	struct ep *e = BIO_get_data(b);
	struct ep_gather *g = &e->tls->gather;
	BIO_clear_retry_flags(b);
	if (!g->buf && !(g->buf = bufpool_buf_get(e->pool)))
		return -1;
	if (g->len + len > RELAY_BUF_CAP) {
		BIO_set_retry_write(b); /* full: OpenSSL keeps the record until we have sent */
		return 0;
	}
	memcpy(g->buf + g->len, data, len);
	g->len += (uint32_t)len;
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

/* Where sending stays in user space: the SSL writes into e->tls->gather. */
static void gather_init(struct ep *e)
{
	BIO *b;
	pthread_once(&tx_once, tx_method_init);
	if (!tx_method || !(b = BIO_new(tx_method)))
		return; /* the socket BIO stays: one send per record */
	BIO_set_data(b, e);
	BIO_set_init(b, 1);
	SSL_set0_wbio(e->tls->ssl, b);
	e->tls->gather.on = true;
}

/* Sends the gathered ciphertext: IO_OK when all is sent. */
static enum io_res gather_flush(struct ep *e)
{
	struct ep_gather *g = &e->tls->gather;
	enum io_res r = ep_send_all(e, g->buf, &g->off, g->len);
	if (r != IO_OK)
		return r;
	if (g->buf)
		bufpool_buf_put(e->pool, g->buf);
	g->buf = NULL;
	g->off = g->len = 0;
	return IO_OK;
}

/* OpenSSL reports each record's type and each alert it reads, so that a failure can be
 * told in the record policy's words. */
static void on_tls_msg(int write_p, int version, int type, const void *buf, size_t len, SSL *ssl,
		       void *arg)
{
	struct ep *e = arg;
	const unsigned char *b = buf;
	if (write_p || len == 0)
		return;
	if (type == SSL3_RT_HEADER || type == SSL3_RT_INNER_CONTENT_TYPE)
		e->tls->last_type = b[0]; /* TLS 1.3: the outer 23, then the inner type */
	else if (type == SSL3_RT_ALERT && len == 2) {
		e->tls->alert_level = b[0];
		e->tls->alert = b[1];
	}
}

void ep_tls_setup(struct ep *e)
{
	e->tls->last_type = e->tls->alert_level = e->tls->alert = -1;
	e->tls->gather.alert = -1;
	if (e->tls->ssl && !(e->tls->ktls & KTLS_RX)) {
		SSL_set_msg_callback(e->tls->ssl, on_tls_msg);
		SSL_set_msg_callback_arg(e->tls->ssl, e);
	}
	if (e->tls->ssl && !(e->tls->ktls & KTLS_TX))
		gather_init(e);
}

/* ---- reading ---- */

/* Reading failed: IO_OK when the records before the bad one go out first. Record errors are
 * told in the record policy's words (OpenSSL has queued its alert already), anything else in
 * OpenSSL's. */
static enum io_res tls_failed(struct ep *e, struct relay_dir *d, int reason, const char *err)
{
	struct record_verdict v;
	if (!record_from_openssl(reason, e->tls->last_type, e->tls->alert_level, e->tls->alert,
				 &v)) {
		close_cause_fail(e->end, e->side, "%s", err);
		return IO_ERROR;
	}
	v.alert = -1; /* OpenSSL sends it: the flush, FIN and drain are left to teardown */
	if (!d->len)
		return ep_verdict(e, d, &v);
	e->tls->verdict =
		v; /* those records were sound: the backend gets them, as on the kernel path */
	e->tls->failed = true;
	return IO_OK;
}

/* Decrypts records into d's (empty) buffer until it cannot hold another whole record or
 * nothing more is there, so one write to the backend carries several records. */
static enum io_res tls_recv(struct ep *e, struct relay_dir *d)
{
	char err[128];
	if (e->tls->failed) /* what came before the bad record is out: now act on it */
		return ep_verdict(e, d, &e->tls->verdict);
	if (!ep_buf_get(e, d))
		return IO_ERROR;
	d->off = d->len = 0;
	while (RELAY_BUF_SIZE - d->len >= TLS_RECORD_MAX) {
		int n = SSL_read(e->tls->ssl, d->buf + d->len, (int)(RELAY_BUF_SIZE - d->len));
		int reason = n > 0 ? 0 : ERR_GET_REASON(ERR_peek_last_error());
		switch (tls_classify(e->tls->ssl, n, err, sizeof(err))) {
		case TLS_OK:
			d->len += (uint32_t)n;
			/* OpenSSL reads ahead: once it holds nothing more, the socket was
			 * drained too, and trying again would only fail with EAGAIN */
			if (!SSL_has_pending(e->tls->ssl))
				return IO_DRAINED;
			continue;
		case TLS_WANT_READ:
			break;
		case TLS_WANT_WRITE:
			if (d->len)
				return IO_OK;
			ep_buf_release(e, d);
			return IO_WAIT_WRITE;
		case TLS_CLOSED:
			return IO_EOF;
		case TLS_FATAL:
			return tls_failed(e, d, reason, err);
		}
		break;
	}
	if (d->len)
		return IO_OK;
	ep_buf_release(e, d);
	return IO_WAIT_READ;
}

/* Bytes OpenSSL already holds would never make the socket readable again. */
static bool tls_held(const struct ep *e)
{
	return e->tls->failed || SSL_has_pending(e->tls->ssl);
}

/* ---- sending ---- */

/* Drains d's buffer into the TLS session. With our BIO, records pile up in e->tls->gather
 * (OpenSSL hands over one per SSL_write in partial write mode) and go out together when it
 * is full or the buffer is drained. */
static enum io_res tls_send(struct ep *e, struct relay_dir *d)
{
	char err[128];
	enum io_res r;
	while (d->off < d->len) {
		int n = SSL_write(e->tls->ssl, d->buf + d->off, (int)(d->len - d->off));
		switch (tls_classify(e->tls->ssl, n, err, sizeof(err))) {
		case TLS_OK:
			d->off += (uint32_t)n;
			d->bytes += (uint64_t)n;
			break;
		case TLS_WANT_WRITE:
			if (!e->tls->gather.on)
				return IO_WAIT_WRITE;
			if ((r = gather_flush(e)) !=
			    IO_OK) /* our buffer is full: send, then retry */
				return r;
			break;
		case TLS_WANT_READ:
			return IO_WAIT_READ;
		case TLS_CLOSED:
			close_cause_fail(e->end, e->side, "connection closed by %s", e->peer);
			return IO_ERROR;
		case TLS_FATAL:
			close_cause_fail(e->end, e->side, "%s", err);
			return IO_ERROR;
		}
	}
	if ((r = gather_flush(e)) != IO_OK)
		return r;
	ep_buf_release(e, d);
	return IO_OK;
}

/* Queues close_notify once (through our BIO, OpenSSL's socket BIO or kernel TX). */
static enum io_res queue_close_notify(struct ep *e)
{
	char err[128];
	if (e->tls->gather.notify)
		return IO_OK;
	if (!e->tls->ssl) {
		if (ktls_send_close_notify(e->fd) < 0 && ep_again(errno))
			return IO_WAIT_WRITE;
	} else {
		int r = SSL_shutdown(e->tls->ssl);
		if (r < 0) {
			enum tls_result t = tls_classify(e->tls->ssl, r, err, sizeof(err));
			if (t == TLS_WANT_WRITE && !e->tls->gather.on)
				return IO_WAIT_WRITE;
			if (t == TLS_FATAL) {
				close_cause_fail(e->end, e->side, "%s", err);
				return IO_ERROR;
			}
		}
	}
	e->tls->gather.notify = true;
	return IO_OK;
}

enum io_res ep_tls_shut(struct ep *e)
{
	enum io_res r = queue_close_notify(e);
	return r == IO_OK ? gather_flush(e) : r;
}

void ep_tls_close_notify(struct ep *e)
{
	if (queue_close_notify(e) != IO_OK)
		return;
	if (e->tls->gather.on)
		gather_flush(e); /* what does not go out now is dropped with the connection */
	ERR_clear_error();
}

/* After a fatal record error: the alert (OpenSSL's, gathered, or the policy's through kernel
 * TX), a FIN, then what the client had already sent is read and dropped: closing with
 * unread bytes would send a reset, and the client could lose the alert. */
static void goodbye(struct ep *e)
{
	enum { DRAIN_READS = 64 };
	if (e->tls->ktls & KTLS_TX) {
		/* a receive error (EBADMSG, EMSGSIZE) stays on the socket as its pending error and
		 * fails every send: reading SO_ERROR clears it */
		int err;
		socklen_t len = sizeof(err);
		getsockopt(e->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (e->tls->gather.alert >= 0)
			ktls_send_alert(e->fd, 2, e->tls->gather.alert);
	} else if (e->tls->gather.on) {
		gather_flush(e);
	}
	shutdown(e->fd, SHUT_WR);
	for (int i = 0; i < DRAIN_READS; i++) {
		char scratch[4096];
		size_t len;
		unsigned char type;
		ssize_t n = e->tls->ktls & KTLS_RX
				    ? ktls_recv_record(e->fd, scratch, sizeof(scratch), &len, &type)
				    : read(e->fd, scratch, sizeof(scratch));
		if (n <= 0)
			break;
	}
}

void ep_tls_finish(struct ep *e)
{
	if (e->tls->gather.fatal)
		goodbye(e);
	if (e->tls->gather.buf)
		bufpool_buf_put(e->pool, e->tls->gather.buf);
	e->tls->gather.buf = NULL;
}

const struct ep_ops ep_tls_ops = {
	.recv = tls_recv,
	.send = tls_send,
	.shut = ep_tls_shut,
	.held = tls_held,
	.flush = gather_flush,
};
