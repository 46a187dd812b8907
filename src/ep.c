/* What every endpoint kind shares: buffers and pipes from the pool, draining a pipe, and
 * acting on the record policy's verdicts. */
#include "tlsplice/ep.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "tlsplice/ktls.h"

#define SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)

bool ep_buf_get(struct ep *e, struct relay_dir *d)
{
	if (!d->buf && !(d->buf = bufpool_buf_get(e->pool))) {
		close_cause_fail(e->end, CLOSE_ERROR, "out of memory");
		return false;
	}
	return true;
}

void ep_buf_release(struct ep *e, struct relay_dir *d)
{
	if (d->buf) {
		bufpool_buf_put(e->pool, d->buf);
		d->buf = NULL;
	}
	d->off = d->len = 0;
}

bool ep_pipe_get(struct ep *e, struct relay_dir *d)
{
	if (d->pipe[0] < 0 && bufpool_pipe_get(e->pool, d->pipe) < 0) {
		close_cause_fail(e->end, CLOSE_ERROR, "pipe: %s", strerror(errno));
		return false;
	}
	return true;
}

enum io_res ep_send_all(struct ep *e, const char *buf, uint32_t *off, uint32_t len)
{
	while (*off < len) {
		ssize_t n = send(e->fd, buf + *off, len - *off, MSG_NOSIGNAL);
		if (n > 0) {
			*off += (uint32_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && ep_again(errno)) {
			return IO_WAIT_WRITE;
		} else {
			close_cause_fail(e->end, e->side, "write to %s: %s", e->peer,
					 strerror(errno));
			return IO_ERROR;
		}
	}
	return IO_OK;
}

enum io_res ep_pipe_send(struct ep *e, struct relay_dir *d)
{
	/* no SPLICE_F_MORE: every chunk goes out at once (as records, on a kTLS socket) */
	while (d->in_pipe > 0) {
		ssize_t n = splice(d->pipe[0], NULL, e->fd, NULL, d->in_pipe, SPLICE_FLAGS);
		if (n > 0) {
			d->in_pipe -= (uint32_t)n;
			d->bytes += (uint64_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && ep_again(errno)) {
			return IO_WAIT_WRITE;
		} else {
			close_cause_fail(e->end, e->side, "write to %s: %s", e->peer,
					 n < 0 ? strerror(errno) : "closed");
			return IO_ERROR;
		}
	}
	bufpool_pipe_put(e->pool, d->pipe, true);
	return IO_OK;
}

enum io_res ep_verdict(struct ep *e, struct relay_dir *d, const struct record_verdict *v)
{
	switch (v->action) {
	case RECORD_RELAY:
	case RECORD_IGNORE:
		return IO_OK;
	case RECORD_WARN: /* the kernel path's answer to what OpenSSL answers by itself */
		if (e->tls->ktls & KTLS_TX)
			ktls_send_alert(e->fd, 1, v->alert);
		return IO_OK;
	case RECORD_CLOSE_NOTIFY:
		return IO_EOF;
	case RECORD_KEY_UPDATE:
		close_cause_fail(e->end, CLOSE_KEY_UPDATE,
				 "client sent a TLS 1.3 KeyUpdate; this kernel cannot re-key");
		return IO_ERROR;
	case RECORD_FATAL:
		e->tls->gather.fatal = true;
		e->tls->gather.alert = (int16_t)v->alert;
		close_cause_fail(e->end, e->side, "%s", v->text);
		return IO_ERROR;
	}
	return IO_ERROR;
}
