/* The metrics endpoint: a small, strict HTTP/1.x server on the main thread. It faces
 * untrusted clients, so everything is bounded: one request head of METRICS_REQ_MAX bytes,
 * GET and HEAD only, no body, one request per connection, METRICS_MAX_CONNS connections
 * (the oldest goes when a new one comes) and METRICS_DEADLINE_MS for the whole exchange. */
#include "tlsplice/metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/event_struct.h>

#include "tlsplice/clock.h"
#include "tlsplice/log.h"
#include "tlsplice/net.h"
#include "tlsplice/notify.h"
#include "tlsplice/runtime.h"

#define LINGER_MAX 65536 /* bytes read and dropped after the answer, before closing */
#define ACCEPT_BACKOFF_MS 250

struct mconn;

struct metrics {
	struct event_base *base;
	struct runtime *rt;
	atomic_bool draining;
	int lfd;
	struct event lev;     /* the listening socket */
	struct event backoff; /* out of descriptors: accept again later */
	struct mconn *oldest, *newest;
	unsigned nconns;
};

/* Every per-frontend series: metric, its type and help, the label that tells the series of
 * one metric apart (NULL: none), and the counter's place in struct fe_stats. */
struct fe_series {
	const char *name, *type, *help, *label;
	size_t off;
};

#define FE_OFF(field) offsetof(struct fe_stats, field)

static const struct fe_series fe_series[] = {
	{ "tlsplice_connections_total", "counter", "Client connections accepted.", NULL,
	  FE_OFF(connections) },
	{ "tlsplice_connections_active", "gauge", "Client connections open now.", NULL,
	  FE_OFF(active) },
	{ "tlsplice_handshake_failures_total", "counter", "TLS handshakes that failed, by reason.",
	  "reason=\"protocol\"", FE_OFF(hs_failures[HS_FAIL_PROTOCOL]) },
	{ NULL, NULL, NULL, "reason=\"timeout\"", FE_OFF(hs_failures[HS_FAIL_TIMEOUT]) },
	{ NULL, NULL, NULL, "reason=\"closed\"", FE_OFF(hs_failures[HS_FAIL_CLOSED]) },
	{ "tlsplice_ktls_connections_total", "counter",
	  "Connections with kernel TLS, by direction.", "direction=\"tx\"", FE_OFF(ktls_tx) },
	{ NULL, NULL, NULL, "direction=\"rx\"", FE_OFF(ktls_rx) },
	{ "tlsplice_ktls_fallbacks_total", "counter",
	  "Connections where kernel TLS was wanted but a direction stayed in user space, by why.",
	  "reason=\"cipher\"", FE_OFF(ktls_fallbacks[KTLS_FALLBACK_CIPHER]) },
	{ NULL, NULL, NULL, "reason=\"kernel\"", FE_OFF(ktls_fallbacks[KTLS_FALLBACK_KERNEL]) },
	{ NULL, NULL, NULL, "reason=\"partial\"", FE_OFF(ktls_fallbacks[KTLS_FALLBACK_PARTIAL]) },
	{ "tlsplice_ktls_key_updates_total", "counter",
	  "TLS 1.3 KeyUpdates followed in the kernel (rx: the client's, tx: ours), counted at close.",
	  "direction=\"rx\"", FE_OFF(key_updates[0]) },
	{ NULL, NULL, NULL, "direction=\"tx\"", FE_OFF(key_updates[1]) },
	{ "tlsplice_relay_total", "counter", "Relayed connections, by how bytes moved.",
	  "mode=\"splice\"", FE_OFF(relay[RELAY_KIND_SPLICE]) },
	{ NULL, NULL, NULL, "mode=\"userspace\"", FE_OFF(relay[RELAY_KIND_USERSPACE]) },
	{ NULL, NULL, NULL, "mode=\"mixed\"", FE_OFF(relay[RELAY_KIND_MIXED]) },
	{ "tlsplice_bytes_total", "counter", "Plaintext bytes relayed (in: client to backend).",
	  "direction=\"in\"", FE_OFF(bytes_in) },
	{ NULL, NULL, NULL, "direction=\"out\"", FE_OFF(bytes_out) },
};

static void head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Series without a name continue the metric of the row above (another label value). */
static void render_frontends(struct evbuffer *b, const struct runtime *rt)
{
	const struct config *cfg = rt->cfg;
	size_t n = sizeof(fe_series) / sizeof(fe_series[0]);
	for (size_t first = 0, last; first < n; first = last) {
		for (last = first + 1; last < n && !fe_series[last].name; last++)
			;
		const char *name = fe_series[first].name;
		head(b, name, fe_series[first].type, fe_series[first].help);
		for (size_t i = 0; i < cfg->nfrontends; i++) {
			const struct fe_stats *st = rt->stats[i];
			for (size_t k = first; k < last; k++) {
				const struct fe_series *f = &fe_series[k];
				long long v = fe_stats_load(st, f->off);
				evbuffer_add_printf(b, "%s{frontend=\"%s\"%s%s} %lld\n", name,
						    cfg->frontends[i].name, f->label ? "," : "",
						    f->label ? f->label : "", v);
			}
		}
	}
}

