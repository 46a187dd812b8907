/* config: parsing, validation, defaults, error reporting, routing and reference counting.
 * Each test runs in its own process, in a fresh temporary folder it chdirs into, so the
 * config file is "f.ini" in messages just as a user would name it. */
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

#include "tlsplice/config.h"

static char tmpdir[PATH_MAX];
static char realdir[PATH_MAX];
static struct errlist errs, warns;

/* The smallest valid frontend and backend, for tests about something else. */
#define FE "[frontend web]\nlisten = 127.0.0.1:8443\ncert = c.pem\nbackend = app\n"
#define BE "[backend app]\nserver = 127.0.0.1:9001\n"

static void write_file(const char *name, const char *text)
{
	FILE *f = fopen(name, "w");

	cr_assert_not_null(f, "cannot write %s: %s", name, strerror(errno));
	cr_assert_eq(fputs(text, f) >= 0, true);
	cr_assert_eq(fclose(f), 0);
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tlsplice-config-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	cr_assert_eq(chdir(tmpdir), 0);
	cr_assert_not_null(realpath(tmpdir, realdir));
	write_file("c.pem", "placeholder: config only checks that the file is readable\n");
	errlist_init(&errs);
	errlist_init(&warns);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void teardown(void)
{
	errlist_finish(&errs);
	errlist_finish(&warns);
	if (chdir("/") == 0)
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(config, .init = setup, .fini = teardown);

static struct config *load(const char *text)
{
	write_file("f.ini", text);
	return config_load("f.ini", &errs, &warns);
}

static void dump(const char *what, const struct errlist *el)
{
	for (size_t i = 0; i < el->n; i++)
		cr_log_info("%s[%zu]: %s", what, i, el->msgs[i]);
}

/* The load failed with exactly these messages, in this order. */
static void expect_errors(struct config *cfg, const char *const *want, size_t n)
{
	dump("error", &errs);
	cr_assert_null(cfg, "load should fail");
	for (size_t i = 0; i < n && i < errs.n; i++)
		cr_assert_str_eq(errs.msgs[i], want[i], "message %zu", i);
	cr_assert_eq(errs.n, n, "got %zu messages, want %zu", errs.n, n);
}

#define EXPECT_ERRORS(cfg, ...)                                                         \
	do {                                                                            \
		static const char *const want_[] = { __VA_ARGS__ };                     \
		expect_errors((cfg), want_, sizeof(want_) / sizeof(want_[0]));          \
	} while (0)

/* The load succeeded without errors or warnings. */
static struct config *load_ok(const char *text)
{
	struct config *cfg = load(text);

	dump("error", &errs);
	dump("warning", &warns);
	cr_assert_not_null(cfg, "load failed");
	cr_assert_eq(errs.n, 0);
	cr_assert_eq(warns.n, 0);
	return cfg;
}

/* ---- value parsers ---- */

Test(config, durations_parse_units_and_reject_the_rest)
{
	static const struct {
		const char *in;
		uint64_t ms;
	} good[] = {
		{ "250ms", 250 },  { "5s", 5000 },      { "2m", 120000 },
		{ "1h", 3600000 }, { "7", 7000 },       { "0", 0 },
		{ "0ms", 0 },      { "1500ms", 1500 },  { "18446744073709551615ms", UINT64_MAX },
	};
	static const char *const bad[] = {
		"10x", "", "s", "-1", "1.5s", " 5s", "5 s", "5S", "99999999999999999999",
		"18446744073709551615s", "5000000000000000h",
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
		cr_assert_eq(config_parse_addr(good[i].in, good[i].passive, &a, err, sizeof(err)), 0,
			     "%s: %s", good[i].in, err);
		cr_assert_eq(a.ss.ss_family, good[i].family, "%s", good[i].in);
		addr_host(&a, host, sizeof(host));
		cr_assert_str_eq(host, good[i].host);
		cr_assert_eq(addr_port(&a), good[i].port);
		cr_assert_str_eq(a.text, good[i].in);
		cr_assert_eq(a.len, good[i].family == AF_INET ? sizeof(struct sockaddr_in)
							      : sizeof(struct sockaddr_in6));
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

/* ---- defaults ---- */

Test(config, defaults_fill_every_key_not_given)
{
	struct config *cfg = load_ok(FE BE);
	const struct cfg_frontend *fe;
	const struct cfg_backend *be;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	cr_assert_eq(cfg->workers, cpus > 1024 ? 1024 : cpus);
	cr_assert_eq(cfg->max_connections, 10000);
	cr_assert_eq(cfg->log_level, LOG_INFO);
	cr_assert_str_eq(cfg->access_log, "stdout");
	cr_assert_eq(cfg->ktls, KTLS_AUTO);
	cr_assert(cfg->splice);
	cr_assert_eq(cfg->shutdown_timeout_ms, 30000);
	cr_assert_not(cfg->has_metrics);
	cr_assert_null(cfg->user);
	cr_assert_null(cfg->group);
	cr_assert_str_eq(cfg->path, "f.ini");
	cr_assert_str_eq(cfg->dir, realdir);

	cr_assert_eq(cfg->nfrontends, 1);
	fe = &cfg->frontends[0];
	cr_assert_str_eq(fe->name, "web");
	cr_assert_eq(fe->line, 1);
	cr_assert_eq(fe->tls_min_version, TLS1_2_VERSION);
	cr_assert_eq(fe->tls_max_version, TLS1_3_VERSION);
	cr_assert_null(fe->ciphers);
	cr_assert_null(fe->ciphersuites);
	cr_assert_null(fe->alpn);
	cr_assert_eq(fe->proxy_protocol, PROXY_OFF);
	cr_assert_eq(fe->handshake_timeout_ms, 10000);
	cr_assert_eq(fe->idle_timeout_ms, 300000);
	cr_assert_null(fe->client_ca);
	cr_assert(fe->session_tickets);
	cr_assert_null(fe->ticket_keys);
	cr_assert_eq(fe->nroutes, 0);
	cr_assert_eq(fe->ciphers_line, 0);

	cr_assert_eq(cfg->nbackends, 1);
	be = &cfg->backends[0];
	cr_assert_str_eq(be->name, "app");
	cr_assert_eq(be->line, 5);
	cr_assert_eq(be->connect_timeout_ms, 3000);
	cr_assert_eq(be->retries, 2);
	cr_assert_eq(be->check, CHECK_TCP);
	cr_assert_null(be->check_send);
	cr_assert_null(be->check_expect);
	cr_assert_eq(be->check_interval_ms, 2000);
	cr_assert_eq(be->check_timeout_ms, 1000);
	cr_assert_eq(be->check_rise, 2);
	cr_assert_eq(be->check_fall, 3);
	cr_assert_eq(be->servers[0].weight, 1);
	cr_assert_not(be->servers[0].backup);
	config_unref(cfg);
}

Test(config, every_key_is_read_into_its_field)
{
	struct config *cfg;
	const struct cfg_frontend *fe;
	const struct cfg_backend *be;

	write_file("ca.pem", "ca\n");
	cfg = load_ok("[global]\nworkers = 3\nmax_connections = 77\nlog_level = DEBUG\n"
		      "access_log = off\nktls = on\nsplice = no\nshutdown_timeout = 1500ms\n"
		      "[frontend web]\nlisten = 127.0.0.1:8443\nlisten = [::1]:8443\ncert = c.pem\n"
		      "backend = app\ntls_min_version = TLSv1.3\ntls_max_version = tlsv1.3\n"
		      "ciphers = ECDHE-RSA-AES128-GCM-SHA256\nciphersuites = TLS_AES_128_GCM_SHA256\n"
		      "alpn = h2, http/1.1\nproxy_protocol = off\nhandshake_timeout = 2s\n"
		      "idle_timeout = 0\nclient_ca = ca.pem\nsession_tickets = false\n"
		      "[backend app]\nserver = 127.0.0.1:9001 weight=5\n"
		      "server = 127.0.0.1:9002 backup weight=256\nbalance = roundrobin\n"
		      "connect_timeout = 1m\nretries = 0\ncheck = send-expect\n"
		      "check_send = \"PING\\r\\n\"\ncheck_expect = +PONG\ncheck_interval = 1h\n"
		      "check_timeout = 250ms\ncheck_rise = 1000\ncheck_fall = 1\n");
	cr_assert_eq(cfg->workers, 3);
	cr_assert_eq(cfg->max_connections, 77);
	cr_assert_eq(cfg->log_level, LOG_DEBUG);
	cr_assert_str_eq(cfg->access_log, "off");
	cr_assert_eq(cfg->ktls, KTLS_ON);
	cr_assert_not(cfg->splice);
	cr_assert_eq(cfg->shutdown_timeout_ms, 1500);

	fe = &cfg->frontends[0];
	cr_assert_eq(fe->nlistens, 2);
	cr_assert_eq(fe->listens[1].ss.ss_family, AF_INET6);
	cr_assert_eq(fe->listens[1].line, 11);
	cr_assert_eq(fe->backend_line, 13);
	cr_assert_eq(fe->tls_min_version, TLS1_3_VERSION);
	cr_assert_eq(fe->tls_max_version, TLS1_3_VERSION);
	cr_assert_str_eq(fe->ciphers, "ECDHE-RSA-AES128-GCM-SHA256");
	cr_assert_eq(fe->ciphers_line, 16);
	cr_assert_str_eq(fe->ciphersuites, "TLS_AES_128_GCM_SHA256");
	cr_assert_eq(fe->ciphersuites_line, 17);
	cr_assert_eq(fe->alpn_len, 12);
	cr_assert_eq(memcmp(fe->alpn, "\x02h2\x08http/1.1", 12), 0);
	cr_assert_eq(fe->handshake_timeout_ms, 2000);
	cr_assert_eq(fe->idle_timeout_ms, 0);
	cr_assert_eq(fe->client_ca_line, 22);
	cr_assert(strstr(fe->client_ca, "/ca.pem") != NULL);
	cr_assert_not(fe->session_tickets);

	be = &cfg->backends[0];
	cr_assert_eq(be->nservers, 2);
	cr_assert_eq(be->servers[0].weight, 5);
	cr_assert_not(be->servers[0].backup);
	cr_assert_eq(be->servers[0].addr.line, 25);
	cr_assert_str_eq(be->servers[0].addr.text, "127.0.0.1:9001");
	cr_assert_eq(be->servers[1].weight, 256);
	cr_assert(be->servers[1].backup);
	cr_assert_eq(be->connect_timeout_ms, 60000);
	cr_assert_eq(be->retries, 0);
	cr_assert_eq(be->check, CHECK_SEND_EXPECT);
	cr_assert_eq(be->check_send_len, 6);
	cr_assert_eq(memcmp(be->check_send, "PING\r\n", 6), 0);
	cr_assert_str_eq(be->check_expect, "+PONG");
	cr_assert_eq(be->check_interval_ms, 3600000);
	cr_assert_eq(be->check_timeout_ms, 250);
	cr_assert_eq(be->check_rise, 1000);
	cr_assert_eq(be->check_fall, 1);
	config_unref(cfg);
}

/* ---- error classes, one at a time ---- */

Test(config, missing_file_is_one_error)
{
	struct config *cfg = config_load("absent.ini", &errs, &warns);

	EXPECT_ERRORS(cfg, "absent.ini: cannot open: No such file or directory");
}

Test(config, a_folder_is_not_a_config_file)
{
	struct config *cfg;

	cr_assert_eq(mkdir("d.ini", 0700), 0);
	cfg = config_load("d.ini", &errs, &warns);
	EXPECT_ERRORS(cfg, "d.ini: cannot open: Is a directory");
}

Test(config, unknown_section_points_at_its_header)
{
	struct config *cfg = load(FE BE "\n[frontnd web]\nlisten = 127.0.0.1:1\n");

	EXPECT_ERRORS(cfg, "f.ini:8: [frontnd web] unknown section");
}

Test(config, bad_section_headers)
{
	struct config *cfg = load("[global]\n[global]\n[global x]\n[frontend]\n[backend a/b]\n"
				  "[frontend web\n" FE BE "[frontend web]\n[backend app] x\n");

	EXPECT_ERRORS(cfg, "f.ini:2: [global] duplicate section (first at line 1)",
		      "f.ini:3: [global x] [global] takes no name",
		      "f.ini:4: [frontend] missing name",
		      "f.ini:5: [backend a/b] bad name 'a/b' (letters, digits, '_', '.' and '-')",
		      "f.ini:6: bad section header '[frontend web' (no ']')",
		      "f.ini:13: [frontend web] duplicate section (first at line 7)",
		      "f.ini:14: [backend app] unexpected text after ']'");
}

Test(config, line_that_is_not_key_value)
{
	struct config *cfg = load(FE "listen 127.0.0.1:9443\n= nothing\n" BE);

	EXPECT_ERRORS(cfg, "f.ini:5: [frontend web] expected 'key = value'",
		      "f.ini:6: [frontend web] expected 'key = value'");
}

Test(config, key_outside_any_section)
{
	struct config *cfg = load("workers = 2\n" FE BE);

	EXPECT_ERRORS(cfg, "f.ini:1: workers: outside any section ([global], [frontend NAME] or "
			   "[backend NAME])");
}

Test(config, unknown_keys_in_each_section)
{
	struct config *cfg = load("[global]\nlisten = 127.0.0.1:1\n" FE "colour = red\n" BE
				  "chek = tcp\n");

	EXPECT_ERRORS(cfg, "f.ini:2: [global] listen: unknown key",
		      "f.ini:7: [frontend web] colour: unknown key",
		      "f.ini:10: [backend app] chek: unknown key");
}

Test(config, repeated_key_names_its_first_line)
{
	struct config *cfg = load(FE "backend = other\n" BE "retries = 1\nretries = 2\n");

	EXPECT_ERRORS(cfg, "f.ini:5: [frontend web] backend: duplicate key (first at line 4)",
		      "f.ini:9: [backend app] retries: duplicate key (first at line 8)");
}

Test(config, required_keys_point_at_the_header)
{
	struct config *cfg = load("[global]\n\n[frontend web]\nalpn = h2\n[backend app]\n"
				  "retries = 1\n");

	EXPECT_ERRORS(cfg, "f.ini:3: [frontend web] listen: required",
		      "f.ini:3: [frontend web] cert: required",
		      "f.ini:3: [frontend web] backend: required",
		      "f.ini:5: [backend app] server: required");
}

Test(config, unknown_backends_point_at_their_lines)
{
	struct config *cfg = load("[frontend web]\nlisten = 127.0.0.1:8443\ncert = c.pem\n"
				  "backend = ap\nroute = *.x.test nope\nroute = y.test app\n" BE);

	EXPECT_ERRORS(cfg, "f.ini:4: [frontend web] backend: unknown backend 'ap'",
		      "f.ini:5: [frontend web] route: unknown backend 'nope'");
}

Test(config, server_errors)
{
	struct config *cfg = load(FE "[backend app]\nserver = 127.0.0.1:99999\n"
				  "server = 127.0.0.1:9001 weight=0\n"
				  "server = 127.0.0.1:9001 weight=257\n"
				  "server = 127.0.0.1:9001 weight=x\n"
				  "server = 127.0.0.1:9001 heavy\n"
				  "server = *:9001\n"
				  "server = 127.0.0.1:9001 weight=1 backup\n");

	EXPECT_ERRORS(cfg, "f.ini:6: [backend app] server: bad port '99999'",
		      "f.ini:7: [backend app] server: bad weight '0' (1..256)",
		      "f.ini:8: [backend app] server: bad weight '257' (1..256)",
		      "f.ini:9: [backend app] server: bad weight 'x' (1..256)",
		      "f.ini:10: [backend app] server: unknown server option 'heavy' (weight=N, "
		      "backup)",
		      "f.ini:11: [backend app] server: bad address '*:9001' (a host is required)");
}

Test(config, cert_and_key_errors)
{
	struct config *cfg;

	write_file("k.pem", "key\n");
	cfg = load("[frontend web]\nlisten = 127.0.0.1:8443\nkey = k.pem\ncert = x.pem\n"
		   "key = k.pem\ncert = c.pem\nkey = k.pem\nkey = k.pem\nkey = nokey.pem\n"
		   "backend = app\n" BE);
	EXPECT_ERRORS(cfg,
		      "f.ini:3: [frontend web] key: no cert line before it (a key belongs to the "
		      "cert above it)",
		      "f.ini:4: [frontend web] cert: cannot read 'x.pem': No such file or directory",
		      "f.ini:8: [frontend web] key: the cert at line 6 already has a key (line 7)",
		      "f.ini:9: [frontend web] key: the cert at line 6 already has a key (line 7)");
}

Test(config, key_after_a_failed_cert_has_its_path_checked)
{
	struct config *cfg = load("[frontend web]\nlisten = 127.0.0.1:8443\ncert = x.pem\n"
				  "key = y.pem\nbackend = app\n" BE);

	EXPECT_ERRORS(cfg,
		      "f.ini:3: [frontend web] cert: cannot read 'x.pem': No such file or directory",
		      "f.ini:4: [frontend web] key: cannot read 'y.pem': No such file or directory");
}

Test(config, certs_take_their_keys)
{
	struct config *cfg;
	const struct cfg_frontend *fe;
	char want[PATH_MAX + 16];

	write_file("a.pem", "a\n");
	write_file("ak.pem", "ak\n");
	cfg = load_ok("[frontend web]\nlisten = 127.0.0.1:8443\ncert = a.pem\nkey = ak.pem\n"
		      "cert = c.pem\nbackend = app\n" BE);
	fe = &cfg->frontends[0];
	cr_assert_eq(fe->ncerts, 2);
	snprintf(want, sizeof(want), "%s/a.pem", realdir);
	cr_assert_str_eq(fe->certs[0].cert_path, want);
	snprintf(want, sizeof(want), "%s/ak.pem", realdir);
	cr_assert_str_eq(fe->certs[0].key_path, want);
	cr_assert_eq(fe->certs[0].line, 3);
	cr_assert_eq(fe->certs[0].key_line, 4);
	cr_assert_str_eq(fe->certs[1].key_path, fe->certs[1].cert_path);
	cr_assert_eq(fe->certs[1].line, 5);
	cr_assert_eq(fe->certs[1].key_line, 0);
	config_unref(cfg);
}

Test(config, tls_versions_are_12_or_13_in_order)
{
	struct config *cfg = load("[frontend web]\nlisten = 127.0.0.1:8443\ncert = c.pem\n"
				  "backend = app\ntls_max_version = TLSv1.1\n"
				  "[frontend two]\nlisten = 127.0.0.1:8444\ncert = c.pem\n"
				  "backend = app\ntls_max_version = TLSv1.2\n"
				  "tls_min_version = TLSv1.3\n" BE);

	EXPECT_ERRORS(cfg,
		      "f.ini:5: [frontend web] tls_max_version: bad value 'TLSv1.1' (TLS 1.2+ "
		      "only: TLSv1.2 or TLSv1.3)",
		      "f.ini:11: [frontend two] tls_min_version: TLSv1.3 is above tls_max_version "
		      "TLSv1.2");
}

Test(config, send_expect_needs_check_expect)
{
	struct config *cfg = load(FE BE "check_send = PING\ncheck = send-expect\n");

	EXPECT_ERRORS(cfg, "f.ini:8: [backend app] check: send-expect requires check_expect");
}

Test(config, global_value_errors)
{
	struct config *cfg = load("[global]\nworkers = 0\nworkers = 2\nmax_connections = 0\n"
				  "log_level = loud\naccess_log =\nktls = maybe\nsplice = 1\n"
				  "shutdown_timeout = 10x\nuser = no-such-user-here\n"
				  "group = no-such-group-here\n" FE BE);

	EXPECT_ERRORS(cfg, "f.ini:2: [global] workers: bad value '0' (auto or 1..1024)",
		      "f.ini:3: [global] workers: duplicate key (first at line 2)",
		      "f.ini:4: [global] max_connections: bad value '0' (1..10000000)",
		      "f.ini:5: [global] log_level: bad value 'loud' (error, warn, info, debug)",
		      "f.ini:6: [global] access_log: missing value",
		      "f.ini:7: [global] ktls: bad value 'maybe' (auto, off, on)",
		      "f.ini:8: [global] splice: bad boolean '1' (on|off|yes|no|true|false)",
		      "f.ini:9: [global] shutdown_timeout: bad duration '10x'",
		      "f.ini:10: [global] user: unknown user 'no-such-user-here'",
		      "f.ini:11: [global] group: unknown group 'no-such-group-here'");
}

Test(config, frontend_value_errors)
{
	char longproto[300];
	char text[1024];
	struct config *cfg;

	memset(longproto, 'p', 256);
	longproto[256] = '\0';
	snprintf(text, sizeof(text),
		 FE "route = bad..name app\nroute = * app\nroute = *.x.test\nalpn = h2,,x\n"
		    "alpn = %s\nproxy_protocol = v3\nhandshake_timeout = 0\nidle_timeout = -1\n"
		    "session_tickets = sometimes\nclient_ca = ca.pem\n" BE,
		 longproto);
	cfg = load(text);
	EXPECT_ERRORS(cfg,
		      "f.ini:5: [frontend web] route: bad pattern 'bad..name' (a host name or "
		      "*.domain)",
		      "f.ini:6: [frontend web] route: bad pattern '*' (a host name or *.domain)",
		      "f.ini:7: [frontend web] route: expected 'SNI-PATTERN BACKEND', got "
		      "'*.x.test'",
		      "f.ini:8: [frontend web] alpn: bad alpn 'h2,,x' (each protocol 1..255 bytes)",
		      "f.ini:9: [frontend web] alpn: duplicate key (first at line 8)",
		      "f.ini:10: [frontend web] proxy_protocol: bad value 'v3' (off, v1, v2)",
		      "f.ini:11: [frontend web] handshake_timeout: bad duration '0' (must be greater "
		      "than 0)",
		      "f.ini:12: [frontend web] idle_timeout: bad duration '-1'",
		      "f.ini:13: [frontend web] session_tickets: bad boolean 'sometimes' "
		      "(on|off|yes|no|true|false)",
		      "f.ini:14: [frontend web] client_ca: cannot read 'ca.pem': No such file or "
		      "directory");
}

Test(config, alpn_protocol_longer_than_255_bytes)
{
	char text[1024], proto[300];
	struct config *cfg;

	memset(proto, 'p', 256);
	proto[256] = '\0';
	snprintf(text, sizeof(text), FE "alpn = h2,%s\n" BE, proto);
	cfg = load(text);
	cr_assert_null(cfg);
	cr_assert_eq(errs.n, 1);
	cr_assert(strstr(errs.msgs[0], "f.ini:5: [frontend web] alpn: bad alpn 'h2,ppp") ==
		  errs.msgs[0]);
}

Test(config, backend_value_errors)
{
	struct config *cfg = load(FE BE "balance = leastconn\nconnect_timeout = 0\nretries = 101\n"
				  "check = http\ncheck_send = PING\\q\ncheck_expect = \"\"\n"
				  "check_interval = 0\ncheck_timeout = 1.5s\ncheck_rise = 0\n"
				  "check_fall = 1001\n");

	EXPECT_ERRORS(cfg, "f.ini:7: [backend app] balance: bad value 'leastconn' (roundrobin)",
		      "f.ini:8: [backend app] connect_timeout: bad duration '0' (must be greater "
		      "than 0)",
		      "f.ini:9: [backend app] retries: bad value '101' (0..100)",
		      "f.ini:10: [backend app] check: bad value 'http' (tcp, send-expect, none)",
		      "f.ini:11: [backend app] check_send: bad escape '\\q'",
		      "f.ini:12: [backend app] check_expect: empty value",
		      "f.ini:13: [backend app] check_interval: bad duration '0' (must be greater "
		      "than 0)",
		      "f.ini:14: [backend app] check_timeout: bad duration '1.5s'",
		      "f.ini:15: [backend app] check_rise: bad value '0' (1..1000)",
		      "f.ini:16: [backend app] check_fall: bad value '1001' (1..1000)");
}

Test(config, the_same_listen_address_twice_is_refused)
{
	struct config *cfg = load(FE "listen = 127.0.0.1:8444\n[frontend two]\n"
				  "listen = 127.0.0.1:8444\ncert = c.pem\nbackend = app\n" BE);

	EXPECT_ERRORS(cfg, "f.ini:7: [frontend two] listen: '127.0.0.1:8444' is already used at "
			   "line 5");
}

/* ---- all errors, not just the first ---- */

Test(config, every_mistake_is_reported_with_its_line)
{
	struct config *cfg;

	write_file("k.pem", "key\n");
	cfg = load("workers = 2\n"                        /* 1 */
		   "[global]\n"                           /* 2 */
		   "workers = 0\n"                        /* 3 */
		   "max_connections = 10000001\n"         /* 4 */
		   "log_level = loud\n"                   /* 5 */
		   "ktls = maybe\n"                       /* 6 */
		   "splice = perhaps\n"                   /* 7 */
		   "shutdown_timeout = 10x\n"             /* 8 */
		   "this line is junk\n"                  /* 9 */
		   "[frontnd web]\n"                      /* 10 */
		   "listen = nonsense\n"                  /* 11: skipped with its section */
		   "[frontend web]\n"                     /* 12 */
		   "listen = 127.0.0.1:99999\n"           /* 13 */
		   "listen = 127.0.0.1\n"                 /* 14 */
		   "key = k.pem\n"                        /* 15 */
		   "cert = missing.pem\n"                 /* 16 */
		   "backend = nowhere\n"                  /* 17 */
		   "backend = app\n"                      /* 18 */
		   "route = *.api.test ghost\n"           /* 19 */
		   "route = bad..pattern app\n"           /* 20 */
		   "tls_min_version = TLSv1.1\n"          /* 21 */
		   "alpn = h2,,http/1.1\n"                /* 22 */
		   "handshake_timeout = 0\n"              /* 23 */
		   "idle_timeout = -1\n"                  /* 24 */
		   "session_tickets = maybe\n"            /* 25 */
		   "colour = blue\n"                      /* 26 */
		   "[backend app]\n"                      /* 27 */
		   "server = 127.0.0.1:9001 weight=0\n"   /* 28 */
		   "server = 127.0.0.1:9002 heavy\n"      /* 29 */
		   "balance = leastconn\n"                /* 30 */
		   "retries = 101\n"                      /* 31 */
		   "check = send-expect\n"                /* 32 */
		   "check_send = PING\\q\n"               /* 33 */
		   "check_rise = 0\n"                     /* 34 */
		   "chek = tcp\n"                         /* 35 */
		   "[backend app]\n"                      /* 36 */
		   "[backend]\n");                        /* 37 */
	EXPECT_ERRORS(cfg,
		      "f.ini:1: workers: outside any section ([global], [frontend NAME] or "
		      "[backend NAME])",
		      "f.ini:3: [global] workers: bad value '0' (auto or 1..1024)",
		      "f.ini:4: [global] max_connections: bad value '10000001' (1..10000000)",
		      "f.ini:5: [global] log_level: bad value 'loud' (error, warn, info, debug)",
		      "f.ini:6: [global] ktls: bad value 'maybe' (auto, off, on)",
		      "f.ini:7: [global] splice: bad boolean 'perhaps' (on|off|yes|no|true|false)",
		      "f.ini:8: [global] shutdown_timeout: bad duration '10x'",
		      "f.ini:9: [global] expected 'key = value'",
		      "f.ini:10: [frontnd web] unknown section",
		      "f.ini:13: [frontend web] listen: bad port '99999'",
		      "f.ini:14: [frontend web] listen: bad address '127.0.0.1' (expected HOST:PORT)",
		      "f.ini:15: [frontend web] key: no cert line before it (a key belongs to the "
		      "cert above it)",
		      "f.ini:16: [frontend web] cert: cannot read 'missing.pem': No such file or "
		      "directory",
		      "f.ini:17: [frontend web] backend: unknown backend 'nowhere'",
		      "f.ini:18: [frontend web] backend: duplicate key (first at line 17)",
		      "f.ini:19: [frontend web] route: unknown backend 'ghost'",
		      "f.ini:20: [frontend web] route: bad pattern 'bad..pattern' (a host name or "
		      "*.domain)",
		      "f.ini:21: [frontend web] tls_min_version: bad value 'TLSv1.1' (TLS 1.2+ "
		      "only: TLSv1.2 or TLSv1.3)",
		      "f.ini:22: [frontend web] alpn: bad alpn 'h2,,http/1.1' (each protocol "
		      "1..255 bytes)",
		      "f.ini:23: [frontend web] handshake_timeout: bad duration '0' (must be "
		      "greater than 0)",
		      "f.ini:24: [frontend web] idle_timeout: bad duration '-1'",
		      "f.ini:25: [frontend web] session_tickets: bad boolean 'maybe' "
		      "(on|off|yes|no|true|false)",
		      "f.ini:26: [frontend web] colour: unknown key",
		      "f.ini:28: [backend app] server: bad weight '0' (1..256)",
		      "f.ini:29: [backend app] server: unknown server option 'heavy' (weight=N, "
		      "backup)",
		      "f.ini:30: [backend app] balance: bad value 'leastconn' (roundrobin)",
		      "f.ini:31: [backend app] retries: bad value '101' (0..100)",
		      "f.ini:32: [backend app] check: send-expect requires check_expect",
		      "f.ini:33: [backend app] check_send: bad escape '\\q'",
		      "f.ini:34: [backend app] check_rise: bad value '0' (1..1000)",
		      "f.ini:35: [backend app] chek: unknown key",
		      "f.ini:36: [backend app] duplicate section (first at line 27)",
		      "f.ini:37: [backend] missing name");
}

/* ---- warnings for features not built yet ---- */

Test(config, every_contract_key_is_kept)
{
	struct config *cfg;

	write_file("t.key", "keys\n");
	cfg = load("[global]\nmetrics = 127.0.0.1:9100\nuser = root\ngroup = root\n" FE
		   "ticket_keys = t.key\nproxy_protocol = v2\n" BE);
	dump("error", &errs);
	dump("warning", &warns);
	cr_assert_not_null(cfg);
	cr_assert_eq(errs.n, 0);
	cr_assert_eq(warns.n, 0, "every key of the contract is built: no warning");
	cr_assert(cfg->has_metrics);
	cr_assert_str_eq(cfg->metrics.text, "127.0.0.1:9100");
	cr_assert_str_eq(cfg->user, "root");
	cr_assert_str_eq(cfg->group, "root");
	cr_assert_not_null(cfg->frontends[0].ticket_keys);
	cr_assert_eq(cfg->frontends[0].ticket_keys_line, 9);
	cr_assert_eq(cfg->frontends[0].proxy_protocol, PROXY_V2);
	config_unref(cfg);
}

Test(config, user_and_group_must_exist)
{
	struct config *cfg = load("[global]\nuser = no-such-user-here\ngroup = no-such-group-here\n" FE BE);

	cr_assert_null(cfg);
	cr_assert_eq(errs.n, 2);
	cr_assert(strstr(errs.msgs[0], "f.ini:2: [global] user: ") == errs.msgs[0], "%s", errs.msgs[0]);
	cr_assert(strstr(errs.msgs[1], "f.ini:3: [global] group: ") == errs.msgs[1], "%s", errs.msgs[1]);
}

/* ---- the reader: long lines, indentation, comments ---- */

Test(config, long_lines_keep_their_whole_value)
{
	char ciphers[1200] = "", text[4096], key[80];
	struct config *cfg;

	while (strlen(ciphers) < 1000)
		strcat(ciphers, "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:");
	strcat(ciphers, "DEFAULT");
	snprintf(text, sizeof(text), FE "ciphers = %s   ; a comment after a long value\n" BE,
		 ciphers);
	cfg = load_ok(text);
	cr_assert_str_eq(cfg->frontends[0].ciphers, ciphers);
	cr_assert_eq(cfg->frontends[0].ciphers_line, 5);
	config_unref(cfg);

	memset(key, 'k', 60);
	key[60] = '\0';
	snprintf(text, sizeof(text), FE "ciphersuites = %s\n%s = 1\nretries = x\n%s\n" BE, ciphers,
		 key, ciphers);
	cfg = load(text);
	cr_assert_null(cfg);
	dump("error", &errs);
	cr_assert_eq(errs.n, 3);
	snprintf(text, sizeof(text), "f.ini:6: [frontend web] %s: unknown key", key);
	cr_assert_str_eq(errs.msgs[0], text);
	cr_assert_str_eq(errs.msgs[1], "f.ini:7: [frontend web] retries: unknown key");
	cr_assert_str_eq(errs.msgs[2], "f.ini:8: [frontend web] expected 'key = value'");
}

Test(config, indented_keys_are_keys_not_continuations)
{
	struct config *cfg = load_ok("[frontend web]\n"
				     "    listen = 127.0.0.1:8443\n"
				     "\tcert = c.pem\n"
				     "  \t backend = app\n"
				     "  [backend app]\n"
				     "     server = 127.0.0.1:9001\n"
				     "     server = 127.0.0.1:9002\n");

	cr_assert_eq(cfg->frontends[0].nlistens, 1);
	cr_assert_str_eq(cfg->frontends[0].backend_name, "app");
	cr_assert_eq(cfg->backends[0].nservers, 2);
	cr_assert_eq(cfg->backends[0].servers[1].addr.line, 7);
	config_unref(cfg);
}

Test(config, comments_are_skipped_wherever_inih_allows_them)
{
	struct config *cfg = load_ok("; leading comment\n"
				     "# hash comment\n"
				     "[frontend web] ; after a header\n"
				     "listen = 127.0.0.1:8443 ; inline\n"
				     "cert = c.pem\t; after a tab\n"
				     "backend = app\n"
				     "  ; indented comment\n"
				     "[backend app]\n"
				     "server = 127.0.0.1:9001\n"
				     "check_expect = a;b #c\n");

	cr_assert_str_eq(cfg->frontends[0].listens[0].text, "127.0.0.1:8443");
	cr_assert_str_eq(cfg->backends[0].check_expect, "a;b #c",
			 "';' without a space before it and '#' inside a value are data");
	cr_assert_eq(cfg->frontends[0].line, 3);
	config_unref(cfg);
}

Test(config, crlf_and_byte_order_mark)
{
	struct config *cfg = load_ok("\xEF\xBB\xBF[frontend web]\r\nlisten = 127.0.0.1:8443\r\n"
				     "cert = c.pem\r\nbackend = app\r\n[backend app]\r\n"
				     "server = 127.0.0.1:9001\r\n");

	cr_assert_str_eq(cfg->frontends[0].name, "web");
	cr_assert_str_eq(cfg->backends[0].servers[0].addr.text, "127.0.0.1:9001");
	config_unref(cfg);
}

Test(config, quoted_check_values_keep_their_spaces)
{
	struct config *cfg = load_ok(FE BE "check = send-expect\n"
				     "check_send = \" HELO x\\r\\n\"\ncheck_expect = \"250 \"\n");

	cr_assert_eq(cfg->backends[0].check_send_len, 9);
	cr_assert_eq(memcmp(cfg->backends[0].check_send, " HELO x\r\n", 9), 0);
	cr_assert_str_eq(cfg->backends[0].check_expect, "250 ");
	config_unref(cfg);
}

/* ---- paths ---- */

Test(config, relative_paths_resolve_against_the_config_folder)
{
	char want[PATH_MAX + 32];
	struct config *cfg;

	cr_assert_eq(mkdir("sub", 0700), 0);
	cr_assert_eq(mkdir("sub/certs", 0700), 0);
	write_file("sub/certs/s.pem", "s\n");
	snprintf(want, sizeof(want), "%s/c.pem", realdir);
	write_file("sub/f.ini", "[global]\naccess_log = logs/access.log\n"
				"[frontend web]\nlisten = 127.0.0.1:8443\ncert = certs/s.pem\n"
				"key = ../c.pem\nbackend = app\n" BE);
	cfg = config_load("sub/f.ini", &errs, &warns);
	dump("error", &errs);
	cr_assert_not_null(cfg);
	cr_assert_str_eq(cfg->path, "sub/f.ini");
	snprintf(want, sizeof(want), "%s/sub", realdir);
	cr_assert_str_eq(cfg->dir, want);
	snprintf(want, sizeof(want), "%s/sub/logs/access.log", realdir);
	cr_assert_str_eq(cfg->access_log, want);
	snprintf(want, sizeof(want), "%s/sub/certs/s.pem", realdir);
	cr_assert_str_eq(cfg->frontends[0].certs[0].cert_path, want);
	snprintf(want, sizeof(want), "%s/sub/../c.pem", realdir);
	cr_assert_str_eq(cfg->frontends[0].certs[0].key_path, want);
	config_unref(cfg);

	/* c.pem sits next to the working directory's f.ini, not next to sub/f.ini */
	write_file("sub/f.ini", FE BE);
	cfg = config_load("sub/f.ini", &errs, &warns);
	cr_assert_null(cfg);
	cr_assert_eq(errs.n, 1);
	cr_assert_str_eq(errs.msgs[0], "sub/f.ini:3: [frontend web] cert: cannot read 'c.pem': "
				       "No such file or directory");
}

Test(config, absolute_paths_are_kept)
{
	char text[PATH_MAX * 2], want[PATH_MAX + 16];
	struct config *cfg;

	snprintf(want, sizeof(want), "%s/c.pem", realdir);
	snprintf(text, sizeof(text),
		 "[frontend web]\nlisten = 127.0.0.1:8443\ncert = %s\nbackend = app\n" BE, want);
	cfg = load_ok(text);
	cr_assert_str_eq(cfg->frontends[0].certs[0].cert_path, want);
	config_unref(cfg);
}

Test(config, a_folder_is_not_a_certificate)
{
	struct config *cfg;

	cr_assert_eq(mkdir("dir.pem", 0700), 0);
	cfg = load("[frontend web]\nlisten = 127.0.0.1:8443\ncert = dir.pem\nbackend = app\n" BE);
	EXPECT_ERRORS(cfg, "f.ini:3: [frontend web] cert: cannot read 'dir.pem': Is a directory");
}

/* ---- lifetime ---- */

Test(config, reference_counting)
{
	struct config *cfg = load_ok(FE BE);

	cr_assert_eq(atomic_load(&cfg->refs), 1);
	cr_assert_eq(config_ref(cfg), cfg);
	cr_assert_eq(atomic_load(&cfg->refs), 2);
	config_unref(cfg);
	cr_assert_eq(atomic_load(&cfg->refs), 1);
	cr_assert_str_eq(cfg->frontends[0].name, "web", "still alive with one reference");
	config_unref(cfg);
	config_unref(NULL);
	cr_assert_null(config_ref(NULL));
}

Test(config, loads_without_error_lists)
{
	struct config *cfg;

	write_file("f.ini", FE BE);
	cfg = config_load("f.ini", NULL, NULL);
	cr_assert_not_null(cfg);
	config_unref(cfg);
	write_file("f.ini", "[bogus]\n");
	cr_assert_null(config_load("f.ini", NULL, NULL));
}

/* ---- the shipped demo config ---- */

Test(config, demo_config_loads)
{
	char src[PATH_MAX], cmd[PATH_MAX * 2];
	struct config *cfg;

	snprintf(src, sizeof(src), "%s/config/tlsplice.ini", TLSPLICE_SOURCE_DIR);
	cr_assert_eq(mkdir("config", 0700), 0);
	snprintf(cmd, sizeof(cmd), "cp '%s' config/tlsplice.ini", src);
	cr_assert_eq(system(cmd), 0);
	write_file("config/demo.pem", "demo cert and key\n");
	cfg = config_load("config/tlsplice.ini", &errs, &warns);
	dump("error", &errs);
	dump("warning", &warns);
	cr_assert_not_null(cfg);
	cr_assert_eq(warns.n, 0);
	cr_assert_str_eq(cfg->access_log, "stdout");
	cr_assert_eq(cfg->nfrontends, 1);
	cr_assert_str_eq(cfg->frontends[0].name, "demo");
	cr_assert_str_eq(cfg->frontends[0].listens[0].text, "127.0.0.1:8443");
	cr_assert_str_eq(cfg->frontends[0].certs[0].key_path, cfg->frontends[0].certs[0].cert_path);
	cr_assert_eq(cfg->nbackends, 1);
	cr_assert_eq(cfg->frontends[0].backend, 0);
	cr_assert_eq(cfg->backends[0].nservers, 2);
	cr_assert_str_eq(cfg->backends[0].servers[1].addr.text, "127.0.0.1:9002");
	config_unref(cfg);
}

/* ---- loading from memory (the fuzz target's entry point) ---- */

Test(config, a_buffer_loads_like_the_file_it_names)
{
	static const char text[] = FE BE "[global]\nworkers = 3\n";
	struct config *cfg = config_load_buffer("f.ini", text, sizeof(text) - 1, &errs, &warns);

	cr_assert_not_null(cfg);
	cr_assert_eq(cfg->workers, 3);
	cr_assert(strstr(cfg->frontends[0].certs[0].cert_path, "/c.pem") != NULL);
	config_unref(cfg);
	/* a NUL byte ends its line's text, as it does in a file */
	static const char nul[] = "[global]\nworkers = 2\0junk\n" FE BE;
	cfg = config_load_buffer("f.ini", nul, sizeof(nul) - 1, &errs, &warns);
	cr_assert_not_null(cfg);
	cr_assert_eq(cfg->workers, 2);
	config_unref(cfg);
	cfg = config_load_buffer("f.ini", "[oops]\n", 7, &errs, &warns);
	EXPECT_ERRORS(cfg, "f.ini:1: [oops] unknown section");
}

/* ---- quoting input in messages ---- */

Test(config, control_bytes_in_keys_values_and_section_names_are_escaped)
{
	struct config *cfg = load("[global]\n"
				  "workers = \033[31mred\n"                 /* 2 */
				  "wor\033kers = 1\n"                       /* 3 */
				  "log_level = \x9b" "2J\x01\x7f\n"         /* 4 */
				  "[frontend we\033[2J\007b]\n"             /* 5 */
				  "[\033[1mfrontend web]\n"                 /* 6 */
				  "[backend app]\nserver = 127.0.0.1:9001\n"
				  "check_send = \\\001\n"                   /* 9 */
				  "check = \033c\n"                         /* 10 */
				  "retries = 1\r\n"                         /* 11 */
				  "connect_timeout = \0331s\n");            /* 12 */

	EXPECT_ERRORS(cfg,
		      "f.ini:2: [global] workers: bad value '\\x1b[31mred' (auto or 1..1024)",
		      "f.ini:3: [global] wor\\x1bkers: unknown key",
		      "f.ini:4: [global] log_level: bad value '\\x9b2J\\x01\\x7f' "
		      "(error, warn, info, debug)",
		      "f.ini:5: [frontend we\\x1b[2J\\x07b] bad name 'we\\x1b[2J\\x07b' "
		      "(letters, digits, '_', '.' and '-')",
		      "f.ini:6: [\\x1b[1mfrontend web] unknown section",
		      "f.ini:9: [backend app] check_send: bad escape '\\\\x01'",
		      "f.ini:10: [backend app] check: bad value '\\x1bc' (tcp, send-expect, none)",
		      "f.ini:12: [backend app] connect_timeout: bad duration '\\x1b1s'");
	for (size_t i = 0; i < errs.n; i++)
		for (const char *p = errs.msgs[i]; *p; p++)
			cr_assert(*p >= 0x20 && *p < 0x7f, "raw byte 0x%02x in: %s",
				  (unsigned char)*p, errs.msgs[i]);
}

/* ---- files the config names ---- */

Test(config, named_files_must_be_regular_and_bounded)
{
	cr_assert_eq(mkfifo("c.fifo", 0600), 0);
	write_file("big.pem", "x");
	cr_assert_eq(truncate("big.pem", CONFIG_FILE_MAX + 1), 0);
	write_file("max.pem", "x");
	cr_assert_eq(truncate("max.pem", CONFIG_FILE_MAX), 0);
	struct config *cfg = load("[frontend web]\nlisten = 127.0.0.1:8443\n"
				  "cert = c.fifo\n"           /* 3 */
				  "cert = max.pem\n"
				  "key = /dev/null\n"         /* 5 */
				  "client_ca = big.pem\n"     /* 6 */
				  "ticket_keys = /dev/zero\n" /* 7 */
				  "backend = app\n" BE);

	EXPECT_ERRORS(cfg, "f.ini:3: [frontend web] cert: cannot read 'c.fifo': not a regular file",
		      "f.ini:5: [frontend web] key: cannot read '/dev/null': not a regular file",
		      "f.ini:6: [frontend web] client_ca: cannot read 'big.pem': larger than 4 MiB",
		      "f.ini:7: [frontend web] ticket_keys: cannot read '/dev/zero': not a regular "
		      "file");
}

Test(config, the_config_file_itself_must_be_regular)
{
	cr_assert_eq(mkfifo("f.fifo", 0600), 0);
	struct config *cfg = config_load("f.fifo", &errs, &warns);
	EXPECT_ERRORS(cfg, "f.fifo: cannot open: not a regular file");
	errlist_finish(&errs);
	write_file("big.ini", "[global]\n");
	cr_assert_eq(truncate("big.ini", CONFIG_FILE_MAX + 1), 0);
	cfg = config_load("big.ini", &errs, &warns);
	EXPECT_ERRORS(cfg, "big.ini: cannot open: larger than 4 MiB");
}

Test(config, file_reads_are_whole_and_bounded)
{
	char why[128];
	char *text;
	size_t len;

	write_file("t.txt", "abc\0def");
	cr_assert_eq(config_file_read("t.txt", &text, &len, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(len, 3u);
	cr_assert_str_eq(text, "abc");
	free(text);
	cr_assert_eq(config_file_read("/dev/zero", &text, &len, why, sizeof(why)), -1);
	cr_assert_str_eq(why, "not a regular file");
	cr_assert_eq(config_file_read(".", &text, &len, why, sizeof(why)), -1);
	cr_assert_str_eq(why, "Is a directory");
	cr_assert_eq(config_file_read("absent", &text, &len, why, sizeof(why)), -1);
	cr_assert_eq(errno, ENOENT);
}
