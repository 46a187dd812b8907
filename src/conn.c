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
static void on_again(evutil_socket_t fd, short what, void *arg);

static const struct cfg_frontend *conn_fe(const struct conn *c)
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

static void toggle(struct event *ev, bool *on, bool want)
{
	if (want == *on)
		return;
	if (want)
		event_add(ev, NULL);
	else
		event_del(ev);
	*on = want;
}

/* Removes ev from the loop whatever state it is in (added, or activated and queued). */
static void drop(struct event *ev, bool *on)
{
	if (event_initialized(ev))
		event_del(ev);
	if (on)
		*on = false;
}

/* Arms exactly the events a step asked for; unchanged ones cost no epoll_ctl. */
static void set_interest(struct conn *c, int want)
{
	static const struct timeval now = { 0, 0 };
	toggle(&c->cr, &c->cr_on, want & RELAY_CREAD);
	toggle(&c->cw, &c->cw_on, want & RELAY_CWRITE);
	if (c->bfd >= 0) {
		toggle(&c->br, &c->br_on, want & RELAY_BREAD);
		toggle(&c->bw, &c->bw_on, want & RELAY_BWRITE);
	}
	/* a timer, not event_active: an activation runs within the same pass of the loop, so
	 * a client that keeps its socket full would keep every other connection and timer of
	 * this worker waiting; a timer runs after the next poll */
	if (want & RELAY_AGAIN)
		evtimer_add(&c->again, &now);
	else
		evtimer_del(&c->again);
}

static void backend_close(struct conn *c)
{
	if (c->bfd < 0)
		return;
	drop(&c->br, &c->br_on);
	drop(&c->bw, &c->bw_on);
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
	};
	access_log_conn(&a);
}

static void conn_destroy(struct conn *c)
{
	struct conn_home *h = c->home;
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
	/* every event, whatever the flags say: a queued activation must not outlive c */
	drop(&c->cr, &c->cr_on);
	drop(&c->cw, &c->cw_on);
	drop(&c->timer, NULL);
	drop(&c->again, NULL);
	backend_close(c);
	relay_finish(&c->relay);
	ktls_forget(c->ssl);
	SSL_free(c->ssl);
	free(c->sni);
	proxy_in_reader_finish(&c->pin);
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

/* Builds the PROXY protocol header (v1 text or v2 binary) for this client; 0 if off. */
static size_t proxy_header(const struct conn *c, enum proxy_proto v, unsigned char *out, size_t cap)
{
	static const unsigned char sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					       0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	if (v == PROXY_OFF)
		return 0;
	if (c->pin.dst) /* the address the client reached, as the balancer in front told it */
		local = *c->pin.dst;
	else if (getsockname(c->cfd, (struct sockaddr *)&local, &llen) < 0)
		return 0;
	bool v6 = c->peer.ss_family == AF_INET6;
	const struct sockaddr_in *s4 = (const void *)&c->peer, *d4 = (const void *)&local;
	const struct sockaddr_in6 *s6 = (const void *)&c->peer, *d6 = (const void *)&local;
	if (v == PROXY_V1) {
		char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
		inet_ntop(c->peer.ss_family,
			  v6 ? (const void *)&s6->sin6_addr : (const void *)&s4->sin_addr, src,
			  sizeof(src));
		inet_ntop(c->peer.ss_family,
			  v6 ? (const void *)&d6->sin6_addr : (const void *)&d4->sin_addr, dst,
			  sizeof(dst));
		int n = snprintf((char *)out, cap, "PROXY %s %s %s %u %u\r\n", v6 ? "TCP6" : "TCP4",
				 src, dst, ntohs(v6 ? s6->sin6_port : s4->sin_port),
				 ntohs(v6 ? d6->sin6_port : d4->sin_port));
		return n > 0 && (size_t)n < cap ? (size_t)n : 0;
	}
	size_t alen = v6 ? 36 : 12;
	memcpy(out, sig, sizeof(sig));
	out[12] = 0x21;             /* version 2, PROXY command */
	out[13] = v6 ? 0x21 : 0x11; /* TCP over IPv6 / IPv4 */
	out[14] = (unsigned char)(alen >> 8);
	out[15] = (unsigned char)alen;
	unsigned char *p = out + 16;
	if (v6) {
		memcpy(p, &s6->sin6_addr, 16);
		memcpy(p + 16, &d6->sin6_addr, 16);
		memcpy(p + 32, &s6->sin6_port, 2);
		memcpy(p + 34, &d6->sin6_port, 2);
	} else {
		memcpy(p, &s4->sin_addr, 4);
		memcpy(p + 4, &d4->sin_addr, 4);
		memcpy(p + 8, &s4->sin_port, 2);
		memcpy(p + 10, &d4->sin_port, 2);
	}
	return 16 + alen;
}

/* What the SSL TLV tells of a client certificate, kept while the SSL object lives. */
struct conn_peer_cert {
	long verify;
	bool in_conn;
	char cn[256];
};

static void keep_peer_cert(struct conn *c)
{
	X509 *x = SSL_get0_peer_certificate(c->ssl);
	if (!x || !(c->peer_cert = calloc(1, sizeof(*c->peer_cert))))
		return;
	c->peer_cert->verify = SSL_get_verify_result(c->ssl);
	c->peer_cert->in_conn = !SSL_session_reused(c->ssl);
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, c->peer_cert->cn,
				      sizeof(c->peer_cert->cn)) < 0)
		c->peer_cert->cn[0] = '\0';
}

