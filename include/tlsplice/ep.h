/* Endpoints of the relay. Each kind of socket the relay reads or writes has one small table
 * of operations (as HAProxy's xprt_ops, nginx's c->recv/send): userspace TLS (ep_tls.c),
 * kernel TLS with splice or recvmsg (ep_ktls.c), plain TCP (ep_tcp.c). The relay's pump
 * calls them once per system call batch and never asks which kind it has. Endpoints report
 * how a transfer ended (enum io_res) and why the connection ends (into the connection's
 * struct close_cause); they never call back into the connection. */
#ifndef TLSPLICE_EP_H
#define TLSPLICE_EP_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "tlsplice/bufpool.h"
#include "tlsplice/close.h"
#include "tlsplice/record.h"

#define TLS_RECORD_MAX 16384 /* plaintext of one record */

enum io_res {
	IO_OK,         /* progress (or nothing left to send) */
	IO_DRAINED,    /* progress, and the source holds nothing more now */
	IO_WAIT_READ,  /* retry once the endpoint's socket is readable */
	IO_WAIT_WRITE, /* retry once it is writable */
	IO_EOF,        /* the source's stream ended (FIN or close_notify) */
	IO_ERROR,      /* the connection ends now; the close_cause says why */
};

/* One direction: what a source read and its sink has still to take. */
struct relay_dir {
	char *buf; /* pending bytes buf[off..len); NULL while empty */
	uint32_t off, len;
	bool eof;    /* the source ended (FIN or close_notify) */
	bool shut;   /* the sink's write side is shut (FIN or close_notify sent) */
	bool splice; /* this direction moves through a pipe (its TLS is in the kernel) */
	int pipe[2]; /* splice: pipe held while bytes are in flight */
	uint32_t in_pipe;
	int want; /* RELAY_* events this direction waits for */
	uint64_t bytes;
	const struct relay_dir *rev; /* the other way */
};

/* Ciphertext for the client gathered from several records, sent with one system call
 * (userspace sending only: OpenSSL writes records into it through a BIO of ours). */
struct ep_gather {
	char *buf;
	uint32_t off, len;
	bool on;       /* the SSL's write BIO is ours */
	bool notify;   /* close_notify is queued (sent once it drains) */
	bool fatal;    /* a fatal record error: alert, FIN and drain at teardown */
	int16_t alert; /* the fatal alert kernel TX sends then (-1: none; OpenSSL sends
			    * its own where it does the sending) */
};

struct ep;
struct ktls_keys;

struct ep_ops {
	/* Reads into d's (empty) buffer, or its pipe where d->splice. */
	enum io_res (*recv)(struct ep *e, struct relay_dir *d);
	/* Drains what d holds into the endpoint: IO_OK once all is out. */
	enum io_res (*send)(struct ep *e, struct relay_dir *d);
	/* What ends the stream before the FIN (close_notify); NULL: nothing. */
	enum io_res (*shut)(struct ep *e);
	/* Bytes already read that no socket event will announce; NULL: never. */
	bool (*held)(const struct ep *e);
	/* Sends what the endpoint queued by itself (gathered records); NULL: nothing. */
	enum io_res (*flush)(struct ep *e);
};

/* The client's TLS session, whatever part of it the kernel holds. */
struct ep_tls {
	SSL *ssl; /* NULL once the kernel does all of it */
	int ktls; /* KTLS_TX|KTLS_RX */
	struct ep_gather gather;
	/* the record policy's memory, reading the client */
	bool tls13;
	struct record_state rec;
	int16_t last_type;             /* userspace: content type of the last record read */
	int16_t alert_level, alert;    /* userspace: the last alert the client sent, -1 none */
	bool failed;                   /* a fatal record waits until what came before is out */
	struct record_verdict verdict; /* ... and this is it */
	struct ktls_keys *keys;        /* TLS 1.3 secrets to follow KeyUpdates in the kernel */
	bool control;                  /* splice stopped at a record recvmsg must read */
};

struct ep {
	const struct ep_ops *rx, *tx; /* how it is read, how it is written */
	int fd;
	int ev_read, ev_write;  /* RELAY_* bits of fd */
	enum close_reason side; /* the close reason when this side ends or fails */
	const char *peer;       /* "client" or "server", for error texts */
	struct bufpool *pool;
	struct close_cause *end; /* the connection's: why it ends */
	struct ep_tls *tls;      /* the client's TLS; NULL for plain TCP */
};

extern const struct ep_ops ep_tls_ops;         /* SSL_read / SSL_write */
extern const struct ep_ops ep_ktls_read_ops;   /* kernel receive, recvmsg into the buffer */
extern const struct ep_ops ep_ktls_splice_ops; /* kernel TLS, splice both ways */
extern const struct ep_ops ep_tcp_ops;         /* read / send */
extern const struct ep_ops ep_tcp_splice_ops;  /* splice both ways */

static inline bool ep_again(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK;
}

/* ep.c: what every kind shares. */
bool ep_buf_get(struct ep *e, struct relay_dir *d);
void ep_buf_release(struct ep *e, struct relay_dir *d);
bool ep_pipe_get(struct ep *e, struct relay_dir *d);
/* Sends buf[*off..len) to e's socket, *off advancing by what went out: IO_OK once all is
 * sent, IO_WAIT_WRITE, or IO_ERROR with the cause recorded. */
enum io_res ep_send_all(struct ep *e, const char *buf, uint32_t *off, uint32_t len);
/* Drains d's pipe into e (the pipe goes back to the pool once empty). */
enum io_res ep_pipe_send(struct ep *e, struct relay_dir *d);
/* Acts on the record policy's verdict on a record of the client that carried no data. */
enum io_res ep_verdict(struct ep *e, struct relay_dir *d, const struct record_verdict *v);

/* ep_tls.c: the client's TLS session, whatever part the kernel holds. */
void ep_tls_setup(struct ep *e);
/* Queues close_notify once, then sends what is gathered. */
enum io_res ep_tls_shut(struct ep *e);
/* Best effort, never blocks: close_notify unless it was sent. */
void ep_tls_close_notify(struct ep *e);
/* Frees what the session holds; after a fatal record error first says goodbye: the alert,
 * a FIN, and what the client had sent is read, so that it sees no reset. */
void ep_tls_finish(struct ep *e);

/* ep_ktls.c: reads one record from a kernel-receive socket into d's buffer. */
enum io_res ep_ktls_record(struct ep *e, struct relay_dir *d);

#endif
