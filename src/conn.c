/* The connection state machine. Every event callback runs one step and, if the step ended
 * the connection, tears it down as its very last action (conn_destroy is the only free). */
#include "tlsplice/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tlsplice/access.h"
#include "tlsplice/clock.h"
#include <openssl/err.h>
#include <openssl/objects.h>
#include "tlsplice/ktls.h"
#include "tlsplice/log.h"
#include "tlsplice/metrics.h"
#include "tlsplice/net.h"
#include "tlsplice/proxy_in.h"
#include "tlsplice/proxy_tlv.h"
#include "tlsplice/tls.h"
#include "tlsplice/runtime.h"

static void on_event(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void conn_free(struct conn *c);

const struct cfg_frontend *conn_fe(const struct conn *c)
{
	return &c->rt->cfg->frontends[c->fe_idx];
}

void conn_end(struct conn *c, enum close_reason reason)
{
	close_cause_end(&c->close, reason);
}

void conn_fail(struct conn *c, enum close_reason reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	close_cause_vfail(&c->close, reason, fmt, ap);
	va_end(ap);
	c->state = CONN_CLOSED;
}

static void timer_in(struct conn *c, uint64_t ms)
{
	struct timeval tv = clock_ms_to_tv(ms);
	evtimer_add(&c->timer, &tv);
}

/* Arms fd's event for exactly `want` (EV_READ|EV_WRITE, *on what it has now). One event per
 * socket keeps a connection small (each is 128 bytes); unchanged interest costs nothing, and
 * a change is one epoll_ctl through libevent's change list. */
static void watch(struct conn *c, struct event *ev, int fd, uint8_t *on, short want)
{
	if (want == *on)
		return;
	if (*on)
		event_del(ev);
	*on = (uint8_t)want;
	if (!want)
		return;
	event_assign(ev, c->home->base, fd, want | EV_PERSIST, on_event, c);
	event_add(ev, NULL);
}

/* Removes ev from the loop whatever state it is in (added, or activated and queued). */
static void drop(struct event *ev, uint8_t *on)
{
	if (event_initialized(ev))
		event_del(ev);
	if (on)
		*on = 0;
}

static short ev_bits(int want, int rd, int wr)
{
	return (short)((want & rd ? EV_READ : 0) | (want & wr ? EV_WRITE : 0));
}

/* The idle deadline, from the last byte moved (after a run again took the timer). */
static void idle_arm(struct conn *c)
{
	uint64_t limit = conn_fe(c)->idle_timeout_ms;
	if (limit == 0) {
		evtimer_del(&c->timer);
		return;
	}
	uint64_t idle = clock_coarse_ms() - c->last_active_ms;
	timer_in(c, idle < limit ? limit - idle : 0);
}

/* Arms exactly the events a step asked for; unchanged ones cost no epoll_ctl. */
static void set_interest(struct conn *c, int want)
{
	static const struct timeval now = { 0, 0 };
	watch(c, &c->cev, c->cfd, &c->cev_on, ev_bits(want, RELAY_CREAD, RELAY_CWRITE));
	if (c->bfd >= 0)
		watch(c, &c->bev, c->bfd, &c->bev_on, ev_bits(want, RELAY_BREAD, RELAY_BWRITE));
	/* a timer, not event_active: an activation runs within the same pass of the loop, so
	 * a client that keeps its socket full would keep every other connection and timer of
	 * this worker waiting; a timer runs after the next poll. The idle deadline shares the
	 * timer: it is armed again once no run again is due. */
	if (want & RELAY_AGAIN) {
		c->again = true;
		evtimer_add(&c->timer, &now);
	} else if (c->again) {
		c->again = false;
		idle_arm(c);
	}
}

static void backend_close(struct conn *c)
{
	if (c->bfd < 0)
		return;
	drop(&c->bev, &c->bev_on);
	close(c->bfd);
	c->bfd = -1;
}

/* Sends close_notify if the client's TLS is still healthy; best effort, never blocks. */
static void polite_close(struct conn *c)
{
	if (c->t_handshake_us != 0)
		relay_close_notify(&c->relay);
}

/* Once per connection: what the metrics count of it. */
static void count_close(const struct conn *c)
{
	struct fe_stats *st = c->rt->stats[c->fe_idx];
	atomic_fetch_sub(&st->active, 1);
	if (c->t_handshake_us == 0) {
		enum hs_fail r = HS_FAIL_PROTOCOL;
		if (c->close.reason == CLOSE_HANDSHAKE_TIMEOUT)
			r = HS_FAIL_TIMEOUT;
		else if (c->hs_closed || c->close.reason == CLOSE_SHUTDOWN)
			r = HS_FAIL_CLOSED;
		atomic_fetch_add(&st->hs_failures[r], 1);
	}
	if (c->relayed) {
		enum relay_kind k = RELAY_KIND_USERSPACE;
		if (c->relay.up.splice && c->relay.down.splice)
			k = RELAY_KIND_SPLICE;
		else if (c->relay.up.splice || c->relay.down.splice)
			k = RELAY_KIND_MIXED;
		atomic_fetch_add(&st->relay[k], 1);
	}
	atomic_fetch_add(&st->key_updates[0], ktls_keys_count(c->relay.tls.keys, KTLS_RX));
	atomic_fetch_add(&st->key_updates[1], ktls_keys_count(c->relay.tls.keys, KTLS_TX));
	atomic_fetch_add(&st->bytes_in, c->relay.up.bytes);
	atomic_fetch_add(&st->bytes_out, c->relay.down.bytes);
}

/* The access log's record of c, filled here so that the log module needs no connection. */
static void log_access(const struct conn *c, uint64_t now_us)
{
	struct access_record a = {
		.accepted = c->t_accept_wall,
		.peer = &c->peer,
		.frontend = conn_fe(c)->name,
		.backend = c->pool ? c->pool->cfg->name : "",
		.server = c->server ? c->server->cfg->addr.text : "",
		.sni = c->sni,
		.tls_version = c->tls_version,
		.cipher = c->cipher,
		.alpn = c->alpn,
		.alpn_len = c->alpn_len,
		.ktls = c->ktls,
		.relay = c->relayed ? relay_mode_name(&c->relay) : "",
		.bytes_in = c->relay.up.bytes,
		.bytes_out = c->relay.down.bytes,
		.handshake_us = c->t_handshake_us ? c->t_handshake_us - c->t_accept_us : 0,
		.duration_us = now_us - c->t_accept_us,
		.close = c->close.reason,
		.error = c->close.error,
		.attempts = c->attempts,
		.pool = c->pool,
		.tried = &c->tried,
		.handovers = c->handovers,
		.key_updates = ktls_keys_count(c->relay.tls.keys, KTLS_RX) +
			       ktls_keys_count(c->relay.tls.keys, KTLS_TX),
	};
	access_log_conn(&a);
}

static void conn_destroy(struct conn *c)
{
	if (c->close.reason == CLOSE_NONE)
		c->close.reason = CLOSE_ERROR;
	count_close(c);
	if (c->server_held)
		pool_release(c->server);
	if (c->queued)
		pool_queue_leave(c->pool);
	switch (c->close.reason) {
	case CLOSE_IDLE_TIMEOUT:
	case CLOSE_SHUTDOWN:
	case CLOSE_NO_SERVER:
	case CLOSE_CONNECT_FAILED:
		polite_close(c);
		break;
	default:
		break;
	}
	log_access(c, clock_mono_us());
	conn_debug(c, CONN_DEBUG_CLOSE);
	conn_free(c);
}

/* What every end shares (conn_destroy's, and conn_hand_off's, whose sockets live on in the
 * new process): the events, sockets and memory of c. */
static void conn_free(struct conn *c)
{
	struct conn_home *h = c->home;
	/* every event, whatever the flags say: a queued activation must not outlive c */
	drop(&c->cev, &c->cev_on);
	drop(&c->timer, NULL);
	backend_close(c);
	relay_finish(&c->relay);
	ktls_keys_free(c->relay.tls.keys);
	ktls_forget(c->ssl);
	SSL_free(c->ssl);
	free(c->sni);
	if (c->pin) {
		proxy_in_reader_finish(c->pin);
		free(c->pin);
	}
	free(c->peer_cert);
	close(c->cfd);
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	runtime_unref(c->rt);
	free(c);
	h->nconns--;
	h->closed(h);
}

static void start_relay(struct conn *c)
{
	const struct cfg_frontend *fe = conn_fe(c);
	conn_debug(c, CONN_DEBUG_CONNECTED);
	pool_report_connect_ok(c->server);
	net_set_nodelay(c->bfd);
	c->state = CONN_RELAY;
	relay_start(&c->relay, c->bfd);
	c->relayed = true;
	c->last_active_ms = clock_coarse_ms();
	evtimer_del(&c->timer);
	if (fe->idle_timeout_ms)
		timer_in(c, fe->idle_timeout_ms);
}

/* How often a queued connection looks for a free server again. */
#define QUEUE_POLL_MS 10

static void queue_leave(struct conn *c)
{
	if (c->queued)
		pool_queue_leave(c->pool);
	c->queued = false;
}

/* No server is free for a new connection: it waits in the backend's queue (while places are
 * left, and for queue_timeout at most), looking again every QUEUE_POLL_MS. False if it may not
 * wait (any longer). */
static bool queue_wait(struct conn *c)
{
	const struct cfg_backend *be = c->pool->cfg;
	uint64_t now = pool_now_ms();
	if (!c->queued) {
		if (c->attempts > 0 || !pool_queue_enter(c->pool))
			return false;
		c->queued = true;
		c->queue_deadline_ms = now + be->queue_timeout_ms;
	} else if (now >= c->queue_deadline_ms) {
		queue_leave(c);
		conn_fail(c, CLOSE_NO_SERVER, "no server free within queue_timeout %llu ms",
			  (unsigned long long)be->queue_timeout_ms);
		return true;
	}
	c->state = CONN_QUEUED;
	evtimer_del(&c->timer);
	uint64_t left = c->queue_deadline_ms - now;
	timer_in(c, left < QUEUE_POLL_MS ? left : QUEUE_POLL_MS);
	return true;
}

/* pool_pick found no server (busy: one that is up was full) and the connection may not wait. */
static void no_server(struct conn *c, bool busy)
{
	const struct cfg_backend *be = c->pool->cfg;
	if (c->attempts > 0)
		conn_fail(c, CLOSE_CONNECT_FAILED, "%s", c->close.error);
	else if (be->maxqueue > 0)
		conn_fail(c, CLOSE_NO_SERVER, "no server free in backend %s and its queue is full",
			  be->name);
	else if (busy)
		conn_fail(c, CLOSE_NO_SERVER, "every server up in backend %s is at its maxconn",
			  be->name);
	else
		conn_fail(c, CLOSE_NO_SERVER, "no server up in backend %s", be->name);
}

/* The next server to connect to, holding one of its slots; NULL when the connection waits
 * in the queue for one, or has ended. */
static struct server *next_server(struct conn *c)
{
	if (c->server_held) { /* the slot of the server that failed goes back */
		pool_release(c->server);
		c->server_held = false;
	}
	/* a newcomer does not overtake the connections already waiting */
	bool behind = !c->queued && c->attempts == 0 && pool_queued(c->pool) > 0;
	struct server *s = behind ? NULL : pool_pick(c->pool, &c->tried, pool_now_ms());
	bool busy = !s && (behind || errno == EBUSY);
	if (!s && c->attempts == 0 && queue_wait(c))
		return NULL;
	queue_leave(c);
	c->state = CONN_CONNECTING;
	if (!s)
		no_server(c, busy);
	return s;
}

/* Starts a connect to the next server, skipping the ones already tried. */
static void connect_next(struct conn *c)
{
	const struct cfg_backend *be = c->pool->cfg;
	char err[128] = "no server available";
	for (;;) {
		if (c->attempts > be->retries) {
			conn_fail(c, CLOSE_CONNECT_FAILED, "%s",
				  c->close.error[0] ? c->close.error : err);
			return;
		}
		struct server *s = next_server(c);
		if (!s)
			return;
		c->server = s;
		c->server_held = true;
		c->attempts++;
		pool_tried_add(&c->tried, s);
		conn_debug(c, CONN_DEBUG_SERVER);
		const struct cfg_addr *a = &s->cfg->addr;
		if (net_connect((const struct sockaddr *)&a->ss, a->len, &c->bfd, err,
				sizeof(err)) < 0) {
			if (net_error_is_local(errno)) {
				/* our own shortage: no server is to blame, another would fail alike */
				snprintf(c->close.error, sizeof(c->close.error),
					 "connect to %.48s: local error, "
					 "not counted against server: %.48s",
					 a->text, err);
				pool_report_local_error(s, err);
				conn_fail(c, CLOSE_CONNECT_FAILED, "%s", c->close.error);
				return;
			}
			snprintf(c->close.error, sizeof(c->close.error), "connect to %.64s: %.80s",
				 a->text, err);
			pool_report_connect_fail(s, pool_now_ms(), err);
			continue;
		}
		watch(c, &c->bev, c->bfd, &c->bev_on, EV_WRITE);
		evtimer_del(&c->timer);
		timer_in(c, be->connect_timeout_ms);
		return;
	}
}

/* The connect in flight failed: count it, log it, try another server. */
static void connect_failed(struct conn *c, const char *why)
{
	const char *name = c->server->cfg->addr.text;
	log_info("backend %s: connect to %s failed: %s", c->pool->cfg->name, name, why);
	snprintf(c->close.error, sizeof(c->close.error), "connect to %.64s: %.80s", name, why);
	pool_report_connect_fail(c->server, pool_now_ms(), why);
	backend_close(c);
	connect_next(c);
}

static void connecting_step(struct conn *c)
{
	int e = net_socket_error(c->bfd);
	/* a reset (not a refusal) means the server accepted, then dropped the connection */
	if (e && e != ECONNRESET && e != EPIPE) {
		connect_failed(c, strerror(e));
		return;
	}
	c->close.error[0] = '\0';
	start_relay(c);
	if (!e && conn_send_proxy_header(c) < 0)
		return;
	if (e)
		conn_fail(c, CLOSE_SERVER_EOF, "server reset the connection: %s", strerror(e));
}

/* Keeps what the log needs of the session, so the SSL object can go early. */
static void keep_session_facts(struct conn *c, const struct cfg_frontend *fe)
{
	const unsigned char *alpn;
	unsigned alpn_len;
	const char *sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
	c->tls_version = SSL_get_version(c->ssl);
	c->cipher = SSL_get_cipher_name(c->ssl);
	c->sni = sni ? strdup(sni) : NULL;
	SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
	/* the selection is one of ours (alpn_cb picks from the frontend's list) */
	for (size_t i = 0; alpn && i < fe->alpn_len; i += 1u + fe->alpn[i]) {
		if (fe->alpn[i] == alpn_len && memcmp(&fe->alpn[i + 1], alpn, alpn_len) == 0) {
			c->alpn = &fe->alpn[i + 1];
			c->alpn_len = (uint8_t)alpn_len;
		}
	}
}

/* Hands what it can of the client socket's TLS to the kernel, and counts why not all. */
static void enable_ktls(struct conn *c, const struct cfg_frontend *fe)
{
	char why[160] = "";
	struct fe_stats *st = c->rt->stats[c->fe_idx];
	c->ktls = ktls_enable(c->ssl, c->cfd, why, sizeof(why));
	if (c->ktls & KTLS_TX)
		atomic_fetch_add(&st->ktls_tx, 1);
	if (c->ktls & KTLS_RX)
		atomic_fetch_add(&st->ktls_rx, 1);
	if (c->ktls == (KTLS_TX | KTLS_RX))
		return;
	int nid = SSL_CIPHER_get_cipher_nid(SSL_get_current_cipher(c->ssl));
	enum ktls_fallback r = KTLS_FALLBACK_PARTIAL;
	if (nid != NID_aes_128_gcm && nid != NID_aes_256_gcm && nid != NID_chacha20_poly1305)
		r = KTLS_FALLBACK_CIPHER;
	else if (c->ktls == 0)
		r = KTLS_FALLBACK_KERNEL;
	atomic_fetch_add(&st->ktls_fallbacks[r], 1);
	log_debug("frontend %s: kTLS fallback: %s", fe->name, why);
	conn_debug_ktls(c, why);
}

static void handshake_done(struct conn *c)
{
	const struct cfg_frontend *fe = conn_fe(c);
	c->t_handshake_us = clock_mono_us();
	keep_session_facts(c, fe);
	if (fe->proxy_protocol == PROXY_V2 && (fe->proxy_tlvs & PROXY_TLV_SSL))
		conn_keep_peer_cert(c);
	if (c->rt->cfg->ktls != KTLS_OFF && ktls_probe())
		enable_ktls(c, fe);
	bool tls13 = c->tls_version && strcmp(c->tls_version, "TLSv1.3") == 0;
	bool kernel_only = relay_init(&c->relay, c->cfd, c->ssl, c->ktls, tls13,
				      c->rt->cfg->splice);
	conn_debug(c, CONN_DEBUG_HANDSHAKE);
	/* no read-ahead during the handshake (a buffered record would keep the receive key out
	 * of the kernel); where receive stays in user space, reading ahead halves the reads */
	if (!(c->ktls & KTLS_RX)) {
		SSL_set_read_ahead(c->ssl, 1);
		/* room for several whole records per read; released again when it empties */
		SSL_set_default_read_buffer_len(c->ssl, TLS_READ_BUFFER);
	}
	/* TLS 1.3 secrets to follow KeyUpdates in the kernel; send only once OpenSSL is gone */
	c->relay.tls.keys = ktls_keys_take(c->ssl, kernel_only ? c->ktls : c->ktls & KTLS_RX,
					   fe->key_update_bytes);
	if (kernel_only) {
		/* the kernel does all the TLS from here on: drop OpenSSL's state (kilobytes per
		 * connection); close_notify is then sent with ktls_send_close_notify */
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	int be = config_route(fe, c->sni);
	c->pool = &c->rt->pools[be];
	c->state = CONN_CONNECTING;
	connect_next(c);
}

static int handshake_step(struct conn *c)
{
	char err[128];
	int r = SSL_do_handshake(c->ssl);
	switch (tls_classify(c->ssl, r, err, sizeof(err))) {
	case TLS_OK:
		handshake_done(c);
		return 0;
	case TLS_WANT_READ:
		return RELAY_CREAD;
	case TLS_WANT_WRITE:
		return RELAY_CWRITE;
	case TLS_CLOSED:
		c->hs_closed = true;
		conn_fail(c, CLOSE_HANDSHAKE_FAILED,
			  "connection closed by client during handshake");
		return 0;
	case TLS_FATAL:
		conn_fail(c, CLOSE_HANDSHAKE_FAILED, "%s", err);
		return 0;
	}
	return 0;
}

/* The PROXY header of a trusted balancer, before the TLS handshake. */
static int proxy_in_step(struct conn *c)
{
	const struct cfg_frontend *fe = conn_fe(c);
	char err[160];
	if (!proxy_in_peer_allowed(fe->accept_proxy_from, fe->naccept_proxy_from, &c->peer)) {
		net_addr_text((const struct sockaddr *)&c->peer, err, sizeof(err));
		conn_fail(c, CLOSE_PROXY_HEADER, "peer %s not in accept_proxy_from", err);
		return 0;
	}
	switch (proxy_in_read(c->pin, c->cfd, (unsigned)fe->accept_proxy, &c->peer, err,
			      sizeof(err))) {
	case PROXY_IN_AGAIN:
		return RELAY_CREAD;
	case PROXY_IN_BAD:
		conn_fail(c, CLOSE_PROXY_HEADER, "%s", err);
		return 0;
	case PROXY_IN_LOCAL:
		conn_fail(c, CLOSE_ERROR, "%s", err);
		return 0;
	case PROXY_IN_DONE:
		break;
	}
	c->state = CONN_HANDSHAKE;
	return handshake_step(c);
}

/* One step of whatever the connection is doing, then the events it waits for. */
static void conn_step(struct conn *c, evutil_socket_t fd, short what)
{
	int want = 0;
	enum conn_state state_before = c->state;
	switch (c->state) {
	case CONN_PROXY:
		want = proxy_in_step(c);
		break;
	case CONN_HANDSHAKE:
		want = handshake_step(c);
		break;
	case CONN_CONNECTING:
		if (fd == c->bfd && (what & EV_WRITE))
			connecting_step(c);
		break;
	case CONN_QUEUED: /* only its timer moves it on */
		break;
	case CONN_RELAY:
		break;
	case CONN_CLOSED:
		return;
	}
	if (c->state == CONN_RELAY) {
		/* the relay may have just started in this step: then every direction runs */
		int ready = RELAY_ANY;
		if (state_before == CONN_RELAY && fd == c->cfd)
			ready = (what & EV_READ ? RELAY_CREAD | RELAY_AGAIN : 0) |
				(what & EV_WRITE ? RELAY_CWRITE : 0);
		else if (state_before == CONN_RELAY && fd == c->bfd)
			ready = (what & EV_READ ? RELAY_BREAD : 0) |
				(what & EV_WRITE ? RELAY_BWRITE : 0);
		enum io_res r = relay_pump(&c->relay, ready, &want);
		if (r != IO_OK)
			c->state = CONN_CLOSED;
		if (c->relay.moved)
			c->last_active_ms = clock_coarse_ms();
	} else if (c->state == CONN_CONNECTING)
		want = RELAY_BWRITE;
	if (c->state != CONN_CLOSED)
		set_interest(c, want);
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	conn_step(c, fd, what);
	if (c->state == CONN_CLOSED)
		conn_destroy(c);
}

/* RELAY_AGAIN: the relay left bytes in OpenSSL that no socket event will announce. Then the
 * idle deadline is armed again, unless the step asked for yet another run. */
static void run_again(struct conn *c)
{
	c->again = false;
	conn_step(c, c->cfd, EV_READ);
	if (c->state == CONN_CLOSED)
		conn_destroy(c);
	else if (!c->again)
		idle_arm(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	const struct cfg_frontend *fe = conn_fe(c);
	if (c->again) {
		run_again(c);
		return;
	}
	switch (c->state) {
	case CONN_PROXY:
		conn_fail(c, CLOSE_PROXY_HEADER, "no complete PROXY header within %llu ms",
			  (unsigned long long)fe->handshake_timeout_ms);
		break;
	case CONN_HANDSHAKE:
		conn_fail(c, CLOSE_HANDSHAKE_TIMEOUT, "no handshake within %llu ms",
			  (unsigned long long)fe->handshake_timeout_ms);
		break;
	case CONN_CONNECTING:
		connect_failed(c, "connection timed out");
		if (c->state != CONN_CLOSED)
			set_interest(c, RELAY_BWRITE);
		break;
	case CONN_QUEUED:
		connect_next(c);
		if (c->state == CONN_CONNECTING)
			set_interest(c, RELAY_BWRITE);
		break;
	case CONN_RELAY: {
		uint64_t idle = clock_coarse_ms() - c->last_active_ms;
		if (idle >= fe->idle_timeout_ms) {
			conn_end(c, CLOSE_IDLE_TIMEOUT);
			c->state = CONN_CLOSED;
		} else {
			timer_in(c, fe->idle_timeout_ms - idle);
		}
		break;
	}
	case CONN_CLOSED:
		break;
	}
	if (c->state == CONN_CLOSED)
		conn_destroy(c);
}

void conn_kill(struct conn *c, enum close_reason reason)
{
	conn_end(c, reason);
	c->state = CONN_CLOSED;
	conn_destroy(c);
}

/* Puts c on its worker's list, with its timer. */
static void conn_link(struct conn_home *h, struct conn *c)
{
	evtimer_assign(&c->timer, h->base, on_timer, c);
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
}

void conn_accept(struct conn_home *h, int fd, size_t fe_idx, const struct sockaddr_storage *peer)
{
	h->nconns++;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		goto err;
	c->home = h;
	c->rt = runtime_ref(h->rt);
	c->fe_idx = (uint32_t)fe_idx;
	c->cfd = fd;
	c->bfd = -1;
	relay_prepare(&c->relay, h->pool, &c->close);
	c->peer = *peer;
	c->t_accept_us = clock_mono_us();
	gettimeofday(&c->t_accept_wall, NULL);
	atomic_fetch_add(&c->rt->stats[fe_idx]->connections, 1);
	atomic_fetch_add(&c->rt->stats[fe_idx]->active, 1);
	/* the PROXY reader only where a balancer in front sends a header: most never need it */
	if (conn_fe(c)->accept_proxy != ACCEPT_PROXY_OFF)
		c->pin = calloc(1, sizeof(*c->pin));
	c->ssl = tls_accept(c->rt->tls[fe_idx], fd);
	if (!c->ssl || (conn_fe(c)->accept_proxy != ACCEPT_PROXY_OFF && !c->pin)) {
		atomic_fetch_sub(&c->rt->stats[fe_idx]->active, 1);
		SSL_free(c->ssl);
		free(c->pin);
		runtime_unref(c->rt);
		free(c);
		goto err;
	}
	net_set_nodelay(fd);
	conn_link(h, c);
	timer_in(c, conn_fe(c)->handshake_timeout_ms);
	conn_debug(c, CONN_DEBUG_ACCEPT);
	if (conn_fe(c)->accept_proxy != ACCEPT_PROXY_OFF)
		c->state = CONN_PROXY;
	on_event(fd, EV_READ, c);
	return;
err:
	log_error("cannot set up connection: out of memory");
	close(fd);
	h->nconns--;
	h->closed(h);
}

/* ------------------------------------------------ moving to another process (upgrade) */

void conn_hand_off(struct conn *c)
{
	/* the new process counts it, logs it once and adds its bytes when it ends */
	atomic_fetch_sub(&c->rt->stats[c->fe_idx]->active, 1);
	if (c->server_held)
		pool_release(c->server);
	conn_free(c);
}

int conn_adopt(struct conn_home *h, int cfd, int bfd, const char *meta)
{
	struct conn *c = calloc(1, sizeof(*c));
	socklen_t plen = sizeof(c->peer);
	if (!c)
		return -1;
	c->home = h;
	c->rt = runtime_ref(h->rt);
	c->cfd = cfd;
	c->bfd = bfd;
	relay_prepare(&c->relay, h->pool, &c->close);
	if (conn_import(c, meta) < 0 || getpeername(cfd, (struct sockaddr *)&c->peer, &plen) < 0) {
		ktls_keys_free(c->relay.tls.keys);
		free(c->sni);
		runtime_unref(c->rt);
		free(c);
		return -1;
	}
	c->ktls = KTLS_TX | KTLS_RX;
	relay_init(&c->relay, cfd, NULL, c->ktls, strcmp(c->tls_version, "TLSv1.3") == 0, true);
	atomic_fetch_add(&c->rt->stats[c->fe_idx]->active, 1);
	if (c->server) { /* leastconn and maxconn count it from now on */
		pool_hold(c->server);
		c->server_held = true;
	}
	h->nconns++;
	conn_link(h, c);
	c->state = CONN_RELAY;
	relay_start(&c->relay, bfd);
	c->relayed = true;
	c->last_active_ms = clock_coarse_ms();
	if (conn_fe(c)->idle_timeout_ms)
		timer_in(c, conn_fe(c)->idle_timeout_ms);
	int want = 0;
	if (relay_pump(&c->relay, RELAY_ANY, &want) != IO_OK) {
		c->state = CONN_CLOSED;
		conn_destroy(c);
		return 0;
	}
	set_interest(c, want);
	return 0;
}
