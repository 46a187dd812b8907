/* Binary upgrade through the real binary, on the host (no kTLS: every connection is on the
 * userspace path, so it stays and drains in the old process). A client connecting in a loop
 * through the upgrade sees no refusal and no reset; a connection opened before it keeps
 * working in the old process, which exits once it ends; an upgrade to a binary that fails
 * its configuration, crashes on start or stalls leaves the old process serving, with the
 * reason in the answer; two upgrades in a row (the second by SIGUSR2) keep the run-time
 * server state. The test process is a child subreaper, so that each new process (a child
 * of the old one) becomes its own to reap. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "harness.h"

#define REQ "GET / HTTP/1.1\r\nHost: demo.test\r\n\r\n"
#define MAX_PIDS 8

/* new processes this test must end, each with its start time: one that exited and was
 * reaped (by us or by its parent) frees its number, which the next process may get (pid_max
 * is 32768 here), such as the next test's own process */
static struct {
	pid_t pid;
	unsigned long long since;
} started[MAX_PIDS];
static int nstarted;

/* Field 22 of /proc/PID/stat, the start time; 0 if the process is gone. */
static unsigned long long start_time(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long long t = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	const char *at = strrchr(buf, ')');
	if (at && sscanf(at + 2,
			 "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
			 "%*s %*s %*s %*s %llu",
			 &t) != 1)
		t = 0;
	return t;
}

static void remember(pid_t pid)
{
	cr_assert_lt(nstarted, MAX_PIDS);
	started[nstarted].pid = pid;
	started[nstarted++].since = start_time(pid);
}

static void setup(void)
{
	harness_setup();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
}

static void teardown(void)
{
	for (int i = 0; i < nstarted; i++) {
		if (!started[i].since || start_time(started[i].pid) != started[i].since)
			continue; /* gone: the number may be someone else's now */
		kill(started[i].pid, SIGKILL);
		waitpid(started[i].pid, NULL, 0);
	}
	harness_teardown();
}

TestSuite(upgrade, .init = setup, .fini = teardown, .timeout = 120);

struct setup {
	struct backend *b;
	struct proxy *p;
	const char *sock, *ini;
	int port;
};

static void write_ini(struct setup *s, const char *extra_global)
{
	struct harness_cert crt;
	char global[1200], backends[512];

	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	snprintf(global, sizeof(global), "workers = 2\ncontrol = %s\nshutdown_timeout = 20s\n%s",
		 s->sock, extra_global ? extra_global : "");
	snprintf(backends, sizeof(backends), "[backend app]\nserver = %s\ncheck = none\n",
		 backend_addr(s->b));
	s->ini = harness_config_web("up.ini", s->port, &crt, global, NULL, backends);
	cr_assert(s->ini);
}

static void start_with(struct setup *s, enum backend_mode mode, const char *extra_global)
{
	s->b = backend_start(mode, 0, "a", 0);
	cr_assert(s->b);
	s->port = harness_free_port();
	s->sock = harness_path("ctl.sock");
	write_ini(s, extra_global);
	s->p = proxy_start(s->ini, s->port);
	cr_assert(s->p);
}

/* The pid that "show info" names. */
static void start(struct setup *s, enum backend_mode mode)
{
	start_with(s, mode, NULL);
}

static pid_t serving_pid(struct setup *s)
{
	char *info = ctl_cmd(s->sock, "show info");
	cr_assert(info);
	const char *at = strstr(info, "pid: ");
	cr_assert(at, "%s", info);
	pid_t pid = (pid_t)atol(at + 5);
	free(info);
	return pid;
}

/* "ok: pid N serves; ..." -> N, remembered for teardown. */
static pid_t new_pid(const char *answer)
{
	int pid = 0;
	cr_assert(answer && sscanf(answer, "ok: pid %d serves;", &pid) == 1, "answer: %s", answer);
	remember(pid);
	return pid;
}

/* Waits (bounded) until pid has exited; reaps it if it is ours. */
static bool wait_gone(pid_t pid, int timeout_ms)
{
	int64_t end = harness_now_ms() + timeout_ms;
	do {
		if (waitpid(pid, NULL, WNOHANG) == pid || (kill(pid, 0) < 0 && errno == ESRCH))
			return true;
		nanosleep(&(struct timespec){ 0, 5 * 1000000L }, NULL);
	} while (harness_now_ms() < end);
	return false;
}

