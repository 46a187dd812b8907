/*
 * tlsplice-loadgen: single-threaded epoll TLS load generator for benchmarks.
 *
 * Modes (all bounded by -d seconds):
 *   bulk       C connections, each sends N bytes and reads N bytes back from
 *              an echo backend; every byte is checked against a pattern;
 *              -w bytes per SSL_write, so per record (16384: full records).
 *   handshake  full handshakes (no resumption), small echo, close; C in flight,
 *              up to N handshakes.
 *   rr         C persistent connections doing S-byte request/response, up to
 *              N requests; reports req/s and latency percentiles; prints
 *              "FIRST ..." once the first request has its answer.
 *   idle       open N connections (C handshakes in flight), one echo each,
 *              print "READY ..." when all are up, hold until SIGTERM or -d.
 *   probe      retry one handshake + echo until it works or -d runs out.
 *
 * Results are printed as one "RESULT key=value ..." line on stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "hist.h"
#include "size.h"
#include "trace.h"

#define PATLEN 65521u /* prime: the pattern never lines up with records */
#define IOBUF (64 * 1024)
#define MAX_ERR_PRINT 10
#define PROBE_RETRY_NS 50000000ull

enum mode { M_BULK, M_HANDSHAKE, M_RR, M_IDLE, M_PROBE };

enum cstate {
	CS_FREE,       /* slot unused */
	CS_CONNECTING, /* TCP connect in progress */
	CS_HANDSHAKE,  /* TLS handshake in progress */
	CS_RUN,        /* mode-specific traffic */
	CS_IDLE,       /* idle mode: up and held */
};

struct conn {
	int fd;
	enum cstate st;
	SSL *ssl;
	uint64_t sent;  /* bulk: bytes written; rr/echo: bytes of current request */
	uint64_t rcvd;  /* bulk: bytes read; rr/echo: bytes of current response */
	uint64_t seq;   /* rr: request number on this connection */
	uint64_t t_req; /* rr: when the current request was first written */
};

struct opts {
	enum mode mode;
	const char *host;
	const char *port;
	const char *groups;
	const char *suites;
	const char *sni;
	unsigned conc;
	uint64_t count; /* bulk: bytes per conn; handshake/rr: total; idle: conns */
	double duration;
	unsigned msg;      /* rr / echo message size */
	const char *trace; /* rr: per-request trace file (trace.h) */
	unsigned wsize;    /* bulk: bytes per SSL_write, i.e. per record */
	int version;       /* TLS1_2_VERSION or TLS1_3_VERSION */
};

static struct opts o = {
	.mode = M_BULK,
	.host = "127.0.0.1",
	.port = NULL,
	.groups = "X25519",
	.suites = "TLS_AES_128_GCM_SHA256",
	.sni = "localhost",
	.conc = 8,
	.count = 0,
	.duration = 60.0,
	.msg = 64,
	.wsize = 16384,
	.version = TLS1_3_VERSION,
};

static unsigned char pat[PATLEN + IOBUF];
static unsigned char iobuf[IOBUF];
static SSL_CTX *ctx;
static struct addrinfo *target;
static int ep = -1;
static struct conn *conns;
static unsigned nconns;
static volatile sig_atomic_t stop_flag;

/* totals */
static uint64_t started, completed, errors, active, up, dropped, resumed;
static uint64_t bytes_total, requests, tickets, up_final;
static uint64_t t_start, t_first_req, t_ready;
static uint64_t next_attempt;
static char neg_cipher[64] = "", neg_version[32] = "", neg_group[32] = "";

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

