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

char *worker_buf_get(struct worker *w)
{
	if (w->nfreebufs > 0)
		return w->freebufs[--w->nfreebufs];
	return malloc(RELAY_BUF_CAP);
}

void worker_buf_put(struct worker *w, char *buf)
{
	if (w->nfreebufs < WORKER_POOL_MAX)
		w->freebufs[w->nfreebufs++] = buf;
	else
		free(buf);
}

int worker_pipe_get(struct worker *w, int p[2])
{
	if (w->nfreepipes > 0) {
		w->nfreepipes--;
		p[0] = w->freepipes[w->nfreepipes][0];
		p[1] = w->freepipes[w->nfreepipes][1];
		return 0;
	}
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	/* room for a batch of records; where the system caps pipe sizes lower, 64 KiB will do */
	fcntl(p[1], F_SETPIPE_SZ, 256 * 1024);
	return 0;
}

void worker_pipe_put(struct worker *w, int p[2], bool empty)
{
	if (p[0] < 0)
		return;
	if (empty && w->nfreepipes < WORKER_POOL_MAX) {
		w->freepipes[w->nfreepipes][0] = p[0];
		w->freepipes[w->nfreepipes][1] = p[1];
		w->nfreepipes++;
	} else {
		close(p[0]);
		close(p[1]);
	}
	p[0] = p[1] = -1;
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
	/* a paused worker may have no event pending at all: keep looping until told to stop */
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	for (size_t i = 0; i < w->nlisteners; i++)
		listener_close(&w->listeners[i]);
	while (w->conns)
		conn_kill(w->conns, "shutdown");
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
	w->freebufs = calloc(WORKER_POOL_MAX, sizeof(*w->freebufs));
	w->freepipes = calloc(WORKER_POOL_MAX, sizeof(*w->freepipes));
	if (w->base) {
		w->wake = event_new(w->base, -1, 0, on_wake, w);
		w->backoff = evtimer_new(w->base, on_backoff, w);
	}
	if (!w->freebufs || !w->freepipes || !w->wake || !w->backoff) {
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
	for (size_t i = 0; i < w->nfreebufs; i++)
		free(w->freebufs[i]);
	free(w->freebufs);
	for (size_t i = 0; i < w->nfreepipes; i++) {
		close(w->freepipes[i][0]);
		close(w->freepipes[i][1]);
	}
	free(w->freepipes);
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
