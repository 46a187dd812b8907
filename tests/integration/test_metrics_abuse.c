/* The metrics endpoint under abuse: bodies, oversized request lines, piles of idle
 * connections and slow clients must cost bounded memory, CPU and descriptors, and a fresh
 * scrape must still be answered. Figures are printed for the record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"
#include "harness_proc.h"

TestSuite(metrics_abuse, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

/* What metrics.c promises: requests of a few KiB, 64 connections, 5 s per request. */
#define MAX_CONNS 64
#define DEADLINE_MS 5000

static struct proxy *start(int *mport)
{
	static struct harness_cert crt;
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	char global[64], be[256];
	int port = harness_free_port();
	*mport = harness_free_port();
	snprintf(global, sizeof(global), "metrics = 127.0.0.1:%d\n", *mport);
	snprintf(be, sizeof(be), "[backend app]\nserver = %s\ncheck = none\n", backend_addr(b));
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	const char *ini = harness_config_web("m.ini", port, &crt, global, NULL, be);
	cr_assert(ini);
	struct proxy *p = proxy_start(ini, port);
	cr_assert(p, "proxy did not start");
	cr_assert(harness_wait_port("127.0.0.1", *mport, HARNESS_TIMEOUT_MS));
	return p;
}

/* Sends req in one piece and returns the whole answer (static buffer). */
static const char *ask(int mport, const char *req, size_t len)
{
	static char out[1 << 16];
	int closed;
	int fd = raw_connect(mport, HARNESS_TIMEOUT_MS);
	cr_assert(fd >= 0);
	cr_assert_eq(raw_write_all(fd, req, len, HARNESS_TIMEOUT_MS), 0);
	raw_read_until_close(fd, out, sizeof(out), HARNESS_TIMEOUT_MS, &closed);
	cr_assert(closed, "the endpoint kept the connection open after answering");
	close(fd);
	return out;
}

#define ASK(port, s) ask(port, s, sizeof(s) - 1)

static void assert_fresh_scrape(int mport)
{
	char *m = harness_http_get(mport, "/metrics", HARNESS_TIMEOUT_MS);
	cr_assert(m && strstr(m, " 200 ") && strstr(m, "tlsplice_connections_total{"),
		  "a fresh scrape was not answered: %s", m ? m : "(nothing)");
	free(m);
}