/* One per-server metric over every server of every pool. */
static void render_server_metric(struct evbuffer *b, const struct runtime *rt, const char *name,
				 const char *type, const char *help, size_t field)
{
	head(b, name, type, help);
	for (size_t i = 0; i < rt->cfg->nbackends; i++) {
		const struct pool *p = &rt->pools[i];
		for (unsigned k = 0; k < p->nservers; k++) {
			const struct server *s = &p->servers[k];
			unsigned long long v;
			if (field == (size_t)-1)
				v = atomic_load(&s->up) ? 1 : 0;
			else
				v = atomic_load((atomic_uint_fast64_t *)((char *)s + field));
			evbuffer_add_printf(b, "%s{backend=\"%s\",server=\"%s\"} %llu\n", name,
					    p->cfg->name, s->cfg->addr.text, v);
		}
	}
}

/* A label value as the exposition format wants it: backslash, quote and newline escaped. */
static void label_value(struct evbuffer *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			evbuffer_add_printf(b, "\\%c", *s);
		else if (*s == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, s, 1);
	}
}

/* Seconds left on each certificate, so that an alert fires before clients see it expire. */
static void render_cert_expiry(struct evbuffer *b, const struct runtime *rt)
{
	static const char name[] = "tlsplice_certificate_expiry_seconds";
	int64_t now = (int64_t)time(NULL);

	head(b, name, "gauge", "Seconds until the certificate expires (negative once it has).");
	for (size_t i = 0; rt->tls && i < rt->cfg->nfrontends; i++) {
		const struct cfg_frontend *fe = &rt->cfg->frontends[i];

		for (size_t k = 0; k < tls_frontend_ncerts(rt->tls[i]) && k < fe->ncerts; k++) {
			evbuffer_add_printf(b, "%s{frontend=\"%s\",cert=\"", name, fe->name);
			label_value(b, fe->certs[k].cert_path);
			evbuffer_add_printf(
				b, "\"} %lld\n",
				(long long)(tls_frontend_cert_expiry(rt->tls[i], k) - now));
		}
	}
}

static void render(struct evbuffer *b, const struct runtime *rt)
{
	render_frontends(b, rt);
	render_cert_expiry(b, rt);
	render_server_metric(b, rt, "tlsplice_server_up", "gauge", "1 if the server counts as up.",
			     (size_t)-1);
	render_server_metric(b, rt, "tlsplice_server_connect_failures_total", "counter",
			     "Failed connects of client traffic.",
			     offsetof(struct server, connect_failures));
	render_server_metric(b, rt, "tlsplice_server_check_failures_total", "counter",
			     "Failed active health checks.",
			     offsetof(struct server, check_failures));
	render_server_metric(b, rt, "tlsplice_server_connections_total", "counter",
			     "Client connections carried.", offsetof(struct server, connections));
}

char *metrics_render(const struct runtime *rt, size_t *len)
{
	struct evbuffer *b = evbuffer_new();
	if (!b)
		return NULL;
	render(b, rt);
	*len = evbuffer_get_length(b);
	char *out = malloc(*len + 1);
	if (out) {
		evbuffer_remove(b, out, *len);
		out[*len] = '\0';
	}
	evbuffer_free(b);
	return out;
}

/* ------------------------------------------------------------------ request parsing */

/* One line of buf from pos: [*b, *e) without its LF or CRLF; the next line's start, or 0 if
 * the line has no end within len. */
static size_t next_line(const char *buf, size_t len, size_t pos, size_t *b, size_t *e)
{
	const char *nl = memchr(buf + pos, '\n', len - pos);
	if (!nl)
		return 0;
	*b = pos;
	*e = (size_t)(nl - buf);
	if (*e > *b && buf[*e - 1] == '\r')
		(*e)--;
	return (size_t)(nl - buf) + 1;
}

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool span_is(const char *p, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(p, word, n) == 0;
}

