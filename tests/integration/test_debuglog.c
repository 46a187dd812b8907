/* -l debug through the real binary: one connection's events in order (accepted, handshake,
 * the path of each direction, the server chosen, connected, closed), a failed handshake,
 * check results; nothing of it at the default level; and a flood held to the rate limit,
 * with the line that says how many lines it dropped. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

/* The limit src/log.c applies (log.h): LOG_DEBUG_RATE lines a second, bursts of
 * LOG_DEBUG_BURST, per thread. */
#define DEBUG_RATE 200
#define DEBUG_BURST 500

TestSuite(debuglog, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

static struct harness_cert crt;

static const char *const debug_args[] = { "-l", "debug", NULL };

/* One worker, ALPN offered, backend app on b with the given check. */
static struct proxy *start(int port, struct backend *b, const char *check, const char *const *args)
{
	char be[256];
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	snprintf(be, sizeof(be), "[backend app]\nserver = %s\ncheck = %s\n", backend_addr(b),
		 check);
	const char *ini = harness_config_web("d.ini", port, &crt, "workers = 1\n",
					     "alpn = h2,http/1.1\n", be);
	cr_assert(ini);
	struct proxy *p = proxy_start_args(ini, args, port);
	cr_assert(p);
	return p;
}

static int count(const char *text, const char *needle)
{
	int n = 0;
	for (const char *s = text; s && (s = strstr(s, needle)); s += strlen(needle))
		n++;
	return n;
}

/* Polls the proxy's stderr until needle is in it; the text (malloc'd), or NULL at the
 * deadline. */
static char *wait_stderr(struct proxy *p, const char *needle, int timeout_ms)
{
	int64_t end = harness_now_ms() + timeout_ms;
	do {
		char *err = harness_read_file(proxy_stderr_path(p), NULL);
		if (err && strstr(err, needle))
			return err;
		free(err);
		usleep(10000);
	} while (harness_now_ms() < end);
	return NULL;
}

/* A plain TCP client that sends an HTTP request where a ClientHello belongs, then closes:
 * a handshake failure. Returns the socket still open if keep, else -1. */
static int bad_client(int port, bool keep)
{
	static const char req[] = "GET / HTTP/1.0\r\n\r\n";
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);
	if (keep)
		return fd;
	close(fd);
	return -1;
}

/* The local address of fd as the log shows it. */
static void local_addr(int fd, char *out, size_t len)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	char host[INET_ADDRSTRLEN];
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	inet_ntop(AF_INET, &sin.sin_addr, host, sizeof(host));
	snprintf(out, len, "%s:%u", host, ntohs(sin.sin_port));
}

/* Asserts that text holds, in this order, the lines of client prefix that contain each of
 * want[] (NULL-terminated). */
static void assert_in_order(const char *text, const char *client, const char *const *want)
{
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "frontend web client %s: ", client);
	const char *at = text;
	for (size_t i = 0; want[i]; i++) {
		const char *found = NULL;
		for (const char *s = at; (s = strstr(s, prefix)); s += strlen(prefix)) {
			const char *eol = strchr(s, '\n');
			const char *hit = strstr(s + strlen(prefix), want[i]);
			if (hit && (!eol || hit < eol)) {
				found = s;
				break;
			}
		}
		cr_assert(found, "no line '%s%s' after the previous event in:\n%s", prefix, want[i],
			  text);
		at = strchr(found, '\n') ? strchr(found, '\n') + 1 : found + strlen(found);
	}
}

