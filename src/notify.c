/* sd_notify in a few lines: one datagram per notification to the AF_UNIX socket named by
 * $NOTIFY_SOCKET ('@' for the abstract namespace). Socket activation: the descriptors from
 * SD_LISTEN_FDS_START (3) on, matched to listen lines by the address they are bound to. */
#include "tlsplice/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "tlsplice/clock.h"
#include "tlsplice/log.h"
#include "tlsplice/net.h"

#define LISTEN_FDS_START 3
#define LISTEN_FDS_MAX 256
#define NOTIFY_MAX 1024

struct passed {
	int fd;
	struct sockaddr_storage addr;
	socklen_t len;
	char name[64];
	bool used;
	bool upgrade; /* from the old process, not the service manager */
};

static struct passed passed[LISTEN_FDS_MAX];
static int npassed;

int notify_send(const char *fmt, ...)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char msg[NOTIFY_MAX];
	va_list ap;

	if (!path || !*path)
		return 0;
	size_t plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg)) {
		errno = EMSGSIZE;
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	ssize_t r = sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	int saved = errno;
	close(fd);
	errno = saved;
	return r == n ? 0 : -1;
}

int notify_reloading(void)
{
	return notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
			   (unsigned long long)clock_mono_us());
}

static void unset_listen_env(void)
{
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

/* The i-th name of a colon-separated list, "" where it has none. */
static void nth_name(const char *names, int i, char *out, size_t outlen)
{
	out[0] = '\0';
	for (; names && i > 0; i--) {
		names = strchr(names, ':');
		if (names)
			names++;
	}
	if (names)
		snprintf(out, outlen, "%.*s", (int)strcspn(names, ":"), names);
}

static int parse_count(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = s ? strtol(s, &end, 10) : -1;
	if (!s || errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int notify_listen_fds(char *err, size_t errlen)
{
	const char *spid = getenv("LISTEN_PID"), *sn = getenv("LISTEN_FDS");
	long pid, n;

	if (!spid || !sn)
		return 0;
	if (parse_count(spid, 1, 0x7fffffff, &pid) < 0 ||
	    parse_count(sn, 0, LISTEN_FDS_MAX, &n) < 0) {
		snprintf(err, errlen, "socket activation: bad LISTEN_PID or LISTEN_FDS");
		unset_listen_env();
		return -1;
	}
	if (pid != (long)getpid()) {
		unset_listen_env(); /* meant for another process */
		return 0;
	}
	const char *names = getenv("LISTEN_FDNAMES");
	for (int i = 0; i < n; i++) {
		struct passed *p = &passed[npassed];
		p->fd = LISTEN_FDS_START + i;
		p->len = sizeof(p->addr);
		nth_name(names, i, p->name, sizeof(p->name));
		if (getsockname(p->fd, (struct sockaddr *)&p->addr, &p->len) < 0) {
			snprintf(err, errlen, "socket activation: descriptor %d: %s", p->fd,
				 strerror(errno));
			unset_listen_env();
			return -1;
		}
		fcntl(p->fd, F_SETFD, FD_CLOEXEC);
		npassed++;
	}
	unset_listen_env();
	return npassed;
}

/* Several sockets may share one address (an old process's SO_REUSEPORT group, one per
 * worker): each taker gets a socket no one took yet while there is one, so every socket's
 * queue gets a worker; once all are taken they are shared. */
static struct passed *find_passed(const struct sockaddr *addr, socklen_t len)
{
	struct passed *shared = NULL;
	for (int i = 0; i < npassed; i++) {
		struct passed *p = &passed[i];
		if (p->fd < 0 || p->len != len || memcmp(&p->addr, addr, len) != 0)
			continue;
		if (!p->used)
			return p;
		if (!shared)
			shared = p;
	}
	return shared;
}

int notify_take_listener(const struct sockaddr *addr, socklen_t len, const char **name)
{
	struct passed *p = find_passed(addr, len);
	if (!p)
		return -1;
	int fd = fcntl(p->fd, F_DUPFD_CLOEXEC, LISTEN_FDS_START);
	if (fd < 0)
		return -1;
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (!p->used && addr->sa_family != AF_UNIX) {
		char text[128];
		net_addr_text(addr, text, sizeof(text));
		log_info("listen %s: socket passed by %s%s%s", text,
			 p->upgrade ? "the old process" : "the service manager",
			 p->name[0] ? ", named " : "", p->name);
	}
	p->used = true;
	if (name)
		*name = p->name;
	return fd;
}

int notify_add_passed(int fd)
{
	if (npassed == LISTEN_FDS_MAX) {
		errno = EMFILE;
		return -1;
	}
	struct passed *p = &passed[npassed];
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	p->upgrade = true;
	p->len = sizeof(p->addr);
	if (getsockname(fd, (struct sockaddr *)&p->addr, &p->len) < 0)
		return -1;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	npassed++;
	return 0;
}

void notify_drop_unused(void)
{
	char text[128];

	for (int i = 0; i < npassed; i++) {
		struct passed *p = &passed[i];
		if (p->used || p->fd < 0)
			continue;
		net_addr_text((struct sockaddr *)&p->addr, text, sizeof(text));
		log_warn("%s: descriptor %d (%s%s%s) matches no listen line; closed",
			 p->upgrade ? "upgrade" : "socket activation", p->fd, text,
			 p->name[0] ? ", named " : "", p->name);
		close(p->fd);
		p->fd = -1;
	}
}