/* "METHOD SP TARGET SP HTTP/x.y": 0 or the status that refuses it. */
static int parse_request_line(const char *p, size_t n, struct metrics_request *r)
{
	size_t m = 0, t, v;
	while (m < n && is_tchar((unsigned char)p[m]))
		m++;
	if (m == 0 || m == n || p[m] != ' ')
		return 400;
	for (t = m + 1; t < n && p[t] > ' ' && p[t] < 0x7f; t++)
		;
	if (t == m + 1 || p[m + 1] != '/' || t == n || p[t] != ' ')
		return 400;
	v = t + 1;
	if (n - v != 8 || memcmp(p + v, "HTTP/", 5) != 0 || p[v + 6] != '.' || p[v + 5] < '0' ||
	    p[v + 5] > '9' || p[v + 7] < '0' || p[v + 7] > '9')
		return 400;
	r->path = p + m + 1;
	r->pathlen = t - m - 1;
	const char *q = memchr(r->path, '?', r->pathlen);
	if (q)
		r->pathlen = (size_t)(q - r->path);
	if (p[v + 5] != '1')
		return 505;
	r->head = span_is(p, m, "HEAD");
	return r->head || span_is(p, m, "GET") ? 0 : 405;
}

/* "Name: value": 0, or the status that refuses it (a body announced: 413). */
static int parse_header(const char *p, size_t n)
{
	size_t k = 0;
	while (k < n && is_tchar((unsigned char)p[k]))
		k++;
	if (k == 0 || k == n || p[k] != ':')
		return 400;
	size_t v = k + 1, e = n;
	for (size_t i = v; i < n; i++)
		if (((unsigned char)p[i] < ' ' && p[i] != '\t') || p[i] == 0x7f)
			return 400;
	while (v < e && (p[v] == ' ' || p[v] == '\t'))
		v++;
	while (e > v && (p[e - 1] == ' ' || p[e - 1] == '\t'))
		e--;
	if (k == 17 && strncasecmp(p, "transfer-encoding", k) == 0)
		return 413;
	if (k == 14 && strncasecmp(p, "content-length", k) == 0) {
		if (v == e)
			return 400;
		for (size_t i = v; i < e; i++)
			if (p[i] < '0' || p[i] > '9')
				return 400;
		for (size_t i = v; i < e; i++)
			if (p[i] != '0')
				return 413;
	}
	return 0;
}

int metrics_parse_request(const char *buf, size_t len, struct metrics_request *r)
{
	size_t b, e, pos;
	memset(r, 0, sizeof(*r));
	if (len > METRICS_REQ_MAX)
		len = METRICS_REQ_MAX;
	if (!(pos = next_line(buf, len, 0, &b, &e))) {
		r->status = 414;
		return len < METRICS_REQ_MAX ? 0 : 1;
	}
	r->status = parse_request_line(buf + b, e - b, r);
	for (;;) {
		size_t next = next_line(buf, len, pos, &b, &e);
		if (!next) {
			r->status = 431;
			return len < METRICS_REQ_MAX ? 0 : 1;
		}
		pos = next;
		if (b == e)
			break;
		int st = memchr(buf + b, '\r', e - b) ? 400 : parse_header(buf + b, e - b);
		if (!r->status)
			r->status = st;
	}
	return 1;
}

/* ------------------------------------------------------------------ answers */

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Payload Too Large";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Internal Server Error";
	}
}

/* Status line, headers and (unless HEAD) body into out; body is emptied. */
static void answer(struct evbuffer *out, int status, const char *type, struct evbuffer *body,
		   bool head)
{
	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			    "%sConnection: close\r\n\r\n",
			    status, reason(status), type, evbuffer_get_length(body),
			    status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (head)
		evbuffer_drain(body, evbuffer_get_length(body));
	else
		evbuffer_add_buffer(out, body);
}

static void respond(struct metrics *m, const struct metrics_request *r, struct evbuffer *out)
{
	struct evbuffer *body = evbuffer_new();
	int status = r->status;
	const char *type = "text/plain";
	if (!body)
		return;
	if (!status && span_is(r->path, r->pathlen, "/metrics")) {
		render(body, m->rt);
		type = "text/plain; version=0.0.4";
		status = 200;
	} else if (!status && span_is(r->path, r->pathlen, "/healthz")) {
		bool d = atomic_load(&m->draining);
		evbuffer_add_printf(body, "%s\n", d ? "draining" : "ok");
		status = d ? 503 : 200;
	} else {
		status = status ? status : 404;
		evbuffer_add_printf(body, "%d %s\n", status, reason(status));
	}
	answer(out, status, type, body, r->head && status < 400);
	evbuffer_free(body);
}

/* ------------------------------------------------------------------ connections */

/* One client: reads one request head, writes the answer, then drops what else it sends
 * until it closes (so the answer is not lost to a reset), all within the deadline. */
struct mconn {
	struct metrics *m;
	struct mconn *prev, *next; /* oldest first */
	int fd;
	struct event io, deadline;
	struct evbuffer *out;
	size_t len, dropped;
	char req[METRICS_REQ_MAX];
};

