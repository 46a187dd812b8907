/* Worker threads: each runs its own event_base with its own SO_REUSEPORT listening sockets,
 * so the kernel spreads new connections and no lock is taken on the connection path. */
#include "tlsplice/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlsplice/conn.h"
#include "tlsplice/fdbudget.h"
#include "tlsplice/listener.h"
#include "tlsplice/log.h"
#include "tlsplice/net.h"


static void resume(struct worker *w)
{
	if (w->draining || atomic_load(&w->proc->active) >= w->proc->max_connections)
		return;
	w->paused = false;
	for (size_t i = 0; i < w->nlisteners; i++)
		listener_arm(&w->listeners[i]);
}

void worker_conn_closed(struct worker *w)
{
	struct proc *p = w->proc;
	w->nconns--;
	atomic_fetch_sub(&p->active, 1);
	if (atomic_exchange(&p->any_paused, false)) {
		for (unsigned i = 0; i < p->nworkers; i++)
			event_active(p->workers[i].wake, EV_READ, 0);
	}
	if (w->draining && w->nconns == 0)
		event_base_loopexit(w->base, NULL);
}

static void apply_reload(struct worker *w);

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	int cmd = atomic_exchange(&w->cmd, 0);
	if ((cmd & WORKER_CMD_RELOAD) && !w->draining) {
		apply_reload(w);
		w->paused = true; /* re-armed below unless at max_connections */
	}
	if (cmd & (WORKER_CMD_DRAIN | WORKER_CMD_FORCE)) {
		w->draining = true;
		for (size_t i = 0; i < w->nlisteners; i++)
			listener_close(&w->listeners[i]);
	}
	if (cmd & WORKER_CMD_FORCE) {
		while (w->conns)
			conn_kill(w->conns, CLOSE_SHUTDOWN);
	}
	if (w->draining && w->nconns == 0) {
		event_base_loopexit(w->base, NULL);
		return;
	}
	if (w->paused)
		resume(w);
}

static void on_backoff(evutil_socket_t fd, short what, void *arg)
{
	resume(arg);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	resume(w);
	/* a paused worker may have no event pending at all: keep looping until told to stop */
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	for (size_t i = 0; i < w->nlisteners; i++)
		listener_close(&w->listeners[i]);
	while (w->conns)
		conn_kill(w->conns, CLOSE_SHUTDOWN);
	atomic_fetch_add(&w->proc->ndone, 1);
	event_active(w->proc->worker_done, EV_READ, 0);
	return NULL;
}

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

static void assign_listeners(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++) {
		struct listener *l = &w->listeners[i];
		l->w = w;
		l->armed = false;
		event_assign(&l->ev, w->base, l->fd, EV_READ | EV_PERSIST, listener_cb, l);
	}
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

/* In the worker: swap in the generation the main thread prepared. */
static void apply_reload(struct worker *w)
{
	struct reload *r = atomic_exchange(&w->pending, NULL);
	if (!r)
		return;
	for (size_t i = 0; i < w->nlisteners; i++) {
		listener_disarm(&w->listeners[i]);
		if (!r->keep[i])
			close(w->listeners[i].fd);
	}
	free(w->listeners);
	w->listeners = r->listeners;
	w->nlisteners = r->nlisteners;
	assign_listeners(w);
	runtime_unref(w->rt);
	w->rt = r->rt;
	free(r->keep);
	free(r);
}

static int worker_init(struct worker *w, struct proc *p, unsigned id, char *err, size_t errlen)
{
	w->proc = p;
	w->id = id;
	w->rt = runtime_ref(p->rt);
	struct event_config *ec = event_config_new();
	/* interest changes made within one loop pass cost one epoll_ctl, or none if they
	 * cancel out (a read event turned off and on again, a socket closed right after) */
	if (ec)
		event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	w->base = ec ? event_base_new_with_config(ec) : NULL;
	if (ec)
		event_config_free(ec);
	if (!w->base || bufpool_init(&w->pool) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	w->wake = event_new(w->base, -1, 0, on_wake, w);
	w->backoff = evtimer_new(w->base, on_backoff, w);
	/* the first worker binds first: it checks that nobody else listens there */
	if (make_listeners(p->rt->cfg, NULL, 0, NULL, id == 0, &w->listeners, &w->nlisteners,
			   err, errlen) < 0)
		return -1;
	assign_listeners(w);
	return w->wake && w->backoff ? 0 : -1;
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

static void worker_finish(struct worker *w)
{
	reload_free(atomic_exchange(&w->pending, NULL), w->listeners, w->nlisteners);
	for (size_t i = 0; i < w->nlisteners; i++)
		listener_close(&w->listeners[i]);
	free(w->listeners);
	bufpool_finish(&w->pool);
	if (w->wake)
		event_free(w->wake);
	if (w->backoff)
		event_free(w->backoff);
	runtime_unref(w->rt);
	if (w->base)
		event_base_free(w->base);
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
		if (worker_init(&p->workers[i], p, i, err, errlen) < 0) {
			proc_finish(p);
			return -1;
		}
	}
	return 0;
}

void proc_finish(struct proc *p)
{
	for (unsigned i = 0; p->workers && i < p->nworkers; i++)
		worker_finish(&p->workers[i]);
	free(p->workers);
	p->workers = NULL;
	runtime_unref(p->rt);
	p->rt = NULL;
}

int proc_start(struct proc *p)
{
	for (unsigned i = 0; i < p->nworkers; i++) {
		int e = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);
		if (e) {
			errno = e;
			return -1;
		}
	}
	return 0;
}

void proc_command(struct proc *p, int cmd)
{
	for (unsigned i = 0; i < p->nworkers; i++) {
		atomic_fetch_or(&p->workers[i].cmd, cmd);
		event_active(p->workers[i].wake, EV_READ, 0);
	}
}

void proc_join(struct proc *p)
{
	for (unsigned i = 0; i < p->nworkers; i++)
		pthread_join(p->workers[i].thread, NULL);
}
