/* tlsplice-abuse-clients: many TLS clients that hold their connections.
 *
 *   tlsplice-abuse-clients flood -p PORT [-n 1000] [-c 1000] [-d 8]
 *   tlsplice-abuse-clients hold  -p PORT [-n 10000] [-c 200] [-d 300]
 *   tlsplice-abuse-clients churn -p PORT [-n 10000] [-c 16] [-d 300] [-r PERMILLE]
 *
 * Every client connects, completes a full handshake (no resumption), echoes 64 pattern bytes
 * (checked) through an echo backend, and then holds the connection.
 * flood: N clients start at once; after -d seconds every client is classified (served, still
 *        waiting for the proxy, ended during the handshake, ended after it without an echo)
 *        and closed. Exit 1 only on corrupt echoes or when none was served.
 * hold:  C handshakes in flight until N are held, then "READY up=N secs=S" on stdout.
 *        SIGUSR1: every held connection echoes once more, then "ECHOED n=N secs=S".
 *        SIGTERM (or -d): close all, print RESULT. A held connection the proxy closes counts
 *        as dropped; exit 1 on any drop, any failure, or when READY was not reached.
 * churn: C at a time until N have each done handshake, echo, close_notify and close. With
 *        -r, that many per mille of the handshakes resume the session of the connection
 *        completed last (TLS 1.3 ticket), the others are full. Exit 1 unless all N were served.
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

#include <openssl/err.h>

#include "common.h"

#define MSG 64

enum cst { C_FREE, C_CONNECTING, C_HANDSHAKE, C_ECHO, C_HELD, C_ENDED };
enum end { E_NONE, E_CONNECT, E_HANDSHAKE, E_NO_ECHO, E_DROPPED, E_CORRUPT, E_COUNT };
static const char *const end_names[E_COUNT] = {
	"none", "connect_failed", "ended_in_handshake", "ended_before_echo", "dropped", "corrupt"
};

struct cconn {
	int fd;
	enum cst st;
	SSL *ssl;
	unsigned idx;
	unsigned seq, sent, rcvd;
	bool want_out;
};

static struct {
	bool hold, churn;
	unsigned resume_permille;
	const char *host, *port;
	unsigned n, conc;
	uint64_t total_us;
} o = { .host = "127.0.0.1", .n = 1000, .conc = 1000, .total_us = 8000000 };

static struct ab_addr target;
static SSL_CTX *ctx;
static int ep;
static struct cconn *cs;
static volatile sig_atomic_t got_usr1, got_term;
static uint64_t ends[E_COUNT], served, held, echoed, started, echo_round;
static uint64_t t_start, closed_ok, resumed;
static uint64_t rng = 0x2545f4914f6cdd1dull;
static SSL_SESSION *last_session;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		got_usr1 = 1;
	else
		got_term = 1;
}

static void set_out(struct cconn *c, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0),
				  .data.ptr = c };

	if (out != c->want_out) {
		c->want_out = out;
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

static void conn_end(struct cconn *c, enum end why)
{
	if (c->st == C_HELD)
		held--;
	ends[why]++;
	SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->st = C_ENDED;
	ERR_clear_error();
}

static void conn_start(struct cconn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLOUT, .data.ptr = c };

	started++;
	c->st = C_CONNECTING;
	c->want_out = true;
	c->fd = ab_connect(&target);
	if (c->fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		conn_end(c, E_CONNECT);
}

/* 1: done, 0: blocked (interest set), -1: the peer ended it. */
static int ssl_step(struct cconn *c, int r)
{
	int e;

	if (r > 0)
		return 1;
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		set_out(c, e == SSL_ERROR_WANT_WRITE);
		return 0;
	}
	return -1;
}

