/* The kernel path and the userspace path, side by side: two proxies in the same boot, one
 * with ktls = auto (kernel TLS and splice where the kernel can) and one with ktls = off, are
 * sent the same hand-made records (rawtls.h). For every case, both must deliver the same
 * bytes to the backend, log the same close reason and error, and show the client the same
 * bytes, alerts and end of stream; each case also states that outcome.
 *
 * Each case sends 1000 bytes of data as one record, the record under test, 1000 more bytes,
 * then close_notify; the backend (a sink) answers with the SHA-256 of what it read once it
 * sees EOF. Outside the VM both proxies run in user space and the table still must hold.
 *
 * Then both paths carry 64 concurrent connections (uploads checked by the backend's
 * SHA-256, downloads and echoes by the client's), some dropped early by the client. */
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/options.h>

#include "expect.h"
#include "harness.h"
#include "rawtls.h"
#include "tls_stat.h"

/* Each case runs in a network namespace of its own: the bad records it sends on purpose
 * raise TlsDecryptError, which the other VM tests require to stay 0 in theirs. Where a
 * namespace cannot be made (not root), the shared one is used. */
static void own_netns(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd;

	if (unshare(CLONE_NEWNET) != 0)
		return;
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert(fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0, "no loopback in the namespace");
	ifr.ifr_flags |= IFF_UP;
	cr_assert_eq(ioctl(fd, SIOCSIFFLAGS, &ifr), 0, "cannot bring loopback up");
	close(fd);
}

static void setup(void)
{
	own_netns();
	harness_setup();
}

TestSuite(ktls_diff, .init = setup, .fini = harness_teardown, .timeout = 300);

#define PART 1000 /* data bytes before and after the record under test */
#define BUF (64 * 1024)

enum where { AT_START, AT_MIDDLE, AT_END };

struct rcase {
	const char *name;
	int versions; /* 12, 13 or 0 for both */
	int type;     /* record content type; -1: application data of `len` bytes */
	const unsigned char *body;
	size_t len;
	int flags; /* RAWTLS_BAD_TAG */
	enum where where;
	size_t seg;    /* > 0: the record goes out in segments of this size */
	bool straddle; /* TLS 1.3: the first record goes out with the client Finished */
	/* the outcome, on both paths */
	bool relayed_after; /* the 1000 bytes after the record reach the backend (and the
			      * record itself, when it is valid data) */
	const char *close;  /* access-log close reason */
	const char *error;  /* access-log error ("" none) */
	int alert;          /* fatal alert the client gets (-1: none) */
	int warn;           /* warning alert the client gets before the data goes on (0: none) */
	bool differs;       /* kernel path differs by design (KeyUpdate on a kernel without
			      * re-key): only the userspace outcome is stated */
};

static const unsigned char b_empty[1];
static const unsigned char a_user_canceled[] = { 1, 90 };
static const unsigned char a_warn_unknown_ca[] = { 1, 48 };
static const unsigned char a_fatal_hs_failure[] = { 2, 40 };
static const unsigned char h_client_hello[] = { 1,  0,  0,  38, 3,  3,  0,  1,  2,    3,   4,
						5,  6,  7,  8,  9,  10, 11, 12, 13,   14,  15,
						16, 17, 18, 19, 20, 21, 22, 23, 24,   25,  26,
						27, 28, 29, 30, 31, 0,  0,  2,  0x13, 0x01 };
