/* Unit tests for health.c: the up/down state machine (first result, rise, fall, flapping,
 * passive failures, concurrent reporters) and the check thread against local sockets. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tlsplice/health.h"
#include "tlsplice/log.h"
#include "tlsplice/net.h"
#include "tlsplice/server.h"

/* One backend with one server, wired by hand as pool_init would. */
struct fixture {
	struct cfg_backend b;
	struct cfg_server cs;
	struct pool p;
	struct server s;
};

static void server_init(struct server *s, struct pool *p, const struct cfg_server *cs, unsigned idx)
{
	memset(s, 0, sizeof(*s));
	s->cfg = cs;
	s->pool = p;
	s->idx = idx;
	atomic_init(&s->up, true);
	atomic_init(&s->checked, false);
	atomic_init(&s->ok_streak, 0);
	atomic_init(&s->fail_streak, 0);
	atomic_init(&s->retry_at_ms, 0);
	atomic_init(&s->connections, 0);
	atomic_init(&s->connect_failures, 0);
	atomic_init(&s->check_failures, 0);
}

static void addr_set(struct cfg_addr *a, uint16_t port)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;

	memset(a, 0, sizeof(*a));
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->len = sizeof(*in);
	snprintf(a->text, sizeof(a->text), "127.0.0.1:%u", port);
}

static void backend_set(struct cfg_backend *b, enum check_kind kind, int rise, int fall,
			uint64_t interval_ms)
{
	memset(b, 0, sizeof(*b));
	b->name = "app";
	b->check = kind;
	b->check_rise = rise;
	b->check_fall = fall;
	b->check_interval_ms = interval_ms;
	b->check_timeout_ms = 200;
}

static void fx_init(struct fixture *f, enum check_kind kind, int rise, int fall, uint64_t interval)
{
	memset(f, 0, sizeof(*f));
	backend_set(&f->b, kind, rise, fall, interval);
	addr_set(&f->cs.addr, 9002);
	f->cs.weight = 1;
	f->b.servers = &f->cs;
	f->b.nservers = 1;
	f->p.cfg = &f->b;
	f->p.servers = &f->s;
	f->p.nservers = 1;
	server_init(&f->s, &f->p, &f->cs, 0);
}

static bool check_result(struct server *s, bool ok)
{
	return server_report(s, ok, false, ok ? NULL : "connection refused", 1000);
}

static void setup(void)
{
	log_set_level(LOG_WARN); /* keep the test output short; one test raises it */
}

TestSuite(health_state, .init = setup);

Test(health_state, first_failure_decides_at_once)
{
	struct fixture f;

	fx_init(&f, CHECK_TCP, 2, 3, 2000);
	cr_assert(atomic_load(&f.s.up), "a server counts as up before its first check");
	cr_assert(check_result(&f.s, false), "the first failure must change the state");
	cr_assert_not(atomic_load(&f.s.up));
	cr_assert(atomic_load(&f.s.checked));
	cr_assert_eq(atomic_load(&f.s.check_failures), 1);
}

Test(health_state, first_success_decides_at_once)
{
	struct fixture f;

	fx_init(&f, CHECK_TCP, 2, 3, 2000);
	cr_assert_not(check_result(&f.s, true), "up stays up: no change to report");
	cr_assert(atomic_load(&f.s.up));
	cr_assert(atomic_load(&f.s.checked));
	/* decided: from now on fall applies, so one failure is not enough */
	cr_assert_not(check_result(&f.s, false));
	cr_assert(atomic_load(&f.s.up));
}

Test(health_state, first_success_brings_up_a_server_live_traffic_took_down)
{
	struct fixture f;

	fx_init(&f, CHECK_TCP, 3, 2, 2000);
	server_report(&f.s, false, true, "connection refused", 10);
	cr_assert(server_report(&f.s, false, true, "connection refused", 10));
	cr_assert_not(atomic_load(&f.s.up));
	cr_assert(check_result(&f.s, true), "the first check result decides, rise does not apply");
	cr_assert(atomic_load(&f.s.up));
}

Test(health_state, rise_needs_consecutive_successes)
{
	struct fixture f;

	fx_init(&f, CHECK_TCP, 3, 3, 2000);
	cr_assert(check_result(&f.s, false));
	cr_assert_not(check_result(&f.s, true));
	cr_assert_not(check_result(&f.s, true));
	cr_assert_not(atomic_load(&f.s.up), "two of three successes must not bring it up");
	cr_assert(check_result(&f.s, true), "the third success must bring it up");
	cr_assert(atomic_load(&f.s.up));
	cr_assert_not(check_result(&f.s, true));
}

