/* Moving bytes between the client's TLS socket and the backend, one direction at a time:
 * userspace (SSL_read -> write, read -> SSL_write, one buffer each) or, where the kernel
 * holds that direction's TLS, splice through a pipe. */
#ifndef TLSPLICE_RELAY_H
#define TLSPLICE_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "tlsplice/record.h"

struct conn;

struct relay_dir {
	char *buf;          /* userspace: pending bytes buf[off..len); NULL while empty */
	uint32_t off, len;
	bool eof;           /* the source ended (FIN or close_notify) */
	bool shut;          /* the sink's write side is shut (FIN or close_notify sent) */
	bool splice;        /* this direction moves through a pipe (its TLS is in the kernel) */
	bool kread;         /* client->backend with kernel RX but splice off: recvmsg reads */
	int pipe[2];        /* splice: pipe held while bytes are in flight */
	uint32_t in_pipe;
	int want;           /* RELAY_* events this direction waits for */
	uint64_t bytes;
	/* client -> backend only: the record policy's memory and what it needs */
	bool tls13;
	struct record_state rec;
	int16_t last_type;             /* userspace: content type of the last record read */
	int16_t alert_level, alert;    /* userspace: the last alert the client sent, -1 none */
	bool failed;                   /* a fatal record waits until what came before is out */
	struct record_verdict verdict; /* ... and this is it */
};

/* Ciphertext for the client gathered from several records, sent with one system call
 * (userspace sending only: OpenSSL writes records into it through a BIO of ours). */
struct relay_tx {
	char *buf;
	uint32_t off, len;
	bool on;           /* the SSL's write BIO is ours */
	bool notify;       /* close_notify is queued (sent once tx drains) */
	bool fatal;        /* a fatal record error: alert, FIN and drain at teardown */
	int16_t alert;     /* the fatal alert kernel TX sends then (-1: none; OpenSSL sends
			    * its own where it does the sending) */
};

/* What the relay waits for, as bits. */
#define RELAY_CREAD 1
#define RELAY_CWRITE 2
#define RELAY_BREAD 4
#define RELAY_BWRITE 8
#define RELAY_AGAIN 16 /* run again soon, without waiting for an event */
#define RELAY_ANY 31

/* Chooses each direction's path once the handshake is done and kernel TLS is settled. */
void relay_init(struct conn *c, bool splice);
/* Moves what can move now in the directions waiting for one of the ready events (RELAY_*
 * bits). Returns the events to wait for; when both directions have ended, or on error,
 * sets the connection CLOSED (via conn_end). */
int relay_pump(struct conn *c, int ready);
/* Frees buffers and pipes; after a fatal record error first sends the alert, a FIN, and
 * reads what the client had already sent, so that it sees the alert and a FIN, not a reset. */
void relay_finish(struct conn *c);
/* Best effort, never blocks: close_notify to the client unless it was sent (timeouts,
 * shutdown, no server). */
void relay_close_notify(struct conn *c);
const char *relay_mode_name(const struct conn *c);

#endif
