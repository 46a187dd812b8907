/* tlsplice-abuse-hello: hostile first flights against a TLS listener.
 *
 *   tlsplice-abuse-hello hello     -p PORT [-H HOST] [-n 10000] [-c 500] [-t 10] [-d 120]
 *   tlsplice-abuse-hello slowloris -p PORT [-H HOST] [-n 500] [-i 0.2] [-t 10] [-d 60]
 *
 * hello:     N connections, C at a time, each sends one of ten kinds of bad first flight
 *            (garbage, truncated hellos with FIN, with nothing, with a reset, an oversized
 *            record, an oversized handshake message, a bit-flipped hello, plaintext HTTP, a
 *            hello followed by garbage, empty-record spam), then reads until the proxy closes.
 * slowloris: N connections at once, each sends one byte of a real ClientHello every -i
 *            seconds until the proxy closes it; reports how long after connect() that was.
 * -s fixes the random choices (default: from the pid and clock; printed in the RESULT line).
 * -t bounds each connection; a connection the proxy has not closed by then counts as
 * "timeout". One "RESULT key=value ..." line on stdout; exit 0 when every connection was
 * closed by the proxy (or reset by us, for that kind).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common.h"

#define NKINDS 10
#define OVERSIZE_RECORDS 16
#define REC 16389 /* a 16 KiB record with its header */

enum outcome { O_NONE, O_EOF, O_RST, O_TIMEOUT, O_CONNFAIL, O_ABORTED, O_COUNT };
static const char *const outcome_names[O_COUNT] = { "none",    "eof",      "rst",
						    "timeout", "connfail", "aborted" };

struct hconn {
	int fd;
	int kind;
	uint64_t t0, next_us;
	unsigned char *own; /* per-connection bytes, or NULL */
	const unsigned char *data;
	size_t len, off;
	bool fin, rst, writing, live;
	uint64_t got;
};

static struct {
	bool slow;
	const char *host, *port;
	unsigned n, conc;
	uint64_t conn_us, total_us, interval_us;
} o = { .host = "127.0.0.1",
	.n = 10000,
	.conc = 500,
	.conn_us = 10000000,
	.total_us = 120000000,
	.interval_us = 200000 };

static struct ab_addr target;
static int ep;
static unsigned char hello[4096], oversized_rec[REC + 4096], oversized_hs[OVERSIZE_RECORDS * REC];
static unsigned char empties[5000];
static size_t hello_len;
static uint64_t rng, seed;
static uint64_t counts[O_COUNT], kind_counts[NKINDS], bytes_back, alerts;
static uint64_t by_kind[NKINDS][O_COUNT], replied_by_kind[NKINDS];
static const char *const kind_names[NKINDS] = {
	"garbage",     "cut+fin",   "cut+silence", "cut+reset",     "big-record",
	"big-message", "bit-flips", "http",        "hello+garbage", "empty-records",
};
static uint64_t close_min = UINT64_MAX, close_max, close_sum, closed_n;

static void build_static(void)
{
	memcpy(oversized_rec, "\x16\x03\x01\xff\xff", 5);
	for (int r = 0; r < OVERSIZE_RECORDS; r++)
		memcpy(oversized_hs + (size_t)r * REC, "\x16\x03\x01\x40\x00", 5);
	memcpy(oversized_hs + 5, "\x01\xff\xff\xff\x03\x03", 6);
	for (size_t i = 0; i + 5 <= sizeof(empties); i += 5)
		memcpy(empties + i, "\x16\x03\x01\x00\x00", 5);
}

static unsigned char *own_copy(struct hconn *c, size_t len)
{
	c->own = malloc(len);
	if (!c->own)
		abort();
	c->data = c->own;
	c->len = len;
	return c->own;
}

