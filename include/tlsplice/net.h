/* Socket helpers. They never log: failures fill the caller's error buffer and keep errno. */
#ifndef TLSPLICE_NET_H
#define TLSPLICE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* A non-blocking listening socket bound to addr (SO_REUSEADDR, and SO_REUSEPORT if asked). */
int net_listen(const struct sockaddr *addr, socklen_t len, bool reuseport, char *err,
	       size_t errlen);
/* Fails with EADDRINUSE when another socket already listens on addr, SO_REUSEPORT or not:
 * binding our own SO_REUSEPORT sockets would then silently share its connections. */
int net_check_free(const struct sockaddr *addr, socklen_t len, char *err, size_t errlen);
/* Starts a non-blocking connect; 0 when connected or in progress, -1 on immediate failure
 * with errno kept (net_error_is_local tells whether the server is to blame). */
int net_connect(const struct sockaddr *addr, socklen_t len, int *fd_out, char *err, size_t errlen);
/* The pending error of a socket whose non-blocking connect finished (0: connected). */
int net_socket_error(int fd);
void net_set_nodelay(int fd);
/* True for errors that are the proxy's own shortage (fds, socket memory, ephemeral ports),
 * which say nothing about the peer: they must never count against a server. */
bool net_error_is_local(int err);
/* A non-blocking Unix stream socket listening at path, mode 0600. A stale socket file (no
 * process behind it) is replaced; a live one or another kind of file is an error. */
int net_listen_unix(const char *path, char *err, size_t errlen);
/* "HOST:PORT" / "[V6]:PORT" text of an address. */
void net_addr_text(const struct sockaddr *addr, char *out, size_t outlen);

#endif
