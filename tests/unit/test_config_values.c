/* config: the value parsers (durations, booleans, addresses, escapes) and SNI routing. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <openssl/tls1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_fixture.h"

TestSuite(config, .init = setup, .fini = teardown);

/* ---- value parsers ---- */

Test(config, durations_parse_units_and_reject_the_rest)
{
	static const struct {
		const char *in;
		uint64_t ms;
	} good[] = {
		{ "250ms", 250 },  { "5s", 5000 },     { "2m", 120000 },
		{ "1h", 3600000 }, { "7", 7000 },      { "0", 0 },
		{ "0ms", 0 },      { "1500ms", 1500 }, { "18446744073709551615ms", UINT64_MAX },
	};
	static const char *const bad[] = {
		"10x",
		"",
		"s",
		"-1",
		"1.5s",
		" 5s",
		"5 s",
		"5S",
		"99999999999999999999",
		"18446744073709551615s",
		"5000000000000000h",
	};
	char err[256];
	uint64_t ms;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert_eq(config_parse_duration(good[i].in, &ms, err, sizeof(err)), 0, "%s: %s",
			     good[i].in, err);
		cr_assert_eq(ms, good[i].ms, "%s", good[i].in);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[128];

		cr_assert_eq(config_parse_duration(bad[i], &ms, err, sizeof(err)), -1, "'%s'",
			     bad[i]);
		snprintf(want, sizeof(want), "bad duration '%s'", bad[i]);
		cr_assert_str_eq(err, want);
	}
}