/* Chooses what connection C sends first. */
static void build_flight(struct hconn *c)
{
	size_t cut = 1 + ab_rand(&rng) % (hello_len - 1);
	unsigned char *p;

	c->kind = (int)(ab_rand(&rng) % NKINDS);
	switch (c->kind) {
	case 0: /* garbage */
		p = own_copy(c, 1 + ab_rand(&rng) % 4096);
		for (size_t i = 0; i < c->len; i++)
			p[i] = (unsigned char)ab_rand(&rng);
		c->fin = true;
		break;
	case 1:
	case 2:
	case 3: /* truncated hello: FIN, silence, reset */
		c->data = hello;
		c->len = cut;
		c->fin = c->kind == 1;
		c->rst = c->kind == 3;
		break;
	case 4:
		c->data = oversized_rec;
		c->len = sizeof(oversized_rec);
		break;
	case 5:
		c->data = oversized_hs;
		c->len = sizeof(oversized_hs);
		break;
	case 6: /* bit flips */
		memcpy(own_copy(c, hello_len), hello, hello_len);
		for (uint64_t k = 1 + ab_rand(&rng) % 8; k > 0; k--)
			c->own[ab_rand(&rng) % hello_len] ^= (unsigned char)(1u << (ab_rand(&rng) %
										    8));
		break;
	case 7:
		c->data = (const unsigned char *)"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
		c->len = 27;
		break;
	case 8: /* a good hello, then garbage records */
		p = own_copy(c, hello_len + 2048);
		memcpy(p, hello, hello_len);
		for (size_t i = hello_len; i < c->len; i++)
			p[i] = (unsigned char)ab_rand(&rng);
		break;
	default:
		c->data = empties;
		c->len = sizeof(empties);
		break;
	}
}

static void finish(struct hconn *c, enum outcome oc)
{
	uint64_t dt = ab_now_us() - c->t0;

	counts[oc]++;
	if (!o.slow) {
		by_kind[c->kind][oc]++;
		replied_by_kind[c->kind] += c->got > 0;
	}
	if (oc == O_EOF || oc == O_RST) {
		closed_n++;
		close_sum += dt;
		close_min = dt < close_min ? dt : close_min;
		close_max = dt > close_max ? dt : close_max;
	}
	if (c->got)
		alerts++;
	if (c->fd >= 0 && oc != O_ABORTED)
		close(c->fd); /* closing removes it from the epoll set */
	free(c->own);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void set_events(struct hconn *c, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0),
				  .data.ptr = c };

	c->writing = out;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int start(struct hconn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLOUT, .data.ptr = c };

	memset(c, 0, sizeof(*c));
	c->t0 = ab_now_us();
	c->live = true;
	c->writing = true;
	if (o.slow) {
		c->data = hello;
		c->len = hello_len;
	} else {
		build_flight(c);
		kind_counts[c->kind]++;
	}
	c->fd = ab_connect(&target);
	if (c->fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		finish(c, O_CONNFAIL);
		return -1;
	}
	return 0;
}

/* Reads what the proxy sends (an alert, a ServerHello) until it closes or would block. */
static bool drain(struct hconn *c)
{
	unsigned char buf[16384];

	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));

		if (n > 0) {
			c->got += (uint64_t)n;
			bytes_back += (uint64_t)n;
			continue;
		}
		if (n == 0) {
			finish(c, O_EOF);
			return true;
		}
		if (errno == EAGAIN || errno == EINTR)
			return false;
		finish(c, errno == ECONNREFUSED ? O_CONNFAIL : O_RST);
		return true;
	}
}

/* Sends what is due: all of the flight, or one byte in slowloris mode. */
static bool send_due(struct hconn *c, uint64_t now)
{
	size_t want = c->len - c->off;
	ssize_t n;

	if (o.slow) {
		if (now < c->next_us || c->off >= c->len)
			return false;
		want = 1;
	}
	n = send(c->fd, c->data + c->off, want, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR || errno == ENOTCONN)
			return false;
		finish(c, errno == ECONNREFUSED ? O_CONNFAIL : O_RST);
		return true;
	}
	c->off += (size_t)n;
	if (o.slow) {
		c->next_us = now + o.interval_us / 2 + ab_rand(&rng) % o.interval_us;
		return false;
	}
	if (c->off < c->len)
		return false;
	if (c->rst) {
		ab_close_rst(c->fd);
		finish(c, O_ABORTED);
		return true;
	}
	if (c->fin)
		shutdown(c->fd, SHUT_WR);
	set_events(c, false);
	return false;
}

static void on_event(struct hconn *c, uint32_t ev, uint64_t now)
{
	if (!c->live)
		return;
	if ((ev & EPOLLOUT) && c->writing && !o.slow && send_due(c, now))
		return;
	if ((ev & EPOLLOUT) && o.slow && c->writing)
		set_events(c, false); /* connected: from now on bytes go out on the clock */
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		drain(c);
}

