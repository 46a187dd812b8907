/* Command line: -t on good and bad files, exit codes, -V, -h, start-up failures. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(cli, .init = harness_setup, .fini = harness_teardown, .timeout = 60);

/* Every line of out+err joined, so tests do not depend on which stream a message uses. */
static char *all_output(const struct run_result *r)
{
	char *s = NULL;

	cr_assert(asprintf(&s, "%s%s", r->out, r->err) >= 0);
	return s;
}

/* Counts lines of text that start with prefix. */
static int count_prefixed(const char *text, const char *prefix)
{
	size_t pl = strlen(prefix);
	const char *p = text;
	int n = 0;

	while (p && *p) {
		n += strncmp(p, prefix, pl) == 0;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return n;
}

static int run(struct run_result *r, const char *a0, const char *a1, const char *a2, const char *a3)
{
	const char *argv[] = { a0, a1, a2, a3, NULL };

	return harness_run(r, HARNESS_TIMEOUT_MS, argv);
}

static const char *write_good_config(void)
{
	struct harness_cert a, b;

	cr_assert_eq(harness_cert_create("good", "demo.test", &a), 0);
	cr_assert_eq(harness_cert_create("api", "*.api.test", &b), 0);
	/* Relative paths: they resolve against the config file's folder. */
	return harness_write_file("good.ini",
				  "# a comment\n"
				  "[global]\n"
				  "workers = 2\n"
				  "max_connections = 100\n"
				  "log_level = warn\n"
				  "shutdown_timeout = 2s\n"
				  "\n"
				  "[frontend web]\n"
				  "listen = 127.0.0.1:%d\n"
				  "cert = good.crt\n"
				  "key = good.key\n"
				  "cert = api.crt\n"
				  "key = api.key\n"
				  "backend = app\n"
				  "route = *.api.test api\n"
				  "tls_min_version = TLSv1.2\n"
				  "handshake_timeout = 500ms\n"
				  "idle_timeout = 1m\n"
				  "\n"
				  "[backend app]\n"
				  "server = 127.0.0.1:%d weight=2\n"
				  "server = 127.0.0.1:%d\n"
				  "check = none\n"
				  "\n"
				  "[backend api]\n"
				  "server = 127.0.0.1:%d\n"
				  "check = tcp\n"
				  "check_interval = 1s\n",
				  harness_free_port(), harness_free_port(), harness_free_port(),
				  harness_free_port());
}

Test(cli, check_good_config)
{
	const char *ini = write_good_config();
	struct run_result r;
	char expect[4200];

	run(&r, "-t", "-c", ini, NULL);
	snprintf(expect, sizeof(expect), "%s: configuration OK", ini);
	cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
	cr_assert(strstr(r.out, expect) || strstr(r.err, expect), "no '%s' in: %s%s", expect, r.out,
		  r.err);
	run_result_finish(&r);
	harness_pass();
}

/* One line of the bad file; expect is the "[section] key" the error must name (NULL: the
 * line is fine). An error may also point at line + alt (for errors between two keys). */
struct bad_line {
	const char *text;
	const char *expect;
	int alt;
};

static const struct bad_line bad_lines[] = {
	{ "[global]", NULL, 0 },
	{ "workers = lots", "[global] workers:", 0 },
	{ "max_connections = -5", "[global] max_connections:", 0 },
	{ "log_level = loud", "[global] log_level:", 0 },
	{ "shutdown_timeout = 5 parsecs", "[global] shutdown_timeout:", 0 },
	{ "splice = maybe", "[global] splice:", 0 },
	{ "ktls = sometimes", "[global] ktls:", 0 },
	{ "colour = blue", "[global] colour:", 0 },
	{ "metrics = localhost", "[global] metrics:", 0 },
	{ "", NULL, 0 },
	{ "[frontend web]", NULL, 0 },
	{ "listen = 127.0.0.1:99999", "[frontend web] listen:", 0 },
	{ "listen = 127.0.0.1:18443", NULL, 0 },
	{ "cert = good.crt", NULL, 0 },
	{ "key = good.key", NULL, 0 },
	{ "backend = app", NULL, 0 },
	{ "tls_min_version = TLSv1.3", "[frontend web] tls_m", 1 },
	{ "tls_max_version = TLSv1.2", NULL, 0 },
	{ "handshake_timeout = 10 fortnights", "[frontend web] handshake_timeout:", 0 },
	{ "session_tickets = perhaps", "[frontend web] session_tickets:", 0 },
	{ "ciphers = NOT-A-CIPHER", "[frontend web] ciphers:", 0 },
	{ "handshake_timeout = 2s", "[frontend web] handshake_timeout:", 0 }, /* duplicate */
	{ "route = *.api.test nowhere", "[frontend web] route:", 0 },
	{ "proxy_protocol = v3", "[frontend web] proxy_protocol:", 0 },
	{ "accept_proxy = v3", "[frontend web] accept_proxy:", 0 },
	{ "listen = unix:/run/web.sock", "[frontend web] listen:", 0 },
	{ "proxy_protocol_tlvs = alpn, sni", "[frontend web] proxy_protocol_tlvs:", 0 },
	{ "accept_proxy_from = 10.0.0.1/8", "[frontend web] accept_proxy_from:", 0 },
	{ "idle_timeout = fast", "[frontend web] idle_timeout:", 0 },
	{ "", NULL, 0 },
	{ "[frontend nolisten]", "[frontend nolisten] listen:", 0 },
	{ "cert = good.crt", NULL, 0 },
	{ "key = good.key", NULL, 0 },
	{ "backend = app", NULL, 0 },
	{ "", NULL, 0 },
	{ "[frontend nocert]", "[frontend nocert] cert:", 0 },
	{ "listen = 127.0.0.1:18444", NULL, 0 },
	{ "backend = app", NULL, 0 },
	{ "", NULL, 0 },
	{ "[frontend badfiles]", NULL, 0 },
	{ "listen = 127.0.0.1:18445", NULL, 0 },
	{ "cert = does-not-exist.crt", "[frontend badfiles] cert:", 0 },
	{ "key = good.key", NULL, 0 },
	{ "backend = app", NULL, 0 },
	{ "", NULL, 0 },
	{ "[frontend mismatch]", NULL, 0 },
	{ "listen = 127.0.0.1:18446", NULL, 0 },
	{ "cert = mis.crt", "[frontend mismatch] ", 1 },
	{ "key = mis.key", NULL, 0 },
	{ "backend = app", NULL, 0 },
	{ "", NULL, 0 },
	{ "[frontend lost]", NULL, 0 },
	{ "listen = 127.0.0.1:18447", NULL, 0 },
	{ "cert = good.crt", NULL, 0 },
	{ "key = good.key", NULL, 0 },
	{ "backend = ghost", "[frontend lost] backend:", 0 },
	{ "", NULL, 0 },
	{ "[backend app]", NULL, 0 },
	{ "server = 127.0.0.1:9001", NULL, 0 },
	{ "server = 127.0.0.1:9002 weight=0", "[backend app] server:", 0 },
	{ "server = 127.0.0.1:9003 weight=999", "[backend app] server:", 0 },
	{ "server = 127.0.0.1:70000", "[backend app] server:", 0 },
	{ "server = 127.0.0.1:9004 maxconn=0", "[backend app] server:", 0 },
	{ "server = unix:app.sock", "[backend app] server:", 0 },
	{ "balance = random", "[backend app] balance:", 0 },
	{ "slowstart = soon", "[backend app] slowstart:", 0 },
	{ "backend_maxqueue = -1", "[backend app] backend_maxqueue:", 0 },
	{ "queue_timeout = 0", "[backend app] queue_timeout:", 0 },
	{ "retries = many", "[backend app] retries:", 0 },
	{ "check = ping", "[backend app] check:", 0 },
	{ "check_interval = soon", "[backend app] check_interval:", 0 },
	{ "", NULL, 0 },
	{ "[backend empty]", "[backend empty] server:", 0 },
	{ "check = none", NULL, 0 },
	{ "", NULL, 0 },
	{ "[listener extra]", "", 0 }, /* unknown section: reported at its header */
	{ "port = 1", NULL, 0 },
};

#define NBAD (sizeof(bad_lines) / sizeof(bad_lines[0]))

static const char *write_bad_config(int *nexpected)
{
	struct harness_cert good, mis;
	char *text = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&text, &len);
	const char *path;

	cr_assert_eq(harness_cert_create("good", "demo.test", &good), 0);
	cr_assert_eq(harness_cert_create_mismatched("mis", "mis.test", &mis), 0);
	*nexpected = 0;
	for (i = 0; i < NBAD; i++) {
		fprintf(f, "%s\n", bad_lines[i].text);
		*nexpected += bad_lines[i].expect != NULL;
	}
	fclose(f);
	path = harness_write_file("bad.ini", "%s", text);
	free(text);
	return path;
}

