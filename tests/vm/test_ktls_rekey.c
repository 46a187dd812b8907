/* TLS 1.3 KeyUpdate through the real proxy on the kernel path, run inside the VM by
 * scripts/vmtest.sh on both kernels: long full-duplex streams through the echo backend with
 * many KeyUpdates from the client (update_requested and not, in turn), and the proxy's own
 * KeyUpdates (key_update_bytes).
 *
 * What each kernel must do: where tls_stat has the re-key counters (6.14+: 7.x here) every
 * KeyUpdate is followed in the kernel: the stream stays on relay=splice, its SHA-256 is
 * intact both ways, TlsRxRekeyOk/TlsTxRekeyOk rise by exactly what was done and
 * TlsRxRekeyError/TlsTxRekeyError/TlsDecryptError stay 0. Where they are absent (6.1) the
 * first KeyUpdate closes the connection cleanly with close=key_update and the bytes before it
 * reached the backend intact.
 *
 * Size: the contract's figure is 1,000 KeyUpdates in 256 MiB each way; under TCG the suite
 * runs REKEY_MIB (default 8) MiB each way with a KeyUpdate every REKEY_EVERY_KIB (default 16)
 * KiB, i.e. 511 KeyUpdates per stream, one per record; both can be set from the environment
 * (REKEY_MIB=256 REKEY_EVERY_KIB=262 is the contract's figure). A KeyUpdate per record also
 * makes the relay meet one at every point of its per-pump budget: a control record that
 * splice refused is then read without waiting for epoll, which stays silent on 6.14+ once
 * splice has decrypted a KeyUpdate (see test_ktls.c). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/options.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "ctl.h"
#include "expect.h"
#include "harness.h"
#include "ktls_fixture.h"

#define CHUNK (16 * KIB)
#define STREAM_TIMEOUT_MS 600000
/* Nothing moved for this long is a stall, even under emulation (a lost wake-up). */
#define STALL_MS 60000

TestSuite(ktls_rekey, .init = harness_setup, .fini = harness_teardown, .timeout = 900);

/* The kernel says it can re-key by counting re-keys at all. */
static bool kernel_rekeys(void)
{
	return tls_stat("TlsRxRekeyOk") >= 0;
}

static uint64_t env_size(const char *name, uint64_t def, uint64_t unit)
{
	const char *v = getenv(name);
	unsigned long long n;

	if (v == NULL || sscanf(v, "%llu", &n) != 1 || n == 0 || n > 4096)
		return def * unit;
	return (uint64_t)n * unit;
}

struct stream {
	uint64_t total, every; /* bytes each way; a client KeyUpdate every this many (0: none) */
	/* results */
	uint64_t sent, got;
	unsigned updates, requested; /* client KeyUpdates sent, of which update_requested */
	char sha[65];                /* of what came back */
	bool failed;                 /* the connection ended before all came back */
};

/* One round of writing: a KeyUpdate when one is due, then (the rest of) a chunk. */
static bool stream_write(SSL *ssl, struct stream *s, unsigned char *out, size_t *pending,
			 uint64_t *next_ku)
{
	size_t w;
	int rc, e;

	if (*pending == 0) {
		if (s->every > 0 && s->sent >= *next_ku) {
			bool req = s->updates % 2 == 1;
			cr_assert_eq(SSL_key_update(ssl, req ? SSL_KEY_UPDATE_REQUESTED
							     : SSL_KEY_UPDATE_NOT_REQUESTED),
				     1);
			s->updates++;
			s->requested += req;
			*next_ku += s->every;
		}
		*pending = s->total - s->sent < CHUNK ? (size_t)(s->total - s->sent) : CHUNK;
		harness_pattern(s->sent, out, *pending);
	}
	rc = SSL_write_ex(ssl, out, *pending, &w);
	if (rc == 1) {
		s->sent += w;
		*pending -= w;
		memmove(out, out + w, *pending);
		return true;
	}
	e = SSL_get_error(ssl, rc);
	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
		s->failed = true;
	return false;
}

