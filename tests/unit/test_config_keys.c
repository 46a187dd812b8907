/* config: defaults, every key read into its field, and each error class one at a time. */
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

#include "../../src/config/internal.h" /* keys_name: the table the dump must cover */
#include "config_fixture.h"

TestSuite(config, .init = setup, .fini = teardown);

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
	cfg = load_ok(
		"[global]\nworkers = 3\nmax_connections = 77\nlog_level = DEBUG\n"
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

	EXPECT_ERRORS(cfg, "f.ini:2: [global] listen: unknown key (it belongs in [frontend NAME])",
		      "f.ini:7: [frontend web] colour: unknown key",
		      "f.ini:10: [backend app] chek: unknown key (did you mean 'check'?)");
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

	EXPECT_ERRORS(
		cfg, "f.ini:6: [backend app] server: bad port '99999'",
		"f.ini:7: [backend app] server: weight 0 is not supported (1..256): to stop "
		"new connections to a server, run 'tlsplice ctl set server BACKEND/ADDR state "
		"drain', or remove its line and reload; open connections finish",
		"f.ini:8: [backend app] server: bad weight '257' (1..256)",
		"f.ini:9: [backend app] server: bad weight 'x' (1..256)",
		"f.ini:10: [backend app] server: unknown server option 'heavy' (weight=N, "
		"maxconn=N, backup)",
		"f.ini:11: [backend app] server: bad address '*:9001' (a host is required)");
}

Test(config, cert_and_key_errors)
{
	struct config *cfg;

	write_file("k.pem", "key\n");
	cfg = load("[frontend web]\nlisten = 127.0.0.1:8443\nkey = k.pem\ncert = x.pem\n"
		   "key = k.pem\ncert = c.pem\nkey = k.pem\nkey = k.pem\nkey = nokey.pem\n"
		   "backend = app\n" BE);
	EXPECT_ERRORS(
		cfg,
		"f.ini:3: [frontend web] key: no cert line before it (a key belongs to the "
		"cert above it)",
		"f.ini:4: [frontend web] cert: cannot read '@/x.pem': No such file or directory",
		"f.ini:8: [frontend web] key: the cert at line 6 already has a key (line 7)",
		"f.ini:9: [frontend web] key: the cert at line 6 already has a key (line 7)");
}

