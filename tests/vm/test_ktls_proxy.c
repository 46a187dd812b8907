/* The real proxy with kernel TLS, run inside the VM by scripts/vmtest.sh: every relay case of
 * the contract (ciphers, bulk, half-close, KeyUpdate, resets, many connections, fd hygiene,
 * the ktls/splice switches), proven by the access log and by /proc/net/tls_stat.
 *
 * On a kernel without kTLS every case skips with the reason. The tls_stat counters are per
 * network namespace and the proxy shares this one, so the cases run one at a time (see
 * main() below) and count exact deltas; nothing else in the VM installs kTLS keys. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <criterion/criterion.h>
#include <criterion/options.h>
#include <openssl/crypto.h>

#include "expect.h"
#include "harness.h"
#include "ktls_fixture.h"
#define SHORT_CONNS 1000
#define SHORT_THREADS 4
#define SHORT_BYTES 300
/* Pipes the proxy may keep open for reuse after the last connection closed: the pool only
 * holds pipes that were in use at the same moment, at most 2 per connection (one each way);
 * the fd case never has more than FD_CASE_CONCURRENCY connections open at once. */
#define FD_CASE_CONCURRENCY 4
#define FD_PIPE_ALLOWANCE (2 * 2 * FD_CASE_CONCURRENCY)

TestSuite(ktls_proxy, .init = harness_setup, .fini = harness_teardown, .timeout = 240);

/* ---- access log ---- */

/* The line of the connection from client address `client` (malloc'd); fails if none. */
static char *line_of(const struct fx *f, const char *client)
{
	char *line = alog_wait_find(f->log, "client", client, HARNESS_TIMEOUT_MS);

	cr_assert(line, "no access-log line for client %s", client);
	return line;
}

static void expect_kernel_splice(const char *line)
{
	expect_str(line, "ktls", "both");
	expect_str(line, "relay", "splice");
}

/* ---- scenarios (each uses one connection and checks its log line) ---- */

