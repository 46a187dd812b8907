/* tlsplice-testbackend: plain TCP servers for demos and tests.
 *
 *   tlsplice-testbackend --listen HOST:PORT --mode hello|echo|sink|source|reset|silent
 *                        [--name NAME] [--bytes N]
 *
 * hello:  reads a request up to "\r\n\r\n", answers an HTTP/1.1 200 with "hello from NAME\n".
 * echo:   echoes everything; on the peer's EOF finishes writing, then shuts down its write side.
 * sink:   reads to EOF, answers the hex SHA-256 of what it read plus "\n".
 * source: sends N pattern bytes, shuts down its write side, closes on the peer's EOF.
 * reset:  waits for the peer's first bytes, sends N pattern bytes, then resets the connection.
 * silent: reads, never writes, closes on the peer's EOF.
 * The servers are the backend core the integration harness runs in process (bcore.h), so a
 * demo or soak sees the same backend as the tests. Prints "listening on HOST:PORT" once bound;
 * exits 0 on SIGTERM/SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bcore.h"

struct opts {
	char host[256];
	char port[16];
	enum backend_mode mode;
	const char *name;
	uint64_t bytes;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: tlsplice-testbackend --listen HOST:PORT"
		   " --mode hello|echo|sink|source|reset|silent [--name NAME] [--bytes N]\n");
}

/* Splits "HOST:PORT" or "[V6]:PORT". */
static int split_hostport(const char *s, struct opts *o)
{
	const char *colon = strrchr(s, ':');
	const char *h = s;
	size_t hl;

	if (!colon || !colon[1] || strlen(colon + 1) >= sizeof(o->port))
		return -1;
	hl = (size_t)(colon - s);
	if (*s == '[') {
		if (hl < 2 || s[hl - 1] != ']')
			return -1;
		h = s + 1;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(o->host))
		return -1;
	memcpy(o->host, h, hl);
	o->host[hl] = '\0';
	strcpy(o->port, colon + 1);
	return 0;
}

static int parse_mode(const char *s, enum backend_mode *m)
{
	static const struct {
		const char *name;
		enum backend_mode mode;
	} modes[] = {
		{ "hello", BACKEND_HELLO }, { "echo", BACKEND_ECHO },
		{ "sink", BACKEND_SINK },   { "source", BACKEND_SOURCE },
		{ "reset", BACKEND_RESET }, { "silent", BACKEND_SILENT },
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(s, modes[i].name) == 0) {
			*m = modes[i].mode;
			return 0;
		}
	}
	return -1;
}

/* Returns 0, or 2 after printing a usage error. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "mode", required_argument, NULL, 'm' },
		{ "name", required_argument, NULL, 'n' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_listen = false, have_mode = false;
	char *end;
	int c;

	o->name = "backend";
	while ((c = getopt_long(argc, argv, "l:m:n:b:h", longopts, NULL)) != -1) {
		if (c == 'l' && split_hostport(optarg, o) == 0)
			have_listen = true;
		else if (c == 'm' && parse_mode(optarg, &o->mode) == 0)
			have_mode = true;
		else if (c == 'n')
			o->name = optarg;
		else if (c == 'b' && (o->bytes = strtoull(optarg, &end, 10), *optarg && !*end))
			continue;
		else if (c == 'h')
			return usage(stdout), exit(0), 0;
		else
			return usage(stderr), 2;
	}
	if (!have_listen || !have_mode || optind != argc)
		return usage(stderr), 2;
	return 0;
}

static int listen_socket(const struct opts *o)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res;
	int fd, one = 1, rc;

	rc = getaddrinfo(o->host, o->port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "tlsplice-testbackend: %s:%s: %s\n", o->host, o->port,
			gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
			fprintf(stderr, "tlsplice-testbackend: bind %s:%s: %s\n", o->host, o->port,
				strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

/* The bound address as HOST:PORT (the real port when 0 was asked for). */
static void print_ready(int fd, const struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char port[16] = "?";

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, port, sizeof(port),
			    NI_NUMERICSERV);
	if (strchr(o->host, ':'))
		printf("listening on [%s]:%s\n", o->host, port);
	else
		printf("listening on %s:%s\n", o->host, port);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct bcore core;
	sigset_t set;
	int lfd, sfd, rc;

	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* Signals arrive through signalfd so the loop can finish cleanly. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0 || (sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0)
		return 1;
	lfd = listen_socket(&o);
	if (lfd < 0)
		return 1;
	print_ready(lfd, &o);
	bcore_init(&core, o.mode, o.name, o.bytes);
	rc = bcore_run(&core, lfd, sfd) == 0 ? 0 : 1;
	bcore_finish(&core);
	close(lfd);
	close(sfd);
	return rc;
}
