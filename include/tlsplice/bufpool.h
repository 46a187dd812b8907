/* The relay's buffers and splice pipes, kept for reuse by one worker thread (not thread
 * safe: each worker owns one pool and hands it to its connections' relays). */
#ifndef TLSPLICE_BUFPOOL_H
#define TLSPLICE_BUFPOOL_H

#include <stdbool.h>
#include <stddef.h>

#define RELAY_BUF_SIZE 65536 /* four TLS records of plaintext: one syscall moves several */
#define RELAY_BUF_CAP (RELAY_BUF_SIZE + 4096) /* room for those records' ciphertext too */
#define BUFPOOL_MAX 64 /* relay buffers and empty pipes a pool keeps for reuse */

struct bufpool {
	char **bufs; /* buffers ready for reuse */
	size_t nbufs;
	int (*pipes)[2]; /* empty pipes ready for reuse */
	size_t npipes;
};

/* 0, or -1 when out of memory (nothing is left allocated). */
int bufpool_init(struct bufpool *p);
void bufpool_finish(struct bufpool *p); /* frees what is kept; an unset pool is fine */
/* A buffer of RELAY_BUF_CAP bytes; NULL when out of memory. */
char *bufpool_buf_get(struct bufpool *p);
void bufpool_buf_put(struct bufpool *p, char *buf);
/* Pipes for splice, held by a connection only while bytes are in flight: 0 or -1 (errno). */
int bufpool_pipe_get(struct bufpool *p, int fds[2]);
/* Takes fds back (nothing when fds[0] < 0) and sets them to -1; a non-empty pipe is closed. */
void bufpool_pipe_put(struct bufpool *p, int fds[2], bool empty);

#endif