static void mconn_close(struct mconn *c)
{
	struct metrics *m = c->m;
	event_del(&c->io);
	event_del(&c->deadline);
	close(c->fd);
	*(c->prev ? &c->prev->next : &m->oldest) = c->next;
	*(c->next ? &c->next->prev : &m->newest) = c->prev;
	m->nconns--;
	if (c->out)
		evbuffer_free(c->out);
	free(c);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	mconn_close(arg);
}

/* After the answer: read and drop, close at EOF or after LINGER_MAX bytes. */
static void on_linger(evutil_socket_t fd, short what, void *arg)
{
	struct mconn *c = arg;
	char sink[4096];
	ssize_t n = recv(fd, sink, sizeof(sink), 0);
	if (n > 0 && (c->dropped += (size_t)n) < LINGER_MAX)
		return;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	mconn_close(c);
}

static void set_io(struct mconn *c, short what, event_callback_fn cb)
{
	event_del(&c->io);
	event_assign(&c->io, c->m->base, c->fd, what | EV_PERSIST, cb, c);
	event_add(&c->io, NULL);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
	struct mconn *c = arg;
	if (evbuffer_write(c->out, fd) < 0 && errno != EAGAIN && errno != EINTR) {
		mconn_close(c);
		return;
	}
	if (evbuffer_get_length(c->out) > 0)
		return;
	shutdown(fd, SHUT_WR);
	set_io(c, EV_READ, on_linger);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
	struct mconn *c = arg;
	struct metrics_request r;
	ssize_t n = recv(fd, c->req + c->len, sizeof(c->req) - c->len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		mconn_close(c);
		return;
	}
	c->len += (size_t)n;
	if (metrics_parse_request(c->req, c->len, &r) == 0)
		return;
	if (!(c->out = evbuffer_new())) {
		mconn_close(c);
		return;
	}
	respond(c->m, &r, c->out);
	set_io(c, EV_WRITE, on_write);
}

static void mconn_open(struct metrics *m, int fd)
{
	struct timeval tv = clock_ms_to_tv(METRICS_DEADLINE_MS);
	if (m->nconns >= METRICS_MAX_CONNS)
		mconn_close(m->oldest); /* a fresh scrape beats a client that stalls */
	struct mconn *c = malloc(sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	memset(c, 0, offsetof(struct mconn, req));
	c->m = m;
	c->fd = fd;
	c->prev = m->newest;
	*(m->newest ? &m->newest->next : &m->oldest) = c;
	m->newest = c;
	m->nconns++;
	event_assign(&c->io, m->base, fd, EV_READ | EV_PERSIST, on_read, c);
	evtimer_assign(&c->deadline, m->base, on_deadline, c);
	event_add(&c->io, NULL);
	evtimer_add(&c->deadline, &tv);
}

static void on_backoff(evutil_socket_t fd, short what, void *arg)
{
	struct metrics *m = arg;
	event_add(&m->lev, NULL);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct metrics *m = arg;
	for (int i = 0; i < METRICS_MAX_CONNS; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			mconn_open(m, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			struct timeval tv = clock_ms_to_tv(ACCEPT_BACKOFF_MS);
			log_warn("metrics: accept: %s; pausing for %d ms", strerror(errno),
				 ACCEPT_BACKOFF_MS);
			event_del(&m->lev);
			evtimer_add(&m->backoff, &tv);
		}
		return;
	}
}

struct metrics *metrics_create(struct event_base *base, struct runtime *rt, char *err,
			       size_t errlen)
{
	const struct cfg_addr *a = &rt->cfg->metrics;
	struct metrics *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "metrics: out of memory");
		return NULL;
	}
	m->base = base;
	m->rt = runtime_ref(rt);
	m->lfd = notify_take_listener((const struct sockaddr *)&a->ss, a->len, NULL);
	if (m->lfd < 0) /* not passed on by an old process (upgrade) */
		m->lfd = net_listen((const struct sockaddr *)&a->ss, a->len, false, err, errlen);
	if (m->lfd < 0) {
		runtime_unref(m->rt);
		free(m);
		return NULL;
	}
	event_assign(&m->lev, base, m->lfd, EV_READ | EV_PERSIST, on_accept, m);
	evtimer_assign(&m->backoff, base, on_backoff, m);
	event_add(&m->lev, NULL);
	return m;
}

void metrics_destroy(struct metrics *m)
{
	if (!m)
		return;
	while (m->oldest)
		mconn_close(m->oldest);
	event_del(&m->lev);
	event_del(&m->backoff);
	close(m->lfd);
	runtime_unref(m->rt);
	free(m);
}

void metrics_set_runtime(struct metrics *m, struct runtime *rt)
{
	if (!m)
		return;
	runtime_unref(m->rt);
	m->rt = runtime_ref(rt);
}

int metrics_fd(const struct metrics *m)
{
	return m ? m->lfd : -1;
}

void metrics_set_draining(struct metrics *m)
{
	if (m)
		atomic_store(&m->draining, true);
}
