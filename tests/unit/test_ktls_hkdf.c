/* The TLS 1.3 record key/IV derivation behind the kernel receive-key install, checked against
 * the RFC 8448 "Simple 1-RTT Handshake" trace (TLS_AES_128_GCM_SHA256) and, for SHA-384,
 * against OpenSSL's own TLS13-KDF. Needs no kernel TLS. */
#include <criterion/criterion.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "tlsplice/ktls.h"

/* Hex with optional spaces into out; returns the byte count. */
static size_t unhex(const char *hex, unsigned char *out, size_t cap)
{
	size_t n = 0;
	int hi = -1, v;

	for (; *hex != '\0'; hex++) {
		if (*hex == ' ')
			continue;
		v = OPENSSL_hexchar2int((unsigned char)*hex);
		cr_assert_geq(v, 0, "bad hex digit '%c'", *hex);
		if (hi < 0) {
			hi = v;
			continue;
		}
		cr_assert_lt(n, cap);
		out[n++] = (unsigned char)(hi << 4 | v);
		hi = -1;
	}
	cr_assert_eq(hi, -1, "odd number of hex digits");
	return n;
}

/* Derives "key" (16 bytes) and "iv" (12 bytes) from a SHA-256 secret and compares. */
static void check_key_iv(const char *secret_hex, const char *key_hex, const char *iv_hex)
{
	unsigned char secret[32], want_key[16], want_iv[12], key[16], iv[12];

	cr_assert_eq(unhex(secret_hex, secret, sizeof(secret)), sizeof(secret));
	cr_assert_eq(unhex(key_hex, want_key, sizeof(want_key)), sizeof(want_key));
	cr_assert_eq(unhex(iv_hex, want_iv, sizeof(want_iv)), sizeof(want_iv));
	cr_assert_eq(
		ktls_expand_label(EVP_sha256(), secret, sizeof(secret), "key", key, sizeof(key)),
		0);
	cr_assert_eq(ktls_expand_label(EVP_sha256(), secret, sizeof(secret), "iv", iv, sizeof(iv)),
		     0);
	cr_assert_arr_eq(key, want_key, sizeof(key), "key differs from RFC 8448");
	cr_assert_arr_eq(iv, want_iv, sizeof(iv), "iv differs from RFC 8448");
}

Test(ktls_hkdf, rfc8448_client_application_traffic)
{
	check_key_iv("9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52"
		     "87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5",
		     "17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51",
		     "5b 78 92 3d ee 08 57 90 33 e5 23 d9");
}

Test(ktls_hkdf, rfc8448_server_application_traffic)
{
	check_key_iv("a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32"
		     "82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43",
		     "9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56",
		     "cf 78 2b 88 dd 83 54 9a ad f1 e9 84");
}

Test(ktls_hkdf, rfc8448_client_handshake_traffic)
{
	check_key_iv("b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f"
		     "3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21",
		     "db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01",
		     "5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f");
}

Test(ktls_hkdf, rfc8448_server_handshake_traffic)
{
	check_key_iv("b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4"
		     "e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38",
		     "3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc",
		     "5d 31 3e b2 67 12 76 ee 13 00 0b 30");
}

/* OpenSSL's TLS13-KDF (the one its record layer uses) in expand-only mode. */
static void openssl_expand_label(const char *digest, const unsigned char *secret, size_t slen,
				 const char *label, unsigned char *out, size_t outlen)
{
	static const char prefix[] = "tls13 ";
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
		OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)digest, 0),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, slen),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, (void *)prefix,
						  sizeof(prefix) - 1),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, (void *)label,
						  strlen(label)),
		OSSL_PARAM_construct_end(),
	};
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS13-KDF", NULL);
	EVP_KDF_CTX *kctx;

	cr_assert_not_null(kdf);
	kctx = EVP_KDF_CTX_new(kdf);
	cr_assert_not_null(kctx);
	cr_assert_gt(EVP_KDF_derive(kctx, out, outlen, params), 0);
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
}

/* TLS_AES_256_GCM_SHA384: 48-byte secret, SHA-384, 32-byte key; RFC 8448 has no such trace. */
Test(ktls_hkdf, sha384_matches_openssl_tls13_kdf)
{
	unsigned char secret[48], key[32], iv[12], want_key[32], want_iv[12];
	size_t i;

	for (i = 0; i < sizeof(secret); i++)
		secret[i] = (unsigned char)(i * 7 + 3);
	cr_assert_eq(
		ktls_expand_label(EVP_sha384(), secret, sizeof(secret), "key", key, sizeof(key)),
		0);
	cr_assert_eq(ktls_expand_label(EVP_sha384(), secret, sizeof(secret), "iv", iv, sizeof(iv)),
		     0);
	openssl_expand_label("SHA384", secret, sizeof(secret), "key", want_key, sizeof(want_key));
	openssl_expand_label("SHA384", secret, sizeof(secret), "iv", want_iv, sizeof(want_iv));
	cr_assert_arr_eq(key, want_key, sizeof(key));
	cr_assert_arr_eq(iv, want_iv, sizeof(iv));
	/* The output length is part of the label: a 16-byte key is not a prefix of the 32. */
	cr_assert_eq(ktls_expand_label(EVP_sha384(), secret, sizeof(secret), "key", want_key, 16),
		     0);
	cr_assert_arr_neq(key, want_key, 16);
}

Test(ktls_hkdf, rejects_bad_arguments)
{
	unsigned char secret[32] = { 1 }, out[16];
	char label[260];

	memset(label, 'a', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	cr_assert_eq(
		ktls_expand_label(EVP_sha256(), secret, sizeof(secret), label, out, sizeof(out)),
		-1);
	cr_assert_eq(ktls_expand_label(NULL, secret, sizeof(secret), "key", out, sizeof(out)), -1);
}
