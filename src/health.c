/* Active health checks (tcp, send-expect): one thread with its own event loop runs them and
 * reports each result to the server's state machine (server.c). */
#include "tlsplice/health.h"

#include <errno.h>
#include <event2/event.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tlsplice/clock.h"
#include "tlsplice/log.h"
#include "tlsplice/net.h"
#include "tlsplice/server.h"

/* ------------------------------------------------------------------ active checks */

#define REPLY_MIN_CAP 4096

struct health;

struct check {
	struct health *h;
	struct server *s;
	const struct cfg_backend *b;
	struct event *timer; /* persistent: one round per check_interval */
	struct event *io;    /* the check socket; reassigned for each step */
	int fd;              /* -1 while no check is in flight */
	uint64_t deadline_ms;
	size_t sent; /* bytes of check_send written */
	char *reply; /* tail of the reply, searched for check_expect */
	size_t reply_len, reply_cap;
};

struct health {
	struct event_base *base;
	struct event *stop;
	int stop_fd; /* eventfd: health_destroy wakes the loop without needing evthread locks */
	pthread_t thread;
	bool running;
	struct check *checks;
	size_t nchecks;
};

/* The check in flight is over: its socket is always closed here and nowhere else. */
static void check_close(struct check *c)
{
	event_del(c->io);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->reply_len = 0;
	c->sent = 0;
}

/* Milliseconds since the check in flight started (its deadline is check_timeout after). */
static unsigned long long check_elapsed_ms(const struct check *c)
{
	uint64_t timeout = c->b->check_timeout_ms ? c->b->check_timeout_ms : 1;
	uint64_t start = c->deadline_ms - timeout, now = clock_mono_ms();

	return now > start ? (unsigned long long)(now - start) : 0;
}

static void check_finish(struct check *c, bool ok, const char *reason)
{
	log_debug("check backend %s server %s: %s%s after %llu ms", c->b->name,
		  c->s->cfg->addr.text, ok ? "ok" : "failed: ", ok ? "" : reason,
		  check_elapsed_ms(c));
	check_close(c);
	server_report(c->s, ok, false, reason, clock_mono_ms());
}

/* Ends the check in flight without a result: the proxy, not the server, ran out of
 * something. The next round checks again. */
static void check_abort(struct check *c, const char *reason)
{
	check_close(c);
	server_report_local(c->s, "check", reason);
}

/* op names the call that failed in the log ("socket"); NULL for the server's own errors,
 * which keep the plain form "connection refused". */
static void check_fail_errno(struct check *c, const char *op, int err)
{
	char buf[128], reason[160];
	const char *msg = strerror_r(err, buf, sizeof(buf));

	if (msg != buf) {
		snprintf(buf, sizeof(buf), "%s", msg);
		msg = buf;
	}
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' +
				'a'); /* "connection refused", as in the log format */
	if (!net_error_is_local(err)) {
		check_finish(c, false, buf);
		return;
	}
	snprintf(reason, sizeof(reason), "%s: %s", op ? op : "check", buf);
	check_abort(c, reason);
}

/* Waits for what on the check socket, bounded by what is left of check_timeout. */
static void check_wait(struct check *c, short what, event_callback_fn cb)
{
	uint64_t now = clock_mono_ms();
	struct timeval tv;

	if (now >= c->deadline_ms) {
		check_finish(c, false, "timeout");
		return;
	}
	tv = clock_ms_to_tv(c->deadline_ms - now);
	event_assign(c->io, c->h->base, c->fd, what, cb, c);
	if (event_add(c->io, &tv) < 0)
		check_fail_errno(c, NULL, errno ? errno : EIO);
}

/* A check whose socket became ready counts as in time even if our own thread was late to
 * see it (libevent reports ready-and-expired events with EV_TIMEOUT set): a busy proxy
 * must not blame the server for its own scheduling delay. */
static bool check_timed_out(const struct check *c, short what, short want)
{
	struct pollfd pfd = { .fd = c->fd, .events = want == EV_READ ? POLLIN : POLLOUT };

	if (!(what & EV_TIMEOUT) || (what & want))
		return false;
	return poll(&pfd, 1, 0) <= 0;
}