Test(config, key_after_a_failed_cert_has_its_path_checked)
{
	struct config *cfg = load("[frontend web]\nlisten = 127.0.0.1:8443\ncert = x.pem\n"
				  "key = y.pem\nbackend = app\n" BE);

	EXPECT_ERRORS(
		cfg,
		"f.ini:3: [frontend web] cert: cannot read '@/x.pem': No such file or directory",
		"f.ini:4: [frontend web] key: cannot read '@/y.pem': No such file or directory");
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
	EXPECT_ERRORS(
		cfg,
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
		"f.ini:14: [frontend web] client_ca: cannot read '@/ca.pem': No such file or "
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
	struct config *cfg = load(FE BE "balance = random\nconnect_timeout = 0\nretries = 101\n"
					"check = http\ncheck_send = PING\\q\ncheck_expect = \"\"\n"
					"check_interval = 0\ncheck_timeout = 1.5s\ncheck_rise = 0\n"
					"check_fall = 1001\n");

	EXPECT_ERRORS(cfg,
		      "f.ini:7: [backend app] balance: bad value 'random' (roundrobin, leastconn)",
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

Test(config, accept_proxy_errors)
{
	struct config *cfg = load(FE "accept_proxy = v3\naccept_proxy_from = 10.0.0.1/8, ::1\n"
				     "[frontend b]\nlisten = 127.0.0.1:8444\ncert = c.pem\n"
				     "backend = app\naccept_proxy = v1\n"
				     "[frontend c]\nlisten = 127.0.0.1:8445\ncert = c.pem\n"
				     "backend = app\naccept_proxy_from = 10.0.0.0/8\n" BE);

	EXPECT_ERRORS(cfg,
		      "f.ini:5: [frontend web] accept_proxy: bad value 'v3' (off, v1, v2, any)",
		      "f.ini:6: [frontend web] accept_proxy_from: '10.0.0.1/8' has host bits set "
		      "(a network is e.g. 10.0.0.0/8)",
		      "f.ini:11: [frontend b] accept_proxy: requires accept_proxy_from (the peers "
		      "trusted to send a PROXY header, e.g. 10.0.0.0/8)",
		      "f.ini:16: [frontend c] accept_proxy_from: has no effect while accept_proxy "
		      "is off");
}

Test(config, client_crl_needs_client_ca)
{
	struct config *cfg;

	write_file("ca.pem", "x\n");
	write_file("crl.pem", "x\n");
	cfg = load(FE "client_crl = crl.pem\n" BE);
	EXPECT_ERRORS(cfg, "f.ini:5: [frontend web] client_crl: requires client_ca (CRLs only "
			   "apply to verified client certificates)");
	errlist_finish(&errs);
	errlist_init(&errs);
	cfg = load_ok(FE "client_ca = ca.pem\nclient_crl = crl.pem\n" BE);
	cr_assert(strstr(cfg->frontends[0].client_crl, "/crl.pem"));
	cr_assert_eq(cfg->frontends[0].client_crl_line, 6);
	config_unref(cfg);
}

Test(config, proxy_protocol_tlvs)
{
	struct config *cfg = load_ok(FE "proxy_protocol = v2\nproxy_protocol_tlvs = SSL,alpn\n"
					"proxy_protocol_crc32c = yes\n" BE);

	cr_assert_eq(cfg->frontends[0].proxy_tlvs, PROXY_TLV_ALPN | PROXY_TLV_SSL);
	cr_assert(cfg->frontends[0].proxy_crc32c);
	config_unref(cfg);
	cfg = load(FE "proxy_protocol_tlvs = alpn, sni\nproxy_protocol_crc32c = maybe\n"
		      "[frontend b]\nlisten = 127.0.0.1:8444\ncert = c.pem\nbackend = app\n"
		      "proxy_protocol = v1\nproxy_protocol_crc32c = on\n" BE);
	EXPECT_ERRORS(cfg,
		      "f.ini:5: [frontend web] proxy_protocol_tlvs: bad TLV 'sni' (alpn, "
		      "authority, ssl)",
		      "f.ini:6: [frontend web] proxy_protocol_crc32c: bad boolean 'maybe' "
		      "(on|off|yes|no|true|false)",
		      "f.ini:12: [frontend b] proxy_protocol_crc32c: requires proxy_protocol = v2 "
		      "(TLVs exist only in v2 headers)");
}

Test(config, unix_servers)
{
	char text[512], longpath[120];
	struct config *cfg = load_ok(FE "[backend app]\nserver = unix:/run/app.sock weight=3 "
					"maxconn=9 backup\n");
	const struct cfg_server *s = &cfg->backends[0].servers[0];

	cr_assert_eq(s->addr.ss.ss_family, AF_UNIX);
	cr_assert_str_eq(s->addr.text, "unix:/run/app.sock");
	cr_assert_eq(s->weight, 3);
	cr_assert_eq(s->maxconn, 9);
	cr_assert(s->backup);
	config_unref(cfg);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	longpath[0] = '/';
	snprintf(text, sizeof(text),
		 "[frontend web]\nlisten = unix:/run/web.sock\nlisten = 127.0.0.1:8443\n"
		 "cert = c.pem\nbackend = app\n[backend app]\nserver = unix:app.sock\n"
		 "server = unix:%s\nserver = unix:/run/a\"b.sock\n",
		 longpath);
	cfg = load(text);
	char third[400];
	snprintf(third, sizeof(third),
		 "f.ini:8: [backend app] server: bad address 'unix:%s' (unix: and an absolute "
		 "path of at most 107 bytes)",
		 longpath);
	const char *const want[] = {
		"f.ini:2: [frontend web] listen: bad address 'unix:/run/web.sock' (HOST:PORT here; "
		"unix: is for servers)",
		"f.ini:7: [backend app] server: bad address 'unix:app.sock' (unix: and an absolute "
		"path of at most 107 bytes)",
		third,
		"f.ini:9: [backend app] server: bad address 'unix:/run/a\"b.sock' (a Unix socket "
		"path of printable characters, no quote or backslash)",
	};
	expect_errors(cfg, want, 4);
}

Test(config, balancing_keys)
{
	struct config *cfg = load_ok(FE
				     "[backend app]\nserver = 127.0.0.1:1 maxconn=7\n"
				     "balance = leastconn\nslowstart = 30s\nbackend_maxqueue = 50\n"
				     "queue_timeout = 2s\n");
	const struct cfg_backend *be = &cfg->backends[0];

	cr_assert_eq(be->servers[0].maxconn, 7);
	cr_assert_eq(be->balance, BALANCE_LEASTCONN);
	cr_assert_eq(be->slowstart_ms, 30000);
	cr_assert_eq(be->maxqueue, 50);
	cr_assert_eq(be->queue_timeout_ms, 2000);
	config_unref(cfg);
	cfg = load(FE BE "slowstart = later\nbackend_maxqueue = 1000001\nqueue_timeout = 0\n"
			 "server = 127.0.0.1:2 maxconn=x\n");
	EXPECT_ERRORS(cfg, "f.ini:7: [backend app] slowstart: bad duration 'later'",
		      "f.ini:8: [backend app] backend_maxqueue: bad value '1000001' (0..1000000)",
		      "f.ini:9: [backend app] queue_timeout: bad duration '0' (must be greater "
		      "than 0)",
		      "f.ini:10: [backend app] server: bad maxconn 'x' (1..10000000)");
}

Test(config, accept_proxy_is_read)
{
	struct config *cfg = load_ok(
		FE "accept_proxy = any\n"
		   "accept_proxy_from = 10.0.0.0/8 , 2001:db8::/32,127.0.0.1\n" BE);
	const struct cfg_frontend *fe = &cfg->frontends[0];

	cr_assert_eq(fe->accept_proxy, ACCEPT_PROXY_ANY);
	cr_assert_eq(fe->naccept_proxy_from, 3);
	cr_assert_eq(fe->accept_proxy_from[0].bits, 8);
	cr_assert_eq(fe->accept_proxy_from[1].family, AF_INET6);
	cr_assert_eq(fe->accept_proxy_from[2].bits, 32);
	config_unref(cfg);
	cfg = load(FE "accept_proxy = v2\naccept_proxy_from = 10.0.0.0/8,,::1\n" BE);
	EXPECT_ERRORS(cfg, "f.ini:6: [frontend web] accept_proxy_from: expected 'CIDR[, CIDR...]' "
			   "(at most 64), got '10.0.0.0/8,,::1'");
}

Test(config, the_same_listen_address_twice_is_refused)
{
	struct config *cfg = load(FE "listen = 127.0.0.1:8444\n[frontend two]\n"
				     "listen = 127.0.0.1:8444\ncert = c.pem\nbackend = app\n" BE);

	EXPECT_ERRORS(cfg, "f.ini:7: [frontend two] listen: '127.0.0.1:8444' is already used at "
			   "line 5");
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
	struct config *cfg = load(
		"[global]\nuser = no-such-user-here\ngroup = no-such-group-here\n" FE BE);

	cr_assert_null(cfg);
	cr_assert_eq(errs.n, 2);
	cr_assert(strstr(errs.msgs[0], "f.ini:2: [global] user: ") == errs.msgs[0], "%s",
		  errs.msgs[0]);
	cr_assert(strstr(errs.msgs[1], "f.ini:3: [global] group: ") == errs.msgs[1], "%s",
		  errs.msgs[1]);
}

/* ---- mistakes that used to pass -t ---- */

Test(config, check_keys_the_chosen_check_does_not_use_are_errors)
{
	struct config *cfg = load(FE BE "check_send = PING\\r\\n\ncheck_expect = +PONG\n"
					"[backend b]\nserver = 127.0.0.1:9002\ncheck = none\n"
					"check_expect = ok\n");

	EXPECT_ERRORS(cfg,
		      "f.ini:7: [backend app] check_send: not used by check = tcp (set check = "
		      "send-expect, or remove it)",
		      "f.ini:8: [backend app] check_expect: not used by check = tcp (set check = "
		      "send-expect, or remove it)",
		      "f.ini:12: [backend b] check_expect: not used by check = none (set check = "
		      "send-expect, or remove it)");
}

Test(config, send_expect_needs_check_send)
{
	struct config *cfg = load(FE BE "check = send-expect\ncheck_expect = ok\n");

	EXPECT_ERRORS(cfg, "f.ini:7: [backend app] check: send-expect requires check_send");
}

Test(config, a_file_without_frontend_is_refused)
{
	struct config *cfg = load("[global]\nworkers = 1\n" BE);

	EXPECT_ERRORS(cfg, "f.ini: no [frontend NAME] section: nothing would listen (every file "
			   "needs at least one frontend)");
}

Test(config, unknown_keys_suggest_the_nearest)
{
	struct config *cfg = load("[global]\nshutdown_timout = 1s\n" FE
				  "tls_min_versoin = TLSv1.3\n"
				  "server = 127.0.0.1:1\n" BE "check_intervl = 1s\nchek_fall = 2\n"
				  "weigth = 2\n");

	EXPECT_ERRORS(cfg,
		      "f.ini:2: [global] shutdown_timout: unknown key (did you mean "
		      "'shutdown_timeout'?)",
		      "f.ini:7: [frontend web] tls_min_versoin: unknown key (did you mean "
		      "'tls_min_version'?)",
		      "f.ini:8: [frontend web] server: unknown key (it belongs in [backend NAME])",
		      "f.ini:11: [backend app] check_intervl: unknown key (did you mean "
		      "'check_interval'?)",
		      "f.ini:12: [backend app] chek_fall: unknown key (did you mean 'check_fall'?)",
		      "f.ini:13: [backend app] weigth: unknown key");
}

Test(config, no_frontend_points_at_a_header_that_was_not_read)
{
	struct config *cfg = load("[frontnd web]\nlisten = 127.0.0.1:8443\n" BE);

	EXPECT_ERRORS(cfg,
		      "f.ini: no [frontend NAME] section: nothing would listen (see line 1: that "
		      "section was not read)",
		      "f.ini:1: [frontnd web] unknown section");
}

Test(config, a_knock_on_error_points_at_its_cause)
{
	struct config *cfg = load(FE "route = *.api.test api\n" BE "[backnd api]\n"
				     "server = 127.0.0.1:9002\n");

	EXPECT_ERRORS(cfg,
		      "f.ini:5: [frontend web] route: unknown backend 'api' (see line 8: that "
		      "section was not read)",
		      "f.ini:8: [backnd api] unknown section");
}

Test(config, shutdown_grace_defaults_to_zero_and_takes_a_duration)
{
	struct config *cfg = load_ok(FE BE);

	cr_assert_eq(cfg->shutdown_grace_ms, 0);
	config_unref(cfg);
	cfg = load_ok("[global]\nshutdown_grace = 5s\n" FE BE);
	cr_assert_eq(cfg->shutdown_grace_ms, 5000);
	config_unref(cfg);
}

/* -T prints every key of the table: a key added without its line in dump.c fails here. */
Test(config, dump_names_every_key)
{
	struct config *cfg = load_ok(FE BE);
	char *text = NULL, want[128];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	config_dump(cfg, f);
	cr_assert_eq(fclose(f), 0);
	for (size_t i = 0; i < keys_count(); i++) {
		enum sect_kind kind;
		const char *name = keys_name(i, &kind);

		snprintf(want, sizeof(want), "\n%s = ", name);
		if (strstr(text, want) == NULL) {
			snprintf(want, sizeof(want), "\n; %s = ", name);
			cr_expect_not_null(strstr(text, want), "no '%s' in:\n%s", name, text);
		}
	}
	free(text);
	config_unref(cfg);
}

/* key_update_bytes: off by default, a byte count when given, never negative. */
Test(config, key_update_bytes_is_a_byte_count)
{
	struct config *cfg = load_ok(FE BE);

	cr_assert_eq(cfg->frontends[0].key_update_bytes, 0);
	config_unref(cfg);
	cfg = load_ok(FE "key_update_bytes = 1073741824\n" BE);
	cr_assert_eq(cfg->frontends[0].key_update_bytes, 1073741824ull);
	config_unref(cfg);
	cfg = load(FE "key_update_bytes = -1\n" BE);
	EXPECT_ERRORS(cfg, "f.ini:5: [frontend web] key_update_bytes: bad value '-1' "
			   "(0..1125899906842624)");
}
