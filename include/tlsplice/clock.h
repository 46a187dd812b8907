/* The process's clocks, all monotonic (wall time is only for log timestamps): microseconds
 * for durations, milliseconds for deadlines and retry times, a coarse millisecond clock for
 * what runs per batch of bytes, and the one conversion to libevent's timeval. Inline, so the
 * connection path pays for the clock_gettime (vDSO) alone. Thread-safe, no state. */
#ifndef TLSPLICE_CLOCK_H
#define TLSPLICE_CLOCK_H

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

/* CLOCK_MONOTONIC in microseconds. */
static inline uint64_t clock_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* CLOCK_MONOTONIC in milliseconds: the same clock as clock_mono_us, so the two compare. */
static inline uint64_t clock_mono_ms(void)
{
	return clock_mono_us() / 1000u;
}

/* CLOCK_MONOTONIC_COARSE in milliseconds: read from memory the kernel updates, never from the
 * clock hardware, so no system call even where that is slow (hpet); a tick (1-4 ms) behind.
 * For idle timeouts; not to be compared with clock_mono_ms. */
static inline uint64_t clock_coarse_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A duration in milliseconds as the timeval libevent's timers take. */
static inline struct timeval clock_ms_to_tv(uint64_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000u),
			      .tv_usec = (suseconds_t)(ms % 1000u) * 1000 };
	return tv;
}

#endif