static const unsigned char h_nst[] = { 4, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 2 };
static const unsigned char h_finished[] = { 20, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
static const unsigned char h_garbage[] = { 0xde, 0xad, 0xbe, 0xef };
static const unsigned char h_key_update[] = { 24, 0, 0, 1, 0 };
static const unsigned char h_key_update_value2[] = { 24, 0, 0, 1, 2 };
static const unsigned char hb_request[] = { 1, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 0,
					    0, 0, 0, 0,   0,   0,   0, 0, 0, 0, 0 };
static const unsigned char ccs[] = { 1 };

#define DATA -1
#define R(b) b, sizeof(b)

static const struct rcase cases[] = {
	{ "empty record first", 0, DATA, b_empty, 0, 0, AT_START, 0, false, true, "client_eof", "",
	  -1, 0, false },
	{ "empty record mid-stream", 0, DATA, b_empty, 0, 0, AT_MIDDLE, 0, false, true,
	  "client_eof", "", -1, 0, false },
	{ "empty record last", 0, DATA, b_empty, 0, 0, AT_END, 0, false, true, "client_eof", "", -1,
	  0, false },
	{ "warning alert user_canceled", 0, 21, R(a_user_canceled), 0, AT_MIDDLE, 0, false, true,
	  "client_eof", "", -1, 0, false },
	{ "warning alert unknown_ca", 12, 21, R(a_warn_unknown_ca), 0, AT_MIDDLE, 0, false, true,
	  "client_eof", "", -1, 0, false },
	{ "warning alert unknown_ca", 13, 21, R(a_warn_unknown_ca), 0, AT_MIDDLE, 0, false, false,
	  "client_eof", "alert from client (level 1, description 48)", -1, 0, false },
	{ "fatal alert handshake_failure", 0, 21, R(a_fatal_hs_failure), 0, AT_MIDDLE, 0, false,
	  false, "client_eof", "alert from client (level 2, description 40)", -1, 0, false },
	{ "handshake ClientHello", 12, 22, R(h_client_hello), 0, AT_MIDDLE, 0, false, true,
	  "client_eof", "", -1, 100, false },
	{ "handshake ClientHello", 13, 22, R(h_client_hello), 0, AT_MIDDLE, 0, false, false,
	  "client_eof", "unexpected handshake message", 10, 0, false },
	{ "handshake NewSessionTicket", 0, 22, R(h_nst), 0, AT_MIDDLE, 0, false, false,
	  "client_eof", "unexpected handshake message", 10, 0, false },
	{ "handshake Finished", 0, 22, R(h_finished), 0, AT_MIDDLE, 0, false, false, "client_eof",
	  "unexpected handshake message", 10, 0, false },
	{ "handshake garbage", 0, 22, R(h_garbage), 0, AT_MIDDLE, 0, false, false, "client_eof",
	  "unexpected handshake message", 10, 0, false },
	{ "KeyUpdate", 13, 22, R(h_key_update), 0, AT_MIDDLE, 0, false, true, "client_eof", "", -1,
	  0, true },
	{ "KeyUpdate in 1-byte segments", 13, 22, R(h_key_update), 0, AT_MIDDLE, 1, false, true,
	  "client_eof", "", -1, 0, true },
	{ "KeyUpdate of unknown value", 13, 22, R(h_key_update_value2), 0, AT_MIDDLE, 0, false,
	  false, "client_eof", "bad KeyUpdate", 47, 0, false },
	{ "heartbeat record", 0, 24, R(hb_request), 0, AT_MIDDLE, 0, false, false, "client_eof",
	  "unexpected record", 10, 0, false },
	{ "ChangeCipherSpec record", 0, 20, R(ccs), 0, AT_MIDDLE, 0, false, false, "client_eof",
	  "unexpected record", 10, 0, false },
	{ "record of unknown type 30", 0, 30, R(ccs), 0, AT_MIDDLE, 0, false, false, "client_eof",
	  "unexpected record", 10, 0, false },
	{ "oversized record", 0, DATA, NULL, 16385, 0, AT_MIDDLE, 0, false, false, "client_eof",
	  "record too long", 22, 0, false },
	{ "bad MAC", 0, DATA, NULL, 100, RAWTLS_BAD_TAG, AT_MIDDLE, 0, false, false, "client_eof",
	  "record failed to decrypt", 20, 0, false },
	{ "record in 1-byte segments", 0, DATA, NULL, 64, 0, AT_MIDDLE, 1, false, true,
	  "client_eof", "", -1, 0, false },
	{ "first record with the Finished", 13, DATA, NULL, 100, 0, AT_START, 0, true, true,
	  "client_eof", "", -1, 0, false },
};

struct outcome {
	uint64_t backend_bytes;
	char backend_sha[65];
	char close[32], error[160];
	struct rawtls_result client;
	int alerts[RAWTLS_MAX_ALERTS]; /* level << 8 | description */
	int nalerts;
	char relay[16];
};

struct side {
	struct proxy *p;
	int port;
	struct backend *sink;
};

static void side_start(struct side *s, const char *name, const char *ktls, const char *splice)
{
	struct harness_cert crt;
	char global[128], backends[256], ini[32];
	const char *path;

	s->sink = backend_start(BACKEND_SINK, 0, NULL, 0);
	cr_assert(s->sink);
	cr_assert_eq(harness_cert_create(name, "demo.test", &crt), 0);
	s->port = harness_free_port();
	snprintf(global, sizeof(global), "workers = 1\nktls = %s\nsplice = %s\n", ktls, splice);
	snprintf(backends, sizeof(backends), "[backend app]\nserver = %s\ncheck = none\n",
		 backend_addr(s->sink));
	snprintf(ini, sizeof(ini), "%s.ini", name);
	path = harness_config_web(ini, s->port, &crt, global, "idle_timeout = 20s\n", backends);
	cr_assert(path);
	s->p = proxy_start(path, s->port);
	cr_assert(s->p, "proxy %s did not start", name);
}

/* The bytes a case sends after the handshake, records in sending order (sequence numbers
 * follow it); [*rec_off, *rec_end) is the record under test. */
static size_t build(struct rawtls *r, const struct rcase *k, unsigned char *out, size_t *rec_off,
		    size_t *rec_end)
{
	static const unsigned char close_notify[] = { 1, 0 };
	unsigned char part[PART], *big = NULL;
	const unsigned char *body = k->body;
	int at = k->where == AT_START ? 0 : k->where == AT_MIDDLE ? 1 : 2;
	size_t n = 0;

	if (!body) {
		big = malloc(k->len);
		cr_assert(big);
		harness_pattern(2 * PART, big, k->len); /* never delivered: any bytes will do */
		body = big;
	}
	for (int slot = 0, parts = 0; slot < 3; slot++) {
		if (slot == at) {
			*rec_off = n;
			n += rawtls_record(r, k->type == DATA ? 23 : k->type, body, k->len,
					   k->flags, out + n, BUF - n);
			*rec_end = n;
			if (k->type == 22 && k->body == h_key_update)
				cr_assert_eq(rawtls_key_update(r), 0);
			continue;
		}
		harness_pattern((uint64_t)parts++ * PART, part, PART);
		n += rawtls_record(r, 23, part, PART, 0, out + n, BUF - n);
	}
	n += rawtls_record(r, 21, close_notify, sizeof(close_notify), 0, out + n, BUF - n);
	free(big);
	return n;
}

static bool wait_backend_bytes(struct backend *b, uint64_t n)
{
	int64_t end = harness_now_ms() + 30000;
	struct backend_stats st;

	do {
		backend_get_stats(b, &st);
		if (st.bytes_in >= n)
			return true;
		usleep(1000); /* another thread's counter: nothing to wait on */
	} while (harness_now_ms() < end);
	return false;
}

static void run_case(const struct side *s, const struct rcase *k, int version, struct outcome *o)
{
	struct rawtls r;
	unsigned char *out = malloc(BUF);
	size_t n, rec_off = 0, rec_end = 0;
	struct backend_stats st;
	char client[64], *line;
	unsigned before = backend_accepted(s->sink);
	uint64_t in_before;

	cr_assert(out);
	backend_get_stats(s->sink, &st);
	in_before = st.bytes_in;
	memset(o, 0, sizeof(*o));
	cr_assert_eq(rawtls_connect(&r, s->port, version, k->straddle, 30000), 0, "%s: %s", k->name,
		     r.err);
	rawtls_local_addr(&r, client, sizeof(client));
	n = build(&r, k, out, &rec_off, &rec_end);
	if (k->straddle) {
		/* the Finished and the first half of the first record, then the rest */
		cr_assert_eq(rawtls_send_held(&r, out, rec_end / 2), 0, "%s", r.err);
		cr_assert_eq(rawtls_send(&r, out + rec_end / 2, n - rec_end / 2, 0), 0, "%s",
			     r.err);
	} else {
		/* what comes before the record is relayed before the record arrives: the proxy
		 * then meets it with nothing else in flight */
		cr_assert_eq(rawtls_send(&r, out, rec_off, 0), 0, "%s", r.err);
		if (rec_off)
			cr_assert(wait_backend_bytes(s->sink, in_before + PART),
				  "%s: first part "
				  "not relayed",
				  k->name);
		cr_assert_eq(rawtls_send(&r, out + rec_off, rec_end - rec_off, k->seg), 0, "%s",
			     r.err);
		/* after a fatal record the proxy may be gone before the rest is sent: what the
		 * client then sees is the outcome, not the failed send */
		(void)rawtls_send(&r, out + rec_end, n - rec_end, 0);
	}
	rawtls_collect(&r, &o->client, 30000);
	for (int i = 0; i < r.nalerts; i++)
		o->alerts[o->nalerts++] = r.alerts[i][0] << 8 | r.alerts[i][1];
	rawtls_close(&r);
	free(out);
	line = alog_wait_find(proxy_access_log(s->p), "client", client, 30000);
	cr_assert(line, "%s: no access-log line", k->name);
	json_str(line, "close", o->close, sizeof(o->close));
	json_str(line, "error", o->error, sizeof(o->error));
	json_str(line, "relay", o->relay, sizeof(o->relay));
	free(line);
	cr_assert(backend_wait_accepted(s->sink, before + 1, 30000), "%s: backend never saw it",
		  k->name);
	cr_assert(backend_wait_idle(s->sink, 30000));
	backend_get_stats(s->sink, &st);
	o->backend_bytes = st.last_in;
	memcpy(o->backend_sha, st.last_sha, sizeof(o->backend_sha));
}

static const char *end_name(enum rawtls_end e)
{
	return e == RAWTLS_FIN       ? "FIN"
	       : e == RAWTLS_RST     ? "RST"
	       : e == RAWTLS_TIMEOUT ? "timeout"
				     : "error";
}

static void describe(const char *who, const struct outcome *o)
{
	char alerts[64] = "";

	for (int i = 0; i < o->nalerts; i++)
		snprintf(alerts + strlen(alerts), sizeof(alerts) - strlen(alerts), "%s%d.%d",
			 i ? "," : "", o->alerts[i] >> 8, o->alerts[i] & 0xff);
	cr_log_info(
		"  %-9s relay=%s backend=%llu close=%s error=\"%s\" client: %llu bytes, alerts [%s], "
		"%s",
		who, o->relay, (unsigned long long)o->backend_bytes, o->close, o->error,
		(unsigned long long)o->client.bytes, alerts, end_name(o->client.end));
}

/* The outcome the case states; false (with a message) if o differs from it. */
static bool as_stated(const struct rcase *k, const struct outcome *o, char *why, size_t cap)
{
	uint64_t want = k->relayed_after ? 2 * PART : k->where == AT_START ? 0 : PART;

	if (k->relayed_after && k->type == DATA && !k->flags)
		want += k->len;
	bool fatal_alert = k->alert >= 0;

	if (o->backend_bytes != want)
		return snprintf(why, cap, "backend got %llu bytes, want %llu",
				(unsigned long long)o->backend_bytes, (unsigned long long)want),
		       false;
	if (strcmp(o->close, k->close) != 0 || strcmp(o->error, k->error) != 0)
		return snprintf(why, cap, "log close=%.31s error=\"%.150s\"", o->close, o->error),
		       false;
	if (o->client.end != RAWTLS_FIN)
		return snprintf(why, cap, "client saw %s", end_name(o->client.end)), false;
	if (fatal_alert && (o->nalerts != 1 || o->alerts[0] != (2 << 8 | k->alert)))
		return snprintf(why, cap, "client did not get exactly fatal alert %d", k->alert),
		       false;
	if (!k->relayed_after && !fatal_alert && o->nalerts != 0)
		return snprintf(why, cap, "client got an alert"), false;
	/* a warning alert ends the stream for the client's own OpenSSL: its reply is lost */
	if (k->warn && (o->nalerts < 1 || o->alerts[0] != (1 << 8 | k->warn)))
		return snprintf(why, cap, "client did not get warning alert %d", k->warn), false;
	if (!k->warn && k->relayed_after && (o->client.bytes != 65 || !o->client.close_notify))
		return snprintf(why, cap, "client got %llu bytes, close_notify %d",
				(unsigned long long)o->client.bytes, o->client.close_notify),
		       false;
	return true;
}

static bool same(const struct outcome *a, const struct outcome *b)
{
	return a->backend_bytes == b->backend_bytes &&
	       strcmp(a->backend_sha, b->backend_sha) == 0 && strcmp(a->close, b->close) == 0 &&
	       strcmp(a->error, b->error) == 0 && a->client.bytes == b->client.bytes &&
	       strcmp(a->client.sha, b->client.sha) == 0 &&
	       a->client.close_notify == b->client.close_notify && a->client.end == b->client.end &&
	       a->nalerts == b->nalerts &&
	       memcmp(a->alerts, b->alerts, sizeof(a->alerts[0]) * (size_t)a->nalerts) == 0;
}

/* Checks one kernel-side outcome against the userspace one and the case's statement. */
static bool kernel_fine(const struct rcase *k, const struct outcome *ok, const struct outcome *ou,
			char *why, size_t cap)
{
	/* KeyUpdate: re-keyed in user space and, where the kernel can (it counts re-keys in
	 * tls_stat), in the kernel alike; elsewhere a clean close in the kernel */
	if (k->differs && tls_stat("TlsRxRekeyOk") < 0)
		return strcmp(ok->relay, "userspace") == 0 || strcmp(ok->close, "key_update") == 0;
	if (!same(ok, ou))
		return snprintf(why, cap, " differs from user space"), false;
	return as_stated(k, ok, why, cap);
}

static void run_table(int version)
{
	struct side kern, kread, user;
	int bad = 0, vnum = version == TLS1_3_VERSION ? 13 : 12;

	side_start(&kern, "kernel", "auto", "on");
	side_start(&kread, "kread", "auto", "off"); /* kernel receive read with recvmsg */
	side_start(&user, "user", "off", "on");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rcase *k = &cases[i];
		struct outcome ok, okr, ou;
		char why_k[256] = "", why_r[256] = "", why_u[256] = "";
		bool fine;

		if (k->versions && k->versions != vnum)
			continue;
		run_case(&kern, k, version, &ok);
		run_case(&kread, k, version, &okr);
		run_case(&user, k, version, &ou);
		fine = as_stated(k, &ou, why_u, sizeof(why_u));
		fine = kernel_fine(k, &ok, &ou, why_k, sizeof(why_k)) && fine;
		fine = kernel_fine(k, &okr, &ou, why_r, sizeof(why_r)) && fine;
		cr_log_info("TLS 1.%d %s: %s %s%s%s", vnum - 10, k->name, fine ? "ok" : "MISMATCH",
			    why_u, why_k, why_r);
		describe("splice", &ok);
		describe("kread", &okr);
		describe("userspace", &ou);
		bad += !fine;
	}
	cr_assert_eq(bad, 0, "%d case(s) differ (see the table above)", bad);
}

