/* The client's socket where the kernel holds its TLS: records read with recvmsg (so that
 * control records are seen), or spliced through a pipe without entering user space. */
#include "tlsplice/ep.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "tlsplice/ktls.h"

#define SPLICE_CHUNK (256 * 1024) /* as much as a pipe holds (bufpool_pipe_get sizes it) */
#define SPLICE_BATCH (128 * 1024) /* gathered from kernel receive before one splice out */
#define SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)

/* Sends the KeyUpdate of ours that is due (owed to the client, or key_update_bytes reached)
 * and moves our send key on: IO_OK, IO_WAIT_WRITE, or IO_ERROR. */
static enum io_res rekey_send(struct ep *e, uint64_t sent)
{
	if (!ktls_rekey_tx_due(e->tls->keys, sent))
		return IO_OK;
	if (ktls_rekey_tx(e->tls->keys, e->fd, sent) == 0)
		return IO_OK;
	if (ep_again(errno))
		return IO_WAIT_WRITE;
	close_cause_fail(e->end, CLOSE_KEY_UPDATE, "cannot re-key sending to client: %s",
			 strerror(errno));
	return IO_ERROR;
}

/* The client's KeyUpdate was read (msg: the record's 5 bytes) and the kernel holds receive
 * until it has the next key. Where the kernel and this connection can (both directions in
 * the kernel when the client asks for our KeyUpdate too), installs it and answers; false
 * otherwise: the record policy then closes with key_update. */
static bool rekey_follow(struct ep *e, struct relay_dir *d, const uint8_t *msg)
{
	struct ep_tls *t = e->tls;
	bool requested = msg[4] == 1;

	if (t->keys == NULL)
		return false;
	if (ktls_rekey_rx(t->keys, e->fd, requested) < 0) {
		close_cause_fail(e->end, CLOSE_KEY_UPDATE,
				 "cannot follow the client's KeyUpdate: %s",
				 errno == EOPNOTSUPP ? "our KeyUpdate cannot be sent on this path"
						     : strerror(errno));
		return false;
	}
	/* answered at once where the socket takes it, else before the next data we send */
	return !requested || rekey_send(e, d->rev->bytes) != IO_ERROR;
}

/* Reads one record into d's buffer and applies the record policy: IO_OK when the relay goes
 * on (d->len bytes to send, maybe none). */
enum io_res ep_ktls_record(struct ep *e, struct relay_dir *d)
{
	struct record_verdict v;
	unsigned char type;
	size_t len;
	e->tls->control = false;
	if (!ep_buf_get(e, d))
		return IO_ERROR;
	d->off = d->len = 0;
	int r = ktls_recv_record(e->fd, d->buf, RELAY_BUF_SIZE, &len, &type);
	if (r < 0 && ep_again(errno)) {
		ep_buf_release(e, d);
		return IO_WAIT_READ;
	}
	if (r == 0) { /* a FIN, and only a FIN: an empty record has a type */
		ep_buf_release(e, d);
		return IO_EOF;
	}
	if (r < 0)
		record_from_errno(errno, &v);
	else /* recvmsg joins consecutive data records; the kernel bounds each (EMSGSIZE) */
		record_classify(e->tls->tls13 ? RECORD_TLS13 : RECORD_TLS12, type,
				(const uint8_t *)d->buf,
				type == RECORD_DATA && len > TLS_RECORD_MAX ? TLS_RECORD_MAX : len,
				&e->tls->rec, &v);
	if (v.action == RECORD_RELAY && len > 0) {
		d->len = (uint32_t)len;
		return IO_OK;
	}
	bool followed = r > 0 && v.action == RECORD_KEY_UPDATE &&
			rekey_follow(e, d, (const uint8_t *)d->buf);
	ep_buf_release(e, d);
	if (followed)
		return IO_OK;
	return ep_verdict(e, d, &v);
}

static enum io_res ktls_read(struct ep *e, struct relay_dir *d)
{
	if (e->tls->failed) /* what came before the bad record is out: now act on it */
		return ep_verdict(e, d, &e->tls->verdict);
	return ep_ktls_record(e, d);
}

/* Socket -> pipe. Kernel receive splices one record per call, so records are gathered in
 * the pipe and one splice moves them all to the backend. */
static enum io_res ktls_splice_in(struct ep *e, struct relay_dir *d)
{
	if (e->tls->failed)
		return ep_verdict(e, d, &e->tls->verdict);
	if (!ep_pipe_get(e, d))
		return IO_ERROR;
	ssize_t n = 0;
	while (d->in_pipe < SPLICE_BATCH) {
		n = splice(e->fd, NULL, d->pipe[1], NULL, SPLICE_CHUNK, SPLICE_FLAGS);
		if (n > 0)
			d->in_pipe += (uint32_t)n;
		else if (!(n < 0 && errno == EINTR))
			break;
	}
	if (d->in_pipe >= SPLICE_BATCH)
		return IO_OK;
	/* a socket error (EBADMSG: a record failed to decrypt, EMSGSIZE: too long, a reset) is
	 * reported once: keep it, and act on it once what was gathered is out */
	if (n < 0 && !ep_again(errno) && errno != EINVAL && errno != EIO) {
		record_from_errno(errno, &e->tls->verdict);
		e->tls->failed = true;
		return IO_OK;
	}
	/* EAGAIN, a FIN or a control record stays where it is: move what was gathered first */
	if (d->in_pipe > 0) {
		/* and then read a control record (EINVAL, EIO) without waiting for epoll: a
		 * KeyUpdate that splice has decrypted and left queued already pauses receive on
		 * 6.14+, and poll reports nothing until the next key is set */
		e->tls->control = n < 0 && (errno == EINVAL || errno == EIO);
		return n < 0 && ep_again(errno) ? IO_DRAINED : IO_OK;
	}
	bufpool_pipe_put(e->pool, d->pipe, true);
	if (n < 0 && ep_again(errno))
		return IO_WAIT_READ;
	/* 0 is a FIN or an empty record, EINVAL/EIO a control record: recvmsg tells them apart
	 * (and reads any data that arrived meanwhile, which the sink then sends) */
	return ep_ktls_record(e, d);
}

/* Pipe -> socket: the kernel encrypts; a KeyUpdate of ours that is due goes first. */
static enum io_res ktls_splice_out(struct ep *e, struct relay_dir *d)
{
	enum io_res r = rekey_send(e, d->bytes);

	return r == IO_OK ? ep_pipe_send(e, d) : r;
}

static bool ktls_held(const struct ep *e)
{
	/* a fatal record, or a control record epoll may never announce (see ktls_splice_in);
	 * anything else the kernel holds, epoll announces */
	return e->tls->failed || e->tls->control;
}

const struct ep_ops ep_ktls_read_ops = {
	.recv = ktls_read,
	.held = ktls_held,
};

const struct ep_ops ep_ktls_splice_ops = {
	.recv = ktls_splice_in,
	.send = ktls_splice_out,
	.shut = ep_tls_shut,
	.held = ktls_held,
};
