/* The fixture of test_ktls_proxy: the proxy with one backend of each kind behind SNI routes,
 * TLS clients for it, and the kernel's tls_stat counters. Criterion asserts: call from a test. */
#ifndef TLSPLICE_KTLS_FIXTURE_H
#define TLSPLICE_KTLS_FIXTURE_H

#include <stdint.h>

#include "harness.h"
#include "tls_stat.h"

#define KIB 1024u
#define MIB (1024u * 1024u)
#define WORKERS 2

struct fx {
	struct proxy *p;
	int port;
	const char *log;
	struct backend *echo, *sink, *source, *reset, *endless;
};

#define SOURCE_BYTES (1 * MIB + 3)
#define RESET_BYTES (4 * MIB)
/* A source that runs far longer than any case: the client resets in the middle of it. */
#define ENDLESS_BYTES (1024 * (uint64_t)MIB)

/* Sessions installed since `before` must be exactly tx/rx; no record ever failed to decrypt. */
void expect_sessions(const struct tls_stats *before, long tx, long rx);
/* Skips the case unless this kernel has kTLS both ways, as the proxy itself sees it. */
void need_ktls(void);
/* The proxy with the fixture's backends; fe_extra adds lines to the frontend. */
void fx_start(struct fx *f, const char *global_extra);
void fx_start_fe(struct fx *f, const char *global_extra, const char *fe_extra);
/* A TLS client of the given version and cipher (NULL: default) for sni. */
struct tlsc *fx_connect(const struct fx *f, int version, const char *cipher, const char *sni);

#endif
