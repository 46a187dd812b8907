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
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "tlsplice/clock.h"
#include "tlsplice/fdbudget.h"
#include "tlsplice/net.h"
#include "tlsplice/log.h"
#include "tlsplice/notify.h"
#include "tlsplice/upgrade.h"

/* Binary upgrade: one hand-off job per worker, kept until proc_finish (a worker that exits
 * before running its job, with nothing left to move, must not leak it). */
struct hand_off {
	struct worker *w;
	int fd; /* the channel to the new process */
};
static struct hand_off *hand_off_jobs;

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
			if (l->fd < 0) /* a socket the service manager or the old process passed */
				l->fd = notify_take_listener(sa, a->len, NULL);
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

bool proc_settle(struct proc *p, int timeout_ms)
{
	uint64_t end = clock_mono_ms() + (uint64_t)timeout_ms;

	while (proc_reload_busy(p)) {
		if (clock_mono_ms() >= end)
			return false;
		nanosleep(&(struct timespec){ 0, 500 * 1000 }, NULL);
	}
	return true;
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
	free(hand_off_jobs);
	hand_off_jobs = NULL;
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

size_t proc_listener_fds(const struct proc *p, int *out, size_t cap)
{
	size_t n = 0;
	for (unsigned i = 0; i < p->nworkers; i++)
		for (size_t k = 0; k < p->workers[i].nlisteners && n < cap; k++)
			if (p->workers[i].listeners[k].fd >= 0)
				out[n++] = p->workers[i].listeners[k].fd;
	return n;
}

/* ---------------------------------------------------------------- connection lists */

struct snap_job {
	struct proc_snap *snap;
	struct worker *w;
};

struct proc_snap {
	atomic_int refs; /* the main thread's, and one per worker that has not answered */
	atomic_uint pending;
	pthread_mutex_t mu;
	struct conn_info *v;
	size_t n, cap;
	struct event *done_ev; /* on the main base: the last worker activates it */
	bool fired;            /* done_ev has run */
	proc_snap_fn *done;    /* NULL once the caller released it */
	void *arg;
	struct snap_job *jobs;
};

static void snap_unref(struct proc_snap *s)
{
	if (atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	if (s->done_ev)
		event_free(s->done_ev);
	pthread_mutex_destroy(&s->mu);
	free(s->v);
	free(s->jobs);
	free(s);
}

static void conn_info_fill(struct conn_info *ci, const struct conn *c, uint64_t now_us)
{
	static const char *const states[] = { "handshake", "connecting", "relay", "closed" };
	const struct config *cfg = c->rt->cfg;

	memset(ci, 0, sizeof(*ci));
	ci->age_ms = now_us > c->t_accept_us ? (now_us - c->t_accept_us) / 1000 : 0;
	snprintf(ci->frontend, sizeof(ci->frontend), "%s", cfg->frontends[c->fe_idx].name);
	net_addr_text((const struct sockaddr *)&c->peer, ci->client, sizeof(ci->client));
	if (c->pool)
		snprintf(ci->backend, sizeof(ci->backend), "%s", c->pool->cfg->name);
	if (c->server)
		snprintf(ci->server, sizeof(ci->server), "%s", c->server->cfg->addr.text);
	ci->path = c->relayed ? relay_mode_name(&c->relay) : states[c->state];
	ci->bytes_in = c->relay.up.bytes;
	ci->bytes_out = c->relay.down.bytes;
}

/* On a worker's thread: copies its connections into the list. */
static void snap_collect(evutil_socket_t fd, short what, void *arg)
{
	struct snap_job *job = arg;
	struct proc_snap *s = job->snap;
	uint64_t now_us = clock_mono_us();

	pthread_mutex_lock(&s->mu);
	for (const struct conn *c = job->w->home.conns; c && s->n < s->cap; c = c->next)
		conn_info_fill(&s->v[s->n++], c, now_us);
	pthread_mutex_unlock(&s->mu);
	if (atomic_fetch_sub(&s->pending, 1) == 1)
		event_active(s->done_ev, EV_READ, 0);
	snap_unref(s);
}

/* On the main thread once every worker answered. The main thread's reference is dropped
 * here or by proc_snap_release, whichever comes last. */
static void snap_done(evutil_socket_t fd, short what, void *arg)
{
	struct proc_snap *s = arg;

	s->fired = true;
	if (s->done)
		s->done(s, s->arg);
	else
		snap_unref(s);
}

static struct proc_snap *snap_alloc(struct proc *p, size_t cap)
{
	struct proc_snap *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->mu, NULL);
	atomic_init(&s->refs, 1);
	s->cap = cap;
	s->v = calloc(cap ? cap : 1, sizeof(*s->v));
	s->jobs = calloc(p->nworkers ? p->nworkers : 1, sizeof(*s->jobs));
	s->done_ev = event_new(p->main_base, -1, 0, snap_done, s);
	if (!s->v || !s->jobs || !s->done_ev) {
		snap_unref(s);
		errno = ENOMEM;
		return NULL;
	}
	return s;
}

struct proc_snap *proc_snapshot(struct proc *p, proc_snap_fn *done, void *arg)
{
	long active = atomic_load(&p->active);
	size_t cap = active < 0 ? 0 : (size_t)active + 64 * p->nworkers;
	struct proc_snap *s = snap_alloc(p, cap < PROC_SNAP_MAX ? cap : PROC_SNAP_MAX);
	static const struct timeval now = { 0, 0 };

	if (!s)
		return NULL;
	s->done = done;
	s->arg = arg;
	atomic_init(&s->pending, p->nworkers);
	if (p->nworkers == 0)
		event_active(s->done_ev, EV_READ, 0);
	for (unsigned i = 0; i < p->nworkers; i++) {
		s->jobs[i] = (struct snap_job){ s, &p->workers[i] };
		atomic_fetch_add(&s->refs, 1);
		if (event_base_once(p->workers[i].home.base, -1, EV_TIMEOUT, snap_collect,
				    &s->jobs[i], &now) < 0) {
			atomic_fetch_sub(&s->refs,
					 1); /* never answers: the caller's wait ends it */
		}
	}
	return s;
}

void proc_snap_release(struct proc_snap *snap)
{
	if (!snap)
		return;
	if (snap->fired)
		snap_unref(snap);
	else
		snap->done = NULL;
}

const struct conn_info *proc_snap_conns(const struct proc_snap *snap, size_t *n)
{
	*n = snap->n;
	return snap->v;
}

/* ---------------------------------------------------------- connections across an upgrade */

struct move_job {
	struct worker *w;
	int cfd, bfd;
	char meta[];
};

/* On a worker's thread: its movable connections go to the new process; the others stay
 * and drain here. */
static void hand_off_job(evutil_socket_t unused, short what, void *arg)
{
	struct hand_off *j = arg;
	/* holds the longest line conn_import takes, traffic secrets included */
	char meta[2048];
	unsigned moved = 0, stayed = 0;

	for (struct conn *c = j->w->home.conns, *next; c; c = next) {
		next = c->next;
		if (conn_movable(c) && conn_export(c, meta, sizeof(meta)) == 0 &&
		    upgrade_send_conn(j->fd, meta, c->cfd, c->bfd) == 0) {
			conn_hand_off(c);
			moved++;
		} else {
			stayed++;
		}
	}
	OPENSSL_cleanse(meta, sizeof(meta)); /* the TLS 1.3 traffic secrets of the last one */
	if (moved || stayed)
		log_info("upgrade: worker %u handed %u connections to the new process; %u stay "
			 "until they end",
			 j->w->id, moved, stayed);
}

void proc_hand_off(struct proc *p, int fd)
{
	static const struct timeval now = { 0, 0 };
	if (hand_off_jobs || !(hand_off_jobs = calloc(p->nworkers, sizeof(*hand_off_jobs))))
		return;
	for (unsigned i = 0; i < p->nworkers; i++) {
		struct hand_off *j = &hand_off_jobs[i];
		j->w = &p->workers[i];
		j->fd = fd;
		event_base_once(j->w->home.base, -1, EV_TIMEOUT, hand_off_job, j, &now);
	}
}

static void adopt_job(evutil_socket_t unused, short what, void *arg)
{
	struct move_job *j = arg;
	if (conn_adopt(&j->w->home, j->cfd, j->bfd, j->meta) < 0) {
		log_warn("upgrade: a connection from the old process could not be taken: %s",
			 "unknown frontend or out of memory");
		close(j->cfd);
		close(j->bfd);
		atomic_fetch_sub(&j->w->proc->active, 1);
	}
	OPENSSL_cleanse(j->meta, strlen(j->meta)); /* may hold traffic secrets */
	free(j);
}

int proc_adopt(struct proc *p, int cfd, int bfd, const char *meta)
{
	static const struct timeval now = { 0, 0 };
	static unsigned next;
	size_t len = strlen(meta);
	struct move_job *j = calloc(1, sizeof(*j) + len + 1);
	if (!j || p->nworkers == 0) {
		free(j);
		return -1;
	}
	j->w = &p->workers[next++ % p->nworkers];
	j->cfd = cfd;
	j->bfd = bfd;
	memcpy(j->meta, meta, len + 1);
	atomic_fetch_add(&p->active, 1);
	if (event_base_once(j->w->home.base, -1, EV_TIMEOUT, adopt_job, j, &now) < 0) {
		atomic_fetch_sub(&p->active, 1);
		OPENSSL_cleanse(j->meta, len);
		free(j);
		return -1;
	}
	return 0;
}