/* Sends s->total pattern bytes through the echo backend while reading the echo back. */
static void stream_run(struct tlsc *c, struct stream *s)
{
	static unsigned char out[CHUNK], in[CHUNK];
	unsigned char md[EVP_MAX_MD_SIZE];
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	SSL *ssl = tlsc_ssl(c);
	int64_t deadline = harness_now_ms() + STREAM_TIMEOUT_MS, moved = harness_now_ms();
	uint64_t next_ku = s->every;
	size_t pending = 0, r;
	unsigned mdlen;

	cr_assert(sha && EVP_DigestInit_ex(sha, EVP_sha256(), NULL));
	while (s->got < s->total && !s->failed) {
		bool progress = false;
		struct pollfd p = { .fd = tlsc_fd(c), .events = POLLIN };

		cr_assert_lt(harness_now_ms(), deadline, "stream too slow: sent %llu, got %llu",
			     (unsigned long long)s->sent, (unsigned long long)s->got);
		cr_assert_lt(harness_now_ms() - moved, STALL_MS,
			     "stream stalled: nothing moved for %d s after %llu bytes sent, %llu "
			     "back, %u KeyUpdates",
			     STALL_MS / 1000, (unsigned long long)s->sent,
			     (unsigned long long)s->got, s->updates);
		if (s->sent < s->total)
			progress = stream_write(ssl, s, out, &pending, &next_ku);
		if (SSL_read_ex(ssl, in, sizeof(in), &r) == 1) {
			EVP_DigestUpdate(sha, in, r);
			s->got += r;
			progress = true;
		} else if (SSL_get_error(ssl, 0) != SSL_ERROR_WANT_READ &&
			   SSL_get_error(ssl, 0) != SSL_ERROR_WANT_WRITE) {
			s->failed = true;
		}
		if (progress)
			moved = harness_now_ms();
		else if (!s->failed) {
			p.events |= s->sent < s->total ? POLLOUT : 0;
			poll(&p, 1, 1000);
		}
	}
	EVP_DigestFinal_ex(sha, md, &mdlen);
	EVP_MD_CTX_free(sha);
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
}

