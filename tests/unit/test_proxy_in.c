/* proxy_in: the PROXY header parser (v1, v2, partial input, every refusal) and the peer
 * filter of accept_proxy_from. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "tlsplice/proxy_in.h"

#define ANY (PROXY_IN_V1 | PROXY_IN_V2)

static const unsigned char sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				       0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

static int parse(const void *buf, size_t len, unsigned v, struct proxy_in_info *info, char *err)
{
	return proxy_in_parse(buf, len, v, info, err, 128);
}

static void expect_v4(const struct sockaddr_storage *ss, const char *ip, unsigned port)
{
	const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
	char got[INET_ADDRSTRLEN];
	cr_assert_eq(s->sin_family, AF_INET);
	inet_ntop(AF_INET, &s->sin_addr, got, sizeof(got));
	cr_assert_str_eq(got, ip);
	cr_assert_eq(ntohs(s->sin_port), port);
}

/* A v2 header: command, family, address block and TLVs (body of blen bytes). */
static size_t v2(unsigned char *out, unsigned cmd, unsigned fam, const void *body, size_t blen)
{
	memcpy(out, sig, 12);
	out[12] = (unsigned char)(0x20 | cmd);
	out[13] = (unsigned char)fam;
	out[14] = (unsigned char)(blen >> 8);
	out[15] = (unsigned char)blen;
	memcpy(out + 16, body, blen);
	return 16 + blen;
}

Test(proxy_in, v1_tcp4_is_parsed_and_stops_at_its_crlf)
{
	const char *h = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n\x16\x03\x01";
	struct proxy_in_info in;
	char err[128];
	size_t hl = strlen(h) - 3;
	cr_assert_eq(parse(h, strlen(h), ANY, &in, err), (int)hl);
	cr_assert(in.has_addr);
	cr_assert_eq(in.version, 1);
	expect_v4(&in.src, "192.0.2.1", 56324);
	expect_v4(&in.dst, "198.51.100.2", 443);
	/* every shorter prefix is "not yet": never a refusal, never a header */
	for (size_t i = 0; i < hl; i++)
		cr_assert_eq(parse(h, i, ANY, &in, err), 0, "prefix %zu", i);
}

Test(proxy_in, v1_tcp6_and_unknown)
{
	const char *h6 = "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n";
	struct proxy_in_info in;
	char err[128];
	cr_assert_eq(parse(h6, strlen(h6), PROXY_IN_V1, &in, err), (int)strlen(h6));
	cr_assert(in.has_addr);
	cr_assert_eq(in.src.ss_family, AF_INET6);
	cr_assert_eq(ntohs(((struct sockaddr_in6 *)&in.dst)->sin6_port), 65535);
	const char *u = "PROXY UNKNOWN whatever follows\r\n";
	cr_assert_eq(parse(u, strlen(u), ANY, &in, err), (int)strlen(u));
	cr_assert_not(in.has_addr);
}

Test(proxy_in, v1_refusals_name_the_fault)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "no CRLF" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n", "addresses" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n", "addresses" },
		{ "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "addresses" },
		{ "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "addresses" },
		{ "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "addresses" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "addresses" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "addresses" },
		{ "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol" },
		{ "PROXY TCP4 1.2.3.4\x01 5.6.7.8 1 2\r\n", "control byte" },
		{ "PROXX TCP4", "no PROXY header (first bytes 50 52 4f)" },
		{ "\x16\x03\x01\x02\x00", "no PROXY header (first bytes 16 03 01)" },
		{ "GET / HTTP/1.1\r\n", "no PROXY header (first bytes 47 45 54)" },
	};
	struct proxy_in_info in;
	char err[128];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse(bad[i].text, strlen(bad[i].text), ANY, &in, err), -1, "%s",
			     bad[i].text);
		cr_assert(strstr(err, bad[i].why), "'%s': got '%s'", bad[i].text, err);
	}
}

Test(proxy_in, v1_longer_than_107_bytes_is_oversized)
{
	char h[200];
	struct proxy_in_info in;
	char err[128];
	memset(h, '1', sizeof(h));
	memcpy(h, "PROXY TCP4 ", 11);
	cr_assert_eq(parse(h, 106, ANY, &in, err), 0);
	cr_assert_eq(parse(h, 107, ANY, &in, err), -1);
	cr_assert(strstr(err, "oversized"), "%s", err);
}

Test(proxy_in, versions_not_accepted_are_refused)
{
	unsigned char h[64];
	struct proxy_in_info in;
	char err[128];
	size_t n = v2(h, 0, 0, "", 0);
	cr_assert_eq(parse(h, n, PROXY_IN_V1, &in, err), -1);
	cr_assert_str_eq(err, "PROXY v2 header where only v1 is accepted");
	cr_assert_eq(parse("PROXY UNKNOWN\r\n", 15, PROXY_IN_V2, &in, err), -1);
	cr_assert_str_eq(err, "PROXY v1 header where only v2 is accepted");
}

Test(proxy_in, v2_tcp4_with_tlvs_and_every_prefix_pending)
{
	/* addresses, then the TLVs ALPN "h2" and a NOOP of one byte */
	unsigned char body[21] = { 192,  0,    2,    1,    198, 51,  100,  2,    0xdc, 0x04, 0x01,
				   0xbb, 0x01, 0x00, 0x02, 'h', '2', 0x04, 0x00, 0x01, 0x00 };
	unsigned char h[128];
	struct proxy_in_info in;
	char err[128];
	size_t n = v2(h, 1, 0x11, body, sizeof(body));
	h[n] = 0x16; /* the TLS hello that follows is not taken */
	cr_assert_eq(parse(h, n + 1, PROXY_IN_V2, &in, err), (int)n);
	cr_assert(in.has_addr);
	cr_assert_not(in.local);
	expect_v4(&in.src, "192.0.2.1", 56324);
	expect_v4(&in.dst, "198.51.100.2", 443);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(parse(h, i, PROXY_IN_V2, &in, err), 0, "prefix %zu", i);
}

