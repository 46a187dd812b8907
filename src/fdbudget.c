/* The descriptor budget (see fdbudget.h). Pure arithmetic first, so unit tests can check
 * it; then the one function that reads and raises the limit. */
#include "tlsplice/fdbudget.h"

#include <sys/resource.h>

#include "tlsplice/ktls.h"
#include "tlsplice/log.h"
#include "tlsplice/metrics.h"
#include "tlsplice/worker.h"

unsigned fdbudget_per_conn(const struct fdbudget_in *in)
{
	return 2 + 2 * in->splice_dirs;
}

/* Everything but the connections' own descriptors, for m connections. A worker's pool of
 * empty pipes holds only pipes its connections once used, so never more than they can. */
static uint64_t overhead(const struct fdbudget_in *in, uint64_t m)
{
	uint64_t pool = (uint64_t)in->pipe_pool, used = m * in->splice_dirs;
	uint64_t n = FDBUDGET_FIXED + (uint64_t)in->workers * FDBUDGET_PER_WORKER;
	/* a reload binds the new listeners before the old ones close */
	n += 2 * (uint64_t)in->listeners * in->workers;
	n += in->servers;
	if (in->metrics)
		n += METRICS_MAX_CONNS + 1;
	if (in->splice_dirs)
		n += 2 * (uint64_t)in->workers * (pool < used ? pool : used);
	return n;
}

uint64_t fdbudget_need(const struct fdbudget_in *in)
{
	uint64_t m = in->max_connections > 0 ? (uint64_t)in->max_connections : 0;
	return overhead(in, m) + m * fdbudget_per_conn(in);
}

long fdbudget_fit(const struct fdbudget_in *in, uint64_t limit)
{
	/* need grows with m: bisect over [0, max_connections] */
	struct fdbudget_in t = *in;
	long lo = 0, hi = in->max_connections > 0 ? in->max_connections : 0;
	while (lo < hi) {
		long mid = lo + (hi - lo + 1) / 2;
		t.max_connections = mid;
		if (fdbudget_need(&t) <= limit)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

static void describe(const struct config *cfg, struct fdbudget_in *in)
{
	in->max_connections = cfg->max_connections;
	in->workers = cfg->workers > 0 ? (unsigned)cfg->workers : 1;
	in->listeners = 0;
	for (size_t f = 0; f < cfg->nfrontends; f++)
		in->listeners += cfg->frontends[f].nlistens;
	in->servers = 0;
	for (size_t b = 0; b < cfg->nbackends; b++)
		in->servers += cfg->backends[b].nservers;
	in->metrics = cfg->has_metrics;
	int dirs = cfg->splice && cfg->ktls != KTLS_OFF ? ktls_probe() : 0;
	in->splice_dirs = (unsigned)(!!(dirs & KTLS_TX) + !!(dirs & KTLS_RX));
	in->pipe_pool = WORKER_POOL_MAX;
}

/* Raises the soft limit to need, up to the hard one; returns the soft limit in force. */
static uint64_t raise_soft(uint64_t need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		rlim_t want = rl.rlim_max == RLIM_INFINITY || need < rl.rlim_max ? need
										 : rl.rlim_max;
		struct rlimit nl = { want, rl.rlim_max };
		if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
			rl.rlim_cur = want;
	}
	return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

void fdbudget_apply(const struct config *cfg, struct fdbudget *out)
{
	struct fdbudget_in in;
	describe(cfg, &in);
	out->need = fdbudget_need(&in);
	out->limit = raise_soft(out->need);
	out->per_conn = fdbudget_per_conn(&in);
	out->max_connections = cfg->max_connections;
	if (out->need <= out->limit)
		return;
	long fit = fdbudget_fit(&in, out->limit);
	out->max_connections = fit > 0 ? fit : 1;
	log_warn("max_connections = %ld needs %llu file descriptors, but the limit (RLIMIT_NOFILE) "
		 "is %llu: running with max_connections = %ld; raise the hard limit (ulimit -Hn, "
		 "LimitNOFILE=) to allow more",
		 cfg->max_connections, (unsigned long long)out->need,
		 (unsigned long long)out->limit, out->max_connections);
}