/* True if some line of out starts with "FILE:LINE: " + expect for LINE = line or line+alt. */
static bool has_error(const char *out, const char *file, int line, const struct bad_line *bl)
{
	char prefix[4400];
	int l;

	for (l = line; l <= line + bl->alt; l++) {
		snprintf(prefix, sizeof(prefix), "%s:%d: %s", file, l, bl->expect);
		if (count_prefixed(out, prefix) > 0)
			return true;
	}
	return false;
}

Test(cli, check_reports_every_error_with_its_line)
{
	int nexpected;
	const char *ini = write_bad_config(&nexpected);
	struct run_result r;
	char prefix[4200];
	char *out;
	size_t i;

	cr_assert_geq(nexpected, 20);
	run(&r, "-t", "-c", ini, NULL);
	out = all_output(&r);
	cr_assert_eq(r.status, 1, "exit %d", r.status);
	for (i = 0; i < NBAD; i++) {
		if (bad_lines[i].expect)
			cr_expect(has_error(out, ini, (int)i + 1, &bad_lines[i]),
				  "no error '%s' at line %zu (%s); output:\n%s",
				  bad_lines[i].expect, i + 1, bad_lines[i].text, out);
	}
	snprintf(prefix, sizeof(prefix), "%s:", ini);
	cr_assert_eq(count_prefixed(out, prefix), nexpected, "expected %d errors, output:\n%s",
		     nexpected, out);
	cr_assert(strstr(out, "configuration OK") == NULL);
	free(out);
	run_result_finish(&r);
	harness_pass();
}

