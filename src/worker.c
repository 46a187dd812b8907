/* Worker threads: each runs its own event_base with its own SO_REUSEPORT listening sockets,
 * so the kernel spreads new connections and no lock is taken on the connection path.
 * Accepting: a slot under max_connections is reserved before each accept, so the limit is
 * exact across workers; at the limit the listener is disarmed and the pending connections
 * wait in the kernel's backlog until a slot frees (nothing is dropped). The effective
 * max_connections comes from the descriptor budget (fdbudget.c), so an accepted client
 * always has descriptors left for its backend and pipes. */
#include "tlsplice/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tlsplice/clock.h"
#include "tlsplice/conn.h"
#include "tlsplice/log.h"

#define ACCEPT_BATCH 64
#define EMFILE_BACKOFF_MS 250

static void listener_arm(struct listener *l)
{
	if (!l->armed && l->fd >= 0) {
		event_add(&l->ev, NULL);
		l->armed = true;
	}
}

static void listener_disarm(struct listener *l)
{
	if (l->armed) {
		event_del(&l->ev);
		l->armed = false;
	}
}

static void listener_close(struct listener *l)
{
	listener_disarm(l);
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
}

static void pause_all(struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++)
		listener_disarm(&w->listeners[i]);
}

/* Out of descriptors: stop accepting for a moment instead of spinning on the error. */
static void backoff(struct worker *w, const char *why)
{
	static _Atomic long last_warn;
	long now = (long)time(NULL);
	if (atomic_exchange(&last_warn, now) != now)
		log_warn("accept: %s; pausing accepts for %d ms", why, EMFILE_BACKOFF_MS);
	pause_all(w);
	struct timeval tv = clock_ms_to_tv(EMFILE_BACKOFF_MS);
	evtimer_add(w->backoff, &tv);
}

/* At max_connections: marks w paused, so that the next connection to close on any worker
 * wakes it. True if it must stay paused; false if a slot freed meanwhile (that close may have
 * come before the mark, and woken nobody). */
static bool stay_paused(struct worker *w)
{
	struct proc *p = w->proc;
	w->paused = true;
	atomic_store(&p->any_paused, true);
	return atomic_load(&p->active) >= p->max_connections;
}

static void listener_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	struct worker *w = l->w;
	struct proc *p = w->proc;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		if (atomic_fetch_add(&p->active, 1) >= p->max_connections) {
			atomic_fetch_sub(&p->active, 1);
			if (stay_paused(w)) {
				pause_all(w);
				return;
			}
			continue; /* a slot freed meanwhile */
		}
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			int e = errno;
			atomic_fetch_sub(&p->active, 1);
			if (e == EINTR || e == ECONNABORTED)
				continue;
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
				backoff(w, strerror(e));
			else if (e != EAGAIN && e != EWOULDBLOCK)
				log_error("accept: %s", strerror(e));
			return;
		}
		conn_accept(&w->home, cfd, l->fe_idx, &ss);
		/* descriptors are handed out lowest first: one this high means few are left,
		 * and the next clients wait in the backlog until some are back */
		if (cfd >= atomic_load(&p->fd_guard)) {
			backoff(w, "file descriptors near RLIMIT_NOFILE");
			return;
		}
	}
}

/* Accepts again unless draining or still at max_connections; then (after a back-off, say)
 * the worker waits as paused for a close to wake it, never disarmed with nobody to wake it. */
static void resume(struct worker *w)
{
	if (w->draining)
		return;
	if (atomic_load(&w->proc->active) >= w->proc->max_connections && stay_paused(w))
		return;
	w->paused = false;
	for (size_t i = 0; i < w->nlisteners; i++)
		listener_arm(&w->listeners[i]);
}

/* A connection of this worker ended: its slot under max_connections frees. */
static void on_conn_closed(struct conn_home *h)
{
	struct worker *w = (struct worker *)((char *)h - offsetof(struct worker, home));
	struct proc *p = w->proc;
	atomic_fetch_sub(&p->active, 1);
	if (atomic_exchange(&p->any_paused, false)) {
		for (unsigned i = 0; i < p->nworkers; i++)
			event_active(p->workers[i].wake, EV_READ, 0);
	}
	if (w->draining && w->home.nconns == 0)
		event_base_loopexit(w->home.base, NULL);
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
		while (w->home.conns)
			conn_kill(w->home.conns, CLOSE_SHUTDOWN);
	}
	if (w->draining && w->home.nconns == 0) {
		event_base_loopexit(w->home.base, NULL);
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
	event_base_loop(w->home.base, EVLOOP_NO_EXIT_ON_EMPTY);
	for (size_t i = 0; i < w->nlisteners; i++)
		listener_close(&w->listeners[i]);
	while (w->home.conns)
		conn_kill(w->home.conns, CLOSE_SHUTDOWN);
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
		event_assign(&l->ev, w->home.base, l->fd, EV_READ | EV_PERSIST, listener_cb, l);
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
	runtime_unref(w->home.rt);
	w->home.rt = r->rt;
	free(r->keep);
	free(r);
}

int worker_init(struct worker *w, struct proc *p, unsigned id, char *err, size_t errlen)
{
	w->proc = p;
	w->id = id;
	w->home.rt = runtime_ref(p->rt);
	w->home.pool = &w->pool;
	w->home.closed = on_conn_closed;
	struct event_config *ec = event_config_new();
	/* interest changes made within one loop pass cost one epoll_ctl, or none if they
	 * cancel out (a read event turned off and on again, a socket closed right after) */
	if (ec)
		event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	w->home.base = ec ? event_base_new_with_config(ec) : NULL;
	if (ec)
		event_config_free(ec);
	if (w->home.base) {
		w->wake = event_new(w->home.base, -1, 0, on_wake, w);
		w->backoff = evtimer_new(w->home.base, on_backoff, w);
	}
	if (!w->home.base || bufpool_init(&w->pool) < 0 || !w->wake || !w->backoff) {
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
	runtime_unref(w->home.rt);
	if (w->home.base)
		event_base_free(w->home.base);
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
