/* tlsplice-abuse-http: attacks on the plain-HTTP metrics endpoint.
 *
 *   tlsplice-abuse-http get     -p PORT [-H HOST] [-P PATH] [-t 5]
 *   tlsplice-abuse-http body    -p PORT [-b 300M] [-t 120]   GET with Content-Length: 4000000000
 *   tlsplice-abuse-http line    -p PORT [-b 32M] [-t 120]    a request line of -b bytes
 *   tlsplice-abuse-http idle    -p PORT [-n 200] [-t 10]     -n silent connections held -t seconds;
 *                                                           a fresh GET /metrics half-way through
 *   tlsplice-abuse-http trickle -p PORT [-i 1] [-t 20]       one header byte every -i seconds
 *
 * Each prints one "RESULT key=value ..." line: what was sent, how it ended (peer_closed,
 * limit, deadline), the HTTP status seen if any, and times. The caller judges the figures
 * (RSS, fds, latency of other clients); exit status 0 unless the tool itself failed, except
 * for get (0 only on a 200) and trickle (0 only when the server closed the trickler).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define CHUNK 65536

static struct {
	const char *mode, *host, *port, *path;
	uint64_t bytes, time_us, interval_us;
	unsigned n;
} o = { .host = "127.0.0.1", .path = "/metrics", .time_us = 0, .interval_us = 1000000, .n = 200 };

static struct ab_addr target;

/* Connects and waits for the connect to finish; -1 on failure. */
static int dial(uint64_t deadline)
{
	int fd = ab_connect(&target), err = 0;
	socklen_t len = sizeof(err);
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	if (fd < 0)
		return -1;
	while (poll(&p, 1, 50) == 0) {
		if (ab_now_us() >= deadline) {
			close(fd);
			return -1;
		}
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads what is there; returns the HTTP status once a status line arrived, 0 before,
 * -1 when the server closed (status kept in *status). */
static int collect(int fd, char *resp, size_t cap, size_t *have, int *status)
{
	for (;;) {
		ssize_t n = recv(fd, resp + *have, cap - 1 - *have, MSG_DONTWAIT);

		if (n > 0) {
			*have += (size_t)n;
			resp[*have] = '\0';
			if (*have >= cap - 1)
				*have = cap / 2; /* keep the status line, drop the rest */
			sscanf(resp, "HTTP/1.%*d %d", status);
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			return -1;
		return 0;
	}
}

/* GET PATH; returns the status (0 when none came) and the time taken. */
static int http_get(uint64_t timeout_us, double *ms, size_t *bytes)
{
	uint64_t t0 = ab_now_us(), deadline = t0 + timeout_us;
	char req[512], resp[1 << 16];
	size_t have = 0;
	int status = 0, fd = dial(deadline);
	int len = snprintf(req, sizeof(req),
			   "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", o.path);

	if (fd >= 0 && send(fd, req, (size_t)len, MSG_NOSIGNAL) == len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		while (ab_now_us() < deadline) {
			if (poll(&p, 1, 50) > 0 &&
			    collect(fd, resp, sizeof(resp), &have, &status) < 0)
				break;
		}
	}
	if (fd >= 0)
		close(fd);
	*ms = (double)(ab_now_us() - t0) / 1e3;
	*bytes = have;
	return status;
}

static int mode_get(void)
{
	double ms;
	size_t bytes;
	int st = http_get(o.time_us ? o.time_us : 5000000, &ms, &bytes);

	printf("RESULT mode=get status=%d ms=%.1f bytes=%zu\n", st, ms, bytes);
	return st == 200 ? 0 : 1;
}

/* Sends HEAD, then FILL bytes of filler, until the server closes, -b is reached or -t passes. */
static int mode_stream(const char *head, char fill, const char *tail)
{
	static char buf[CHUNK];
	uint64_t t0 = ab_now_us(), deadline = t0 + (o.time_us ? o.time_us : 120000000), sent = 0;
	char resp[4096];
	size_t have = 0, hl = strlen(head);
	int status = 0, fd = dial(deadline);
	const char *how = "deadline";

	if (fd < 0) {
		printf("RESULT mode=%s status=0 how=connect_failed\n", o.mode);
		return 1;
	}
	memset(buf, fill, sizeof(buf));
	if (send(fd, head, hl, MSG_NOSIGNAL) != (ssize_t)hl)
		how = "peer_closed";
	while (ab_now_us() < deadline && strcmp(how, "deadline") == 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN | (sent < o.bytes ? POLLOUT : 0) };

		if (poll(&p, 1, 50) <= 0)
			continue;
		if ((p.revents & (POLLIN | POLLHUP | POLLERR)) &&
		    collect(fd, resp, sizeof(resp), &have, &status) < 0)
			how = "peer_closed";
		else if ((p.revents & POLLOUT) && sent < o.bytes) {
			uint64_t left = o.bytes - sent;
			ssize_t n = send(fd, buf, left < CHUNK ? (size_t)left : CHUNK,
					 MSG_NOSIGNAL | MSG_DONTWAIT);

			if (n < 0 && errno != EAGAIN && errno != EINTR)
				how = "peer_closed";
			sent += n > 0 ? (uint64_t)n : 0;
			if (sent == o.bytes && tail)
				send(fd, tail, strlen(tail), MSG_NOSIGNAL);
			if (sent == o.bytes)
				how = "limit_sent";
		}
	}
	/* After the last byte, give the server the rest of the deadline to answer or close. */
	while (strcmp(how, "limit_sent") == 0 && ab_now_us() < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 50) > 0 && collect(fd, resp, sizeof(resp), &have, &status) < 0)
			how = "limit_then_closed";
	}
	close(fd);
	printf("RESULT mode=%s status=%d how=%s sent=%" PRIu64 " sent_mib=%.1f secs=%.3f\n", o.mode,
	       status, how, sent, (double)sent / 1048576.0, (double)(ab_now_us() - t0) / 1e6);
	return 0;
}

