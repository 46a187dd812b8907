/* The client's socket where the kernel holds its TLS: records read with recvmsg (so that
 * control records are seen), or spliced through a pipe without entering user space. */
#include "tlsplice/ep.h"

#include <fcntl.h>
#include <unistd.h>

#include "tlsplice/ktls.h"

#define SPLICE_CHUNK (256 * 1024) /* as much as a pipe holds (bufpool_pipe_get sizes it) */
#define SPLICE_BATCH (128 * 1024) /* gathered from kernel receive before one splice out */
#define SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)

/* Reads one record into d's buffer and applies the record policy: IO_OK when the relay goes
 * on (d->len bytes to send, maybe none). */
enum io_res ep_ktls_record(struct ep *e, struct relay_dir *d)
{
	struct record_verdict v;
	unsigned char type;
	size_t len;
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
	ep_buf_release(e, d);
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
	if (d->in_pipe > 0)
		return n < 0 && ep_again(errno) ? IO_DRAINED : IO_OK;
	bufpool_pipe_put(e->pool, d->pipe, true);
	if (n < 0 && ep_again(errno))
		return IO_WAIT_READ;
	/* 0 is a FIN or an empty record, EINVAL/EIO a control record: recvmsg tells them apart
	 * (and reads any data that arrived meanwhile, which the sink then sends) */
	return ep_ktls_record(e, d);
}

static bool ktls_held(const struct ep *e)
{
	return e->tls->failed; /* the kernel holds the rest: epoll announces it */
}

const struct ep_ops ep_ktls_read_ops = {
	.recv = ktls_read,
	.held = ktls_held,
};

const struct ep_ops ep_ktls_splice_ops = {
	.recv = ktls_splice_in,
	.send = ep_pipe_send, /* the kernel encrypts */
	.shut = ep_tls_shut,
	.held = ktls_held,
};
