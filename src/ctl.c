/* The control client: one command out, one answer (up to its empty line) back. */
#include "tlsplice/ctl.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tlsplice/clock.h"
#include "tlsplice/control.h"
#include "tlsplice/errlist.h"

static int ctl_usage(void)
{
	fprintf(stderr,
		"usage: tlsplice ctl [-s PATH] COMMAND...   (default socket " CTL_DEFAULT_SOCKET
		"; 'tlsplice ctl help' lists the commands)\n");
	return 2;
}

/* The words of the command joined by spaces, with the newline; -1 if over the limit. */
static int join_words(int argc, char **argv, char *line, size_t cap)
{
	size_t len = 0;

	for (int i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]);
		if (len + n + 2 > cap || strchr(argv[i], '\n'))
			return -1;
		if (i)
			line[len++] = ' ';
		memcpy(line + len, argv[i], n);
		len += n;
	}
	line[len++] = '\n';
	line[len] = '\0';
	return (int)len;
}

static int ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char safe[256];

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "tlsplice ctl: socket path too long\n");
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "tlsplice ctl: cannot connect to %s: %s\n",
			errlist_escape(path, safe, sizeof(safe)), strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Reads until the answer's empty line, bounded in time; the answer (without that line)
 * goes to stdout. Returns the exit status. */
static int read_answer(int fd)
{
	char buf[65536];
	int64_t deadline = (int64_t)clock_mono_ms() + CTL_TIMEOUT_MS;
	char last[2] = { 0, 0 }; /* the last two bytes seen */
	bool first = true, is_error = false;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - (int64_t)clock_mono_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
			fprintf(stderr, "tlsplice ctl: no answer within %d s\n",
				CTL_TIMEOUT_MS / 1000);
			return 3;
		}
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr,
				"tlsplice ctl: connection closed before the answer ended\n");
			return 3;
		}
		if (first)
			is_error = n >= 6 && memcmp(buf, "error:", 6) == 0;
		first = false;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n' && last[1] == '\n') {
				fwrite(buf, 1, (size_t)i,
				       stdout); /* the final newline is the end mark */
				return is_error ? 1 : 0;
			}
			last[0] = last[1];
			last[1] = buf[i];
		}
		fwrite(buf, 1, (size_t)n, stdout);
	}
}

int ctl_main(int argc, char **argv)
{
	const char *path = CTL_DEFAULT_SOCKET;
	char line[CONTROL_LINE_MAX + 2];
	int ch;

	optind = 1;
	while ((ch = getopt(argc, argv, "+s:h")) != -1) {
		if (ch == 's')
			path = optarg;
		else
			return ctl_usage();
	}
	if (optind >= argc)
		return ctl_usage();
	int len = join_words(argc - optind, argv + optind, line, sizeof(line));
	if (len < 0) {
		fprintf(stderr, "tlsplice ctl: command longer than %d bytes\n", CONTROL_LINE_MAX);
		return 2;
	}
	int fd = ctl_connect(path);
	if (fd < 0)
		return 3;
	int rc = 3;
	if (send(fd, line, (size_t)len, MSG_NOSIGNAL) != len)
		fprintf(stderr, "tlsplice ctl: send: %s\n", strerror(errno));
	else
		rc = read_answer(fd);
	close(fd);
	return rc;
}
