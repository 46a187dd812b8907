/* Backend pools: smooth weighted round-robin or least connections, without a lock. The SWRR order of a pool's
 * weights is computed once; each pick takes the next slot with one atomic increment, and
 * slots of servers that are down (or already tried by this connection) are passed over by
 * taking further slots, so over every full cycle each server that is up gets exactly its
 * weight's share, however many workers pick at once. leastconn scans the servers for the
 * fewest open connections per weight, from a start that one atomic increment rotates so that
 * ties go round; a server's open connections are one atomic counter, taken with a
 * compare-and-swap that also enforces its maxconn. */
#include "tlsplice/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tlsplice/clock.h"

/* A server's open connections, shared across the generations of a reload. */
struct pool_load {
	atomic_uint active;
	atomic_int refs;
	atomic_uint_fast64_t ramp_slots; /* round-robin slots met while it ramps up */
};

static void load_unref(struct pool_load *l)
{
	if (l && atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1)
		free(l);
}

static int loads_create(struct pool *p)
{
	p->load = calloc(p->nservers ? p->nservers : 1, sizeof(*p->load));
	if (!p->load)
		return -1;
	for (unsigned i = 0; i < p->nservers; i++) {
		p->load[i] = calloc(1, sizeof(**p->load));
		if (!p->load[i])
			return -1;
		atomic_init(&p->load[i]->refs, 1);
	}
	return 0;
}

void pool_share_load(struct pool *p, unsigned k, const struct pool *old, unsigned ok)
{
	struct pool_load *l = old->load[ok];
	atomic_fetch_add(&l->refs, 1);
	load_unref(p->load[k]);
	p->load[k] = l;
}

unsigned pool_active(const struct pool *p, unsigned k)
{
	return atomic_load(&p->load[k]->active);
}

static bool slot_full(const struct pool *p, const struct server *s)
{
	return s->cfg->maxconn && atomic_load(&p->load[s->idx]->active) >= s->cfg->maxconn;
}

/* Takes one of s's connection slots unless it is at its maxconn. */
static bool slot_take(struct pool *p, const struct server *s)
{
	atomic_uint *a = &p->load[s->idx]->active;
	unsigned cur = atomic_load_explicit(a, memory_order_relaxed);
	do {
		if (s->cfg->maxconn && cur >= s->cfg->maxconn)
			return false;
	} while (!atomic_compare_exchange_weak(a, &cur, cur + 1));
	return true;
}

/* slowstart: the share of its weight (of 1024) a server that came up recently carries,
 * growing linearly from 0 when it came up to all of it slowstart later. */
static unsigned ramp_q(const struct pool *p, const struct server *s, uint64_t now_ms)
{
	uint64_t ss = p->cfg->slowstart_ms, since = atomic_load(&s->up_since_ms);
	if (!ss || since == 0 || now_ms >= since + ss)
		return 1024;
	return now_ms > since ? (unsigned)((now_ms - since) * 1024 / ss) : 0;
}

/* Round-robin while s ramps: takes q of every 1024 of its slots, spread evenly. */
static bool ramp_take_slot(struct pool *p, const struct server *s, uint64_t now_ms)
{
	unsigned q = ramp_q(p, s, now_ms);
	if (q >= 1024 || !atomic_load(&s->up))
		return true;
	uint64_t v = atomic_fetch_add(&p->load[s->idx]->ramp_slots, 1);
	return ((v + 1) * q) / 1024 > (v * q) / 1024;
}

bool pool_queue_enter(struct pool *p)
{
	unsigned cur = atomic_load_explicit(&p->queued, memory_order_relaxed);
	do {
		if (cur >= (unsigned)p->cfg->maxqueue)
			return false;
	} while (!atomic_compare_exchange_weak(&p->queued, &cur, cur + 1));
	return true;
}

void pool_queue_leave(struct pool *p)
{
	atomic_fetch_sub(&p->queued, 1);
}

unsigned pool_queued(const struct pool *p)
{
	return atomic_load(&p->queued);
}

void pool_hold(struct server *s)
{
	atomic_fetch_add(&s->pool->load[s->idx]->active, 1);
}

void pool_release(struct server *s)
{
	atomic_fetch_sub(&s->pool->load[s->idx]->active, 1);
}

