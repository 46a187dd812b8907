/* Accepting connections. A slot under max_connections is reserved before each accept, so
 * the limit is exact across workers; at the limit the listener is disarmed and the pending
 * connections wait in the kernel's backlog until a slot frees (nothing is dropped). The
 * effective max_connections comes from the descriptor budget (fdbudget.c), so an accepted
 * client always has descriptors left for its backend and pipes. */
#include "tlsplice/listener.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tlsplice/conn.h"
#include "tlsplice/log.h"

#define ACCEPT_BATCH 64
#define EMFILE_BACKOFF_MS 250

void listener_arm(struct listener *l)
{
	if (!l->armed && l->fd >= 0) {
		event_add(&l->ev, NULL);
		l->armed = true;
	}
}

void listener_disarm(struct listener *l)
{
	if (l->armed) {
		event_del(&l->ev);
		l->armed = false;
	}
}

void listener_close(struct listener *l)
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
	struct timeval tv = { 0, EMFILE_BACKOFF_MS * 1000 };
	evtimer_add(w->backoff, &tv);
}

void listener_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	struct worker *w = l->w;
	struct proc *p = w->proc;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		if (atomic_fetch_add(&p->active, 1) >= p->max_connections) {
			atomic_fetch_sub(&p->active, 1);
			w->paused = true;
			atomic_store(&p->any_paused, true);
			pause_all(w);
			return;
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
		conn_accept(w, cfd, l->fe_idx, &ss);
		/* descriptors are handed out lowest first: one this high means few are left,
		 * and the next clients wait in the backlog until some are back */
		if (cfd >= atomic_load(&p->fd_guard)) {
			backoff(w, "file descriptors near RLIMIT_NOFILE");
			return;
		}
	}
}
