/* The control socket through the real binary: the commands and their answers, `tlsplice
 * ctl` and its exit status, drain/maint/weight taking effect on traffic, run-time settings
 * outliving a reload, and bad input (unknown command, bad server, a line over 4 KiB, a
 * client that never finishes its line) answered without blocking anyone. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "harness.h"

#define CONTROL_IDLE_CLIENTS 20 /* under the proxy's limit of 32 */
#define REQ "GET / HTTP/1.1\r\nHost: demo.test\r\n\r\n"

TestSuite(control, .init = harness_setup, .fini = harness_teardown, .timeout = 90);

struct setup {
	struct backend *a, *b;
	struct proxy *p;
	const char *sock, *ini;
	int port;
};

static const char *write_ini(struct setup *s, const char *backend_body)
{
	struct harness_cert crt;
	char global[1200], backends[1024];

	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	snprintf(global, sizeof(global), "workers = 2\ncontrol = %s\n", s->sock);
	snprintf(backends, sizeof(backends), "[backend app]\n%s", backend_body);
	s->ini = harness_config_web("ctl.ini", s->port, &crt, global, NULL, backends);
	cr_assert(s->ini);
	return s->ini;
}

/* Two HELLO backends "a" and "b" behind the proxy, check = none; extra: more backend keys. */
static void start(struct setup *s, const char *extra)
{
	char body[1024];

	s->a = backend_start(BACKEND_HELLO, 0, "a", 0);
	s->b = backend_start(BACKEND_HELLO, 0, "b", 0);
	cr_assert(s->a && s->b);
	s->port = harness_free_port();
	s->sock = harness_path("ctl.sock");
	snprintf(body, sizeof(body), "server = %s\nserver = %s\n%s", backend_addr(s->a),
		 backend_addr(s->b), extra ? extra : "check = none\n");
	write_ini(s, body);
	s->p = proxy_start(s->ini, s->port);
	cr_assert(s->p, "proxy did not start");
}

/* One request; the letter of the backend that answered, or 0. */
static char fetch(int port)
{
	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	char buf[512], who = 0;
	ssize_t n;

	if (!c)
		return 0;
	if (tlsc_write_all(c, REQ, sizeof(REQ) - 1, 3000) == 0 &&
	    (n = tlsc_read_all(c, buf, sizeof(buf) - 1, 3000)) > 0) {
		buf[n] = '\0';
		char *at = strstr(buf, "hello from ");
		if (at)
			who = at[strlen("hello from ")];
	}
	tlsc_close(c);
	return who;
}

static void fetch_many(int port, int n, int *na, int *nb)
{
	*na = *nb = 0;
	for (int i = 0; i < n; i++) {
		char who = fetch(port);
		*na += who == 'a';
		*nb += who == 'b';
	}
}

/* The line of show servers for backend app server addr (malloc'd). */
static char *server_line(struct setup *s, const struct backend *b)
{
	char *ans = ctl_cmd(s->sock, "show servers app");
	char want[128];

	cr_assert(ans, "no answer to show servers");
	snprintf(want, sizeof(want), "app/%s ", backend_addr(b));
	char *at = strstr(ans, want);
	cr_assert(at, "no line for %s in:\n%s", want, ans);
	char *line = strndup(at, strcspn(at, "\n"));
	free(ans);
	return line;
}

/* Runs `tlsplice ctl -s SOCK words...`; returns its exit status, stdout in *out. */
static int run_ctl(struct setup *s, const char *const *words, char **out)
{
	const char *argv[16] = { "ctl", "-s", s->sock }; /* the binary comes first by itself */
	struct run_result r;
	int n = 3;

	for (; *words && n < 15; words++)
		argv[n++] = *words;
	argv[n] = NULL;
	cr_assert_eq(harness_run(&r, HARNESS_TIMEOUT_MS, argv), 0);
	*out = strdup(r.out);
	int status = r.status;
	run_result_finish(&r);
	return status;
}