/* Descriptors of pid other than sockets (a control client may come and go at any time):
 * files, pipes, event descriptors. */
static int count_fds(pid_t pid)
{
	char path[64], link[330], target[128];
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	cr_assert(d, "%s: %s", path, strerror(errno));
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
		ssize_t len = readlink(link, target, sizeof(target) - 1);
		n += len > 0 && strncmp(target, "socket:", 7) != 0;
	}
	closedir(d);
	return n;
}

static int fetch(int port, char *why, size_t whylen)
{
	struct tlsc_opts o = { .sni = "demo.test", .timeout_ms = 5000 };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	char buf[256];

	if (!c) {
		snprintf(why, whylen, "connect: refused or reset during the handshake");
		return -1;
	}
	int rc = -1;
	size_t got = 0;
	bool sent = tlsc_write_all(c, REQ, sizeof(REQ) - 1, 5000) == 0;
	/* a HELLO backend answers and closes; an ECHO one sends the request back */
	while (sent && rc < 0 && got < sizeof(buf) - 1) {
		ssize_t n = tlsc_read(c, buf + got, sizeof(buf) - 1 - got, 5000);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "hello from a") || strcmp(buf, REQ) == 0)
			rc = 0;
	}
	if (rc < 0)
		snprintf(why, whylen, "request: %s", tlsc_error(c));
	tlsc_close(c);
	return rc;
}

struct looper {
	int port;
	atomic_bool stop;
	atomic_int ok, failed;
	char why[256];
	pthread_t t;
};

static void *loop_main(void *arg)
{
	struct looper *l = arg;
	char why[256];

	for (int i = 0; i < 100000 && !atomic_load(&l->stop); i++) {
		if (fetch(l->port, why, sizeof(why)) == 0) {
			atomic_fetch_add(&l->ok, 1);
		} else if (atomic_fetch_add(&l->failed, 1) == 0) {
			snprintf(l->why, sizeof(l->why), "%s", why);
		}
	}
	return NULL;
}

Test(upgrade, loop_client_sees_nothing_and_open_connection_lives_on)
{
	struct setup s;
	struct looper l = { 0 };
	struct tlsc_opts o = { .sni = "demo.test" };

	start(&s, BACKEND_ECHO);
	pid_t old = proxy_pid(s.p);
	/* a connection on the userspace path, opened before the upgrade */
	struct tlsc *held = tlsc_connect("127.0.0.1", s.port, &o);
	cr_assert(held);
	char buf[16];
	cr_assert_eq(tlsc_write_all(held, "before", 6, 3000), 0);
	cr_assert_eq(tlsc_read(held, buf, 6, 3000), 6);
	char held_addr[64];
	snprintf(held_addr, sizeof(held_addr), "%s", tlsc_local_addr(held));
	char *ans;

	l.port = s.port;
	cr_assert_eq(pthread_create(&l.t, NULL, loop_main, &l), 0);
	while (atomic_load(&l.ok) < 20 && atomic_load(&l.failed) == 0)
		nanosleep(&(struct timespec){ 0, 1000000L }, NULL);
	int before = atomic_load(&l.ok);
	int64_t t0 = harness_now_ms();
	ans = ctl_cmd(s.sock, "upgrade");
	int64_t t1 = harness_now_ms();
	pid_t pid = new_pid(ans);
	cr_assert_neq(pid, old);
	free(ans);
	/* the looper goes on until the new process has served plenty */
	while (atomic_load(&l.ok) < before + 200 && atomic_load(&l.failed) == 0)
		nanosleep(&(struct timespec){ 0, 1000000L }, NULL);
	atomic_store(&l.stop, true);
	pthread_join(l.t, NULL);
	cr_assert_eq(atomic_load(&l.failed), 0, "%d of %d connections failed: %s",
		     atomic_load(&l.failed), atomic_load(&l.ok) + atomic_load(&l.failed), l.why);
	cr_assert_eq(serving_pid(&s), pid);
	fprintf(stderr,
		"upgrade figures: switch (ctl upgrade to answer) %lld ms; %d connections "
		"through the upgrade, 0 refused, 0 reset\n",
		(long long)(t1 - t0), atomic_load(&l.ok));

	/* the held connection: on the userspace path it stays in the old process, which
	 * waits for it; spliced (a kTLS kernel) it moved to the new one, and the old exits */
	bool ktls = harness_kernel_ktls();
	if (ktls)
		cr_assert_eq(proxy_wait(s.p, HARNESS_TIMEOUT_MS), 0, "the old process kept it");
	else
		cr_assert(proxy_running(s.p), "the old process left a connection behind");
	cr_assert_eq(tlsc_write_all(held, "after!", 6, 3000), 0);
	cr_assert_eq(tlsc_read(held, buf, 6, 3000), 6);
	cr_assert_eq(memcmp(buf, "after!", 6), 0);
	tlsc_close(held);
	cr_assert_eq(proxy_wait(s.p, HARNESS_TIMEOUT_MS), 0, "the old process did not exit");
	/* its access-log line, written once, by the process that ended it */
	char *line = alog_wait_find(proxy_access_log(s.p), "client", held_addr, HARNESS_TIMEOUT_MS);
	cr_assert(line, "no access-log line for the held connection");
	cr_assert(strstr(line, "\"bytes_in\":12,"), "%s", line);
	cr_assert(strstr(line, ktls ? "\"handovers\":1" : "\"handovers\":0"), "%s", line);
	cr_assert_eq(alog_count(proxy_access_log(s.p), "client", held_addr), 1);
	free(line);
	harness_pass();
}

