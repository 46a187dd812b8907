/* Dropping root after start-up: run as the configured user and group, keeping only the two
 * capabilities that reloads need (see privs.c). */
#ifndef TLSPLICE_PRIVS_H
#define TLSPLICE_PRIVS_H

#include <stddef.h>
#include <stdint.h>

/* The capabilities kept across the switch to a non-root user, as a bit mask:
 * CAP_DAC_READ_SEARCH (re-read root-only certificates, keys, ticket keys and the config)
 * and CAP_NET_BIND_SERVICE (bind new listeners below 1024). */
uint64_t privs_kept_caps(void);

/* Switches to user and group (either may be NULL; both NULL: nothing to do). Started as
 * root with a non-root user, the process keeps privs_kept_caps() (those of them it had) in
 * its effective, permitted and bounding sets and nothing else. Must run before any thread
 * starts: capabilities are per thread, and threads inherit them from this one.
 * 0, or -1 with the reason in err. */
int privs_drop(const char *user, const char *group, char *err, size_t errlen);

#endif