static int stderr_count(struct proxy *p, const char *needle)
{
	char *text = harness_read_file(proxy_stderr_path(p), NULL);
	int n = 0;

	for (const char *at = text; at && (at = strstr(at, needle)); at += strlen(needle))
		n++;
	free(text);
	return n;
}

Test(control, socket_is_0600_and_removed_at_exit)
{
	struct setup s;
	struct stat st;

	start(&s, NULL);
	int fd = ctl_open(s.sock, HARNESS_TIMEOUT_MS);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(stat(s.sock, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
	cr_assert_eq(st.st_uid, geteuid());
	cr_assert_eq(proxy_stop(s.p, HARNESS_TIMEOUT_MS), 0);
	cr_assert_neq(stat(s.sock, &st), 0, "the socket file outlived the process");
	harness_pass();
}

Test(control, show_info_help_and_ctl_exit_status)
{
	struct setup s;
	char pid[32], *out;

	start(&s, NULL);
	char *info = ctl_cmd(s.sock, "show info");
	cr_assert(info);
	snprintf(pid, sizeof(pid), "pid: %d\n", (int)proxy_pid(s.p));
	cr_assert(strstr(info, pid), "%s", info);
	cr_assert(strstr(info, "version: "), "%s", info);
	cr_assert(strstr(info, "generation: 1\n"), "%s", info);
	cr_assert(strstr(info, "workers: 2\n"), "%s", info);
	cr_assert(strstr(info, "connections: 0\n"), "%s", info);
	cr_assert(strstr(info, "ktls: "), "%s", info);
	cr_assert(strstr(info, "uptime_s: "), "%s", info);
	free(info);

	cr_assert_eq(run_ctl(&s, (const char *[]){ "help", NULL }, &out), 0);
	cr_assert(strstr(out, "set server BACKEND/HOST:PORT state ready|drain|maint"), "%s", out);
	free(out);
	cr_assert_eq(run_ctl(&s, (const char *[]){ "show", "info", NULL }, &out), 0);
	cr_assert(strstr(out, pid), "%s", out);
	free(out);
	/* an error answer: exit 1, the answer still printed */
	cr_assert_eq(run_ctl(&s, (const char *[]){ "frobnicate", NULL }, &out), 1);
	cr_assert(strncmp(out, "error: unknown command 'frobnicate'", 35) == 0, "%s", out);
	free(out);
	/* no process behind the socket: exit 3 */
	cr_assert_eq(proxy_stop(s.p, HARNESS_TIMEOUT_MS), 0);
	cr_assert_eq(run_ctl(&s, (const char *[]){ "show", "info", NULL }, &out), 3);
	free(out);
	harness_pass();
}

Test(control, drain_takes_no_new_connections_ready_brings_it_back)
{
	struct setup s;
	int na, nb;

	start(&s, NULL);
	fetch_many(s.port, 4, &na, &nb);
	cr_assert_eq(na, 2);
	cr_assert_eq(nb, 2);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "set server app/%s state drain", backend_addr(s.a));
	char *ans = ctl_cmd(s.sock, cmd);
	cr_assert_str_eq(ans, "ok\n");
	free(ans);
	char *line = server_line(&s, s.a);
	cr_assert(strstr(line, " state=drain "), "%s", line);
	free(line);
	fetch_many(s.port, 6, &na, &nb);
	cr_assert_eq(na, 0, "a drained server got %d connections", na);
	cr_assert_eq(nb, 6);
	cr_assert_eq(stderr_count(s.p, "state ready -> drain (control socket)"), 1);

	snprintf(cmd, sizeof(cmd), "set server app/%s state ready", backend_addr(s.a));
	ans = ctl_cmd(s.sock, cmd);
	cr_assert_str_eq(ans, "ok\n");
	free(ans);
	fetch_many(s.port, 4, &na, &nb);
	cr_assert_eq(na, 2);
	cr_assert_eq(nb, 2);
	harness_pass();
}

/* Drain keeps open connections: one held through the drain still gets its answer. */
Test(control, drain_keeps_open_connections)
{
	struct setup s;
	struct tlsc_opts o = { .sni = "demo.test" };
	char buf[256], cmd[160];

	start(&s, NULL);
	struct tlsc *c[2] = { tlsc_connect("127.0.0.1", s.port, &o),
			      tlsc_connect("127.0.0.1", s.port, &o) };
	cr_assert(c[0] && c[1]);
	cr_assert(backend_wait_accepted(s.a, 1, HARNESS_TIMEOUT_MS));
	snprintf(cmd, sizeof(cmd), "set server app/%s state drain", backend_addr(s.a));
	free(ctl_cmd(s.sock, cmd));
	int served_a = 0;
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(tlsc_write_all(c[i], REQ, sizeof(REQ) - 1, 3000), 0);
		ssize_t n = tlsc_read_all(c[i], buf, sizeof(buf) - 1, 3000);
		cr_assert_gt(n, 0);
		buf[n] = '\0';
		served_a += strstr(buf, "hello from a") != NULL;
	}
	cr_assert_eq(served_a, 1, "the connection opened before the drain was cut");
	tlsc_close(c[0]);
	tlsc_close(c[1]);
	harness_pass();
}

