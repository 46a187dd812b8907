/* Per-request timestamps of the load generator's rr mode (-T FILE): one line per request,
 * "START_US CONN LATENCY_US", START_US from the run's start. Shows whether slow requests
 * come alone (one connection left waiting) or together (the whole proxy stalled). */
#ifndef TLSPLICE_BENCH_TRACE_H
#define TLSPLICE_BENCH_TRACE_H

#include <stdint.h>

int trace_open(const char *path); /* 0, or -1 with errno */
void trace_add(uint64_t start_ns, unsigned conn, uint64_t latency_ns);
void trace_close(void);

#endif
