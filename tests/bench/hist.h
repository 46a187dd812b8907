/* The latency histogram of the load generator: 100 ns buckets up to 200 ms, then one overflow
 * count; percentiles from the buckets, mean and maximum exact. One per process, one thread. */
#ifndef TLSPLICE_BENCH_HIST_H
#define TLSPLICE_BENCH_HIST_H

#include <stdint.h>

int hist_init(void);        /* 0, or -1 when the buckets cannot be had */
void hist_add(uint64_t ns); /* one latency */
double hist_pct(double p);  /* the p-quantile (0..1) in microseconds; 0 when empty */
double hist_max_us(void);
double hist_mean_us(void);

#endif