/* maint stops the health checks of that server; ready starts them again. */
Test(control, maint_stops_checks)
{
	struct setup s;
	char cmd[160];

	start(&s, "check = tcp\ncheck_interval = 100ms\ncheck_timeout = 100ms\n");
	backend_stop(s.b); /* its checks now fail every 100 ms */
	cr_assert_geq(harness_wait_port_closed("127.0.0.1", backend_port(s.b), 3000), 1);
	snprintf(cmd, sizeof(cmd), "set server app/%s state maint", backend_addr(s.b));
	free(ctl_cmd(s.sock, cmd));
	char *l1 = server_line(&s, s.b);
	cr_assert(strstr(l1, " check=stopped "), "%s", l1);
	/* a check in flight when maint came ends within check_timeout (100 ms); after that
	 * the count stands still for five intervals */
	nanosleep(&(struct timespec){ 0, 300 * 1000000L }, NULL);
	char *before = server_line(&s, s.b);
	struct timespec ts = { 0, 500 * 1000000L };
	nanosleep(&ts, NULL);
	char *after = server_line(&s, s.b);
	const char *fb = strstr(before, "check_failures="), *fa = strstr(after, "check_failures=");
	cr_assert(fb && fa);
	cr_assert_eq(atol(fb + 15), atol(fa + 15), "checks ran in maint:\n%s\n%s", before, after);
	/* ready: the checks run again and the count grows */
	snprintf(cmd, sizeof(cmd), "set server app/%s state ready", backend_addr(s.b));
	free(ctl_cmd(s.sock, cmd));
	long grown = atol(fa + 15);
	for (int i = 0; i < 300 && grown <= atol(fa + 15); i++) {
		char *l = server_line(&s, s.b);
		grown = atol(strstr(l, "check_failures=") + 15);
		free(l);
		nanosleep(&(struct timespec){ 0, 10 * 1000000L }, NULL);
	}
	cr_assert_gt(grown, atol(fa + 15), "checks did not resume");
	free(l1);
	free(before);
	free(after);
	harness_pass();
}

Test(control, weight_reorders_at_once)
{
	struct setup s;
	char cmd[160];
	int na, nb;

	start(&s, NULL);
	snprintf(cmd, sizeof(cmd), "set server app/%s weight 3", backend_addr(s.a));
	char *ans = ctl_cmd(s.sock, cmd);
	cr_assert_str_eq(ans, "ok\n");
	free(ans);
	char *line = server_line(&s, s.a);
	cr_assert(strstr(line, " weight=3 "), "%s", line);
	free(line);
	/* whole cycles of 3 + 1 slots: exactly 3 to 1 */
	fetch_many(s.port, 40, &na, &nb);
	cr_assert_eq(na, 30);
	cr_assert_eq(nb, 10);
	static const char *const bad[] = { "0", "257", "x", "3x", "-1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(cmd, sizeof(cmd), "set server app/%s weight %s", backend_addr(s.a),
			 bad[i]);
		ans = ctl_cmd(s.sock, cmd);
		cr_assert(ans && strncmp(ans, "error: bad weight", 17) == 0, "%s: %s", bad[i], ans);
		free(ans);
	}
	harness_pass();
}