/* Echo of `len` pattern bytes, then close_notify; the log line must show ktls and relay. */
static void echo_roundtrip(const struct fx *f, int version, const char *cipher, size_t len,
			   const char *ktls, const char *relay)
{
	struct tlsc *c = fx_connect(f, version, cipher, "demo.test");
	unsigned char *out = malloc(len), *in = malloc(len + 1);
	char client[64], *line;
	ssize_t n;

	cr_assert(out && in);
	snprintf(client, sizeof(client), "%s", tlsc_local_addr(c));
	harness_pattern(0, out, len);
	cr_assert_eq(tlsc_write_all(c, out, len, 20000), 0, "write: %s", tlsc_error(c));
	cr_assert_eq(tlsc_shutdown(c), 0, "close_notify: %s", tlsc_error(c));
	n = tlsc_read_all(c, in, len + 1, 20000);
	cr_assert_eq(n, (ssize_t)len, "echo returned %zd of %zu bytes: %s", n, len, tlsc_error(c));
	cr_assert_eq(memcmp(in, out, len), 0, "echo differs");
	cr_assert(tlsc_got_close_notify(c), "stream ended without close_notify");
	tlsc_close(c);
	line = line_of(f, client);
	expect_str(line, "ktls", ktls);
	expect_str(line, "relay", relay);
	expect_str(line, "tls_version", version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2");
	if (cipher)
		expect_str(line, "cipher", cipher);
	expect_num(line, "bytes_in", (double)len);
	expect_num(line, "bytes_out", (double)len);
	expect_str(line, "close", "client_eof");
	expect_error(line, false);
	free(line);
	free(out);
	free(in);
}

/* Full-duplex bulk through the echo backend, SHA-256 checked both ways. */
static void duplex(const struct fx *f, int version, uint64_t size)
{
	struct tlsc *c = fx_connect(f, version, NULL, "demo.test");
	struct tlsc_transfer t = { .send_bytes = size, .timeout_ms = 200000 };
	char client[64], want[65], *line;

	snprintf(client, sizeof(client), "%s", tlsc_local_addr(c));
	cr_assert_eq(tlsc_transfer_run(c, &t), 0, "transfer: %s (received %llu)", tlsc_error(c),
		     (unsigned long long)t.received);
	harness_pattern_sha256_hex(size, want);
	cr_assert_eq(t.received, size, "received %llu", (unsigned long long)t.received);
	cr_assert_str_eq(t.recv_sha, want, "data corrupted");
	cr_assert(t.got_close_notify, "stream ended without close_notify");
	tlsc_close(c);
	line = line_of(f, client);
	expect_kernel_splice(line);
	expect_num(line, "bytes_in", (double)size);
	expect_num(line, "bytes_out", (double)size);
	expect_str(line, "close", "client_eof");
	expect_error(line, false);
	free(line);
}

/* Client data then close_notify: the sink answers only after EOF, so its reply proves the
 * half-close reached the backend and the way back stayed open. */
static void client_halfclose(const struct fx *f, int version)
{
	struct tlsc *c = fx_connect(f, version, NULL, "sink.test");
	struct tlsc_transfer t = { .send_bytes = 3 * MIB + 17, .timeout_ms = 60000 };
	struct backend_stats st;
	char client[64], want[65], reply[66], *line;

	snprintf(client, sizeof(client), "%s", tlsc_local_addr(c));
	cr_assert_eq(tlsc_transfer_run(c, &t), 0, "transfer: %s", tlsc_error(c));
	harness_pattern_sha256_hex(t.send_bytes, want);
	cr_assert(backend_wait_idle(f->sink, HARNESS_TIMEOUT_MS));
	backend_get_stats(f->sink, &st);
	cr_assert_eq(st.last_in, t.send_bytes, "sink read %llu", (unsigned long long)st.last_in);
	cr_assert_str_eq(st.last_sha, want, "sink got different bytes");
	snprintf(reply, sizeof(reply), "%s\n", want);
	harness_sha256_hex(reply, 65, want);
	cr_assert_eq(t.received, 65, "reply of %llu bytes", (unsigned long long)t.received);
	cr_assert_str_eq(t.recv_sha, want, "reply is not the sink's hash line");
	cr_assert(t.got_close_notify, "reply ended without close_notify");
	tlsc_close(c);
	line = line_of(f, client);
	expect_kernel_splice(line);
	expect_str(line, "close", "client_eof");
	expect_num(line, "bytes_in", (double)t.send_bytes);
	expect_num(line, "bytes_out", 65);
	expect_error(line, false);
	free(line);
}

/* Backend sends then FIN: the client gets close_notify and can still send to the backend. */
static void backend_halfclose(const struct fx *f, int version)
{
	struct tlsc *c = fx_connect(f, version, NULL, "source.test");
	unsigned char *in = malloc(SOURCE_BYTES + 1), *exp = malloc(SOURCE_BYTES), after[5000];
	struct backend_stats st;
	char client[64], want[65], *line;
	ssize_t n;

	cr_assert(in && exp);
	snprintf(client, sizeof(client), "%s", tlsc_local_addr(c));
	n = tlsc_read_all(c, in, SOURCE_BYTES + 1, 30000);
	cr_assert_eq(n, (ssize_t)SOURCE_BYTES, "read %zd: %s", n, tlsc_error(c));
	harness_pattern(0, exp, SOURCE_BYTES);
	cr_assert_eq(memcmp(in, exp, SOURCE_BYTES), 0, "data corrupted");
	cr_assert(tlsc_got_close_notify(c), "backend FIN did not become close_notify");
	harness_pattern(0, after, sizeof(after));
	cr_assert_eq(tlsc_write_all(c, after, sizeof(after), 10000), 0, "%s", tlsc_error(c));
	cr_assert_eq(tlsc_shutdown(c), 0);
	cr_assert(backend_wait_idle(f->source, HARNESS_TIMEOUT_MS),
		  "backend connection never ended");
	backend_get_stats(f->source, &st);
	cr_assert_eq(st.last_in, sizeof(after), "backend got %llu bytes after its FIN",
		     (unsigned long long)st.last_in);
	harness_sha256_hex(after, sizeof(after), want);
	cr_assert_str_eq(st.last_sha, want);
	tlsc_close(c);
	line = line_of(f, client);
	expect_kernel_splice(line);
	expect_str(line, "close", "server_eof");
	expect_num(line, "bytes_out", (double)SOURCE_BYTES);
	expect_num(line, "bytes_in", sizeof(after));
	expect_error(line, false);
	free(line);
	free(in);
	free(exp);
}

/* Reads exactly len bytes (bounded); they must be the pattern from offset 0. */
static void read_exact_pattern(struct tlsc *c, size_t len)
{
	unsigned char *in = malloc(len), *exp = malloc(len);
	size_t got = 0;
	int64_t deadline = harness_now_ms() + 30000;

	cr_assert(in && exp);
	while (got < len && harness_now_ms() < deadline) {
		ssize_t n = tlsc_read(c, in + got, len - got, (int)(deadline - harness_now_ms()));
		cr_assert_gt(n, 0, "stream ended after %zu of %zu bytes: %s", got, len,
			     tlsc_error(c));
		got += (size_t)n;
	}
	cr_assert_eq(got, len, "got %zu of %zu bytes in time", got, len);
	harness_pattern(0, exp, len);
	cr_assert_eq(memcmp(in, exp, len), 0, "data corrupted");
	free(in);
	free(exp);
}

/* TLS 1.3 KeyUpdate mid-stream on a kernel that can re-key (tls_stat counts re-keys): the
 * proxy follows it in the kernel, what comes after it is relayed too, and the connection
 * ends as the client ends it. */
static void key_update_followed(const struct fx *f, const char *cipher)
{
	const size_t part = 40 * KIB + 5;
	struct tlsc *c = fx_connect(f, TLS1_3_VERSION, cipher, "demo.test");
	unsigned char *out = malloc(part);
	char client[64], *line;

	cr_assert(out);
	snprintf(client, sizeof(client), "%s", tlsc_local_addr(c));
	harness_pattern(0, out, part);
	cr_assert_eq(tlsc_write_all(c, out, part, 20000), 0, "write: %s", tlsc_error(c));
	read_exact_pattern(c, part);
	cr_assert_eq(SSL_key_update(tlsc_ssl(c), SSL_KEY_UPDATE_REQUESTED), 1);
	cr_assert_eq(tlsc_write_all(c, out, part, 20000), 0, "write after KeyUpdate: %s",
		     tlsc_error(c));
	read_exact_pattern(c, part);
	cr_assert_eq(tlsc_shutdown(c), 0, "close_notify: %s", tlsc_error(c));
	cr_assert_eq(tlsc_read_all(c, NULL, 0, 20000), 0, "bytes after the echo");
	tlsc_close(c);
	line = line_of(f, client);
	expect_kernel_splice(line);
	expect_str(line, "close", "client_eof");
	expect_num(line, "bytes_in", 2.0 * part);
	expect_num(line, "bytes_out", 2.0 * part);
	expect_num(line, "key_updates", 2); /* the client's, and our answer */
	expect_error(line, false);
	free(line);
	free(out);
}

/* TLS 1.3 KeyUpdate mid-stream. On a kernel that cannot re-key (no re-key counters in
 * tls_stat: 6.1), what came before it arrives intact, nothing after it is relayed (the
 * kernel cannot decrypt it), and the connection ends as "key_update"; elsewhere it is
 * followed (key_update_followed). */
static void key_update(const struct fx *f, const char *cipher)
{
	const size_t part1 = 40 * KIB + 5;
	unsigned char part2[8192], rest[4096];
	struct backend_stats before, after;
	char client[64], *line;
	struct tlsc *c;
	unsigned char *out;
	ssize_t n;

	if (tls_stat("TlsRxRekeyOk") >= 0) {
		key_update_followed(f, cipher);
		return;
	}
	c = fx_connect(f, TLS1_3_VERSION, cipher, "demo.test");
	out = malloc(part1);

	cr_assert(out);
	backend_get_stats(f->echo, &before);
	snprintf(client, sizeof(client), "%s", tlsc_local_addr(c));
	harness_pattern(0, out, part1);
	cr_assert_eq(tlsc_write_all(c, out, part1, 20000), 0, "write: %s", tlsc_error(c));
	read_exact_pattern(c, part1);
	cr_assert_eq(SSL_key_update(tlsc_ssl(c), SSL_KEY_UPDATE_NOT_REQUESTED), 1);
	harness_pattern(part1, part2, sizeof(part2));
	/* the proxy may already have closed, so this write may fail; the data must not pass */
	(void)tlsc_write_all(c, part2, sizeof(part2), 10000);
	n = tlsc_read_all(c, rest, sizeof(rest), 20000);
	cr_assert(n >= 0 || !tlsc_timed_out(c), "connection still open after the KeyUpdate");
	cr_assert(n <= 0, "%zd bytes arrived after the KeyUpdate", n);
	tlsc_close(c);
	line = line_of(f, client);
	expect_kernel_splice(line);
	expect_str(line, "close", "key_update");
	expect_num(line, "bytes_in", (double)part1);
	expect_num(line, "bytes_out", (double)part1);
	free(line);
	cr_assert(backend_wait_idle(f->echo, HARNESS_TIMEOUT_MS));
	backend_get_stats(f->echo, &after);
	cr_assert_eq(after.bytes_in - before.bytes_in, part1, "backend got %llu bytes, want %zu",
		     (unsigned long long)(after.bytes_in - before.bytes_in), part1);
	free(out);
}

/* Closes the client's socket with a TCP reset (SO_LINGER 0) and no close_notify. */
static void client_reset(struct tlsc *c)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	cr_assert_eq(setsockopt(tlsc_fd(c), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	tlsc_close(c);
}

/* The client resets while the backend streams to it (backend->client is mid-splice). */
static void client_reset_while_receiving(const struct fx *f)
{
	struct tlsc *c = fx_connect(f, 0, NULL, "endless.test");
	char client[64], *line;
	double out;

	snprintf(client, sizeof(client), "%s", tlsc_local_addr(c));
	cr_assert_eq(tlsc_write_all(c, "go", 2, 5000), 0);
	read_exact_pattern(c, 1 * MIB);
	client_reset(c);
	line = line_of(f, client);
	expect_kernel_splice(line);
	expect_str(line, "close", "client_eof");
	expect_error(line, true);
	cr_assert_eq(json_num(line, "bytes_out", &out), 0);
	cr_assert(out >= 1.0 * MIB && out < (double)ENDLESS_BYTES, "bytes_out %.0f", out);
	free(line);
}

/* The client resets while it streams to the sink (client->backend is mid-splice). */
static void client_reset_while_sending(const struct fx *f)
{
	struct tlsc *c = fx_connect(f, 0, NULL, "sink.test");
	unsigned char chunk[16384];
	char client[64], *line;
	uint64_t sent = 0;
	double in;

	snprintf(client, sizeof(client), "%s", tlsc_local_addr(c));
	while (sent < 2 * MIB) {
		harness_pattern(sent, chunk, sizeof(chunk));
		cr_assert_eq(tlsc_write_all(c, chunk, sizeof(chunk), 10000), 0, "%s",
			     tlsc_error(c));
		sent += sizeof(chunk);
	}
	client_reset(c);
	line = line_of(f, client);
	expect_kernel_splice(line);
	expect_str(line, "close", "client_eof");
	expect_error(line, true);
	cr_assert_eq(json_num(line, "bytes_in", &in), 0);
	cr_assert(in <= (double)sent, "bytes_in %.0f > sent %llu", in, (unsigned long long)sent);
	expect_num(line, "bytes_out", 0);
	free(line);
}

/* The backend sends RESET_BYTES and resets: the client's connection ends, the log says why. */
static void backend_reset(const struct fx *f)
{
	struct tlsc *c = fx_connect(f, 0, NULL, "reset.test");
	unsigned char *in = malloc(RESET_BYTES + 1);
	char client[64], *line;
	ssize_t n;
	double out;

	cr_assert(in);
	snprintf(client, sizeof(client), "%s", tlsc_local_addr(c));
	cr_assert_eq(tlsc_write_all(c, "go", 2, 5000), 0);
	/* the reset may cut the data short; what matters is that the connection ends */
	n = tlsc_read_all(c, in, RESET_BYTES + 1, 30000);
	cr_assert(n >= 0 || !tlsc_timed_out(c), "client connection still open after the reset");
	cr_assert(n <= (ssize_t)RESET_BYTES, "read %zd", n);
	tlsc_close(c);
	line = line_of(f, client);
	expect_kernel_splice(line);
	expect_str(line, "close", "server_eof");
	expect_error(line, true);
	expect_num(line, "bytes_in", 2);
	cr_assert_eq(json_num(line, "bytes_out", &out), 0);
	cr_assert(out <= (double)RESET_BYTES, "bytes_out %.0f", out);
	if (n > 0)
		cr_assert(out >= (double)n, "client read %zd, log says %.0f", n, out);
	free(line);
	free(in);
}

/* ---- many short connections, from threads (no Criterion asserts off the main thread) ---- */

struct short_job {
	int port, count, ok;
	int64_t deadline;
	char err[256];
};

static bool short_one(struct short_job *j, int i)
{
	struct tlsc_opts o = { .sni = "demo.test",
			       .timeout_ms = 20000,
			       .min_version = i % 2 ? TLS1_2_VERSION : TLS1_3_VERSION,
			       .max_version = i % 2 ? TLS1_2_VERSION : TLS1_3_VERSION };
	unsigned char out[SHORT_BYTES], in[SHORT_BYTES + 1];
	struct tlsc *c = tlsc_connect("127.0.0.1", j->port, &o);
	bool ok;
	ssize_t n;

	if (!c) {
		snprintf(j->err, sizeof(j->err), "connect %d failed", i);
		return false;
	}
	harness_pattern((uint64_t)i, out, sizeof(out));
	ok = tlsc_write_all(c, out, sizeof(out), 10000) == 0 && tlsc_shutdown(c) == 0;
	n = ok ? tlsc_read_all(c, in, sizeof(in), 10000) : -1;
	ok = n == (ssize_t)sizeof(out) && memcmp(in, out, sizeof(out)) == 0 &&
	     tlsc_got_close_notify(c);
	if (!ok)
		snprintf(j->err, sizeof(j->err), "connection %d: echo %zd bytes: %s", i, n,
			 tlsc_error(c));
	tlsc_close(c);
	return ok;
}

static void *short_thread(void *arg)
{
	struct short_job *j = arg;

	for (int i = 0; i < j->count && harness_now_ms() < j->deadline; i++)
		if (short_one(j, i))
			j->ok++;
	return NULL;
}

/* total connections from `threads` threads, all must succeed within limit_ms; then every
 * one of them has a log line with kernel TLS and splice. */
static void short_connections(const struct fx *f, int total, int threads, int limit_ms)
{
	struct short_job jobs[SHORT_THREADS];
	pthread_t th[SHORT_THREADS];
	int64_t t0 = harness_now_ms();
	int ok = 0, lines0, i;
	char *text;

	cr_assert(threads <= SHORT_THREADS);
	text = harness_read_file(f->log, NULL);
	lines0 = text ? harness_count_lines(text) : 0;
	free(text);
	for (i = 0; i < threads; i++) {
		jobs[i] = (struct short_job){ .port = f->port,
					      .count = total / threads,
					      .deadline = t0 + limit_ms };
		cr_assert_eq(pthread_create(&th[i], NULL, short_thread, &jobs[i]), 0);
	}
	for (i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		ok += jobs[i].ok;
	}
	for (i = 0; i < threads; i++)
		cr_assert_eq(jobs[i].ok, jobs[i].count, "thread %d: %d of %d connections ok: %s", i,
			     jobs[i].ok, jobs[i].count, jobs[i].err);
	cr_assert_eq(ok, total);
	cr_log_info("%d short connections in %lld ms", total, (long long)(harness_now_ms() - t0));
	cr_assert_eq(alog_wait_lines(f->log, lines0 + total, 30000), lines0 + total);
}

/* ---- proxy file descriptors ---- */

struct fdcount {
	int pipes, other;
};

static struct fdcount fds_of(pid_t pid)
{
	struct fdcount n = { 0, 0 };
	char dir[64], path[384], target[256];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	cr_assert(d, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		ssize_t len;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len < 0)
			continue; /* closed while we looked */
		target[len] = '\0';
		if (strncmp(target, "pipe:", 5) == 0)
			n.pipes++;
		else
			n.other++;
	}
	closedir(d);
	return n;
}

/* Waits (bounded) until the proxy's non-pipe fds are back to base (a connection's log line
 * is written just before its sockets are closed); returns the last count. */
static struct fdcount fds_settle(pid_t pid, const struct fdcount *base)
{
	int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
	struct fdcount n = fds_of(pid);

	while (n.other != base->other && harness_now_ms() < deadline) {
		usleep(20000); /* nothing to wait on: the fds belong to another process */
		n = fds_of(pid);
	}
	return n;
}

/* Waits (bounded) until no kTLS session is open any more (all sockets closed). */
static struct tls_stats stats_settle(const struct tls_stats *base)
{
	int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;
	struct tls_stats s = tls_stats_now();

	while ((s.curr_tx != base->curr_tx || s.curr_rx != base->curr_rx) &&
	       harness_now_ms() < deadline) {
		usleep(20000);
		s = tls_stats_now();
	}
	return s;
}

/* ---- cases ---- */

#define N_CONNS 4

static void cipher_case(int version, const char *cipher)
{
	struct fx f;
	struct tls_stats before;

	need_ktls();
	fx_start(&f, NULL);
	before = tls_stats_now();
	for (int i = 0; i < N_CONNS; i++)
		echo_roundtrip(&f, version, cipher, 20 * KIB + 1000 * (size_t)i, "both", "splice");
	cr_assert_eq(alog_wait_lines(f.log, N_CONNS, HARNESS_TIMEOUT_MS), N_CONNS);
	expect_sessions(&before, N_CONNS, N_CONNS);
	harness_pass();
}

Test(ktls_proxy, tls13_aes128gcm_echo)
{
	cipher_case(TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256");
}

Test(ktls_proxy, tls13_aes256gcm_echo)
{
	cipher_case(TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384");
}

Test(ktls_proxy, tls13_chacha20_echo)
{
	cipher_case(TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256");
}

Test(ktls_proxy, tls12_aes128gcm_echo)
{
	cipher_case(TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256");
}

Test(ktls_proxy, tls12_aes256gcm_echo)
{
	cipher_case(TLS1_2_VERSION, "ECDHE-ECDSA-AES256-GCM-SHA384");
}

Test(ktls_proxy, tls12_chacha20_echo)
{
	cipher_case(TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305");
}

static void bulk_case(int version)
{
	struct fx f;
	struct tls_stats before;

	need_ktls();
	fx_start(&f, NULL);
	before = tls_stats_now();
	duplex(&f, version, 64 * (uint64_t)MIB);
	expect_sessions(&before, 1, 1);
	harness_pass();
}

Test(ktls_proxy, tls13_64mib_full_duplex, .timeout = 300)
{
	bulk_case(TLS1_3_VERSION);
}

Test(ktls_proxy, tls12_64mib_full_duplex, .timeout = 300)
{
	bulk_case(TLS1_2_VERSION);
}

Test(ktls_proxy, half_close_both_ways)
{
	struct fx f;
	struct tls_stats before;

	need_ktls();
	fx_start(&f, NULL);
	before = tls_stats_now();
	client_halfclose(&f, TLS1_3_VERSION);
	client_halfclose(&f, TLS1_2_VERSION);
	backend_halfclose(&f, TLS1_3_VERSION);
	backend_halfclose(&f, TLS1_2_VERSION);
	expect_sessions(&before, 4, 4);
	harness_pass();
}

Test(ktls_proxy, key_update_per_kernel)
{
	struct fx f;
	struct tls_stats before;

	need_ktls();
	fx_start(&f, NULL);
	before = tls_stats_now();
	key_update(&f, "TLS_AES_128_GCM_SHA256");
	key_update(&f, "TLS_CHACHA20_POLY1305_SHA256");
	expect_sessions(&before, 2, 2);
	/* and the proxy still serves */
	echo_roundtrip(&f, TLS1_3_VERSION, NULL, 10 * KIB, "both", "splice");
	harness_pass();
}

Test(ktls_proxy, resets_mid_splice)
{
	struct fx f;
	struct tls_stats before;

	need_ktls();
	fx_start(&f, NULL);
	before = tls_stats_now();
	client_reset_while_receiving(&f);
	client_reset_while_sending(&f);
	backend_reset(&f);
	cr_assert(proxy_running(f.p), "proxy died");
	echo_roundtrip(&f, TLS1_3_VERSION, NULL, 10 * KIB, "both", "splice");
	echo_roundtrip(&f, TLS1_2_VERSION, NULL, 10 * KIB, "both", "splice");
	expect_sessions(&before, 5, 5);
	harness_pass();
}

Test(ktls_proxy, thousand_short_connections, .timeout = 400)
{
	struct fx f;
	struct tls_stats before;
	int n;

	need_ktls();
	fx_start(&f, NULL);
	before = tls_stats_now();
	short_connections(&f, SHORT_CONNS, SHORT_THREADS, 300000);
	n = alog_count(f.log, "ktls", "both");
	cr_assert_eq(n, SHORT_CONNS, "%d of %d lines with ktls both", n, SHORT_CONNS);
	n = alog_count(f.log, "relay", "splice");
	cr_assert_eq(n, SHORT_CONNS, "%d of %d lines with relay splice", n, SHORT_CONNS);
	n = alog_count(f.log, "close", "client_eof");
	cr_assert_eq(n, SHORT_CONNS, "%d of %d lines with close client_eof", n, SHORT_CONNS);
	expect_sessions(&before, SHORT_CONNS, SHORT_CONNS);
	harness_pass();
}

/* After every kind of connection has come and gone, the proxy holds the same sockets and
 * files as right after start-up; only the pipe pool may have grown (FD_PIPE_ALLOWANCE). */
Test(ktls_proxy, fds_back_to_baseline, .timeout = 400)
{
	static const struct {
		int version;
		const char *cipher;
	} suites[] = {
		{ TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256" },
		{ TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384" },
		{ TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256" },
		{ TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256" },
		{ TLS1_2_VERSION, "ECDHE-ECDSA-AES256-GCM-SHA384" },
		{ TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305" },
	};
	struct fx f;
	struct fdcount base, now;
	struct tls_stats sbase, snow;
	pid_t pid;

	need_ktls();
	fx_start(&f, NULL);
	pid = proxy_pid(f.p);
	base = fds_of(pid);
	sbase = tls_stats_now();
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		echo_roundtrip(&f, suites[i].version, suites[i].cipher, 30 * KIB, "both", "splice");
	duplex(&f, TLS1_3_VERSION, 4 * MIB);
	duplex(&f, TLS1_2_VERSION, 4 * MIB);
	client_halfclose(&f, TLS1_3_VERSION);
	backend_halfclose(&f, TLS1_2_VERSION);
	key_update(&f, "TLS_AES_256_GCM_SHA384");
	client_reset_while_receiving(&f);
	client_reset_while_sending(&f);
	backend_reset(&f);
	short_connections(&f, 200, 2, 200000);
	cr_assert(proxy_running(f.p), "proxy died");
	now = fds_settle(pid, &base);
	cr_log_info("proxy fds: start %d other + %d pipe, end %d other + %d pipe", base.other,
		    base.pipes, now.other, now.pipes);
	cr_assert_eq(now.other, base.other, "proxy holds %d non-pipe fds, %d at start", now.other,
		     base.other);
	cr_assert_geq(now.pipes, base.pipes);
	cr_assert_eq((now.pipes - base.pipes) % 2, 0, "odd number of pipe ends: %d", now.pipes);
	cr_assert_leq(now.pipes - base.pipes, FD_PIPE_ALLOWANCE,
		      "%d pipe fds more than at start (pool allowance %d)", now.pipes - base.pipes,
		      FD_PIPE_ALLOWANCE);
	snow = stats_settle(&sbase);
	cr_assert_eq(snow.curr_tx, sbase.curr_tx, "TlsCurrTxSw %ld, %ld at start", snow.curr_tx,
		     sbase.curr_tx);
	cr_assert_eq(snow.curr_rx, sbase.curr_rx, "TlsCurrRxSw %ld, %ld at start", snow.curr_rx,
		     sbase.curr_rx);
	cr_assert_eq(snow.decrypt_error, 0);
	harness_pass();
}

Test(ktls_proxy, ktls_off_is_userspace)
{
	struct fx f;
	struct tls_stats before;

	need_ktls();
	fx_start(&f, "ktls = off\n");
	before = tls_stats_now();
	echo_roundtrip(&f, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 20 * KIB, "none", "userspace");
	echo_roundtrip(&f, TLS1_2_VERSION, "ECDHE-ECDSA-AES256-GCM-SHA384", 20 * KIB, "none",
		       "userspace");
	expect_sessions(&before, 0, 0);
	harness_pass();
}

Test(ktls_proxy, splice_off_keeps_ktls)
{
	struct fx f;
	struct tls_stats before;

	need_ktls();
	fx_start(&f, "splice = off\n");
	before = tls_stats_now();
	echo_roundtrip(&f, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 20 * KIB, "both", "userspace");
	echo_roundtrip(&f, TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305", 20 * KIB, "both",
		       "userspace");
	expect_sessions(&before, 2, 2);
	harness_pass();
}

/* A suite that stays in user space, and the fallback is counted by why. OpenSSL 3.0 offloads
 * no TLS 1.3 CCM (and the proxy installs no receive key alone for it); 3.2 and later offload
 * it both ways themselves, and the proxy must then relay it in the kernel like any other. */
Test(ktls_proxy, ccm_suite_falls_back_and_is_counted)
{
	struct fx f;
	struct tls_stats before;
	char global[64], *m;
	int mport;
	const bool by_openssl = OpenSSL_version_num() >= 0x30200000L;

	need_ktls();
	mport = harness_free_port();
	snprintf(global, sizeof(global), "metrics = 127.0.0.1:%d\n", mport);
	fx_start_fe(&f, global, "ciphersuites = TLS_AES_128_CCM_SHA256:TLS_AES_128_GCM_SHA256\n");
	before = tls_stats_now();
	echo_roundtrip(&f, TLS1_3_VERSION, "TLS_AES_128_CCM_SHA256", 20 * KIB,
		       by_openssl ? "both" : "none", by_openssl ? "splice" : "userspace");
	expect_sessions(&before, by_openssl, by_openssl);
	m = harness_http_get(mport, "/metrics", HARNESS_TIMEOUT_MS);
	cr_assert(m, "no metrics");
	cr_assert_eq(
		metrics_value(m,
			      "tlsplice_ktls_fallbacks_total{frontend=\"web\",reason=\"cipher\"}"),
		!by_openssl, "%s", m);
	cr_assert_eq(
		metrics_value(m,
			      "tlsplice_ktls_fallbacks_total{frontend=\"web\",reason=\"kernel\"}"),
		0, "%s", m);
	cr_assert_eq(metrics_value(m, "tlsplice_relay_total{frontend=\"web\",mode=\"userspace\"}"),
		     !by_openssl, "%s", m);
	free(m);
	harness_pass();
}

/* The tls_stat deltas need the cases one after another, whatever the machine's CPU count:
 * the default is one job here (--jobs / CRITERION_JOBS still override it). */
int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;

	criterion_options.jobs = 1;
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}
