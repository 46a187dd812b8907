/* Worker threads (one event_base each, with their own SO_REUSEPORT listeners) and the
 * process-wide state they share (struct proc: it stays here, since workers and listeners
 * read its counters; proc.h has the functions that run the workers as a whole). Once started,
 * a worker's fields belong to its thread, except cmd and pending, which the main thread sets
 * (atomics), and the wake event it activates. */
#ifndef TLSPLICE_WORKER_H
#define TLSPLICE_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <sys/socket.h>

#include "tlsplice/bufpool.h"
#include "tlsplice/conn.h"
#include "tlsplice/runtime.h"

#define WORKER_POOL_MAX BUFPOOL_MAX

struct worker;

struct listener {
	struct worker *w;
	int fd;
	size_t fe_idx;
	struct sockaddr_storage addr; /* what fd is bound to: a reload keeps matching sockets */
	socklen_t addrlen;
	struct event ev;
	bool armed;
};

/* A new generation handed from the main thread to a worker by SIGHUP. */
struct reload {
	struct runtime *rt;         /* reference for the worker */
	struct listener *listeners; /* the new set; fds bound, events not yet assigned */
	size_t nlisteners;
	bool *keep; /* per old listener: its fd lives on in the new set */
};

struct proc {
	struct runtime *rt; /* the current generation (main thread's reference) */
	struct worker *workers;
	unsigned nworkers;
	atomic_long active;          /* open client connections, all workers */
	atomic_long max_connections; /* effective: configured, or what the fd limit allows */
	atomic_long fd_guard;        /* an accepted fd this high pauses accepting: fds run short */
	atomic_bool any_paused;      /* some worker stopped accepting at max_connections */
	struct event_base *main_base;
	struct event *worker_done; /* activated by each worker as it exits */
	atomic_uint ndone;
};

struct worker {
	struct proc *proc;
	struct conn_home home; /* event base, generation, open connections (see conn.h) */
	_Atomic(struct reload *) pending;
	unsigned id;
	pthread_t thread;
	struct listener *listeners;
	size_t nlisteners;
	struct event *wake;    /* cross-thread: drain, force, resume */
	struct event *backoff; /* EMFILE back-off timer */
	atomic_int cmd;        /* WORKER_CMD_* bits */
	bool draining;
	bool paused;         /* listeners off because of max_connections */
	struct bufpool pool; /* the relay buffers and pipes of this worker's connections */
};

#define WORKER_CMD_DRAIN 1
#define WORKER_CMD_FORCE 2
#define WORKER_CMD_RELOAD 4

/* Used by proc.c, on the main thread. init: the event base, pools and events of worker id of
 * p; on failure err says what, and worker_finish frees what was made. */
int worker_init(struct worker *w, struct proc *p, unsigned id, char *err, size_t errlen);
/* Hands w the listeners it accepts on (bound, not armed); w owns them from now on. */
void worker_set_listeners(struct worker *w, struct listener *ls, size_t n);
/* Frees what init made (a zeroed worker is fine); a pending reload is the caller's. */
void worker_finish(struct worker *w);
int worker_start(struct worker *w);             /* the thread; -1 with errno */
void worker_command(struct worker *w, int cmd); /* WORKER_CMD_* bits; any thread */
void worker_join(struct worker *w);

#endif
