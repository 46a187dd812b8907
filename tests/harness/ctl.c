/* Control socket clients for the tests (ctl.h). */
#include "ctl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

int ctl_open(const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t end = harness_now_ms() + timeout_ms;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	do {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	} while (harness_now_ms() < end);
	fprintf(stderr, "harness: cannot connect to %s\n", path);
	return -1;
}

int ctl_send(int fd, const char *text, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, text, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		text += n;
		len -= (size_t)n;
	}
	return 0;
}

char *ctl_read_answer(int fd, int timeout_ms, int *closed)
{
	int64_t end = harness_now_ms() + timeout_ms;
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	if (closed)
		*closed = 0;
	while (buf) {
		/* read one byte at a time: what follows the answer stays in the socket */
		if ((len >= 2 && buf[len - 1] == '\n' && buf[len - 2] == '\n') ||
		    (len == 1 && buf[0] == '\n')) {
			buf[len - 1] = '\0';
			return buf;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = end - harness_now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		if (len + 2 > cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, 1);
		if (n <= 0) {
			if (closed)
				*closed = 1;
			break;
		}
		len += (size_t)n;
	}
	free(buf);
	return NULL;
}

char *ctl_cmd(const char *path, const char *cmd)
{
	int fd = ctl_open(path, HARNESS_TIMEOUT_MS);
	char *answer = NULL;

	if (fd < 0)
		return NULL;
	if (ctl_send(fd, cmd, strlen(cmd)) == 0 && ctl_send(fd, "\n", 1) == 0)
		answer = ctl_read_answer(fd, HARNESS_TIMEOUT_MS, NULL);
	close(fd);
	return answer;
}