Test(debuglog, one_connection_logs_its_events_in_order)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	struct proxy *p = start(port, b, "tcp", debug_args);
	char client[64], want[8][256], buf[8];
	char *err;

	struct tlsc_opts o = { .sni = "demo.test", .alpn = "h2" };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	cr_assert(c, "TLS connect failed");
	snprintf(client, sizeof(client), "%s", tlsc_local_addr(c));
	cr_assert_eq(tlsc_write_all(c, "ping", 4, HARNESS_TIMEOUT_MS), 0);
	cr_assert_eq(tlsc_read(c, buf, sizeof(buf), HARNESS_TIMEOUT_MS), 4);
	snprintf(want[0], sizeof(want[0]), "handshake done in ");
	snprintf(want[1], sizeof(want[1]), "ms: %s %s, sni demo.test, alpn h2", tlsc_version(c),
		 tlsc_cipher(c));
	tlsc_close(c);
	snprintf(want[7], sizeof(want[7]), "frontend web client %s: closed: ", client);
	cr_assert(err = wait_stderr(p, want[7], HARNESS_TIMEOUT_MS), "no close line");
	/* this kernel decides the paths: spliced where it has kTLS, else user space, saying so */
	bool ktls = harness_kernel_ktls();
	snprintf(want[2], sizeof(want[2]), "client->server: %s",
		 ktls ? "splice (kernel TLS receive)" : "userspace (kTLS: not available");
	snprintf(want[3], sizeof(want[3]), "server->client: %s",
		 ktls ? "splice (kernel TLS send)" : "userspace (kTLS: not available");
	snprintf(want[4], sizeof(want[4]), "backend app: server %s chosen (attempt 1 of at most 3)",
		 backend_addr(b));
	snprintf(want[5], sizeof(want[5]), "connected to server %s (attempt 1)", backend_addr(b));
	snprintf(want[6], sizeof(want[6]), "closed: client_eof, 4 bytes in, 4 bytes out, ");
	const char *const order[] = { "accepted", want[1], want[2], want[3],
				      want[4],    want[5], want[6], NULL };
	assert_in_order(err, client, order);
	const char *const handshake[] = { want[0], NULL };
	assert_in_order(err, client, handshake);
	free(err);

	/* a failed handshake says why, then closes */
	int fd = bad_client(port, true);
	local_addr(fd, client, sizeof(client));
	snprintf(want[7], sizeof(want[7]), "frontend web client %s: closed: handshake_failed",
		 client);
	cr_assert(err = wait_stderr(p, want[7], HARNESS_TIMEOUT_MS), "no close line");
	close(fd);
	const char *const failed[] = { "accepted", "handshake failed after ",
				       "closed: handshake_failed (", NULL };
	assert_in_order(err, client, failed);
	free(err);

	/* check results are debug lines too */
	snprintf(want[0], sizeof(want[0]), "debug: check backend app server %s: ok after ",
		 backend_addr(b));
	cr_assert(err = wait_stderr(p, want[0], HARNESS_TIMEOUT_MS), "no check result line");
	free(err);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

Test(debuglog, the_default_level_logs_no_debug_line)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	struct proxy *p = start(port, b, "tcp", NULL);
	char buf[8];

	struct tlsc_opts o = { .sni = "demo.test" };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	cr_assert(c, "TLS connect failed");
	cr_assert_eq(tlsc_write_all(c, "ping", 4, HARNESS_TIMEOUT_MS), 0);
	cr_assert_eq(tlsc_read(c, buf, sizeof(buf), HARNESS_TIMEOUT_MS), 4);
	tlsc_close(c);
	bad_client(port, false);
	/* a connection's debug lines would be written before its access log line is done */
	cr_assert_eq(alog_wait_lines(proxy_access_log(p), 2, HARNESS_TIMEOUT_MS), 2);
	char *err = harness_read_file(proxy_stderr_path(p), NULL);
	cr_assert(err);
	cr_assert(strstr(err, "started:"), "%s", err);
	cr_assert_eq(count(err, " debug: "), 0, "debug lines at the default level:\n%s", err);
	free(err);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

/* Floods of failed handshakes (three lines each) until the limit has dropped lines and said
 * so; what got through never exceeds the burst plus the rate over the time it ran. */
Test(debuglog, a_flood_is_held_to_the_rate_limit_and_says_what_it_dropped)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	int64_t t0 = harness_now_ms();
	struct proxy *p = start(port, b, "none", debug_args);
	const int round = 300, rounds = 20;
	int made = 0;
	char *err = NULL;

	for (int r = 0; r < rounds && !err && harness_now_ms() < t0 + 60000; r++) {
		for (int i = 0; i < round; i++)
			bad_client(port, false);
		made += round;
		err = wait_stderr(p, "debug lines suppressed", 200);
	}
	int64_t elapsed = harness_now_ms() - t0;
	cr_assert(err, "no suppression line after %d connections", made);
	/* "debug: N debug lines suppressed ..." */
	const char *at = strstr(err, " debug lines suppressed");
	while (at > err && at[-1] >= '0' && at[-1] <= '9')
		at--;
	unsigned long dropped = strtoul(at, NULL, 10);
	cr_assert_gt(dropped, 0, "%.*s", 80, at);
	cr_assert(strstr(at, "(at most 200 a second per thread, bursts of 500)"), "%.120s", at);
	int accepted = count(err, ": accepted");
	cr_assert_lt(accepted, made, "every connection was logged: no limit");
	int lines = count(err, " debug: ");
	int bound = DEBUG_BURST + (int)(DEBUG_RATE * (elapsed + 999) / 1000);
	cr_assert_leq(lines, bound, "%d debug lines in %lld ms", lines, (long long)elapsed);
	cr_log_info("%d connections, %d accepted lines, %lu dropped, %d debug lines in %lld ms",
		    made, accepted, dropped, lines, (long long)elapsed);
	free(err);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}