Test(health_state, fall_needs_consecutive_failures)
{
	struct fixture f;

	fx_init(&f, CHECK_TCP, 2, 3, 2000);
	check_result(&f.s, true);
	cr_assert_not(check_result(&f.s, false));
	cr_assert_not(check_result(&f.s, false));
	cr_assert(atomic_load(&f.s.up));
	cr_assert(check_result(&f.s, false), "the third failure must take it down");
	cr_assert_not(atomic_load(&f.s.up));
	cr_assert_not(check_result(&f.s, false), "down stays down");
	cr_assert_eq(atomic_load(&f.s.check_failures), 4);
}

Test(health_state, flapping_while_up_never_goes_down)
{
	struct fixture f;

	fx_init(&f, CHECK_TCP, 2, 3, 2000);
	check_result(&f.s, true);
	for (int i = 0; i < 50; i++) {
		cr_assert_not(check_result(&f.s, false));
		cr_assert_not(check_result(&f.s, false));
		cr_assert_not(check_result(&f.s, true), "round %d", i);
		cr_assert(atomic_load(&f.s.up));
	}
	/* a live success breaks the streak just as a check does */
	check_result(&f.s, false);
	check_result(&f.s, false);
	server_report(&f.s, true, true, NULL, 1000);
	cr_assert_not(check_result(&f.s, false));
	cr_assert(atomic_load(&f.s.up));
}

Test(health_state, flapping_while_down_never_comes_up)
{
	struct fixture f;

	fx_init(&f, CHECK_TCP, 3, 3, 2000);
	check_result(&f.s, false);
	for (int i = 0; i < 50; i++) {
		cr_assert_not(check_result(&f.s, true));
		cr_assert_not(check_result(&f.s, true));
		cr_assert_not(check_result(&f.s, false), "round %d", i);
		cr_assert_not(atomic_load(&f.s.up));
	}
	check_result(&f.s, true);
	check_result(&f.s, true);
	cr_assert(check_result(&f.s, true));
}

Test(health_state, live_failures_count_toward_fall)
{
	struct fixture f;

	fx_init(&f, CHECK_TCP, 2, 3, 2000);
	check_result(&f.s, true);
	cr_assert_not(check_result(&f.s, false));
	cr_assert_not(server_report(&f.s, false, true, "connection refused", 1000));
	cr_assert(server_report(&f.s, false, true, "connection refused", 1000));
	cr_assert_not(atomic_load(&f.s.up));
	cr_assert_eq(atomic_load(&f.s.check_failures), 1, "live failures are not check failures");
}

Test(health_state, live_success_does_not_override_active_checks)
{
	struct fixture f;

	fx_init(&f, CHECK_TCP, 2, 3, 2000);
	check_result(&f.s, false);
	cr_assert_not(server_report(&f.s, true, true, NULL, 1000));
	cr_assert_not(atomic_load(&f.s.up), "with active checks, rise decides recovery");
}

Test(health_state, passive_failures_with_check_none_arm_retry)
{
	struct fixture f;

	fx_init(&f, CHECK_NONE, 2, 3, 500);
	cr_assert_not(server_report(&f.s, false, true, "connection refused", 1000));
	cr_assert_not(server_report(&f.s, false, true, "connection refused", 1001));
	cr_assert(atomic_load(&f.s.up), "check = none: the first result does not decide");
	cr_assert(server_report(&f.s, false, true, "connection refused", 1002));
	cr_assert_not(atomic_load(&f.s.up));
	cr_assert_eq(atomic_load(&f.s.retry_at_ms), 1502, "retry after check_interval");
	cr_assert_eq(atomic_load(&f.s.check_failures), 0);

	/* the probe connection let through fails: try again one interval later */
	cr_assert_not(server_report(&f.s, false, true, "connection refused", 1600));
	cr_assert_eq(atomic_load(&f.s.retry_at_ms), 2100);
	cr_assert_not(atomic_load(&f.s.up));

	/* the next probe succeeds: up at once */
	cr_assert(server_report(&f.s, true, true, NULL, 2150));
	cr_assert(atomic_load(&f.s.up));
	cr_assert_eq(atomic_load(&f.s.fail_streak), 0);
}

