/* Backend pools: smooth weighted round-robin over the servers that are up, shared by all
 * workers without a lock, plus the per-server state that health checks and live traffic
 * update. One pool per [backend] section; pools belong to a config generation. */
#ifndef TLSPLICE_POOL_H
#define TLSPLICE_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tlsplice/config.h"

struct server {
	const struct cfg_server *cfg;
	struct pool *pool;
	unsigned idx; /* index in pool->servers */

	/* health state: written by health.c (and by live traffic through pool_report_*) */
	atomic_bool up;           /* counts as up; true until the first check completes */
	atomic_bool checked;      /* a check or a live connect has decided the state once */
	atomic_int ok_streak;     /* consecutive successes while down */
	atomic_int fail_streak;   /* consecutive failures while up */
	atomic_uint_fast64_t retry_at_ms; /* passive recovery: when a down server may be probed */

	/* counters for metrics and tests */
	atomic_uint_fast64_t connections;      /* client connections carried */
	atomic_uint_fast64_t connect_failures; /* failed connects of client traffic */
	atomic_uint_fast64_t check_failures;   /* failed active checks */
};

struct pool {
	const struct cfg_backend *cfg;
	struct server *servers;
	unsigned nservers;
	/* smooth weighted round-robin sequence of server indexes, one per weight unit,
	 * computed once; primaries and backups separately */
	unsigned *seq_primary, nseq_primary;
	unsigned *seq_backup, nseq_backup;
	atomic_uint_fast64_t rr_primary, rr_backup; /* positions in the sequences */
};

/* Set of servers already tried by one connection (retries skip them). */
struct pool_tried {
	uint64_t bits[4]; /* up to 256 servers tracked; more are never excluded */
};

int pool_init(struct pool *p, const struct cfg_backend *cfg);
void pool_finish(struct pool *p);

/* Next server for a new connection, skipping servers in tried; NULL if none is usable. */
struct server *pool_pick(struct pool *p, const struct pool_tried *tried, uint64_t now_ms);
void pool_tried_add(struct pool_tried *t, const struct server *s);
bool pool_tried_has(const struct pool_tried *t, const struct server *s);

/* On reload: s takes over the state and counters of old (the same server in the previous
 * generation). Down with check = none, it gets its passive probe after check_interval at
 * the latest, whatever the old generation's check was. Before s is visible to pickers. */
void pool_server_inherit(struct server *s, const struct server *old, uint64_t now_ms);

/* Live traffic results (passive health). */
void pool_report_connect_ok(struct server *s);
void pool_report_connect_fail(struct server *s, uint64_t now_ms, const char *reason);
/* A connect to s failed for a local reason (out of fds, memory, ports): not s's fault, so
 * only logged; nothing is counted against s. */
void pool_report_local_error(struct server *s, const char *reason);

/* Computes the smooth weighted round-robin order (nginx's algorithm) of n weights into out,
 * which holds sum(weights) entries; exposed for tests. Returns the number written. */
unsigned pool_swrr_sequence(const int *weights, unsigned n, unsigned *out);

/* clock_mono_ms(), the clock retry times and pick times are compared on. */
uint64_t pool_now_ms(void);

#endif
