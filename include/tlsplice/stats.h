/* Counters per frontend. Workers bump them with atomics, once per connection and never per
 * byte; the metrics endpoint reads them on the main thread. One fe_stats is shared by every
 * config generation that keeps its frontend (reference-counted), so a reload never resets a
 * counter. */
#ifndef TLSPLICE_STATS_H
#define TLSPLICE_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum hs_fail { HS_FAIL_PROTOCOL, HS_FAIL_TIMEOUT, HS_FAIL_CLOSED, HS_FAIL_MAX };
/* Why a connection's TLS did not go to the kernel in both directions: a cipher the kernel
 * does not take, the kernel refusing, or one direction only (e.g. TLS 1.3 receive with a
 * record already read by OpenSSL). */
enum ktls_fallback {
	KTLS_FALLBACK_CIPHER,
	KTLS_FALLBACK_KERNEL,
	KTLS_FALLBACK_PARTIAL,
	KTLS_FALLBACK_MAX
};
enum relay_kind { RELAY_KIND_SPLICE, RELAY_KIND_USERSPACE, RELAY_KIND_MIXED, RELAY_KIND_MAX };

struct fe_stats {
	atomic_int refs; /* generations that count into it */
	atomic_uint_fast64_t connections;
	atomic_long active;
	atomic_uint_fast64_t hs_failures[HS_FAIL_MAX];
	atomic_uint_fast64_t ktls_tx, ktls_rx;
	atomic_uint_fast64_t relay[RELAY_KIND_MAX];
	atomic_uint_fast64_t bytes_in, bytes_out;
	atomic_uint_fast64_t ktls_fallbacks[KTLS_FALLBACK_MAX];
	atomic_uint_fast64_t key_updates[2]; /* TLS 1.3 re-keys in the kernel: receive, send */
};

/* All counters zero, one reference; NULL when out of memory. Any thread. */
struct fe_stats *fe_stats_create(void);
struct fe_stats *fe_stats_ref(struct fe_stats *st);
void fe_stats_unref(struct fe_stats *st); /* NULL ok */
/* The counter at offsetof(struct fe_stats, field), read atomically: every counter is an
 * unsigned 64-bit total except active, a signed gauge. */
long long fe_stats_load(const struct fe_stats *st, size_t off);

#endif
