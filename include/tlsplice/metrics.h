/* The HTTP endpoint that serves the counters (per frontend in stats.h, per server in server.h):
 * GET /metrics (Prometheus text) and GET /healthz. It runs on the main thread; the request
 * parser is pure and any thread may call it. */
#ifndef TLSPLICE_METRICS_H
#define TLSPLICE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "tlsplice/stats.h" /* what it serves; users of the counters get them here too */

struct runtime;
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

/* The listening socket (an upgrade passes it on), -1 if m is NULL. */
int metrics_fd(const struct metrics *m);
/* Serves the endpoint on base (the main thread's) at cfg->metrics; NULL with err filled. */
struct metrics *metrics_create(struct event_base *base, struct runtime *rt, char *err,
			       size_t errlen);
void metrics_destroy(struct metrics *m); /* NULL ok */
/* The Prometheus text of rt's counters; caller frees. Exposed for tests. */
char *metrics_render(const struct runtime *rt, size_t *len);
/* After SIGTERM /healthz answers 503 so that load balancers stop sending. */
void metrics_set_draining(struct metrics *m);
void metrics_set_runtime(struct metrics *m, struct runtime *rt); /* after a reload */

#endif
