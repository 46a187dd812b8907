/* Smooth weighted round-robin: the exact order for given weights, exact shares across
 * threads, skipping down and tried servers, backups only without a primary. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tlsplice/health.h"
#include "tlsplice/pool.h"
#include "tlsplice/runtime.h"
#include "tlsplice/server.h"

static struct cfg_backend be;
static struct cfg_server servers[8];
static struct pool pool;

/* A pool over weights (backup where flag set), check = none so passive probes apply. */
static void make_pool(const int *weights, const bool *backup, unsigned n)
{
	memset(&be, 0, sizeof(be));
	memset(servers, 0, sizeof(servers));
	for (unsigned i = 0; i < n; i++) {
		servers[i].weight = weights[i];
		servers[i].backup = backup ? backup[i] : false;
		snprintf(servers[i].addr.text, sizeof(servers[i].addr.text), "10.0.0.%u:80", i + 1);
	}
	be.name = (char *)"app";
	be.servers = servers;
	be.nservers = n;
	be.check = CHECK_NONE;
	be.check_interval_ms = 1000;
	be.check_fall = 3;
	be.check_rise = 2;
	cr_assert_eq(pool_init(&pool, &be), 0);
}

static unsigned pick_idx(const struct pool_tried *t, uint64_t now)
{
	static const struct pool_tried none;
	struct server *s = pool_pick(&pool, t ? t : &none, now);
	cr_assert(s, "no server picked");
	return s->idx;
}

Test(pool, nginx_sequence_for_5_1_1)
{
	/* the example from nginx's commit that introduced smooth weighting */
	static const int w[3] = { 5, 1, 1 };
	static const unsigned want[7] = { 0, 0, 1, 0, 2, 0, 0 };
	unsigned out[7];
	cr_assert_eq(pool_swrr_sequence(w, 3, out), 7u);
	for (int i = 0; i < 7; i++)
		cr_assert_eq(out[i], want[i], "slot %d: %u, want %u", i, out[i], want[i]);
}

Test(pool, weights_1_and_2_over_90_picks_are_30_60)
{
	static const int w[2] = { 1, 2 };
	unsigned count[2] = { 0, 0 };
	make_pool(w, NULL, 2);
	for (int i = 0; i < 90; i++)
		count[pick_idx(NULL, 0)]++;
	cr_assert_eq(count[0], 30u);
	cr_assert_eq(count[1], 60u);
	pool_finish(&pool);
}

static void *picker(void *arg)
{
	unsigned *count = arg;
	for (int i = 0; i < 30000; i++)
		count[pick_idx(NULL, 0)]++;
	return NULL;
}

Test(pool, shares_are_exact_across_threads)
{
	static const int w[3] = { 3, 2, 1 };
	unsigned counts[4][3];
	pthread_t th[4];
	memset(counts, 0, sizeof(counts));
	make_pool(w, NULL, 3);
	for (int t = 0; t < 4; t++)
		pthread_create(&th[t], NULL, picker, counts[t]);
	unsigned total[3] = { 0, 0, 0 };
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		for (int s = 0; s < 3; s++)
			total[s] += counts[t][s];
	}
	/* 120000 picks = 20000 full cycles of 6 slots */
	cr_assert_eq(total[0], 60000u);
	cr_assert_eq(total[1], 40000u);
	cr_assert_eq(total[2], 20000u);
	pool_finish(&pool);
}

Test(pool, down_and_tried_servers_are_skipped)
{
	static const int w[3] = { 1, 1, 1 };
	make_pool(w, NULL, 3);
	atomic_store(&pool.servers[1].up, false);
	for (int i = 0; i < 30; i++)
		cr_assert_neq(pick_idx(NULL, 0), 1u);
	struct pool_tried t = { 0 };
	pool_tried_add(&t, &pool.servers[0]);
	for (int i = 0; i < 30; i++)
		cr_assert_eq(pick_idx(&t, 0), 2u);
	pool_tried_add(&t, &pool.servers[2]);
	cr_assert_null(pool_pick(&pool, &t, 0), "every usable server was tried");
	pool_finish(&pool);
}

Test(pool, up_servers_keep_their_weights_while_one_is_down)
{
	static const int w[3] = { 2, 5, 1 };
	unsigned count[3] = { 0, 0, 0 };
	make_pool(w, NULL, 3);
	atomic_store(&pool.servers[1].up, false);
	for (int i = 0; i < 300; i++)
		count[pick_idx(NULL, 0)]++;
	cr_assert_eq(count[1], 0u);
	cr_assert_eq(count[0], 200u, "got %u", count[0]);
	cr_assert_eq(count[2], 100u, "got %u", count[2]);
	pool_finish(&pool);
}

