/* Accepting: accept4 in batches, pausing at max_connections and backing off on EMFILE. */
#ifndef TLSPLICE_LISTENER_H
#define TLSPLICE_LISTENER_H

#include "tlsplice/worker.h"

void listener_arm(struct listener *l);    /* start accepting (no-op if armed or closed) */
void listener_disarm(struct listener *l); /* stop accepting, keep the socket */
void listener_close(struct listener *l);  /* new connects are refused from now on */
void listener_cb(evutil_socket_t fd, short what, void *arg);

#endif
