/* Worker threads: each runs its own event_base with its own SO_REUSEPORT listening sockets,
 * so the kernel spreads new connections and no lock is taken on the connection path. */
#include "tlsplice/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlsplice/conn.h"
#include "tlsplice/listener.h"
#include "tlsplice/log.h"
#include "tlsplice/net.h"

#define FREEBUFS_MAX 64 /* relay buffers kept for reuse per worker */

char *worker_buf_get(struct worker *w)
{
	if (w->nfreebufs > 0)
		return w->freebufs[--w->nfreebufs];
	return malloc(RELAY_BUF_SIZE);
}

void worker_buf_put(struct worker *w, char *buf)
{
	if (w->nfreebufs < FREEBUFS_MAX)
		w->freebufs[w->nfreebufs++] = buf;
	else
		free(buf);
}

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

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	int cmd = atomic_exchange(&w->cmd, 0);
	if (cmd & (WORKER_CMD_DRAIN | WORKER_CMD_FORCE)) {
		w->draining = true;
		for (size_t i = 0; i < w->nlisteners; i++)
			listener_close(&w->listeners[i]);
	}
	if (cmd & WORKER_CMD_FORCE) {
		while (w->conns)
			conn_kill(w->conns, "shutdown");
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
	event_base_dispatch(w->base);
	for (size_t i = 0; i < w->nlisteners; i++)
		listener_close(&w->listeners[i]);
	while (w->conns)
		conn_kill(w->conns, "shutdown");
	atomic_fetch_add(&w->proc->ndone, 1);
	event_active(w->proc->worker_done, EV_READ, 0);
	return NULL;
}

static int worker_init(struct worker *w, struct proc *p, unsigned id, char *err, size_t errlen)
{
	const struct config *cfg = p->rt->cfg;
	w->proc = p;
	w->id = id;
	w->base = event_base_new();
	w->freebufs = calloc(FREEBUFS_MAX, sizeof(*w->freebufs));
	size_t n = 0;
	for (size_t f = 0; f < cfg->nfrontends; f++)
		n += cfg->frontends[f].nlistens;
	w->listeners = calloc(n ? n : 1, sizeof(*w->listeners));
	if (!w->base || !w->freebufs || !w->listeners) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	w->wake = event_new(w->base, -1, 0, on_wake, w);
	w->backoff = evtimer_new(w->base, on_backoff, w);
	for (size_t f = 0; f < cfg->nfrontends; f++) {
		const struct cfg_frontend *fe = &cfg->frontends[f];
		for (size_t i = 0; i < fe->nlistens; i++) {
			const struct cfg_addr *a = &fe->listens[i];
			struct listener *l = &w->listeners[w->nlisteners];
			l->w = w;
			l->fe_idx = f;
			l->fd = net_listen((const struct sockaddr *)&a->ss, a->len, true, err, errlen);
			if (l->fd < 0)
				return -1;
			w->nlisteners++;
			event_assign(&l->ev, w->base, l->fd, EV_READ | EV_PERSIST, listener_cb, l);
		}
	}
	return w->wake && w->backoff ? 0 : -1;
}

static void worker_finish(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++)
		listener_close(&w->listeners[i]);
	free(w->listeners);
	for (size_t i = 0; i < w->nfreebufs; i++)
		free(w->freebufs[i]);
	free(w->freebufs);
	if (w->wake)
		event_free(w->wake);
	if (w->backoff)
		event_free(w->backoff);
	if (w->base)
		event_base_free(w->base);
}

int proc_init(struct proc *p, struct runtime *rt, struct event_base *main_base, char *err,
	      size_t errlen)
{
	p->rt = rt;
	p->main_base = main_base;
	p->nworkers = (unsigned)rt->cfg->workers;
	p->max_connections = rt->cfg->max_connections;
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
