/* tlsplice-abuse-soak: streams of checked data through the proxy while the operator side
 * misbehaves (backends killed, reloads).
 *
 *   tlsplice-abuse-soak -p ECHO_PORT [-q SINK_PORT] [-H HOST] [-c 16] [-d 60] [-m 4M] [-s SEED]
 *
 * C streams at a time for -d seconds, then the ones in flight finish (bounded). Each stream
 * makes a full TLS handshake and moves a random number of bytes (log-uniform, 1 to -m):
 * echo: full duplex through an echo backend; every byte that comes back is compared with the
 *       seeded pattern at its offset, so a lost, duplicated or reordered byte is caught;
 * sink: upload only (when -q is given), close_notify, then the backend's hex SHA-256 of what
 *       it received is compared with the hash of what was sent.
 * Outcomes: ok; cut (the proxy or backend ended it early, and every byte received so far was
 * right); corrupt (a wrong byte or a wrong hash); stalled (no progress for 30 s).
 * One "RESULT ..." line; exit 1 on any corrupt or stalled stream, or when none completed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "common.h"

#define STALL_US 30000000ull
#define DRAIN_US 60000000ull
#define WCHUNK 16384

enum sst { S_FREE, S_CONNECTING, S_HANDSHAKE, S_RUN, S_SHUT };
enum res { SR_OK, SR_CUT, SR_CORRUPT, SR_STALLED, SR_COUNT };
static const char *const res_names[SR_COUNT] = { "ok", "cut", "corrupt", "stalled" };

struct stream {
	int fd;
	enum sst st;
	SSL *ssl;
	bool sink, want_out;
	uint64_t size, seed, sent, rcvd, last_us;
	EVP_MD_CTX *md;
	char reply[80];
	size_t replen;
};

static struct {
	const char *host, *echo_port, *sink_port;
	unsigned conc;
	uint64_t total_us, max_size, seed;
} o = { .host = "127.0.0.1", .conc = 16, .total_us = 60000000, .max_size = 4u << 20, .seed = 1 };

static struct ab_addr echo_addr, sink_addr;
static SSL_CTX *ctx;
static int ep;
static volatile sig_atomic_t got_term;
static uint64_t rng, results[SR_COUNT], kind_ok[2], bytes_up, bytes_down, started;
static unsigned char rbuf[65536];

static void on_signal(int sig)
{
	(void)sig;
	got_term = 1;
}

static void set_out(struct stream *s, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0),
				  .data.ptr = s };

	if (out != s->want_out) {
		s->want_out = out;
		epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
	}
}

static void stream_end(struct stream *s, enum res r)
{
	results[r]++;
	if (r == SR_OK)
		kind_ok[s->sink]++;
	if (r == SR_CORRUPT)
		fprintf(stderr,
			"soak: corrupt %s stream: size %" PRIu64 " seed %" PRIu64 " at %" PRIu64
			"\n",
			s->sink ? "sink" : "echo", s->size, s->seed, s->rcvd);
	if (s->ssl && r == SR_OK)
		SSL_shutdown(s->ssl);
	SSL_free(s->ssl);
	EVP_MD_CTX_free(s->md);
	if (s->fd >= 0)
		close(s->fd);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	ERR_clear_error();
}

static void stream_start(struct stream *s, uint64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLOUT, .data.ptr = s };
	double lg = log((double)o.max_size) * (double)(ab_rand(&rng) % 1000001) / 1e6;

	started++;
	s->sink = o.sink_port && ab_rand(&rng) % 2;
	s->size = (uint64_t)exp(lg);
	s->size = s->size ? s->size : 1;
	s->seed = ab_rand(&rng) % AB_PATLEN;
	s->last_us = now;
	s->st = S_CONNECTING;
	s->want_out = true;
	if (s->sink &&
	    (!(s->md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(s->md, EVP_sha256(), NULL)))
		abort();
	s->fd = ab_connect(s->sink ? &sink_addr : &echo_addr);
	if (s->fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) < 0)
		stream_end(s, SR_CUT);
}

/* 1 progress, 0 blocked, -1 ended (EOF, reset, TLS error). */
static int ssl_res(struct stream *s, int r, bool *wants_write)
{
	int e;

	if (r > 0)
		return 1;
	e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		return 0;
	if (e == SSL_ERROR_WANT_WRITE) {
		*wants_write = true;
		return 0;
	}
	return -1;
}

