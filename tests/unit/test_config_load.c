/* config: the loader as a whole: every error at once, the line reader, paths, lifetime, the
 * demo config, loading from memory, quoting in messages and the files a config names. */
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

/* ---- all errors, not just the first ---- */

Test(config, every_mistake_is_reported_with_its_line)
{
	struct config *cfg;

	write_file("k.pem", "key\n");
	cfg = load("workers = 2\n"                      /* 1 */
		   "[global]\n"                         /* 2 */
		   "workers = 0\n"                      /* 3 */
		   "max_connections = 10000001\n"       /* 4 */
		   "log_level = loud\n"                 /* 5 */
		   "ktls = maybe\n"                     /* 6 */
		   "splice = perhaps\n"                 /* 7 */
		   "shutdown_timeout = 10x\n"           /* 8 */
		   "this line is junk\n"                /* 9 */
		   "[frontnd web]\n"                    /* 10 */
		   "listen = nonsense\n"                /* 11: skipped with its section */
		   "[frontend web]\n"                   /* 12 */
		   "listen = 127.0.0.1:99999\n"         /* 13 */
		   "listen = 127.0.0.1\n"               /* 14 */
		   "key = k.pem\n"                      /* 15 */
		   "cert = missing.pem\n"               /* 16 */
		   "backend = nowhere\n"                /* 17 */
		   "backend = app\n"                    /* 18 */
		   "route = *.api.test ghost\n"         /* 19 */
		   "route = bad..pattern app\n"         /* 20 */
		   "tls_min_version = TLSv1.1\n"        /* 21 */
		   "alpn = h2,,http/1.1\n"              /* 22 */
		   "handshake_timeout = 0\n"            /* 23 */
		   "idle_timeout = -1\n"                /* 24 */
		   "session_tickets = maybe\n"          /* 25 */
		   "colour = blue\n"                    /* 26 */
		   "[backend app]\n"                    /* 27 */
		   "server = 127.0.0.1:9001 weight=0\n" /* 28 */
		   "server = 127.0.0.1:9002 heavy\n"    /* 29 */
		   "balance = random\n"                 /* 30 */
		   "retries = 101\n"                    /* 31 */
		   "check = send-expect\n"              /* 32 */
		   "check_send = PING\\q\n"             /* 33 */
		   "check_rise = 0\n"                   /* 34 */
		   "chek = tcp\n"                       /* 35 */
		   "[backend app]\n"                    /* 36 */
		   "[backend]\n");                      /* 37 */
	EXPECT_ERRORS(
		cfg,
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
		"f.ini:16: [frontend web] cert: cannot read '@/missing.pem': No such file or "
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
		"f.ini:28: [backend app] server: weight 0 is not supported (1..256): to stop new "
		"connections to a server, run 'tlsplice ctl set server BACKEND/ADDR state drain', "
		"or remove its line and reload; open connections finish",
		"f.ini:29: [backend app] server: unknown server option 'heavy' (weight=N, "
		"maxconn=N, backup)",
		"f.ini:30: [backend app] balance: bad value 'random' (roundrobin, leastconn)",
		"f.ini:31: [backend app] retries: bad value '101' (0..100)",
		"f.ini:32: [backend app] check: send-expect requires check_expect",
		"f.ini:33: [backend app] check_send: bad escape '\\q'",
		"f.ini:34: [backend app] check_rise: bad value '0' (1..1000)",
		"f.ini:35: [backend app] chek: unknown key (did you mean 'check'?)",
		"f.ini:36: [backend app] duplicate section (first at line 27)",
		"f.ini:37: [backend] missing name");
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
	cr_assert_str_eq(errs.msgs[1], "f.ini:7: [frontend web] retries: unknown key (it belongs "
				       "in [backend NAME])");
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
				     "check = send-expect\ncheck_send = x\n"
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
	struct config *cfg = load_ok(FE BE
				     "check = send-expect\n"
				     "check_send = \" HELO x\\r\\n\"\ncheck_expect = \"250 \"\n");

	cr_assert_eq(cfg->backends[0].check_send_len, 9);
	cr_assert_eq(memcmp(cfg->backends[0].check_send, " HELO x\r\n", 9), 0);
	cr_assert_str_eq(cfg->backends[0].check_expect, "250 ");
	config_unref(cfg);
}

