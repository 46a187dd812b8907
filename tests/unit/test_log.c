/* log: the debug rate limit (a token bucket per thread), that debug lines cost nothing above
 * level debug, and the kTLS reasons a connection's debug lines quote (conn_debug.c). */
#include <criterion/criterion.h>

#include "tlsplice/conn.h"
#include "tlsplice/ktls.h"
#include "tlsplice/log.h"

Test(log, a_bucket_lets_a_burst_through_then_refuses_and_counts)
{
	struct log_bucket b = { 0 };
	uint64_t missed = 99;
	int passed = 0;

	for (int i = 0; i < LOG_DEBUG_BURST + 50; i++) {
		if (log_bucket_take(&b, 1000, &missed)) {
			passed++;
			cr_assert_eq(missed, 0);
		}
	}
	cr_assert_eq(passed, LOG_DEBUG_BURST, "the burst is %d lines", LOG_DEBUG_BURST);
	cr_assert_eq(b.suppressed, 50);
}

Test(log, a_bucket_refills_at_the_rate_and_reports_what_it_refused)
{
	struct log_bucket b = { 0 };
	uint64_t missed;
	uint64_t t = 5000;

	while (log_bucket_take(&b, t, &missed))
		;
	cr_assert_not(log_bucket_take(&b, t, &missed));
	cr_assert_eq(b.suppressed, 2);
	/* one line's worth of time later: exactly one line, and the count of those refused */
	t += 1000 / LOG_DEBUG_RATE;
	cr_assert(log_bucket_take(&b, t, &missed));
	cr_assert_eq(missed, 2);
	cr_assert_not(log_bucket_take(&b, t, &missed));
	/* one second later: one second's worth, never more than the burst */
	t += 1000;
	int passed = 0;
	while (log_bucket_take(&b, t, &missed) && passed <= LOG_DEBUG_BURST)
		passed++;
	cr_assert_eq(passed, LOG_DEBUG_RATE);
	t += 3600u * 1000u * 24u * 365u; /* a year idle: full, not overflowed */
	passed = 0;
	while (log_bucket_take(&b, t, &missed) && passed <= LOG_DEBUG_BURST)
		passed++;
	cr_assert_eq(passed, LOG_DEBUG_BURST);
}

static int evaluated;

static int count_evaluation(void)
{
	return ++evaluated;
}

Test(log, debug_lines_are_not_even_formatted_above_debug)
{
	log_set_level(LOG_INFO);
	log_debug("never shown %d", count_evaluation());
	cr_assert_eq(evaluated, 0, "the arguments of a debug line were evaluated at info");
	log_set_level(LOG_DEBUG);
	log_debug("shown %d", count_evaluation());
	cr_assert_eq(evaluated, 1);
	log_set_level(LOG_INFO);
}

/* The debug line of each direction's path quotes ktls_enable's reasons for that direction. */
Test(log, the_ktls_reasons_of_each_direction_are_picked_out)
{
	char out[192];
	const char *why = "tx: cipher TLS_AES_128_CCM_SHA256 unsupported; "
			  "tls13-rx: openssl holds unread data";

	cr_assert(conn_debug_why_for(why, KTLS_TX, out, sizeof(out)));
	cr_assert_str_eq(out, "tx: cipher TLS_AES_128_CCM_SHA256 unsupported");
	cr_assert(conn_debug_why_for(why, KTLS_RX, out, sizeof(out)));
	cr_assert_str_eq(out, "tls13-rx: openssl holds unread data");
	cr_assert(conn_debug_why_for("rx: no kTLS in this kernel; rx: again", KTLS_RX, out,
				     sizeof(out)));
	cr_assert_str_eq(out, "rx: no kTLS in this kernel; rx: again");
	cr_assert_not(conn_debug_why_for("rx: no kTLS in this kernel", KTLS_TX, out, sizeof(out)));
	cr_assert_str_eq(out, "");
	cr_assert_not(conn_debug_why_for("", KTLS_RX, out, sizeof(out)));
	/* a reason too long for out is cut, never overrun */
	cr_assert(conn_debug_why_for(why, KTLS_TX, out, 8));
	cr_assert_str_eq(out, "tx: cip");
}