Test(ktls_diff, tls13_record_table)
{
	run_table(TLS1_3_VERSION);
	harness_pass();
}

Test(ktls_diff, tls12_record_table)
{
	run_table(TLS1_2_VERSION);
	harness_pass();
}

/* ---- many connections at once, both paths: every completed transfer arrives intact ---- */

#define CONNS 64
#define SOURCE_SIZE (192 * 1024 + 7)

enum kind { UPLOAD, DOWNLOAD, DUPLEX };

struct job {
	int port;
	enum kind kind;
	uint64_t size;
	bool early; /* the client drops the connection half-way */
	bool done, ok;
	char why[160];
	char client[64]; /* its address, as the access log shows it */
};

/* Upload: the sink's reply is the SHA-256 of what the backend read. */
static void job_upload(struct job *j, struct tlsc *c)
{
	unsigned char *buf = malloc(j->size);
	char want[65], reply[80];
	ssize_t n;

	harness_pattern(0, buf, j->size);
	if (tlsc_write_all(c, buf, j->early ? j->size / 2 : j->size, 60000) < 0) {
		snprintf(j->why, sizeof(j->why), "upload write: %s", tlsc_error(c));
	} else if (!j->early) {
		tlsc_shutdown(c);
		n = tlsc_read_all(c, reply, sizeof(reply) - 1, 60000);
		harness_sha256_hex(buf, j->size, want);
		reply[n > 0 ? n : 0] = '\0';
		j->ok = n == 65 && strncmp(reply, want, 64) == 0;
		if (!j->ok)
			snprintf(j->why, sizeof(j->why), "upload: backend read other bytes (%zd)",
				 n);
	}
	free(buf);
}

