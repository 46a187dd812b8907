/* DNS names of backend servers: a `server = NAME:PORT` line is resolved at load, then every
 * resolve_interval by a thread of its own through the system resolver (getaddrinfo), never
 * on an event loop. Each address becomes a server labelled "NAME:PORT (ADDR)"; when a name's
 * answers change, the main loop builds a new generation whose servers follow them. */
#ifndef TLSPLICE_RESOLVE_H
#define TLSPLICE_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "tlsplice/config.h"
#include "tlsplice/errlist.h"

/* Addresses taken from one name at most: more are left out (and logged). */
#define RESOLVE_MAX_ANSWERS 64

/* At load, on a config not shared yet: resolves every name of its servers. A name that does
 * not resolve is an error in errs when its backend has resolve_required = on, else a
 * warning in warns (the server has no address until it resolves). On a reload, a line that
 * the running resolver follows takes its latest answers instead of a lookup. */
void resolve_config(struct config *cfg, struct errlist *errs, struct errlist *warns);

/* The addresses the servers of line srv (a name) are built from: the latest the running
 * resolver of cfg found, else those found at load. A copy (caller frees; NULL when n is 0).
 * 0, or -1 (ENOMEM). */
int resolve_answers(const struct config *cfg, const struct cfg_server *srv, struct cfg_addr **out,
		    size_t *n);

struct resolver;

/* Starts the thread that resolves cfg's names again; changed(arg) is called from that thread
 * each time a name's answers changed. NULL with errno 0 when cfg has no name, else NULL on
 * failure. Signals are blocked in the thread. */
struct resolver *resolver_start(struct config *cfg, void (*changed)(void *), void *arg);
/* Stops and joins the thread (NULL is a no-op). */
void resolver_stop(struct resolver *r);

#endif