Test(pool, backups_only_while_no_primary_is_up)
{
	static const int w[3] = { 1, 1, 1 };
	static const bool backup[3] = { false, false, true };
	make_pool(w, backup, 3);
	for (int i = 0; i < 20; i++)
		cr_assert_neq(pick_idx(NULL, 0), 2u, "backup used while primaries are up");
	atomic_store(&pool.servers[0].up, false);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(pick_idx(NULL, 0), 1u);
	atomic_store(&pool.servers[1].up, false);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(pick_idx(NULL, 0), 2u);
	atomic_store(&pool.servers[0].up, true);
	cr_assert_eq(pick_idx(NULL, 0), 0u, "a primary came back: backups stop");
	pool_finish(&pool);
}

Test(pool, down_server_is_probed_once_after_retry_time)
{
	static const int w[2] = { 1, 1 };
	make_pool(w, NULL, 2);
	atomic_store(&pool.servers[1].up, false);
	atomic_store(&pool.servers[1].retry_at_ms, 5000);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(pick_idx(NULL, 4999), 0u, "probed before its time");
	unsigned probes = 0;
	for (int i = 0; i < 10; i++)
		probes += pick_idx(NULL, 5000) == 1;
	cr_assert_eq(probes, 1u, "exactly one probing connection, got %u", probes);
	pool_finish(&pool);
}

/* One generation with one backend of one server, wired as runtime_create would (no TLS). */
struct gen {
	struct config cfg;
	struct cfg_backend be;
	struct cfg_server server;
	struct pool pool;
	struct runtime rt;
};

static void gen_init(struct gen *g, enum check_kind check, uint64_t interval_ms)
{
	memset(g, 0, sizeof(*g));
	g->server.weight = 1;
	snprintf(g->server.addr.text, sizeof(g->server.addr.text), "10.0.0.1:80");
	g->be.name = (char *)"app";
	g->be.servers = &g->server;
	g->be.nservers = 1;
	g->be.check = check;
	g->be.check_interval_ms = interval_ms;
	g->be.check_rise = 2;
	g->be.check_fall = 1;
	g->cfg.backends = &g->be;
	g->cfg.nbackends = 1;
	cr_assert_eq(pool_init(&g->pool, &g->be), 0);
	g->rt.cfg = &g->cfg;
	g->rt.pools = &g->pool;
}

Test(pool, reload_to_check_none_probes_a_down_server_after_interval)
{
	static const struct pool_tried none;
	struct gen old, cur;

	gen_init(&old, CHECK_TCP, 2000);
	gen_init(&cur, CHECK_NONE, 1000);
	/* an active check took it down: with checks, no passive retry is armed */
	cr_assert(server_report(&old.pool.servers[0], false, false, "connection refused", 1));
	uint64_t before = pool_now_ms();
	runtime_inherit(&cur.rt, &old.rt);
	uint64_t after = pool_now_ms();
	struct server *s = &cur.pool.servers[0];
	cr_assert_not(atomic_load(&s->up), "the reload keeps the server down");
	cr_assert_null(pool_pick(&cur.pool, &none, before + 1000 - 1),
		       "probed before check_interval");
	cr_assert_eq(pool_pick(&cur.pool, &none, after + 1000), s,
		     "no active check is left: the passive probe must come after check_interval");
	cr_assert(server_report(s, true, true, "connect succeeded", after + 1000));
	cr_assert(atomic_load(&s->up), "a successful probe marks it up");
	pool_finish(&old.pool);
	pool_finish(&cur.pool);
}

Test(pool, reload_keeps_a_pending_passive_retry)
{
	static const struct pool_tried none;
	struct gen old, cur;

	gen_init(&old, CHECK_NONE, 1000);
	gen_init(&cur, CHECK_NONE, 60000);
	cr_assert(server_report(&old.pool.servers[0], false, true, "connection refused", 5000));
	runtime_inherit(&cur.rt, &old.rt);
	/* the retry the old generation armed stands; a longer new interval does not delay it */
	cr_assert_eq(pool_pick(&cur.pool, &none, 6000), &cur.pool.servers[0]);
	pool_finish(&old.pool);
	pool_finish(&cur.pool);
}

