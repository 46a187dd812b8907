/* Moving bytes between the client's TLS socket and the backend, one direction at a time,
 * over the endpoints' operations (ep.h): userspace TLS, kernel TLS with splice or recvmsg,
 * plain TCP. The relay reports what happened to its caller (enum io_res, and why in the
 * caller's struct close_cause); it never calls back into the connection. */
#ifndef TLSPLICE_RELAY_H
#define TLSPLICE_RELAY_H

#include <stdbool.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "tlsplice/bufpool.h"
#include "tlsplice/ep.h"

struct relay {
	struct ep client, backend;
	struct relay_dir up;   /* client -> backend ("in") */
	struct relay_dir down; /* backend -> client ("out") */
	struct ep_tls tls;     /* the client's TLS session */
	bool moved;            /* bytes moved in the last pump: the idle clock restarts */
};

/* What the relay waits for, as bits. */
#define RELAY_CREAD 1
#define RELAY_CWRITE 2
#define RELAY_BREAD 4
#define RELAY_BWRITE 8
#define RELAY_AGAIN 16 /* run again soon, without waiting for an event */
#define RELAY_ANY 31

/* At accept: nothing held yet, so that relay_finish is safe at any time. Buffers and pipes
 * come from pool; why the relay ends goes to cc. */
void relay_prepare(struct relay *r, struct bufpool *pool, struct close_cause *cc);
/* Chooses each direction's path once the handshake is done and kernel TLS is settled on the
 * client socket cfd (ktls: KTLS_TX|KTLS_RX). Returns true when the kernel does all of the
 * TLS and splice moves both ways: the relay no longer uses ssl, which may be freed. */
bool relay_init(struct relay *r, int cfd, SSL *ssl, int ktls, bool tls13, bool splice);
/* The backend is connected on bfd. */
void relay_start(struct relay *r, int bfd);
/* Moves what can move now in the directions waiting for one of the ready events (RELAY_*
 * bits). IO_OK with the events to wait for in *want; IO_EOF when both directions have
 * ended; IO_ERROR when the connection must end now. The close_cause says why. */
enum io_res relay_pump(struct relay *r, int ready, int *want);
/* Frees buffers and pipes; after a fatal record error first sends the alert, a FIN, and
 * reads what the client had already sent, so that it sees the alert and a FIN, not a reset. */
void relay_finish(struct relay *r);
/* Best effort, never blocks: close_notify to the client unless it was sent (timeouts,
 * shutdown, no server). */
void relay_close_notify(struct relay *r);
const char *relay_mode_name(const struct relay *r);

#endif
