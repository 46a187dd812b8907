/* One generation of what the config builds: TLS contexts per frontend and pools per backend.
 * Connections hold a reference, so a reload can swap generations under live traffic. */
#ifndef TLSPLICE_RUNTIME_H
#define TLSPLICE_RUNTIME_H

#include <stdatomic.h>

#include "tlsplice/config.h"
#include "tlsplice/errlist.h"
#include "tlsplice/pool.h"
#include "tlsplice/stats.h"
#include "tlsplice/tls.h"

struct runtime {
	atomic_int refs;
	struct config *cfg;
	struct tls_frontend **tls; /* one per frontend */
	struct pool *pools;        /* one per backend */
	struct fe_stats **stats;   /* one per frontend, shared with the previous generation */
	/* per backend: the servers its pool is built from, a name's line once per address */
	struct runtime_servers {
		struct cfg_server *v;
		size_t n;
	} * servers;
};

/* Builds TLS contexts and pools for cfg (takes its own reference). Errors go to errs. */
struct runtime *runtime_create(struct config *cfg, bool ktls, struct errlist *errs);
struct runtime *runtime_ref(struct runtime *rt);
void runtime_unref(struct runtime *rt); /* NULL ok */
/* On reload: servers that stay (same backend and address) keep their health state, and
 * frontends that stay keep their counters, so a reload neither flaps nor resets metrics. */
void runtime_inherit(struct runtime *rt, const struct runtime *old);

#endif
