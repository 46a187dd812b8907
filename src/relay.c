/* The relay: one pump moves a direction from its source endpoint to its sink, the same code
 * for both directions and every kind of endpoint. Each direction's endpoints are chosen once
 * the handshake is done:
 *  - userspace: the TLS record layer decrypts straight into the buffer that write() drains,
 *    and read() fills the buffer that SSL_write encrypts from (one copy per direction);
 *  - splice: where the kernel holds that direction's TLS, socket -> pipe -> socket, and no
 *    payload enters user space; a pipe is held only while bytes are in flight;
 *  - kread: client->backend with the kernel decrypting but splice off: recvmsg reads.
 * Each direction ends on its own: the source's end is passed on as a half-close (FIN to the
 * backend; close_notify then FIN to the client). */
#include "tlsplice/relay.h"

#include <sys/socket.h>

#include "tlsplice/ktls.h"

/* Records (or pipe loads) moved per direction per pump before yielding to others. */
#define RELAY_BUDGET 16

static void ep_prepare(struct ep *e, struct bufpool *pool, struct close_cause *cc, bool client)
{
	e->fd = -1;
	e->pool = pool;
	e->end = cc;
	e->ev_read = client ? RELAY_CREAD : RELAY_BREAD;
	e->ev_write = client ? RELAY_CWRITE : RELAY_BWRITE;
	e->side = client ? CLOSE_CLIENT_EOF : CLOSE_SERVER_EOF;
	e->peer = client ? "client" : "server";
}

void relay_prepare(struct relay *r, struct bufpool *pool, struct close_cause *cc)
{
	ep_prepare(&r->client, pool, cc, true);
	ep_prepare(&r->backend, pool, cc, false);
	r->client.tls = &r->tls;
	r->up.pipe[0] = r->up.pipe[1] = r->down.pipe[0] = r->down.pipe[1] = -1;
	r->up.rev = &r->down;
	r->down.rev = &r->up;
}

bool relay_init(struct relay *r, int cfd, SSL *ssl, int ktls, bool tls13, bool splice)
{
	struct ep *c = &r->client;
	c->fd = cfd;
	r->tls.ssl = ssl;
	r->tls.ktls = ktls;
	r->tls.tls13 = tls13;
	ep_tls_setup(c);
	r->up.want = r->down.want = RELAY_ANY;
	r->up.splice = splice && (ktls & KTLS_RX);
	r->down.splice = splice && (ktls & KTLS_TX);
	c->rx = r->up.splice     ? &ep_ktls_splice_ops
		: ktls & KTLS_RX ? &ep_ktls_read_ops
				 : &ep_tls_ops;
	c->tx = r->down.splice ? &ep_ktls_splice_ops : &ep_tls_ops;
	r->backend.rx = r->down.splice ? &ep_tcp_splice_ops : &ep_tcp_ops;
	r->backend.tx = r->up.splice ? &ep_tcp_splice_ops : &ep_tcp_ops;
	if (r->up.splice && r->down.splice) {
		/* the kernel does all the TLS from here on; close_notify then goes out with
		 * ktls_send_close_notify */
		r->tls.ssl = NULL;
		return true;
	}
	return false;
}

void relay_start(struct relay *r, int bfd)
{
	r->backend.fd = bfd;
}

/* The direction waits for what e asked (r: IO_WAIT_READ or IO_WAIT_WRITE), or has failed. */
static enum io_res dir_wait(struct relay_dir *d, const struct ep *e, enum io_res r)
{
	if (r == IO_ERROR)
		return IO_ERROR;
	d->want = r == IO_WAIT_READ ? e->ev_read : e->ev_write;
	return IO_OK;
}

/* The source ended and all it sent is out: pass the end on (close_notify where the sink
 * speaks TLS, then a FIN; when the other way is over too, close sends the FIN). */
static enum io_res dir_shut(struct relay_dir *d, struct ep *dst)
{
	if (dst->tx->shut) {
		enum io_res r = dst->tx->shut(dst);
		if (r != IO_OK)
			return dir_wait(d, dst, r);
	}
	if (!d->rev->shut)
		shutdown(dst->fd, SHUT_WR);
	d->shut = true;
	d->want = 0;
	return IO_OK;
}

/* Moves d from src to dst until something blocks, the source is drained, or the budget is
 * spent; sets d->want. IO_OK, or IO_ERROR when the connection ends. */
static enum io_res relay_dir_pump(struct relay_dir *d, struct ep *src, struct ep *dst)
{
	bool drained = false;
	for (int round = 0;; round++) {
		enum io_res r = dst->tx->send(dst, d);
		if (r != IO_OK)
			return dir_wait(d, dst, r);
		if (d->eof)
			return dir_shut(d, dst);
		if (drained || round == RELAY_BUDGET) {
			/* after a short read epoll says when there is more; after the budget, yield
			 * to other connections, but bytes a source already holds would never make
			 * its socket readable again: then ask to be run again instead */
			bool held = !drained && src->rx->held && src->rx->held(src);
			d->want = held ? RELAY_AGAIN : src->ev_read;
			return IO_OK;
		}
		r = src->rx->recv(src, d);
		if (r == IO_DRAINED) {
			drained = true;
		} else if (r == IO_EOF) {
			d->eof = true;
			close_cause_end(src->end, src->side);
		} else if (r != IO_OK) {
			return dir_wait(d, src, r);
		}
	}
}

enum io_res relay_pump(struct relay *r, int ready, int *want)
{
	uint64_t before = r->up.bytes + r->down.bytes;
	/* run only the directions waiting for what just happened: a request/response exchange
	 * then costs no read that can only fail with EAGAIN */
	if (!r->up.shut && (r->up.want & ready) &&
	    relay_dir_pump(&r->up, &r->client, &r->backend) == IO_ERROR)
		return IO_ERROR;
	if (!r->down.shut && (r->down.want & ready) &&
	    relay_dir_pump(&r->down, &r->backend, &r->client) == IO_ERROR)
		return IO_ERROR;
	/* records the client's TLS wrote on its own while reading (a KeyUpdate answer) */
	if (r->tls.gather.len > r->tls.gather.off) {
		enum io_res t = r->client.tx->flush(&r->client);
		if (t == IO_ERROR)
			return IO_ERROR;
		if (t != IO_OK)
			r->down.want |= r->client.ev_write;
	}
	r->moved = r->up.bytes + r->down.bytes != before;
	if (r->up.shut && r->down.shut)
		return IO_EOF;
	*want = (r->up.shut ? 0 : r->up.want) | (r->down.shut ? 0 : r->down.want);
	return IO_OK;
}

void relay_close_notify(struct relay *r)
{
	if (!r->down.shut)
		ep_tls_close_notify(&r->client);
}

void relay_finish(struct relay *r)
{
	ep_tls_finish(&r->client);
	ep_buf_release(&r->client, &r->up);
	ep_buf_release(&r->client, &r->down);
	bufpool_pipe_put(r->client.pool, r->up.pipe, r->up.in_pipe == 0);
	bufpool_pipe_put(r->client.pool, r->down.pipe, r->down.in_pipe == 0);
}

const char *relay_mode_name(const struct relay *r)
{
	if (r->up.splice && r->down.splice)
		return "splice";
	if (r->up.splice || r->down.splice)
		return "mixed";
	return "userspace";
}
