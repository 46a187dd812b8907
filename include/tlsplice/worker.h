/* Worker threads (one event_base each, with their own SO_REUSEPORT listeners) and the
 * process-wide state they share. */
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
#include "tlsplice/runtime.h"

#define WORKER_POOL_MAX BUFPOOL_MAX

struct conn;
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
	struct runtime *rt;          /* reference for the worker */
	struct listener *listeners;  /* the new set; fds bound, events not yet assigned */
	size_t nlisteners;
	bool *keep;                  /* per old listener: its fd lives on in the new set */
};

struct proc {
	struct runtime *rt;     /* the current generation (main thread's reference) */
	struct worker *workers;
	unsigned nworkers;
	atomic_long active;     /* open client connections, all workers */
	atomic_long max_connections; /* effective: configured, or what the fd limit allows */
	atomic_long fd_guard;   /* an accepted fd this high pauses accepting: fds run short */
	atomic_bool any_paused; /* some worker stopped accepting at max_connections */
	struct event_base *main_base;
	struct event *worker_done; /* activated by each worker as it exits */
	atomic_uint ndone;
};

struct worker {
	struct proc *proc;
	struct runtime *rt;     /* generation new connections use (worker's reference) */
	_Atomic(struct reload *) pending;
	unsigned id;
	pthread_t thread;
	struct event_base *base;
	struct listener *listeners;
	size_t nlisteners;
	struct event *wake;     /* cross-thread: drain, force, resume */
	struct event *backoff;  /* EMFILE back-off timer */
	atomic_int cmd;         /* WORKER_CMD_* bits */
	bool draining;
	bool paused;            /* listeners off because of max_connections */
	struct conn *conns;     /* doubly linked list of open connections */
	size_t nconns;
	struct bufpool pool;    /* the relay buffers and pipes of this worker's connections */
};

#define WORKER_CMD_DRAIN 1
#define WORKER_CMD_FORCE 2
#define WORKER_CMD_RELOAD 4

/* Binds every listen address of every frontend once per worker (SO_REUSEPORT), creates the
 * event bases. On failure err says what; nothing is left open. */
int proc_init(struct proc *p, struct runtime *rt, struct event_base *main_base, char *err,
	      size_t errlen);
void proc_finish(struct proc *p);
int proc_start(struct proc *p);
void proc_command(struct proc *p, int cmd); /* any thread */
/* Main thread: binds what rt adds, keeps sockets that stay, hands rt to every worker (takes
 * a reference for each). Nothing changes if it fails. */
int proc_reload(struct proc *p, struct runtime *rt, char *err, size_t errlen);
/* A previous reload is not taken by every worker yet. */
bool proc_reload_busy(struct proc *p);
void proc_join(struct proc *p);

/* Called by connections: a connection ended (accounts max_connections). */
void worker_conn_closed(struct worker *w);

#endif