/* Errors only the TLS set-up finds (the file itself parses): each at its own line. */
Test(cli, check_reports_tls_errors)
{
	static const struct {
		int line;
		const char *what;
	} want[] = {
		{ 5, "[frontend a] ciphers:" }, { 10, "[frontend b] ciphersuites:" },
		{ 17, "[frontend c] " }, /* mismatched key: cert line 17 or key line 18 */
		{ 24, "[frontend d] key:" },    { 31, "[frontend e] client_ca:" },
	};
	struct harness_cert good, mis;
	const char *ini;
	struct run_result r;
	char prefix[4200];
	char *out;
	size_t i;

	cr_assert_eq(harness_cert_create("good", "demo.test", &good), 0);
	cr_assert_eq(harness_cert_create_mismatched("mis", "mis.test", &mis), 0);
	ini = harness_write_file(
		"tls.ini",
		"[frontend a]\nlisten = 127.0.0.1:18443\ncert = good.crt\n"
		"key = good.key\nciphers = NOT-A-CIPHER\nbackend = app\n\n"
		"[frontend b]\nlisten = 127.0.0.1:18444\nciphersuites = TLS_NOPE\n"
		"cert = good.crt\nkey = good.key\nbackend = app\n\n"
		"[frontend c]\nlisten = 127.0.0.1:18445\ncert = mis.crt\nkey = mis.key\n"
		"backend = app\n\n"
		"[frontend d]\nlisten = 127.0.0.1:18446\ncert = good.crt\n"
		"key = missing.key\nbackend = app\n\n"
		"[frontend e]\nlisten = 127.0.0.1:18447\ncert = good.crt\nkey = good.key\n"
		"client_ca = no-such-ca.pem\nbackend = app\n\n"
		"[backend app]\nserver = 127.0.0.1:9001\ncheck = none\n");
	run(&r, "-t", "-c", ini, NULL);
	out = all_output(&r);
	cr_assert_eq(r.status, 1, "exit %d:\n%s", r.status, out);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int n;

		snprintf(prefix, sizeof(prefix), "%s:%d: %s", ini, want[i].line, want[i].what);
		n = count_prefixed(out, prefix);
		if (want[i].line == 17) {
			snprintf(prefix, sizeof(prefix), "%s:18: %s", ini, want[i].what);
			n += count_prefixed(out, prefix);
		}
		cr_expect_eq(n, 1, "no error '%s' at line %d:\n%s", want[i].what, want[i].line,
			     out);
	}
	snprintf(prefix, sizeof(prefix), "%s:", ini);
	cr_assert_eq(count_prefixed(out, prefix), 5, "expected 5 errors:\n%s", out);
	free(out);
	run_result_finish(&r);
	harness_pass();
}