/* ---- leastconn and maxconn ---- */

static const struct pool_tried nothing_tried;

static struct server *pick(void)
{
	return pool_pick(&pool, &nothing_tried, 0);
}

Test(pool, leastconn_weights_1_1_2_hold_10_10_20)
{
	static const int w[3] = { 1, 1, 2 };
	unsigned count[3] = { 0 };
	make_pool(w, NULL, 3);
	be.balance = BALANCE_LEASTCONN;
	for (int i = 0; i < 40; i++)
		count[pick_idx(NULL, 0)]++; /* every pick stays open */
	cr_assert_eq(count[0], 10u);
	cr_assert_eq(count[1], 10u);
	cr_assert_eq(count[2], 20u);
	for (unsigned k = 0; k < 3; k++)
		cr_assert_eq(pool_active(&pool, k), count[k]);
	pool_finish(&pool);
}

Test(pool, leastconn_ties_go_round)
{
	static const int w[3] = { 1, 1, 1 };
	make_pool(w, NULL, 3);
	be.balance = BALANCE_LEASTCONN;
	for (unsigned i = 0; i < 9; i++) {
		struct server *s = pick();
		cr_assert(s);
		cr_assert_eq(s->idx, i % 3, "pick %u went to %u", i, s->idx);
		pool_release(s); /* closed before the next: every pick is a tie */
	}
	pool_finish(&pool);
}

Test(pool, leastconn_fills_the_server_that_emptied)
{
	static const int w[2] = { 1, 1 };
	struct server *held[4];
	make_pool(w, NULL, 2);
	be.balance = BALANCE_LEASTCONN;
	for (int i = 0; i < 4; i++)
		held[i] = pick();
	cr_assert_eq(pool_active(&pool, 0), 2);
	cr_assert_eq(pool_active(&pool, 1), 2);
	for (int i = 0; i < 4; i++)
		if (held[i]->idx == 0)
			pool_release(held[i]);
	/* round-robin would give one each; the emptied server takes both */
	cr_assert_eq(pick()->idx, 0u);
	cr_assert_eq(pick()->idx, 0u);
	cr_assert_eq(pool_active(&pool, 0), 2);
	cr_assert_eq(pool_active(&pool, 1), 2);
	pool_finish(&pool);
}

Test(pool, a_full_server_is_skipped_and_all_full_is_ebusy)
{
	static const int w[2] = { 1, 1 };
	unsigned count[2] = { 0 };
	make_pool(w, NULL, 2);
	servers[0].maxconn = 2;
	servers[1].maxconn = 4;
	for (int i = 0; i < 6; i++)
		count[pick_idx(NULL, 0)]++;
	cr_assert_eq(count[0], 2u);
	cr_assert_eq(count[1], 4u);
	errno = 0;
	cr_assert_null(pick());
	cr_assert_eq(errno, EBUSY);
	pool_release(&pool.servers[0]);
	cr_assert_eq(pick(), &pool.servers[0], "a freed slot is taken again");
	be.balance = BALANCE_LEASTCONN;
	cr_assert_null(pick());
	cr_assert_eq(errno, EBUSY);
	pool_finish(&pool);
}

struct lc_run {
	unsigned got[4];
	unsigned none;
};

static void *lc_picker(void *arg)
{
	struct lc_run *r = arg;
	for (int i = 0; i < 3000; i++) {
		struct server *s = pick();
		if (s)
			r->got[s->idx]++;
		else
			r->none++;
	}
	return NULL;
}

/* 8 threads pick 24,000 times against 4 servers of maxconn 500: exactly 2,000 succeed. */
Test(pool, maxconn_holds_across_threads)
{
	static const int w[4] = { 1, 2, 3, 4 };
	struct lc_run runs[8];
	pthread_t th[8];
	memset(runs, 0, sizeof(runs));
	make_pool(w, NULL, 4);
	be.balance = BALANCE_LEASTCONN;
	for (int k = 0; k < 4; k++)
		servers[k].maxconn = 500;
	for (int t = 0; t < 8; t++)
		pthread_create(&th[t], NULL, lc_picker, &runs[t]);
	unsigned got[4] = { 0 }, none = 0;
	for (int t = 0; t < 8; t++) {
		pthread_join(th[t], NULL);
		none += runs[t].none;
		for (int k = 0; k < 4; k++)
			got[k] += runs[t].got[k];
	}
	for (unsigned k = 0; k < 4; k++) {
		cr_assert_eq(got[k], 500u, "server %u carried %u", k, got[k]);
		cr_assert_eq(pool_active(&pool, k), 500u);
	}
	cr_assert_eq(none, 24000u - 2000u);
	pool_finish(&pool);
}

