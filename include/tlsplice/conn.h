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
	struct conn *prev, *next;
	SSL *ssl;
	/* one event per socket, armed with the EV_READ|EV_WRITE the step asked for (cev_on,
	 * bev_on); EV_PERSIST */
	struct event cev, bev;
	/* the handshake, connect or idle deadline; or, while `again`, due at once: RELAY_AGAIN
	 * runs after the next poll, and the idle deadline is armed again after it */
	struct event timer;

	struct pool *pool;
	struct server *server;
	struct pool_tried tried;

	struct relay relay;

	uint64_t t_accept_us, t_handshake_us;
	uint64_t last_active_ms; /* clock_coarse_ms() of the last byte moved */
	struct timeval t_accept_wall;
	/* what the access log says of the TLS session, kept so the SSL object can be freed
	 * once the kernel holds both directions */
	const char *tls_version, *cipher; /* OpenSSL's static strings */
	char *sni;                        /* copy of the client's SNI, NULL if none */
	const unsigned char *alpn;        /* into the frontend's ALPN list */
	struct close_cause close;         /* why it ends (the access log's close and error) */
	struct sockaddr_storage peer;
	uint32_t fe_idx;
	int cfd, bfd;
	int attempts;
	enum conn_state state;
	int ktls;               /* KTLS_TX|KTLS_RX of the client socket */
	uint8_t cev_on, bev_on; /* EV_READ|EV_WRITE armed */
	uint8_t alpn_len;       /* an ALPN protocol name is 1..255 bytes */
	bool again;             /* the timer stands for RELAY_AGAIN, not a deadline */
	bool relayed;
	bool hs_closed; /* the client closed during the handshake */
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

#endif
