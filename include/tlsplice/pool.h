/* Backend pools: smooth weighted round-robin over the servers that are up, shared by all
 * workers without a lock. One pool per [backend] section; pools belong to a config
 * generation. A server's state is its own (server.h); the pool picks among its servers and
 * passes live traffic's results on to them. */
#ifndef TLSPLICE_POOL_H
#define TLSPLICE_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "tlsplice/config.h"
#include "tlsplice/pool-t.h"
#include "tlsplice/server.h"

/* Set of servers already tried by one connection (retries skip them). */
struct pool_tried {
	uint64_t bits[4]; /* up to 256 servers tracked; more are never excluded */
};

int pool_init(struct pool *p, const struct cfg_backend *cfg);
/* The same over n servers other than cfg's lines (a name's line gives one per address);
 * servers must outlive p. */
int pool_init_servers(struct pool *p, const struct cfg_backend *cfg,
		      const struct cfg_server *servers, size_t n);
void pool_finish(struct pool *p);
/* Recomputes the order from the servers' weights (server_weight) after run-time changes;
 * only before p is visible to pickers (a new generation). 0, or -1 (ENOMEM, p unchanged). */
int pool_reorder(struct pool *p);

/* Next server for a new connection (round-robin or leastconn), skipping servers in tried and
 * servers at their maxconn; NULL if none is usable (errno EBUSY if one that is up was only
 * full, else ENOENT). The connection then holds one of the server's connection slots until it
 * gives it back with pool_release. */
struct server *pool_pick(struct pool *p, const struct pool_tried *tried, uint64_t now_ms);
/* Gives back the slot a pick of s took (a failed connect, or the connection's end). */
void pool_release(struct server *s);
/* Counts a connection that already exists (one adopted in an upgrade) as open to s, whatever
 * its maxconn; pool_release gives it back. */
void pool_hold(struct server *s);
/* backend_maxqueue: a connection that found no server takes a place in the queue (false if
 * none is left), and gives it back when it gets a server or gives up. */
bool pool_queue_enter(struct pool *p);
void pool_queue_leave(struct pool *p);
/* Connections waiting in the queue now. */
unsigned pool_queued(const struct pool *p);
/* Connections that hold a slot of server k now. */
unsigned pool_active(const struct pool *p, unsigned k);
/* On reload, before the new pool is visible: its server k counts its connections together
 * with server ok of the old pool (the same server). */
void pool_share_load(struct pool *p, unsigned k, const struct pool *old, unsigned ok);
void pool_tried_add(struct pool_tried *t, const struct server *s);
bool pool_tried_has(const struct pool_tried *t, const struct server *s);

/* Live traffic results (passive health), passed on to the server (server_report_*). */
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