static void check_on_readable(evutil_socket_t fd, short what, void *arg);
static void check_on_writable(evutil_socket_t fd, short what, void *arg);

/* Writes the rest of check_send, then waits for the reply. */
static void check_send_step(struct check *c)
{
	const struct cfg_backend *b = c->b;

	while (c->sent < b->check_send_len) {
		ssize_t n = send(c->fd, b->check_send + c->sent, b->check_send_len - c->sent,
				 MSG_NOSIGNAL);
		if (n >= 0) {
			c->sent += (size_t)n;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			check_wait(c, EV_WRITE, check_on_writable);
			return;
		} else if (errno != EINTR) {
			check_fail_errno(c, "send", errno);
			return;
		}
	}
	if (!b->check_expect || !b->check_expect[0])
		check_finish(c, true, NULL); /* nothing to expect: the send was the check */
	else
		check_wait(c, EV_READ, check_on_readable);
}

static void check_on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct check *c = arg;

	if (check_timed_out(c, what, EV_WRITE))
		check_finish(c, false, "timeout");
	else
		check_send_step(c);
}

/* Keeps the reply buffer bounded: when full, only the tail that could still start a
 * match of check_expect is kept. */
static void reply_compact(struct check *c, size_t explen)
{
	size_t keep = explen - 1;

	if (c->reply_len < c->reply_cap)
		return;
	memmove(c->reply, c->reply + c->reply_len - keep, keep);
	c->reply_len = keep;
}

/* Reads what is there; true once the reply contains check_expect. On false, *eof says
 * the peer closed and *err holds a socket error (0: nothing more to read yet). */
static bool check_read_reply(struct check *c, bool *eof, int *err)
{
	const char *exp = c->b->check_expect;
	size_t explen = strlen(exp);

	*eof = false;
	*err = 0;
	for (;;) {
		ssize_t n = recv(c->fd, c->reply + c->reply_len, c->reply_cap - c->reply_len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				*err = errno;
			return false;
		}
		if (n == 0) {
			*eof = true;
			return false;
		}
		c->reply_len += (size_t)n;
		if (memmem(c->reply, c->reply_len, exp, explen))
			return true;
		reply_compact(c, explen);
	}
}

static void check_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct check *c = arg;
	bool eof;
	int err;

	if (check_timed_out(c, what, EV_READ)) {
		check_finish(c, false, c->reply_len ? "timeout, reply did not match" : "timeout");
		return;
	}
	if (check_read_reply(c, &eof, &err))
		check_finish(c, true, NULL);
	else if (eof)
		check_finish(c, false, "connection closed without the expected reply");
	else if (err)
		check_fail_errno(c, "recv", err);
	else
		check_wait(c, EV_READ, check_on_readable);
}

static void check_connected(struct check *c)
{
	if (c->b->check == CHECK_SEND_EXPECT)
		check_send_step(c);
	else
		check_finish(c, true, NULL);
}

static void check_on_connect(evutil_socket_t fd, short what, void *arg)
{
	struct check *c = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	if (check_timed_out(c, what, EV_WRITE)) {
		check_finish(c, false, "timeout");
		return;
	}
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err)
		check_fail_errno(c, "connect", err);
	else
		check_connected(c);
}

/* Starts one check: a non-blocking connect bounded by check_timeout. */
static void check_start(struct check *c)
{
	const struct cfg_addr *a = &c->s->cfg->addr;

	c->deadline_ms = clock_mono_ms() + (c->b->check_timeout_ms ? c->b->check_timeout_ms : 1);
	c->sent = 0;
	c->reply_len = 0;
	c->fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		check_fail_errno(c, "socket", errno);
		return;
	}
	if (connect(c->fd, (const struct sockaddr *)&a->ss, a->len) == 0)
		check_connected(c);
	else if (errno == EINPROGRESS || errno == EINTR)
		check_wait(c, EV_WRITE, check_on_connect);
	else
		check_fail_errno(c, "connect", errno);
}

static void check_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct check *c = arg;

	if (c->fd < 0 && !server_in_maint(c->s)) /* one check in flight; none in maint */
		check_start(c);
}

/* ------------------------------------------------------------------ thread */

static void health_on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct health *h = arg;
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("health: stop eventfd: %s", strerror(errno));
	event_base_loopbreak(h->base);
}

