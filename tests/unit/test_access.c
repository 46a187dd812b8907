/* JSON string escaping for the access log: a client picks the SNI, so anything it sends
 * must still give one valid JSON line; and the names the "close" field takes. */
#include <string.h>

#include <criterion/criterion.h>

#include "tlsplice/access.h"

static const char *esc(const char *s)
{
	static char out[256];
	size_t n = access_json_str(out, 0, sizeof(out), s);
	out[n] = '\0';
	return out;
}

Test(access, plain_text_is_quoted)
{
	cr_assert_str_eq(esc("demo.test"), "\"demo.test\"");
	cr_assert_str_eq(esc(""), "\"\"");
	cr_assert_str_eq(esc(NULL), "\"\"");
}

Test(access, quotes_backslashes_and_controls_are_escaped)
{
	cr_assert_str_eq(esc("a\"b\\c"), "\"a\\\"b\\\\c\"");
	cr_assert_str_eq(esc("x\ny\x01"), "\"x\\u000ay\\u0001\"");
	cr_assert_str_eq(esc("\xff"), "\"\\u00ff\"");
}

Test(access, never_overflows_and_stays_terminated_by_a_quote)
{
	char out[16];
	size_t n = access_json_str(out, 0, sizeof(out), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	cr_assert_leq(n, sizeof(out) - 1);
	cr_assert_eq(out[n - 1], '"');
}

/* The access log's "close" field: every reason is spelled as the README's contract says. */
Test(access, every_close_reason_has_its_contract_name)
{
	static const char *const want[CLOSE_MAX] = {
		"",
		"client_eof",
		"server_eof",
		"idle_timeout",
		"handshake_timeout",
		"handshake_failed",
		"no_server",
		"connect_failed",
		"shutdown",
		"key_update",
		"error",
		"proxy_header",
	};
	for (int r = 0; r < CLOSE_MAX; r++)
		cr_assert_str_eq(close_reason_name((enum close_reason)r), want[r], "reason %d", r);
}
