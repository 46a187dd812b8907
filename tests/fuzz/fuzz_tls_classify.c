/* Fuzz target: the OpenSSL-result classifier (tls_classify). A server SSL over memory BIOs,
 * with a certificate generated once, is fed the input as client bytes; every
 * SSL_do_handshake and SSL_read result is classified. The first input byte picks how the
 * bytes arrive (one chunk or two) and whether the stream then ends (EOF) or stalls. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tlsplice/tls.h"

#define FUZZ_MAX_INPUT 65536
/* More calls than any input can justify: reaching it means a caller would spin. */
#define MAX_CALLS 4096

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static SSL_CTX *ctx;

/* A self-signed P-256 certificate for "fuzz.test", made once per process. */
static void ctx_create(void)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;

	ctx = SSL_CTX_new(TLS_server_method());
	if (pkey == NULL || x == NULL || ctx == NULL)
		abort();
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -86400);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, pkey);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz.test", -1,
				   -1, 0);
	X509_set_issuer_name(x, name);
	if (!X509_sign(x, pkey, EVP_sha256()) || !SSL_CTX_use_certificate(ctx, x) ||
	    !SSL_CTX_use_PrivateKey(ctx, pkey))
		abort();
	X509_free(x);
	EVP_PKEY_free(pkey);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	ctx_create();
	return 0;
}

/* Checks what the classifier promises; returns whether the caller may call again. */
static int classified(SSL *ssl, int ret, BIO *rbio)
{
	char err[128];
	enum tls_result r;

	memset(err, 'x', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	r = tls_classify(ssl, ret, err, sizeof(err));
	switch (r) {
	case TLS_OK:
		return 1;
	case TLS_WANT_READ:
		return BIO_ctrl_pending(rbio) > 0;
	case TLS_WANT_WRITE:
		return 1; /* the write BIO is memory: never full */
	case TLS_CLOSED:
	case TLS_FATAL:
		if (ERR_peek_error() != 0 || strlen(err) >= sizeof(err))
			abort(); /* the queue is left clean, and err is a string */
		return 0;
	}
	abort(); /* not one of the five results */
}

/* Drives the handshake, then reads, until the server has nothing left to do. When it waits
 * for bytes, it gets the rest of the input, then (if eof) the end of the stream. */
static void drive(SSL *ssl, BIO *rbio, BIO *wbio, const uint8_t *rest, size_t restlen, bool eof)
{
	char buf[4096];
	int calls = 0, more = 1;

	while (more) {
		int ret;

		if (++calls > MAX_CALLS)
			abort();
		if (!SSL_is_init_finished(ssl))
			ret = SSL_do_handshake(ssl);
		else
			ret = SSL_read(ssl, buf, sizeof(buf));
		(void)BIO_reset(wbio); /* what the server answers is not looked at */
		more = classified(ssl, ret, rbio);
		if (more || BIO_ctrl_pending(rbio) > 0 || !SSL_want_read(ssl))
			continue;
		if (restlen > 0) {
			BIO_write(rbio, rest, (int)restlen);
			restlen = 0;
			more = 1;
		} else if (eof) {
			BIO_set_mem_eof_return(rbio, 0);
			eof = false;
			more = 1;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	SSL *ssl;
	BIO *rbio, *wbio;
	size_t first;
	unsigned mode;

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	mode = data[0];
	data++, size--;
	first = mode & 1 ? size / 2 : size;
	ssl = SSL_new(ctx);
	rbio = BIO_new(BIO_s_mem());
	wbio = BIO_new(BIO_s_mem());
	if (ssl == NULL || rbio == NULL || wbio == NULL)
		abort();
	BIO_set_mem_eof_return(rbio, -1); /* empty: retry later, until drive() says otherwise */
	SSL_set_bio(ssl, rbio, wbio);
	SSL_set_accept_state(ssl);
	if (first > 0)
		BIO_write(rbio, data, (int)first);
	drive(ssl, rbio, wbio, data + first, size - first, mode & 2);
	SSL_free(ssl);
	ERR_clear_error();
	return 0;
}
