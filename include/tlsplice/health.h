/* Server health: the up/down state machine fed by active checks and by live connects,
 * and the thread that runs active checks on its own event loop. */
#ifndef TLSPLICE_HEALTH_H
#define TLSPLICE_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsplice/pool.h"

/* Feeds one result into s's state machine: until the first result a server is up and the
 * first result decides at once; then check_rise successes mark it up and check_fall failures
 * mark it down. live: the result comes from client traffic (passive), not a check.
 * Logs every state change once. Thread-safe (atomics). Returns true if the state changed. */
bool health_report(struct server *s, bool ok, bool live, const char *reason, uint64_t now_ms);

/* A local resource error (net_error_is_local) met while connecting to s: logged (at most
 * once a second), never counted and never a state change. what: "check", "connect". */
void health_report_local(const struct server *s, const char *what, const char *reason);

struct health;

/* Starts active checks for every server of the pools whose backend has check != none:
 * first round at once, then every check_interval. NULL with errno on failure. */
struct health *health_create(struct pool *pools, size_t npools);
void health_destroy(struct health *h); /* stops the thread, closes check sockets; NULL ok */

#endif
