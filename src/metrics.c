/* The metrics endpoint: a tiny HTTP server (libevent's evhttp) on the main thread. */
#include "tlsplice/metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/http.h>

#include "tlsplice/net.h"
#include "tlsplice/runtime.h"

struct metrics {
	struct evhttp *http;
	struct runtime *rt;
	atomic_bool draining;
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
	{ "tlsplice_ktls_connections_total", "counter", "Connections with kernel TLS, by direction.",
	  "direction=\"tx\"", FE_OFF(ktls_tx) },
	{ NULL, NULL, NULL, "direction=\"rx\"", FE_OFF(ktls_rx) },
	{ "tlsplice_ktls_fallbacks_total", "counter",
	  "Connections where kernel TLS was wanted but a direction stayed in user space, by why.",
	  "reason=\"cipher\"", FE_OFF(ktls_fallbacks[KTLS_FALLBACK_CIPHER]) },
	{ NULL, NULL, NULL, "reason=\"kernel\"", FE_OFF(ktls_fallbacks[KTLS_FALLBACK_KERNEL]) },
	{ NULL, NULL, NULL, "reason=\"partial\"", FE_OFF(ktls_fallbacks[KTLS_FALLBACK_PARTIAL]) },
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
			const char *st = (const char *)rt->stats[i];
			for (size_t k = first; k < last; k++) {
				const struct fe_series *f = &fe_series[k];
				/* every counter is 64 bits wide; active is a signed gauge */
				long long v = f->off == FE_OFF(active)
						      ? (long long)atomic_load((atomic_long *)(st + f->off))
						      : (long long)atomic_load((atomic_uint_fast64_t *)(st + f->off));
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

static void render(struct evbuffer *b, const struct runtime *rt)
{
	render_frontends(b, rt);
	render_server_metric(b, rt, "tlsplice_server_up", "gauge",
			     "1 if the server counts as up.", (size_t)-1);
	render_server_metric(b, rt, "tlsplice_server_connect_failures_total", "counter",
			     "Failed connects of client traffic.",
			     offsetof(struct server, connect_failures));
	render_server_metric(b, rt, "tlsplice_server_check_failures_total", "counter",
			     "Failed active health checks.", offsetof(struct server, check_failures));
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

static void on_request(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	if (!b) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (path && strcmp(path, "/metrics") == 0) {
		render(b, m->rt);
		evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4");
		evhttp_send_reply(req, HTTP_OK, "OK", b);
	} else if (path && strcmp(path, "/healthz") == 0) {
		bool d = atomic_load(&m->draining);
		evbuffer_add_printf(b, "%s\n", d ? "draining" : "ok");
		evhttp_add_header(h, "Content-Type", "text/plain");
		evhttp_send_reply(req, d ? 503 : HTTP_OK, d ? "Service Unavailable" : "OK", b);
	} else {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
	}
	evbuffer_free(b);
}

struct metrics *metrics_create(struct event_base *base, struct runtime *rt, char *err,
			       size_t errlen)
{
	const struct cfg_addr *a = &rt->cfg->metrics;
	struct metrics *m = calloc(1, sizeof(*m));
	if (!m || !(m->http = evhttp_new(base))) {
		snprintf(err, errlen, "metrics: out of memory");
		free(m);
		return NULL;
	}
	m->rt = runtime_ref(rt);
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_timeout(m->http, 10);
	evhttp_set_gencb(m->http, on_request, m);
	int fd = net_listen((const struct sockaddr *)&a->ss, a->len, false, err, errlen);
	if (fd < 0 || !evhttp_accept_socket_with_handle(m->http, fd)) {
		if (fd >= 0)
			close(fd);
		metrics_destroy(m);
		return NULL;
	}
	return m;
}

void metrics_destroy(struct metrics *m)
{
	if (!m)
		return;
	if (m->http)
		evhttp_free(m->http);
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

struct fe_stats *fe_stats_create(void)
{
	struct fe_stats *st = calloc(1, sizeof(*st));
	if (st)
		atomic_init(&st->refs, 1);
	return st;
}

struct fe_stats *fe_stats_ref(struct fe_stats *st)
{
	atomic_fetch_add(&st->refs, 1);
	return st;
}

void fe_stats_unref(struct fe_stats *st)
{
	if (st && atomic_fetch_sub(&st->refs, 1) == 1)
		free(st);
}

void metrics_set_draining(struct metrics *m)
{
	if (m)
		atomic_store(&m->draining, true);
}
