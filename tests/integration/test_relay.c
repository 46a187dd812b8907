/* Relaying through the proxy: TLS 1.2/1.3 round trips and their access-log line, large
 * full-duplex transfers, half-close in both directions, backends that go away. */
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "blast.h"
#include "expect.h"
#include "harness.h"

TestSuite(relay, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

#define MIB (1024u * 1024u)

/* Starts the proxy in front of backend b; returns it, its port in *port. */
static struct proxy *start_proxy(struct backend *b, const char *fe_extra, int *port)
{
	struct harness_cert crt;
	char backends[512];
	const char *ini;
	struct proxy *p;

	*port = harness_free_port();
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	snprintf(backends, sizeof(backends),
		 "[backend app]\nserver = %s\ncheck = none\nconnect_timeout = 2s\n",
		 backend_addr(b));
	ini = harness_config_web("relay.ini", *port, &crt, "workers = 2\nshutdown_timeout = 2s\n",
				 fe_extra, backends);
	cr_assert(ini);
	p = proxy_start(ini, *port);
	cr_assert(p, "proxy did not start");
	return p;
}

static struct tlsc *connect_version(int port, int version, const char *cipher)
{
	struct tlsc_opts o = { .min_version = version, .max_version = version, .sni = "demo.test" };
	struct tlsc *c;

	if (version == TLS1_3_VERSION)
		o.ciphersuites = cipher;
	else
		o.ciphers = cipher;
	c = tlsc_connect("127.0.0.1", port, &o);
	cr_assert(c, "TLS connect failed");
	return c;
}

/* Waits for exactly one access-log line and returns it. */
static char *one_log_line(struct proxy *p)
{
	int n = alog_wait_lines(proxy_access_log(p), 1, HARNESS_TIMEOUT_MS);
	char *line;

	cr_assert_eq(n, 1, "access log has %d lines", n);
	line = alog_line(proxy_access_log(p), 0);
	cr_assert(line);
	return line;
}

static void expect_timing(const char *line)
{
	char ts[64];
	double hs, dur;
	regex_t re;

	cr_assert_eq(json_str(line, "ts", ts, sizeof(ts)), 0);
	cr_assert_eq(regcomp(&re,
			     "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
			     REG_EXTENDED | REG_NOSUB),
		     0);
	cr_assert_eq(regexec(&re, ts, 0, NULL, 0), 0, "bad ts '%s'", ts);
	regfree(&re);
	cr_assert_eq(json_num(line, "handshake_ms", &hs), 0, "no handshake_ms in %s", line);
	cr_assert_eq(json_num(line, "duration_ms", &dur), 0, "no duration_ms in %s", line);
	cr_assert(hs >= 0 && dur >= hs, "handshake_ms %f duration_ms %f", hs, dur);
}

/* Sends n pattern bytes, close_notify, reads the echo; checks the log line field by field. */
static void roundtrip(int version, const char *cipher, const char *want_version)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port;
	struct proxy *p = start_proxy(b, NULL, &port);
	struct tlsc *c = connect_version(port, version, cipher);
	unsigned char out[20000], in[sizeof(out) + 16];
	char client[64], cipher_used[128], *line;
	ssize_t n;

	cr_assert_str_eq(tlsc_version(c), want_version);
	cr_assert_str_eq(tlsc_cipher(c), cipher);
	snprintf(client, sizeof(client), "%s", tlsc_local_addr(c));
	snprintf(cipher_used, sizeof(cipher_used), "%s", tlsc_cipher(c));
	harness_pattern(0, out, sizeof(out));
	cr_assert_eq(tlsc_write_all(c, out, sizeof(out), 5000), 0);
	cr_assert_eq(tlsc_shutdown(c), 0);
	n = tlsc_read_all(c, in, sizeof(in), 5000);
	cr_assert_eq(n, (ssize_t)sizeof(out), "echo returned %zd bytes: %s", n, tlsc_error(c));
	cr_assert_eq(memcmp(in, out, sizeof(out)), 0, "echo differs");
	cr_assert(tlsc_got_close_notify(c), "stream ended without close_notify");
	tlsc_close(c);

	line = one_log_line(p);
	expect_str(line, "frontend", "web");
	expect_str(line, "client", client);
	expect_str(line, "backend", "app");
	expect_str(line, "server", backend_addr(b));
	expect_str(line, "sni", "demo.test");
	expect_str(line, "alpn", "");
	expect_str(line, "tls_version", want_version);
	expect_str(line, "cipher", cipher_used);
	/* GCM and ChaCha20 suites go to the kernel wherever it offers kTLS */
	expect_str(line, "ktls", harness_kernel_ktls() ? "both" : "none");
	expect_str(line, "relay", harness_kernel_ktls() ? "splice" : "userspace");
	expect_num(line, "bytes_in", sizeof(out));
	expect_num(line, "bytes_out", sizeof(out));
	expect_str(line, "close", "client_eof");
	expect_error(line, false);
	expect_timing(line);
	free(line);
	cr_assert_eq(proxy_stop(p, 5000), 0);
	harness_pass();
}

