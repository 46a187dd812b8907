/* Local resource errors through the real binary: with the proxy's RLIMIT_NOFILE lowered
 * under it and many clients at once, socket() fails with EMFILE on the client path and in
 * the health checker. That is the proxy's own shortage, never the backend's fault: the
 * server is never marked down, no failure is counted against it, and clients are told why. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "harness.h"

enum { NCLIENTS = 60, HEADROOM = 8 };

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	cr_assert_not_null(d, "cannot open %s", path);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Number of occurrences of needle in the file at path. */
static int file_count(const char *path, const char *needle)
{
	char *text = harness_read_file(path, NULL);
	int n = 0;

	for (const char *at = text; at && (at = strstr(at, needle)); at += strlen(needle))
		n++;
	free(text);
	return n;
}

/* One request; true if the HELLO backend answered. */
static bool fetch_ok(int port)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: demo.test\r\n\r\n";
	struct tlsc_opts o = { .sni = "demo.test", .timeout_ms = 20000 };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	char buf[512];
	ssize_t n = -1;

	if (!c)
		return false;
	if (tlsc_write_all(c, req, sizeof(req) - 1, 20000) == 0)
		n = tlsc_read_all(c, buf, sizeof(buf) - 1, 20000);
	tlsc_close(c);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, "hello from a") != NULL;
}

struct client {
	pthread_t thread;
	int port;
	bool ok;
};

static void *client_main(void *arg)
{
	struct client *c = arg;

	c->ok = fetch_ok(c->port);
	return NULL;
}

static double server_metric(int mport, const char *name, const char *addr)
{
	char series[256];
	char *text = harness_http_get(mport, "/metrics", 5000);
	double v;

	snprintf(series, sizeof(series), "%s{backend=\"app\",server=\"%s\"}", name, addr);
	v = text ? metrics_value(text, series) : -1;
	free(text);
	return v;
}

/* Sets the soft RLIMIT_NOFILE of the running proxy (the hard limit stays). */
static void proxy_set_nofile(struct proxy *p, rlim_t soft, struct rlimit *old)
{
	struct rlimit cur;

	cr_assert_eq(prlimit(proxy_pid(p), RLIMIT_NOFILE, NULL, &cur), 0, "prlimit: %m");
	if (old)
		*old = cur;
	cur.rlim_cur = soft;
	cr_assert_eq(prlimit(proxy_pid(p), RLIMIT_NOFILE, &cur, NULL), 0, "prlimit: %m");
}

static struct proxy *start_proxy(struct backend **a, int *port, int *mport)
{
	struct harness_cert crt;
	char global[128], body[512];

	*a = backend_start(BACKEND_HELLO, 0, "a", 0);
	cr_assert_not_null(*a);
	*port = harness_free_port();
	*mport = harness_free_port();
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	snprintf(global, sizeof(global), "workers = 2\nlog_level = info\nmetrics = 127.0.0.1:%d\n",
		 *mport);
	/* fall = 2 and a 50 ms interval: a couple of misplaced failures take the server down */
	snprintf(body, sizeof(body),
		 "[backend app]\nserver = %s\ncheck = tcp\ncheck_interval = 50ms\n"
		 "check_timeout = 2s\ncheck_rise = 1\ncheck_fall = 2\nretries = 2\n",
		 backend_addr(*a));
	const char *ini = harness_config_web("local.ini", *port, &crt, global, NULL, body);
	cr_assert_not_null(ini);
	struct proxy *p = proxy_start(ini, *port);
	cr_assert_not_null(p);
	return p;
}

TestSuite(local_errors, .init = harness_setup, .fini = harness_teardown, .timeout = 180);

Test(local_errors, fd_exhaustion_is_never_blamed_on_the_backend)
{
	struct backend *a;
	struct client cl[NCLIENTS];
	struct rlimit old;
	int port, mport, ok = 0;
	struct proxy *p = start_proxy(&a, &port, &mport);
	const char *err = proxy_stderr_path(p);

	cr_assert(fetch_ok(port), "the relay works before the squeeze");
	/* only a few fds above what the process holds: clients and checks run out of them */
	proxy_set_nofile(p, (rlim_t)(count_fds(proxy_pid(p)) + HEADROOM), &old);
	for (int i = 0; i < NCLIENTS; i++) {
		cl[i].port = port;
		cr_assert_eq(pthread_create(&cl[i].thread, NULL, client_main, &cl[i]), 0);
	}
	for (int i = 0; i < NCLIENTS; i++) {
		pthread_join(cl[i].thread, NULL);
		ok += cl[i].ok;
	}
	proxy_set_nofile(p, old.rlim_cur, NULL);

	cr_assert_eq(file_count(err, " is DOWN:"), 0, "a local error marked the backend down");
	cr_assert_geq(file_count(err, "local error, not counted against server: socket: "), 1,
		      "the squeeze must have made socket() fail (%d of %d clients served)", ok,
		      NCLIENTS);
	cr_assert_eq(server_metric(mport, "tlsplice_server_up", backend_addr(a)), 1);
	cr_assert_eq(
		server_metric(mport, "tlsplice_server_connect_failures_total", backend_addr(a)), 0,
		"local errors were counted as connect failures");
	cr_assert_eq(server_metric(mport, "tlsplice_server_check_failures_total", backend_addr(a)),
		     0, "local errors were counted as check failures");
	/* every client turned away was told why, and none for want of a server */
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), NCLIENTS + 1, 5000), NCLIENTS + 1);
	for (int i = 0; i <= NCLIENTS; i++) {
		char *line = alog_line(proxy_access_log(p), i), close[32], why[256];
		cr_assert_not_null(line);
		cr_assert_eq(json_str(line, "close", close, sizeof(close)), 0);
		cr_assert_eq(json_str(line, "error", why, sizeof(why)), 0);
		cr_assert_str_neq(close, "no_server", "%s", line);
		if (strcmp(close, "connect_failed") == 0)
			cr_assert(strstr(why, "local error, not counted against server: socket: "),
				  "%s", line);
		free(line);
	}
	cr_assert(fetch_ok(port), "the relay works once fds are back");
	harness_pass();
}
