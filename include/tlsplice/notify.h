/* systemd integration without libsystemd: the sd_notify datagram protocol (READY=1,
 * RELOADING=1, STOPPING=1, STATUS=, MAINPID=) and the listening sockets of socket activation
 * (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES). Without NOTIFY_SOCKET or LISTEN_FDS both do
 * nothing. notify_send may be called from any thread; the listener table is filled once on
 * the main thread before any worker starts, and read-only afterwards. */
#ifndef TLSPLICE_NOTIFY_H
#define TLSPLICE_NOTIFY_H

#include <stdbool.h>
#include <sys/socket.h>

/* Sends one notification (lines "KEY=VALUE" joined by '\n') to $NOTIFY_SOCKET. 0 when sent
 * or when there is no NOTIFY_SOCKET; -1 with errno if sending failed. */
int notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* RELOADING=1 with MONOTONIC_USEC (the clock systemd compares). */
int notify_reloading(void);

/* Takes the sockets systemd passed to this process (LISTEN_PID must be ours) and removes
 * the LISTEN_* variables, so a process started later does not take them too. Returns the
 * number taken; -1 if the variables are malformed (err says why). */
int notify_listen_fds(char *err, size_t errlen);
/* A new descriptor (dup, non-blocking, close-on-exec) of the passed socket listening on
 * addr, or -1 if none was passed for it. name: its LISTEN_FDNAMES entry ("" if none). */
int notify_take_listener(const struct sockaddr *addr, socklen_t len, const char **name);
/* Adds a listening socket passed by the old process of an upgrade (main thread, before the
 * listeners are made). 0 or -1. */
int notify_add_passed(int fd);
/* Passed sockets that no listen line matched: logged and closed (main thread, at start). */
void notify_drop_unused(void);

#endif