uint64_t pool_now_ms(void)
{
	return clock_mono_ms();
}

unsigned pool_swrr_sequence(const int *weights, unsigned n, unsigned *out)
{
	long total = 0;
	for (unsigned i = 0; i < n; i++)
		total += weights[i];
	long *cur = calloc(n ? n : 1, sizeof(*cur));
	if (!cur)
		return 0;
	for (long k = 0; k < total; k++) {
		unsigned best = 0;
		for (unsigned i = 0; i < n; i++) {
			cur[i] += weights[i];
			if (cur[i] > cur[best])
				best = i;
		}
		cur[best] -= total;
		out[k] = best;
	}
	free(cur);
	return (unsigned)total;
}

/* SWRR order over the servers whose backup flag equals backup, as server indexes. */
static int build_seq(struct pool *p, bool backup, unsigned **seq, unsigned *nseq)
{
	unsigned n = 0, total = 0;
	int *w = calloc(p->nservers ? p->nservers : 1, sizeof(*w));
	unsigned *map = calloc(p->nservers ? p->nservers : 1, sizeof(*map));
	if (!w || !map)
		goto err;
	for (unsigned i = 0; i < p->nservers; i++) {
		if (p->cfg->servers[i].backup != backup)
			continue;
		map[n] = i;
		w[n++] = server_weight(&p->servers[i]);
		total += (unsigned)server_weight(&p->servers[i]);
	}
	*seq = calloc(total ? total : 1, sizeof(**seq));
	if (!*seq)
		goto err;
	*nseq = pool_swrr_sequence(w, n, *seq);
	for (unsigned k = 0; k < *nseq; k++)
		(*seq)[k] = map[(*seq)[k]];
	free(w);
	free(map);
	return 0;
err:
	free(w);
	free(map);
	errno = ENOMEM;
	return -1;
}

int pool_init(struct pool *p, const struct cfg_backend *cfg)
{
	return pool_init_servers(p, cfg, cfg->servers, cfg->nservers);
}

int pool_init_servers(struct pool *p, const struct cfg_backend *cfg,
		      const struct cfg_server *servers, size_t n)
{
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	p->nservers = (unsigned)n;
	p->servers = calloc(p->nservers ? p->nservers : 1, sizeof(*p->servers));
	if (!p->servers)
		return -1;
	for (unsigned i = 0; i < p->nservers; i++)
		server_setup(&p->servers[i], p, &servers[i], i);
	if (loads_create(p) < 0 || build_seq(p, false, &p->seq_primary, &p->nseq_primary) < 0 ||
	    build_seq(p, true, &p->seq_backup, &p->nseq_backup) < 0) {
		pool_finish(p);
		return -1;
	}
	return 0;
}

int pool_reorder(struct pool *p)
{
	unsigned *prim, *back, np, nb;

	if (build_seq(p, false, &prim, &np) < 0)
		return -1;
	if (build_seq(p, true, &back, &nb) < 0) {
		free(prim);
		return -1;
	}
	free(p->seq_primary);
	free(p->seq_backup);
	p->seq_primary = prim;
	p->nseq_primary = np;
	p->seq_backup = back;
	p->nseq_backup = nb;
	return 0;
}

void pool_finish(struct pool *p)
{
	for (unsigned i = 0; p->load && i < p->nservers; i++)
		load_unref(p->load[i]);
	free(p->load);
	free(p->servers);
	free(p->seq_primary);
	free(p->seq_backup);
	memset(p, 0, sizeof(*p));
}

void pool_tried_add(struct pool_tried *t, const struct server *s)
{
	if (s->idx < 256)
		t->bits[s->idx / 64] |= 1ull << (s->idx % 64);
}

bool pool_tried_has(const struct pool_tried *t, const struct server *s)
{
	return s->idx < 256 && (t->bits[s->idx / 64] & (1ull << (s->idx % 64)));
}

/* Takes slots from seq until one names a server that is up (or may be probed), was not
 * tried yet and is below its maxconn; one full cycle visits every slot. */
