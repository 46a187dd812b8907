/* The backend core: plain TCP test servers (hello, echo, sink, source, reset, silent) on one
 * epoll loop, non-blocking, many connections. The harness runs it on a thread per in-process
 * backend (harness.h); tlsplice-testbackend (tests/tools/backend.c) runs it as a program.
 * It needs only libc, pthreads and libcrypto. */
#ifndef TLSPLICE_TEST_BCORE_H
#define TLSPLICE_TEST_BCORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

enum backend_mode {
	/* Reads a request up to "\r\n\r\n", answers "HTTP/1.1 200 OK" with body
	 * "hello from NAME\n", closes. */
	BACKEND_HELLO,
	/* Echoes everything; on EOF from the peer finishes writing, then shuts down its write
	 * side, and closes once both sides are done. */
	BACKEND_ECHO,
	/* Reads to EOF, then answers the hex SHA-256 of what it read plus "\n", closes. */
	BACKEND_SINK,
	/* Sends `bytes` pattern bytes, shuts down its write side, then keeps reading until EOF
	 * (what it reads is counted in backend_stats), then closes. */
	BACKEND_SOURCE,
	/* Waits for the peer's first bytes, sends `bytes` pattern bytes, then resets the
	 * connection (SO_LINGER 0): a server dying mid-stream. */
	BACKEND_RESET,
	/* Accepts and reads, never writes, closes on EOF. */
	BACKEND_SILENT,
};

struct backend_stats {
	unsigned accepted; /* connections accepted since start (survives stop/restart) */
	unsigned active;   /* connections open now */
	unsigned eofs;     /* connections whose peer sent FIN */
	uint64_t bytes_in; /* bytes read from all connections */
	uint64_t bytes_out;
	/* SOURCE/SINK/SILENT: what the most recently finished connection read */
	uint64_t last_in;
	char last_sha[65];
};

struct bconn;

/* One server: its mode and counters, and the connections of the loop that runs it. */
struct bcore {
	enum backend_mode mode;
	char name[256];     /* HELLO's "hello from NAME" */
	uint64_t bytes;     /* SOURCE and RESET: pattern bytes per connection */
	pthread_mutex_t mu; /* guards st: other threads read it while the loop runs */
	struct backend_stats st;
	struct bconn **conns; /* owned by the thread in bcore_run */
	size_t nconns;
};

/* Sets up core (name NULL: "backend"); counters start at zero. */
void bcore_init(struct bcore *core, enum backend_mode mode, const char *name, uint64_t bytes);
/* Frees what bcore_init and bcore_run kept (not while bcore_run runs). */
void bcore_finish(struct bcore *core);
/* Serves connections accepted on the non-blocking listening socket lfd until stop_fd becomes
 * readable, then closes every connection it holds (lfd and stop_fd stay open). The counters
 * survive, so a later run goes on counting. 0, or -1 if the loop itself failed. */
int bcore_run(struct bcore *core, int lfd, int stop_fd);
/* A consistent copy of the counters, from any thread. */
void bcore_get_stats(struct bcore *core, struct backend_stats *out);
/* Byte i of the test pattern, for stream offset `offset` on: position-dependent, so a dropped,
 * repeated or reordered chunk changes its hash. */
void bcore_pattern(uint64_t offset, void *buf, size_t len);
/* Lower-case hex of a 32-byte digest (out gets 64 chars + NUL). */
void bcore_hex32(const unsigned char *md, char out[65]);

#endif