Test(relay, tls13_roundtrip_and_log)
{
	roundtrip(TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", "TLSv1.3");
}

Test(relay, tls12_roundtrip_and_log)
{
	roundtrip(TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", "TLSv1.2");
}

struct duplex_job {
	int port;
	struct tlsc_transfer t;
	int rc;
	char err[256];
};

static void *duplex_thread(void *arg)
{
	struct duplex_job *j = arg;
	struct tlsc_opts o = { .sni = "demo.test", .timeout_ms = 20000 };
	struct tlsc *c = tlsc_connect("127.0.0.1", j->port, &o);

	j->rc = -1;
	if (!c) {
		snprintf(j->err, sizeof(j->err), "connect failed");
		return NULL;
	}
	j->rc = tlsc_transfer_run(c, &j->t);
	snprintf(j->err, sizeof(j->err), "%s", tlsc_error(c));
	tlsc_close(c);
	return NULL;
}

Test(relay, four_connections_32mib_full_duplex, .timeout = 240)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port, i;
	struct proxy *p = start_proxy(b, NULL, &port);
	struct duplex_job jobs[4];
	pthread_t th[4];
	char want[65];
	const uint64_t size = 32 * (uint64_t)MIB;

	harness_pattern_sha256_hex(size, want);
	for (i = 0; i < 4; i++) {
		jobs[i] = (struct duplex_job){ .port = port };
		jobs[i].t = (struct tlsc_transfer){ .send_bytes = size, .timeout_ms = 180000 };
		cr_assert_eq(pthread_create(&th[i], NULL, duplex_thread, &jobs[i]), 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 4; i++) {
		cr_assert_eq(jobs[i].rc, 0, "connection %d failed: %s", i, jobs[i].err);
		cr_assert_eq(jobs[i].t.received, size, "connection %d received %llu", i,
			     (unsigned long long)jobs[i].t.received);
		cr_assert_str_eq(jobs[i].t.recv_sha, want, "connection %d: data corrupted", i);
		cr_assert(jobs[i].t.got_close_notify);
	}
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 4, HARNESS_TIMEOUT_MS), 4);
	for (i = 0; i < 4; i++) {
		char *line = alog_line(proxy_access_log(p), i);

		expect_num(line, "bytes_in", (double)size);
		expect_num(line, "bytes_out", (double)size);
		expect_str(line, "close", "client_eof");
		free(line);
	}
	harness_pass();
}

/* Client sends, then ends its side (close_notify or TCP FIN); the sink backend answers only
 * after it sees EOF, so its reply proves both the half-close and the open return path. */