__attribute__((format(printf, 1, 2))) static void err_note(const char *fmt, ...)
{
	va_list ap;
	errors++;
	if (errors > MAX_ERR_PRINT)
		return;
	fputs("loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void pattern_init(void)
{
	uint32_t x = 0x12345678u;
	for (size_t i = 0; i < PATLEN; i++) {
		x = x * 1103515245u + 12345u;
		pat[i] = (unsigned char)(x >> 16);
	}
	for (size_t i = PATLEN; i < sizeof pat; i++)
		pat[i] = pat[i - PATLEN];
}

static const unsigned char *pat_at(uint64_t off)
{
	return pat + (off % PATLEN);
}

static int count_ticket(SSL *ssl, SSL_SESSION *sess)
{
	(void)ssl;
	(void)sess;
	tickets++;
	return 0;
}

static int ctx_init(void)
{
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return -1;
	SSL_CTX_set_min_proto_version(ctx, o.version);
	SSL_CTX_set_max_proto_version(ctx, o.version);
	/* TLS 1.2: the same AEAD as the TLS 1.3 default, for either kind of certificate. */
	if (o.version == TLS1_2_VERSION &&
	    SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:"
					 "ECDHE-RSA-AES128-GCM-SHA256") != 1)
		return -1;
	if (SSL_CTX_set_ciphersuites(ctx, o.suites) != 1) {
		fprintf(stderr, "loadgen: bad ciphersuites '%s'\n", o.suites);
		return -1;
	}
	/* TLS 1.2 takes an ECDSA certificate only on a curve the client lists among its groups. */
	if (o.version == TLS1_2_VERSION && strcmp(o.groups, "X25519") == 0)
		o.groups = "X25519:P-256";
	if (SSL_CTX_set1_groups_list(ctx, o.groups) != 1) {
		fprintf(stderr, "loadgen: bad groups '%s'\n", o.groups);
		return -1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* Client cache "on" only so that received tickets are counted, never reused. */
	SSL_CTX_set_session_cache_mode(ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, count_ticket);
	return 0;
}

static int resolve(void)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	int rc = getaddrinfo(o.host, o.port, &hints, &target);
	if (rc != 0) {
		fprintf(stderr, "loadgen: %s:%s: %s\n", o.host, o.port, gai_strerror(rc));
		return -1;
	}
	return 0;
}

static void conn_close(struct conn *c, bool clean)
{
	if (c->ssl) {
		if (clean)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	if (c->st == CS_IDLE)
		up--;
	c->st = CS_FREE;
	active--;
}

static void conn_fail(struct conn *c, const char *what)
{
	int saved = errno;
	unsigned long e = ERR_get_error();
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	if (o.mode == M_PROBE)
		next_attempt = now_ns() + PROBE_RETRY_NS;
	else if (c->st == CS_IDLE)
		dropped++;
	else
		err_note("%s: %s%s%s", what, saved ? strerror(saved) : "", *buf ? " " : "", buf);
	conn_close(c, false);
}

static int conn_start(struct conn *c)
{
	int one = 1;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };

	c->fd = socket(target->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		err_note("socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->st = CS_CONNECTING;
	c->sent = c->rcvd = c->seq = 0;
	active++;
	started++;
	if (connect(c->fd, target->ai_addr, target->ai_addrlen) < 0 && errno != EINPROGRESS) {
		errno = errno ? errno : ECONNREFUSED;
		conn_fail(c, "connect");
		return -1;
	}
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		conn_fail(c, "epoll_ctl");
		return -1;
	}
	return 0;
}

/* Returns 1 on progress, 0 on would-block, -1 on EOF/error (errno or SSL error set). */
static int ssl_result(struct conn *c, int r, bool *eof)
{
	if (r > 0)
		return 1;
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) {
		if (eof)
			*eof = true;
		errno = 0;
	}
	return -1;
}

static void record_negotiated(struct conn *c)
{
	if (neg_cipher[0])
		return;
	snprintf(neg_cipher, sizeof neg_cipher, "%s", SSL_get_cipher_name(c->ssl));
	snprintf(neg_version, sizeof neg_version, "%s", SSL_get_version(c->ssl));
	const char *g = SSL_group_to_name(c->ssl, SSL_get_negotiated_group(c->ssl));
	snprintf(neg_group, sizeof neg_group, "%s", g ? g : "?");
}

/* bulk: full-duplex N bytes each way, verifying what comes back. */
static void pump_bulk(struct conn *c)
{
	for (;;) {
		int progress = 0, r;
		bool eof = false;
		if (c->sent < o.count) {
			uint64_t left = o.count - c->sent;
			int len = left > o.wsize ? (int)o.wsize : (int)left;
			errno = 0;
			r = ssl_result(c, SSL_write(c->ssl, pat_at(c->sent), len), NULL);
			if (r < 0) {
				conn_fail(c, "bulk write");
				return;
			}
			if (r > 0) {
				c->sent += (uint64_t)len;
				bytes_total += (uint64_t)len;
				progress = 1;
			}
		}
		errno = 0;
		r = SSL_read(c->ssl, iobuf, sizeof iobuf);
		if (r > 0) {
			if (c->rcvd + (uint64_t)r > o.count ||
			    memcmp(iobuf, pat_at(c->rcvd), (size_t)r) != 0) {
				errno = 0;
				conn_fail(c, "bulk verify: data mismatch");
				return;
			}
			c->rcvd += (uint64_t)r;
			bytes_total += (uint64_t)r;
			progress = 1;
		} else if (ssl_result(c, r, &eof) < 0) {
			conn_fail(c, eof ? "bulk read: early EOF" : "bulk read");
			return;
		}
		if (c->rcvd == o.count && c->sent == o.count) {
			completed++;
			conn_close(c, true);
			return;
		}
		if (!progress)
			return;
	}
}

/*
 * One request/response exchange of o.msg bytes. Returns 1 when the response
 * is complete, 0 when blocked, -1 after failing the connection.
 */
static int echo_step(struct conn *c)
{
	uint64_t base = c->seq * o.msg;
	bool eof = false;
	int r;

	if (c->sent < o.msg) {
		if (c->sent == 0 && c->t_req == 0)
			c->t_req = now_ns();
		errno = 0;
		r = ssl_result(c, SSL_write(c->ssl, pat_at(base), (int)o.msg), NULL);
		if (r < 0) {
			conn_fail(c, "echo write");
			return -1;
		}
		if (r == 0)
			return 0;
		c->sent = o.msg;
	}
	while (c->rcvd < o.msg) {
		errno = 0;
		r = SSL_read(c->ssl, iobuf, (int)(o.msg - c->rcvd));
		if (r <= 0) {
			if (ssl_result(c, r, &eof) < 0) {
				conn_fail(c, eof ? "echo read: early EOF" : "echo read");
				return -1;
			}
			return 0;
		}
		if (memcmp(iobuf, pat_at(base + c->rcvd), (size_t)r) != 0) {
			errno = 0;
			conn_fail(c, "echo verify: data mismatch");
			return -1;
		}
		c->rcvd += (uint64_t)r;
	}
	c->sent = c->rcvd = 0;
	c->seq++;
	return 1;
}

static bool rr_more(void)
{
	return !stop_flag && (o.count == 0 || requests < o.count);
}

static void pump_rr(struct conn *c)
{
	int r;
	while ((r = echo_step(c)) == 1) {
		uint64_t t = now_ns();
		hist_add(t - c->t_req);
		trace_add(c->t_req - t_start, (unsigned)(c - conns), t - c->t_req);
		c->t_req = 0;
		requests++;
		if (!t_first_req) {
			t_first_req = t;
			printf("FIRST secs=%.3f\n", (double)(t - t_start) / 1e9);
			fflush(stdout);
		}
		if (!rr_more()) {
			conn_close(c, true);
			return;
		}
	}
}

static void pump_idle(struct conn *c)
{
	bool eof = false;
	int r;
	if (c->st == CS_RUN) {
		if (echo_step(c) != 1)
			return;
		c->st = CS_IDLE;
		up++;
		if (up == o.count && !t_ready) {
			t_ready = now_ns();
			printf("READY up=%" PRIu64 " secs=%.3f\n", up,
			       (double)(t_ready - t_start) / 1e9);
			fflush(stdout);
		}
	}
	/* Held: drain anything unexpected, notice EOF. */
	for (int i = 0; i < 64; i++) {
		r = SSL_read(c->ssl, iobuf, sizeof iobuf);
		if (r > 0)
			continue;
		if (ssl_result(c, r, &eof) < 0)
			conn_fail(c, "idle read");
		return;
	}
}

static void pump_handshake(struct conn *c)
{
	int r = echo_step(c);
	if (r != 1)
		return;
	completed++;
	conn_close(c, true);
}

static void conn_established(struct conn *c)
{
	record_negotiated(c);
	if (SSL_session_reused(c->ssl))
		resumed++;
	c->st = CS_RUN;
	c->t_req = 0;
}

static void drive(struct conn *c)
{
	int r, err = 0;
	socklen_t len = sizeof err;

	if (c->st == CS_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			errno = err;
			conn_fail(c, "connect");
			return;
		}
		c->ssl = SSL_new(ctx);
		if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
			conn_fail(c, "SSL_new");
			return;
		}
		SSL_set_tlsext_host_name(c->ssl, o.sni);
		SSL_set_connect_state(c->ssl);
		c->st = CS_HANDSHAKE;
	}
	if (c->st == CS_HANDSHAKE) {
		errno = 0;
		r = ssl_result(c, SSL_do_handshake(c->ssl), NULL);
		if (r < 0) {
			conn_fail(c, "handshake");
			return;
		}
		if (r == 0)
			return;
		conn_established(c);
	}
	switch (o.mode) {
	case M_BULK:
		pump_bulk(c);
		break;
	case M_RR:
		pump_rr(c);
		break;
	case M_IDLE:
		pump_idle(c);
		break;
	case M_HANDSHAKE:
	case M_PROBE:
		pump_handshake(c);
		break;
	}
}

