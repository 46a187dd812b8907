/* Backend selection: weighted round-robin, retries past dead servers, SNI routes and
 * certificate selection by SNI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(balance, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

static const char *const request = "GET / HTTP/1.1\r\nHost: demo.test\r\n\r\n";

/* One HTTP request through the proxy to a hello backend. Returns the malloc'd response
 * body ("hello from NAME\n"), or NULL if the connection failed or ended early. */
static char *fetch(int port, const char *sni, struct tlsc **keep)
{
	struct tlsc_opts o = { .sni = sni };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	char buf[4096];
	ssize_t n;
	char *body;

	if (!c)
		return NULL;
	if (tlsc_write_all(c, request, strlen(request), 5000) != 0) {
		tlsc_close(c);
		return NULL;
	}
	n = tlsc_read_all(c, buf, sizeof(buf) - 1, 5000);
	if (n <= 0) {
		tlsc_close(c);
		return NULL;
	}
	buf[n] = '\0';
	body = strstr(buf, "\r\n\r\n");
	if (keep)
		*keep = c;
	else
		tlsc_close(c);
	return body ? strdup(body + 4) : NULL;
}

static struct proxy *start(const char *fe_extra, const char *backends, int *port,
			   struct harness_cert *crt)
{
	const char *ini;
	struct proxy *p;

	*port = harness_free_port();
	cr_assert_eq(harness_cert_create("demo", "demo.test", crt), 0);
	ini = harness_config_web("bal.ini", *port, crt, "workers = 2\n", fe_extra, backends);
	cr_assert(ini);
	p = proxy_start(ini, *port);
	cr_assert(p, "proxy did not start");
	return p;
}

Test(balance, weighted_round_robin_is_exact)
{
	struct backend *a = backend_start(BACKEND_HELLO, 0, "A", 0);
	struct backend *b = backend_start(BACKEND_HELLO, 0, "B", 0);
	struct harness_cert crt;
	char backends[512];
	int port, i, got_a = 0, got_b = 0;
	struct proxy *p;

	snprintf(backends, sizeof(backends),
		 "[backend app]\nserver = %s weight=1\nserver = %s weight=2\ncheck = none\n",
		 backend_addr(a), backend_addr(b));
	p = start(NULL, backends, &port, &crt);
	for (i = 0; i < 90; i++) {
		char *body = fetch(port, "demo.test", NULL);

		cr_assert(body, "connection %d failed", i);
		got_a += strcmp(body, "hello from A\n") == 0;
		got_b += strcmp(body, "hello from B\n") == 0;
		free(body);
	}
	cr_assert_eq(got_a, 30, "A answered %d of 90", got_a);
	cr_assert_eq(got_b, 60, "B answered %d of 90", got_b);
	cr_assert_eq(backend_accepted(a), 30);
	cr_assert_eq(backend_accepted(b), 60);
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 90, HARNESS_TIMEOUT_MS), 90);
	cr_assert_eq(alog_count(proxy_access_log(p), "server", backend_addr(a)), 30);
	cr_assert_eq(alog_count(proxy_access_log(p), "server", backend_addr(b)), 60);
	harness_pass();
}

/* "127.0.0.1:PORT" of a port nothing listens on. */
static const char *dead_addr(void)
{
	char *s = NULL;

	cr_assert(asprintf(&s, "127.0.0.1:%d", harness_free_port()) > 0);
	return s;
}

Test(balance, retries_skip_dead_server)
{
	struct backend *live = backend_start(BACKEND_HELLO, 0, "live", 0);
	const char *dead = dead_addr();
	struct harness_cert crt;
	char backends[512];
	int port, i;
	struct proxy *p;

	snprintf(backends, sizeof(backends),
		 "[backend app]\nserver = %s\nserver = %s\ncheck = none\nretries = 2\n"
		 "connect_timeout = 1s\n",
		 dead, backend_addr(live));
	p = start(NULL, backends, &port, &crt);
	for (i = 0; i < 10; i++) {
		char *body = fetch(port, "demo.test", NULL);

		cr_assert(body, "connection %d failed", i);
		cr_assert_str_eq(body, "hello from live\n");
		free(body);
	}
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 10, HARNESS_TIMEOUT_MS), 10);
	cr_assert_eq(alog_count(proxy_access_log(p), "server", backend_addr(live)), 10);
	cr_assert_eq(alog_count(proxy_access_log(p), "close", "connect_failed"), 0);
	free((char *)dead);
	harness_pass();
}