static void client_halfclose(int version, bool tcp)
{
	struct backend *b = backend_start(BACKEND_SINK, 0, NULL, 0);
	int port;
	struct proxy *p = start_proxy(b, NULL, &port);
	struct tlsc *c = connect_version(port, version,
					 version == TLS1_3_VERSION
						 ? "TLS_AES_128_GCM_SHA256"
						 : "ECDHE-ECDSA-AES256-GCM-SHA384");
	struct tlsc_transfer t = { .send_bytes = 3 * MIB + 17,
				   .tcp_halfclose = tcp,
				   .timeout_ms = 10000 };
	char want[65], reply[66], *line;
	struct backend_stats st;

	cr_assert_eq(tlsc_transfer_run(c, &t), 0, "transfer: %s", tlsc_error(c));
	harness_pattern_sha256_hex(t.send_bytes, want);
	cr_assert_eq(t.received, 65, "reply of %llu bytes", (unsigned long long)t.received);
	backend_get_stats(b, &st);
	cr_assert_eq(st.eofs, 1, "backend saw %u EOFs", st.eofs);
	cr_assert_str_eq(st.last_sha, want, "backend got different bytes");
	tlsc_close(c);
	/* Re-check the reply bytes themselves: hash the expected "HEX\n". */
	snprintf(reply, sizeof(reply), "%s\n", want);
	harness_sha256_hex(reply, 65, want);
	cr_assert_str_eq(t.recv_sha, want, "reply is not the backend's hash line");

	line = one_log_line(p);
	expect_str(line, "close", "client_eof");
	expect_num(line, "bytes_in", (double)t.send_bytes);
	expect_num(line, "bytes_out", 65);
	free(line);
	harness_pass();
}

Test(relay, tls13_client_close_notify_halfclose)
{
	client_halfclose(TLS1_3_VERSION, false);
}

Test(relay, tls12_client_close_notify_halfclose)
{
	client_halfclose(TLS1_2_VERSION, false);
}

Test(relay, tls13_client_tcp_fin_halfclose)
{
	client_halfclose(TLS1_3_VERSION, true);
}

Test(relay, tls12_client_tcp_fin_halfclose)
{
	client_halfclose(TLS1_2_VERSION, true);
}

/* The backend sends, then shuts down its write side: the client gets close_notify and can
 * still send; what it sends after reaches the backend. */
static void backend_halfclose(int version)
{
	const uint64_t nsrc = 1 * MIB + 3;
	struct backend *b = backend_start(BACKEND_SOURCE, 0, NULL, nsrc);
	int port;
	struct proxy *p = start_proxy(b, NULL, &port);
	struct tlsc *c = connect_version(port, version,
					 version == TLS1_3_VERSION
						 ? "TLS_AES_256_GCM_SHA384"
						 : "ECDHE-ECDSA-CHACHA20-POLY1305");
	unsigned char *in = malloc(nsrc), *exp = malloc(nsrc), after[5000];
	struct backend_stats st;
	char want[65], *line;
	ssize_t n;

	n = tlsc_read_all(c, in, nsrc, 10000);
	cr_assert_eq(n, (ssize_t)nsrc, "read %zd: %s", n, tlsc_error(c));
	harness_pattern(0, exp, nsrc);
	cr_assert_eq(memcmp(in, exp, nsrc), 0, "data corrupted");
	cr_assert(tlsc_got_close_notify(c), "backend FIN did not become close_notify");
	harness_pattern(0, after, sizeof(after));
	cr_assert_eq(tlsc_write_all(c, after, sizeof(after), 5000), 0, "%s", tlsc_error(c));
	cr_assert_eq(tlsc_shutdown(c), 0);
	cr_assert(backend_wait_idle(b, HARNESS_TIMEOUT_MS), "backend connection never ended");
	backend_get_stats(b, &st);
	cr_assert_eq(st.last_in, sizeof(after), "backend got %llu bytes after its FIN",
		     (unsigned long long)st.last_in);
	harness_sha256_hex(after, sizeof(after), want);
	cr_assert_str_eq(st.last_sha, want);
	tlsc_close(c);

	line = one_log_line(p);
	expect_str(line, "close", "server_eof");
	expect_num(line, "bytes_out", (double)nsrc);
	expect_num(line, "bytes_in", sizeof(after));
	expect_error(line, false);
	free(line);
	free(in);
	free(exp);
	harness_pass();
}