/* Download and duplex: what the client receives is the pattern the backend sent. */
static void job_stream(struct job *j, struct tlsc *c)
{
	struct tlsc_transfer t = { .send_bytes = j->kind == DUPLEX ? j->size : 0,
				   .timeout_ms = 60000 };
	uint64_t want_n = j->kind == DUPLEX ? j->size : SOURCE_SIZE;
	char want[65];

	if (j->early) {
		unsigned char buf[4096];
		harness_pattern(0, buf, sizeof(buf));
		if (j->kind == DUPLEX && tlsc_write_all(c, buf, sizeof(buf), 60000) < 0)
			return;
		tlsc_read(c, buf, sizeof(buf), 60000); /* something flows, then the client goes */
		return;
	}
	if (tlsc_transfer_run(c, &t) < 0) {
		snprintf(j->why, sizeof(j->why), "transfer: %s", tlsc_error(c));
		return;
	}
	harness_pattern_sha256_hex(want_n, want);
	j->ok = t.received == want_n && strcmp(t.recv_sha, want) == 0;
	if (!j->ok)
		snprintf(j->why, sizeof(j->why), "received %llu bytes, sha %s",
			 (unsigned long long)t.received, j->ok ? "ok" : "differs");
}

static void *job_run(void *arg)
{
	struct job *j = arg;
	static const char *const sni[] = { "sink.test", "source.test", "demo.test" };
	struct tlsc_opts o = { .sni = sni[j->kind], .timeout_ms = 60000 };
	struct tlsc *c = tlsc_connect("127.0.0.1", j->port, &o);

	if (!c) {
		snprintf(j->why, sizeof(j->why), "connect failed");
	} else {
		snprintf(j->client, sizeof(j->client), "%s", tlsc_local_addr(c));
		if (j->kind == UPLOAD)
			job_upload(j, c);
		else
			job_stream(j, c);
		tlsc_close(c);
	}
	j->done = true;
	return NULL;
}