static int write_some(struct stream *s, bool *ww)
{
	uint64_t left = s->size - s->sent;
	int len = left < WCHUNK ? (int)left : WCHUNK;
	const unsigned char *p = ab_pattern_at(s->seed, s->sent);
	int r = ssl_res(s, SSL_write(s->ssl, p, len), ww);

	if (r > 0) {
		if (s->md)
			EVP_DigestUpdate(s->md, p, (size_t)len);
		s->sent += (uint64_t)len;
		bytes_up += (uint64_t)len;
	}
	return r;
}

/* Compares the sink's "HEX\n" with our own hash of what we sent. */
static enum res sink_verdict(struct stream *s)
{
	static const char hx[] = "0123456789abcdef";
	unsigned char d[32];
	unsigned int dl = sizeof(d);
	char hex[65];

	EVP_DigestFinal_ex(s->md, d, &dl);
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = hx[d[i] >> 4];
		hex[2 * i + 1] = hx[d[i] & 15];
	}
	hex[64] = '\n';
	return memcmp(hex, s->reply, sizeof(hex)) == 0 ? SR_OK : SR_CORRUPT;
}

/* Reads what is there. 1 progress, 0 blocked, -1 the stream ended (already counted). */
static int read_some(struct stream *s, bool *ww)
{
	int r = SSL_read(s->ssl, rbuf, sizeof(rbuf));

	if (r <= 0) {
		r = ssl_res(s, r, ww);
		if (r < 0)
			stream_end(s, SR_CUT);
		return r;
	}
	bytes_down += (uint64_t)r;
	if (s->sink) {
		size_t k = (size_t)r < sizeof(s->reply) - s->replen ? (size_t)r
								    : sizeof(s->reply) - s->replen;

		memcpy(s->reply + s->replen, rbuf, k);
		s->replen += k;
		if (s->replen >= 65) {
			stream_end(s, s->replen == 65 && s->sent == s->size ? sink_verdict(s)
									    : SR_CORRUPT);
			return -1;
		}
		return 1;
	}
	if (s->rcvd + (uint64_t)r > s->sent ||
	    memcmp(rbuf, ab_pattern_at(s->seed, s->rcvd), (size_t)r) != 0) {
		stream_end(s, SR_CORRUPT);
		return -1;
	}
	s->rcvd += (uint64_t)r;
	if (s->rcvd == s->size) {
		stream_end(s, SR_OK);
		return -1;
	}
	return 1;
}

/* Moves data both ways until both directions would block. */
static void pump(struct stream *s)
{
	for (int guard = 0; guard < 256; guard++) {
		bool ww = false;
		int wr = 0, rd;

		if (s->sent < s->size && (wr = write_some(s, &ww)) < 0) {
			stream_end(s, SR_CUT);
			return;
		}
		if (s->sink && s->sent == s->size && s->st == S_RUN) {
			int r = SSL_shutdown(s->ssl); /* close_notify: the backend gets its EOF */

			if (r < 0 && ssl_res(s, r, &ww) < 0) {
				stream_end(s, SR_CUT);
				return;
			}
			if (r >= 0)
				s->st = S_SHUT;
		}
		rd = read_some(s, &ww);
		if (rd < 0)
			return;
		if (wr > 0 || rd > 0)
			s->last_us = ab_now_us();
		set_out(s, ww);
		if (wr <= 0 && rd == 0)
			return;
	}
}

