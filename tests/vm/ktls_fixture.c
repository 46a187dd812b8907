/* The fixture of test_ktls_proxy (see ktls_fixture.h). */
#include "ktls_fixture.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

/* ---- kernel TLS counters ---- */

/* Sessions installed since `before` must be exactly tx/rx; no record ever failed to decrypt. */
void expect_sessions(const struct tls_stats *before, long tx, long rx)
{
	struct tls_stats now = tls_stats_now();

	cr_assert_eq(now.tx_sw - before->tx_sw, tx, "TlsTxSw rose by %ld, want %ld",
		     now.tx_sw - before->tx_sw, tx);
	cr_assert_eq(now.rx_sw - before->rx_sw, rx, "TlsRxSw rose by %ld, want %ld",
		     now.rx_sw - before->rx_sw, rx);
	cr_assert_eq(now.decrypt_error, 0, "TlsDecryptError is %ld", now.decrypt_error);
}

/* Skips the case unless this kernel has kTLS both ways, as the proxy itself sees it. */
void need_ktls(void)
{
	static const char *const argv[] = { "-V", NULL };
	struct run_result r;
	char line[256] = "";
	const char *k;

	if (access("/proc/net/tls_stat", R_OK) != 0)
		cr_skip_test("no /proc/net/tls_stat: this kernel has no kernel TLS (tls module)");
	cr_assert_eq(harness_run(&r, HARNESS_TIMEOUT_MS, argv), 0);
	cr_assert_eq(r.status, 0, "tlsplice -V exited %d: %s", r.status, r.err);
	k = strstr(r.out, "kTLS:");
	if (k)
		snprintf(line, sizeof(line), "%.*s", (int)strcspn(k, "\n"), k);
	run_result_finish(&r);
	if (strcmp(line, "kTLS: available (tx, rx)") != 0)
		cr_skip_test("proxy says '%s'", line[0] ? line : "no kTLS line in -V");
}

/* ---- the proxy under test: one frontend, SNI routes to one backend of each kind ---- */

/* Waits (bounded) for the proxy's start-up line. Its kTLS probe installs a throw-away key
 * (counted in tls_stat) while it writes that line, after the listeners are up, and even
 * with ktls = off: counting starts only after it. */
static void wait_started(const struct fx *f)
{
	int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;

	for (;;) {
		char *err = harness_read_file(proxy_stderr_path(f->p), NULL);
		bool up = err && strstr(err, " started: ");

		free(err);
		if (up)
			return;
		cr_assert(harness_now_ms() < deadline, "no start-up line from the proxy");
		usleep(10000); /* another process's file: nothing to wait on */
	}
}

void fx_start(struct fx *f, const char *global_extra)
{
	fx_start_fe(f, global_extra, NULL);
}

/* The proxy with the fixture's backends; fe_extra adds lines to the frontend. */
void fx_start_fe(struct fx *f, const char *global_extra, const char *fe_extra)
{
	struct harness_cert crt;
	char global[256], backends[1280], fe[1024];
	const char *ini;

	f->echo = backend_start(BACKEND_ECHO, 0, NULL, 0);
	f->sink = backend_start(BACKEND_SINK, 0, NULL, 0);
	f->source = backend_start(BACKEND_SOURCE, 0, NULL, SOURCE_BYTES);
	f->reset = backend_start(BACKEND_RESET, 0, NULL, RESET_BYTES);
	f->endless = backend_start(BACKEND_SOURCE, 0, NULL, ENDLESS_BYTES);
	cr_assert(f->echo && f->sink && f->source && f->reset && f->endless,
		  "backends did not start");
	cr_assert_eq(harness_cert_create("demo",
					 "demo.test,sink.test,source.test,reset.test,"
					 "endless.test",
					 &crt),
		     0);
	snprintf(global, sizeof(global), "workers = %d\nshutdown_timeout = 2s\n%s", WORKERS,
		 global_extra ? global_extra : "");
	snprintf(backends, sizeof(backends),
		 "[backend app]\nserver = %s\ncheck = none\n"
		 "[backend sink]\nserver = %s\ncheck = none\n"
		 "[backend source]\nserver = %s\ncheck = none\n"
		 "[backend reset]\nserver = %s\ncheck = none\n"
		 "[backend endless]\nserver = %s\ncheck = none\n",
		 backend_addr(f->echo), backend_addr(f->sink), backend_addr(f->source),
		 backend_addr(f->reset), backend_addr(f->endless));
	f->port = harness_free_port();
	snprintf(fe, sizeof(fe),
		 "route = sink.test sink\nroute = source.test source\n"
		 "route = reset.test reset\nroute = endless.test endless\n%s",
		 fe_extra ? fe_extra : "");
	ini = harness_config_web("ktls.ini", f->port, &crt, global, fe, backends);
	cr_assert(ini);
	f->p = proxy_start(ini, f->port);
	cr_assert(f->p, "proxy did not start");
	f->log = proxy_access_log(f->p);
	wait_started(f);
}

struct tlsc *fx_connect(const struct fx *f, int version, const char *cipher, const char *sni)
{
	struct tlsc_opts o = {
		.min_version = version, .max_version = version, .sni = sni, .timeout_ms = 30000
	};
	struct tlsc *c;

	if (version == TLS1_3_VERSION)
		o.ciphersuites = cipher;
	else if (version == TLS1_2_VERSION)
		o.ciphers = cipher;
	c = tlsc_connect("127.0.0.1", f->port, &o);
	cr_assert(c, "TLS connect (%s) failed", cipher ? cipher : "default");
	if (cipher)
		cr_assert_str_eq(tlsc_cipher(c), cipher);
	return c;
}
