/* client_crl: CRLs checked against every certificate of a client's chain. A revoked client
 * gets handshake_failed with the revocation named in the log; a CA of the chain revoked by
 * its issuer revokes its clients; the file is re-read on reload; -t reports bad files. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/ssl.h>

#include "expect.h"
#include "harness.h"
#include "pki.h"

TestSuite(crl, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

#define T HARNESS_TIMEOUT_MS

static struct proxy *start_watching(int port, const char *ca, const char *crl, struct backend *b,
				    bool watch)
{
	struct harness_cert crt;
	char fe[9000], be[256];
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	snprintf(fe, sizeof(fe), "client_ca = %s\nclient_crl = %s\n", ca, crl);
	snprintf(be, sizeof(be), "[backend app]\nserver = %s\ncheck = none\n", backend_addr(b));
	const char *ini = harness_config_web("c.ini", port, &crt,
					     watch ? "watch = on\n" : "watch = off\n", fe, be);
	cr_assert(ini);
	struct proxy *p = proxy_start(ini, port);
	cr_assert(p, "proxy did not start");
	return p;
}

static struct proxy *start(int port, const char *ca, const char *crl, struct backend *b)
{
	return start_watching(port, ca, crl, b, false);
}

/* One TLS 1.2 echo presenting cl's chain: true if it came back. */
static bool echo_as(int port, const struct harness_cert *cl)
{
	struct tlsc_opts o = { .sni = "demo.test", .max_version = TLS1_2_VERSION };
	struct tlsc *c = tlsc_open("127.0.0.1", port, &o);
	char buf[8];
	cr_assert(c);
	cr_assert(SSL_use_certificate_chain_file(tlsc_ssl(c), cl->cert) == 1 &&
		  SSL_use_PrivateKey_file(tlsc_ssl(c), cl->key, SSL_FILETYPE_PEM) == 1);
	bool ok = tlsc_handshake(c, T) == 1 && tlsc_write_all(c, "ping", 4, T) == 0 &&
		  tlsc_read(c, buf, sizeof(buf), T) == 4;
	tlsc_close(c);
	return ok;
}

/* The access log has a handshake_failed line whose error ends with why. */
static void expect_refusal(struct proxy *p, const char *why)
{
	char *line = alog_wait_find(proxy_access_log(p), "close", "handshake_failed", T);
	char err[256];
	cr_assert(line, "no handshake_failed line");
	cr_assert_eq(json_str(line, "error", err, sizeof(err)), 0);
	cr_assert(strstr(err, why), "error '%s', want '%s'", err, why);
	free(line);
}

Test(crl, a_revoked_client_is_refused_and_the_other_is_not)
{
	struct pki_ca ca;
	struct harness_cert good, bad;
	const char *crl = harness_path("ca.crl");
	const long revoked[] = { 3 };
	cr_assert_eq(pki_ca_create(&ca, "ca", NULL, 1), 0);
	cr_assert_eq(pki_client_create(&ca, "good", 2, &good), 0);
	cr_assert_eq(pki_client_create(&ca, "bad", 3, &bad), 0);
	cr_assert_eq(pki_crl_append(&ca, crl, revoked, 1), 0);
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	struct proxy *p = start(port, ca.path, crl, b);

	cr_assert(echo_as(port, &good), "the client not revoked was refused");
	cr_assert_not(echo_as(port, &bad), "the revoked client got through");
	expect_refusal(p, "certificate verify failed: certificate revoked");
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 2, T), 2);
	cr_assert_eq(alog_count(proxy_access_log(p), "close", "client_eof"), 1);
	cr_assert_eq(backend_accepted(b), 1, "the revoked client reached the backend");
	pki_ca_finish(&ca);
	cr_assert_eq(proxy_stop(p, T), 0);
	harness_pass();
}

/* Waits for the reload, then (bounded) until a handshake as cl is refused. */
static void wait_refused_after_reload(struct proxy *p, int port, const struct harness_cert *cl)
{
	int64_t end = harness_now_ms() + T;
	char *err = NULL;
	while (harness_now_ms() < end) {
		free(err);
		err = harness_read_file(proxy_stderr_path(p), NULL);
		if (err && strstr(err, "configuration reloaded"))
			break;
		usleep(20000);
	}
	cr_assert(err && strstr(err, "configuration reloaded"), "no reload in:\n%s", err);
	free(err);
	bool ok = true;
	for (int i = 0; i < 100 && ok; i++)
		ok = echo_as(port, cl);
	cr_assert_not(ok, "still accepted after the reload");
}

/* root -> intermediate -> client: the root's CRL revoking the intermediate refuses the client,
 * whose own certificate is not revoked. One file holds both CAs' CRLs; a reload re-reads it. */
