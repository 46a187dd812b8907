/* Features around the relay: metrics and health endpoints, SIGHUP reload, SIGUSR1 log
 * reopening, the PROXY protocol, ALPN, session tickets (off, and shared across instances)
 * and client certificates. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/ssl.h>

#include "harness.h"

TestSuite(features, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

static struct harness_cert crt;

static const char *backends_for(struct backend *b)
{
	static char buf[256];
	snprintf(buf, sizeof(buf), "[backend app]\nserver = %s\ncheck = none\n", backend_addr(b));
	return buf;
}

static struct proxy *start(int port, const char *global, const char *fe, const char *backends)
{
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	const char *ini = harness_config_web("f.ini", port, &crt, global, fe, backends);
	cr_assert(ini);
	struct proxy *p = proxy_start(ini, port);
	cr_assert(p, "proxy did not start");
	return p;
}

/* One echo round trip through the proxy; returns the client (still open). */
static struct tlsc *echo_once(int port, const struct tlsc_opts *o)
{
	static const struct tlsc_opts def = { .sni = "demo.test" };
	char buf[16];
	struct tlsc *c = tlsc_connect("127.0.0.1", port, o ? o : &def);
	cr_assert(c, "TLS connect failed");
	cr_assert_eq(tlsc_write_all(c, "ping", 4, HARNESS_TIMEOUT_MS), 0);
	ssize_t n = tlsc_read(c, buf, sizeof(buf), HARNESS_TIMEOUT_MS);
	cr_assert_eq(n, 4, "echo read %zd", n);
	return c;
}

/* A plain HTTP/1.0 GET; returns the whole response (caller frees). */
static char *http_get(int port, const char *path)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(fd >= 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %s",
		     strerror(errno));
	char req[256];
	int len = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
	cr_assert_eq(write(fd, req, (size_t)len), len);
	size_t cap = 1 << 16, got = 0;
	char *out = calloc(1, cap + 1);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	while (got < cap && poll(&pfd, 1, HARNESS_TIMEOUT_MS) == 1) {
		ssize_t n = read(fd, out + got, cap - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return out;
}

/* The value of one metric line ("name{labels} value"), -1 if absent. */
static double metric(const char *text, const char *name_labels)
{
	const char *p = text;
	size_t l = strlen(name_labels);
	while ((p = strstr(p, name_labels))) {
		if ((p == text || p[-1] == '\n') && p[l] == ' ')
			return strtod(p + l + 1, NULL);
		p += l;
	}
	return -1;
}

Test(features, metrics_present_from_start_and_counting)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port(), mport = harness_free_port();
	char global[64];
	snprintf(global, sizeof(global), "metrics = 127.0.0.1:%d\n", mport);
	struct proxy *p = start(port, global, NULL, backends_for(b));
	cr_assert(harness_wait_port("127.0.0.1", mport, HARNESS_TIMEOUT_MS));

	char *m = http_get(mport, "/metrics");
	static const char *const names[] = {
		"tlsplice_connections_total",
		"tlsplice_connections_active",
		"tlsplice_handshake_failures_total",
		"tlsplice_ktls_connections_total",
		"tlsplice_relay_total",
		"tlsplice_bytes_total",
		"tlsplice_server_up",
		"tlsplice_server_connect_failures_total",
		"tlsplice_server_check_failures_total",
		"tlsplice_server_connections_total",
		"tlsplice_ktls_key_updates_total",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char want[128];
		snprintf(want, sizeof(want), "# TYPE %s ", names[i]);
		cr_assert(strstr(m, want), "no %s at start-up in:\n%s", names[i], m);
	}
	cr_assert_eq(metric(m, "tlsplice_connections_total{frontend=\"web\"}"), 0);
	cr_assert_eq(
		metric(m, "tlsplice_ktls_key_updates_total{frontend=\"web\",direction=\"rx\"}"), 0,
		"%s", m);
	free(m);

	for (int i = 0; i < 3; i++)
		tlsc_close(echo_once(port, NULL));
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 3, HARNESS_TIMEOUT_MS), 3);
	m = http_get(mport, "/metrics");
	char label[128];
	cr_assert_eq(metric(m, "tlsplice_connections_total{frontend=\"web\"}"), 3, "%s", m);
	cr_assert_eq(metric(m, "tlsplice_connections_active{frontend=\"web\"}"), 0, "%s", m);
	if (harness_kernel_ktls())
		cr_assert_eq(metric(m, "tlsplice_relay_total{frontend=\"web\",mode=\"splice\"}"), 3,
			     "%s", m);
	else
		cr_assert_eq(metric(m, "tlsplice_relay_total{frontend=\"web\",mode=\"userspace\"}"),
			     3, "%s", m);
	cr_assert_eq(metric(m, "tlsplice_bytes_total{frontend=\"web\",direction=\"in\"}"), 12, "%s",
		     m);
	snprintf(label, sizeof(label),
		 "tlsplice_server_connections_total{backend=\"app\",server=\"%s\"}",
		 backend_addr(b));
	cr_assert_eq(metric(m, label), 3, "%s", m);
	snprintf(label, sizeof(label), "tlsplice_server_up{backend=\"app\",server=\"%s\"}",
		 backend_addr(b));
	cr_assert_eq(metric(m, label), 1, "%s", m);
	free(m);

	m = http_get(mport, "/healthz");
	cr_assert(strstr(m, " 200 "), "%s", m);
	free(m);
	m = http_get(mport, "/nope");
	cr_assert(strstr(m, " 404 "), "%s", m);
	free(m);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

