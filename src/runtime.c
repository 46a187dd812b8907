/* A config generation with its TLS contexts and pools. */
#include "tlsplice/runtime.h"

#include <stdlib.h>

struct runtime *runtime_create(struct config *cfg, bool ktls, struct errlist *errs)
{
	struct runtime *rt = calloc(1, sizeof(*rt));
	if (!rt)
		return NULL;
	atomic_init(&rt->refs, 1);
	rt->cfg = config_ref(cfg);
	rt->tls = calloc(cfg->nfrontends ? cfg->nfrontends : 1, sizeof(*rt->tls));
	rt->pools = calloc(cfg->nbackends ? cfg->nbackends : 1, sizeof(*rt->pools));
	rt->stats = calloc(cfg->nfrontends ? cfg->nfrontends : 1, sizeof(*rt->stats));
	if (!rt->tls || !rt->pools || !rt->stats)
		goto err;
	int bad = 0;
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		rt->tls[i] = tls_frontend_create(cfg, &cfg->frontends[i], ktls, errs);
		if (!rt->tls[i])
			bad = 1;
	}
	for (size_t i = 0; i < cfg->nbackends; i++) {
		if (pool_init(&rt->pools[i], &cfg->backends[i]) < 0) {
			errlist_add(errs, cfg->path, cfg->backends[i].line, NULL, NULL,
				    "out of memory");
			bad = 1;
		}
	}
	if (bad)
		goto err;
	return rt;
err:
	runtime_unref(rt);
	return NULL;
}

struct runtime *runtime_ref(struct runtime *rt)
{
	atomic_fetch_add(&rt->refs, 1);
	return rt;
}

void runtime_unref(struct runtime *rt)
{
	if (!rt || atomic_fetch_sub(&rt->refs, 1) != 1)
		return;
	for (size_t i = 0; rt->tls && i < rt->cfg->nfrontends; i++)
		tls_frontend_destroy(rt->tls[i]);
	for (size_t i = 0; rt->pools && i < rt->cfg->nbackends; i++)
		if (rt->pools[i].servers)
			pool_finish(&rt->pools[i]);
	free(rt->tls);
	free(rt->pools);
	free(rt->stats);
	config_unref(rt->cfg);
	free(rt);
}
