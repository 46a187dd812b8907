/* The workers as a whole (struct proc, in worker.h): binding their listeners, starting and
 * joining their threads, drain and force commands, and handing a new config generation to
 * every worker on reload. Main thread only, except proc_command. */
#ifndef TLSPLICE_PROC_H
#define TLSPLICE_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "tlsplice/runtime.h"
#include "tlsplice/worker.h"

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
/* Waits, at most timeout_ms, until every worker has taken the generation it was handed (a
 * worker in the middle of a handshake takes it a moment later). False if one still has not:
 * commands that follow each other on the control socket must not find the one before still
 * on its way. Main thread. */
bool proc_settle(struct proc *p, int timeout_ms);
void proc_join(struct proc *p);

/* Main thread, no reload pending: the listening sockets of every worker (an upgrade passes
 * them all, so that no socket of a SO_REUSEPORT group is left without a taker). At most
 * cap; returns the number. */
size_t proc_listener_fds(const struct proc *p, int *out, size_t cap);

/* Binary upgrade, old process (main thread): every worker sends its movable connections
 * (conn_movable) to the new process over the channel fd, which must stay open until the
 * workers are joined. */
void proc_hand_off(struct proc *p, int fd);
/* New process (main thread): a worker takes the connection (conn_adopt); it owns cfd and
 * bfd from here on, and closes them if it cannot. -1 if it could not be queued (the
 * caller closes them). */
int proc_adopt(struct proc *p, int cfd, int bfd, const char *meta);

/* One open connection as the control socket shows it, copied on its worker's thread. */
struct conn_info {
	uint64_t age_ms;
	char frontend[64], client[64], backend[64], server[128];
	const char *path; /* "splice", "userspace", "mixed", or the state before the relay */
	uint64_t bytes_in, bytes_out;
};

/* A list of every worker's connections, gathered on the workers' own threads. */
struct proc_snap;
typedef void proc_snap_fn(struct proc_snap *snap, void *arg);

/* Main thread: asks every worker for its connections; done(snap, arg) runs on the main
 * thread once all have answered. A worker that exits first never answers, so the caller
 * bounds its wait. NULL with errno on failure. */
struct proc_snap *proc_snapshot(struct proc *p, proc_snap_fn *done, void *arg);
/* Main thread: the caller is done with snap (done will not run any more). NULL ok. */
void proc_snap_release(struct proc_snap *snap);
/* The connections gathered, at most PROC_SNAP_MAX, in no order. */
const struct conn_info *proc_snap_conns(const struct proc_snap *snap, size_t *n);
#define PROC_SNAP_MAX 100000

#endif
