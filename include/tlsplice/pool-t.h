/* The pool's type apart from its functions (pool.h), as HAProxy's -t.h headers: a server
 * reads its backend's check settings through s->pool without depending on the pool's code,
 * which itself depends on the server's. Ownership and thread safety: see pool.h. */
#ifndef TLSPLICE_POOL_T_H
#define TLSPLICE_POOL_T_H

#include <stdatomic.h>

#include "tlsplice/config.h"

struct server;
struct pool_load;

struct pool {
	const struct cfg_backend *cfg;
	struct server *servers;
	unsigned nservers;
	/* smooth weighted round-robin sequence of server indexes, one per weight unit,
	 * computed once; primaries and backups separately */
	unsigned *seq_primary, nseq_primary;
	unsigned *seq_backup, nseq_backup;
	atomic_uint_fast64_t rr_primary, rr_backup; /* positions in the sequences */
	atomic_bool none_up; /* "no server available" was logged: the next UP logs recovery */
	/* per server: its connections open now (connecting or relaying), shared with the same
	 * server of the generations before and after a reload, so leastconn and maxconn count
	 * every connection whatever generation it started in */
	struct pool_load **load;
	atomic_uint_fast64_t lc_next; /* leastconn: where the scan starts, so ties rotate */
	atomic_uint queued;           /* connections waiting for a server (backend_maxqueue) */
};

#endif