/* Connections of the old generation still count against the new one's maxconn. */
Test(pool, reload_shares_open_connections)
{
	struct gen old, cur;
	gen_init(&old, CHECK_NONE, 1000);
	gen_init(&cur, CHECK_NONE, 1000);
	cur.server.maxconn = 1;
	struct server *s = pool_pick(&old.pool, &nothing_tried, 0);
	cr_assert(s);
	runtime_inherit(&cur.rt, &old.rt);
	cr_assert_eq(pool_active(&cur.pool, 0), 1);
	cr_assert_null(pool_pick(&cur.pool, &nothing_tried, 0), "maxconn 1 is taken");
	pool_finish(&old.pool); /* the shared count outlives the old generation */
	pool_release(&cur.pool.servers[0]);
	cr_assert_eq(pool_active(&cur.pool, 0), 0);
	cr_assert_eq(pool_pick(&cur.pool, &nothing_tried, 0), &cur.pool.servers[0]);
	pool_finish(&cur.pool);
}

/* ---- slowstart ---- */

/* Server 1 goes down at t=0 and comes back up at t=10,000 (two checks, check_rise 2). */
static void bounce_server_1(void)
{
	cr_assert(server_report(&pool.servers[1], false, false, "refused", 0));
	server_report(&pool.servers[1], true, false, "ok", 10000);
	cr_assert(server_report(&pool.servers[1], true, false, "ok", 10000));
}

Test(pool, slowstart_round_robin_ramps_linearly)
{
	static const int w[2] = { 1, 1 };
	unsigned count[2] = { 0 };
	make_pool(w, NULL, 2);
	be.slowstart_ms = 1000;
	bounce_server_1();
	for (int i = 0; i < 30; i++)
		count[pick_idx(NULL, 10000)]++;
	cr_assert_eq(count[1], 0u, "just up: no share yet");
	count[0] = count[1] = 0;
	for (int i = 0; i < 30; i++)
		count[pick_idx(NULL, 10500)]++;
	cr_assert_eq(count[1], 10u, "half way: half its weight, 1 of 3");
	cr_assert_eq(count[0], 20u);
	count[0] = count[1] = 0;
	for (int i = 0; i < 30; i++)
		count[pick_idx(NULL, 11000)]++;
	cr_assert_eq(count[1], 15u, "ramp over: its whole weight");
	pool_finish(&pool);
}

Test(pool, slowstart_never_refuses_when_only_a_ramping_server_is_left)
{
	static const int w[2] = { 1, 1 };
	make_pool(w, NULL, 2);
	be.slowstart_ms = 1000;
	bounce_server_1();
	cr_assert(server_report(&pool.servers[0], false, false, "refused", 10000));
	for (int i = 0; i < 5; i++)
		cr_assert_eq(pick_idx(NULL, 10001), 1u);
	pool_finish(&pool);
}

Test(pool, slowstart_leastconn_scales_the_weight)
{
	static const int w[2] = { 1, 1 };
	unsigned count[2] = { 0 };
	make_pool(w, NULL, 2);
	be.balance = BALANCE_LEASTCONN;
	be.slowstart_ms = 1000;
	bounce_server_1();
	/* a quarter of the way: weights 1 and 1/4 share 20 held connections 16 and 4 */
	for (int i = 0; i < 20; i++)
		count[pick_idx(NULL, 10250)]++;
	cr_assert_eq(count[0], 16u);
	cr_assert_eq(count[1], 4u);
	pool_finish(&pool);
}

Test(pool, no_slowstart_for_servers_up_from_the_start)
{
	static const int w[2] = { 1, 1 };
	unsigned count[2] = { 0 };
	make_pool(w, NULL, 2);
	be.slowstart_ms = 60000;
	/* the first check only confirms them: no ramp */
	server_report(&pool.servers[0], true, false, "ok", 5);
	server_report(&pool.servers[1], true, false, "ok", 5);
	for (int i = 0; i < 10; i++)
		count[pick_idx(NULL, 10)]++;
	cr_assert_eq(count[0], 5u);
	cr_assert_eq(count[1], 5u);
	pool_finish(&pool);
}