/* User CPU time of process pid so far, in ms (from /proc/PID/stat). */
static double user_cpu_ms(pid_t pid)
{
	char path[64], *text, *p;
	unsigned long utime = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	text = harness_read_file(path, NULL);
	cr_assert(text, "cannot read %s", path);
	p = strrchr(text, ')'); /* the command name may hold spaces */
	cr_assert(p &&
		  sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu", &utime) == 1);
	free(text);
	return (double)utime * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

struct rekey_stats {
	long rx_ok, tx_ok, rx_err, tx_err, decrypt_err;
};

static struct rekey_stats rekey_stats_now(void)
{
	struct rekey_stats s = {
		tls_stat("TlsRxRekeyOk"),    tls_stat("TlsTxRekeyOk"),
		tls_stat("TlsRxRekeyError"), tls_stat("TlsTxRekeyError"),
		tls_stat("TlsDecryptError"),
	};
	return s;
}

/* The line of the connection from client address `client` (malloc'd); fails if none. */
static char *line_of(const struct fx *f, const char *client)
{
	char *line = alog_wait_find(f->log, "client", client, HARNESS_TIMEOUT_MS);

	cr_assert(line, "no access-log line for client %s", client);
	return line;
}

/* A long stream with client KeyUpdates every `every` bytes; what each kernel must do (see the
 * top of this file). */
static void rekey_stream(const struct fx *f, const char *cipher, uint64_t total, uint64_t every,
			 double *cpu_ms)
{
	struct stream s = { .total = total, .every = every };
	double cpu0 = user_cpu_ms(proxy_pid(f->p));
	struct tlsc *c = fx_connect(f, TLS1_3_VERSION, cipher, "demo.test");
	struct rekey_stats b = rekey_stats_now(), a;
	char client[64], want[65], *line;
	int64_t t0 = harness_now_ms();

	snprintf(client, sizeof(client), "%s", tlsc_local_addr(c));
	stream_run(c, &s);
	if (!kernel_rekeys()) {
		cr_assert(s.failed, "the stream went on after a KeyUpdate on a kernel that cannot");
		tlsc_close(c);
		line = line_of(f, client);
		expect_str(line, "relay", "splice");
		expect_str(line, "close", "key_update");
		expect_num(line, "bytes_in", (double)every); /* all that came before it */
		expect_num(line, "key_updates", 0);
		free(line);
		return;
	}
	if (s.failed) {
		tlsc_close(c);
		line = line_of(f, client);
		cr_assert_fail(
			"%s: connection ended after %llu bytes sent, %llu back, %u KeyUpdates: %s",
			cipher, (unsigned long long)s.sent, (unsigned long long)s.got, s.updates,
			line);
	}
	harness_pattern_sha256_hex(total, want);
	cr_assert_str_eq(s.sha, want, "%s: data corrupted", cipher);
	cr_assert_eq(tlsc_shutdown(c), 0, "close_notify: %s", tlsc_error(c));
	cr_assert_eq(tlsc_read_all(c, NULL, 0, 20000), 0, "bytes after the stream");
	cr_assert(tlsc_got_close_notify(c), "stream ended without close_notify");
	tlsc_close(c);
	line = line_of(f, client);
	a = rekey_stats_now();
	*cpu_ms = user_cpu_ms(proxy_pid(f->p)) - cpu0;
	cr_log_info("%s: %llu MiB each way, %u KeyUpdates (%u requested) in %lld ms, proxy user "
		    "CPU %.0f ms; TlsRxRekeyOk +%ld, TlsTxRekeyOk +%ld",
		    cipher, (unsigned long long)(total / MIB), s.updates, s.requested,
		    (long long)(harness_now_ms() - t0), *cpu_ms, a.rx_ok - b.rx_ok,
		    a.tx_ok - b.tx_ok);
	expect_str(line, "ktls", "both");
	expect_str(line, "relay", "splice");
	expect_str(line, "close", "client_eof");
	expect_num(line, "bytes_in", (double)total);
	expect_num(line, "bytes_out", (double)total);
	expect_num(line, "key_updates", (double)((a.rx_ok - b.rx_ok) + (a.tx_ok - b.tx_ok)));
	expect_error(line, false);
	free(line);
	cr_assert_eq(a.rx_ok - b.rx_ok, (long)s.updates, "TlsRxRekeyOk rose by %ld, want %u",
		     a.rx_ok - b.rx_ok, s.updates);
	/* every request is answered, but requests that arrive while an answer waits for room
	 * in the socket share it (RFC 8446 4.6.3: a silent side responds with a single update) */
	cr_assert_leq(a.tx_ok - b.tx_ok, (long)s.requested, "TlsTxRekeyOk rose by %ld, want <= %u",
		      a.tx_ok - b.tx_ok, s.requested);
	cr_assert_geq(a.tx_ok - b.tx_ok, s.requested > 0, "no answer to %u requests", s.requested);
	cr_assert_eq(a.rx_err, b.rx_err, "TlsRxRekeyError rose");
	cr_assert_eq(a.tx_err, b.tx_err, "TlsTxRekeyError rose");
	cr_assert_eq(a.decrypt_err, 0, "TlsDecryptError is %ld", a.decrypt_err);
}

static void rekey_cipher(const char *cipher)
{
	struct fx f;
	uint64_t total = env_size("REKEY_MIB", 8, MIB),
		 every = env_size("REKEY_EVERY_KIB", 16, KIB);

	double plain_ms = 0, rekey_ms = 0;

	need_ktls();
	fx_start(&f, NULL);
	rekey_stream(&f, cipher, total, every, &rekey_ms);
	if (kernel_rekeys()) /* the same stream without KeyUpdates: what the re-keys cost */
		rekey_stream(&f, cipher, total, 0, &plain_ms);
	if (kernel_rekeys())
		cr_log_info("%s: proxy user CPU per client KeyUpdate (with its answers): %.3f ms",
			    cipher, (rekey_ms - plain_ms) / (double)(total / every));
	harness_pass();
}

Test(ktls_rekey, aes128gcm_client_key_updates)
{
	rekey_cipher("TLS_AES_128_GCM_SHA256");
}

Test(ktls_rekey, aes256gcm_client_key_updates)
{
	rekey_cipher("TLS_AES_256_GCM_SHA384");
}

Test(ktls_rekey, chacha20_client_key_updates)
{
	rekey_cipher("TLS_CHACHA20_POLY1305_SHA256");
}

/* A KeyUpdate every 144 KiB: the relay's pump then needs three rounds per KeyUpdate (a full
 * 128 KiB pipe load, the last 16 KiB up to the KeyUpdate, the KeyUpdate), so its budget of
 * 16 rounds ends at each of them in turn, and one pump soon ends right after splice stopped
 * at a KeyUpdate. On 6.14+ the kernel then reports no input to poll (see test_ktls.c): a
 * relay that waited for epoll there stalled within a dozen KeyUpdates, every time. */
Test(ktls_rekey, key_update_at_every_phase_of_the_pump)
{
	struct fx f;
	double ms;

	need_ktls();
	fx_start(&f, NULL);
	rekey_stream(&f, "TLS_AES_128_GCM_SHA256", 4 * MIB, 144 * KIB, &ms);
	harness_pass();
}

/* key_update_bytes: the proxy re-keys its sending side on its own and asks the client to
 * follow; the client's answers re-key the proxy's receiving side. Where the kernel cannot,
 * the setting does nothing and the stream is plain. */
Test(ktls_rekey, key_update_bytes_rekeys_on_our_own)
{
	const uint64_t total = 4 * MIB, every = 256 * KIB;
	struct stream s = { .total = total };
	struct rekey_stats b, a;
	struct fx f;
	struct tlsc *c;
	char client[64], want[65], *line;
	double logged;

	need_ktls();
	fx_start_fe(&f, NULL, "key_update_bytes = 262144\n");
	b = rekey_stats_now();
	c = fx_connect(&f, TLS1_3_VERSION, NULL, "demo.test");
	snprintf(client, sizeof(client), "%s", tlsc_local_addr(c));
	stream_run(c, &s);
	cr_assert_not(s.failed, "connection failed after %llu bytes back: %s",
		      (unsigned long long)s.got, tlsc_error(c));
	harness_pattern_sha256_hex(total, want);
	cr_assert_str_eq(s.sha, want, "data corrupted");
	cr_assert_eq(tlsc_shutdown(c), 0, "close_notify: %s", tlsc_error(c));
	cr_assert_eq(tlsc_read_all(c, NULL, 0, 20000), 0, "bytes after the stream");
	tlsc_close(c);
	line = line_of(&f, client);
	a = rekey_stats_now();
	expect_str(line, "relay", "splice");
	expect_str(line, "close", "client_eof");
	cr_assert_eq(json_num(line, "key_updates", &logged), 0, "no key_updates in %s", line);
	free(line);
	if (!kernel_rekeys()) {
		cr_assert_eq(logged, 0, "key_updates %g on a kernel that cannot re-key", logged);
		harness_pass();
		return;
	}
	cr_log_info("key_update_bytes = %llu, %llu MiB each way: TlsTxRekeyOk +%ld, "
		    "TlsRxRekeyOk +%ld, key_updates %g",
		    (unsigned long long)every, (unsigned long long)(total / MIB), a.tx_ok - b.tx_ok,
		    a.rx_ok - b.rx_ok, logged);
	/* one after each `every` bytes sent, checked before each splice out (a pipe load is at
	 * most 256 KiB), so each key sends between `every` and `every` + 256 KiB */
	cr_assert_geq(a.tx_ok - b.tx_ok, (long)(total / (every + 256 * KIB)), "TlsTxRekeyOk +%ld",
		      a.tx_ok - b.tx_ok);
	cr_assert_leq(a.tx_ok - b.tx_ok, (long)(total / every), "TlsTxRekeyOk +%ld",
		      a.tx_ok - b.tx_ok);
	cr_assert_leq(a.rx_ok - b.rx_ok, a.tx_ok - b.tx_ok, "TlsRxRekeyOk +%ld", a.rx_ok - b.rx_ok);
	cr_assert_eq(logged, (double)((a.rx_ok - b.rx_ok) + (a.tx_ok - b.tx_ok)),
		     "key_updates %g, tls_stat +%ld rx +%ld tx", logged, a.rx_ok - b.rx_ok,
		     a.tx_ok - b.tx_ok);
	cr_assert_eq(a.rx_err + a.tx_err, b.rx_err + b.tx_err, "a re-key failed");
	cr_assert_eq(a.decrypt_err, 0, "TlsDecryptError is %ld", a.decrypt_err);
	harness_pass();
}

/* A binary upgrade moves a connection that follows KeyUpdates to the new process with its
 * current traffic secrets (after 15 KeyUpdates of the client and the answers to 7): the client
 * then goes on sending KeyUpdates, requested and not, and the new process follows each in the
 * kernel; the stream stays intact and spliced, and the one access-log line counts every re-key
 * of both processes with "handovers":1. Where the kernel cannot re-key, the connection still
 * moves (no KeyUpdate before the upgrade) and the first KeyUpdate after it closes it cleanly. */
Test(ktls_rekey, key_updates_go_on_after_an_upgrade_moved_the_connection)
{
	const uint64_t total = 1 * MIB, every = 64 * KIB;
	bool rekeys = kernel_rekeys();
	struct stream s1 = { .total = total, .every = rekeys ? every : 0 };
	struct stream s2 = { .total = total, .every = every };
	const char *sock = harness_path("ctl.sock");
	char global[320], client[64], want[65], *ans, *line;
	struct rekey_stats b, m, u, a;
	struct tlsc *c;
	struct fx f;
	int pid = 0;

	need_ktls();
	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); /* the new process is ours to end */
	snprintf(global, sizeof(global), "control = %s\n", sock);
	fx_start(&f, global);
	b = rekey_stats_now();
	c = fx_connect(&f, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", "demo.test");
	snprintf(client, sizeof(client), "%s", tlsc_local_addr(c));
	harness_pattern_sha256_hex(total, want);
	stream_run(c, &s1); /* all echoed: the connection is idle, its pipes empty */
	cr_assert(!s1.failed && strcmp(s1.sha, want) == 0, "the stream before the upgrade failed");
	m = rekey_stats_now();
	ans = ctl_cmd(sock, "upgrade");
	cr_assert(ans && sscanf(ans, "ok: pid %d serves;", &pid) == 1, "upgrade: %s", ans);
	free(ans);
	/* the old process exits at once only if the connection moved: nothing is left to drain */
	cr_assert_eq(proxy_wait(f.p, HARNESS_TIMEOUT_MS), 0, "the old process kept the connection");
	u = rekey_stats_now(); /* the new process's probe re-keys a throw-away pair once */
	stream_run(c, &s2);
	if (!rekeys) {
		cr_assert(s2.failed,
			  "the stream went on after a KeyUpdate on a kernel that cannot");
		tlsc_close(c);
		line = line_of(&f, client);
		expect_str(line, "close", "key_update");
		expect_num(line, "bytes_in", (double)(total + every));
	} else {
		cr_assert_not(s2.failed,
			      "the moved connection ended after %llu bytes back, %u "
			      "KeyUpdates: %s",
			      (unsigned long long)s2.got, s2.updates, tlsc_error(c));
		cr_assert_str_eq(s2.sha, want, "data corrupted after the upgrade");
		cr_assert_eq(tlsc_shutdown(c), 0, "close_notify: %s", tlsc_error(c));
		cr_assert_eq(tlsc_read_all(c, NULL, 0, 20000), 0, "bytes after the stream");
		tlsc_close(c);
		line = line_of(&f, client);
		a = rekey_stats_now();
		long rx = (m.rx_ok - b.rx_ok) + (a.rx_ok - u.rx_ok),
		     tx = (m.tx_ok - b.tx_ok) + (a.tx_ok - u.tx_ok);
		cr_log_info("through an upgrade: %u + %u client KeyUpdates (%u + %u requested); "
			    "TlsRxRekeyOk +%ld +%ld, TlsTxRekeyOk +%ld +%ld",
			    s1.updates, s2.updates, s1.requested, s2.requested, m.rx_ok - b.rx_ok,
			    a.rx_ok - u.rx_ok, m.tx_ok - b.tx_ok, a.tx_ok - u.tx_ok);
		cr_assert_eq(a.rx_ok - u.rx_ok, (long)s2.updates, "re-keys after the upgrade");
		cr_assert_eq(rx, (long)(s1.updates + s2.updates));
		cr_assert_geq(a.tx_ok - u.tx_ok, 1, "no answer after the upgrade");
		cr_assert_leq(tx, (long)(s1.requested + s2.requested));
		cr_assert_eq(a.rx_err + a.tx_err, b.rx_err + b.tx_err, "a re-key failed");
		cr_assert_eq(a.decrypt_err, 0, "TlsDecryptError is %ld", a.decrypt_err);
		expect_str(line, "close", "client_eof");
		expect_num(line, "bytes_in", (double)(2 * total));
		expect_num(line, "bytes_out", (double)(2 * total));
		expect_num(line, "key_updates", (double)(rx + tx));
		expect_error(line, false);
	}
	expect_str(line, "relay", "splice");
	expect_num(line, "handovers", 1);
	cr_assert_eq(alog_count(f.log, "client", client), 1, "one access-log line");
	free(line);
	kill(pid, SIGTERM);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	/* both processes write to one stderr: in a sanitizer build, a report lands there */
	char *err = harness_read_file(proxy_stderr_path(f.p), NULL);
	cr_assert(err);
	cr_assert_null(strstr(err, "Sanitizer"), "%s", err);
	cr_assert_null(strstr(err, "runtime error:"), "%s", err);
	free(err);
	harness_pass();
}

/* The tls_stat deltas need the cases one after another (see test_ktls_proxy.c). */
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
