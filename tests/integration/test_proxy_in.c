/* accept_proxy: the PROXY header a trusted balancer sends before the TLS handshake. The
 * header's client becomes the connection's client (access log, PROXY header sent on); bad,
 * oversized, slow and untrusted headers close with close = "proxy_header" and pass nothing
 * on; and one tlsplice behind another keeps the client's address end to end. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/ssl.h>

#include "expect.h"
#include "harness.h"
#include "pki.h"

TestSuite(proxy_in, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

#define T HARNESS_TIMEOUT_MS

static const unsigned char sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				       0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

static struct harness_cert crt;

/* A backend that accepts one connection and keeps its first bytes (the PROXY header tlsplice
 * sends on, then "ping"), answers "pong" and closes. */
struct catcher {
	int lfd, port;
	char got[512];
	size_t len;
	pthread_t th;
};

static void *catch_main(void *arg)
{
	struct catcher *k = arg;
	struct pollfd p = { .fd = k->lfd, .events = POLLIN };
	if (poll(&p, 1, T) != 1)
		return NULL;
	int fd = accept(k->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	p.fd = fd;
	while (k->len < sizeof(k->got) - 1 && poll(&p, 1, T) == 1) {
		ssize_t n = read(fd, k->got + k->len, sizeof(k->got) - 1 - k->len);
		if (n <= 0)
			break;
		k->len += (size_t)n;
		if (k->len >= 4 && memcmp(k->got + k->len - 4, "ping", 4) == 0)
			break;
	}
	(void)!write(fd, "pong", 4);
	close(fd);
	return NULL;
}

static void catcher_start(struct catcher *k)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	memset(k, 0, sizeof(*k));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	k->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(bind(k->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(k->lfd, 4), 0);
	getsockname(k->lfd, (struct sockaddr *)&a, &al);
	k->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&k->th, NULL, catch_main, k), 0);
}

static void catcher_join(struct catcher *k)
{
	pthread_join(k->th, NULL);
	close(k->lfd);
	k->got[k->len] = '\0';
}

/* A proxy on port with the frontend lines fe, in front of server (HOST:PORT). */
static struct proxy *start(const char *name, int port, const char *fe, const char *server)
{
	char be[256];
	snprintf(be, sizeof(be), "[backend app]\nserver = %s\ncheck = none\n", server);
	if (crt.cert[0] == '\0')
		cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	const char *ini = harness_config_web(name, port, &crt, NULL, fe, be);
	cr_assert(ini);
	struct proxy *p = proxy_start(ini, port);
	cr_assert(p, "proxy did not start");
	return p;
}

/* Opens a connection, sends hdr (len bytes) in pieces of `piece` bytes, then returns the
 * client ready for its handshake. */
static struct tlsc *open_with(int port, const void *hdr, size_t len, size_t piece)
{
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_open("127.0.0.1", port, &o);
	cr_assert(c);
	for (size_t off = 0; off < len; off += piece) {
		size_t n = len - off < piece ? len - off : piece;
		cr_assert_eq(send(tlsc_fd(c), (const char *)hdr + off, n, MSG_NOSIGNAL),
			     (ssize_t)n);
	}
	return c;
}

static void ping_pong(struct tlsc *c)
{
	char buf[8];
	cr_assert_eq(tlsc_handshake(c, T), 1, "handshake: %s", tlsc_error(c));
	cr_assert_eq(tlsc_write_all(c, "ping", 4, T), 0);
	cr_assert_eq(tlsc_read(c, buf, sizeof(buf), T), 4);
}

static char *one_line(struct proxy *p)
{
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 1, T), 1);
	char *line = alog_line(proxy_access_log(p), 0);
	cr_assert(line);
	return line;
}

/* A v1 header, sent a byte at a time: its client is the log's client, and its destination
 * is the one of the PROXY header sent on. */