static bool want_more(uint64_t now)
{
	if (stop_flag)
		return false;
	switch (o.mode) {
	case M_BULK:
	case M_RR:
		return started < o.conc;
	case M_IDLE:
		return started < o.count && active - up < o.conc;
	case M_HANDSHAKE:
		if (errors > 1000 && errors > completed)
			return false; /* the target is down: stop hammering it */
		return active < o.conc && (o.count == 0 || completed + errors + active < o.count);
	case M_PROBE:
		return completed == 0 && active == 0 && now >= next_attempt;
	}
	return false;
}

/* Opens new connections while the mode wants more in flight. */
static void refill(uint64_t now)
{
	static unsigned cursor;
	for (unsigned scanned = 0; scanned < nconns && want_more(now); scanned++) {
		struct conn *c = &conns[cursor];
		cursor = (cursor + 1) % nconns;
		if (c->st == CS_FREE && conn_start(c) < 0 && o.mode == M_PROBE)
			return;
	}
}

static bool finished(uint64_t now)
{
	if (now - t_start >= (uint64_t)(o.duration * 1e9))
		return true;
	switch (o.mode) {
	case M_BULK:
		return started >= o.conc && active == 0;
	case M_HANDSHAKE:
		return active == 0 && (stop_flag || (o.count && completed + errors >= o.count) ||
				       (errors > 1000 && errors > completed));
	case M_RR:
		return active == 0 && (!rr_more() || started >= o.conc);
	case M_IDLE:
		return stop_flag || (started >= o.count && active == 0);
	case M_PROBE:
		return completed > 0 || stop_flag;
	}
	return true;
}

