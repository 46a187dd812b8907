/* Senders that keep the proxy's receive side full. Each one encrypts its whole payload in
 * advance (TLS 1.3 records through a memory BIO, in groups of four full records and one of
 * 1164 bytes: 66,810 bytes on the wire, so the proxy's read-ahead refills end inside a
 * record), then sends the ciphertext with plain send() from its own thread: far faster than
 * the proxy can decrypt, so its socket never runs empty while the payload lasts. */
#ifndef TLSPLICE_TEST_BLAST_H
#define TLSPLICE_TEST_BLAST_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "harness.h"

/* Under an emulated CPU (scripts/vmtest.sh sets TLSPLICE_EMULATED) these load tests mean
 * nothing and would hold hundreds of megabytes in a small VM: they skip there. */
#define BLAST_SKIP_IF_EMULATED()                                                                   \
	do {                                                                                       \
		if (getenv("TLSPLICE_EMULATED"))                                                   \
			cr_skip_test("emulated CPU: a load and timing test");                      \
	} while (0)

#define BLAST_GROUP (16384u * 4u + 1164u)
#define BLAST_RECORD 16384u
#define BLAST_SUITE "TLS_CHACHA20_POLY1305_SHA256" /* the proxy decrypts slower than with AES */
#define BLASTERS 4 /* senders per test: each one's socket refills while the others are served */

struct blaster {
	struct tlsc *c;
	unsigned char *wire; /* the ciphertext */
	size_t wire_len;
	size_t group_wire; /* ciphertext bytes of one group */
	size_t upto;       /* this run sends until here */
	int64_t deadline_ms;
	atomic_bool stop;
	atomic_uint_fast64_t sent; /* ciphertext bytes sent */
	atomic_bool blocked;       /* a send found the kernel's buffers full */
	pthread_t thread;
	bool running;
};

/* Encrypts groups of pattern bytes, at least plain_bytes, on c's connection (c must be done
 * with its handshake and never be written through again). 0 or -1. */