Test(upgrade, failing_config_keeps_the_old_process)
{
	struct setup s;
	const char *argv[] = { "ctl", "-s", NULL, "upgrade", NULL };
	struct run_result r;
	char why[256];

	start(&s, BACKEND_HELLO);
	pid_t old = proxy_pid(s.p);
	harness_write_file("up.ini", "[global]\ncontrol = %s\n[frontend web]\nlisten = nowhere\n",
			   s.sock);
	argv[2] = s.sock;
	cr_assert_eq(harness_run(&r, HARNESS_TIMEOUT_MS * 2, argv), 0);
	cr_assert_eq(r.status, 1, "ctl exit %d: %s", r.status, r.out);
	cr_assert(strstr(r.out, "error: upgrade failed: the new process (pid "), "%s", r.out);
	cr_assert(strstr(r.out, "exited with status 1: its configuration is not valid"), "%s",
		  r.out);
	cr_assert(strstr(r.out, "up.ini:4: [frontend web] listen:"), "%s", r.out);
	run_result_finish(&r);
	cr_assert_eq(serving_pid(&s), old);
	cr_assert_eq(fetch(s.port, why, sizeof(why)), 0, "%s", why);
	char *log = harness_read_file(proxy_stderr_path(s.p), NULL);
	cr_assert(log && strstr(log, "upgrade failed; this process keeps serving"));
	free(log);
	harness_pass();
}

/* A "binary" that is a script: crash (SIGSEGV) or stall. */
static const char *script(const char *name, const char *body)
{
	const char *path = harness_write_file(name, "#!/bin/sh\n%s\n", body);
	cr_assert(path);
	cr_assert_eq(chmod(path, 0700), 0);
	return path;
}

Test(upgrade, crashing_binary_keeps_the_old_process)
{
	struct setup s;
	char cmd[1200], why[256];

	start(&s, BACKEND_HELLO);
	pid_t old = proxy_pid(s.p);
	snprintf(cmd, sizeof(cmd), "upgrade %s", script("crash.sh", "kill -SEGV $$"));
	char *ans = ctl_cmd(s.sock, cmd);
	cr_assert(ans);
	cr_assert(strstr(ans, "error: upgrade failed: the new process (pid "), "%s", ans);
	cr_assert(strstr(ans, "died of signal 11"), "%s", ans);
	free(ans);
	/* an upgrade to a path that does not exist is refused at once */
	ans = ctl_cmd(s.sock, "upgrade /nonexistent/tlsplice");
	cr_assert(ans && strncmp(ans, "error: upgrade: /nonexistent/tlsplice: ", 39) == 0, "%s",
		  ans);
	free(ans);
	cr_assert_eq(serving_pid(&s), old);
	cr_assert_eq(fetch(s.port, why, sizeof(why)), 0, "%s", why);
	harness_pass();
}