/* One 64-byte echo; 1 when it came back intact. */
static int echo_step(struct cconn *c)
{
	unsigned char buf[MSG];
	uint64_t base = (uint64_t)c->seq * MSG;
	int r;

	if (c->sent < MSG) {
		r = ssl_step(c, SSL_write(c->ssl, ab_pattern_at(c->idx, base), MSG));
		if (r <= 0)
			return r < 0 ? (conn_end(c, E_NO_ECHO), -1) : 0;
		c->sent = MSG;
	}
	while (c->rcvd < MSG) {
		r = SSL_read(c->ssl, buf, (int)(MSG - c->rcvd));
		if (r > 0 && memcmp(buf, ab_pattern_at(c->idx, base + c->rcvd), (size_t)r) != 0) {
			conn_end(c, E_CORRUPT);
			return -1;
		}
		if (r > 0) {
			c->rcvd += (unsigned)r;
			continue;
		}
		r = ssl_step(c, r);
		return r < 0 ? (conn_end(c, c->seq ? E_DROPPED : E_NO_ECHO), -1) : 0;
	}
	c->sent = c->rcvd = 0;
	c->seq++;
	return 1;
}

static void held_read(struct cconn *c)
{
	unsigned char buf[512];

	for (int i = 0; i < 16; i++) {
		int r = SSL_read(c->ssl, buf, sizeof(buf));

		if (r > 0)
			continue; /* nothing is expected; an echo backend sends nothing unasked */
		if (ssl_step(c, r) < 0)
			conn_end(c, E_DROPPED);
		return;
	}
}

/* Churn: the echo came back; keep the newest session, close cleanly, free the slot. */
static void churn_done(struct cconn *c)
{
	served++;
	closed_ok++;
	if (o.resume_permille) {
		SSL_SESSION_free(last_session);
		last_session = SSL_get1_session(c->ssl);
	}
	SSL_shutdown(c->ssl);
	SSL_free(c->ssl);
	c->ssl = NULL;
	close(c->fd);
	c->fd = -1;
	c->st = C_ENDED;
}

static void drive(struct cconn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (c->st == C_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			conn_end(c, E_CONNECT);
			return;
		}
		c->ssl = SSL_new(ctx);
		if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
			conn_end(c, E_CONNECT);
			return;
		}
		SSL_set_tlsext_host_name(c->ssl, "localhost");
		if (o.churn && last_session && ab_rand(&rng) % 1000 < o.resume_permille)
			SSL_set_session(c->ssl, last_session);
		SSL_set_connect_state(c->ssl);
		c->st = C_HANDSHAKE;
	}
	if (c->st == C_HANDSHAKE) {
		int r = ssl_step(c, SSL_do_handshake(c->ssl));

		if (r < 0)
			conn_end(c, E_HANDSHAKE);
		if (r <= 0)
			return;
		resumed += SSL_session_reused(c->ssl);
		c->st = C_ECHO;
	}
	if (c->st == C_ECHO) {
		if (echo_step(c) != 1)
			return;
		if (o.churn)
			return churn_done(c);
		if (c->seq == 1)
			served++;
		else
			echoed++;
		c->st = C_HELD;
		held++;
		set_out(c, false);
	}
	if (c->st == C_HELD)
		held_read(c);
}

static uint64_t ended_total(void)
{
	uint64_t n = 0;

	for (int i = 1; i < E_COUNT; i++)
		n += ends[i];
	return n;
}

/* Starts clients: all at once for a flood, C handshakes in flight for hold. */
static void refill(void)
{
	static unsigned cursor;

	while (cursor < o.n) {
		if ((o.hold || o.churn) && started - held - closed_ok - ended_total() >= o.conc)
			return;
		cs[cursor].idx = cursor;
		conn_start(&cs[cursor++]);
	}
}

/* SIGUSR1 in hold mode: every held connection echoes once more. */
static void echo_again(void)
{
	echo_round++;
	for (unsigned i = 0; i < o.n; i++) {
		struct cconn *c = &cs[i];

		if (c->st == C_HELD) {
			held--;
			c->st = C_ECHO;
			drive(c);
		}
	}
}