Test(metrics_abuse, strict_requests)
{
	int mport;
	struct proxy *p = start(&mport);
	const char *r = ASK(mport, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert(strncmp(r, "HTTP/1.1 200 ", 13) == 0, "%s", r);
	cr_assert(strstr(r, "\r\n\r\n") && !strstr(r, "# TYPE"), "HEAD sent a body: %s", r);
	r = ASK(mport, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
	cr_assert(strstr(r, " 200 ") && strstr(r, "\r\n\r\nok\n"), "%s", r);
	r = ASK(mport, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert(strstr(r, " 405 "), "%s", r);
	r = ASK(mport, "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
	cr_assert(strstr(r, " 413 "), "%s", r);
	r = ASK(mport, "GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
	cr_assert(strstr(r, " 413 "), "%s", r);
	r = ASK(mport, "GET /metrics HTTP/2.0\r\n\r\n");
	cr_assert(strstr(r, " 505 "), "%s", r);
	r = ASK(mport, "GET metrics\r\n\r\n");
	cr_assert(strstr(r, " 400 "), "%s", r);
	char big[8192];
	int n = snprintf(big, sizeof(big), "GET /metrics HTTP/1.1\r\nX: %06000d\r\n\r\n", 0);
	r = ask(mport, big, (size_t)n);
	cr_assert(strstr(r, " 431 "), "%s", r);
	assert_fresh_scrape(mport);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

/* A GET announcing 4 GB of body, then streaming up to 256 MiB of it. */
Test(metrics_abuse, announced_body_is_never_buffered)
{
	int mport;
	struct proxy *p = start(&mport);
	assert_fresh_scrape(mport);
	long rss0 = proc_rss_kib(proxy_pid(p)), peak = rss0;
	int fd = raw_connect(mport, HARNESS_TIMEOUT_MS);
	cr_assert(fd >= 0 && rss0 > 0);
	static const char hdr[] =
		"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000000\r\n\r\n";
	cr_assert_eq(raw_write_all(fd, hdr, sizeof(hdr) - 1, HARNESS_TIMEOUT_MS), 0);
	static char chunk[1 << 20];
	memset(chunk, 'b', sizeof(chunk));
	size_t sent = 0;
	int64_t t0 = harness_now_ms();
	while (sent < 256u << 20 && harness_now_ms() - t0 < 20000) {
		if (raw_write_all(fd, chunk, sizeof(chunk), 2 * DEADLINE_MS) < 0)
			break;
		sent += sizeof(chunk);
		long rss = proc_rss_kib(proxy_pid(p));
		peak = rss > peak ? rss : peak;
	}
	close(fd);
	long rss = proc_rss_kib(proxy_pid(p));
	peak = rss > peak ? rss : peak;
	cr_log_info("body: %zu MiB sent in %lld ms; RSS %ld KiB before, peak %ld KiB", sent >> 20,
		    (long long)(harness_now_ms() - t0), rss0, peak);
	cr_assert_lt(peak - rss0, 16 * 1024, "RSS grew by %ld KiB while a body streamed",
		     peak - rss0);
	assert_fresh_scrape(mport);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

/* A 32 MiB request line without an end: refused after a few KiB, at little CPU. */
Test(metrics_abuse, huge_request_line_refused_quickly)
{
	int mport;
	struct proxy *p = start(&mport);
	assert_fresh_scrape(mport);
	long cpu0 = proc_cpu_ms(proxy_pid(p)), rss0 = proc_rss_kib(proxy_pid(p));
	int fd = raw_connect(mport, HARNESS_TIMEOUT_MS);
	cr_assert(fd >= 0 && cpu0 >= 0);
	char *line = malloc(32u << 20);
	cr_assert(line);
	memcpy(line, "GET /", 5);
	memset(line + 5, 'a', (32u << 20) - 5);
	int64_t t0 = harness_now_ms();
	int wr = raw_write_all(fd, line, 32u << 20, 2 * DEADLINE_MS);
	int closed = raw_peer_closed(fd, 2000);
	int64_t ms = harness_now_ms() - t0;
	close(fd);
	free(line);
	long cpu = proc_cpu_ms(proxy_pid(p)) - cpu0, rss = proc_rss_kib(proxy_pid(p));
	cr_log_info(
		"32 MiB line: write %s, closed %d after %lld ms; proxy CPU %ld ms; RSS %ld -> %ld KiB",
		wr == 0 ? "completed" : "refused", closed, (long long)ms, cpu, rss0, rss);
	cr_assert(wr < 0 || closed, "the proxy neither refused the line nor closed");
	cr_assert_lt(ms, 2000, "refusing took %lld ms", (long long)ms);
	cr_assert_lt(cpu, 300, "the proxy spent %ld ms of CPU on one request line", cpu);
	cr_assert_lt(rss - rss0, 16 * 1024, "RSS grew by %ld KiB", rss - rss0);
	assert_fresh_scrape(mport);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

/* 200 idle connections: the oldest are let go beyond the cap and a fresh scrape answers. */
Test(metrics_abuse, idle_connections_capped)
{
	enum { N = 200 };
	int mport, fds[N];
	struct proxy *p = start(&mport);
	assert_fresh_scrape(mport);
	int base = proc_count_sockets(proxy_pid(p));
	for (int i = 0; i < N; i++) {
		fds[i] = raw_connect(mport, HARNESS_TIMEOUT_MS);
		cr_assert(fds[i] >= 0, "connect %d", i);
	}
	/* accepted in order: once the fresh client is answered, all 200 were accepted */
	assert_fresh_scrape(mport);
	int held = proc_count_sockets(proxy_pid(p)) - base;
	int closed = 0;
	for (int i = 0; i < N; i++)
		closed += raw_peer_closed(fds[i], i < N - MAX_CONNS ? 1000 : 0);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	cr_log_info("idle: %d connections, %d held by the proxy, %d closed by it", N, held, closed);
	cr_assert_leq(held, MAX_CONNS, "the proxy holds %d metrics connections", held);
	cr_assert_geq(closed, N - MAX_CONNS, "only %d of the oldest were closed", closed);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}

/* One header byte every 200 ms never finishes: closed at the request deadline, not kept
 * alive by its activity. */
Test(metrics_abuse, trickler_closed_at_deadline)
{
	int mport;
	struct proxy *p = start(&mport);
	int fd = raw_connect(mport, HARNESS_TIMEOUT_MS);
	cr_assert(fd >= 0);
	int64_t t0 = harness_now_ms();
	static const char start_line[] = "GET /metrics HTTP/1.1\r\nX-Slow: ";
	cr_assert_eq(raw_write_all(fd, start_line, sizeof(start_line) - 1, HARNESS_TIMEOUT_MS), 0);
	int closed = 0;
	/* the wait for the close paces the bytes */
	while (!closed && harness_now_ms() - t0 < DEADLINE_MS + 3000) {
		closed = raw_peer_closed(fd, 200);
		if (!closed && raw_write_all(fd, "a", 1, 1000) < 0)
			closed = 1;
	}
	int64_t ms = harness_now_ms() - t0;
	close(fd);
	cr_log_info("trickler closed %d after %lld ms", closed, (long long)ms);
	cr_assert(closed, "a trickling client was still open after %lld ms", (long long)ms);
	cr_assert_geq(ms, DEADLINE_MS - 100, "closed before the deadline");
	cr_assert_lt(ms, DEADLINE_MS + 1500, "closed %lld ms after connecting", (long long)ms);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	harness_pass();
}
