/* Per-frontend counters (see stats.h). */
#include "tlsplice/stats.h"

#include <stdlib.h>

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

long long fe_stats_load(const struct fe_stats *st, size_t off)
{
	const char *p = (const char *)st + off;
	if (off == offsetof(struct fe_stats, active))
		return (long long)atomic_load((const atomic_long *)p);
	return (long long)atomic_load((const atomic_uint_fast64_t *)p);
}