static void integrity_run(const char *name, const char *ktls, unsigned seed)
{
	struct backend *echo = backend_start(BACKEND_ECHO, 0, NULL, 0);
	struct backend *sink = backend_start(BACKEND_SINK, 0, NULL, 0);
	struct backend *source = backend_start(BACKEND_SOURCE, 0, NULL, SOURCE_SIZE);
	struct harness_cert crt;
	char global[128], backends[512];
	struct job jobs[CONNS];
	pthread_t th[CONNS];
	struct proxy *p;
	int port = harness_free_port(), completed = 0, early = 0;
	const char *ini;

	cr_assert(echo && sink && source);
	cr_assert_eq(harness_cert_create(name, "demo.test,sink.test,source.test", &crt), 0);
	snprintf(global, sizeof(global), "workers = 2\nktls = %s\n", ktls);
	/* under emulation on a busy host, 64 connects at once can take longer than the 3 s
	 * default: the test is about the bytes, not about connect latency */
	snprintf(backends, sizeof(backends),
		 "[backend app]\nserver = %s\ncheck = none\nconnect_timeout = 30s\n"
		 "[backend sink]\nserver = %s\ncheck = none\nconnect_timeout = 30s\n"
		 "[backend source]\nserver = %s\ncheck = none\nconnect_timeout = 30s\n",
		 backend_addr(echo), backend_addr(sink), backend_addr(source));
	ini = harness_config_web(name, port, &crt, global,
				 "route = sink.test sink\nroute = source.test source\n"
				 /* 64 handshakes at once under emulation (and ASan) take a while */
				 "handshake_timeout = 60s\n",
				 backends);
	cr_assert(ini && (p = proxy_start(ini, port)));
	for (int i = 0; i < CONNS; i++) {
		jobs[i] = (struct job){ .port = port,
					.kind = (enum kind)(i % 3),
					.size = 16 * 1024 +
						(uint64_t)(rand_r(&seed) % (256 * 1024)),
					.early = rand_r(&seed) % 8 == 0 };
		cr_assert_eq(pthread_create(&th[i], NULL, job_run, &jobs[i]), 0);
	}
	for (int i = 0; i < CONNS; i++) {
		pthread_join(th[i], NULL);
		early += jobs[i].early;
		completed += jobs[i].ok;
		cr_expect(jobs[i].early || jobs[i].ok, "%s: connection %d (%s, %llu bytes): %s",
			  name, i,
			  jobs[i].kind == UPLOAD     ? "upload"
			  : jobs[i].kind == DOWNLOAD ? "download"
						     : "duplex",
			  (unsigned long long)jobs[i].size, jobs[i].why);
	}
	for (int i = 0; i < CONNS; i++) {
		char *line = jobs[i].early || jobs[i].ok || !jobs[i].client[0]
				     ? NULL
				     : alog_wait_find(proxy_access_log(p), "client", jobs[i].client,
						      10000);
		if (line)
			cr_log_error("%s: connection %d: %s", name, i, line);
		free(line);
	}
	if (completed + early != CONNS || !proxy_running(p)) {
		char *err = harness_read_file(proxy_stderr_path(p), NULL);
		size_t n = err ? strlen(err) : 0;
		cr_log_error("%s: proxy stderr (end):\n%s", name,
			     err ? err + (n > 4000 ? n - 4000 : 0) : "(none)");
		free(err);
	}
	cr_assert(proxy_running(p), "%s: the proxy died", name);
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), CONNS, 60000), CONNS,
		     "%s: not every connection was logged", name);
	cr_assert_eq(alog_count(proxy_access_log(p), "close", "no_server"), 0);
	cr_log_info("%s: %d connections, %d completed intact, %d dropped early by the client, "
		    "%d spliced",
		    name, CONNS, completed, early,
		    alog_count(proxy_access_log(p), "relay", "splice"));
	cr_assert_eq(completed + early, CONNS);
}

Test(ktls_diff, concurrent_integrity_both_paths, .timeout = 400)
{
	unsigned seed = (unsigned)harness_now_ms();

	cr_log_info("seed %u", seed);
	integrity_run("kernel.ini", "auto", seed);
	integrity_run("user.ini", "off", seed);
	harness_pass();
}

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