Test(proxy_in, v1_header_names_the_client_everywhere)
{
	struct catcher k;
	char server[32], hdr[128];
	int port = harness_free_port();
	catcher_start(&k);
	snprintf(server, sizeof(server), "127.0.0.1:%d", k.port);
	struct proxy *p = start("a.ini", port,
				"accept_proxy = v1\naccept_proxy_from = 127.0.0.0/8\n"
				"proxy_protocol = v1\n",
				server);
	int n = snprintf(hdr, sizeof(hdr), "PROXY TCP4 192.0.2.7 198.51.100.9 40000 443\r\n");
	struct tlsc *c = open_with(port, hdr, (size_t)n, 1);
	ping_pong(c);
	catcher_join(&k);
	cr_assert_str_eq(k.got, "PROXY TCP4 192.0.2.7 198.51.100.9 40000 443\r\nping");
	tlsc_close(c);
	char *line = one_line(p);
	expect_str(line, "client", "192.0.2.7:40000");
	expect_num(line, "bytes_in", 4);
	free(line);
	cr_assert_eq(proxy_stop(p, T), 0);
	harness_pass();
}

/* v2 with TLVs, and v2 LOCAL (a balancer's own check): LOCAL keeps the socket's address. */
Test(proxy_in, v2_header_and_v2_local)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	struct proxy *p = start("a.ini", port,
				"accept_proxy = any\naccept_proxy_from = ::1, 127.0.0.1\n",
				backend_addr(b));
	unsigned char h[64];
	memcpy(h, sig, 12);
	memcpy(h + 12, "\x21\x11\x00\x11", 4); /* PROXY, TCP4, 12 + 5 bytes */
	memcpy(h + 16, "\xc0\x00\x02\x07\xc6\x33\x64\x09\x9c\x40\x01\xbb", 12);
	memcpy(h + 28, "\x01\x00\x02h2", 5); /* an ALPN TLV, skipped */
	struct tlsc *c = open_with(port, h, 33, 33);
	ping_pong(c);
	tlsc_close(c);
	memcpy(h + 12, "\x20\x00\x00\x00", 4); /* LOCAL */
	c = open_with(port, h, 16, 16);
	ping_pong(c);
	char local[64];
	snprintf(local, sizeof(local), "%s", tlsc_local_addr(c));
	tlsc_close(c);
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 2, T), 2);
	char *l0 = alog_line(proxy_access_log(p), 0), *l1 = alog_line(proxy_access_log(p), 1);
	cr_assert(l0 && l1);
	char *v2 = strstr(l0, "192.0.2.7") ? l0 : l1, *loc = v2 == l0 ? l1 : l0;
	expect_str(v2, "client", "192.0.2.7:40000");
	expect_str(loc, "client", local);
	expect_str(loc, "close", "client_eof");
	free(l0);
	free(l1);
	cr_assert_eq(proxy_stop(p, T), 0);
	harness_pass();
}

/* One refused connection: close = "proxy_header" with the reason, nothing reached the
 * backend. */
static void expect_refused(const char *fe, const void *hdr, size_t len, const char *why)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	struct proxy *p = start("a.ini", port, fe, backend_addr(b));
	struct tlsc *c = open_with(port, hdr, len, len ? len : 1);
	cr_assert_neq(tlsc_handshake(c, T), 1, "the handshake went through");
	tlsc_close(c);
	char *line = one_line(p);
	char err[256];
	expect_str(line, "close", "proxy_header");
	cr_assert_eq(json_str(line, "error", err, sizeof(err)), 0);
	cr_assert(strstr(err, why), "error '%s', want '%s'", err, why);
	expect_num(line, "bytes_in", 0);
	free(line);
	cr_assert_eq(backend_accepted(b), 0, "bytes were passed on");
	cr_assert_eq(proxy_stop(p, T), 0);
	harness_pass();
}

#define FROM_LOCAL "accept_proxy_from = 127.0.0.1/32\n"

Test(proxy_in, no_header_is_refused)
{
	expect_refused("accept_proxy = any\n" FROM_LOCAL, "", 0,
		       "no PROXY header (first bytes 16 03 01)");
}

Test(proxy_in, garbage_is_refused)
{
	expect_refused("accept_proxy = v1\n" FROM_LOCAL, "PROXY TCP4 1.2.3.4 x 1 2\r\n", 26,
		       "bad PROXY v1 header (addresses)");
}

Test(proxy_in, the_wrong_version_is_refused)
{
	expect_refused("accept_proxy = v2\n" FROM_LOCAL, "PROXY UNKNOWN\r\n", 15,
		       "PROXY v1 header where only v2 is accepted");
}