static struct server *pick_from(struct pool *p, const unsigned *seq, unsigned nseq,
				atomic_uint_fast64_t *pos, const struct pool_tried *tried,
				uint64_t now_ms, bool *full)
{
	struct server *ramping = NULL; /* a slot slowstart passed over: better than none */
	for (unsigned k = 0; k < nseq; k++) {
		struct server *s = &p->servers[seq[atomic_fetch_add(pos, 1) % nseq]];
		if (pool_tried_has(tried, s) || !server_admin_ready(s))
			continue;
		if (slot_full(p, s)) {
			*full = true;
			continue;
		}
		if (!ramp_take_slot(p, s, now_ms)) {
			ramping = ramping ? ramping : s;
			continue;
		}
		if (server_usable(s, now_ms)) {
			if (slot_take(p, s))
				return s;
			*full = true;
		}
	}
	return ramping && slot_take(p, ramping) ? ramping : NULL;
}

/* The server of this kind that is up, untried and below its maxconn that would have the
 * fewest open connections per weight with one more (as HAProxy's leastconn; slowstart scales
 * the weight); the scan starts one further on each pick, so ties rotate. */
static struct server *lc_scan(struct pool *p, bool backup, const struct pool_tried *tried,
			      uint64_t now_ms, bool *full)
{
	unsigned n = p->nservers, start = (unsigned)(atomic_fetch_add(&p->lc_next, 1) % n);
	struct server *best = NULL;
	uint64_t best_a = 0, best_w = 1;
	for (unsigned j = 0; j < n; j++) {
		struct server *s = &p->servers[(start + j) % n];
		if (s->cfg->backup != backup || pool_tried_has(tried, s) || !server_serving(s))
			continue;
		if (slot_full(p, s)) {
			*full = true;
			continue;
		}
		uint64_t a = atomic_load(&p->load[s->idx]->active) + 1;
		unsigned q = ramp_q(p, s, now_ms);
		uint64_t w = (uint64_t)server_weight(s) * (q ? q : 1);
		/* a / w < best_a / best_w, in integers */
		if (!best || a * best_w < best_a * w) {
			best = s;
			best_a = a;
			best_w = w;
		}
	}
	return best;
}

/* leastconn: the least loaded server that is up; failing that, a down server whose passive
 * probe is due (check = none). A slot lost to another worker starts the scan again. */
static struct server *lc_pick(struct pool *p, bool backup, const struct pool_tried *tried,
			      uint64_t now_ms, bool *full)
{
	for (unsigned tries = 0; p->nservers && tries <= p->nservers; tries++) {
		struct server *s = lc_scan(p, backup, tried, now_ms, full);
		if (!s)
			break;
		if (slot_take(p, s))
			return s;
		*full = true;
	}
	for (unsigned i = 0; i < p->nservers; i++) {
		struct server *s = &p->servers[i];
		if (s->cfg->backup == backup && !pool_tried_has(tried, s) && !atomic_load(&s->up) &&
		    !slot_full(p, s) && server_pickable(s, now_ms) && slot_take(p, s))
			return s;
	}
	return NULL;
}

static bool primary_up(const struct pool *p)
{
	for (unsigned i = 0; i < p->nservers; i++)
		if (!p->servers[i].cfg->backup && server_serving(&p->servers[i]))
			return true;
	return false;
}

struct server *pool_pick(struct pool *p, const struct pool_tried *tried, uint64_t now_ms)
{
	bool lc = p->cfg->balance == BALANCE_LEASTCONN, full = false;
	struct server *s = lc ? lc_pick(p, false, tried, now_ms, &full)
			      : pick_from(p, p->seq_primary, p->nseq_primary, &p->rr_primary, tried,
					  now_ms, &full);
	/* backups carry traffic only while no primary is up */
	if (!s && !primary_up(p))
		s = lc ? lc_pick(p, true, tried, now_ms, &full)
		       : pick_from(p, p->seq_backup, p->nseq_backup, &p->rr_backup, tried, now_ms,
				   &full);
	if (!s)
		errno = full ? EBUSY : ENOENT;
	return s;
}

void pool_report_connect_ok(struct server *s)
{
	server_report_connect(s, true, "connect succeeded", clock_mono_ms());
}

void pool_report_connect_fail(struct server *s, uint64_t now_ms, const char *reason)
{
	server_report_connect(s, false, reason, now_ms);
}

void pool_report_local_error(struct server *s, const char *reason)
{
	server_report_local(s, "connect", reason);
}