static int mode_idle(void)
{
	uint64_t t0 = ab_now_us(), hold = o.time_us ? o.time_us : 10000000, cmin = 0, cmax = 0;
	struct pollfd *ps = calloc(o.n, sizeof(*ps));
	unsigned opened = 0, closed = 0;
	int probe = -1;
	double probe_ms = 0;
	size_t probe_bytes = 0;

	if (!ps)
		return 2;
	for (unsigned i = 0; i < o.n; i++) {
		ps[i].fd = dial(t0 + hold);
		ps[i].events = POLLIN;
		opened += ps[i].fd >= 0;
	}
	while (ab_now_us() - t0 < hold) {
		if (probe < 0 && ab_now_us() - t0 >= hold / 2)
			probe = http_get(3000000, &probe_ms, &probe_bytes);
		if (poll(ps, o.n, 50) <= 0)
			continue;
		for (unsigned i = 0; i < o.n; i++) {
			char b[512];

			if (ps[i].fd < 0 || !ps[i].revents ||
			    recv(ps[i].fd, b, sizeof(b), MSG_DONTWAIT) > 0)
				continue;
			uint64_t dt = ab_now_us() - t0;

			cmin = closed == 0 || dt < cmin ? dt : cmin;
			cmax = dt > cmax ? dt : cmax;
			closed++;
			close(ps[i].fd);
			ps[i].fd = -1;
		}
	}
	for (unsigned i = 0; i < o.n; i++)
		if (ps[i].fd >= 0)
			close(ps[i].fd);
	free(ps);
	printf("RESULT mode=idle opened=%u closed_by_server=%u close_min_s=%.2f close_max_s=%.2f"
	       " probe_status=%d probe_ms=%.1f hold_s=%.1f\n",
	       opened, closed, (double)cmin / 1e6, (double)cmax / 1e6, probe, probe_ms,
	       (double)hold / 1e6);
	return 0;
}

static int mode_trickle(void)
{
	const char *head = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
	uint64_t t0 = ab_now_us(), max = o.time_us ? o.time_us : 20000000, next = t0, sent = 0;
	int status = 0, fd = dial(t0 + max);
	char resp[4096];
	size_t have = 0;
	bool closed = false;

	if (fd < 0 || send(fd, head, strlen(head), MSG_NOSIGNAL) < 0) {
		printf("RESULT mode=trickle closed_by_server=0 how=connect_failed\n");
		return 1;
	}
	while (!closed && ab_now_us() - t0 < max) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (ab_now_us() >= next) {
			closed = send(fd, "a", 1, MSG_NOSIGNAL) < 0;
			sent += !closed;
			next += o.interval_us;
		}
		if (!closed && poll(&p, 1, 50) > 0)
			closed = collect(fd, resp, sizeof(resp), &have, &status) < 0;
	}
	close(fd);
	printf("RESULT mode=trickle closed_by_server=%d status=%d at_s=%.2f bytes_trickled=%" PRIu64
	       "\n",
	       closed, status, (double)(ab_now_us() - t0) / 1e6, sent);
	return closed ? 0 : 1;
}

int main(int argc, char **argv)
{
	int ch;

	if (argc < 2)
		goto usage;
	o.mode = argv[1];
	o.bytes = strcmp(o.mode, "line") == 0 ? 32u << 20 : 300u << 20;
	optind = 2;
	while ((ch = getopt(argc, argv, "H:p:P:b:t:n:i:")) != -1) {
		switch (ch) {
		case 'H':
			o.host = optarg;
			break;
		case 'p':
			o.port = optarg;
			break;
		case 'P':
			o.path = optarg;
			break;
		case 'b':
			o.bytes = ab_parse_size(optarg);
			break;
		case 't':
			o.time_us = ab_parse_secs(optarg);
			break;
		case 'n':
			o.n = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'i':
			o.interval_us = ab_parse_secs(optarg);
			break;
		default:
			goto usage;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	ab_raise_nofile();
	if (!o.port || ab_resolve(o.host, o.port, &target) < 0)
		goto usage;
	if (strcmp(o.mode, "get") == 0)
		return mode_get();
	if (strcmp(o.mode, "body") == 0)
		return mode_stream(
			"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000000\r\n\r\n",
			'b', NULL);
	if (strcmp(o.mode, "line") == 0)
		return mode_stream("GET /", 'a', " HTTP/1.1\r\nHost: x\r\n\r\n");
	if (strcmp(o.mode, "idle") == 0)
		return mode_idle();
	if (strcmp(o.mode, "trickle") == 0)
		return mode_trickle();
usage:
	fprintf(stderr, "usage: tlsplice-abuse-http get|body|line|idle|trickle -p PORT [-H HOST]"
			" [-P PATH] [-b BYTES] [-t SECS] [-n N] [-i SECS]\n");
	return 2;
}