Test(config, booleans_take_six_words_in_any_case)
{
	static const char *const yes[] = { "on", "yes", "true", "ON", "True", "YeS" };
	static const char *const no[] = { "off", "no", "false", "OFF", "False", "nO" };
	static const char *const bad[] = { "1", "0", "y", "n", "", "onn", "enabled" };
	char err[256];
	bool b;

	for (size_t i = 0; i < 6; i++) {
		b = false;
		cr_assert_eq(config_parse_bool(yes[i], &b, err, sizeof(err)), 0);
		cr_assert(b, "%s", yes[i]);
		cr_assert_eq(config_parse_bool(no[i], &b, err, sizeof(err)), 0);
		cr_assert_not(b, "%s", no[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(config_parse_bool(bad[i], &b, err, sizeof(err)), -1, "'%s'", bad[i]);
	cr_assert_str_eq(err, "bad boolean 'enabled' (on|off|yes|no|true|false)");
}

static uint16_t addr_port(const struct cfg_addr *a)
{
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

static void addr_host(const struct cfg_addr *a, char *buf, size_t len)
{
	const void *src = a->ss.ss_family == AF_INET6
				  ? (const void *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr
				  : (const void *)&((const struct sockaddr_in *)&a->ss)->sin_addr;

	cr_assert_not_null(inet_ntop(a->ss.ss_family, src, buf, (socklen_t)len));
}

Test(config, addresses_parse_v4_v6_wildcard_and_names)
{
	static const struct {
		const char *in;
		bool passive;
		int family;
		const char *host;
		uint16_t port;
	} good[] = {
		{ "127.0.0.1:8443", false, AF_INET, "127.0.0.1", 8443 },
		{ "[::1]:443", false, AF_INET6, "::1", 443 },
		{ "[::]:1", true, AF_INET6, "::", 1 },
		{ "*:80", true, AF_INET, "0.0.0.0", 80 },
		{ ":65535", true, AF_INET, "0.0.0.0", 65535 },
		{ "localhost:9001", false, AF_INET, "127.0.0.1", 9001 },
	};
	struct cfg_addr a;
	char err[256], host[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(&a, 0, sizeof(a));
		cr_assert_eq(config_parse_addr(good[i].in, good[i].passive, &a, err, sizeof(err)),
			     0, "%s: %s", good[i].in, err);
		cr_assert_eq(a.ss.ss_family, good[i].family, "%s", good[i].in);
		addr_host(&a, host, sizeof(host));
		cr_assert_str_eq(host, good[i].host);
		cr_assert_eq(addr_port(&a), good[i].port);
		cr_assert_str_eq(a.text, good[i].in);
		cr_assert_eq(a.len, good[i].family == AF_INET ? sizeof(struct sockaddr_in)
							      : sizeof(struct sockaddr_in6));
	}
}

Test(config, server_names_are_told_from_addresses)
{
	static const struct {
		const char *in;
		int rc; /* 1 a name, 0 an address, -1 an error */
		const char *err;
	} cases[] = {
		{ "app.internal:8080", 1, NULL },
		{ "localhost:9001", 1, NULL },
		{ "db-1_a:1", 1, NULL },
		{ "127.0.0.1:80", 0, NULL },
		{ "[::1]:443", 0, NULL },
		{ "unix:/run/app.sock", 0, NULL },
		{ "*:80", 0, NULL },
		{ "app.internal:http", -1, "bad port 'http'" },
		{ "app.internal:0", -1, "bad port '0'" },
		{ "a23456789.b23456789.c23456789.d23456789.e23456789.f23456789.g23456789.abcdefgh:1",
		  -1, "(a name and port of at most 77 characters)" },
	};
	struct cfg_addr a;
	char err[256];
	uint16_t port = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&a, 0, sizeof(a));
		err[0] = '\0';
		int rc = config_parse_name(cases[i].in, &a, &port, err, sizeof(err));
		cr_assert_eq(rc, cases[i].rc, "%s: %d (%s)", cases[i].in, rc, err);
		if (rc == 1) {
			cr_assert_str_eq(a.text, cases[i].in);
			cr_assert_eq(a.len, 0, "a name has no address until it resolves");
			cr_assert_eq(port, (uint16_t)atoi(strrchr(cases[i].in, ':') + 1));
		}
		if (cases[i].err)
			cr_assert(strstr(err, cases[i].err), "%s: '%s'", cases[i].in, err);
	}
}

Test(config, bad_addresses_say_what_is_wrong)
{
	static const struct {
		const char *in;
		bool passive;
		const char *err;
	} bad[] = {
		{ "127.0.0.1:99999", false, "bad port '99999'" },
		{ "127.0.0.1:0", false, "bad port '0'" },
		{ "127.0.0.1:http", false, "bad port 'http'" },
		{ "127.0.0.1:", false, "bad port ''" },
		{ "127.0.0.1", false, "bad address '127.0.0.1' (expected HOST:PORT)" },
		{ "[::1]443", false, "bad address '[::1]443' (expected HOST:PORT)" },
		{ "::1:443", false, "bad address '::1:443' (write IPv6 as [ADDR]:PORT)" },
		{ "*:80", false, "bad address '*:80' (a host is required)" },
		{ "[nonsense]:80", false, NULL },
	};
	struct cfg_addr a;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_assert_eq(config_parse_addr(bad[i].in, bad[i].passive, &a, err, sizeof(err)), -1,
			     "%s", bad[i].in);
		if (bad[i].err != NULL)
			cr_assert_str_eq(err, bad[i].err);
		else
			cr_assert_neq(err[0], '\0', "%s: no reason given", bad[i].in);
	}
}

Test(config, unescape_decodes_c_escapes)
{
	static const struct {
		const char *in;
		const char *out;
		size_t len;
	} good[] = {
		{ "PING\\r\\n", "PING\r\n", 6 },
		{ "a\\tb", "a\tb", 3 },
		{ "\\\\\\\"", "\\\"", 2 },
		{ "\\x41\\x4a\\x7e", "AJ~", 3 },
		{ "x\\0y", "x\0y", 3 },
		{ "plain", "plain", 5 },
		{ "", "", 0 },
	};
	static const char *const bad[] = { "\\q", "\\x4", "\\xzz", "end\\" };
	char err[256], *out;
	size_t len;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert_eq(config_unescape(good[i].in, &out, &len, err, sizeof(err)), 0, "%s: %s",
			     good[i].in, err);
		cr_assert_eq(len, good[i].len, "%s", good[i].in);
		cr_assert_eq(memcmp(out, good[i].out, len), 0, "%s", good[i].in);
		cr_assert_eq(out[len], '\0');
		free(out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(config_unescape(bad[i], &out, &len, err, sizeof(err)), -1, "%s",
			     bad[i]);
	config_unescape("\\q", &out, &len, err, sizeof(err));
	cr_assert_str_eq(err, "bad escape '\\q'");
}

/* ---- routes ---- */

Test(config, sni_patterns_match_by_the_contract)
{
	static const struct {
		const char *pattern, *name;
		bool match;
	} cases[] = {
		{ "*.example.com", "a.example.com", true },
		{ "*.example.com", "a.b.example.com", true },
		{ "*.example.com", "A.Example.COM", true },
		{ "*.example.com", "example.com", false },
		{ "*.example.com", ".example.com", false },
		{ "*.example.com", "aexample.com", false },
		{ "*.example.com", "a.example.com.evil", false },
		{ "*.example.com", "a..example.com", false },
		{ "demo.test", "demo.test", true },
		{ "demo.test", "DEMO.Test", true },
		{ "demo.test", "x.demo.test", false },
		{ "demo.test", "demo.tes", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(config_sni_match(cases[i].pattern, cases[i].name), cases[i].match,
			     "%s vs %s", cases[i].pattern, cases[i].name);
	cr_assert_not(config_sni_match("demo.test", NULL));
}

Test(config, route_picks_the_first_match_else_the_default)
{
	struct config *cfg = load_ok("[frontend web]\n"
				     "listen = 127.0.0.1:8443\n"
				     "cert = c.pem\n"
				     "backend = app\n"
				     "route = Exact.TEST other\n"
				     "route = *.API.test api\n"
				     "route = x.api.test other\n" BE
				     "[backend api]\nserver = 127.0.0.1:9002\n"
				     "[backend other]\nserver = 127.0.0.1:9003\n");
	const struct cfg_frontend *fe = &cfg->frontends[0];

	cr_assert_eq(fe->nroutes, 3);
	cr_assert_str_eq(fe->routes[0].pattern, "exact.test");
	cr_assert_str_eq(fe->routes[1].pattern, "*.api.test");
	cr_assert_eq(fe->routes[1].line, 6);
	cr_assert_eq(fe->backend, 0);
	cr_assert_eq(config_route(fe, NULL), 0);
	cr_assert_eq(config_route(fe, "nothing.test"), 0);
	cr_assert_eq(config_route(fe, "exact.test"), 2);
	cr_assert_eq(config_route(fe, "v1.Api.Test"), 1);
	cr_assert_eq(config_route(fe, "x.api.test"), 1, "the wildcard comes first");
	cr_assert_eq(config_route(fe, "api.test"), 0);
	config_unref(cfg);
}
