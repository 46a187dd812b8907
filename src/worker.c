/* Worker threads: each runs its own event_base with its own SO_REUSEPORT listening sockets,
 * so the kernel spreads new connections and no lock is taken on the connection path. */
#include "tlsplice/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tlsplice/conn.h"
#include "tlsplice/listener.h"

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

static void assign_listeners(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++) {
		struct listener *l = &w->listeners[i];
		l->w = w;
		l->armed = false;
		event_assign(&l->ev, w->base, l->fd, EV_READ | EV_PERSIST, listener_cb, l);
	}
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

int worker_init(struct worker *w, struct proc *p, unsigned id, char *err, size_t errlen)
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
	if (w->base) {
		w->wake = event_new(w->base, -1, 0, on_wake, w);
		w->backoff = evtimer_new(w->base, on_backoff, w);
	}
	if (!w->base || bufpool_init(&w->pool) < 0 || !w->wake || !w->backoff) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

void worker_set_listeners(struct worker *w, struct listener *ls, size_t n)
{
	w->listeners = ls;
	w->nlisteners = n;
	assign_listeners(w);
}

void worker_finish(struct worker *w)
{
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

int worker_start(struct worker *w)
{
	int e = pthread_create(&w->thread, NULL, worker_main, w);
	if (e) {
		errno = e;
		return -1;
	}
	return 0;
}

void worker_command(struct worker *w, int cmd)
{
	atomic_fetch_or(&w->cmd, cmd);
	event_active(w->wake, EV_READ, 0);
}

void worker_join(struct worker *w)
{
	pthread_join(w->thread, NULL);
}