Test(features, reload_adds_listener_and_keeps_open_connections)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port(), port2 = harness_free_port();
	struct proxy *p = start(port, NULL, NULL, backends_for(b));
	struct tlsc *open_conn = echo_once(port, NULL);

	/* a second listener, same certificate */
	char fe[64];
	snprintf(fe, sizeof(fe), "listen = 127.0.0.1:%d\n", port2);
	cr_assert(harness_config_web("f.ini", port, &crt, NULL, fe, backends_for(b)));
	cr_assert_eq(proxy_signal(p, SIGHUP), 0);
	cr_assert(harness_wait_port("127.0.0.1", port2, HARNESS_TIMEOUT_MS), "new listener not up");
	tlsc_close(echo_once(port2, NULL));

	/* the connection from before the reload still relays */
	char buf[8];
	cr_assert_eq(tlsc_write_all(open_conn, "again", 5, HARNESS_TIMEOUT_MS), 0);
	cr_assert_eq(tlsc_read(open_conn, buf, sizeof(buf), HARNESS_TIMEOUT_MS), 5);
	tlsc_close(open_conn);

	/* an invalid file is reported in FILE:LINE form and changes nothing */
	harness_write_file("f.ini", "[global]\nworkers = lots\n");
	cr_assert_eq(proxy_signal(p, SIGHUP), 0);
	int64_t end = harness_now_ms() + HARNESS_TIMEOUT_MS;
	char *err = NULL;
	while (harness_now_ms() < end) {
		free(err);
		err = harness_read_file(proxy_stderr_path(p), NULL);
		if (err && strstr(err, "f.ini:2: [global] workers: "))
			break;
		usleep(20000);
	}
	cr_assert(err && strstr(err, "f.ini:2: [global] workers: "), "no reload error in:\n%s",
		  err);
	free(err);
	tlsc_close(echo_once(port, NULL));
	tlsc_close(echo_once(port2, NULL));
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

Test(features, sigusr1_reopens_access_log)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	char global[4200], moved[4200];
	const char *log = harness_path("access.log");
	snprintf(global, sizeof(global), "access_log = %s\n", log);
	snprintf(moved, sizeof(moved), "%s.1", log);
	struct proxy *p = start(port, global, NULL, backends_for(b));
	tlsc_close(echo_once(port, NULL));
	cr_assert_eq(alog_wait_lines(log, 1, HARNESS_TIMEOUT_MS), 1);
	cr_assert_eq(rename(log, moved), 0);
	cr_assert_eq(proxy_signal(p, SIGUSR1), 0);
	/* the reopen is done once a connection after it lands in the new file */
	int64_t end = harness_now_ms() + HARNESS_TIMEOUT_MS;
	while (harness_now_ms() < end && alog_wait_lines(log, 1, 50) < 1)
		tlsc_close(echo_once(port, NULL));
	cr_assert_geq(alog_wait_lines(log, 1, 0), 1, "nothing written to the reopened log");
	cr_assert_eq(alog_wait_lines(moved, 1, 0), 1, "old file kept growing");
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