struct fetcher {
	int port;
	atomic_bool stop;
	atomic_int done;
};

/* Handshakes keep the workers busy, so a command can find them still on the one before. */
static void *fetch_loop(void *arg)
{
	struct fetcher *f = arg;

	for (int i = 0; i < 100000 && !atomic_load(&f->stop); i++)
		if (fetch(f->port))
			atomic_fetch_add(&f->done, 1);
	return NULL;
}

/* Commands that change the generation, sent one right after another as a script would,
 * while clients keep the workers busy: each is applied, none refused because the workers had
 * not yet taken the one before. */
Test(control, commands_back_to_back_are_each_applied)
{
	struct setup s;
	char cmd[160];
	pthread_t t[2];

	start(&s, NULL);
	struct fetcher f = { .port = s.port };
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, fetch_loop, &f), 0);
	for (int i = 0; i < 300; i++) {
		if (i % 10 == 9)
			snprintf(cmd, sizeof(cmd), "reload");
		else
			snprintf(cmd, sizeof(cmd), "set server app/%s weight %d",
				 backend_addr(i % 2 ? s.a : s.b), 1 + i % 7);
		char *ans = ctl_cmd(s.sock, cmd);
		bool ok = ans && strncmp(ans, "ok", 2) == 0;
		if (!ok)
			atomic_store(&f.stop, true);
		cr_assert(ok, "command %d (%s): %s", i, cmd, ans);
		free(ans);
	}
	atomic_store(&f.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	cr_assert_gt(atomic_load(&f.done), 0, "no client was served meanwhile");
	harness_pass();
}

Test(control, runtime_settings_survive_reload)
{
	struct setup s;
	char cmd[160], body[512];
	int na, nb;

	start(&s, NULL);
	snprintf(cmd, sizeof(cmd), "set server app/%s state drain", backend_addr(s.a));
	free(ctl_cmd(s.sock, cmd));
	snprintf(cmd, sizeof(cmd), "set server app/%s weight 5", backend_addr(s.b));
	free(ctl_cmd(s.sock, cmd));
	/* the file changes something else (connect_timeout); both servers stay in it */
	snprintf(body, sizeof(body),
		 "server = %s\nserver = %s\ncheck = none\nconnect_timeout = 2s\n",
		 backend_addr(s.a), backend_addr(s.b));
	write_ini(&s, body);
	char *ans = ctl_cmd(s.sock, "reload");
	cr_assert_str_eq(ans, "ok\n");
	free(ans);
	char *la = server_line(&s, s.a), *lb = server_line(&s, s.b);
	cr_assert(strstr(la, " state=drain "), "%s", la);
	cr_assert(strstr(lb, " weight=5 "), "%s", lb);
	free(la);
	free(lb);
	char want[160];
	snprintf(want, sizeof(want), "server %s keeps its run-time settings: state drain",
		 backend_addr(s.a));
	cr_assert_geq(stderr_count(s.p, want), 1, "the log does not say so");
	fetch_many(s.port, 4, &na, &nb);
	cr_assert_eq(na, 0);
	cr_assert_eq(nb, 4);
	/* a server removed from the file and added back starts afresh */
	snprintf(body, sizeof(body), "server = %s\ncheck = none\n", backend_addr(s.b));
	write_ini(&s, body);
	free(ctl_cmd(s.sock, "reload"));
	snprintf(body, sizeof(body), "server = %s\nserver = %s\ncheck = none\n", backend_addr(s.a),
		 backend_addr(s.b));
	write_ini(&s, body);
	free(ctl_cmd(s.sock, "reload"));
	la = server_line(&s, s.a);
	cr_assert(strstr(la, " state=ready "), "%s", la);
	free(la);
	char *info = ctl_cmd(s.sock, "show info");
	cr_assert(strstr(info, "generation: 5\n"), "%s", info);
	free(info);
	harness_pass();
}