Test(balance, no_retries_dead_server_connect_failed)
{
	struct backend *live = backend_start(BACKEND_HELLO, 0, "live", 0);
	const char *dead = dead_addr();
	struct harness_cert crt;
	char backends[512], *line;
	int port, i, ok = 0, failed = 0;
	struct proxy *p;

	/* check_fall high: passive failures must not take the dead server out during the test,
	 * so round-robin alternates strictly. */
	snprintf(backends, sizeof(backends),
		 "[backend app]\nserver = %s\nserver = %s\ncheck = none\nretries = 0\n"
		 "check_fall = 100\nconnect_timeout = 1s\n",
		 dead, backend_addr(live));
	p = start(NULL, backends, &port, &crt);
	for (i = 0; i < 6; i++) {
		char *body = fetch(port, "demo.test", NULL);

		if (body && strcmp(body, "hello from live\n") == 0)
			ok++;
		else
			failed++;
		free(body);
	}
	cr_assert_eq(ok, 3, "%d of 6 succeeded", ok);
	cr_assert_eq(failed, 3);
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 6, HARNESS_TIMEOUT_MS), 6);
	cr_assert_eq(alog_count(proxy_access_log(p), "close", "connect_failed"), 3);
	for (i = 0; (line = alog_line(proxy_access_log(p), i)); i++) {
		char close_[64], server[128];

		cr_assert_eq(json_str(line, "close", close_, sizeof(close_)), 0);
		cr_assert_eq(json_str(line, "server", server, sizeof(server)), 0);
		if (strcmp(close_, "connect_failed") == 0)
			cr_assert_str_eq(server, dead, "%s", line);
		else
			cr_assert_str_eq(server, backend_addr(live), "%s", line);
		free(line);
	}
	free((char *)dead);
	harness_pass();
}

struct sni_case {
	const char *sni;     /* NULL: no SNI */
	const char *backend; /* hello name and log backend */
	const char *san;     /* a DNS name the served certificate must carry */
};

Test(balance, sni_routes_and_certificates)
{
	static const struct sni_case cases[] = {
		{ "x.api.test", "api", "*.api.test" },
		{ "X.API.Test", "api", "*.api.test" },
		{ "a.b.api.test", "api", "*.api.test" },
		{ "api.test", "app", "demo.test" },
		{ "demo.test", "app", "demo.test" },
		{ "other.test", "app", "demo.test" },
		{ NULL, "app", "demo.test" },
	};
	struct backend *app = backend_start(BACKEND_HELLO, 0, "app", 0);
	struct backend *api = backend_start(BACKEND_HELLO, 0, "api", 0);
	struct harness_cert crt, apicrt;
	char backends[512], fe[8192 + 128], want[64], got[64], *line;
	int port;
	size_t i;
	struct proxy *p;

	cr_assert_eq(harness_cert_create("api", "*.api.test", &apicrt), 0);
	snprintf(fe, sizeof(fe), "cert = %s\nkey = %s\nroute = *.api.test api\n", apicrt.cert,
		 apicrt.key);
	snprintf(backends, sizeof(backends),
		 "[backend app]\nserver = %s\ncheck = none\n[backend api]\nserver = %s\n"
		 "check = none\n",
		 backend_addr(app), backend_addr(api));
	p = start(fe, backends, &port, &crt);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tlsc *c = NULL;
		char *body = fetch(port, cases[i].sni, &c);

		cr_assert(body, "SNI %s: request failed", cases[i].sni);
		snprintf(want, sizeof(want), "hello from %s\n", cases[i].backend);
		cr_assert_str_eq(body, want, "SNI %s routed wrongly", cases[i].sni);
		cr_assert(tlsc_peer_has_dns(c, cases[i].san), "SNI %s: served cert lacks %s",
			  cases[i].sni, cases[i].san);
		free(body);
		tlsc_close(c);
		cr_assert_eq(alog_wait_lines(proxy_access_log(p), (int)i + 1, HARNESS_TIMEOUT_MS),
			     (int)i + 1);
		line = alog_line(proxy_access_log(p), (int)i);
		cr_assert_eq(json_str(line, "backend", got, sizeof(got)), 0);
		cr_assert_str_eq(got, cases[i].backend, "%s", line);
		cr_assert_eq(json_str(line, "sni", got, sizeof(got)), 0);
		if (cases[i].sni)
			cr_assert(strcasecmp(got, cases[i].sni) == 0, "sni field %s", line);
		else
			cr_assert_str_empty(got, "%s", line);
		free(line);
	}
	harness_pass();
}