static void run_loop(void)
{
	struct epoll_event evs[512];
	bool ready = false, echo_reported = false;

	while (!got_term && ab_now_us() - t_start < o.total_us &&
	       (!o.churn || closed_ok + ended_total() < o.n)) {
		refill();
		int n = epoll_wait(ep, evs, 512, 20);

		for (int i = 0; i < n; i++) {
			struct cconn *c = evs[i].data.ptr;

			if (c->st != C_ENDED && c->st != C_FREE)
				drive(c);
		}
		if (!o.hold)
			continue;
		if (!ready && held == o.n) {
			ready = true;
			printf("READY up=%" PRIu64 " secs=%.3f\n", held,
			       (double)(ab_now_us() - t_start) / 1e6);
			fflush(stdout);
		}
		if (ready && got_usr1 && !echo_round)
			echo_again();
		if (echo_round && !echo_reported && echoed == o.n) {
			echo_reported = true;
			printf("ECHOED n=%" PRIu64 " secs=%.3f\n", echoed,
			       (double)(ab_now_us() - t_start) / 1e6);
			fflush(stdout);
		}
	}
}

static uint64_t classify_and_close(void)
{
	uint64_t waiting = 0;

	for (unsigned i = 0; i < o.n; i++) {
		struct cconn *c = &cs[i];

		if (c->st == C_CONNECTING || c->st == C_HANDSHAKE ||
		    (c->st == C_ECHO && c->seq == 0))
			waiting++;
		if (c->ssl && c->st == C_HELD)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		if (c->fd >= 0)
			close(c->fd);
	}
	return waiting;
}

static int report(void)
{
	double secs = (double)(ab_now_us() - t_start) / 1e6;
	uint64_t held_end = held, waiting = classify_and_close(), bad;

	printf("RESULT mode=%s clients=%u served=%" PRIu64 " held=%" PRIu64 " waiting=%" PRIu64
	       " resumed=%" PRIu64 " rate=%.1f",
	       o.hold    ? "hold"
	       : o.churn ? "churn"
			 : "flood",
	       o.n, served, held_end, waiting, resumed, (double)served / secs);
	for (int i = 1; i < E_COUNT; i++)
		printf(" %s=%" PRIu64, end_names[i], ends[i]);
	printf(" echoed_again=%" PRIu64 " secs=%.3f\n", echoed, secs);
	fflush(stdout);
	if (o.churn)
		return served < o.n;
	if (!o.hold)
		return ends[E_CORRUPT] || served == 0;
	bad = ends[E_CONNECT] + ends[E_HANDSHAKE] + ends[E_NO_ECHO] + ends[E_DROPPED] +
	      ends[E_CORRUPT];
	return bad || served < o.n || (echo_round && echoed < o.n);
}

static int parse_args(int argc, char **argv)
{
	int ch;

	if (argc < 2 ||
	    (strcmp(argv[1], "flood") && strcmp(argv[1], "hold") && strcmp(argv[1], "churn")))
		return -1;
	o.hold = strcmp(argv[1], "hold") == 0;
	o.churn = strcmp(argv[1], "churn") == 0;
	if (o.churn) {
		o.n = 10000;
		o.conc = 16;
		o.total_us = 300000000;
	}
	if (o.hold) {
		o.n = 10000;
		o.conc = 200;
		o.total_us = 300000000;
	}
	optind = 2;
	while ((ch = getopt(argc, argv, "H:p:n:c:d:r:")) != -1) {
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
		case 'd':
			o.total_us = ab_parse_secs(optarg);
			break;
		case 'r':
			o.resume_permille = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			return -1;
		}
	}
	if (!o.hold && !o.churn)
		o.conc = o.n;
	return o.port && o.n && o.conc ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };

	if (parse_args(argc, argv) < 0) {
		fprintf(stderr, "usage: tlsplice-abuse-clients flood|hold|churn -p PORT [-H HOST]"
				" [-n N] [-c CONC] [-d SECS] [-r RESUME_PERMILLE]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	ab_raise_nofile();
	ab_pattern_init();
	ctx = ab_client_ctx();
	if (ctx && o.churn && o.resume_permille) {
		/* Keep the tickets the proxy sends, outside OpenSSL's cache: resumption is ours. */
		SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
							    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	}
	cs = calloc(o.n, sizeof(*cs));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!ctx || !cs || ep < 0 || ab_resolve(o.host, o.port, &target) < 0)
		return 2;
	for (unsigned i = 0; i < o.n; i++)
		cs[i].fd = -1;
	t_start = ab_now_us();
	run_loop();
	return report();
}