Test(control, reload_answer_carries_the_errors)
{
	struct setup s;
	char *out;

	start(&s, NULL);
	harness_write_file("ctl.ini", "[global]\ncontrol = %s\n[frontend web]\nlisten = nowhere\n",
			   s.sock);
	cr_assert_eq(run_ctl(&s, (const char *[]){ "reload", NULL }, &out), 1);
	cr_assert(strncmp(out, "error: reload failed", 20) == 0, "%s", out);
	cr_assert(strstr(out, "ctl.ini:4: [frontend web] listen:"), "%s", out);
	free(out);
	/* the running configuration stays */
	cr_assert_neq(fetch(s.port), 0);
	char *info = ctl_cmd(s.sock, "show info");
	cr_assert(strstr(info, "generation: 1\n"), "%s", info);
	free(info);
	harness_pass();
}

Test(control, bad_input_gets_one_error_line)
{
	struct setup s;
	static const char *const cases[][2] = {
		{ "bogus", "error: unknown command 'bogus' (try help)\n" },
		{ "show", "error: unknown command 'show' (try help)\n" },
		{ "set server app/127.0.0.1:1 state drain",
		  "error: no server 'app/127.0.0.1:1' (BACKEND/HOST:PORT as in the file)\n" },
		{ "set server nosuch state drain",
		  "error: no server 'nosuch' (BACKEND/HOST:PORT as in the file)\n" },
		{ "show servers nosuch", "error: no backend 'nosuch'\n" },
		{ "show conns 0", "error: bad count '0' (1..100000)\n" },
		{ "", "error: empty command (try help)\n" },
		{ "a b c d e f g h i", "error: too many words (try help)\n" },
		{ "bad\x1b[31m", "error: unknown command 'bad\\x1b[31m' (try help)\n" },
	};

	start(&s, NULL);
	int fd = ctl_open(s.sock, HARNESS_TIMEOUT_MS);
	cr_assert_geq(fd, 0);
	/* one connection for all: an error never ends it */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(ctl_send(fd, cases[i][0], strlen(cases[i][0])), 0);
		cr_assert_eq(ctl_send(fd, "\n", 1), 0);
		char *ans = ctl_read_answer(fd, HARNESS_TIMEOUT_MS, NULL);
		cr_assert(ans, "no answer to '%s'", cases[i][0]);
		cr_assert_str_eq(ans, cases[i][1]);
		free(ans);
	}
	/* several commands in one write: answered in order */
	cr_assert_eq(ctl_send(fd, "help\nshow info\r\n", 17), 0);
	char *a1 = ctl_read_answer(fd, HARNESS_TIMEOUT_MS, NULL);
	char *a2 = ctl_read_answer(fd, HARNESS_TIMEOUT_MS, NULL);
	cr_assert(a1 && strstr(a1, "show info"));
	cr_assert(a2 && strstr(a2, "version: "));
	free(a1);
	free(a2);
	close(fd);
	harness_pass();
}

Test(control, line_over_4k_is_refused)
{
	struct setup s;
	char *big = malloc(8192);
	int closed;

	start(&s, NULL);
	int fd = ctl_open(s.sock, HARNESS_TIMEOUT_MS);
	cr_assert_geq(fd, 0);
	/* exactly 4096 bytes is a line (an unknown command) */
	memset(big, 'x', 4096);
	big[4096] = '\n';
	cr_assert_eq(ctl_send(fd, big, 4097), 0);
	char *ans = ctl_read_answer(fd, HARNESS_TIMEOUT_MS, NULL);
	cr_assert(ans && strncmp(ans, "error: unknown command", 22) == 0, "%.80s", ans);
	free(ans);
	/* 4097 bytes, no newline yet: refused and closed */
	memset(big, 'y', 8192);
	cr_assert_eq(ctl_send(fd, big, 4097), 0);
	ans = ctl_read_answer(fd, HARNESS_TIMEOUT_MS, &closed);
	cr_assert(ans, "no answer to an overlong line");
	cr_assert_str_eq(ans, "error: line longer than 4096 bytes\n");
	free(ans);
	char c;
	cr_assert_eq(read(fd, &c, 1), 0, "the connection stayed open after an overlong line");
	close(fd);
	/* the proxy serves on, and new control clients too */
	cr_assert_neq(fetch(s.port), 0);
	ans = ctl_cmd(s.sock, "show info");
	cr_assert(ans && strstr(ans, "version: "));
	free(ans);
	free(big);
	harness_pass();
}

