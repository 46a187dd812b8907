/* The workers as a whole: each binds every listen address itself (SO_REUSEPORT), so the
 * kernel spreads new connections and no lock is taken on the connection path. A reload
 * binds what the new generation adds before any worker sees it, keeps the sockets that stay,
 * and hands each worker its new set; a failure changes nothing. */
#include "tlsplice/proc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlsplice/fdbudget.h"
#include "tlsplice/net.h"

/* Binds the listeners cfg asks for, taking over a socket of old where the address is the
 * same (keep[i] is set for those); new sockets otherwise. */
static int make_listeners(const struct config *cfg, const struct listener *old, size_t nold,
			  bool *keep, bool check, struct listener **out, size_t *nout, char *err,
			  size_t errlen)
{
	size_t n = 0;
	for (size_t f = 0; f < cfg->nfrontends; f++)
		n += cfg->frontends[f].nlistens;
	struct listener *ls = calloc(n ? n : 1, sizeof(*ls));
	if (!ls) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	size_t k = 0;
	for (size_t f = 0; f < cfg->nfrontends; f++) {
		for (size_t i = 0; i < cfg->frontends[f].nlistens; i++, k++) {
			const struct cfg_addr *a = &cfg->frontends[f].listens[i];
			struct listener *l = &ls[k];
			l->fe_idx = f;
			l->fd = -1;
			l->addr = a->ss;
			l->addrlen = a->len;
			for (size_t j = 0; j < nold && l->fd < 0; j++) {
				if (!keep[j] && old[j].fd >= 0 && old[j].addrlen == a->len &&
				    memcmp(&old[j].addr, &a->ss, a->len) == 0) {
					keep[j] = true;
					l->fd = old[j].fd;
				}
			}
			const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
			if (l->fd < 0 && (!check || net_check_free(sa, a->len, err, errlen) == 0))
				l->fd = net_listen(sa, a->len, true, err, errlen);
			if (l->fd < 0)
				goto err;
		}
	}
	*out = ls;
	*nout = n;
	return 0;
err:
	for (size_t j = 0; j < k; j++) {
		bool kept = false;
		for (size_t o = 0; o < nold; o++)
			kept = kept || old[o].fd == ls[j].fd;
		if (!kept)
			close(ls[j].fd);
	}
	free(ls);
	return -1;
}

/* Frees a reload that was never applied, closing the sockets it bound (not those it shares
 * with the running set old). */
static void reload_free(struct reload *r, const struct listener *old, size_t nold)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nlisteners; i++) {
		bool shared = false;
		for (size_t o = 0; o < nold; o++)
			shared = shared || old[o].fd == r->listeners[i].fd;
		if (!shared && r->listeners[i].fd >= 0)
			close(r->listeners[i].fd);
	}
	free(r->listeners);
	free(r->keep);
	runtime_unref(r->rt);
	free(r);
}

/* Descriptors an accept must leave free beyond the connection's own, before the listeners
 * pause: a margin for what the budget does not see coming. */
#define FD_GUARD_SPARE 8

/* Plans descriptors for cfg: the listeners pause at the max_connections that fits. */
static void apply_budget(struct proc *p, const struct config *cfg)
{
	struct fdbudget b;
	fdbudget_apply(cfg, &b);
	uint64_t margin = (uint64_t)b.per_conn + FD_GUARD_SPARE;
	atomic_store(&p->max_connections, b.max_connections);
	long guard = LONG_MAX;
	if (b.limit < (uint64_t)LONG_MAX)
		guard = b.limit > margin ? (long)(b.limit - margin) : 0;
	atomic_store(&p->fd_guard, guard);
}

bool proc_reload_busy(struct proc *p)
{
	for (unsigned i = 0; i < p->nworkers; i++)
		if (atomic_load(&p->workers[i].pending))
			return true;
	return false;
}

int proc_reload(struct proc *p, struct runtime *rt, char *err, size_t errlen)
{
	struct reload **rs = calloc(p->nworkers, sizeof(*rs));
	unsigned i;
	if (!rs)
		goto oom;
	for (i = 0; i < p->nworkers; i++) {
		struct worker *w = &p->workers[i];
		if (atomic_load(&w->pending)) {
			snprintf(err, errlen, "a reload is still being applied");
			goto err;
		}
		rs[i] = calloc(1, sizeof(*rs[i]));
		if (!rs[i] || !(rs[i]->keep = calloc(w->nlisteners + 1, sizeof(bool))))
			goto oom_err;
		if (make_listeners(rt->cfg, w->listeners, w->nlisteners, rs[i]->keep, i == 0,
				   &rs[i]->listeners, &rs[i]->nlisteners, err, errlen) < 0)
			goto err;
	}
	for (i = 0; i < p->nworkers; i++) {
		rs[i]->rt = runtime_ref(rt);
		atomic_store(&p->workers[i].pending, rs[i]);
	}
	free(rs);
	runtime_unref(p->rt);
	p->rt = runtime_ref(rt);
	apply_budget(p, rt->cfg);
	proc_command(p, WORKER_CMD_RELOAD);
	return 0;
oom_err:
	snprintf(err, errlen, "out of memory");
err:
	for (unsigned j = 0; j < p->nworkers && rs[j]; j++)
		reload_free(rs[j], p->workers[j].listeners, p->workers[j].nlisteners);
	free(rs);
	return -1;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* A new worker's listeners. The first worker binds first: it checks that nobody else
 * listens there. */
static int bind_worker(struct proc *p, struct worker *w, char *err, size_t errlen)
{
	struct listener *ls;
	size_t n;
	if (make_listeners(p->rt->cfg, NULL, 0, NULL, w->id == 0, &ls, &n, err, errlen) < 0)
		return -1;
	worker_set_listeners(w, ls, n);
	return 0;
}

int proc_init(struct proc *p, struct runtime *rt, struct event_base *main_base, char *err,
	      size_t errlen)
{
	p->rt = runtime_ref(rt);
	p->main_base = main_base;
	p->nworkers = (unsigned)rt->cfg->workers;
	apply_budget(p, rt->cfg);
	p->workers = calloc(p->nworkers, sizeof(*p->workers));
	if (!p->workers) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < p->nworkers; i++) {
		if (worker_init(&p->workers[i], p, i, err, errlen) < 0 ||
		    bind_worker(p, &p->workers[i], err, errlen) < 0) {
			proc_finish(p);
			return -1;
		}
	}
	return 0;
}

void proc_finish(struct proc *p)
{
	for (unsigned i = 0; p->workers && i < p->nworkers; i++) {
		struct worker *w = &p->workers[i];
		reload_free(atomic_exchange(&w->pending, NULL), w->listeners, w->nlisteners);
		worker_finish(w);
	}
	free(p->workers);
	p->workers = NULL;
	runtime_unref(p->rt);
	p->rt = NULL;
}

int proc_start(struct proc *p)
{
	for (unsigned i = 0; i < p->nworkers; i++)
		if (worker_start(&p->workers[i]) < 0)
			return -1;
	return 0;
}

void proc_command(struct proc *p, int cmd)
{
	for (unsigned i = 0; i < p->nworkers; i++)
		worker_command(&p->workers[i], cmd);
}

void proc_join(struct proc *p)
{
	for (unsigned i = 0; i < p->nworkers; i++)
		worker_join(&p->workers[i]);
}