Test(cli, unknown_section_points_at_header)
{
	struct harness_cert crt;
	const char *ini;
	struct run_result r;
	char prefix[4200];
	char *out;

	cr_assert_eq(harness_cert_create("good", "demo.test", &crt), 0);
	ini = harness_write_file("u.ini",
				 "[frontend web]\nlisten = 127.0.0.1:18443\ncert = good.crt\n"
				 "key = good.key\nbackend = app\n\n[backend app]\n"
				 "server = 127.0.0.1:9001\ncheck = none\n\n[pool x]\n"
				 "server = 127.0.0.1:9002\n");
	run(&r, "-t", "-c", ini, NULL);
	out = all_output(&r);
	cr_assert_eq(r.status, 1);
	snprintf(prefix, sizeof(prefix), "%s:11: ", ini);
	cr_assert_eq(count_prefixed(out, prefix), 1, "no error at line 11:\n%s", out);
	snprintf(prefix, sizeof(prefix), "%s:", ini);
	cr_assert_eq(count_prefixed(out, prefix), 1, "one error expected:\n%s", out);
	free(out);
	run_result_finish(&r);
	harness_pass();
}

Test(cli, missing_config_file_is_1)
{
	struct run_result r;

	run(&r, "-t", "-c", harness_path("nope.ini"), NULL);
	cr_assert_eq(r.status, 1, "-t: exit %d", r.status);
	run_result_finish(&r);
	run(&r, "-c", harness_path("nope.ini"), NULL, NULL);
	cr_assert_eq(r.status, 1, "run: exit %d", r.status);
	cr_assert(strlen(r.err) > 0, "no message on stderr");
	run_result_finish(&r);
	harness_pass();
}

Test(cli, bad_flag_is_2)
{
	struct run_result r;

	run(&r, "--no-such-flag", NULL, NULL, NULL);
	cr_assert_eq(r.status, 2, "exit %d", r.status);
	run_result_finish(&r);
	run(&r, "-t", "-c", write_good_config(), "extra-arg");
	cr_assert_eq(r.status, 2, "stray argument: exit %d", r.status);
	run_result_finish(&r);
	harness_pass();
}

Test(cli, bad_log_level_is_2)
{
	const char *ini = write_good_config();
	struct run_result r;
	const char *argv[] = { "-t", "-c", ini, "-l", "loud", NULL };

	harness_run(&r, HARNESS_TIMEOUT_MS, argv);
	cr_assert_eq(r.status, 2, "exit %d", r.status);
	run_result_finish(&r);
	harness_pass();
}

Test(cli, version)
{
	struct run_result r;
	char *out;

	run(&r, "-V", NULL, NULL, NULL);
	out = all_output(&r);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(out, "0.1.0"), "no tlsplice version in: %s", out);
	cr_assert(strstr(out, OPENSSL_VERSION_STR), "no OpenSSL version in: %s", out);
	cr_assert(strcasestr(out, "libevent") && strstr(out, "2.1"), "no libevent in: %s", out);
	cr_assert(strcasestr(out, "ktls"), "no kTLS status in: %s", out);
	free(out);
	run_result_finish(&r);
	harness_pass();
}

Test(cli, help)
{
	struct run_result r;

	run(&r, "-h", NULL, NULL, NULL);
	cr_assert_eq(r.status, 0);
	cr_assert(strcasestr(r.out, "usage") && strstr(r.out, "-c") && strstr(r.out, "-t"),
		  "no usage on stdout: %s", r.out);
	run_result_finish(&r);
	harness_pass();
}

