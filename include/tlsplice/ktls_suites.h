/* Which cipher suites this kernel can take over from tlsplice, for the start-up log and -V:
 * each AEAD tlsplice hands to the kernel (AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305),
 * probed in TLS 1.2 and TLS 1.3, sending and receiving, by installing a throw-away key on a
 * loopback connection. Probed once, on first use; thread-safe after that. */
#ifndef TLSPLICE_KTLS_SUITES_H
#define TLSPLICE_KTLS_SUITES_H

#include <stddef.h>

enum ktls_aead {
	KTLS_AEAD_AES128_GCM,
	KTLS_AEAD_AES256_GCM,
	KTLS_AEAD_CHACHA20_POLY1305,
	KTLS_AEAD_N,
};

/* What the kernel took: per TLS version (0: TLS 1.2, 1: TLS 1.3) and AEAD, KTLS_TX|KTLS_RX. */
struct ktls_suites {
	int dirs[2][KTLS_AEAD_N];
};

/* The suites the kernel offloads, e.g. "TLS 1.3 TLS_AES_128_GCM_SHA256, ...; TLS 1.2 with
 * AES-128-GCM, ...", a suite that goes one way only marked "(send only)" or "(receive
 * only)"; "none" where the kernel takes no key (or has no kTLS at all). */
const char *ktls_suites_describe(void);

/* The text above for a given probe result (NULL: the kernel has no kTLS at all); exposed
 * for tests. */
void ktls_suites_format(const struct ktls_suites *s, char *out, size_t outlen);

#endif