struct header_catch {
	int lfd;
	char got[256];
	size_t len;
};

/* Accepts one connection and keeps its first bytes (the PROXY header, then "ping"). */
static void *catch_header(void *arg)
{
	struct header_catch *h = arg;
	int fd = accept(h->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	while (h->len < sizeof(h->got) - 1 && poll(&pfd, 1, HARNESS_TIMEOUT_MS) == 1) {
		ssize_t n = read(fd, h->got + h->len, sizeof(h->got) - 1 - h->len);
		if (n <= 0)
			break;
		h->len += (size_t)n;
		if (h->len >= 4 && memcmp(h->got + h->len - 4, "ping", 4) == 0)
			break;
	}
	(void)!write(fd, "pong", 4);
	close(fd);
	return NULL;
}

static void proxy_protocol_case(const char *version)
{
	struct header_catch h = { 0 };
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	h.lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(bind(h.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(h.lfd, 4), 0);
	getsockname(h.lfd, (struct sockaddr *)&a, &al);
	pthread_t th;
	pthread_create(&th, NULL, catch_header, &h);

	int port = harness_free_port();
	char fe[64], be[128];
	snprintf(fe, sizeof(fe), "proxy_protocol = %s\n", version);
	snprintf(be, sizeof(be), "[backend app]\nserver = 127.0.0.1:%d\ncheck = none\n",
		 ntohs(a.sin_port));
	struct proxy *p = start(port, NULL, fe, be);
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	cr_assert(c);
	cr_assert_eq(tlsc_write_all(c, "ping", 4, HARNESS_TIMEOUT_MS), 0);
	char buf[8];
	cr_assert_eq(tlsc_read(c, buf, sizeof(buf), HARNESS_TIMEOUT_MS), 4);
	pthread_join(th, NULL);
	close(h.lfd);

	const char *local = tlsc_local_addr(c); /* "127.0.0.1:PORT" */
	const char *colon = strrchr(local, ':');
	cr_assert(colon);
	unsigned cport = (unsigned)atoi(colon + 1);
	if (strcmp(version, "v1") == 0) {
		char want[128];
		int n = snprintf(want, sizeof(want), "PROXY TCP4 127.0.0.1 127.0.0.1 %u %d\r\nping",
				 cport, port);
		cr_assert_eq(h.len, (size_t)n, "got %zu bytes: %.*s", h.len, (int)h.len, h.got);
		cr_assert_eq(memcmp(h.got, want, (size_t)n), 0, "got %.*s", (int)h.len, h.got);
	} else {
		static const unsigned char sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
						       0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
		const unsigned char *g = (const unsigned char *)h.got;
		cr_assert_eq(h.len, 16u + 12u + 4u);
		cr_assert_eq(memcmp(g, sig, 12), 0);
		cr_assert_eq(g[12], 0x21);
		cr_assert_eq(g[13], 0x11);
		cr_assert_eq((g[14] << 8) | g[15], 12);
		cr_assert_eq((unsigned)((g[24] << 8) | g[25]), cport, "source port");
		cr_assert_eq((g[26] << 8) | g[27], port, "destination port");
		cr_assert_eq(memcmp(g + 28, "ping", 4), 0);
	}
	tlsc_close(c);
	/* the header is not client payload */
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 1, HARNESS_TIMEOUT_MS), 1);
	char *line = alog_line(proxy_access_log(p), 0);
	double in = -1;
	cr_assert(line);
	cr_assert_eq(json_num(line, "bytes_in", &in), 0);
	cr_assert_eq(in, 4, "%s", line);
	free(line);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
}

Test(features, proxy_protocol_v1)
{
	proxy_protocol_case("v1");
	harness_pass();
}

Test(features, proxy_protocol_v2)
{
	proxy_protocol_case("v2");
	harness_pass();
}

