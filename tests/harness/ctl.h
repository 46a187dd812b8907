/* Clients of tlsplice's control socket for the tests: one answer ends with an empty line. */
#ifndef TLSPLICE_TEST_CTL_H
#define TLSPLICE_TEST_CTL_H

#include <stddef.h>

/* Connects to the Unix socket at path, retrying until it exists and accepts (bounded by
 * timeout_ms: the proxy creates it while starting). The fd, or -1. */
int ctl_open(const char *path, int timeout_ms);
/* Sends len bytes of text as they are (the caller adds the newline). 0 or -1. */
int ctl_send(int fd, const char *text, size_t len);
/* Reads one answer up to its empty line; malloc'd without that line, NULL if the peer
 * closed first or timeout_ms passed. *closed (may be NULL) says whether the peer closed. */
char *ctl_read_answer(int fd, int timeout_ms, int *closed);
/* ctl_open, the command plus a newline, ctl_read_answer, close. */
char *ctl_cmd(const char *path, const char *cmd);

#endif
