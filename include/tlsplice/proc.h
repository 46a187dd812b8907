/* The workers as a whole (struct proc, in worker.h): binding their listeners, starting and
 * joining their threads, drain and force commands, and handing a new config generation to
 * every worker on reload. Main thread only, except proc_command. */
#ifndef TLSPLICE_PROC_H
#define TLSPLICE_PROC_H

#include <stdbool.h>
#include <stddef.h>
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
void proc_join(struct proc *p);

#endif
