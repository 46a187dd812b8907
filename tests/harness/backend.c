/* In-process backends: the backend core (bcore.h) on a thread per backend, listening on
 * 127.0.0.1 and tracked by the test context (see harness.h). */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct backend {
	struct bcore core;
	int port;
	struct in_addr ip; /* 127.0.0.1 unless started with backend_start_on */
	char addr[32];
	int lfd;
	int wake[2];
	pthread_t th;
	bool running;
};

static void *backend_main(void *arg)
{
	struct backend *b = arg;

	if (bcore_run(&b->core, b->lfd, b->wake[0]) != 0)
		harness_log("backend on %d: its loop failed: %s", b->port, strerror(errno));
	return NULL;
}

static int listen_on(struct in_addr ip, int port, int *port_out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	socklen_t sl = sizeof(sa);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	sa.sin_addr = ip;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 512) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		harness_log("backend listen on %d: %s", port, strerror(errno));
		close(fd);
		return -1;
	}
	*port_out = ntohs(sa.sin_port);
	return fd;
}

int backend_restart(struct backend *b)
{
	if (b->running)
		return 0;
	b->lfd = listen_on(b->ip, b->port, &b->port);
	if (b->lfd < 0)
		return -1;
	if (pipe2(b->wake, O_CLOEXEC | O_NONBLOCK) != 0)
		goto err_listen;
	if (pthread_create(&b->th, NULL, backend_main, b) != 0)
		goto err_pipe;
	b->running = true;
	return 0;
err_pipe:
	close(b->wake[0]);
	close(b->wake[1]);
err_listen:
	close(b->lfd);
	return -1;
}

struct backend *backend_start(enum backend_mode mode, int port, const char *name, uint64_t bytes)
{
	return backend_start_on(mode, "127.0.0.1", port, name, bytes);
}

struct backend *backend_start_on(enum backend_mode mode, const char *ip, int port, const char *name,
				 uint64_t bytes)
{
	struct backend *b = calloc(1, sizeof(*b));

	if (!b || H.nbackends >= MAX_TRACKED || inet_pton(AF_INET, ip, &b->ip) != 1) {
		free(b);
		return NULL;
	}
	b->port = port;
	bcore_init(&b->core, mode, name, bytes);
	if (backend_restart(b) != 0) {
		bcore_finish(&b->core);
		free(b);
		return NULL;
	}
	snprintf(b->addr, sizeof(b->addr), "%s:%d", ip, b->port);
	H.backends[H.nbackends++] = b;
	return b;
}

int backend_port(const struct backend *b)
{
	return b->port;
}

const char *backend_addr(const struct backend *b)
{
	return b->addr;
}

void backend_get_stats(struct backend *b, struct backend_stats *out)
{
	bcore_get_stats(&b->core, out);
}

unsigned backend_accepted(struct backend *b)
{
	struct backend_stats st;

	backend_get_stats(b, &st);
	return st.accepted;
}

bool backend_wait_accepted(struct backend *b, unsigned n, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;

	while (backend_accepted(b) < n) {
		if (harness_now_ms() >= deadline)
			return false;
		harness_nap_ms(5);
	}
	return true;
}

bool backend_wait_idle(struct backend *b, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	struct backend_stats st;

	for (;;) {
		backend_get_stats(b, &st);
		if (st.active == 0)
			return true;
		if (harness_now_ms() >= deadline)
			return false;
		harness_nap_ms(5);
	}
}

void backend_stop(struct backend *b)
{
	if (!b->running)
		return;
	if (write(b->wake[1], "x", 1) != 1)
		harness_log("backend wake: %s", strerror(errno));
	pthread_join(b->th, NULL);
	close(b->wake[0]);
	close(b->wake[1]);
	close(b->lfd);
	b->running = false;
}

void backend_destroy(struct backend *b)
{
	size_t i;

	if (!b)
		return;
	backend_stop(b);
	for (i = 0; i < H.nbackends; i++)
		if (H.backends[i] == b)
			H.backends[i] = H.backends[--H.nbackends];
	bcore_finish(&b->core);
	free(b);
}
