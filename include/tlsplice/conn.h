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
	union {
		uint64_t last_active_ms;    /* relaying: clock_coarse_ms() of the last byte moved */
		uint64_t queue_deadline_ms; /* queued (no relay yet): when it gives up */
	};
	struct timeval t_accept_wall;
	/* what the access log says of the TLS session, kept so the SSL object can be freed
	 * once the kernel holds both directions */
	const char *tls_version, *cipher; /* OpenSSL's static strings */
	char *sni;                        /* copy of the client's SNI, NULL if none */
	const unsigned char *alpn;        /* into the frontend's ALPN list */
	struct close_cause close;         /* why it ends (the access log's close and error) */
	struct sockaddr_storage peer;
	struct proxy_in_reader *pin; /* accept_proxy only: the header read before the handshake */
	/* proxy_protocol_tlvs = ssl: the client certificate's facts (NULL: none presented) */
	struct conn_peer_cert *peer_cert;
	uint32_t fe_idx;
	int cfd, bfd;
	int attempts;
	enum conn_state state;
	uint16_t handovers;     /* times it moved to a new process (binary upgrade) */
	uint8_t ktls;           /* KTLS_TX|KTLS_RX of the client socket */
	uint8_t cev_on, bev_on; /* EV_READ|EV_WRITE armed */
	uint8_t alpn_len;       /* an ALPN protocol name is 1..255 bytes */
	bool again;             /* the timer stands for RELAY_AGAIN, not a deadline */
	bool relayed;
	bool hs_closed;   /* the client closed during the handshake */
	bool server_held; /* holds one of server's connection slots (pool_release) */
	bool queued;      /* holds a place in pool's queue (pool_queue_leave) */
};

void conn_accept(struct conn_home *h, int fd, size_t fe_idx, const struct sockaddr_storage *peer);
/* The frontend c came in on, in c's generation. */
const struct cfg_frontend *conn_fe(const struct conn *c);
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
/* conn_proxy.c: the PROXY header (proxy_protocol, with its TLVs) sent on a backend socket
 * whose connect just completed; -1 after conn_fail. conn_keep_peer_cert keeps what the SSL
 * TLV tells of the client certificate, before the SSL object may be freed. */
int conn_send_proxy_header(struct conn *c);
void conn_keep_peer_cert(struct conn *c);
/* conn_move.c: fills c's names, session facts, byte counts and times from conn_export's
 * line, against c->rt (c->server stays NULL if its server left the file); 0, or -1. */
int conn_import(struct conn *c, const char *meta);

#endif