/* In idle mode "active" includes idle slots; in-flight handshakes are active - up. */
static void loop(void)
{
	struct epoll_event evs[256];
	for (;;) {
		uint64_t now = now_ns();
		refill(now);
		if (finished(now))
			return;
		int n = epoll_wait(ep, evs, 256, 20);
		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			return;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->st != CS_FREE)
				drive(c);
		}
	}
}

static void close_all(void)
{
	for (unsigned i = 0; i < nconns; i++)
		if (conns[i].st != CS_FREE)
			conn_close(&conns[i], conns[i].st != CS_CONNECTING);
}

static void report(uint64_t t_end)
{
	double secs = (double)(t_end - t_start) / 1e9;
	const char *status = errors ? "errors" : "ok";

	printf("RESULT mode=%s",
	       (const char *[]){ "bulk", "handshake", "rr", "idle", "probe" }[o.mode]);
	switch (o.mode) {
	case M_BULK:
		if (completed < o.conc && !errors)
			status = "timeout";
		printf(" status=%s conns=%u completed=%" PRIu64 " bytes=%" PRIu64
		       " secs=%.3f mib_s=%.1f",
		       status, o.conc, completed, bytes_total, secs,
		       (double)bytes_total / 1048576.0 / secs);
		break;
	case M_HANDSHAKE:
	case M_PROBE:
		if (o.mode == M_PROBE)
			status = completed ? "ok" : "failed";
		printf(" status=%s conc=%u handshakes=%" PRIu64
		       " secs=%.3f hs_s=%.1f resumed=%" PRIu64,
		       status, o.conc, completed, secs, (double)completed / secs, resumed);
		break;
	case M_RR: {
		double rsecs = t_first_req ? (double)(t_end - t_first_req) / 1e9 : secs;
		printf(" status=%s conns=%u requests=%" PRIu64 " secs=%.3f rps=%.1f"
		       " p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f mean_us=%.1f",
		       status, o.conc, requests, rsecs, (double)requests / rsecs, hist_pct(0.50),
		       hist_pct(0.99), hist_pct(0.999), hist_max_us(), hist_mean_us());
		break;
	}
	case M_IDLE:
		if (!t_ready)
			status = "timeout";
		printf(" status=%s target=%" PRIu64 " up=%" PRIu64 " dropped=%" PRIu64
		       " up_secs=%.3f secs=%.3f",
		       status, o.count, up_final, dropped,
		       t_ready ? (double)(t_ready - t_start) / 1e9 : 0.0, secs);
		break;
	}
	printf(" errors=%" PRIu64 " tickets=%" PRIu64 " version=%s cipher=%s group=%s\n", errors,
	       tickets, neg_version[0] ? neg_version : "-", neg_cipher[0] ? neg_cipher : "-",
	       neg_group[0] ? neg_group : "-");
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tlsplice-loadgen MODE -p PORT [options]\n"
		"  MODE: bulk | handshake | rr | idle | probe\n"
		"  -H, --host HOST        target host (127.0.0.1)\n"
		"  -p, --port PORT        target port (required)\n"
		"  -c, --conc N           concurrency (8)\n"
		"  -n, --count N          bulk: bytes per connection each way (K/M/G);\n"
		"                         handshake/rr: total (0 = until -d); idle: connections\n"
		"  -d, --duration SECS    hard time bound (60)\n"
		"  -s, --size N           rr / echo message size (64)\n"
		"  -g, --groups LIST      key exchange groups (X25519)\n"
		"  -C, --ciphersuites L   TLS 1.3 suites (TLS_AES_128_GCM_SHA256)\n"
		"  -S, --sni NAME         server name (localhost)\n"
		"  -T, --trace FILE       rr: one line per request (start_us conn latency_us)\n"
		"  -w, --write N          bulk: bytes per write, so per record (16384, at most)\n"
		"  -v, --tls 1.2|1.3      protocol version (1.3; 1.2 uses AES-128-GCM)\n");
}

