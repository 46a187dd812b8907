/* A client connection: TLS handshake, backend connect with retries, relay, teardown. */
#ifndef TLSPLICE_CONN_H
#define TLSPLICE_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include "tlsplice/close.h"
#include "tlsplice/pool.h"
#include "tlsplice/relay.h"

struct bufpool;

/* What a connection needs of the thread that runs it. The worker embeds one and hands it to
 * conn_accept: conn.c knows nothing else of workers, so they may call into it freely. All of
 * it belongs to that thread. */
struct conn_home {
	struct event_base *base;
	struct runtime *rt;   /* the generation new connections take (a reference) */
	struct bufpool *pool; /* relay buffers and pipes */
	struct conn *conns;   /* open connections, doubly linked */
	size_t nconns;
	void (*closed)(struct conn_home *h); /* after a connection has ended and is freed */
};

enum conn_state {
	CONN_HANDSHAKE,  /* TLS handshake with the client in progress */
	CONN_CONNECTING, /* handshake done; a connect to a backend server is in flight */
	CONN_RELAY,      /* bytes flow both ways (each direction ends on its own) */
	CONN_CLOSED,     /* finished: torn down at the end of the current callback */
};

struct conn {
	struct conn_home *home;
	struct runtime *rt;
	size_t fe_idx;
	struct conn *prev, *next;
	enum conn_state state;
	int cfd, bfd;
	SSL *ssl;
	struct event cr, cw, br, bw; /* client/backend readable/writable, EV_PERSIST */
	struct event timer;          /* handshake, connect or idle deadline */
	struct event again;          /* zero timeout: RELAY_AGAIN runs after the next poll */
	bool cr_on, cw_on, br_on, bw_on;

	struct pool *pool;
	struct server *server;
	struct pool_tried tried;
	int attempts;

	struct relay relay;

	struct sockaddr_storage peer;
	struct timeval t_accept_wall;
	uint64_t t_accept_us, t_handshake_us;
	bool relayed;
	uint64_t last_active_ms; /* clock_coarse_ms() of the last byte moved */
	int ktls;                /* KTLS_TX|KTLS_RX of the client socket */
	/* what the access log says of the TLS session, kept so the SSL object can be freed
	 * once the kernel holds both directions */
	const char *tls_version, *cipher; /* OpenSSL's static strings */
	char *sni;                        /* copy of the client's SNI, NULL if none */
	const unsigned char *alpn;        /* into the frontend's ALPN list */
	unsigned alpn_len;
	struct close_cause close; /* why it ends (the access log's close and error) */
	bool hs_closed;           /* the client closed during the handshake */
	unsigned handovers;       /* times it moved to a new process (binary upgrade) */
};

void conn_accept(struct conn_home *h, int fd, size_t fe_idx, const struct sockaddr_storage *peer);
/* Ends a connection from outside its callbacks (shutdown timeout). */
void conn_kill(struct conn *c, enum close_reason reason);
/* Records which side ended first (the first reason wins); the connection goes on while
 * the other direction still flows. */
void conn_end(struct conn *c, enum close_reason reason);
/* Ends the whole connection now: reason as conn_end, plus an error text (kept if the
 * connection has none yet). */
void conn_fail(struct conn *c, enum close_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Moving a connection to a new process (binary upgrade), on its worker's thread. Movable:
 * relaying with the kernel doing all of its TLS and splicing both ways, no byte in a pipe or
 * buffer, neither direction ended. conn_export writes what the new process needs (names,
 * session facts, byte counts, times) as one line; conn_hand_off then ends c here without a
 * log line or a close_notify (its sockets, passed on, stay open in the new process).
 * conn_adopt, in the new process, takes such a connection into h: -1 if its frontend is
 * gone or memory runs out (the caller closes cfd and bfd). */
bool conn_movable(const struct conn *c);
int conn_export(const struct conn *c, char *meta, size_t len);
void conn_hand_off(struct conn *c);
int conn_adopt(struct conn_home *h, int cfd, int bfd, const char *meta);

#endif