Test(proxy_in, an_oversized_header_is_refused)
{
	unsigned char h[16];
	memcpy(h, sig, 12);
	memcpy(h + 12, "\x21\x11\x10\x00", 4); /* 4096 bytes announced */
	expect_refused("accept_proxy = v2\n" FROM_LOCAL, h, 16, "oversized PROXY v2 header");
}

Test(proxy_in, a_v1_line_without_end_is_refused)
{
	char h[120];
	memset(h, '1', sizeof(h));
	memcpy(h, "PROXY TCP4 ", 11);
	expect_refused("accept_proxy = v1\n" FROM_LOCAL, h, sizeof(h), "oversized PROXY v1");
}

Test(proxy_in, a_peer_not_listed_is_refused)
{
	expect_refused("accept_proxy = any\naccept_proxy_from = 10.0.0.0/8, ::1\n",
		       "PROXY UNKNOWN\r\n", 15, "peer 127.0.0.1:");
}

/* A header that never ends is closed at handshake_timeout, counted from the accept. */
Test(proxy_in, a_slow_header_is_closed_at_the_handshake_timeout)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	struct proxy *p = start("a.ini", port,
				"accept_proxy = v1\n" FROM_LOCAL "handshake_timeout = 300ms\n",
				backend_addr(b));
	struct tlsc *c = open_with(port, "PROXY TCP4 1.2.3.4", 18, 18);
	char *line = alog_wait_find(proxy_access_log(p), "close", "proxy_header", T);
	cr_assert(line, "no proxy_header line");
	expect_str(line, "error", "no complete PROXY header within 300 ms");
	double ms = 0;
	cr_assert_eq(json_num(line, "duration_ms", &ms), 0);
	/* the timer starts from the loop's cached time, a little before the accept's timestamp */
	cr_assert_geq(ms, 250.0, "closed before the 300 ms handshake_timeout: %s", line);
	free(line);
	tlsc_close(c);
	cr_assert_eq(backend_accepted(b), 0);
	cr_assert_eq(proxy_stop(p, T), 0);
	harness_pass();
}

/* ---- PROXY v2 TLVs sent on ---- */

/* CRC32c written out here, apart from the proxy's. */
static uint32_t crc32c(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return ~c;
}

/* The value of the first TLV of type t in the n bytes at p (*len its length); NULL if none. */
static const unsigned char *tlv_find(const unsigned char *p, size_t n, unsigned t, size_t *len)
{
	while (n >= 3) {
		size_t l = ((size_t)p[1] << 8) | p[2];
		cr_assert_leq(3 + l, n, "a TLV runs past the header");
		if (p[0] == t) {
			*len = l;
			return p + 3;
		}
		p += 3 + l;
		n -= 3 + l;
	}
	cr_assert_eq(n, 0, "bytes after the last TLV");
	return NULL;
}

static void expect_tlv(const unsigned char *p, size_t n, unsigned t, const char *want)
{
	size_t len = 0;
	const unsigned char *v = tlv_find(p, n, t, &len);
	cr_assert(v, "no TLV 0x%02x", t);
	cr_assert_eq(len, strlen(want), "TLV 0x%02x: length %zu, want '%s'", t, len, want);
	cr_assert_eq(memcmp(v, want, len), 0, "TLV 0x%02x: '%.*s', want '%s'", t, (int)len, v,
		     want);
}

/* With mTLS and ALPN, the backend learns the ALPN, the SNI, the TLS version and cipher, that
 * the client certificate was verified and its CN; the CRC32c covers the whole header. */