static int parse_mode(const char *s)
{
	static const char *names[] = { "bulk", "handshake", "rr", "idle", "probe" };
	for (int i = 0; i < 5; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

static int parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "conc", required_argument, NULL, 'c' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "groups", required_argument, NULL, 'g' },
		{ "ciphersuites", required_argument, NULL, 'C' },
		{ "sni", required_argument, NULL, 'S' },
		{ "trace", required_argument, NULL, 'T' },
		{ "write", required_argument, NULL, 'w' },
		{ "tls", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, m;
	if (argc < 2 || (m = parse_mode(argv[1])) < 0) {
		usage(stderr);
		return -1;
	}
	o.mode = (enum mode)m;
	optind = 2;
	while ((ch = getopt_long(argc, argv, "H:p:c:n:d:s:g:C:S:T:w:v:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'H':
			o.host = optarg;
			break;
		case 'p':
			o.port = optarg;
			break;
		case 'c':
			o.conc = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			o.count = size_parse(optarg);
			break;
		case 'd':
			o.duration = strtod(optarg, NULL);
			break;
		case 's':
			o.msg = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'g':
			o.groups = optarg;
			break;
		case 'C':
			o.suites = optarg;
			break;
		case 'S':
			o.sni = optarg;
			break;
		case 'T':
			o.trace = optarg;
			break;
		case 'w':
			o.wsize = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'v': /* anything else is 0, refused below */
			o.version = strcmp(optarg, "1.2") == 0 ? TLS1_2_VERSION : 0;
			o.version = strcmp(optarg, "1.3") == 0 ? TLS1_3_VERSION : o.version;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (!o.port || o.conc == 0 || o.duration <= 0 || o.msg == 0 || o.msg > IOBUF ||
	    o.wsize == 0 || o.wsize > 16384 || o.version == 0) {
		usage(stderr);
		return -1;
	}
	if ((o.mode == M_BULK || o.mode == M_IDLE) && o.count == 0) {
		fprintf(stderr, "loadgen: %s needs -n\n", argv[1]);
		return -1;
	}
	if (o.mode == M_PROBE)
		o.conc = 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };

	if (parse_args(argc, argv) < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	raise_nofile();
	pattern_init();
	if (ctx_init() < 0 || resolve() < 0)
		return 2;
	nconns = o.mode == M_IDLE ? (unsigned)o.count : o.conc;
	conns = calloc(nconns, sizeof *conns);
	bool hist_ok = o.mode != M_RR || hist_init() == 0;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || ep < 0 || !hist_ok || (o.trace && trace_open(o.trace) < 0)) {
		perror("loadgen: setup");
		return 2;
	}
	for (unsigned i = 0; i < nconns; i++)
		conns[i].fd = -1;
	t_start = now_ns();
	loop();
	uint64_t t_end = now_ns();
	up_final = up;
	close_all();
	report(t_end);
	trace_close();
	if (o.mode == M_PROBE)
		return completed ? 0 : 1;
	if (o.mode == M_BULK && completed < o.conc)
		return 1;
	if (o.mode == M_IDLE && !t_ready)
		return 1;
	return errors ? 1 : 0;
}