Test(health_state, passive_down_does_not_arm_retry_with_active_checks)
{
	struct fixture f;

	fx_init(&f, CHECK_TCP, 2, 1, 500);
	check_result(&f.s, true);
	cr_assert(server_report(&f.s, false, true, "connection refused", 1000));
	cr_assert_eq(atomic_load(&f.s.retry_at_ms), 0);
}

/* ------------------------------------------------------------------ concurrency */

#define NTHREADS 4
#define NREPORTS 600 /* long enough that all threads run when a threshold is crossed */
#define ROUNDS 100
#define STREAK 400
#define STR_(x) #x
#define STR(x) STR_(x)

struct racer {
	struct server *s;
	pthread_barrier_t *barrier;
	bool ok, live;
	int changes;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->barrier);
	for (int i = 0; i < NREPORTS; i++)
		if (server_report(r->s, r->ok, r->live, r->ok ? NULL : "connection refused",
				  1000 + i))
			r->changes++;
	return NULL;
}

/* Runs NTHREADS threads that all report the same result; returns the state changes seen. */
static int race(struct server *s, bool ok, bool live)
{
	pthread_barrier_t barrier;
	pthread_t t[NTHREADS];
	struct racer r[NTHREADS];
	int changes = 0;

	cr_assert_eq(pthread_barrier_init(&barrier, NULL, NTHREADS), 0);
	for (int i = 0; i < NTHREADS; i++) {
		r[i] = (struct racer){ .s = s, .barrier = &barrier, .ok = ok, .live = live };
		cr_assert_eq(pthread_create(&t[i], NULL, racer_main, &r[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		changes += r[i].changes;
	}
	pthread_barrier_destroy(&barrier);
	return changes;
}

/* Counts lines containing needle in the file at path. */
static int count_lines(const char *path, const char *needle)
{
	FILE *fp = fopen(path, "r");
	char line[1024];
	int n = 0;

	cr_assert_not_null(fp);
	while (fgets(line, sizeof(line), fp))
		if (strstr(line, needle))
			n++;
	fclose(fp);
	return n;
}

Test(health_state, concurrent_reports_change_state_exactly_once)
{
	char path[] = "/tmp/test_health_log_XXXXXX";
	int logfd = mkstemp(path);
	int saved = dup(2);
	struct fixture f;

	cr_assert(logfd >= 0 && saved >= 0);
	log_set_level(LOG_INFO);
	fflush(stderr);
	dup2(logfd, 2); /* capture the state-change log lines */
	for (int round = 0; round < ROUNDS; round++) {
		fx_init(&f, CHECK_TCP, STREAK, STREAK, 2000);
		cr_assert_eq(race(&f.s, false, false), 1, "first-result race, round %d", round);
		cr_assert_not(atomic_load(&f.s.up));
		cr_assert_eq(race(&f.s, true, false), 1, "rise race, round %d", round);
		cr_assert(atomic_load(&f.s.up));
		cr_assert_eq(race(&f.s, false, true), 1, "fall race, round %d", round);
		cr_assert_not(atomic_load(&f.s.up));
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(logfd);
	cr_assert_eq(
		count_lines(path, "backend app server 127.0.0.1:9002 is DOWN: connection refused"),
		2 * ROUNDS, "every DOWN change is logged exactly once");
	cr_assert_eq(
		count_lines(path, "backend app server 127.0.0.1:9002 is UP: check passed (" STR(
					  STREAK) "/" STR(STREAK) ")"),
		ROUNDS, "every UP change is logged exactly once");
	unlink(path);
}

/* Reporters run on the check thread and on every worker: one that counted no server up and
 * then lost its core may mark the backend empty after another brought a server back. The
 * next state change must see the mark disagree with the servers, correct it and log the
 * recovery owed, not keep it until every server has gone down and up again. */
Test(health_state, a_stale_no_server_mark_is_corrected_by_the_next_change)
{
	char path[] = "/tmp/test_health_log_XXXXXX";
	int logfd = mkstemp(path), saved = dup(2);
	struct fixture f[2]; /* one backend: f[0]'s, with both servers */

	cr_assert(logfd >= 0 && saved >= 0);
	log_set_level(LOG_INFO);
	fx_init(&f[0], CHECK_TCP, 1, 1, 2000);
	fx_init(&f[1], CHECK_TCP, 1, 1, 2000);
	addr_set(&f[1].cs.addr, 9003);
	struct server both[2] = { f[0].s, f[1].s };
	both[1].pool = both[0].pool = &f[0].p;
	f[0].p.servers = both;
	f[0].p.nservers = 2;
	cr_assert(!check_result(&both[0], true) && !check_result(&both[1], true));
	atomic_store(&f[0].p.none_up, true); /* what the preempted reporter left: both are up */
	fflush(stderr);
	dup2(logfd, 2);
	cr_assert(check_result(&both[1], false)); /* b goes down; a still serves */
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(logfd);
	cr_assert_not(atomic_load(&f[0].p.none_up), "a is up, yet the backend stays marked empty");
	cr_assert_eq(count_lines(path, "backend app has a server available again: 127.0.0.1:9002"),
		     1, "the recovery line names the server that is up");
	cr_assert_eq(count_lines(path, "has no server available"), 0);
	unlink(path);
}

/* ------------------------------------------------------------------ check thread */

/* Local backend: accepts, optionally reads a request, writes reply (may be empty),
 * then closes, or holds the connection open without a word (silent). */
struct responder {
	int lfd;
	uint16_t port;
	const char *reply;
	bool silent;
	atomic_bool stop;
	atomic_int accepted;
	int held[64];
	int nheld;
	pthread_t thread;
};

static int listen_local(uint16_t *port)
{
	struct sockaddr_in in = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(in);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	cr_assert_eq(listen(fd, 512), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&in, &len), 0);
	*port = ntohs(in.sin_port);
	return fd;
}

/* A port on which connects are refused and that nobody else can take while *fd stays
 * open: bound without SO_REUSEADDR, never listening. */
static uint16_t refusing_port(int *fd)
{
	struct sockaddr_in in = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(in);

	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(*fd >= 0);
	cr_assert_eq(bind(*fd, (struct sockaddr *)&in, sizeof(in)), 0);
	cr_assert_eq(getsockname(*fd, (struct sockaddr *)&in, &len), 0);
	return ntohs(in.sin_port);
}

static void responder_serve(struct responder *r, int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[256];

	if (r->silent && r->nheld < 64) {
		r->held[r->nheld++] = fd;
		return;
	}
	if (poll(&pfd, 1, 200) > 0 && read(fd, buf, sizeof(buf)) < 0)
		perror("responder read");
	if (r->reply[0] && write(fd, r->reply, strlen(r->reply)) < 0)
		perror("responder write");
	close(fd);
}

static void *responder_main(void *arg)
{
	struct responder *r = arg;
	struct pollfd pfd = { .fd = r->lfd, .events = POLLIN };

	while (!atomic_load(&r->stop)) {
		if (poll(&pfd, 1, 20) <= 0)
			continue;
		int fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		atomic_fetch_add(&r->accepted, 1);
		responder_serve(r, fd);
	}
	return NULL;
}

static void responder_start(struct responder *r, const char *reply, bool silent)
{
	memset(r, 0, sizeof(*r));
	r->reply = reply;
	r->silent = silent;
	r->lfd = listen_local(&r->port);
	cr_assert_eq(pthread_create(&r->thread, NULL, responder_main, r), 0);
}

static void responder_stop(struct responder *r)
{
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	for (int i = 0; i < r->nheld; i++)
		close(r->held[i]);
	close(r->lfd);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pause_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Polls until s has been checked and its up flag equals want, for at most timeout_ms. */
static bool wait_state(struct server *s, bool want, uint64_t timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;

	while (mono_ms() < end) {
		if (atomic_load(&s->checked) && atomic_load(&s->up) == want)
			return true;
		pause_ms(5);
	}
	return false;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

TestSuite(health_checks, .init = setup, .timeout = 30);

Test(health_checks, tcp_check_keeps_a_listening_server_up)
{
	struct responder r;
	struct fixture f;
	struct health *h;

	responder_start(&r, "", false);
	fx_init(&f, CHECK_TCP, 2, 3, 50);
	addr_set(&f.cs.addr, r.port);
	h = health_create(&f.p, 1);
	cr_assert_not_null(h);
	cr_assert(wait_state(&f.s, true, 2000), "first check must complete and keep it up");
	/* checks repeat every interval */
	for (uint64_t end = mono_ms() + 2000; atomic_load(&r.accepted) < 3 && mono_ms() < end;)
		pause_ms(5);
	cr_assert_geq(atomic_load(&r.accepted), 3);
	cr_assert(atomic_load(&f.s.up));
	cr_assert_eq(atomic_load(&f.s.check_failures), 0);
	health_destroy(h);
	responder_stop(&r);
}

Test(health_checks, tcp_check_marks_a_refusing_server_down_at_first_check)
{
	struct fixture f;
	struct health *h;
	int dead_fd;

	fx_init(&f, CHECK_TCP, 2, 3, 5000);
	addr_set(&f.cs.addr, refusing_port(&dead_fd));
	h = health_create(&f.p, 1);
	cr_assert_not_null(h);
	/* interval is 5s: only the first round, run at start, can have decided in time */
	cr_assert(wait_state(&f.s, false, 1500));
	cr_assert_eq(atomic_load(&f.s.check_failures), 1);
	health_destroy(h);
	close(dead_fd);
}

Test(health_checks, send_expect_with_the_right_reply_stays_up)
{
	struct responder r;
	struct fixture f;
	struct health *h;

	responder_start(&r, "+PONG\r\n", false);
	fx_init(&f, CHECK_SEND_EXPECT, 2, 1, 50);
	f.b.check_send = "PING\r\n";
	f.b.check_send_len = 6;
	f.b.check_expect = "PONG";
	addr_set(&f.cs.addr, r.port);
	h = health_create(&f.p, 1);
	cr_assert(wait_state(&f.s, true, 2000));
	for (uint64_t end = mono_ms() + 2000; atomic_load(&r.accepted) < 4 && mono_ms() < end;)
		pause_ms(5);
	cr_assert_geq(atomic_load(&r.accepted), 4);
	cr_assert(atomic_load(&f.s.up), "fall = 1: any failed check would have taken it down");
	cr_assert_eq(atomic_load(&f.s.check_failures), 0);
	health_destroy(h);
	responder_stop(&r);
}

Test(health_checks, send_expect_with_a_wrong_reply_goes_down)
{
	struct responder r;
	struct fixture f;
	struct health *h;

	responder_start(&r, "-ERR nope\r\n", false);
	fx_init(&f, CHECK_SEND_EXPECT, 2, 3, 50);
	f.b.check_send = "PING\r\n";
	f.b.check_send_len = 6;
	f.b.check_expect = "PONG";
	addr_set(&f.cs.addr, r.port);
	h = health_create(&f.p, 1);
	cr_assert(wait_state(&f.s, false, 2000));
	cr_assert_geq(atomic_load(&f.s.check_failures), 1);
	health_destroy(h);
	responder_stop(&r);
}

Test(health_checks, a_silent_server_times_out)
{
	struct responder r;
	struct fixture f;
	struct health *h;
	uint64_t start;

	responder_start(&r, "", true);
	fx_init(&f, CHECK_SEND_EXPECT, 2, 3, 5000);
	f.b.check_send = "PING\r\n";
	f.b.check_send_len = 6;
	f.b.check_expect = "PONG";
	f.b.check_timeout_ms = 150;
	addr_set(&f.cs.addr, r.port);
	start = mono_ms();
	h = health_create(&f.p, 1);
	cr_assert(wait_state(&f.s, false, 2000));
	cr_assert_geq(mono_ms() - start, 140, "must wait for check_timeout before failing");
	health_destroy(h);
	responder_stop(&r);
}

Test(health_checks, a_down_server_comes_back_after_rise_checks)
{
	struct fixture f;
	struct health *h;
	uint64_t back;
	int fd;

	fx_init(&f, CHECK_TCP, 3, 2, 50);
	addr_set(&f.cs.addr, refusing_port(&fd));
	h = health_create(&f.p, 1);
	cr_assert(wait_state(&f.s, false, 2000));
	cr_assert_eq(listen(fd, 512), 0); /* the same port now accepts */
	back = mono_ms();
	cr_assert(wait_state(&f.s, true, 2000));
	cr_assert_geq(mono_ms() - back, 50 * 2 - 10,
		      "rise = 3 needs three checks, two intervals apart");
	health_destroy(h);
	close(fd);
}

Test(health_checks, many_servers_do_not_leak_fds)
{
	enum { N = 100 };
	struct responder r;
	struct cfg_backend b;
	struct cfg_server *cs = calloc(N, sizeof(*cs));
	struct server *sv = calloc(N, sizeof(*sv));
	struct pool p = { .cfg = &b, .servers = sv, .nservers = N };
	int dead_fd;
	uint16_t dead = refusing_port(&dead_fd);
	int before, during_max = 0;
	struct health *h;

	responder_start(&r, "", false);
	backend_set(&b, CHECK_TCP, 2, 3, 20);
	b.servers = cs;
	b.nservers = N;
	for (unsigned i = 0; i < N; i++) {
		addr_set(&cs[i].addr, i % 2 ? dead : r.port);
		server_init(&sv[i], &p, &cs[i], i);
	}
	before = count_fds();
	h = health_create(&p, 1);
	cr_assert_not_null(h);
	for (uint64_t end = mono_ms() + 400; mono_ms() < end;) {
		int n = count_fds();
		during_max = n > during_max ? n : during_max;
		pause_ms(10);
	}
	health_destroy(h);
	/* the responder may still be serving the last check it accepted: stop it first, so
	 * that what is left open can only be the checker's (its listening socket goes too) */
	responder_stop(&r);
	cr_assert_eq(count_fds(), before - 1, "every check socket must be closed");
	cr_assert_leq(during_max, before + N + 8, "at most one check socket per server");
	for (unsigned i = 0; i < N; i++)
		cr_assert_eq(atomic_load(&sv[i].up), i % 2 == 0, "server %u", i);
	cr_assert_geq(atomic_load(&r.accepted), N / 2 * 3, "checks must repeat");
	close(dead_fd);
	free(sv);
	free(cs);
}

Test(health_checks, check_none_starts_no_checks)
{
	struct fixture f;
	struct health *h;
	int before = count_fds();

	fx_init(&f, CHECK_NONE, 2, 3, 10);
	h = health_create(&f.p, 1);
	cr_assert_not_null(h);
	pause_ms(50); /* give a (wrong) check time to show up */
	cr_assert_not(atomic_load(&f.s.checked));
	cr_assert_eq(count_fds(), before);
	health_destroy(h);
	health_destroy(NULL);
}

/* ------------------------------------------------------------------ local errors */

Test(health_state, resource_errors_are_local)
{
	static const int local[] = { EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL };
	static const int remote[] = { 0,           ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH,
				      ENETUNREACH, ECONNRESET,   EPIPE,     EACCES };

	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
		cr_assert(net_error_is_local(local[i]), "%s is the proxy's own shortage",
			  strerror(local[i]));
	for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++)
		cr_assert_not(net_error_is_local(remote[i]), "%s comes from the server's side",
			      strerror(remote[i]));
}

/* Polls the file open as fd until it contains needle, for at most timeout_ms; reads
 * through an fd opened beforehand, since no new one can be opened while fds run out. */
static bool wait_text(int fd, const char *needle, uint64_t timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;
	static char buf[65536];

	while (mono_ms() < end) {
		fflush(stderr);
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		if (strstr(buf, needle))
			return true;
		pause_ms(5);
	}
	return false;
}

/* Takes every fd the soft limit (lowered to a little above what is open) leaves. */
static int exhaust_fds(int *fds, int cap, struct rlimit *old)
{
	struct rlimit low;
	int n = 0;

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, old), 0);
	low = *old;
	low.rlim_cur = (rlim_t)count_fds() + 16;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (n < cap && (fds[n] = dup(0)) >= 0)
		n++;
	cr_assert_eq(errno, EMFILE, "the limit must be reached (%d fds taken)", n);
	return n;
}

Test(health_checks, fd_exhaustion_is_not_a_check_failure)
{
	char path[] = "/tmp/test_health_log_XXXXXX";
	int logfd = mkstemp(path), saved = dup(2), fds[256], nfds;
	struct responder r;
	struct fixture f;
	struct rlimit old;
	struct health *h;

	cr_assert(logfd >= 0 && saved >= 0);
	responder_start(&r, "", false);
	fx_init(&f, CHECK_TCP, 1, 1, 20); /* fall = 1: one misplaced failure marks it down */
	addr_set(&f.cs.addr, r.port);
	log_set_level(LOG_INFO);
	fflush(stderr);
	dup2(logfd, 2);
	h = health_create(&f.p, 1);
	cr_assert_not_null(h);
	cr_assert(wait_state(&f.s, true, 2000));
	nfds = exhaust_fds(fds, 256, &old);
	bool seen = wait_text(logfd, "local error, not counted against server: socket: ", 2000);
	bool up = atomic_load(&f.s.up);
	uint64_t fails = atomic_load(&f.s.check_failures);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	setrlimit(RLIMIT_NOFILE, &old);
	health_destroy(h);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(logfd);
	responder_stop(&r);
	cr_assert(seen, "the checker must say that its own socket() failed (log in %s)", path);
	cr_assert(up, "a local error marked the server down");
	cr_assert_eq(fails, 0, "a local error was counted as a check failure");
	unlink(path);
}
