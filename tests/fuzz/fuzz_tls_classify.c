/* Fuzz target: the OpenSSL-result classifier (tls_classify). A server SSL over memory BIOs,
 * with a certificate generated once, is fed the input as client bytes; every
 * SSL_do_handshake and SSL_read result is classified. The first input byte picks how the
 * bytes arrive (one chunk or two) and whether the stream then ends (EOF) or stalls; and
 * whether an in-process client first completes a real handshake (TLS 1.3, or 1.2), sends the
 * first chunk as application data and perhaps close_notify, so that the second chunk lands,
 * raw, in the record layer of an established connection. */
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

enum {
	MODE_SPLIT = 1,     /* the input arrives in two chunks */
	MODE_EOF = 2,       /* then the stream ends */
	MODE_CONNECTED = 4, /* a real client completes a handshake first */
	MODE_TLS12 = 8,     /* ... at TLS 1.2 */
	MODE_SHUTDOWN = 16, /* ... and sends close_notify after the first chunk */
};

static SSL_CTX *ctx, *client_ctx;

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
	client_ctx = SSL_CTX_new(TLS_client_method());
	if (client_ctx == NULL)
		abort();
	return 0;
}

static void bio_move(BIO *from, BIO *to)
{
	char buf[4096];
	int n;

	while ((n = BIO_read(from, buf, sizeof(buf))) > 0)
		BIO_write(to, buf, n);
}

/* Completes a handshake between srv and an in-process client, which it returns. */
static SSL *client_connect(SSL *srv, BIO *srbio, BIO *swbio, bool tls12)
{
	SSL *cl = SSL_new(client_ctx);
	BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());

	if (cl == NULL || r == NULL || w == NULL)
		abort();
	BIO_set_mem_eof_return(r, -1);
	SSL_set_bio(cl, r, w);
	SSL_set_connect_state(cl);
	if (tls12)
		SSL_set_max_proto_version(cl, TLS1_2_VERSION);
	for (int i = 0; i < 16 && !(SSL_is_init_finished(cl) && SSL_is_init_finished(srv)); i++) {
		SSL_do_handshake(cl);
		bio_move(w, srbio);
		SSL_do_handshake(srv);
		bio_move(swbio, r);
	}
	if (!SSL_is_init_finished(cl) || !SSL_is_init_finished(srv))
		abort();
	ERR_clear_error();
	return cl;
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
	case TLS_FATAL:
		if (strlen(err) == sizeof(err) - 1)
			abort(); /* no reason written over the filler */
				 /* fall through */
	case TLS_CLOSED:
		if (ERR_peek_error() != 0)
			abort(); /* the queue is left clean */
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
	SSL *ssl, *client = NULL;
	BIO *rbio, *wbio;
	size_t first;
	unsigned mode;

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	mode = data[0];
	data++, size--;
	first = mode & MODE_SPLIT ? size / 2 : size;
	ssl = SSL_new(ctx);
	rbio = BIO_new(BIO_s_mem());
	wbio = BIO_new(BIO_s_mem());
	if (ssl == NULL || rbio == NULL || wbio == NULL)
		abort();
	BIO_set_mem_eof_return(rbio, -1); /* empty: retry later, until drive() says otherwise */
	SSL_set_bio(ssl, rbio, wbio);
	SSL_set_accept_state(ssl);
	if (mode & MODE_CONNECTED) {
		client = client_connect(ssl, rbio, wbio, mode & MODE_TLS12);
		if (first > 0)
			SSL_write(client, data, (int)first);
		if (mode & MODE_SHUTDOWN)
			SSL_shutdown(client);
		bio_move(SSL_get_wbio(client), rbio);
		ERR_clear_error();
	} else if (first > 0) {
		BIO_write(rbio, data, (int)first);
	}
	drive(ssl, rbio, wbio, data + first, size - first, mode & MODE_EOF);
	SSL_free(client);
	SSL_free(ssl);
	ERR_clear_error();
	return 0;
}