/* proxy_protocol_tlvs and proxy_protocol_crc32c on a v2 header of n bytes: its new length
 * (the header without them if they cannot fit, which the bounds rule out). */
static size_t proxy_tlvs_add(const struct conn *c, const struct cfg_frontend *fe,
			     unsigned char *hdr, size_t n, size_t cap)
{
	const struct conn_peer_cert *pc = c->peer_cert;
	struct proxy_tlv_facts f = {
		.alpn = c->alpn,
		.alpn_len = c->alpn_len,
		.authority = c->sni,
		.version = c->tls_version,
		.cipher = c->cipher,
		.cn = pc ? pc->cn : NULL,
		.cert = pc != NULL,
		.cert_in_conn = pc && pc->in_conn,
		.verify = pc ? pc->verify : 0,
	};
	size_t m = proxy_tlv_append(hdr, n, cap, fe->proxy_tlvs, fe->proxy_crc32c, &f);
	return m ? m : n;
}

/* The connect just completed, so the socket's send buffer is empty and the header (at most
 * 1536 bytes with every TLV) goes out whole in one send. */
static int send_proxy_header(struct conn *c)
{
	const struct cfg_frontend *fe = conn_fe(c);
	unsigned char hdr[PROXY_TLV_HEADER_MAX];
	size_t n = proxy_header(c, fe->proxy_protocol, hdr, sizeof(hdr));
	if (n && fe->proxy_protocol == PROXY_V2 && (fe->proxy_tlvs || fe->proxy_crc32c))
		n = proxy_tlvs_add(c, fe, hdr, n, sizeof(hdr));
	if (n == 0)
		return 0;
	if (send(c->bfd, hdr, n, MSG_NOSIGNAL) != (ssize_t)n) {
		conn_fail(c, CLOSE_SERVER_EOF, "cannot send PROXY header: %s", strerror(errno));
		return -1;
	}
	return 0;
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
		event_assign(&c->br, c->home->base, c->bfd, EV_READ | EV_PERSIST, on_event, c);
		event_assign(&c->bw, c->home->base, c->bfd, EV_WRITE | EV_PERSIST, on_event, c);
		toggle(&c->bw, &c->bw_on, true);
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
	if (!e && send_proxy_header(c) < 0)
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
			c->alpn_len = alpn_len;
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
		keep_peer_cert(c);
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
	switch (proxy_in_read(&c->pin, c->cfd, (unsigned)fe->accept_proxy, &c->peer, err,
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

/* RELAY_AGAIN: the relay left bytes in OpenSSL that no socket event will announce. */
static void on_again(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	on_event(c->cfd, EV_READ, c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	const struct cfg_frontend *fe = conn_fe(c);
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

void conn_accept(struct conn_home *h, int fd, size_t fe_idx, const struct sockaddr_storage *peer)
{
	h->nconns++;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		goto err;
	c->home = h;
	c->rt = runtime_ref(h->rt);
	c->fe_idx = fe_idx;
	c->cfd = fd;
	c->bfd = -1;
	relay_prepare(&c->relay, h->pool, &c->close);
	c->peer = *peer;
	c->t_accept_us = clock_mono_us();
	gettimeofday(&c->t_accept_wall, NULL);
	atomic_fetch_add(&c->rt->stats[fe_idx]->connections, 1);
	atomic_fetch_add(&c->rt->stats[fe_idx]->active, 1);
	c->ssl = tls_accept(c->rt->tls[fe_idx], fd);
	if (!c->ssl) {
		atomic_fetch_sub(&c->rt->stats[fe_idx]->active, 1);
		runtime_unref(c->rt);
		free(c);
		goto err;
	}
	net_set_nodelay(fd);
	event_assign(&c->cr, h->base, fd, EV_READ | EV_PERSIST, on_event, c);
	event_assign(&c->cw, h->base, fd, EV_WRITE | EV_PERSIST, on_event, c);
	evtimer_assign(&c->timer, h->base, on_timer, c);
	evtimer_assign(&c->again, h->base, on_again, c);
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
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

bool conn_movable(const struct conn *c)
{
	const struct relay *r = &c->relay;
	/* an adopted connection whose server left the configuration stays where it is */
	return c->state == CONN_RELAY && !c->ssl && c->pool && c->server && r->up.splice &&
	       r->down.splice && !r->up.eof && !r->down.eof && !r->up.shut && !r->down.shut &&
	       r->up.in_pipe == 0 && r->down.in_pipe == 0 && !r->up.buf && !r->down.buf;
}

static void hex_out(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	if (!p || n == 0) {
		strcpy(out, "-");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int conn_export(const struct conn *c, char *meta, size_t len)
{
	char sni[2 * 255 + 1], alpn[2 * 255 + 1];
	const char *s = c->sni ? c->sni : "";
	hex_out((const unsigned char *)s, strnlen(s, 255), sni);
	hex_out(c->alpn, c->alpn_len, alpn);
	int n = snprintf(meta, len, "conn %s %s %s %s %s %s %s %llu %llu %lld %ld %llu %llu %u",
			 conn_fe(c)->name, c->pool->cfg->name, c->server->cfg->addr.text,
			 c->tls_version ? c->tls_version : "-", c->cipher ? c->cipher : "-", sni,
			 alpn, (unsigned long long)c->t_accept_us,
			 (unsigned long long)c->t_handshake_us, (long long)c->t_accept_wall.tv_sec,
			 (long)c->t_accept_wall.tv_usec, (unsigned long long)c->relay.up.bytes,
			 (unsigned long long)c->relay.down.bytes, c->handovers + 1);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

void conn_hand_off(struct conn *c)
{
	struct conn_home *h = c->home;
	/* the new process counts it, logs it once and adds its bytes when it ends */
	atomic_fetch_sub(&c->rt->stats[c->fe_idx]->active, 1);
	drop(&c->cr, &c->cr_on);
	drop(&c->cw, &c->cw_on);
	drop(&c->timer, NULL);
	drop(&c->again, NULL);
	backend_close(c);
	relay_finish(&c->relay);
	free(c->sni);
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

/* OpenSSL's version and cipher names are static strings in the process that made the
 * handshake; an adopted connection's come from text: kept once each, for the process's
 * life (a few dozen at most). */
static const char *intern(const char *s)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static char *names[64];
	const char *found = "-";
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < 64; i++) {
		if (!names[i])
			names[i] = strdup(s);
		if (names[i] && strcmp(names[i], s) == 0) {
			found = names[i];
			break;
		}
	}
	pthread_mutex_unlock(&mu);
	return found;
}

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static size_t hex_in(const char *in, unsigned char *out, size_t cap)
{
	size_t n = 0;
	for (; hex_digit(in[0]) >= 0 && hex_digit(in[1]) >= 0 && n < cap; in += 2)
		out[n++] = (unsigned char)(hex_digit(in[0]) * 16 + hex_digit(in[1]));
	return n;
}

/* Finds c's frontend, backend and server by name in the running generation. */
static int adopt_names(struct conn *c, const char *fe, const char *be, const char *srv)
{
	const struct config *cfg = c->rt->cfg;
	size_t i;
	for (i = 0; i < cfg->nfrontends && strcmp(cfg->frontends[i].name, fe) != 0; i++)
		;
	if (i == cfg->nfrontends)
		return -1;
	c->fe_idx = i;
	for (i = 0; i < cfg->nbackends && !c->pool; i++)
		if (strcmp(cfg->backends[i].name, be) == 0)
			c->pool = &c->rt->pools[i];
	for (unsigned k = 0; c->pool && k < c->pool->nservers; k++)
		if (strcmp(c->pool->servers[k].cfg->addr.text, srv) == 0)
			c->server = &c->pool->servers[k];
	return 0;
}

/* What the access log needs, from conn_export's text. */
static int adopt_meta(struct conn *c, const char *meta)
{
	char fe[64], be[64], srv[128], ver[16], cipher[64], sni[512], alpn[512];
	unsigned long long acc, hs, in, out;
	long long sec;
	long usec;
	if (sscanf(meta,
		   "conn %63s %63s %127s %15s %63s %511s %511s %llu %llu %lld %ld %llu %llu %u", fe,
		   be, srv, ver, cipher, sni, alpn, &acc, &hs, &sec, &usec, &in, &out,
		   &c->handovers) != 14 ||
	    adopt_names(c, fe, be, srv) < 0)
		return -1;
	unsigned char raw[256];
	size_t n = hex_in(sni, raw, sizeof(raw) - 1);
	raw[n] = '\0';
	c->sni = n ? strdup((const char *)raw) : NULL;
	n = hex_in(alpn, raw, sizeof(raw));
	const struct cfg_frontend *f = conn_fe(c);
	for (size_t i = 0; n && i < f->alpn_len; i += 1u + f->alpn[i])
		if (f->alpn[i] == n && memcmp(&f->alpn[i + 1], raw, n) == 0) {
			c->alpn = &f->alpn[i + 1];
			c->alpn_len = (unsigned)n;
		}
	c->tls_version = intern(ver);
	c->cipher = intern(cipher);
	c->t_accept_us = acc;
	c->t_handshake_us = hs;
	c->t_accept_wall.tv_sec = (time_t)sec;
	c->t_accept_wall.tv_usec = (suseconds_t)usec;
	c->relay.up.bytes = in;
	c->relay.down.bytes = out;
	return 0;
}

int conn_adopt(struct conn_home *h, int cfd, int bfd, const char *meta)
{
	struct conn *c = calloc(1, sizeof(*c));
	socklen_t plen = sizeof(struct sockaddr_storage);
	if (!c)
		return -1;
	c->home = h;
	c->rt = runtime_ref(h->rt);
	c->cfd = cfd;
	c->bfd = bfd;
	relay_prepare(&c->relay, h->pool, &c->close);
	if (adopt_meta(c, meta) < 0 || getpeername(cfd, (struct sockaddr *)&c->peer, &plen) < 0) {
		free(c->sni);
		runtime_unref(c->rt);
		free(c);
		return -1;
	}
	c->ktls = KTLS_TX | KTLS_RX;
	relay_init(&c->relay, cfd, NULL, c->ktls, strcmp(c->tls_version, "TLSv1.3") == 0, true);
	atomic_fetch_add(&c->rt->stats[c->fe_idx]->active, 1);
	event_assign(&c->cr, h->base, cfd, EV_READ | EV_PERSIST, on_event, c);
	event_assign(&c->cw, h->base, cfd, EV_WRITE | EV_PERSIST, on_event, c);
	event_assign(&c->br, h->base, bfd, EV_READ | EV_PERSIST, on_event, c);
	event_assign(&c->bw, h->base, bfd, EV_WRITE | EV_PERSIST, on_event, c);
	evtimer_assign(&c->timer, h->base, on_timer, c);
	evtimer_assign(&c->again, h->base, on_again, c);
	h->nconns++;
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
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