Test(control, client_that_never_ends_its_line_blocks_nothing)
{
	struct setup s;
	int idle[CONTROL_IDLE_CLIENTS];

	start(&s, NULL);
	for (int i = 0; i < CONTROL_IDLE_CLIENTS; i++) {
		idle[i] = ctl_open(s.sock, HARNESS_TIMEOUT_MS);
		cr_assert_geq(idle[i], 0);
		cr_assert_eq(ctl_send(idle[i], "show inf", 8), 0);
	}
	/* with every one of them stuck mid-line, others are answered at once */
	int64_t t0 = harness_now_ms();
	char *ans = ctl_cmd(s.sock, "show info");
	cr_assert(ans && strstr(ans, "version: "), "%s", ans);
	free(ans);
	cr_assert_neq(fetch(s.port), 0);
	cr_assert_lt(harness_now_ms() - t0, 3000);
	/* and a stuck one that finishes its line later gets its answer */
	cr_assert_eq(ctl_send(idle[0], "o\n", 2), 0);
	ans = ctl_read_answer(idle[0], HARNESS_TIMEOUT_MS, NULL);
	cr_assert(ans && strstr(ans, "version: "), "%s", ans);
	free(ans);
	for (int i = 0; i < CONTROL_IDLE_CLIENTS; i++)
		close(idle[i]);
	harness_pass();
}

Test(control, show_conns_lists_the_oldest_first)
{
	struct setup s;
	struct tlsc_opts o = { .sni = "demo.test" };
	char cmd[64];

	s.a = backend_start(BACKEND_ECHO, 0, "a", 0);
	cr_assert(s.a);
	s.port = harness_free_port();
	s.sock = harness_path("ctl.sock");
	snprintf(cmd, sizeof(cmd), "server = %s\ncheck = none\n", backend_addr(s.a));
	write_ini(&s, cmd);
	s.p = proxy_start(s.ini, s.port);
	cr_assert(s.p);
	struct tlsc *c1 = tlsc_connect("127.0.0.1", s.port, &o);
	cr_assert(c1);
	cr_assert_eq(tlsc_write_all(c1, "ping", 4, 3000), 0);
	char buf[8];
	cr_assert_eq(tlsc_read(c1, buf, 4, 3000), 4);
	struct tlsc *c2 = tlsc_connect("127.0.0.1", s.port, &o);
	cr_assert(c2);
	cr_assert(backend_wait_accepted(s.a, 2, HARNESS_TIMEOUT_MS));

	char *ans = ctl_cmd(s.sock, "show conns 1");
	cr_assert(ans);
	cr_assert(strstr(ans, "connections: 2, showing the 1 oldest\n"), "%s", ans);
	char want[128];
	snprintf(want, sizeof(want),
		 "client=%s backend=app server=%s path=userspace bytes_in=4 "
		 "bytes_out=4\n",
		 tlsc_local_addr(c1), backend_addr(s.a));
	if (harness_kernel_ktls())
		snprintf(want, sizeof(want), "client=%s backend=app server=%s ",
			 tlsc_local_addr(c1), backend_addr(s.a));
	cr_assert(strstr(ans, want), "want '%s' in:\n%s", want, ans);
	cr_assert_eq(harness_count_lines(ans), 2, "%s", ans);
	free(ans);
	ans = ctl_cmd(s.sock, "show servers");
	cr_assert(strstr(ans, " active=2 "), "%s", ans);
	free(ans);
	tlsc_close(c1);
	tlsc_close(c2);
	harness_pass();
}
