/* Buffers and pipes for the relay, reused so that a connection's transfers cost no
 * allocation and no pipe2 once the pool is warm. */
#include "tlsplice/bufpool.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int bufpool_init(struct bufpool *p)
{
	p->nbufs = p->npipes = 0;
	p->bufs = calloc(BUFPOOL_MAX, sizeof(*p->bufs));
	p->pipes = calloc(BUFPOOL_MAX, sizeof(*p->pipes));
	if (!p->bufs || !p->pipes) {
		bufpool_finish(p);
		return -1;
	}
	return 0;
}

void bufpool_finish(struct bufpool *p)
{
	for (size_t i = 0; i < p->nbufs; i++)
		free(p->bufs[i]);
	free(p->bufs);
	for (size_t i = 0; i < p->npipes; i++) {
		close(p->pipes[i][0]);
		close(p->pipes[i][1]);
	}
	free(p->pipes);
	p->bufs = NULL;
	p->pipes = NULL;
	p->nbufs = p->npipes = 0;
}

char *bufpool_buf_get(struct bufpool *p)
{
	if (p->nbufs > 0)
		return p->bufs[--p->nbufs];
	return malloc(RELAY_BUF_CAP);
}

void bufpool_buf_put(struct bufpool *p, char *buf)
{
	if (p->nbufs < BUFPOOL_MAX)
		p->bufs[p->nbufs++] = buf;
	else
		free(buf);
}

int bufpool_pipe_get(struct bufpool *p, int fds[2])
{
	if (p->npipes > 0) {
		p->npipes--;
		fds[0] = p->pipes[p->npipes][0];
		fds[1] = p->pipes[p->npipes][1];
		return 0;
	}
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	/* room for a batch of records; where the system caps pipe sizes lower, 64 KiB will do */
	fcntl(fds[1], F_SETPIPE_SZ, 256 * 1024);
	return 0;
}

void bufpool_pipe_put(struct bufpool *p, int fds[2], bool empty)
{
	if (fds[0] < 0)
		return;
	if (empty && p->npipes < BUFPOOL_MAX) {
		p->pipes[p->npipes][0] = fds[0];
		p->pipes[p->npipes][1] = fds[1];
		p->npipes++;
	} else {
		close(fds[0]);
		close(fds[1]);
	}
	fds[0] = fds[1] = -1;
}