static inline int blast_prepare(struct blaster *b, struct tlsc *c, size_t plain_bytes)
{
	SSL *ssl = tlsc_ssl(c);
	BIO *mem = BIO_new(BIO_s_mem());
	unsigned char *buf = malloc(BLAST_GROUP);
	char *data;
	long len;
	int rc = -1;

	int sndbuf = 4 << 20; /* the kernel doubles it; capped by net.core.wmem_max */

	memset(b, 0, sizeof(*b));
	b->c = c;
	/* much queued in the kernel refills the proxy's socket without this thread's help */
	setsockopt(tlsc_fd(c), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (!mem || !buf)
		goto cleanup;
	BIO_up_ref(mem);
	SSL_set0_wbio(ssl, mem);
	for (uint64_t off = 0; off < plain_bytes; off += BLAST_GROUP) {
		harness_pattern(off, buf, BLAST_GROUP);
		for (size_t done = 0; done < BLAST_GROUP;) { /* partial writes may be on */
			size_t k = BLAST_GROUP - done < BLAST_RECORD ? BLAST_GROUP - done
								     : BLAST_RECORD;
			int n = SSL_write(ssl, buf + done, (int)k);
			if (n <= 0)
				goto cleanup;
			done += (size_t)n;
		}
	}
	len = BIO_get_mem_data(mem, &data);
	b->group_wire = (size_t)len / ((plain_bytes + BLAST_GROUP - 1) / BLAST_GROUP);
	b->wire = malloc((size_t)len);
	if (len <= 0 || !b->wire)
		goto cleanup;
	memcpy(b->wire, data, (size_t)len);
	b->wire_len = (size_t)len;
	rc = 0;
cleanup:
	BIO_free(mem);
	free(buf);
	return rc;
}

static void *blast_main(void *arg)
{
	struct blaster *b = arg;
	int fd = tlsc_fd(b->c);
	size_t off = atomic_load(&b->sent);

	while (off < b->upto && !atomic_load(&b->stop) && harness_now_ms() < b->deadline_ms) {
		ssize_t n = send(fd, b->wire + off, b->upto - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			atomic_store(&b->sent, off);
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			if (errno == EAGAIN)
				atomic_store(&b->blocked, true);
			poll(&p, 1, 100);
		} else {
			break;
		}
	}
	return NULL;
}

/* Sends in a thread, from where the last run ended up to `groups` groups of ciphertext
 * (0: all of it), for at most max_ms. 0 or -1. */
static inline int blast_start(struct blaster *b, size_t groups, int max_ms)
{
	b->upto = groups && groups * b->group_wire < b->wire_len ? groups * b->group_wire
								 : b->wire_len;
	b->deadline_ms = harness_now_ms() + max_ms;
	atomic_store(&b->blocked, false);
	b->running = pthread_create(&b->thread, NULL, blast_main, b) == 0;
	return b->running ? 0 : -1;
}

/* Waits for the sending thread (bounded by its max_ms); true if it sent all it was to. */
static inline bool blast_join(struct blaster *b)
{
	if (b->running)
		pthread_join(b->thread, NULL);
	b->running = false;
	return atomic_load(&b->sent) == b->upto;
}

static inline void blast_stop(struct blaster *b)
{
	atomic_store(&b->stop, true);
	blast_join(b);
	free(b->wire);
	b->wire = NULL;
}

/* A backend that only reads, in large reads, so that it never holds the proxy back (the
 * harness's backends read 16 KiB per poll). Its thread can hand its sockets over
 * (sink_halt): a test then reads them with sink_serve in its own poll loop. */
#define SINK_CONNS 16
struct fast_sink {
	int lfd;
	char addr[32];
	atomic_uint_fast64_t bytes;
	atomic_uint accepted;
	atomic_bool stop;
	bool threaded;
	pthread_t thread;
	struct pollfd p[1 + SINK_CONNS]; /* the listener, then the connections */
	size_t n;
	char *buf;
};

/* Accepts and reads what s->p's revents say is ready, once each. */
static inline void sink_serve(struct fast_sink *s)
{
	if ((s->p[0].revents & POLLIN) && s->n < 1 + SINK_CONNS) {
		int fd = accept(s->lfd, NULL, NULL);
		if (fd >= 0) {
			s->p[s->n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
			atomic_fetch_add(&s->accepted, 1);
		}
	}
	for (size_t i = 1; i < s->n; i++) {
		ssize_t r;
		if (!(s->p[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		r = recv(s->p[i].fd, s->buf, 1 << 20, MSG_DONTWAIT);
		if (r > 0)
			atomic_fetch_add(&s->bytes, (uint64_t)r);
		else if (r == 0 || errno != EAGAIN)
			s->p[i].events = 0; /* done: keep the fd open until the end */
	}
}

static void *sink_main(void *arg)
{
	struct fast_sink *s = arg;

	while (!atomic_load(&s->stop))
		if (poll(s->p, s->n, 100) > 0)
			sink_serve(s);
	return NULL;
}

static inline int sink_start(struct fast_sink *s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);

	/* what the kernel may hold for the sink while its reader is off the core: small, so
	 * that the bytes counted follow the reader, not the machine's other load */
	int rcvbuf = 256 << 10;

	memset(s, 0, sizeof(*s));
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0 ||
	    bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s->lfd, 64) < 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&sa, &len) < 0 || !(s->buf = malloc(1 << 20)))
		return -1;
	snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", ntohs(sa.sin_port));
	s->p[0] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
	s->n = 1;
	s->threaded = pthread_create(&s->thread, NULL, sink_main, s) == 0;
	return s->threaded ? 0 : -1;
}

/* Ends the sink's thread; its sockets stay open for the caller's sink_serve. */
static inline void sink_halt(struct fast_sink *s)
{
	atomic_store(&s->stop, true);
	if (s->threaded)
		pthread_join(s->thread, NULL);
	s->threaded = false;
}

static inline bool sink_wait_accepted(struct fast_sink *s, unsigned n, int timeout_ms)
{
	int64_t end = harness_now_ms() + timeout_ms;
	while (atomic_load(&s->accepted) < n && harness_now_ms() < end)
		usleep(1000);
	return atomic_load(&s->accepted) >= n;
}

static inline void sink_stop(struct fast_sink *s)
{
	sink_halt(s);
	for (size_t i = 1; i < s->n; i++)
		close(s->p[i].fd);
	close(s->lfd);
	free(s->buf);
}

/* Waits (bounded) until process pid is stopped (SIGSTOP): state T in /proc/PID/stat. */
static inline bool blast_wait_stopped(pid_t pid, int timeout_ms)
{
	char path[64], buf[256];
	int64_t end = harness_now_ms() + timeout_ms;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	do {
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		char *p;
		if (f)
			fclose(f);
		buf[n] = '\0';
		p = strrchr(buf, ')');
		if (p && p[1] == ' ' && (p[2] == 'T' || p[2] == 't'))
			return true;
		usleep(1000);
	} while (harness_now_ms() < end);
	return false;
}

static inline uint64_t blast_total(struct blaster *b, int n)
{
	uint64_t sum = 0;
	for (int i = 0; i < n; i++)
		sum += atomic_load(&b[i].sent);
	return sum;
}

/* Sends `groups` groups on every sender and waits until the sink has all of it: the
 * proxy's sockets have grown their buffers, and it has read everything up to a group
 * boundary (its read buffer is empty). true if so. */
static inline bool blast_warm_up(struct blaster *b, int nb, struct fast_sink *s, size_t groups)
{
	int64_t end = harness_now_ms() + HARNESS_TIMEOUT_MS;
	uint64_t want = atomic_load(&s->bytes) + (uint64_t)nb * groups * BLAST_GROUP;
	bool ok = true;

	for (int i = 0; i < nb; i++)
		ok = ok && blast_start(&b[i], groups, HARNESS_TIMEOUT_MS) == 0;
	for (int i = 0; i < nb; i++)
		ok = blast_join(&b[i]) && ok;
	while (ok && atomic_load(&s->bytes) < want && harness_now_ms() < end)
		usleep(1000);
	return ok && atomic_load(&s->bytes) == want;
}

/* Waits (bounded) until every sender found the kernel's buffers full. */
static inline bool blast_wait_blocked(struct blaster *b, int nb, int timeout_ms)
{
	int64_t end = harness_now_ms() + timeout_ms;
	for (int i = 0; i < nb; i++)
		while (!atomic_load(&b[i].blocked) && harness_now_ms() < end)
			usleep(1000);
	for (int i = 0; i < nb; i++)
		if (!atomic_load(&b[i].blocked))
			return false;
	return true;
}

#endif