static void *health_main(void *arg)
{
	struct health *h = arg;

	event_base_dispatch(h->base);
	return NULL;
}

/* Arms c's timer: the first round runs as soon as the loop starts. */
static int check_init(struct health *h, struct check *c, struct server *s)
{
	uint64_t interval = s->pool->cfg->check_interval_ms ? s->pool->cfg->check_interval_ms : 1;
	struct timeval tv = clock_ms_to_tv(interval);

	c->h = h;
	c->s = s;
	c->b = s->pool->cfg;
	c->fd = -1;
	if (c->b->check == CHECK_SEND_EXPECT && c->b->check_expect) {
		size_t explen = strlen(c->b->check_expect);
		c->reply_cap = explen * 2 > REPLY_MIN_CAP ? explen * 2 : REPLY_MIN_CAP;
		c->reply = malloc(c->reply_cap);
		if (!c->reply)
			return -1;
	}
	c->io = event_new(h->base, -1, 0, check_on_connect, c);
	c->timer = event_new(h->base, -1, EV_PERSIST, check_on_timer, c);
	if (!c->io || !c->timer || event_add(c->timer, &tv) < 0)
		return -1;
	event_active(c->timer, EV_TIMEOUT, 1);
	return 0;
}

static size_t count_checked_servers(const struct pool *pools, size_t npools)
{
	size_t n = 0;

	for (size_t i = 0; i < npools; i++)
		if (pools[i].cfg->check != CHECK_NONE)
			n += pools[i].nservers;
	return n;
}

static int health_init_checks(struct health *h, struct pool *pools, size_t npools)
{
	size_t k = 0;

	for (size_t i = 0; i < npools; i++) {
		if (pools[i].cfg->check == CHECK_NONE)
			continue;
		for (unsigned j = 0; j < pools[i].nservers; j++) {
			if (check_init(h, &h->checks[k++], &pools[i].servers[j]) < 0)
				return -1;
		}
	}
	return 0;
}

/* Starts the loop thread with every signal blocked, so signals reach the main thread. */
static int health_start_thread(struct health *h)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&h->thread, NULL, health_main, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		errno = rc;
		return -1;
	}
	h->running = true;
	return 0;
}

struct health *health_create(struct pool *pools, size_t npools)
{
	struct health *h = calloc(1, sizeof(*h));
	int saved;

	if (!h)
		return NULL;
	h->stop_fd = -1;
	h->nchecks = count_checked_servers(pools, npools);
	if (h->nchecks == 0)
		return h; /* nothing to check: no thread */
	h->checks = calloc(h->nchecks, sizeof(*h->checks));
	for (size_t i = 0; h->checks && i < h->nchecks; i++)
		h->checks[i].fd = -1; /* health_destroy closes only real sockets */
	h->base = event_base_new();
	h->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!h->checks || !h->base || h->stop_fd < 0)
		goto err;
	h->stop = event_new(h->base, h->stop_fd, EV_READ | EV_PERSIST, health_on_stop, h);
	if (!h->stop || event_add(h->stop, NULL) < 0)
		goto err;
	if (health_init_checks(h, pools, npools) < 0 || health_start_thread(h) < 0)
		goto err;
	return h;
err:
	saved = errno ? errno : ENOMEM;
	health_destroy(h);
	errno = saved;
	return NULL;
}

static void check_free(struct check *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->io)
		event_free(c->io);
	if (c->timer)
		event_free(c->timer);
	free(c->reply);
}

void health_destroy(struct health *h)
{
	uint64_t one = 1;

	if (!h)
		return;
	if (h->running) {
		if (write(h->stop_fd, &one, sizeof(one)) < 0) {
			/* the thread still runs: leaking beats freeing under it */
			log_error("health: cannot stop the check thread: %s", strerror(errno));
			return;
		}
		pthread_join(h->thread, NULL);
	}
	for (size_t i = 0; h->checks && i < h->nchecks; i++)
		check_free(&h->checks[i]);
	free(h->checks);
	if (h->stop)
		event_free(h->stop);
	if (h->stop_fd >= 0)
		close(h->stop_fd);
	if (h->base)
		event_base_free(h->base);
	free(h);
}
