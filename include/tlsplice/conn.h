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
#include "tlsplice/log.h"
#include "tlsplice/pool.h"
#include "tlsplice/proxy_in.h"
#include "tlsplice/relay.h"

struct bufpool;
struct conn_peer_cert;

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
	CONN_PROXY,      /* before the handshake: reading the PROXY header of a trusted balancer */
	CONN_CONNECTING, /* handshake done; a connect to a backend server is in flight */
	CONN_QUEUED,     /* handshake done; no server free: waiting in the backend's queue */
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
	bool server_held; /* holds one of server's connection slots (pool_release) */
	bool queued;      /* holds a place in pool's queue (pool_queue_leave) */
	uint64_t queue_deadline_ms;

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
	struct close_cause close;   /* why it ends (the access log's close and error) */
	bool hs_closed;             /* the client closed during the handshake */
	struct proxy_in_reader pin; /* accept_proxy: the header read before the handshake */
	/* proxy_protocol_tlvs = ssl: the client certificate's facts (NULL: none presented) */
	struct conn_peer_cert *peer_cert;
	unsigned handovers;          /* times it moved to a new process (binary upgrade) */
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

/* A connection's life at log level debug (conn_debug.c), one line per event, each naming the
 * frontend and the client ("frontend web client 127.0.0.1:53422: ...") so that one
 * connection's lines can be picked out of many: accepted; the handshake's result (version,
 * cipher, SNI, ALPN, or why it failed); the path each direction takes and why; each server
 * chosen, with its attempt number; the connect that succeeded; the close (reason, bytes,
 * duration). Above level debug a call costs one comparison (the macros test the level before
 * anything is evaluated); at debug each line is rate-limited as log_debug's are (log.h).
 * From the connection's own thread; conn_debug.c keeps nothing but a per-thread note of why
 * kernel TLS was refused, from ktls_enable to the handshake line of the same connection. */
enum conn_debug_event {
	CONN_DEBUG_ACCEPT,    /* conn_accept: the connection exists */
	CONN_DEBUG_HANDSHAKE, /* handshake done, relay paths chosen (after relay_init) */
	CONN_DEBUG_SERVER,    /* a server was picked for the next connect attempt */
	CONN_DEBUG_CONNECTED, /* the connect to c->server completed */
	CONN_DEBUG_CLOSE,     /* teardown: a failed handshake, then the close */
};

#define conn_debug(c, ev)                                                                          \
	do {                                                                                       \
		if (log_current_level >= LOG_DEBUG)                                                \
			conn_debug_event((c), (ev));                                               \
	} while (0)

/* Keeps ktls_enable's reasons (why) for the next CONN_DEBUG_HANDSHAKE line of c. */
#define conn_debug_ktls(c, why)                                                                    \
	do {                                                                                       \
		if (log_current_level >= LOG_DEBUG)                                                \
			conn_debug_ktls_note((c), (why));                                          \
	} while (0)

void conn_debug_event(const struct conn *c, enum conn_debug_event ev);
void conn_debug_ktls_note(const struct conn *c, const char *why);

/* The parts of ktls_enable's "; "-separated reasons that concern dir (KTLS_TX or KTLS_RX:
 * segments "tx: ...", or "rx: ..." and "tls13-rx: ..."), joined by "; " into out. False
 * (out empty) if there are none. Exposed for tests. */
bool conn_debug_why_for(const char *why, int dir, char *out, size_t outlen);

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
