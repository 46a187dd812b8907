/* The descriptor budget: how many file descriptors max_connections needs, raising the soft
 * RLIMIT_NOFILE to that (never beyond the hard limit), and the max_connections that fits
 * when even the hard limit is too low. The listeners pause at that effective value, so an
 * accepted client always finds descriptors left for its backend and its pipes. */
#ifndef TLSPLICE_FDBUDGET_H
#define TLSPLICE_FDBUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsplice/config.h"

/* Descriptors held whatever the load: stdio, the access log (and its parked twin), the main
 * loop's epoll, notify and signal descriptors, the kTLS probe, files read by a reload. */
#define FDBUDGET_FIXED 32
/* Per worker: its epoll and notify descriptors. */
#define FDBUDGET_PER_WORKER 4

/* What the process is made of, as far as descriptors go. */
struct fdbudget_in {
	long max_connections; /* as configured */
	unsigned workers;
	size_t listeners;     /* listen addresses; each is bound once per worker */
	size_t servers;       /* backend servers: one health-check socket each at most */
	bool metrics;         /* the metrics endpoint: its socket and its connections */
	unsigned splice_dirs; /* directions that may splice (0-2): a pipe each while in flight */
	unsigned pipe_pool;   /* empty pipes a worker keeps for reuse */
};

/* Descriptors one connection may hold: client, backend, and two per splicing direction. */
unsigned fdbudget_per_conn(const struct fdbudget_in *in);
/* Descriptors the process needs to run in->max_connections connections. */
uint64_t fdbudget_need(const struct fdbudget_in *in);
/* The largest max_connections, at most in->max_connections, whose need fits in limit; 0 if
 * not even one connection fits. */
long fdbudget_fit(const struct fdbudget_in *in, uint64_t limit);

struct fdbudget {
	long max_connections; /* effective: what the listeners pause at */
	uint64_t need;        /* descriptors for the configured max_connections */
	uint64_t limit;       /* the soft RLIMIT_NOFILE in force afterwards */
	unsigned per_conn;
};

/* At start-up and on every reload: raises the soft RLIMIT_NOFILE to what cfg needs (up to
 * the hard limit; never lowers it) and fills out. When the limit is too low, logs a warning
 * with the configured and the effective max_connections and the limit. */
void fdbudget_apply(const struct config *cfg, struct fdbudget *out);

#endif