Test(features, alpn_follows_server_order)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	struct proxy *p = start(port, NULL, "alpn = h2,http/1.1\n", backends_for(b));
	struct tlsc_opts o = { .sni = "demo.test", .alpn = "http/1.1,h2" };
	struct tlsc *c = echo_once(port, &o);
	const unsigned char *sel;
	unsigned len;
	SSL_get0_alpn_selected(tlsc_ssl(c), &sel, &len);
	cr_assert_eq(len, 2u);
	cr_assert_eq(memcmp(sel, "h2", 2), 0);
	tlsc_close(c);
	char *line = alog_wait_find(proxy_access_log(p), "alpn", "h2", HARNESS_TIMEOUT_MS);
	cr_assert(line, "access log has no alpn h2");
	free(line);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

/* The session after an echo, by which time the server's tickets (TLS 1.3 sends them after
 * the handshake) have arrived. A copy: closing the connection marks the original as not
 * resumable. */
static SSL_SESSION *session_after_echo(int port)
{
	struct tlsc *c = echo_once(port, NULL);
	SSL_SESSION *s = SSL_SESSION_dup(SSL_get0_session(tlsc_ssl(c)));
	tlsc_close(c);
	return s;
}

Test(features, session_tickets_off_sends_none)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	struct proxy *p = start(port, NULL, "session_tickets = off\n", backends_for(b));
	SSL_SESSION *s = session_after_echo(port);
	cr_assert(s);
	cr_assert_not(SSL_SESSION_has_ticket(s), "a ticket was sent with session_tickets = off");
	SSL_SESSION_free(s);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