static void drive(struct stream *s)
{
	int err = 0;
	bool ww = false;
	socklen_t len = sizeof(err);

	if (s->st == S_CONNECTING) {
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			stream_end(s, SR_CUT);
			return;
		}
		s->ssl = SSL_new(ctx);
		if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1) {
			stream_end(s, SR_CUT);
			return;
		}
		SSL_set_tlsext_host_name(s->ssl, "localhost");
		SSL_set_connect_state(s->ssl);
		s->st = S_HANDSHAKE;
	}
	if (s->st == S_HANDSHAKE) {
		int r = ssl_res(s, SSL_do_handshake(s->ssl), &ww);

		if (r < 0) {
			stream_end(s, SR_CUT);
			return;
		}
		set_out(s, ww);
		if (r == 0)
			return;
		s->st = S_RUN;
		s->last_us = ab_now_us();
	}
	pump(s);
}

static void run(struct stream *ss)
{
	struct epoll_event evs[256];
	uint64_t t0 = ab_now_us(), now = t0;
	unsigned live;

	do {
		bool more = !got_term && now - t0 < o.total_us;

		live = 0;
		for (unsigned i = 0; i < o.conc; i++) {
			if (ss[i].st == S_FREE && more)
				stream_start(&ss[i], now);
			if (ss[i].st != S_FREE && now - ss[i].last_us > STALL_US)
				stream_end(&ss[i], SR_STALLED);
			live += ss[i].st != S_FREE;
		}
		int n = epoll_wait(ep, evs, 256, 20);

		for (int i = 0; i < n; i++) {
			struct stream *s = evs[i].data.ptr;

			if (s->st != S_FREE)
				drive(s);
		}
		now = ab_now_us();
	} while ((live || (!got_term && now - t0 < o.total_us)) &&
		 now - t0 < o.total_us + DRAIN_US);
	for (unsigned i = 0; i < o.conc; i++)
		if (ss[i].st != S_FREE)
			stream_end(&ss[i], SR_STALLED);
	printf("RESULT streams=%" PRIu64, started);
	for (int i = 0; i < SR_COUNT; i++)
		printf(" %s=%" PRIu64, res_names[i], results[i]);
	printf(" echo_ok=%" PRIu64 " sink_ok=%" PRIu64 " mib_up=%.1f mib_down=%.1f secs=%.1f\n",
	       kind_ok[0], kind_ok[1], (double)bytes_up / 1048576.0, (double)bytes_down / 1048576.0,
	       (double)(now - t0) / 1e6);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct stream *ss;
	int ch;

	while ((ch = getopt(argc, argv, "H:p:q:c:d:m:s:")) != -1) {
		switch (ch) {
		case 'H':
			o.host = optarg;
			break;
		case 'p':
			o.echo_port = optarg;
			break;
		case 'q':
			o.sink_port = optarg;
			break;
		case 'c':
			o.conc = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			o.total_us = ab_parse_secs(optarg);
			break;
		case 'm':
			o.max_size = ab_parse_size(optarg);
			break;
		case 's':
			o.seed = strtoull(optarg, NULL, 10);
			break;
		default:
			goto usage;
		}
	}
	if (!o.echo_port || !o.conc || o.max_size < 2)
		goto usage;
	rng = o.seed * 0x9e3779b97f4a7c15ull + 1;
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	ab_raise_nofile();
	ab_pattern_init();
	ctx = ab_client_ctx();
	ss = calloc(o.conc, sizeof(*ss));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!ctx || !ss || ep < 0 || ab_resolve(o.host, o.echo_port, &echo_addr) < 0 ||
	    (o.sink_port && ab_resolve(o.host, o.sink_port, &sink_addr) < 0))
		return 2;
	for (unsigned i = 0; i < o.conc; i++)
		ss[i].fd = -1;
	run(ss);
	free(ss);
	SSL_CTX_free(ctx);
	return results[SR_CORRUPT] || results[SR_STALLED] || results[SR_OK] == 0;
usage:
	fprintf(stderr, "usage: tlsplice-abuse-soak -p ECHO_PORT [-q SINK_PORT] [-H HOST] [-c CONC]"
			" [-d SECS] [-m MAX_BYTES] [-s SEED]\n");
	return 2;
}
