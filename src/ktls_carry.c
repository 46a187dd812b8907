/* The TLS 1.3 traffic secrets of a connection as a fixed-size text, so that a binary upgrade
 * can move a connection that follows KeyUpdates in the kernel without losing them.
 *
 * The text crosses a process boundary (a private socketpair the new process inherited), and
 * is read as any outside input: exactly one length, hex digits only, a known format version
 * and suite, a secret length that is the suite's hash length, unused bytes zero, flags that
 * make sense together. Every buffer that held a secret is wiped before it is left. */
#include "tlsplice/ktls.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ktls_internal.h"

#define CARRY_VERSION 1
#define SECRET_MAX 48 /* SHA-384, the longest TLS 1.3 hash */
#define FLAG_TX_OK 1
#define FLAG_ANSWER 2

/* Offsets in the binary form; KTLS_KEYS_BLOB_LEN is where it ends. */
enum {
	OFF_VERSION = 0,
	OFF_SUITE = 1, /* 2 bytes */
	OFF_LEN = 3,
	OFF_FLAGS = 4,
	OFF_RX = 5,
	OFF_TX = OFF_RX + SECRET_MAX,
	OFF_EVERY = OFF_TX + SECRET_MAX, /* 8 bytes each from here, big-endian */
	OFF_NEXT = OFF_EVERY + 8,
	OFF_COUNT_RX = OFF_NEXT + 8, /* 4 bytes each */
	OFF_COUNT_TX = OFF_COUNT_RX + 4,
	OFF_END = OFF_COUNT_TX + 4,
};

_Static_assert(OFF_END == KTLS_KEYS_BLOB_LEN, "KTLS_KEYS_BLOB_LEN is the layout's size");

static void put_be(unsigned char *p, uint64_t v, size_t n)
{
	for (size_t i = n; i-- > 0; v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t get_be(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* The suite's hash: what ktls_keys_take got from the handshake's cipher. */
static const EVP_MD *suite_md(const struct ktls_suite *su)
{
	return su->id == 0x1302 ? EVP_sha384() : EVP_sha256();
}

int ktls_keys_export(const struct ktls_keys *k, char *out, size_t cap)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char b[KTLS_KEYS_BLOB_LEN];

	if (k == NULL || k->su == NULL || k->len == 0 || k->len > SECRET_MAX ||
	    cap <= KTLS_KEYS_TEXT_LEN) {
		errno = EINVAL;
		return -1;
	}
	memset(b, 0, sizeof(b));
	b[OFF_VERSION] = CARRY_VERSION;
	put_be(b + OFF_SUITE, k->su->id, 2);
	b[OFF_LEN] = (unsigned char)k->len;
	b[OFF_FLAGS] = (k->tx_ok ? FLAG_TX_OK : 0) | (k->tx_ok && k->answer ? FLAG_ANSWER : 0);
	memcpy(b + OFF_RX, k->rx, k->len);
	if (k->tx_ok)
		memcpy(b + OFF_TX, k->tx, k->len);
	put_be(b + OFF_EVERY, k->tx_ok ? k->every : 0, 8);
	put_be(b + OFF_NEXT, k->next, 8);
	put_be(b + OFF_COUNT_RX, k->counts[0], 4);
	put_be(b + OFF_COUNT_TX, k->counts[1], 4);
	for (size_t i = 0; i < sizeof(b); i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[KTLS_KEYS_TEXT_LEN] = '\0';
	OPENSSL_cleanse(b, sizeof(b));
	return 0;
}

/* Exactly KTLS_KEYS_TEXT_LEN hex digits into b; -1 on anything else. */
static int unhex(const char *text, size_t len, unsigned char *b)
{
	if (len != KTLS_KEYS_TEXT_LEN)
		return -1;
	for (size_t i = 0; i < KTLS_KEYS_BLOB_LEN; i++) {
		int hi = OPENSSL_hexchar2int((unsigned char)text[2 * i]);
		int lo = OPENSSL_hexchar2int((unsigned char)text[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		b[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	unsigned char acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* Whether b is a blob that ktls_keys_export can have written. */
static bool blob_valid(const unsigned char *b)
{
	const struct ktls_suite *su = ktls_suite_by_id((uint16_t)get_be(b + OFF_SUITE, 2));
	size_t len = b[OFF_LEN];
	unsigned flags = b[OFF_FLAGS];
	bool tx_ok = flags & FLAG_TX_OK;

	if (b[OFF_VERSION] != CARRY_VERSION || su == NULL ||
	    len != (size_t)EVP_MD_get_size(suite_md(su)) || len > SECRET_MAX)
		return false;
	if ((flags & ~(FLAG_TX_OK | FLAG_ANSWER)) != 0 || ((flags & FLAG_ANSWER) && !tx_ok))
		return false;
	if (!all_zero(b + OFF_RX + len, SECRET_MAX - len))
		return false;
	if (!all_zero(b + OFF_TX + (tx_ok ? len : 0), SECRET_MAX - (tx_ok ? len : 0)))
		return false;
	return tx_ok || get_be(b + OFF_EVERY, 8) == 0;
}

struct ktls_keys *ktls_keys_import(const char *text, size_t len)
{
	unsigned char b[KTLS_KEYS_BLOB_LEN];
	struct ktls_keys *k = NULL;
	int err = EINVAL;

	if (text == NULL || unhex(text, len, b) < 0 || !blob_valid(b))
		goto cleanup;
	k = OPENSSL_zalloc(sizeof(*k));
	if (k == NULL) {
		err = ENOMEM;
		goto cleanup;
	}
	k->su = ktls_suite_by_id((uint16_t)get_be(b + OFF_SUITE, 2));
	k->md = suite_md(k->su);
	k->len = b[OFF_LEN];
	k->tx_ok = b[OFF_FLAGS] & FLAG_TX_OK;
	k->answer = b[OFF_FLAGS] & FLAG_ANSWER;
	memcpy(k->rx, b + OFF_RX, k->len);
	memcpy(k->tx, b + OFF_TX, k->len);
	k->every = get_be(b + OFF_EVERY, 8);
	k->next = get_be(b + OFF_NEXT, 8);
	k->counts[0] = (unsigned)get_be(b + OFF_COUNT_RX, 4);
	k->counts[1] = (unsigned)get_be(b + OFF_COUNT_TX, 4);
cleanup:
	OPENSSL_cleanse(b, sizeof(b));
	if (k == NULL)
		errno = err;
	return k;
}
