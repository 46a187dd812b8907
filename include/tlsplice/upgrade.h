/* Binary upgrade: the running (old) process starts the new binary with the same arguments
 * and one end of a Unix socketpair (TLSPLICE_UPGRADE_FD). The new process validates its
 * configuration and reports the errors, or asks for the listening sockets, which the old
 * one passes with SCM_RIGHTS together with its servers' run-time state; both accept on the
 * same sockets until the new one says it serves. Only then does the old process stop
 * accepting and drain. Failure, death or silence of the new process (UPGRADE_TIMEOUT_MS)
 * leaves the old one serving as before. Main thread only. */
#ifndef TLSPLICE_UPGRADE_H
#define TLSPLICE_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <event2/event.h>

#include "tlsplice/errlist.h"
#include "tlsplice/runtime.h"

#define UPGRADE_TIMEOUT_MS 10000
#define UPGRADE_ENV "TLSPLICE_UPGRADE_FD"

/* ----------------------------------------------------------------- the old process */

/* ok: the new process (pid) serves. Else text holds the reason, one line per error. */
typedef void upgrade_done_fn(void *arg, bool ok, pid_t pid, const char *text);

struct upgrade;

/* Remembers the command line (main), so that an upgrade starts the new binary with the
 * same arguments, and the path of the running executable, the default binary. */
void upgrade_save_args(int argc, char **argv);

/* Starts exe (NULL: the running executable's path) with the saved arguments. fds: the
 * listening sockets to pass; state: the servers' run-time state (upgrade_state_text).
 * done runs once, on the main thread. NULL with err filled if it could not start. */
struct upgrade *upgrade_start(struct event_base *base, const char *exe, const int *fds, size_t nfds,
			      const char *state, upgrade_done_fn *done, void *arg, char *err,
			      size_t errlen);
/* Ends an upgrade in progress (its new process is killed) or forgets a finished one;
 * done does not run. NULL ok. */
void upgrade_destroy(struct upgrade *u);

/* After success: the channel the connections that move go through (proc_hand_off); open
 * until upgrade_destroy. -1 if none. */
int upgrade_channel(const struct upgrade *u);
/* Any thread: sends one connection (its description and its two sockets). 0 or -1. */
int upgrade_send_conn(int fd, const char *meta, int cfd, int bfd);

/* The run-time state of rt's servers as text, malloc'd (NULL if out of memory). */
char *upgrade_state_text(const struct runtime *rt);

/* ----------------------------------------------------------------- the new process */

/* Takes the channel from the environment (and removes the variable). True if this process
 * was started by an upgrade. */
bool upgrade_child_init(void);
bool upgrade_is_child(void);
/* The configuration failed: its errors go to the old process, which reports them. */
void upgrade_child_fail(const struct errlist *errs);
/* The configuration is good: receives the listening sockets (for notify_take_listener)
 * and applies the servers' run-time state to rt. 0, or -1 with err filled. */
int upgrade_child_take(struct runtime *rt, char *err, size_t errlen);
/* A connection the old process passed: 0 when taken (cfd and bfd are the callee's), -1
 * when not (the caller closes them). */
typedef int upgrade_adopt_fn(void *arg, int cfd, int bfd, const char *meta);
/* Accepting now: tells the old process, which stops accepting; the connections it hands
 * over then arrive on base's loop and go to fn, until the old process exits. */
void upgrade_child_serving(struct event_base *base, upgrade_adopt_fn *fn, void *arg);
/* At exit: stops taking connections. */
void upgrade_child_finish(void);

#endif
