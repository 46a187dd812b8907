/* What the integration tests read about a running proxy from /proc (memory, CPU, descriptors,
 * limits), and plain TCP clients for the metrics port. */
#ifndef TLSPLICE_TEST_HARNESS_PROC_H
#define TLSPLICE_TEST_HARNESS_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* VmRSS of pid in KiB, -1 if unreadable. */
long proc_rss_kib(pid_t pid);
/* User plus system CPU time of pid (all threads) in ms, -1 if unreadable. */
long proc_cpu_ms(pid_t pid);
/* Open descriptors of pid that are sockets, -1 if unreadable. */
int proc_count_sockets(pid_t pid);
/* Soft and hard "Max open files" of pid (from /proc/PID/limits). 0 or -1. */
int proc_nofile(pid_t pid, long *soft, long *hard);

/* Non-blocking TCP connect to 127.0.0.1:port, bounded by timeout_ms; the fd or -1. */
int raw_connect(int port, int timeout_ms);
/* Writes all of buf within timeout_ms: 0, or -1 with errno (EPIPE/ECONNRESET once the peer
 * closed, ETIMEDOUT). */
int raw_write_all(int fd, const void *buf, size_t len, int timeout_ms);
/* Reads until EOF, reset or timeout into buf (NUL-terminated, at most cap - 1 bytes kept).
 * Returns the bytes kept; *closed says whether the peer ended the connection (EOF or reset)
 * before the deadline. */
size_t raw_read_until_close(int fd, char *buf, size_t cap, int timeout_ms, int *closed);
/* True if the peer has closed fd (EOF or reset pending), false if it is still open; waits at
 * most timeout_ms for that to show. */
int raw_peer_closed(int fd, int timeout_ms);

#endif