Test(crl, a_revoked_intermediate_refuses_its_clients_after_a_reload)
{
	struct pki_ca root, inter;
	struct harness_cert cl;
	const char *crl = harness_path("chain.crl");
	const long inter_serial[] = { 10 };
	cr_assert_eq(pki_ca_create(&root, "root", NULL, 1), 0);
	cr_assert_eq(pki_ca_create(&inter, "inter", &root, 10), 0);
	cr_assert_eq(pki_client_create(&inter, "client", 20, &cl), 0);
	cr_assert_eq(pki_crl_append(&root, crl, NULL, 0), 0);
	cr_assert_eq(pki_crl_append(&inter, crl, NULL, 0), 0);
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	struct proxy *p = start(port, root.path, crl, b);
	cr_assert(echo_as(port, &cl), "refused while nothing is revoked");

	cr_assert_eq(unlink(crl), 0);
	cr_assert_eq(pki_crl_append(&root, crl, inter_serial, 1), 0);
	cr_assert_eq(pki_crl_append(&inter, crl, NULL, 0), 0);
	cr_assert_eq(proxy_signal(p, SIGHUP), 0);
	wait_refused_after_reload(p, port, &cl);
	expect_refusal(p, "certificate revoked");
	pki_ca_finish(&inter);
	pki_ca_finish(&root);
	cr_assert_eq(proxy_stop(p, T), 0);
	harness_pass();
}

/* watch follows the CRL file: a new CRL renamed into place is in force without a signal. */
Test(crl, a_crl_replaced_on_disk_is_followed)
{
	struct pki_ca ca;
	struct harness_cert cl;
	const char *crl = harness_path("ca.crl"), *next = harness_path("ca.crl.new");
	const long revoked[] = { 2 };
	cr_assert_eq(pki_ca_create(&ca, "ca", NULL, 1), 0);
	cr_assert_eq(pki_client_create(&ca, "client", 2, &cl), 0);
	cr_assert_eq(pki_crl_append(&ca, crl, NULL, 0), 0);
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	struct proxy *p = start_watching(port, ca.path, crl, b, true);
	cr_assert(echo_as(port, &cl), "refused while nothing is revoked");
	cr_assert_eq(pki_crl_append(&ca, next, revoked, 1), 0);
	cr_assert_eq(rename(next, crl), 0);
	wait_refused_after_reload(p, port, &cl);
	expect_refusal(p, "certificate revoked");
	pki_ca_finish(&ca);
	cr_assert_eq(proxy_stop(p, T), 0);
	harness_pass();
}

/* Every CA of the chain needs its CRL in the file: one missing refuses its clients. */
Test(crl, a_chain_ca_without_a_crl_refuses)
{
	struct pki_ca root, inter;
	struct harness_cert cl;
	const char *crl = harness_path("root-only.crl");
	cr_assert_eq(pki_ca_create(&root, "root", NULL, 1), 0);
	cr_assert_eq(pki_ca_create(&inter, "inter", &root, 10), 0);
	cr_assert_eq(pki_client_create(&inter, "client", 20, &cl), 0);
	cr_assert_eq(pki_crl_append(&root, crl, NULL, 0), 0);
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	struct proxy *p = start(port, root.path, crl, b);
	cr_assert_not(echo_as(port, &cl), "accepted without the intermediate's CRL");
	expect_refusal(p, "unable to get certificate CRL");
	pki_ca_finish(&inter);
	pki_ca_finish(&root);
	cr_assert_eq(proxy_stop(p, T), 0);
	harness_pass();
}

/* -t: a file without a CRL, and client_crl without client_ca, each at its line. */
Test(crl, check_reports_bad_crl_settings)
{
	struct harness_cert crt;
	struct run_result r;
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	const char *ini = harness_write_file(
		"t.ini",
		"[frontend a]\nlisten = 127.0.0.1:1\ncert = %s\nkey = %s\nbackend = app\n"
		"client_ca = %s\n"
		"client_crl = %s\n"
		"[frontend b]\nlisten = 127.0.0.1:2\ncert = %s\nkey = %s\nbackend = app\n"
		"client_crl = %s\n"
		"[backend app]\nserver = 127.0.0.1:3\n",
		crt.cert, crt.key, crt.cert, crt.cert, crt.cert, crt.key, crt.cert);
	const char *argv[] = { "-t", "-c", ini, NULL };
	cr_assert_eq(harness_run(&r, T, argv), 0);
	cr_assert_eq(r.status, 1, "exit %d: %s", r.status, r.err);
	char want[5000];
	snprintf(want, sizeof(want), "%s:13: [frontend b] client_crl: requires client_ca", ini);
	cr_assert(strstr(r.err, want), "no '%s' in:\n%s", want, r.err);
	snprintf(want, sizeof(want), "%s:7: [frontend a] client_crl: cannot load '%s': ", ini,
		 crt.cert);
	cr_assert(strstr(r.err, want), "no '%s' in:\n%s", want, r.err);
	run_result_finish(&r);
	harness_pass();
}
