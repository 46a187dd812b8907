/* What ktls.c and ktls_carry.c share: the TLS 1.3 suites the kernel takes and the secrets kept
 * to follow KeyUpdates. Private to those two files. */
#ifndef TLSPLICE_KTLS_INTERNAL_H
#define TLSPLICE_KTLS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>

/* A TLS 1.3 suite the kernel takes, and the shape of its key material. */
struct ktls_suite {
	uint16_t id;
	uint16_t cipher_type;
	size_t keylen;
	size_t saltlen; /* leading bytes of the 12-byte IV that the kernel calls salt */
};

/* The current traffic secret per direction, for following KeyUpdates in the kernel. */
struct ktls_keys {
	const struct ktls_suite *su;
	const EVP_MD *md;
	size_t len; /* of each secret: the suite's hash length */
	unsigned char rx[EVP_MAX_MD_SIZE], tx[EVP_MAX_MD_SIZE];
	bool tx_ok;         /* tx holds the kernel's current send key */
	bool answer;        /* the client asked for our KeyUpdate: owed before more data */
	uint64_t every;     /* key_update_bytes; 0: only when asked */
	uint64_t next;      /* bytes sent at which our own re-key is due */
	unsigned counts[2]; /* re-keys done: receive, send */
};

/* The suite with TLS 1.3 cipher-suite id `id`; NULL if the kernel path does not take it. */
const struct ktls_suite *ktls_suite_by_id(uint16_t id);

#endif