static void tick(struct hconn *cs, unsigned nc, uint64_t now)
{
	for (unsigned i = 0; i < nc; i++) {
		struct hconn *c = &cs[i];

		if (!c->live)
			continue;
		if (now - c->t0 >= o.conn_us)
			finish(c, O_TIMEOUT);
		else if (o.slow && !c->writing)
			send_due(c, now);
	}
}

static void report(uint64_t secs_us)
{
	printf("RESULT mode=%s conns=%u", o.slow ? "slowloris" : "hello", o.n);
	for (int i = 1; i < O_COUNT; i++)
		printf(" %s=%" PRIu64, outcome_names[i], counts[i]);
	printf(" replied=%" PRIu64 " bytes_back=%" PRIu64, alerts, bytes_back);
	if (closed_n)
		printf(" close_min_ms=%.1f close_max_ms=%.1f close_mean_ms=%.1f",
		       (double)close_min / 1e3, (double)close_max / 1e3,
		       (double)close_sum / 1e3 / (double)closed_n);
	if (!o.slow) {
		printf(" kinds=");
		for (int k = 0; k < NKINDS; k++)
			printf("%s%" PRIu64, k ? "," : "", kind_counts[k]);
	}
	printf(" seed=%" PRIu64 " secs=%.3f\n", seed, (double)secs_us / 1e6);
	fflush(stdout);
	for (int k = 0; !o.slow && k < NKINDS; k++) {
		fprintf(stderr, "%-14s", kind_names[k]);
		for (int i = 1; i < O_COUNT; i++)
			fprintf(stderr, " %s=%" PRIu64, outcome_names[i], by_kind[k][i]);
		fprintf(stderr, " replied=%" PRIu64 "\n", replied_by_kind[k]);
	}
}

static int run(void)
{
	struct hconn *cs = calloc(o.conc, sizeof(*cs));
	struct epoll_event evs[256];
	uint64_t t_start = ab_now_us(), started = 0, done;

	if (!cs || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return 2;
	for (;;) {
		uint64_t now = ab_now_us();

		for (unsigned i = 0; i < o.conc && started < o.n; i++)
			if (!cs[i].live && (started++, true))
				start(&cs[i]);
		done = 0;
		for (int i = 0; i < O_COUNT; i++)
			done += counts[i];
		if (done >= o.n || now - t_start >= o.total_us)
			break;
		int n = epoll_wait(ep, evs, 256, 5);

		now = ab_now_us();
		for (int i = 0; i < n; i++)
			on_event(evs[i].data.ptr, evs[i].events, now);
		tick(cs, o.conc, now);
	}
	for (unsigned i = 0; i < o.conc; i++)
		if (cs[i].live)
			finish(&cs[i], O_TIMEOUT);
	report(ab_now_us() - t_start);
	free(cs);
	return counts[O_TIMEOUT] || counts[O_CONNFAIL] || done < o.n ? 1 : 0;
}

static int parse_args(int argc, char **argv)
{
	int ch;

	if (argc < 2 || (strcmp(argv[1], "hello") && strcmp(argv[1], "slowloris")))
		return -1;
	o.slow = strcmp(argv[1], "slowloris") == 0;
	if (o.slow)
		o.n = o.conc = 500;
	optind = 2;
	seed = (uint64_t)getpid() ^ ab_now_us();
	while ((ch = getopt(argc, argv, "H:p:n:c:t:d:i:s:")) != -1) {
		switch (ch) {
		case 'H':
			o.host = optarg;
			break;
		case 'p':
			o.port = optarg;
			break;
		case 'n':
			o.n = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'c':
			o.conc = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 't':
			o.conn_us = ab_parse_secs(optarg);
			break;
		case 'd':
			o.total_us = ab_parse_secs(optarg);
			break;
		case 'i':
			o.interval_us = ab_parse_secs(optarg);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 10);
			break;
		default:
			return -1;
		}
	}
	if (o.slow)
		o.conc = o.n;
	rng = seed * 0x9e3779b97f4a7c15ull + 1;
	return o.port && o.n && o.conc && o.interval_us ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (parse_args(argc, argv) < 0) {
		fprintf(stderr,
			"usage: tlsplice-abuse-hello hello|slowloris -p PORT [-H HOST] [-n N]"
			" [-c CONC] [-t CONN_SECS] [-d SECS] [-i INTERVAL_SECS] [-s SEED]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	ab_raise_nofile();
	build_static();
	if (ab_resolve(o.host, o.port, &target) < 0 ||
	    ab_client_hello(hello, sizeof(hello), &hello_len) < 0)
		return 2;
	return run();
}
