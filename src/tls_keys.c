/* The ticket_keys file format, parsed from a buffer so that it can be tested and fuzzed
 * without files: one key per line, base64 of 80 bytes; '#' starts a comment. */
#include "tlsplice/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

/* Base64 of one key: 80 bytes are 27 groups of 4 characters, the last one padded. */
#define KEY_B64_LEN (((sizeof(struct tls_ticket_key) + 2) / 3) * 4)

/* The key text of a line: up to '#' or '\r', without trailing blanks. */
static size_t key_text_len(const char *line, size_t len)
{
	size_t n = 0;

	while (n < len && line[n] != '#' && line[n] != '\r')
		n++;
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	return n;
}

/* Decodes one line of exactly KEY_B64_LEN characters into k; -1 if it is not one key. The
 * length is checked before decoding, so the decoder never writes past raw. */
static int key_decode(const char *text, size_t len, struct tls_ticket_key *k)
{
	unsigned char raw[KEY_B64_LEN / 4 * 3];
	int n, rc = -1;

	if (len != KEY_B64_LEN || memchr(text, '\0', len) != NULL)
		return -1;
	n = EVP_DecodeBlock(raw, (const unsigned char *)text, (int)len);
	if (n >= 2 && text[len - 1] == '=')
		n -= text[len - 2] == '=' ? 2 : 1;
	if (n == (int)sizeof(*k)) {
		memcpy(k, raw, sizeof(*k));
		rc = 0;
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	return rc;
}

/* Appends k to *keys; -1 when memory runs out (*keys is then still valid). */
static int key_append(struct tls_ticket_key **keys, size_t *nkeys, const struct tls_ticket_key *k)
{
	struct tls_ticket_key *grown = calloc(*nkeys + 1, sizeof(*grown));

	/* a fresh copy rather than realloc, so no stale key bytes are left behind in freed memory */
	if (grown == NULL)
		return -1;
	if (*nkeys > 0)
		memcpy(grown, *keys, *nkeys * sizeof(*grown));
	grown[*nkeys] = *k;
	tls_keys_free(*keys, *nkeys);
	*keys = grown;
	(*nkeys)++;
	return 0;
}

int tls_keys_parse(const char *text, size_t len, struct tls_ticket_key **keys, size_t *nkeys,
		   char *why, size_t whylen)
{
	struct tls_ticket_key k;
	size_t pos = 0;
	int lineno = 0, rc = 0;

	*keys = NULL;
	*nkeys = 0;
	while (pos < len && rc == 0) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t linelen = nl ? (size_t)(nl - line) : len - pos;
		size_t keylen = key_text_len(line, linelen);

		pos += linelen + (nl != NULL);
		lineno++;
		if (keylen == 0)
			continue;
		if (key_decode(line, keylen, &k) < 0) {
			snprintf(why, whylen, "line %d: expected base64 of %zu bytes", lineno,
				 sizeof(k));
			rc = -1;
		} else if (key_append(keys, nkeys, &k) < 0) {
			snprintf(why, whylen, "out of memory");
			rc = -1;
		}
	}
	OPENSSL_cleanse(&k, sizeof(k));
	if (rc == 0 && *nkeys == 0) {
		snprintf(why, whylen, "holds no key");
		rc = -1;
	}
	if (rc < 0) {
		tls_keys_free(*keys, *nkeys);
		*keys = NULL;
		*nkeys = 0;
	}
	return rc;
}

void tls_keys_free(struct tls_ticket_key *keys, size_t nkeys)
{
	if (keys == NULL)
		return;
	OPENSSL_cleanse(keys, nkeys * sizeof(*keys));
	free(keys);
}
