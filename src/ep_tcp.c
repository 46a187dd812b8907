/* A plain TCP endpoint (the backend): read/send through the direction's buffer, or splice
 * through its pipe. */
#include "tlsplice/ep.h"

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SPLICE_CHUNK (256 * 1024) /* as much as a pipe holds (bufpool_pipe_get sizes it) */
#define SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)

/* What a read or splice of n bytes (at most full) means. */
static enum io_res tcp_got(struct ep *e, ssize_t n, size_t full)
{
	if (n > 0)
		return (size_t)n < full ? IO_DRAINED : IO_OK;
	if (n < 0 && errno == EINTR)
		return IO_OK;
	if (n == 0)
		return IO_EOF;
	if (ep_again(errno))
		return IO_WAIT_READ;
	close_cause_fail(e->end, e->side, "read from %s: %s", e->peer, strerror(errno));
	return IO_ERROR;
}

static enum io_res tcp_recv(struct ep *e, struct relay_dir *d)
{
	if (!ep_buf_get(e, d))
		return IO_ERROR;
	ssize_t n = read(e->fd, d->buf, RELAY_BUF_SIZE);
	if (n > 0) {
		d->off = 0;
		d->len = (uint32_t)n;
	} else {
		ep_buf_release(e, d);
	}
	return tcp_got(e, n, RELAY_BUF_SIZE);
}

static enum io_res tcp_send(struct ep *e, struct relay_dir *d)
{
	uint32_t before = d->off;
	enum io_res r = ep_send_all(e, d->buf, &d->off, d->len);
	d->bytes += d->off - before;
	if (r != IO_OK)
		return r;
	ep_buf_release(e, d);
	return IO_OK;
}

static enum io_res tcp_splice_recv(struct ep *e, struct relay_dir *d)
{
	if (!ep_pipe_get(e, d))
		return IO_ERROR;
	ssize_t n = splice(e->fd, NULL, d->pipe[1], NULL, SPLICE_CHUNK, SPLICE_FLAGS);
	if (n > 0)
		d->in_pipe += (uint32_t)n;
	else
		bufpool_pipe_put(e->pool, d->pipe, true);
	return tcp_got(e, n, SPLICE_CHUNK);
}

/* A spliced direction may hold a record read with recvmsg too: it goes first. */
static enum io_res tcp_splice_send(struct ep *e, struct relay_dir *d)
{
	enum io_res r = tcp_send(e, d);
	return r == IO_OK ? ep_pipe_send(e, d) : r;
}

const struct ep_ops ep_tcp_ops = {
	.recv = tcp_recv,
	.send = tcp_send,
};

const struct ep_ops ep_tcp_splice_ops = {
	.recv = tcp_splice_recv,
	.send = tcp_splice_send,
};
