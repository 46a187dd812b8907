/* Active health checks: one thread with its own event loop checks every server of the
 * backends with check != none and reports each result to the server (server.h). Created,
 * replaced on reload and destroyed by the main thread. */
#ifndef TLSPLICE_HEALTH_H
#define TLSPLICE_HEALTH_H

#include <stddef.h>

#include "tlsplice/pool.h"

struct health;

/* Starts active checks for every server of the pools whose backend has check != none:
 * first round at once, then every check_interval. NULL with errno on failure. */
struct health *health_create(struct pool *pools, size_t npools);
void health_destroy(struct health *h); /* stops the thread, closes check sockets; NULL ok */

#endif