Test(upgrade, stalling_binary_is_killed_at_the_deadline)
{
	struct setup s;
	char cmd[1200], why[256];

	start(&s, BACKEND_HELLO);
	pid_t old = proxy_pid(s.p);
	snprintf(cmd, sizeof(cmd), "upgrade %s", script("stall.sh", "exec sleep 600"));
	int fd = ctl_open(s.sock, HARNESS_TIMEOUT_MS);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ctl_send(fd, cmd, strlen(cmd)), 0);
	cr_assert_eq(ctl_send(fd, "\n", 1), 0);
	/* while it waits, the proxy serves and answers other control clients */
	cr_assert_eq(fetch(s.port, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(serving_pid(&s), old);
	char *ans = ctl_read_answer(fd, 15000, NULL);
	cr_assert(ans, "no answer after the deadline");
	cr_assert(strstr(ans, "died of signal 9 (Killed): no answer within 10000 ms"), "%s", ans);
	free(ans);
	close(fd);
	cr_assert_eq(fetch(s.port, why, sizeof(why)), 0, "%s", why);
	harness_pass();
}

Test(upgrade, two_in_a_row_keep_server_state)
{
	struct setup s;
	char cmd[160], why[256], metrics[64];
	int mport = harness_free_port();

	snprintf(metrics, sizeof(metrics), "metrics = 127.0.0.1:%d\n", mport);
	start_with(&s, BACKEND_HELLO, metrics);
	snprintf(cmd, sizeof(cmd), "set server app/%s weight 7", backend_addr(s.b));
	free(ctl_cmd(s.sock, cmd));
	for (int i = 0; i < 3; i++)
		cr_assert_eq(fetch(s.port, why, sizeof(why)), 0, "%s", why);
	char *ans = ctl_cmd(s.sock, "upgrade");
	pid_t first = new_pid(ans);
	free(ans);
	cr_assert_eq(proxy_wait(s.p, HARNESS_TIMEOUT_MS), 0, "the first process did not exit");
	cr_assert_eq(serving_pid(&s), first);
	int fds_first = count_fds(first);

	/* the second by SIGUSR2: the log says when it serves */
	cr_assert_eq(kill(first, SIGUSR2), 0);
	char want[64];
	snprintf(want, sizeof(want), "drains 0 connections");
	int64_t end = harness_now_ms() + HARNESS_TIMEOUT_MS;
	char *log = NULL;
	const char *at = NULL;
	do {
		free(log);
		log = harness_read_file(proxy_stderr_path(s.p), NULL);
		at = log ? strstr(log, "] info: upgrade: pid ") : NULL;
		at = at ? strstr(at + 1, "] info: upgrade: pid ") : NULL; /* the second one */
		if (!at)
			nanosleep(&(struct timespec){ 0, 10 * 1000000L }, NULL);
	} while (!at && harness_now_ms() < end);
	cr_assert(at, "no second upgrade in the log:\n%s", log);
	int second = 0;
	cr_assert_eq(sscanf(at, "] info: upgrade: pid %d serves", &second), 1);
	remember(second);
	free(log);
	cr_assert(wait_gone(first, HARNESS_TIMEOUT_MS), "the second process did not exit");
	cr_assert_eq(serving_pid(&s), second);
	/* nothing of the old process leaks into the new one: the count stays (sockets aside) */
	cr_assert_eq(count_fds(second), fds_first, "descriptors grew from %d to %d in one upgrade",
		     fds_first, count_fds(second));
	char *line = NULL;
	ans = ctl_cmd(s.sock, "show servers");
	cr_assert(ans);
	line = strstr(ans, " weight=7 ");
	cr_assert(line, "the run-time weight did not survive two upgrades:\n%s", ans);
	cr_assert(strstr(ans, " connections=3 "), "the counters did not carry over:\n%s", ans);
	cr_assert(!strstr(ans, " last_change=-"), "the time of the change was lost:\n%s", ans);
	free(ans);
	/* the metrics socket moved along, and the frontend's totals with it */
	char *text = harness_http_get(mport, "/metrics", 3000);
	cr_assert(text, "no metrics from the second new process");
	double total = metrics_value(text, "tlsplice_connections_total{frontend=\"web\"}");
	cr_assert_geq(total, 3, "connections_total %.0f after two upgrades", total);
	free(text);
	cr_assert_eq(fetch(s.port, why, sizeof(why)), 0, "%s", why);
	harness_pass();
}

/* Started as root with user = nobody: the new process starts as nobody, and must still
 * read the root-only configuration and key, as a reload after the drop does. */
Test(upgrade, after_dropping_privileges_reads_root_only_files)
{
	struct setup s = { 0 };
	struct harness_cert crt;
	char global[1200], backends[256], why[256];
	struct passwd *pw = getpwnam("nobody");

	if (geteuid() != 0)
		cr_skip_test("needs root: the proxy drops privileges");
	if (!pw)
		cr_skip_test("no user 'nobody' on this system");
	s.b = backend_start(BACKEND_HELLO, 0, "a", 0);
	s.port = harness_free_port();
	s.sock = harness_path("ctl.sock");
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	snprintf(global, sizeof(global), "workers = 2\ncontrol = %s\nuser = nobody\n", s.sock);
	snprintf(backends, sizeof(backends), "[backend app]\nserver = %s\ncheck = none\n",
		 backend_addr(s.b));
	s.ini = harness_config_web("up.ini", s.port, &crt, global, NULL, backends);
	cr_assert(s.ini);
	cr_assert_eq(chmod(s.ini, 0600), 0);
	cr_assert_eq(chmod(crt.key, 0600), 0);
	s.p = proxy_start(s.ini, s.port);
	cr_assert(s.p);
	char *ans = ctl_cmd(s.sock, "upgrade");
	cr_assert(ans);
	pid_t pid = new_pid(ans);
	free(ans);
	cr_assert_eq(fetch(s.port, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(serving_pid(&s), pid);
	/* it runs as nobody with the two capabilities a reload needs, and no other */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	char *st = harness_read_file(path, NULL);
	char uidline[64];
	snprintf(uidline, sizeof(uidline), "Uid:\t%u\t%u\t%u", pw->pw_uid, pw->pw_uid, pw->pw_uid);
	cr_assert(st && strstr(st, uidline), "%s", st);
	cr_assert(strstr(st, "CapEff:\t0000000000000404\n"), "%s", st);
	free(st);
	ans = ctl_cmd(s.sock, "reload");
	cr_assert_str_eq(ans, "ok\n", "the new process cannot reload: %s", ans);
	free(ans);
	harness_pass();
}

#define MOVED 500

/* Each of n connections sends word and reads it back. */
static void echo_all(struct tlsc **c, int n, const char *word)
{
	char buf[8];
	for (int i = 0; i < n; i++) {
		cr_assert_eq(tlsc_write_all(c[i], word, 4, 10000), 0, "connection %d", i);
		cr_assert_eq(tlsc_read(c[i], buf, 4, 10000), 4, "connection %d does not echo", i);
		cr_assert_eq(memcmp(buf, word, 4), 0);
	}
}

/* Every connection has exactly one access-log line, spliced, with its bytes and two
 * handovers. One pass over the log: 500 searches of a 500-line file are slow emulated. */
static void check_moved_lines(const char *path, char (*addr)[64], int n)
{
	static int seen[MOVED];
	char want[96];

	cr_assert_geq(alog_wait_lines(path, n, HARNESS_TIMEOUT_MS), n);
	char *log = harness_read_file(path, NULL);
	cr_assert(log);
	for (char *line = log, *end; (end = strchr(line, '\n')); line = end + 1) {
		*end = '\0';
		for (int i = 0; i < n; i++) {
			snprintf(want, sizeof(want), "\"client\":\"%.63s\"", addr[i]);
			if (!strstr(line, want))
				continue;
			seen[i]++;
			cr_assert(strstr(line, "\"relay\":\"splice\""), "%s", line);
			cr_assert(strstr(line, "\"bytes_in\":12,\"bytes_out\":12,"), "%s", line);
			cr_assert(strstr(line, "\"handovers\":2"), "%s", line);
		}
	}
	free(log);
	for (int i = 0; i < n; i++)
		cr_assert_eq(seen[i], 1, "connection %d has %d access-log lines", i, seen[i]);
}

/* Where the kernel does the TLS (the VM): connections spliced both ways move to the new
 * process, which relays them on, and again to the next one; the old ones then have nothing
 * to drain and exit at once. Each connection's access-log line is written once, by the
 * process that ends it, with "handovers":2. */
Test(upgrade, ktls_connections_move_through_two_upgrades, .timeout = 400)
{
	struct setup s;
	struct tlsc_opts o = { .sni = "demo.test", .timeout_ms = 30000 };
	static struct tlsc *c[MOVED];
	static char addr[MOVED][64];

	if (!harness_kernel_ktls())
		cr_skip_test("no kTLS in this kernel: nothing is spliced, nothing moves");
	start(&s, BACKEND_ECHO);
	for (int i = 0; i < MOVED; i++) {
		c[i] = tlsc_connect("127.0.0.1", s.port, &o);
		cr_assert(c[i], "connection %d", i);
		snprintf(addr[i], sizeof(addr[i]), "%s", tlsc_local_addr(c[i]));
	}
	echo_all(c, MOVED, "ping");
	int64_t t0 = harness_now_ms();
	char *ans = ctl_cmd(s.sock, "upgrade");
	pid_t first = new_pid(ans);
	free(ans);
	/* nothing left to drain: the old process ends well before shutdown_timeout (20 s) */
	cr_assert_eq(proxy_wait(s.p, 15000), 0, "the old process kept connections");
	fprintf(stderr,
		"upgrade figures: %d idle kTLS connections moved; the old process exited "
		"%lld ms after the command\n",
		MOVED, (long long)(harness_now_ms() - t0));
	echo_all(c, MOVED, "pong");
	ans = ctl_cmd(s.sock, "upgrade");
	pid_t second = new_pid(ans);
	free(ans);
	cr_assert(wait_gone(first, 15000), "the first new process kept connections");
	echo_all(c, MOVED, "pang");
	for (int i = 0; i < MOVED; i++)
		tlsc_close(c[i]);
	check_moved_lines(proxy_access_log(s.p), addr, MOVED);
	cr_assert_eq(serving_pid(&s), second);
	harness_pass();
}

struct streamer {
	struct tlsc *c;
	struct tlsc_transfer t;
	int rc;
	pthread_t th;
};

static void *stream_main(void *arg)
{
	struct streamer *st = arg;
	st->rc = tlsc_transfer_run(st->c, &st->t);
	return NULL;
}

/* A stream echoed both ways through the upgrade arrives whole and in order, whichever
 * process carries it at the end (it moves when its pipes are empty at the hand-off). */
Test(upgrade, stream_through_the_upgrade_is_intact)
{
	struct setup s;
	struct tlsc_opts o = { .sni = "demo.test" };
	struct streamer st = { .t = { .send_bytes = 4 << 20, .timeout_ms = 60000 } };
	char want[65];

	start(&s, BACKEND_ECHO);
	st.c = tlsc_connect("127.0.0.1", s.port, &o);
	cr_assert(st.c);
	cr_assert_eq(pthread_create(&st.th, NULL, stream_main, &st), 0);
	char *ans = ctl_cmd(s.sock, "upgrade");
	new_pid(ans);
	free(ans);
	pthread_join(st.th, NULL);
	cr_assert_eq(st.rc, 0, "the stream failed: %s", tlsc_error(st.c));
	cr_assert_eq(st.t.received, st.t.send_bytes);
	harness_pattern_sha256_hex(st.t.send_bytes, want);
	cr_assert_str_eq(st.t.recv_sha, want, "the echoed stream differs");
	char addr[64];
	snprintf(addr, sizeof(addr), "%s", tlsc_local_addr(st.c));
	tlsc_close(st.c);
	char *line = alog_wait_find(proxy_access_log(s.p), "client", addr, HARNESS_TIMEOUT_MS);
	cr_assert(line, "no access-log line for the stream");
	const char *h = strstr(line, "\"handovers\":");
	cr_assert(h, "%s", line);
	fprintf(stderr, "upgrade figures: a 4 MiB echoed stream, intact, handovers %d\n",
		atoi(h + 12));
	free(line);
	harness_pass();
}
