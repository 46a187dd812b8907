/* The access log line of a connection, written when it closes. The connection fills a plain
 * record; this module only formats it. */
#ifndef TLSPLICE_ACCESS_H
#define TLSPLICE_ACCESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "tlsplice/close.h"

struct pool;
struct pool_tried;

/* What the line says of one connection; strings may be NULL (logged as ""). */
struct access_record {
	struct timeval accepted; /* wall clock of the accept */
	const struct sockaddr_storage *peer;
	const char *frontend, *backend, *server;
	const char *sni, *tls_version, *cipher;
	const unsigned char *alpn; /* not NUL-terminated */
	unsigned alpn_len;
	int ktls;          /* KTLS_TX|KTLS_RX */
	const char *relay; /* "" unless bytes were relayed */
	uint64_t bytes_in, bytes_out;
	uint64_t handshake_us; /* accept to handshake done; 0: none */
	uint64_t duration_us;  /* accept to close */
	enum close_reason close;
	const char *error;
	int attempts; /* connects started (1 + retries); 0: none */
	/* with attempts > 1: the pool and the servers tried in it (servers_tried) */
	const struct pool *pool;
	const struct pool_tried *tried;
	unsigned handovers;   /* times it moved to a new process (binary upgrade) */
	unsigned key_updates; /* TLS 1.3 re-keys followed in the kernel, both directions */
};

/* Writes a's JSON line (when the access log is on). */
void access_log_conn(const struct access_record *a);
/* Appends s as a JSON string (with quotes) to out; returns the new length. Exposed for tests. */
size_t access_json_str(char *out, size_t len, size_t cap, const char *s);

#endif