Test(proxy_in, tlvs_tell_the_backend_what_the_handshake_said)
{
	struct pki_ca ca;
	struct harness_cert cl;
	struct catcher k;
	char server[32], fe[9000];
	int port = harness_free_port();
	cr_assert_eq(pki_ca_create(&ca, "ca", NULL, 1), 0);
	cr_assert_eq(pki_client_create(&ca, "client.test", 2, &cl), 0);
	catcher_start(&k);
	snprintf(server, sizeof(server), "127.0.0.1:%d", k.port);
	snprintf(fe, sizeof(fe),
		 "alpn = h2\nclient_ca = %s\nproxy_protocol = v2\n"
		 "proxy_protocol_tlvs = alpn, authority, ssl\nproxy_protocol_crc32c = on\n",
		 ca.path);
	struct proxy *p = start("a.ini", port, fe, server);
	struct tlsc_opts o = { .sni = "demo.test", .alpn = "h2" };
	struct tlsc *c = tlsc_open("127.0.0.1", port, &o);
	cr_assert(c);
	cr_assert(SSL_use_certificate_file(tlsc_ssl(c), cl.cert, SSL_FILETYPE_PEM) == 1 &&
		  SSL_use_PrivateKey_file(tlsc_ssl(c), cl.key, SSL_FILETYPE_PEM) == 1);
	ping_pong(c);
	catcher_join(&k);

	const unsigned char *g = (const unsigned char *)k.got;
	cr_assert_geq(k.len, 16u + 12u + 4u);
	size_t hl = 16 + (((size_t)g[14] << 8) | g[15]);
	cr_assert_eq(k.len, hl + 4, "header %zu bytes, then ping: got %zu", hl, k.len);
	cr_assert_eq(memcmp(g + hl, "ping", 4), 0);
	const unsigned char *tlvs = g + 28;
	size_t n = hl - 28, len;
	expect_tlv(tlvs, n, 0x01, "h2");
	expect_tlv(tlvs, n, 0x02, "demo.test");
	const unsigned char *ssl = tlv_find(tlvs, n, 0x20, &len);
	cr_assert(ssl && len > 5, "no SSL TLV");
	cr_assert_eq(ssl[0], 0x07, "client: SSL, certificate on this connection and session");
	cr_assert_eq(ssl[1] | ssl[2] | ssl[3] | ssl[4], 0, "verify: 0 is verified");
	expect_tlv(ssl + 5, len - 5, 0x21, tlsc_version(c));
	expect_tlv(ssl + 5, len - 5, 0x23, tlsc_cipher(c));
	expect_tlv(ssl + 5, len - 5, 0x22, "client.test");
	const unsigned char *sum = tlv_find(tlvs, n, 0x03, &len);
	cr_assert(sum && len == 4, "no CRC32c TLV");
	uint32_t got = ((uint32_t)sum[0] << 24) | ((uint32_t)sum[1] << 16) | (sum[2] << 8) | sum[3];
	unsigned char copy[2048];
	memcpy(copy, g, hl);
	memset(copy + (sum - g), 0, 4);
	cr_assert_eq(got, crc32c(copy, hl), "CRC32c");
	tlsc_close(c);
	char *line = one_line(p);
	expect_num(line, "bytes_in", 4);
	free(line);
	pki_ca_finish(&ca);
	cr_assert_eq(proxy_stop(p, T), 0);
	harness_pass();
}

Test(proxy_in, a_wrong_crc32c_is_refused)
{
	unsigned char h[16 + 12 + 7] = { 0 };
	memcpy(h, sig, 12);
	memcpy(h + 12, "\x21\x11\x00\x13", 4); /* 12 address bytes, a CRC32c TLV */
	memcpy(h + 28, "\x03\x00\x04\x01\x02\x03\x04", 7);
	expect_refused("accept_proxy = v2\n" FROM_LOCAL, h, sizeof(h),
		       "bad PROXY v2 header (CRC32c mismatch)");
}

/* ---- one tlsplice behind another ---- */

/* A TLS session to the inner proxy, carried inside the client's session with the outer one
 * (which relays its plaintext, the inner session's records, after its PROXY header). */
struct inner {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *net; /* our side of the pair: the inner session's records */
	struct tlsc *outer;
};

static int inner_flush(struct inner *in)
{
	char buf[16384];
	int n;
	while ((n = BIO_read(in->net, buf, sizeof(buf))) > 0)
		if (tlsc_write_all(in->outer, buf, (size_t)n, T) < 0)
			return -1;
	return 0;
}

static int inner_fill(struct inner *in)
{
	char buf[16384];
	ssize_t n = tlsc_read(in->outer, buf, sizeof(buf), T);
	return n > 0 && BIO_write(in->net, buf, (int)n) == (int)n ? 0 : -1;
}

