/* A config generation with its TLS contexts and pools. */
#include "tlsplice/runtime.h"

#include <stdlib.h>
#include <string.h>

#include "tlsplice/clock.h"
#include "tlsplice/log.h"
#include "tlsplice/resolve.h"

/* Appends the servers of line srv to out: itself, or one per address its name has now. */
static int servers_add(const struct config *cfg, const struct cfg_server *srv,
		       struct runtime_servers *out, size_t *cap)
{
	struct cfg_addr *addrs = NULL;
	size_t n = 1;
	if (srv->dns && resolve_answers(cfg, srv, &addrs, &n) < 0)
		return -1;
	if (out->n + n > *cap) {
		size_t want = (out->n + n) * 2;
		struct cfg_server *grown = realloc(out->v, want * sizeof(*grown));
		if (!grown) {
			free(addrs);
			return -1;
		}
		out->v = grown;
		*cap = want;
	}
	for (size_t k = 0; k < n; k++) {
		struct cfg_server *s = &out->v[out->n++];
		*s = *srv;
		s->answers = NULL;
		s->nanswers = 0;
		if (srv->dns)
			s->addr = addrs[k];
	}
	free(addrs);
	return 0;
}

static int servers_build(const struct config *cfg, const struct cfg_backend *be,
			 struct runtime_servers *out)
{
	size_t cap = 0;
	for (size_t i = 0; i < be->nservers; i++)
		if (servers_add(cfg, &be->servers[i], out, &cap) < 0)
			return -1;
	return 0;
}

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
	rt->servers = calloc(cfg->nbackends ? cfg->nbackends : 1, sizeof(*rt->servers));
	if (!rt->tls || !rt->pools || !rt->stats || !rt->servers)
		goto err;
	for (size_t i = 0; i < cfg->nfrontends; i++)
		if (!(rt->stats[i] = fe_stats_create()))
			goto err;
	int bad = 0;
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		rt->tls[i] = tls_frontend_create(cfg, &cfg->frontends[i], ktls, errs);
		if (!rt->tls[i])
			bad = 1;
	}
	for (size_t i = 0; i < cfg->nbackends; i++) {
		if (servers_build(cfg, &cfg->backends[i], &rt->servers[i]) < 0 ||
		    pool_init_servers(&rt->pools[i], &cfg->backends[i], rt->servers[i].v,
				      rt->servers[i].n) < 0) {
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
	for (size_t i = 0; rt->servers && i < rt->cfg->nbackends; i++)
		free(rt->servers[i].v);
	free(rt->servers);
	for (size_t i = 0; rt->stats && i < rt->cfg->nfrontends; i++)
		fe_stats_unref(rt->stats[i]);
	free(rt->stats);
	config_unref(rt->cfg);
	free(rt);
}

static const struct server *find_server(const struct runtime *rt, const char *backend,
					const char *addr)
{
	for (size_t i = 0; i < rt->cfg->nbackends; i++) {
		const struct pool *p = &rt->pools[i];
		if (strcmp(p->cfg->name, backend) != 0)
			continue;
		for (unsigned k = 0; k < p->nservers; k++)
			if (strcmp(p->servers[k].cfg->addr.text, addr) == 0)
				return &p->servers[k];
	}
	return NULL;
}

static const struct pool *find_pool(const struct runtime *rt, const char *backend)
{
	for (size_t i = 0; i < rt->cfg->nbackends; i++)
		if (strcmp(rt->pools[i].cfg->name, backend) == 0)
			return &rt->pools[i];
	return NULL;
}

/* The "no server available" mark follows the servers' inherited state, so that the line a
 * state change owes still comes in this generation: the recovery after an outage that
 * started before the reload, or the outage itself when the reload removed the last server
 * that was up (its successors are marked from here on, not flipped). */
static void inherit_availability(struct pool *p, const struct pool *old)
{
	atomic_store(&p->none_up, atomic_load(&old->none_up));
	server_sync_availability(p);
}

void runtime_inherit(struct runtime *rt, const struct runtime *old)
{
	uint64_t now_ms = clock_mono_ms();

	for (size_t i = 0; i < rt->cfg->nfrontends; i++) {
		for (size_t j = 0; j < old->cfg->nfrontends; j++) {
			if (strcmp(rt->cfg->frontends[i].name, old->cfg->frontends[j].name) == 0) {
				fe_stats_unref(rt->stats[i]);
				rt->stats[i] = fe_stats_ref(old->stats[j]);
				break;
			}
		}
	}
	for (size_t i = 0; i < rt->cfg->nbackends; i++) {
		struct pool *p = &rt->pools[i];
		for (unsigned k = 0; k < p->nservers; k++) {
			struct server *s = &p->servers[k];
			const struct server *o = find_server(old, p->cfg->name, s->cfg->addr.text);
			if (!o)
				continue;
			server_inherit(s, o, now_ms);
			pool_share_load(p, k, o->pool, o->idx);
		}
		const struct pool *op = find_pool(old, p->cfg->name);
		if (op)
			inherit_availability(p, op);
	}
}