/* ---- paths ---- */

Test(config, relative_paths_resolve_against_the_config_folder)
{
	char want[PATH_MAX + 128];
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
	snprintf(want, sizeof(want),
		 "sub/f.ini:3: [frontend web] cert: cannot read '%s/sub/c.pem': No such file or "
		 "directory",
		 realdir);
	cr_assert_str_eq(errs.msgs[0], want);
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
	EXPECT_ERRORS(cfg, "f.ini:3: [frontend web] cert: cannot read '@/dir.pem': Is a directory");
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
	EXPECT_ERRORS(
		cfg,
		"f.ini: no [frontend NAME] section: nothing would listen (see line 1: that section "
		"was not read)",
		"f.ini:1: [oops] unknown section");
}

/* ---- quoting input in messages ---- */

Test(config, control_bytes_in_keys_values_and_section_names_are_escaped)
{
	struct config *cfg = load("[global]\n"
				  "workers = \033[31mred\n" /* 2 */
				  "wor\033kers = 1\n"       /* 3 */
				  "log_level = \x9b"
				  "2J\x01\x7f\n"                /* 4 */
				  "[frontend we\033[2J\007b]\n" /* 5 */
				  "[\033[1mfrontend web]\n"     /* 6 */
				  "[backend app]\nserver = 127.0.0.1:9001\n"
				  "check_send = \\\001\n"        /* 9 */
				  "check = \033c\n"              /* 10 */
				  "retries = 1\r\n"              /* 11 */
				  "connect_timeout = \0331s\n"); /* 12 */

	EXPECT_ERRORS(
		cfg,
		"f.ini: no [frontend NAME] section: nothing would listen (see line 5: that section "
		"was not read)",
		"f.ini:2: [global] workers: bad value '\\x1b[31mred' (auto or 1..1024)",
		"f.ini:3: [global] wor\\x1bkers: unknown key (did you mean 'workers'?)",
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
				  "cert = c.fifo\n" /* 3 */
				  "cert = max.pem\n"
				  "key = /dev/null\n"         /* 5 */
				  "client_ca = big.pem\n"     /* 6 */
				  "ticket_keys = /dev/zero\n" /* 7 */
				  "backend = app\n" BE);

	EXPECT_ERRORS(
		cfg, "f.ini:3: [frontend web] cert: cannot read '@/c.fifo': not a regular file",
		"f.ini:5: [frontend web] key: cannot read '/dev/null': not a regular file",
		"f.ini:6: [frontend web] client_ca: cannot read '@/big.pem': larger than 4 MiB",
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

Test(config, the_demo_config_says_how_to_make_its_certificate)
{
	char src[PATH_MAX], cmd[PATH_MAX * 2], want[512], text[512];
	struct config *cfg;
	int line = 0, cert_line = 0;

	snprintf(src, sizeof(src), "%s/config/tlsplice.ini", TLSPLICE_SOURCE_DIR);
	snprintf(cmd, sizeof(cmd), "cp '%s' f.ini", src);
	cr_assert_eq(system(cmd), 0);
	FILE *f = fopen("f.ini", "r");
	cr_assert_not_null(f);
	while (cert_line == 0 && fgets(text, sizeof(text), f) != NULL)
		if (++line && strncmp(text, "cert = demo.pem", 15) == 0)
			cert_line = line;
	fclose(f);
	cr_assert_neq(cert_line, 0, "the demo config has no 'cert = demo.pem' line");
	snprintf(want, sizeof(want),
		 "f.ini:%d: [frontend demo] cert: cannot read '@/demo.pem': No such file or "
		 "directory (scripts/demo.sh makes the demo certificate, or see \"Building by "
		 "hand\" in README.md)",
		 cert_line);
	const char *const expected[] = { want };
	cfg = config_load("f.ini", &errs, &warns);
	expect_errors(cfg, expected, 1);
}