/* Runs an inner OpenSSL call (handshake, read, write) until it is done; its result. */
static int inner_run(struct inner *in, int (*op)(SSL *, void *, int), void *buf, int len)
{
	for (int i = 0; i < 100; i++) {
		int r = op(in->ssl, buf, len);
		if (inner_flush(in) < 0)
			return -1;
		if (r > 0)
			return r;
		if (SSL_get_error(in->ssl, r) != SSL_ERROR_WANT_READ || inner_fill(in) < 0)
			return -1;
	}
	return -1;
}

static int op_handshake(SSL *s, void *buf, int len)
{
	return SSL_do_handshake(s);
}

static int op_read(SSL *s, void *buf, int len)
{
	return SSL_read(s, buf, len);
}

static int op_write(SSL *s, void *buf, int len)
{
	return SSL_write(s, buf, len);
}

static void inner_open(struct inner *in, struct tlsc *outer)
{
	BIO *ib;
	in->outer = outer;
	in->ctx = SSL_CTX_new(TLS_client_method());
	cr_assert(in->ctx);
	in->ssl = SSL_new(in->ctx);
	cr_assert(in->ssl && BIO_new_bio_pair(&ib, 0, &in->net, 0) == 1);
	SSL_set_bio(in->ssl, ib, ib);
	SSL_set_tlsext_host_name(in->ssl, "demo.test");
	SSL_set_connect_state(in->ssl);
	cr_assert_eq(inner_run(in, op_handshake, NULL, 0), 1, "inner handshake");
}

static void inner_close(struct inner *in)
{
	SSL_free(in->ssl);
	BIO_free(in->net);
	SSL_CTX_free(in->ctx);
}

/* client -> outer tlsplice (proxy_protocol = v2 with TLVs and CRC32c) -> inner tlsplice (accept_proxy = v2,
 * proxy_protocol = v1) -> backend: the backend and both access logs see the client's own
 * address and port, and the address the client reached. */
Test(proxy_in, a_tlsplice_behind_a_tlsplice_keeps_the_client_address)
{
	struct catcher k;
	char server[32], want[128];
	int outer_port = harness_free_port(), inner_port = harness_free_port();
	catcher_start(&k);
	snprintf(server, sizeof(server), "127.0.0.1:%d", k.port);
	struct proxy *inner = start("inner.ini", inner_port,
				    "accept_proxy = v2\naccept_proxy_from = 127.0.0.1\n"
				    "proxy_protocol = v1\n",
				    server);
	snprintf(server, sizeof(server), "127.0.0.1:%d", inner_port);
	struct proxy *outer = start("outer.ini", outer_port,
				    "proxy_protocol = v2\nproxy_protocol_tlvs = authority, ssl\n"
				    "proxy_protocol_crc32c = on\n",
				    server);

	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_connect("127.0.0.1", outer_port, &o);
	cr_assert(c, "outer handshake");
	struct inner in = { 0 };
	char buf[8];
	inner_open(&in, c);
	cr_assert_eq(inner_run(&in, op_write, "ping", 4), 4);
	cr_assert_eq(inner_run(&in, op_read, buf, sizeof(buf)), 4);
	cr_assert_eq(memcmp(buf, "pong", 4), 0);
	catcher_join(&k);

	char client[64]; /* "127.0.0.1:PORT", kept past tlsc_close */
	snprintf(client, sizeof(client), "%s", tlsc_local_addr(c));
	snprintf(want, sizeof(want), "PROXY TCP4 127.0.0.1 127.0.0.1 %s %d\r\nping",
		 strrchr(client, ':') + 1, outer_port);
	cr_assert_str_eq(k.got, want, "the backend got %s", k.got);
	inner_close(&in);
	tlsc_close(c);
	char *l_in = one_line(inner), *l_out = one_line(outer);
	cr_log_info("client %s; the backend got: %s", client, k.got);
	cr_log_info("outer access log: %s", l_out);
	cr_log_info("inner access log: %s", l_in);
	expect_str(l_out, "client", client);
	expect_str(l_in, "client", client);
	expect_num(l_in, "bytes_in", 4);
	free(l_in);
	free(l_out);
	/* a clean exit: ASan builds fail it on a leak */
	cr_assert_eq(proxy_stop(inner, T), 0);
	cr_assert_eq(proxy_stop(outer, T), 0);
	harness_pass();
}
