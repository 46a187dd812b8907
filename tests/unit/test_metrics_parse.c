/* The metrics endpoint's request parser: what it accepts, what it refuses and with which
 * status, and that it decides within METRICS_REQ_MAX bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tlsplice/metrics.h"

static int parse(const char *s, struct metrics_request *r)
{
	return metrics_parse_request(s, strlen(s), r);
}

static void expect_status(const char *s, int status)
{
	struct metrics_request r;
	cr_assert_eq(parse(s, &r), 1, "undecided: %s", s);
	cr_assert_eq(r.status, status, "status %d, want %d for: %s", r.status, status, s);
}

Test(metrics_parse, get_and_head)
{
	struct metrics_request r;
	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", &r), 1);
	cr_assert_eq(r.status, 0);
	cr_assert_not(r.head);
	cr_assert_eq(r.pathlen, 8);
	cr_assert_eq(memcmp(r.path, "/metrics", 8), 0);
	cr_assert_eq(parse("HEAD /healthz?probe=1 HTTP/1.0\n\n", &r), 1);
	cr_assert_eq(r.status, 0);
	cr_assert(r.head);
	cr_assert_eq(r.pathlen, 8, "the query is cut off");
	expect_status("GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length:  00 \r\n\r\n", 0);
}

Test(metrics_parse, incomplete_until_the_blank_line)
{
	static const char full[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	struct metrics_request r;
	for (size_t n = 0; n < sizeof(full) - 1; n++)
		cr_assert_eq(metrics_parse_request(full, n, &r), 0, "decided at %zu bytes", n);
	cr_assert_eq(metrics_parse_request(full, sizeof(full) - 1, &r), 1);
}

Test(metrics_parse, refusals)
{
	expect_status("POST /metrics HTTP/1.1\r\n\r\n", 405);
	expect_status("DELETE /metrics HTTP/1.1\r\n\r\n", 405);
	expect_status("GET /metrics HTTP/1.1\r\nContent-Length: 4000000000\r\n\r\n", 413);
	expect_status("GET /metrics HTTP/1.1\r\ncontent-length: 1\r\n\r\n", 413);
	expect_status("GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 413);
	expect_status("GET /metrics HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
	expect_status("GET /metrics HTTP/1.1\r\nContent-Length:\r\n\r\n", 400);
	expect_status("GET /metrics HTTP/2.0\r\n\r\n", 505);
	expect_status("GET /metrics HTTP/1.10\r\n\r\n", 400);
	expect_status("GET metrics HTTP/1.1\r\n\r\n", 400);
	expect_status("GET  /metrics HTTP/1.1\r\n\r\n", 400);
	expect_status("GET /metrics\r\n\r\n", 400);
	expect_status("\r\nGET /metrics HTTP/1.1\r\n\r\n", 400);
	expect_status("GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n", 400);
	expect_status("GET /metrics HTTP/1.1\r\nNo colon\r\n\r\n", 400);
	expect_status("GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n", 400);
	expect_status("GET /metrics HTTP/1.1\r\nX: a\x01\r\n\r\n", 400);
	expect_status("GET /a\x7f HTTP/1.1\r\n\r\n", 400);
}

Test(metrics_parse, decided_within_the_bound)
{
	char *buf = malloc(METRICS_REQ_MAX * 4);
	struct metrics_request r;
	cr_assert(buf);
	memcpy(buf, "GET /", 5);
	memset(buf + 5, 'a', METRICS_REQ_MAX * 4 - 5);
	cr_assert_eq(metrics_parse_request(buf, METRICS_REQ_MAX - 1, &r), 0);
	cr_assert_eq(metrics_parse_request(buf, METRICS_REQ_MAX * 4, &r), 1);
	cr_assert_eq(r.status, 414);
	int n = snprintf(buf, METRICS_REQ_MAX * 4, "GET / HTTP/1.1\r\nX: ");
	memset(buf + n, 'b', METRICS_REQ_MAX * 4 - (size_t)n);
	cr_assert_eq(metrics_parse_request(buf, METRICS_REQ_MAX, &r), 1);
	cr_assert_eq(r.status, 431);
	free(buf);
}
