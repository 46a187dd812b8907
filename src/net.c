/* Socket helpers: no logging, errors go to the caller's buffer. */
#include "tlsplice/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int net_listen(const struct sockaddr *addr, socklen_t len, bool reuseport, char *err, size_t errlen)
{
	char text[128];
	int one = 1;
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto err;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto err_close;
	if (addr->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, addr, len) < 0 || listen(fd, 4096) < 0)
		goto err_close;
	return fd;
err_close:;
	int saved = errno;
	close(fd);
	errno = saved;
err:
	net_addr_text(addr, text, sizeof(text));
	snprintf(err, errlen, "cannot listen on %s: %s", text, strerror(errno));
	return -1;
}

int net_check_free(const struct sockaddr *addr, socklen_t len, char *err, size_t errlen)
{
	char text[128];
	int one = 1;
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0; /* net_listen will say what is wrong */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	int r = bind(fd, addr, len);
	int saved = errno;
	close(fd);
	if (r == 0 || saved != EADDRINUSE)
		return 0;
	net_addr_text(addr, text, sizeof(text));
	snprintf(err, errlen, "cannot listen on %s: %s (another process listens there)", text,
		 strerror(saved));
	errno = saved;
	return -1;
}

int net_connect(const struct sockaddr *addr, socklen_t len, int *fd_out, char *err, size_t errlen)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int saved = errno;
		snprintf(err, errlen, "socket: %s", strerror(saved));
		errno = saved;
		return -1;
	}
	if (connect(fd, addr, len) < 0 && errno != EINPROGRESS) {
		int saved = errno;
		snprintf(err, errlen, "%s", strerror(errno));
		close(fd);
		errno = saved;
		return -1;
	}
	*fd_out = fd;
	return 0;
}

int net_socket_error(int fd)
{
	int e = 0;
	socklen_t l = sizeof(e);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
		return errno;
	return e;
}

void net_set_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void net_addr_text(const struct sockaddr *addr, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(out, outlen, "%s:%u", host, ntohs(a->sin_port));
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(out, outlen, "[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		snprintf(out, outlen, "?");
	}
}

bool net_error_is_local(int err)
{
	switch (err) {
	case EMFILE:  /* our fd limit */
	case ENFILE:  /* the system's fd limit */
	case ENOBUFS: /* kernel socket memory */
	case ENOMEM:
	case EADDRNOTAVAIL: /* no free ephemeral port (connect() binds one) */
		return true;
	default:
		return false;
	}
}

/* A socket file left by a process that is gone answers connect with ECONNREFUSED: only that
 * one is removed. A live socket, or anything that is not a socket, is left alone. */
static int unix_clear_stale(const struct sockaddr_un *sa, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(sa->sun_path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot listen on %s: %s", sa->sun_path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "cannot listen on %s: exists and is not a socket",
			 sa->sun_path);
		errno = EEXIST;
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r = fd < 0 ? -1 : connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	int saved = errno;
	if (fd >= 0)
		close(fd);
	if (r == 0) {
		snprintf(err, errlen, "cannot listen on %s: another process listens there",
			 sa->sun_path);
		errno = EADDRINUSE;
		return -1;
	}
	if (saved == ECONNREFUSED && unlink(sa->sun_path) == 0)
		return 0;
	if (saved == ECONNREFUSED)
		saved = errno;
	snprintf(err, errlen, "cannot listen on %s: %s", sa->sun_path, strerror(saved));
	errno = saved;
	return -1;
}

int net_listen_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "cannot listen on %s: path too long", path);
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (unix_clear_stale(&sa, err, errlen) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto err;
	mode_t old = umask(0177); /* 0600 from the start: no window with a wider mode */
	int r = bind(fd, (const struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 64) < 0)
		goto err;
	return fd;
err:;
	int saved = errno;
	if (fd >= 0)
		close(fd);
	snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(saved));
	errno = saved;
	return -1;
}
