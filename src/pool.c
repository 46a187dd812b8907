/* Backend pools: smooth weighted round-robin without a lock. The SWRR order of a pool's
 * weights is computed once; each pick takes the next slot with one atomic increment, and
 * slots of servers that are down (or already tried by this connection) are passed over by
 * taking further slots, so over every full cycle each server that is up gets exactly its
 * weight's share, however many workers pick at once. */
#include "tlsplice/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tlsplice/clock.h"

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
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	p->nservers = (unsigned)cfg->nservers;
	p->servers = calloc(p->nservers ? p->nservers : 1, sizeof(*p->servers));
	if (!p->servers)
		return -1;
	for (unsigned i = 0; i < p->nservers; i++)
		server_setup(&p->servers[i], p, &cfg->servers[i], i);
	if (build_seq(p, false, &p->seq_primary, &p->nseq_primary) < 0 ||
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

/* Takes slots from seq until one names a server that is up (or may be probed) and was
 * not tried yet; one full cycle visits every slot. */
static struct server *pick_from(struct pool *p, const unsigned *seq, unsigned nseq,
				atomic_uint_fast64_t *pos, const struct pool_tried *tried,
				uint64_t now_ms)
{
	for (unsigned k = 0; k < nseq; k++) {
		struct server *s = &p->servers[seq[atomic_fetch_add(pos, 1) % nseq]];
		if (pool_tried_has(tried, s))
			continue;
		if (server_pickable(s, now_ms))
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
	struct server *s = pick_from(p, p->seq_primary, p->nseq_primary, &p->rr_primary, tried,
				     now_ms);
	/* backups carry traffic only while no primary is up */
	if (s || primary_up(p))
		return s;
	return pick_from(p, p->seq_backup, p->nseq_backup, &p->rr_backup, tried, now_ms);
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