Test(features, ticket_keys_resume_across_instances)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port1 = harness_free_port(), port2 = harness_free_port();
	/* 80 bytes of base64: "0123456789" x 8 */
	harness_write_file("t.keys", "# shared\n%s\n",
			   "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw"
			   "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODk=");
	struct proxy *p1 = start(port1, NULL, "ticket_keys = t.keys\n", backends_for(b));
	const char *ini2 = harness_config_web("g.ini", port2, &crt, NULL, "ticket_keys = t.keys\n",
					      backends_for(b));
	struct proxy *p2 = proxy_start(ini2, port2);
	cr_assert(p2);

	SSL_SESSION *s = session_after_echo(port1);
	cr_assert(s && SSL_SESSION_has_ticket(s), "no ticket from the first instance");
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_open("127.0.0.1", port2, &o);
	cr_assert(c);
	SSL_set_session(tlsc_ssl(c), s);
	cr_assert_eq(tlsc_handshake(c, HARNESS_TIMEOUT_MS), 1);
	cr_assert(SSL_session_reused(tlsc_ssl(c)), "the second instance did not resume");
	tlsc_close(c);
	SSL_SESSION_free(s);
	cr_assert_eq(proxy_stop(p1, HARNESS_TIMEOUT_MS), 0);
	cr_assert_eq(proxy_stop(p2, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

Test(features, client_ca_requires_a_client_certificate)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	struct harness_cert ca;
	int port = harness_free_port();
	cr_assert_eq(harness_cert_create("ca", "ca.test", &ca), 0);
	char fe[4200];
	snprintf(fe, sizeof(fe), "client_ca = %s\n", ca.cert);
	struct proxy *p = start(port, NULL, fe, backends_for(b));
	struct tlsc_opts o = { .sni = "demo.test", .max_version = TLS1_2_VERSION };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	cr_assert_null(c, "handshake without a client certificate succeeded");
	char *line = alog_wait_find(proxy_access_log(p), "close", "handshake_failed",
				    HARNESS_TIMEOUT_MS);
	cr_assert(line, "no handshake_failed line");
	free(line);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

Test(features, second_instance_on_the_same_address_is_refused)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	struct proxy *p = start(port, NULL, NULL, backends_for(b));
	const char *argv[] = { "-c", harness_path("f.ini"), NULL };
	struct run_result r;
	/* SO_REUSEPORT would let it bind and take half the connections: it must not start */
	cr_assert_eq(harness_run(&r, HARNESS_TIMEOUT_MS, argv), 0);
	cr_assert_eq(r.status, 3, "exit %d, stderr: %s", r.status, r.err);
	cr_assert(strstr(r.err, "another process listens there"), "%s", r.err);
	run_result_finish(&r);
	tlsc_close(echo_once(port, NULL));
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

/* ---- resumption is bound to what the frontend verifies ---- */

#define KEYS_B64                                                                                   \
	"MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw"                     \
	"MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODk="

/* The session (with its ticket) of one echo at TLS version v, presenting cl if not NULL. */
static SSL_SESSION *ticket_at(int port, int v, const struct harness_cert *cl)
{
	struct tlsc_opts o = { .sni = "demo.test", .min_version = v, .max_version = v };
	struct tlsc *c = tlsc_open("127.0.0.1", port, &o);
	char buf[8];
	cr_assert(c);
	if (cl)
		cr_assert(SSL_use_certificate_file(tlsc_ssl(c), cl->cert, SSL_FILETYPE_PEM) == 1 &&
			  SSL_use_PrivateKey_file(tlsc_ssl(c), cl->key, SSL_FILETYPE_PEM) == 1);
	cr_assert_eq(tlsc_handshake(c, HARNESS_TIMEOUT_MS), 1, "%s", tlsc_error(c));
	cr_assert_eq(tlsc_write_all(c, "ping", 4, HARNESS_TIMEOUT_MS), 0);
	cr_assert_eq(tlsc_read(c, buf, sizeof(buf), HARNESS_TIMEOUT_MS), 4);
	SSL_SESSION *s = SSL_SESSION_dup(SSL_get0_session(tlsc_ssl(c)));
	tlsc_close(c);
	cr_assert(s && SSL_SESSION_has_ticket(s), "no ticket at version %x", v);
	return s;
}

/* Offers session s to port, presenting cl if not NULL, then echoes. True if the echo came
 * back; *reused says whether the session was resumed. */
static bool resumed_echo(int port, SSL_SESSION *s, const struct harness_cert *cl, bool *reused)
{
	int v = SSL_SESSION_get_protocol_version(s);
	struct tlsc_opts o = { .sni = "demo.test", .min_version = v, .max_version = v };
	struct tlsc *c = tlsc_open("127.0.0.1", port, &o);
	char buf[8];
	cr_assert(c);
	if (cl)
		cr_assert(SSL_use_certificate_file(tlsc_ssl(c), cl->cert, SSL_FILETYPE_PEM) == 1 &&
			  SSL_use_PrivateKey_file(tlsc_ssl(c), cl->key, SSL_FILETYPE_PEM) == 1);
	SSL_set_session(tlsc_ssl(c), s);
	bool ok = tlsc_handshake(c, HARNESS_TIMEOUT_MS) == 1;
	*reused = ok && SSL_session_reused(tlsc_ssl(c));
	ok = ok && tlsc_write_all(c, "ping", 4, HARNESS_TIMEOUT_MS) == 0 &&
	     tlsc_read(c, buf, sizeof(buf), HARNESS_TIMEOUT_MS) == 4;
	tlsc_close(c);
	return ok;
}

/* Waits for the n-th "configuration reloaded", then until a new TLS 1.2 handshake without a
 * client certificate is refused: the one worker then runs the generation with client_ca. */
static void wait_client_ca_active(struct proxy *p, int port)
{
	int64_t end = harness_now_ms() + HARNESS_TIMEOUT_MS;
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
	struct tlsc_opts o = { .sni = "demo.test", .max_version = TLS1_2_VERSION };
	struct tlsc *c = NULL;
	for (int i = 0; i < 100 && (c = tlsc_connect("127.0.0.1", port, &o)) != NULL; i++)
		tlsc_close(c);
	cr_assert_null(c, "client_ca is still not required after the reload");
}

Test(features, ticket_from_before_client_ca_does_not_resume_after_reload)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	struct harness_cert ca;
	int port = harness_free_port();
	cr_assert_eq(harness_cert_create("ca", "ca.test", &ca), 0);
	harness_write_file("t.keys", "%s\n", KEYS_B64);
	struct proxy *p = start(port, "workers = 1\n", "ticket_keys = t.keys\n", backends_for(b));
	SSL_SESSION *s12 = ticket_at(port, TLS1_2_VERSION, NULL);
	SSL_SESSION *s13 = ticket_at(port, TLS1_3_VERSION, NULL);

	char fe[4300];
	snprintf(fe, sizeof(fe), "ticket_keys = t.keys\nclient_ca = %s\n", ca.cert);
	cr_assert(harness_config_web("f.ini", port, &crt, "workers = 1\n", fe, backends_for(b)));
	cr_assert_eq(proxy_signal(p, SIGHUP), 0);
	wait_client_ca_active(p, port);

	unsigned before = backend_accepted(b);
	bool reused;
	cr_assert_not(resumed_echo(port, s12, NULL, &reused), "TLS 1.2 ticket bypassed client_ca");
	cr_assert_not(reused);
	cr_assert_not(resumed_echo(port, s13, NULL, &reused), "TLS 1.3 ticket bypassed client_ca");
	cr_assert_not(reused);
	cr_assert_eq(backend_accepted(b), before,
		     "bytes reached the backend without a client "
		     "certificate");
	SSL_SESSION_free(s12);
	SSL_SESSION_free(s13);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

Test(features, shared_ticket_keys_do_not_bypass_another_instances_client_ca)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	struct harness_cert ca, other;
	int open_port = harness_free_port(), ca_port = harness_free_port();
	int other_port = harness_free_port();
	cr_assert_eq(harness_cert_create("ca", "client.test", &ca), 0);
	cr_assert_eq(harness_cert_create("other", "other.test", &other), 0);
	harness_write_file("t.keys", "%s\n", KEYS_B64);
	/* one instance without client_ca, one trusting ca, one trusting other */
	struct proxy *po = start(open_port, NULL, "ticket_keys = t.keys\n", backends_for(b));
	char fe[4300];
	snprintf(fe, sizeof(fe), "ticket_keys = t.keys\nclient_ca = %s\n", ca.cert);
	struct proxy *pc = proxy_start(
		harness_config_web("c.ini", ca_port, &crt, NULL, fe, backends_for(b)), ca_port);
	snprintf(fe, sizeof(fe), "ticket_keys = t.keys\nclient_ca = %s\n", other.cert);
	struct proxy *px = proxy_start(
		harness_config_web("x.ini", other_port, &crt, NULL, fe, backends_for(b)),
		other_port);
	cr_assert(pc && px);

	for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
		bool reused;
		/* a ticket from the open instance, offered without a client certificate */
		SSL_SESSION *s = ticket_at(open_port, v, NULL);
		unsigned before = backend_accepted(b);
		cr_assert_not(resumed_echo(ca_port, s, NULL, &reused),
			      "version %x: ticket of an instance without client_ca bypassed it", v);
		cr_assert_not(reused);
		cr_assert_eq(backend_accepted(b), before, "version %x: bytes reached the backend",
			     v);
		SSL_SESSION_free(s);
		/* a ticket for a certificate signed by ca is no pass to an instance trusting other */
		s = ticket_at(ca_port, v, &ca);
		before = backend_accepted(b);
		cr_assert_not(resumed_echo(other_port, s, &ca, &reused),
			      "version %x: ticket verified by another CA was accepted", v);
		cr_assert_not(reused);
		cr_assert_eq(backend_accepted(b), before, "version %x: bytes reached the backend",
			     v);
		SSL_SESSION_free(s);
	}
	cr_assert_eq(proxy_stop(po, HARNESS_TIMEOUT_MS), 0);
	cr_assert_eq(proxy_stop(pc, HARNESS_TIMEOUT_MS), 0);
	cr_assert_eq(proxy_stop(px, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

Test(features, verified_tickets_resume_across_identical_client_ca_instances)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	struct harness_cert ca;
	int port1 = harness_free_port(), port2 = harness_free_port();
	cr_assert_eq(harness_cert_create("ca", "client.test", &ca), 0);
	harness_write_file("t.keys", "%s\n", KEYS_B64);
	char fe[4300];
	snprintf(fe, sizeof(fe), "ticket_keys = t.keys\nclient_ca = %s\n", ca.cert);
	struct proxy *p1 = start(port1, NULL, fe, backends_for(b));
	struct proxy *p2 = proxy_start(
		harness_config_web("g.ini", port2, &crt, NULL, fe, backends_for(b)), port2);
	cr_assert(p2);
	for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
		bool reused;
		SSL_SESSION *s = ticket_at(port1, v, &ca);
		cr_assert(resumed_echo(port2, s, &ca, &reused), "version %x: no echo", v);
		cr_assert(reused, "version %x: a verified ticket did not resume", v);
		SSL_SESSION_free(s);
	}
	cr_assert_eq(proxy_stop(p1, HARNESS_TIMEOUT_MS), 0);
	cr_assert_eq(proxy_stop(p2, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}