Test(proxy_in, v2_tcp6_and_local_and_unspec)
{
	unsigned char body[36] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1, [31] = 1, [32] = 0, 80 };
	unsigned char h[128];
	struct proxy_in_info in;
	char err[128];
	size_t n = v2(h, 1, 0x21, body, sizeof(body));
	cr_assert_eq(parse(h, n, ANY, &in, err), (int)n);
	cr_assert(in.has_addr);
	cr_assert_eq(in.src.ss_family, AF_INET6);
	cr_assert_eq(ntohs(((struct sockaddr_in6 *)&in.src)->sin6_port), 80);
	n = v2(h, 0, 0x11, body, 12); /* LOCAL: addresses ignored */
	cr_assert_eq(parse(h, n, ANY, &in, err), (int)n);
	cr_assert(in.local);
	cr_assert_not(in.has_addr);
	n = v2(h, 1, 0x00, "", 0);
	cr_assert_eq(parse(h, n, ANY, &in, err), (int)n);
	cr_assert_not(in.has_addr);
}

Test(proxy_in, v2_refusals_name_the_fault)
{
	unsigned char body[40] = { 0 };
	unsigned char h[128];
	struct proxy_in_info in;
	char err[128];
	size_t n = v2(h, 2, 0x11, body, 12);
	cr_assert_eq(parse(h, n, ANY, &in, err), -1);
	cr_assert(strstr(err, "command"), "%s", err);
	n = v2(h, 1, 0x11, body, 12);
	h[12] = 0x11;
	cr_assert_eq(parse(h, n, ANY, &in, err), -1);
	cr_assert(strstr(err, "version"), "%s", err);
	n = v2(h, 1, 0x12, body, 12);
	cr_assert_eq(parse(h, n, ANY, &in, err), -1);
	cr_assert(strstr(err, "not a TCP"), "%s", err);
	n = v2(h, 1, 0x21, body, 20);
	cr_assert_eq(parse(h, n, ANY, &in, err), -1);
	cr_assert(strstr(err, "too short"), "%s", err);
	body[12] = 1, body[13] = 0, body[14] = 9; /* a TLV longer than what is left */
	n = v2(h, 1, 0x11, body, 16);
	cr_assert_eq(parse(h, n, ANY, &in, err), -1);
	cr_assert(strstr(err, "TLV"), "%s", err);
	h[15] = 0, h[14] = 0x04; /* 16 + 1024 > PROXY_IN_MAX: refused before it all came */
	cr_assert_eq(parse(h, 16, ANY, &in, err), -1);
	cr_assert(strstr(err, "oversized"), "%s", err);
	memcpy(h, sig, 12);
	h[5] = 0x0e;
	cr_assert_eq(parse(h, 6, ANY, &in, err), -1);
	cr_assert(strstr(err, "no PROXY header"), "%s", err);
}

Test(proxy_in, cidrs_parse_and_match)
{
	struct proxy_in_cidr nets[3];
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	char err[128];
	cr_assert_eq(proxy_in_cidr_parse("10.0.0.0/8", &nets[0], err, sizeof(err)), 0);
	cr_assert_eq(proxy_in_cidr_parse("192.168.1.128/25", &nets[1], err, sizeof(err)), 0);
	cr_assert_eq(proxy_in_cidr_parse("2001:db8::/32", &nets[2], err, sizeof(err)), 0);
	s4->sin_family = AF_INET;
	inet_pton(AF_INET, "10.200.3.4", &s4->sin_addr);
	cr_assert(proxy_in_peer_allowed(nets, 3, &ss));
	inet_pton(AF_INET, "192.168.1.127", &s4->sin_addr);
	cr_assert_not(proxy_in_peer_allowed(nets, 3, &ss));
	inet_pton(AF_INET, "192.168.1.129", &s4->sin_addr);
	cr_assert(proxy_in_peer_allowed(nets, 3, &ss));
	s6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:10.1.1.1", &s6->sin6_addr); /* a mapped IPv4 peer */
	cr_assert(proxy_in_peer_allowed(nets, 3, &ss));
	inet_pton(AF_INET6, "2001:db8:ffff::1", &s6->sin6_addr);
	cr_assert(proxy_in_peer_allowed(nets, 3, &ss));
	inet_pton(AF_INET6, "2001:db9::1", &s6->sin6_addr);
	cr_assert_not(proxy_in_peer_allowed(nets, 3, &ss));
	cr_assert_not(proxy_in_peer_allowed(nets, 0, &ss));
}

Test(proxy_in, bad_cidrs_say_why)
{
	static const char *const bad[] = { "10.0.0.1/8", "10.0.0.0/33", "::/129",   "10.0.0.0/",
					   "/8",         "nowhere",     "1.2.3.4/x" };
	struct proxy_in_cidr n;
	char err[128];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(proxy_in_cidr_parse(bad[i], &n, err, sizeof(err)), -1, "%s", bad[i]);
	proxy_in_cidr_parse("10.0.0.1/8", &n, err, sizeof(err));
	cr_assert_str_eq(err, "'10.0.0.1/8' has host bits set (a network is e.g. 10.0.0.0/8)");
	cr_assert_eq(proxy_in_cidr_parse("127.0.0.1", &n, err, sizeof(err)), 0);
	cr_assert_eq(n.bits, 32);
}
