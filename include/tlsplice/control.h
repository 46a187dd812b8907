/* The control socket ([global] control): a Unix stream socket, mode 0600, on the main
 * event loop. One text command per line (at most CONTROL_LINE_MAX bytes), one answer per
 * command ending with an empty line; the connection stays open for more. Everything is
 * non-blocking on the main thread, where reload runs too, so a command never races a
 * reload and a client that never finishes a line holds only its own buffer. Main thread
 * only. */
#ifndef TLSPLICE_CONTROL_H
#define TLSPLICE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "tlsplice/errlist.h"
#include "tlsplice/proc.h"

#define CONTROL_LINE_MAX 4096
#define CONTROL_CLIENTS_MAX 32
#define CONTROL_IDLE_MS 60000 /* a client silent for this long is closed */

/* What the control socket asks of the process that runs it (app.c). */
struct control_ops {
	void *arg;
	/* Reload as SIGHUP does; the errors go to errs. 0 or -1. */
	int (*reload)(void *arg, struct errlist *errs);
	/* A new generation of the running configuration, so that run-time weights reorder the
	 * pools. 0, or -1 with err filled. */
	int (*reorder)(void *arg, char *err, size_t errlen);
	/* Configuration generations applied since start (1 at start). */
	unsigned (*generation)(void *arg);
	/* Starts an upgrade to path (NULL: this binary); its outcome comes through
	 * control_upgrade_done with client. 0, or -1 with err filled. */
	int (*upgrade)(void *arg, const char *path, uint64_t client, char *err, size_t errlen);
};

struct control;

/* Listens at path (a stale socket file is replaced). proc is read for servers, connections
 * and counters. NULL with err filled on failure. */
struct control *control_create(struct event_base *base, const char *path, struct proc *proc,
			       const struct control_ops *ops, char *err, size_t errlen);
/* The outcome of an upgrade that client asked for: "ok: TEXT", or "error: upgrade failed:"
 * and text's lines. Nothing if the client is gone. */
void control_upgrade_done(struct control *ctl, uint64_t client, bool ok, const char *text);
/* The listening socket (an upgrade passes it on), -1 if none. NULL ok. */
int control_fd(const struct control *ctl);
/* The new process of an upgrade serves this socket: stop accepting on it, and leave the
 * file in place at exit. Clients already connected stay. NULL ok. */
void control_handover(struct control *ctl);
/* Closes every client and removes the socket file. NULL ok. */
void control_destroy(struct control *ctl);

#endif
