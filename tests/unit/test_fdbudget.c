/* The descriptor budget's arithmetic: what max_connections needs, and what fits a limit. */
#include <criterion/criterion.h>

#include "tlsplice/fdbudget.h"
#include "tlsplice/metrics.h"

static struct fdbudget_in plain(long max)
{
	return (struct fdbudget_in){
		.max_connections = max, .workers = 2, .listeners = 1, .servers = 1, .pipe_pool = 64
	};
}

Test(fdbudget, per_connection)
{
	struct fdbudget_in in = plain(1);
	cr_assert_eq(fdbudget_per_conn(&in), 2, "client and backend");
	in.splice_dirs = 1;
	cr_assert_eq(fdbudget_per_conn(&in), 4);
	in.splice_dirs = 2;
	cr_assert_eq(fdbudget_per_conn(&in), 6, "a pipe per direction while bytes are in flight");
}

Test(fdbudget, default_needs_more_than_twenty_thousand)
{
	struct fdbudget_in in = plain(10000);
	uint64_t fixed = FDBUDGET_FIXED + 2 * FDBUDGET_PER_WORKER + 2 * 1 * 2 + 1;
	cr_assert_eq(fdbudget_need(&in), 20000 + fixed);
	in.metrics = true;
	cr_assert_eq(fdbudget_need(&in), 20000 + fixed + METRICS_MAX_CONNS + 1);
	in.metrics = false;
	in.splice_dirs = 2;
	/* both directions splicing: 6 per connection, plus each worker's pool of empty pipes */
	cr_assert_eq(fdbudget_need(&in), 60000 + fixed + 2 * 2 * 64);
}

Test(fdbudget, pipe_pool_holds_no_more_than_connections_used)
{
	struct fdbudget_in in = plain(3);
	in.splice_dirs = 2;
	uint64_t fixed = FDBUDGET_FIXED + 2 * FDBUDGET_PER_WORKER + 4 + 1;
	/* 3 connections use at most 6 pipes: no worker pools more than that */
	cr_assert_eq(fdbudget_need(&in), 3 * 6 + fixed + 2 * 2 * 6);
}

Test(fdbudget, fit_is_the_largest_that_fits)
{
	struct fdbudget_in in = plain(10000);
	for (long m = 1; m < 300; m += 7) {
		struct fdbudget_in t = plain(m);
		uint64_t need = fdbudget_need(&t);
		cr_assert_eq(fdbudget_fit(&in, need), m, "limit %llu", (unsigned long long)need);
		cr_assert_eq(fdbudget_fit(&in, need - 1), m - 1);
	}
	cr_assert_eq(fdbudget_fit(&in, 1u << 30), 10000, "never above the configured value");
	cr_assert_eq(fdbudget_fit(&in, 10), 0, "below the fixed reserve nothing fits");
}

Test(fdbudget, low_hard_limit)
{
	/* hard 256, default max_connections, one worker, no splice */
	struct fdbudget_in in = plain(10000);
	in.workers = 1;
	long fit = fdbudget_fit(&in, 256);
	uint64_t fixed = FDBUDGET_FIXED + FDBUDGET_PER_WORKER + 2 + 1;
	cr_assert_eq(fit, (long)((256 - fixed) / 2));
	in.splice_dirs = 2;
	long fit2 = fdbudget_fit(&in, 256);
	in.max_connections = fit2;
	cr_assert_leq(fdbudget_need(&in), 256);
	in.max_connections = fit2 + 1;
	cr_assert_gt(fdbudget_need(&in), 256);
}

Test(fdbudget, need_grows_with_connections)
{
	uint64_t prev = 0;
	for (long m = 0; m < 1000; m++) {
		struct fdbudget_in in = plain(m);
		in.splice_dirs = 2;
		uint64_t n = fdbudget_need(&in);
		cr_assert_gt(n, prev);
		prev = n;
	}
}
