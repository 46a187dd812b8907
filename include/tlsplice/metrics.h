/* Counters per frontend (atomics, bumped once per connection, never per byte) and the
 * HTTP endpoint that serves them: GET /metrics (Prometheus text) and GET /healthz. */
#ifndef TLSPLICE_METRICS_H
#define TLSPLICE_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

struct runtime;

enum hs_fail { HS_FAIL_PROTOCOL, HS_FAIL_TIMEOUT, HS_FAIL_CLOSED, HS_FAIL_MAX };
/* Why a connection's TLS did not go to the kernel in both directions: a cipher the kernel
 * does not take, the kernel refusing, or one direction only (e.g. TLS 1.3 receive with a
 * record already read by OpenSSL). */
enum ktls_fallback { KTLS_FALLBACK_CIPHER, KTLS_FALLBACK_KERNEL, KTLS_FALLBACK_PARTIAL,
		     KTLS_FALLBACK_MAX };
enum relay_kind { RELAY_KIND_SPLICE, RELAY_KIND_USERSPACE, RELAY_KIND_MIXED, RELAY_KIND_MAX };

struct fe_stats {
	atomic_int refs; /* generations that count into it */
	atomic_uint_fast64_t connections;
	atomic_long active;
	atomic_uint_fast64_t hs_failures[HS_FAIL_MAX];
	atomic_uint_fast64_t ktls_tx, ktls_rx;
	atomic_uint_fast64_t relay[RELAY_KIND_MAX];
	atomic_uint_fast64_t bytes_in, bytes_out;
	atomic_uint_fast64_t ktls_fallbacks[KTLS_FALLBACK_MAX];
};

struct metrics;

/* Bounds of the endpoint, which faces untrusted clients: the request head (request line and
 * headers), connections held at once (a new one closes the oldest, so a fresh scrape is
 * always answered and the data path's descriptors are never taken), and the time one
 * connection may take from accept to close, however busy it keeps itself. */
#define METRICS_REQ_MAX 4096
#define METRICS_MAX_CONNS 64
#define METRICS_DEADLINE_MS 5000

/* One parsed request head. status 0: a GET or HEAD of path; else the error to answer (400,
 * 405 for other methods, 413 when a body is announced, 414/431 when the head does not fit
 * in METRICS_REQ_MAX, 505). */
struct metrics_request {
	int status;
	bool head;
	const char *path; /* inside the parsed buffer, query cut off, not NUL-terminated */
	size_t pathlen;
};

/* Parses the request head at the start of buf (len bytes; what lies past METRICS_REQ_MAX is
 * ignored): 1 when decided (r filled), 0 when more bytes are needed. Never reads past len;
 * no allocation. The fuzz target drives it. */
int metrics_parse_request(const char *buf, size_t len, struct metrics_request *r);

/* Serves the endpoint on base (the main thread's) at cfg->metrics; NULL with err filled. */
struct metrics *metrics_create(struct event_base *base, struct runtime *rt, char *err,
			       size_t errlen);
void metrics_destroy(struct metrics *m); /* NULL ok */
/* The Prometheus text of rt's counters; caller frees. Exposed for tests. */
char *metrics_render(const struct runtime *rt, size_t *len);
/* After SIGTERM /healthz answers 503 so that load balancers stop sending. */
void metrics_set_draining(struct metrics *m);
void metrics_set_runtime(struct metrics *m, struct runtime *rt); /* after a reload */
struct fe_stats *fe_stats_create(void);
struct fe_stats *fe_stats_ref(struct fe_stats *st);
void fe_stats_unref(struct fe_stats *st);

#endif
