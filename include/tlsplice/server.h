/* A backend server's up/down state and its counters. Active checks (health.c) and client
 * traffic (through pool.h's pool_report_*) report results here; the state machine decides,
 * logs every change once, and arms the passive probe of a server that no check watches.
 * Every field is atomic and every function thread-safe: workers, the check thread and the
 * main thread (reload) use a server at once without a lock. Servers are allocated and
 * picked by their pool (pool.h) and belong to its config generation. */
#ifndef TLSPLICE_SERVER_H
#define TLSPLICE_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tlsplice/config.h"

struct pool;

/* What the operator made of a server at run time (the control socket): drain takes no new
 * connections and keeps open ones; maint does the same and also stops its health checks. */
enum server_admin { SERVER_READY, SERVER_DRAIN, SERVER_MAINT };

struct server {
	const struct cfg_server *cfg;
	struct pool *pool;
	unsigned idx; /* index in pool->servers */

	/* health state: written only by the functions below */
	atomic_bool up;                   /* counts as up; true until the first check completes */
	atomic_bool checked;              /* a check or a live connect has decided the state once */
	atomic_int ok_streak;             /* consecutive successes while down */
	atomic_int fail_streak;           /* consecutive failures while up */
	atomic_uint_fast64_t retry_at_ms; /* passive recovery: when a down server may be probed */
	atomic_uint_fast64_t up_since_ms; /* when it last came up; 0: up from the start */

	/* counters for metrics and tests */
	atomic_uint_fast64_t connections;      /* client connections carried */
	atomic_uint_fast64_t connect_failures; /* failed connects of client traffic */
	atomic_uint_fast64_t check_failures;   /* failed active checks */

	/* run-time administration (main thread writes, anyone reads) */
	atomic_int admin;                /* enum server_admin */
	atomic_int weight;               /* set at run time; 0: the file's weight */
	atomic_uint_fast64_t changed_ms; /* clock_mono_ms() of the last run-time change, 0: none */
};

/* A new server of pool p: up until its first result, nothing counted yet. */
void server_setup(struct server *s, struct pool *p, const struct cfg_server *cfg, unsigned idx);

/* Feeds one result into s's state machine: until the first result a server is up and the
 * first result decides at once; then check_rise successes mark it up and check_fall failures
 * mark it down. live: the result comes from client traffic (passive), not a check.
 * Logs every state change once. Returns true if the state changed. */
bool server_report(struct server *s, bool ok, bool live, const char *reason, uint64_t now_ms);

/* A connect of client traffic to s ended: counted for metrics, then reported as a live
 * result. */
void server_report_connect(struct server *s, bool ok, const char *reason, uint64_t now_ms);

/* A local resource error (net_error_is_local) met while connecting to s: logged (at most
 * once a second), never counted and never a state change. what: "check", "connect". */
void server_report_local(const struct server *s, const char *what, const char *reason);

/* Whether a new connection may go to s at now_ms: it is up, or it is down with check = none
 * and its passive probe is due, in which case this caller has claimed the one probe. */
bool server_usable(struct server *s, uint64_t now_ms);

/* Logs "backend X has no server available" when none of p's servers is up and it was not
 * yet said, or "has a server available again" when one is up after it was said. Called after
 * every state change (from any thread) and when a reload carries the mark over. */
void server_sync_availability(struct pool *p);

/* On reload: s takes over the state and counters of old (the same server in the previous
 * generation). Down with check = none, it gets its passive probe after check_interval at
 * the latest, whatever the old generation's check was. Before s is visible to pickers. */
void server_inherit(struct server *s, const struct server *old, uint64_t now_ms);

/* Whether a new connection may go to s: usable (server_usable) and READY. The pool's pick
 * asks this; drained and maintained servers are passed over. */
bool server_pickable(struct server *s, uint64_t now_ms);
/* READY: the operator has not drained it or put it in maint. */
bool server_admin_ready(const struct server *s);
/* Up and READY: counts as a primary that can carry traffic (backups wait for none). */
bool server_serving(const struct server *s);
/* The weight the round-robin order uses: the run-time one if set, else the file's. */
int server_weight(const struct server *s);
/* Main thread (control socket): sets the admin state or the run-time weight (1..256) and
 * logs the change. A weight change takes effect when the pool's order is rebuilt. */
void server_set_admin(struct server *s, enum server_admin a);
void server_set_weight(struct server *s, int weight);
/* "ready", "drain", "maint"; server_admin_parse: 0, or -1 for another word. */
const char *server_admin_name(enum server_admin a);
int server_admin_parse(const char *word, enum server_admin *out);
/* Health checks skip a server in maint. */
bool server_in_maint(const struct server *s);

#endif