/* A plain listener without SO_REUSEPORT on the port the proxy wants. */
static int occupy_port(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(fd >= 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fd, 8), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

Test(cli, cannot_bind_is_3)
{
	struct harness_cert crt;
	int port, fd = occupy_port(&port);
	const char *ini;
	struct run_result r;

	cr_assert_eq(harness_cert_create("c", "demo.test", &crt), 0);
	ini = harness_write_file(
		"busy.ini",
		"[frontend web]\nlisten = 127.0.0.1:%d\ncert = %s\nkey = %s\n"
		"backend = app\n[backend app]\nserver = 127.0.0.1:%d\ncheck = none\n",
		port, crt.cert, crt.key, harness_free_port());
	run(&r, "-c", ini, NULL, NULL);
	cr_assert_eq(r.status, 3, "exit %d, stderr: %s", r.status, r.err);
	cr_assert(strlen(r.err) > 0, "no reason on stderr");
	run_result_finish(&r);
	close(fd);
	harness_pass();
}

/* ---- files the config names: regular files of bounded size only ---- */

/* Runs -t on a frontend whose ticket_keys, cert or client_ca line (fe_line, line 4) names
 * path; expects exit 1 within the deadline and one error at line 4 saying why. */
static void check_refuses_file(const char *fe_line, const char *path, const char *why)
{
	struct harness_cert crt;
	struct run_result r;
	char want[4400];

	cr_assert_eq(harness_cert_create("good", "demo.test", &crt), 0);
	const char *ini = harness_write_file(
		"f.ini",
		"[frontend web]\nlisten = 127.0.0.1:18443\ncert = good.crt\n%s = %s\n"
		"key = good.key\nbackend = app\n[backend app]\nserver = 127.0.0.1:9001\n",
		fe_line, path);
	int64_t t0 = harness_now_ms();
	run(&r, "-t", "-c", ini, NULL);
	char *out = all_output(&r);
	cr_assert_eq(r.status, 1, "exit %d after %lld ms (-1: still running):\n%s", r.status,
		     (long long)(harness_now_ms() - t0), out);
	snprintf(want, sizeof(want), "%s:4: [frontend web] %s: cannot read '%s': %s", ini, fe_line,
		 path, why);
	cr_assert(strstr(out, want), "no '%s' in:\n%s", want, out);
	free(out);
	run_result_finish(&r);
}

Test(cli, ticket_keys_on_dev_zero_fails_fast)
{
	check_refuses_file("ticket_keys", "/dev/zero", "not a regular file");
	harness_pass();
}

Test(cli, ticket_keys_on_a_fifo_fails_fast)
{
	const char *fifo = harness_path("keys.fifo");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	check_refuses_file("ticket_keys", fifo, "not a regular file");
	harness_pass();
}

Test(cli, client_ca_on_a_fifo_fails_fast)
{
	const char *fifo = harness_path("ca.fifo");
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	check_refuses_file("client_ca", fifo, "not a regular file");
	harness_pass();
}

Test(cli, ticket_keys_over_the_size_limit_is_refused)
{
	const char *big = harness_write_file("big.keys", "# padding follows\n");
	cr_assert_eq(truncate(big, 4 * 1024 * 1024 + 1), 0);
	check_refuses_file("ticket_keys", big, "larger than 4 MiB");
	harness_pass();
}

Test(cli, config_file_on_a_fifo_or_device_fails_fast)
{
	const char *fifo = harness_path("f.fifo");
	const char *paths[] = { "/dev/zero", fifo };
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	for (size_t i = 0; i < 2; i++) {
		struct run_result r;
		char want[4200];
		run(&r, "-t", "-c", paths[i], NULL);
		char *out = all_output(&r);
		cr_assert_eq(r.status, 1, "%s: exit %d (-1: still running):\n%s", paths[i],
			     r.status, out);
		snprintf(want, sizeof(want), "%s: cannot open: not a regular file", paths[i]);
		cr_assert(strstr(out, want), "no '%s' in:\n%s", want, out);
		free(out);
		run_result_finish(&r);
	}
	harness_pass();
}

/* ---- messages that quote input ---- */

Test(cli, control_bytes_in_values_never_reach_the_terminal)
{
	const char *ini = harness_write_file(
		"esc.ini", "[global]\nworkers = \033]0;owned\007\033[2J\n[fr\033[5montend x]\n"
			   "[backend app]\nserver = 127.0.0.1:9001\ncheck_expect = ok\n"
			   "check = \x9b"
			   "31m\n");
	struct run_result r;
	run(&r, "-t", "-c", ini, NULL);
	char *out = all_output(&r);
	cr_assert_eq(r.status, 1, "exit %d:\n%s", r.status, out);
	for (const char *p = out; *p; p++)
		cr_assert(*p == '\n' || (*p >= 0x20 && *p < 0x7f), "raw byte 0x%02x in:\n%s",
			  (unsigned char)*p, out);
	cr_assert(strstr(out, "workers: bad value '\\x1b]0;owned\\x07\\x1b[2J'"), "%s", out);
	cr_assert(strstr(out, "[fr\\x1b[5montend x] unknown section"), "%s", out);
	cr_assert(strstr(out, "check: bad value '\\x9b31m'"), "%s", out);
	free(out);
	run_result_finish(&r);
	harness_pass();
}

Test(cli, control_bytes_in_start_up_errors_never_reach_the_terminal)
{
	struct harness_cert crt;
	int port = harness_free_port();
	cr_assert_eq(harness_cert_create("esc", "esc.test", &crt), 0);
	const char *ini = harness_config_web("esc-log.ini", port, &crt,
					     "access_log = /nonexistent-\033[31m/red.log\n", NULL,
					     "[backend app]\nserver = 127.0.0.1:9001\n");
	struct run_result r;
	run(&r, "-c", ini, NULL, NULL);
	char *out = all_output(&r);
	cr_assert_eq(r.status, 3, "exit %d:\n%s", r.status, out);
	for (const char *p = out; *p; p++)
		cr_assert(*p == '\n' || (*p >= 0x20 && *p < 0x7f), "raw byte 0x%02x in:\n%s",
			  (unsigned char)*p, out);
	cr_assert(strstr(out, "/nonexistent-\\x1b[31m/red.log"), "%s", out);
	free(out);
	run_result_finish(&r);
	harness_pass();
}

Test(cli, control_bytes_in_arguments_never_reach_the_terminal)
{
	struct run_result r;
	run(&r, "-l", "\033[31m", "x\033[2J", NULL);
	char *out = all_output(&r);
	cr_assert_eq(r.status, 2, "exit %d:\n%s", r.status, out);
	cr_assert_null(strchr(out, '\033'), "raw ESC in:\n%s", out);
	cr_assert(strstr(out, "bad log level '\\x1b[31m'"), "%s", out);
	free(out);
	run_result_finish(&r);
	harness_pass();
}

Test(cli, certificate_errors_and_parse_errors_come_in_file_order)
{
	struct harness_cert mis;
	cr_assert_eq(harness_cert_create_mismatched("mis", "mis.test", &mis), 0);
	/* the key mismatch is found after parsing (when TLS is set up), the bad port while
	 * parsing: the output still follows the file */
	const char *ini = harness_write_file(
		"order.ini",
		"[frontend web]\nlisten = 127.0.0.1:8443\ncert = %s\nkey = %s\nbackend = app\n\n"
		"[backend app]\nserver = 127.0.0.1:99999\n",
		mis.cert, mis.key);
	struct run_result r;
	run(&r, "-t", "-c", ini, NULL);
	char *out = all_output(&r);
	cr_assert_eq(r.status, 1, "exit %d:\n%s", r.status, out);
	const char *key_err = strstr(out, "order.ini:4: [frontend web] key:");
	const char *port_err = strstr(out, "order.ini:8: [backend app] server:");
	cr_assert(key_err && port_err, "%s", out);
	cr_assert_lt(key_err, port_err, "line 4's error must come before line 8's:\n%s", out);
	free(out);
	run_result_finish(&r);
	harness_pass();
}

/* ---- checks -t makes that start-up would otherwise be the first to make ---- */

Test(cli, ktls_on_is_checked_by_t)
{
	struct harness_cert crt;
	struct run_result r;
	cr_assert_eq(harness_cert_create("k", "demo.test", &crt), 0);
	const char *ini = harness_config_web("ktls.ini", 18443, &crt, "ktls = on", NULL,
					     "[backend app]\nserver = 127.0.0.1:9001\n");
	run(&r, "-V", NULL, NULL, NULL);
	bool both = strstr(r.out, "kTLS: available (tx, rx)") != NULL;
	run_result_finish(&r);
	run(&r, "-t", "-c", ini, NULL);
	char *out = all_output(&r);
	if (both) {
		cr_assert_eq(r.status, 0, "kTLS both ways here, yet:\n%s", out);
	} else {
		char want[4200];
		snprintf(want, sizeof(want), "%s:2: [global] ktls: on, but kTLS: not available",
			 ini);
		cr_assert_eq(r.status, 1, "exit %d:\n%s", r.status, out);
		cr_assert(strstr(out, want), "no '%s' in:\n%s", want, out);
		cr_assert(strstr(out, "configuration OK") == NULL, "%s", out);
	}
	free(out);
	run_result_finish(&r);
	harness_pass();
}

Test(cli, certificate_and_key_errors_in_operator_words)
{
	struct harness_cert a, mis;
	cr_assert_eq(harness_cert_create("a", "a.test", &a), 0);
	cr_assert_eq(harness_cert_create_mismatched("mis", "mis.test", &mis), 0);
	const char *ini = harness_write_file(
		"words.ini",
		"[frontend nokey]\nlisten = 127.0.0.1:18443\ncert = a.crt\nbackend = app\n" /* 1-4 */
		"[frontend mismatch]\nlisten = 127.0.0.1:18444\ncert = mis.crt\n" /* 5-7 */
		"key = mis.key\nbackend = app\n"                                  /* 8-9 */
		"[frontend swapped]\nlisten = 127.0.0.1:18445\ncert = a.key\n"    /* 10-12 */
		"key = a.key\nbackend = app\n"                                    /* 13-14 */
		"[backend app]\nserver = 127.0.0.1:9001\n");
	struct run_result r;
	run(&r, "-t", "-c", ini, NULL);
	char *out = all_output(&r);
	cr_assert_eq(r.status, 1, "exit %d:\n%s", r.status, out);
	char *want[3];
	cr_assert(asprintf(&want[0],
			   "%s:3: [frontend nokey] cert: no private key in '%s' (add a key line "
			   "after this cert, or append the key to the file)\n",
			   ini, a.cert) > 0);
	cr_assert(asprintf(&want[1],
			   "%s:8: [frontend mismatch] key: key '%s' does not match certificate "
			   "'%s'\n",
			   ini, mis.key, mis.cert) > 0);
	cr_assert(asprintf(&want[2], "%s:12: [frontend swapped] cert: no certificate in '%s'\n",
			   ini, a.key) > 0);
	for (int i = 0; i < 3; i++) {
		cr_expect(strstr(out, want[i]), "no '%s' in:\n%s", want[i], out);
		free(want[i]);
	}
	cr_assert(strstr(out, "PEM lib") == NULL && strstr(out, "key values mismatch") == NULL,
		  "OpenSSL's wording leaked:\n%s", out);
	free(out);
	run_result_finish(&r);
	harness_pass();
}

/* "YYYY-MM-DD" of now + days. */
static void date_in(int days, char *out, size_t len)
{
	time_t t = time(NULL) + (time_t)days * 86400;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%d", &tm);
}

Test(cli, certificates_near_expiry_are_warned_of_with_the_date)
{
	struct harness_cert soon, gone, fine;
	cr_assert_eq(harness_cert_create_days("soon", "soon.test", 5, &soon), 0);
	cr_assert_eq(harness_cert_create_days("gone", "gone.test", -1, &gone), 0);
	cr_assert_eq(harness_cert_create_days("fine", "fine.test", 60, &fine), 0);
	const char *ini = harness_write_file(
		"exp.ini",
		"[frontend web]\nlisten = 127.0.0.1:18443\ncert = soon.crt\nkey = soon.key\n"
		"cert = gone.crt\nkey = gone.key\ncert = fine.crt\nkey = fine.key\nbackend = app\n"
		"[backend app]\nserver = 127.0.0.1:9001\n");
	struct run_result r;
	run(&r, "-t", "-c", ini, NULL);
	char *out = all_output(&r);
	cr_assert_eq(r.status, 0, "a warning is not an error:\n%s", out);
	char day[16], want[4400];
	date_in(5, day, sizeof(day));
	snprintf(want, sizeof(want), "%s:3: [frontend web] cert: certificate '%s' expires on %s",
		 ini, soon.cert, day);
	cr_assert(strstr(out, want), "no '%s' in:\n%s", want, out);
	/* whole days left: 5, or 4 once a second has passed since the certificate was made */
	cr_assert(strstr(out, "(in 4 days)") || strstr(out, "(in 5 days)"), "%s", out);
	date_in(-1, day, sizeof(day));
	snprintf(want, sizeof(want), "%s:5: [frontend web] cert: certificate '%s' expired on %s",
		 ini, gone.cert, day);
	cr_assert(strstr(out, want), "no '%s' in:\n%s", want, out);
	cr_assert(strstr(out, "fine.crt") == NULL, "60 days left is no news:\n%s", out);
	free(out);
	run_result_finish(&r);
	harness_pass();
}

Test(cli, certificate_expiry_is_a_metric)
{
	struct harness_cert soon;
	int port = harness_free_port(), mport = harness_free_port();
	cr_assert_eq(harness_cert_create_days("soon", "soon.test", 5, &soon), 0);
	char global[64];
	snprintf(global, sizeof(global), "metrics = 127.0.0.1:%d", mport);
	const char *ini = harness_config_web(
		"m.ini", port, &soon, global, NULL,
		"[backend app]\nserver = 127.0.0.1:9001\ncheck = none\n");
	struct proxy *p = proxy_start(ini, port);
	cr_assert(p);
	char *m = harness_http_get(mport, "/metrics", HARNESS_TIMEOUT_MS);
	cr_assert(m);
	char series[4400];
	snprintf(series, sizeof(series),
		 "tlsplice_certificate_expiry_seconds{frontend=\"web\",cert=\"%s\"}", soon.cert);
	double v = metrics_value(m, series);
	cr_assert(v > 5 * 86400 - 600 && v <= 5 * 86400, "%s = %f in:\n%s", series, v, m);
	free(m);
	proxy_stop(p, HARNESS_TIMEOUT_MS);
	harness_pass();
}

/* ---- -v and -T ---- */

Test(cli, lower_case_v_is_version)
{
	struct run_result r, R;
	run(&r, "-v", NULL, NULL, NULL);
	run(&R, "-V", NULL, NULL, NULL);
	cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
	cr_assert_str_eq(r.out, R.out);
	run_result_finish(&r);
	run_result_finish(&R);
	harness_pass();
}

Test(cli, dump_prints_the_effective_configuration)
{
	struct harness_cert crt;
	cr_assert_eq(harness_cert_create("d", "demo.test", &crt), 0);
	const char *ini = harness_write_file(
		"dump.ini",
		"[global]\nshutdown_timeout = 90s\n[frontend web]\nlisten = 127.0.0.1:18443\n"
		"cert = d.crt\nkey = d.key\nbackend = app\nalpn = h2, http/1.1\n"
		"[backend app]\nserver = 127.0.0.1:9001 weight=3\ncheck = send-expect\n"
		"check_send = AUTH hunter2\\r\\n\ncheck_expect = +OK\n");
	struct run_result r;
	run(&r, "-T", "-c", ini, NULL);
	cr_assert_eq(r.status, 0, "exit %d:\n%s%s", r.status, r.out, r.err);
	static const char *const want[] = {
		"[global]\n",
		"\nshutdown_timeout = 90s\n",  /* as set, in its largest unit */
		"\nshutdown_grace = 0\n",      /* defaults filled in */
		"\nmax_connections = 10000\n", /* */
		"\n[frontend web]\n",          /* */
		"\nhandshake_timeout = 10s\n", /* */
		"\nalpn = h2,http/1.1\n",      /* */
		"\n[backend app]\n",           /* */
		"\nserver = 127.0.0.1:9001 weight=3\n",
		"\nretries = 2\n", /* */
		"\ncheck_send = (elided: 14 bytes)\n",
		"\ncheck_expect = +OK\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect(strstr(r.out, want[i]), "no '%s' in:\n%s", want[i], r.out);
	char line[8400];
	snprintf(line, sizeof(line), "\ncert = %s\nkey = %s\n", crt.cert, crt.key);
	cr_assert(strstr(r.out, line), "paths are not resolved: no '%s' in:\n%s", line, r.out);
	cr_assert(strstr(r.out, "hunter2") == NULL, "a secret leaked:\n%s", r.out);
	run_result_finish(&r);

	/* a file that does not pass -t prints its errors and no configuration */
	ini = harness_write_file("dump-bad.ini", "[frontend web]\nlisten = x\n");
	run(&r, "-T", "-c", ini, NULL);
	cr_assert_eq(r.status, 1, "exit %d", r.status);
	cr_assert(strstr(r.out, "[global]") == NULL, "%s", r.out);
	run_result_finish(&r);
	harness_pass();
}