Test(relay, tls13_backend_fin_sends_close_notify)
{
	backend_halfclose(TLS1_3_VERSION);
}

Test(relay, tls12_backend_fin_sends_close_notify)
{
	backend_halfclose(TLS1_2_VERSION);
}

Test(relay, backend_dies_mid_stream)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port;
	struct proxy *p = start_proxy(b, NULL, &port);
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	char buf[64];
	char *line;

	cr_assert(c);
	cr_assert_eq(tlsc_write_all(c, "ping\n", 5, 5000), 0);
	cr_assert_eq(tlsc_read(c, buf, sizeof(buf), 5000), 5);
	backend_stop(b); /* closes every backend connection */
	cr_assert_eq(tlsc_read(c, buf, sizeof(buf), 5000), 0,
		     "client connection not ended after the backend went away: %s", tlsc_error(c));
	tlsc_close(c);
	line = one_log_line(p);
	expect_str(line, "close", "server_eof");
	expect_num(line, "bytes_in", 5);
	expect_num(line, "bytes_out", 5);
	free(line);
	harness_pass();
}

Test(relay, backend_reset_mid_stream_logs_error)
{
	const uint64_t nsrc = 200000;
	struct backend *b = backend_start(BACKEND_RESET, 0, NULL, nsrc);
	int port;
	struct proxy *p = start_proxy(b, NULL, &port);
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	unsigned char *in = malloc(nsrc);
	char err[512], *line;
	ssize_t n;

	cr_assert(c);
	cr_assert_eq(tlsc_write_all(c, "go", 2, 5000), 0);
	/* The reset may cut the data short; what matters is that the connection ends. */
	n = tlsc_read_all(c, in, nsrc, 10000);
	cr_assert(n >= 0 || !tlsc_timed_out(c), "client connection still open after the reset");
	cr_assert(n <= (ssize_t)nsrc);
	tlsc_close(c);
	line = one_log_line(p);
	expect_str(line, "close", "server_eof");
	cr_assert_eq(json_str(line, "error", err, sizeof(err)), 0, "no error field in %s", line);
	cr_assert_str_not_empty(err, "reset without error text: %s", line);
	free(line);
	free(in);
	harness_pass();
}

/* Finishes b's handshake, sends "ping" and reads its echo into reply, while reading the
 * sink's connections, all on this one thread: when it loses its core the sink stops too, so
 * the bytes the sink counts meanwhile measure the proxy's order of work, not how promptly
 * the machine ran the client. Returns 0, or -1 with the step that failed in reply. */
static int talk_while_sinking(struct fast_sink *s, struct tlsc *b, char reply[8])
{
	int64_t end = harness_now_ms() + HARNESS_TIMEOUT_MS;
	int done = 0; /* 0: handshake, 1: echo being read, 2..5: bytes of it read */
	struct pollfd fds[2 + SINK_CONNS];

	while (done < 5 && harness_now_ms() < end) {
		memcpy(fds, s->p, s->n * sizeof(fds[0]));
		fds[s->n] = (struct pollfd){ .fd = tlsc_fd(b), .events = POLLIN };
		if (poll(fds, s->n + 1, 100) < 0)
			break;
		for (size_t i = 0; i < s->n; i++)
			s->p[i].revents = fds[i].revents;
		sink_serve(s);
		if (done == 0) {
			int r = tlsc_handshake(b, 0);
			if (r < 0)
				return snprintf(reply, 8, "hs"), -1;
			if (r == 1 && tlsc_write_all(b, "ping", 4, HARNESS_TIMEOUT_MS) < 0)
				return snprintf(reply, 8, "write"), -1;
			done = r;
		} else if (fds[s->n].revents) {
			ssize_t n = tlsc_read(b, reply + done - 1, (size_t)(5 - done), 0);
			if (n == 0 || (n < 0 && !tlsc_timed_out(b)))
				return snprintf(reply, 8, "read"), -1;
			done += n > 0 ? (int)n : 0;
		}
	}
	if (done < 5)
		snprintf(reply, 8, "time");
	return done == 5 ? 0 : -1;
}

/* Clients that keep their sockets full must not starve the others on their worker. With one
 * worker stopped, four senders queue megabytes each in the kernel and another client its
 * ClientHello; once the worker runs again, that client's handshake and echo round trip must
 * finish while most of what was queued is still waiting, not only after the worker has
 * relayed it all in one go. */
Test(relay, busy_clients_do_not_starve_worker)
{
	struct fast_sink silent;
	struct backend *echo = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port(), port2 = harness_free_port();
	struct harness_cert crt;
	char rest[10240], reply[8];
	struct tlsc_opts o = { .sni = "demo.test",
			       .min_version = TLS1_3_VERSION,
			       .timeout_ms = 5000,
			       .ciphersuites = BLAST_SUITE };
	struct blaster bl[BLASTERS];
	uint64_t base, queued, got;
	struct proxy *p;
	struct tlsc *b;
	const char *ini;

	BLAST_SKIP_IF_EMULATED();
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	cr_assert_eq(sink_start(&silent), 0);
	snprintf(rest, sizeof(rest),
		 "[frontend other]\nlisten = 127.0.0.1:%d\ncert = %s\nkey = %s\nbackend = echo\n"
		 "[backend app]\nserver = %s\ncheck = none\n"
		 "[backend echo]\nserver = %s\ncheck = none\n",
		 port2, crt.cert, crt.key, silent.addr, backend_addr(echo));
	ini = harness_config_web("fair.ini", port, &crt, "workers = 1\n", NULL, rest);
	cr_assert(ini && (p = proxy_start(ini, port)));
	for (int i = 0; i < BLASTERS; i++) {
		struct tlsc *a = tlsc_connect("127.0.0.1", port, &o);
		cr_assert(a);
		cr_assert_eq(blast_prepare(&bl[i], a, 1152 * BLAST_GROUP), 0);
	}
	cr_assert(sink_wait_accepted(&silent, BLASTERS, HARNESS_TIMEOUT_MS));
	cr_assert(blast_warm_up(bl, BLASTERS, &silent, 128));
	base = blast_total(bl, BLASTERS);
	cr_assert_eq(proxy_signal(p, SIGSTOP), 0);
	cr_assert(blast_wait_stopped(proxy_pid(p), HARNESS_TIMEOUT_MS));
	for (int i = 0; i < BLASTERS; i++)
		cr_assert_eq(blast_start(&bl[i], 0, 60000), 0);
	b = tlsc_open("127.0.0.1", port2, &o);
	cr_assert(b);
	cr_assert_eq(tlsc_handshake(b, 50), 0); /* the ClientHello is queued */
	/* the senders stop when the kernel holds no more: everything they sent is queued */
	cr_assert(blast_wait_blocked(bl, BLASTERS, HARNESS_TIMEOUT_MS));
	queued = blast_total(bl, BLASTERS) - base;
	cr_assert_geq(queued, 16 * MIB, "only %llu bytes queued", (unsigned long long)queued);
	base = atomic_load(&silent.bytes);
	sink_halt(&silent); /* from here this thread reads the sink and talks as the client */
	cr_assert_eq(proxy_signal(p, SIGCONT), 0);
	cr_assert_eq(talk_while_sinking(&silent, b, reply), 0, "other client: %s", reply);
	cr_assert(memcmp(reply, "ping", 4) == 0);
	got = atomic_load(&silent.bytes) - base;
	cr_log_info("other client served after %llu bytes relayed of %llu queued",
		    (unsigned long long)got, (unsigned long long)queued);
	cr_assert_lt(got, queued / 2, "other client served only after %llu of %llu queued bytes",
		     (unsigned long long)got, (unsigned long long)queued);
	for (int i = 0; i < BLASTERS; i++)
		blast_stop(&bl[i]);
	sink_stop(&silent);
	tlsc_close(b);
	harness_pass();
}
