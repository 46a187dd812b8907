/* TLS contexts for a frontend and the classifier of OpenSSL results. */
#include "tlsplice/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "tlsplice/ktls.h"

struct tls_cert {
	SSL_CTX *ctx;
	X509 *leaf;        /* owned by ctx */
	int64_t not_after; /* the leaf's notAfter, UTC seconds since the epoch */
};

struct tls_frontend {
	const struct cfg_frontend *fe;
	bool ktls; /* keys may go to the kernel: no read-ahead until the handshake is done */
	struct tls_cert *certs;
	size_t ncerts;
	struct tls_ticket_key *keys; /* keys[0] encrypts; every key decrypts */
	size_t nkeys;
};

/* Why the last OpenSSL call failed, as a short phrase (the queue is then cleared). */
static void ssl_reason(char *err, size_t errlen, const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	if (r)
		snprintf(err, errlen, "%s", r);
	else if (e)
		snprintf(err, errlen, "error %lu", e);
	else
		snprintf(err, errlen, "%s", fallback);
	ERR_clear_error();
}

/* Appends the verify result of a client certificate that failed to the error text. */
static void tls_verify_reason(const SSL *ssl, char *err, size_t errlen)
{
	long v = SSL_get_verify_result(ssl);
	size_t n = strlen(err);
	if (v != X509_V_OK && n < errlen)
		snprintf(err + n, errlen - n, ": %s", X509_verify_cert_error_string(v));
}

enum tls_result tls_classify(SSL *ssl, int ret, char *err, size_t errlen)
{
	if (ret > 0)
		return TLS_OK;
	int saved = errno;
	switch (SSL_get_error(ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return TLS_CLOSED;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		if (saved == 0 || ret == 0)
			return TLS_CLOSED;
		snprintf(err, errlen, "%s", strerror(saved));
		return TLS_FATAL;
	default:
		/* a FIN where close_notify belonged ends the stream like close_notify does */
		if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			return TLS_CLOSED;
		}
		bool verify = ERR_GET_REASON(ERR_peek_last_error()) ==
			      SSL_R_CERTIFICATE_VERIFY_FAILED;
		ssl_reason(err, errlen, "TLS error");
		if (verify) /* say why: "certificate revoked", "certificate has expired" */
			tls_verify_reason(ssl, err, errlen);
		return TLS_FATAL;
	}
}

const char *tls_version_name(const SSL *ssl)
{
	return SSL_get_version(ssl);
}

/* Picks the certificate whose names match the SNI; the first one otherwise. */
static int servername_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls_frontend *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (!name || t->ncerts == 1) /* one certificate: it is served whatever the name */
		return SSL_TLSEXT_ERR_OK;
	/* names as TLS clients check them first; then a wildcard standing for several labels,
	 * as routes match; else the first certificate */
	static const unsigned int passes[2] = { 0, X509_CHECK_FLAG_MULTI_LABEL_WILDCARDS };
	for (int p = 0; p < 2; p++) {
		for (size_t i = 0; i < t->ncerts; i++) {
			if (X509_check_host(t->certs[i].leaf, name, 0, passes[p], NULL) == 1) {
				if (i > 0)
					SSL_set_SSL_CTX(ssl, t->certs[i].ctx);
				return SSL_TLSEXT_ERR_OK;
			}
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

/* ALPN in the server's order: the first of our protocols that the client offers. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		   const unsigned char *in, unsigned int inlen, void *arg)
{
	const struct cfg_frontend *fe = arg;
	for (size_t i = 0; i < fe->alpn_len; i += 1u + fe->alpn[i]) {
		const unsigned char *ours = &fe->alpn[i];
		for (unsigned j = 0; j < inlen; j += 1u + in[j]) {
			if (in[j] == ours[0] && j + 1u + in[j] <= inlen &&
			    memcmp(&in[j + 1], ours + 1, ours[0]) == 0) {
				*out = ours + 1;
				*outlen = ours[0];
				return SSL_TLSEXT_ERR_OK;
			}
		}
	}
	return SSL_TLSEXT_ERR_NOACK;
}

static int ticket_mac_key(EVP_MAC_CTX *hctx, const struct tls_ticket_key *k)
{
	OSSL_PARAM params[3];
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac,
						      sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	return EVP_MAC_CTX_set_params(hctx, params);
}

/* Tickets under keys shared by every instance: the first key seals, any key opens, and a
 * ticket under an older key is renewed (return 2). */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *ctx,
		     EVP_MAC_CTX *hctx, int enc)
{
	struct tls_frontend *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), 0);
	if (!t || t->nkeys == 0)
		return 0;
	if (enc) {
		const struct tls_ticket_key *k = &t->keys[0];
		memcpy(name, k->name, sizeof(k->name));
		if (RAND_bytes(iv, 16) != 1 ||
		    !EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k->aes, iv) ||
		    !ticket_mac_key(hctx, k))
			return -1;
		return 1;
	}
	for (size_t i = 0; i < t->nkeys; i++) {
		const struct tls_ticket_key *k = &t->keys[i];
		if (CRYPTO_memcmp(name, k->name, sizeof(k->name)) != 0)
			continue;
		if (!ticket_mac_key(hctx, k) ||
		    !EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k->aes, iv))
			return -1;
		return i == 0 ? 1 : 2;
	}
	return 0; /* unknown key: full handshake */
}

/* What a ticket records about the client, sealed inside it with the session. */
#define TICKET_PEER_VERIFIED 'V'
#define TICKET_PEER_NONE 'n'

static int ticket_gen_cb(SSL *ssl, void *arg)
{
	unsigned char v = SSL_get0_peer_certificate(ssl) && SSL_get_verify_result(ssl) == X509_V_OK
				  ? TICKET_PEER_VERIFIED
				  : TICKET_PEER_NONE;
	return SSL_SESSION_set1_ticket_appdata(SSL_get_session(ssl), &v, 1);
}

/* Where client certificates are required, only a session whose certificate was verified may
 * resume: the session ID context already ties a ticket to the CAs, this refuses what slips
 * through anyway (a ticket minted without a verified certificate). */
static bool ticket_peer_ok(const SSL *ssl, SSL_SESSION *ss)
{
	void *data;
	size_t len;
	if (!(SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER))
		return true;
	return SSL_SESSION_get0_peer(ss) != NULL &&
	       SSL_SESSION_get0_ticket_appdata(ss, &data, &len) == 1 && len == 1 &&
	       *(const unsigned char *)data == TICKET_PEER_VERIFIED;
}

static SSL_TICKET_RETURN ticket_dec_cb(SSL *ssl, SSL_SESSION *ss, const unsigned char *keyname,
				       size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
	switch (status) {
	case SSL_TICKET_SUCCESS:
	case SSL_TICKET_SUCCESS_RENEW:
		if (!ticket_peer_ok(ssl, ss))
			return SSL_TICKET_RETURN_IGNORE_RENEW; /* full handshake, new ticket */
		return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE
						    : SSL_TICKET_RETURN_USE_RENEW;
	case SSL_TICKET_EMPTY:
	case SSL_TICKET_NO_DECRYPT:
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	default:
		return SSL_TICKET_RETURN_ABORT;
	}
}

static int digest_x509(EVP_MD_CTX *md, X509 *x)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n;
	return X509_digest(x, EVP_sha256(), d, &n) && EVP_DigestUpdate(md, d, n);
}

static int digest_crl(EVP_MD_CTX *md, X509_CRL *crl)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n;
	return X509_CRL_digest(crl, EVP_sha256(), d, &n) && EVP_DigestUpdate(md, d, n);
}

/* Feeds every certificate a frontend serves (leaves and chains) and every CA it trusts. */
static int digest_certs(EVP_MD_CTX *md, const struct tls_frontend *t)
{
	for (size_t i = 0; i < t->ncerts; i++) {
		STACK_OF(X509) *chain = NULL;
		if (!digest_x509(md, t->certs[i].leaf) ||
		    !SSL_CTX_get0_chain_certs(t->certs[i].ctx, &chain))
			return 0;
		for (int j = 0; j < sk_X509_num(chain); j++)
			if (!digest_x509(md, sk_X509_value(chain, j)))
				return 0;
	}
	X509_STORE *store = SSL_CTX_get_cert_store(t->certs[0].ctx);
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
		X509_CRL *crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, i));
		if (x && !digest_x509(md, x))
			return 0;
		/* a new CRL ends resumption too: a revoked client must not come back on a ticket */
		if (crl && !digest_crl(md, crl))
			return 0;
	}
	return 1;
}

/* Binds resumption to what the frontend verifies, as nginx does: the session ID context is a
 * hash of its name, its certificates, the client CAs it trusts and its verify mode. A session
 * from before a reload that changed any of them, or from an instance that shares ticket_keys
 * but not the CAs, then gets a full handshake. Every context of the frontend gets the same. */
static int sid_ctx_set(struct tls_frontend *t)
{
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	int mode = SSL_CTX_get_verify_mode(t->certs[0].ctx);
	size_t namelen = strlen(t->fe->name);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
		 EVP_DigestUpdate(md, &namelen, sizeof(namelen)) &&
		 EVP_DigestUpdate(md, t->fe->name, namelen) &&
		 EVP_DigestUpdate(md, &mode, sizeof(mode)) && digest_certs(md, t) &&
		 EVP_DigestFinal_ex(md, out, &n) && n <= SSL_MAX_SID_CTX_LENGTH;
	EVP_MD_CTX_free(md);
	for (size_t i = 0; ok && i < t->ncerts; i++)
		ok = SSL_CTX_set_session_id_context(t->certs[i].ctx, out, n);
	ERR_clear_error();
	return ok ? 0 : -1;
}

/* Reads the ticket_keys file (a regular file of bounded size) and parses it. */
static int load_ticket_keys(struct tls_frontend *t, const char *path, char *why, size_t whylen)
{
	char reason[160];
	char *text;
	size_t len;
	int rc;

	if (config_file_read(path, &text, &len, reason, sizeof(reason)) < 0) {
		snprintf(why, whylen, "cannot read '%s': %s", path, reason);
		return -1;
	}
	rc = tls_keys_parse(text, len, &t->keys, &t->nkeys, reason, sizeof(reason));
	OPENSSL_cleanse(text, len);
	free(text);
	if (rc < 0)
		snprintf(why, whylen, "'%s' %s", path, reason);
	return rc;
}

/* Trusts the CAs in path and requires a client certificate one of them signed. */
static int client_ca_load(SSL_CTX *ctx, const char *path, char *why, size_t whylen)
{
	/* checked again: the file may have been replaced since the config was read */
	if (config_file_check(path, why, whylen) < 0)
		return -1;
	STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(path);
	if (!names || !SSL_CTX_load_verify_locations(ctx, path, NULL)) {
		ssl_reason(why, whylen, "no certificate found");
		sk_X509_NAME_pop_free(names, X509_NAME_free);
		return -1;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return 0;
}

/* Loads every CRL of a PEM file and checks each certificate of a client's chain against its
 * issuer's CRL (as HAProxy's crl-file does): a chain CA without a CRL in the file fails. */
static int client_crl_load(SSL_CTX *ctx, const char *path, char *why, size_t whylen)
{
	if (config_file_check(path, why, whylen) < 0)
		return -1;
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
	if (!lookup || X509_load_crl_file(lookup, path, X509_FILETYPE_PEM) <= 0) {
		ssl_reason(why, whylen, "no CRL found");
		return -1;
	}
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	return 0;
}

#define FE_ERR(key, ln, ...)                                                                       \
	errlist_add(errs, cfg->path, (ln) ? (ln) : fe->line, sect, key, __VA_ARGS__)

/* Versions, ciphers, options, tickets, client CA: the same on every context of a frontend. */
static int ctx_settings(SSL_CTX *ctx, const struct config *cfg, const struct cfg_frontend *fe,
			bool ktls, struct errlist *errs, const char *sect)
{
	char why[256];
	int bad = 0;
	SSL_CTX_set_min_proto_version(ctx, fe->tls_min_version);
	SSL_CTX_set_max_proto_version(ctx, fe->tls_max_version);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ctx, 0);
	if (fe->ciphers && !SSL_CTX_set_cipher_list(ctx, fe->ciphers)) {
		ssl_reason(why, sizeof(why), "no usable cipher");
		FE_ERR("ciphers", fe->ciphers_line, "invalid list '%s': %s", fe->ciphers, why);
		bad = -1;
	}
	if (fe->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, fe->ciphersuites)) {
		ssl_reason(why, sizeof(why), "no usable cipher suite");
		FE_ERR("ciphersuites", fe->ciphersuites_line, "invalid list '%s': %s",
		       fe->ciphersuites, why);
		bad = -1;
	}
	if (!fe->session_tickets) {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	}
	if (fe->alpn)
		SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, (void *)fe);
	if (fe->client_ca && client_ca_load(ctx, fe->client_ca, why, sizeof(why)) < 0) {
		FE_ERR("client_ca", fe->client_ca_line, "cannot load '%s': %s", fe->client_ca, why);
		bad = -1;
	}
	if (fe->client_ca && fe->client_crl &&
	    client_crl_load(ctx, fe->client_crl, why, sizeof(why)) < 0) {
		FE_ERR("client_crl", fe->client_crl_line, "cannot load '%s': %s", fe->client_crl,
		       why);
		bad = -1;
	}
	/* the chain is what the cert file holds: without client CAs the context's store is
	 * empty, and OpenSSL's automatic chain building (a verification per handshake) could
	 * only ever find the certificate itself */
	if (!fe->client_ca)
		SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
	if (ktls)
		ktls_ctx_prepare(ctx);
	return bad;
}

enum load_failure { LOAD_NOT_FOUND, LOAD_MISMATCH, LOAD_OTHER };

/* Reads why a certificate or key did not load, in the operator's terms rather than OpenSSL's
 * ("PEM lib", "key values mismatch"); the reason text is kept for anything else. */
static enum load_failure load_failure(char *why, size_t whylen)
{
	enum load_failure f = LOAD_OTHER;
	unsigned long e, last = 0;
	const char *r;

	while ((e = ERR_get_error()) != 0) {
		if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
		    ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
			f = LOAD_MISMATCH;
		else if (f == LOAD_OTHER && ((ERR_GET_LIB(e) == ERR_LIB_PEM &&
					      ERR_GET_REASON(e) == PEM_R_NO_START_LINE) ||
					     (ERR_GET_LIB(e) == ERR_LIB_OSSL_DECODER &&
					      ERR_GET_REASON(e) == ERR_R_UNSUPPORTED)))
			f = LOAD_NOT_FOUND; /* no PEM block of that kind in the file */
		last = e;
	}
	r = last ? ERR_reason_error_string(last) : NULL;
	snprintf(why, whylen, "%s", r ? r : "unreadable");
	return f;
}

/* A key that did not load: not in the file, not the certificate's, or another reason. */
static void key_error(const struct config *cfg, const struct cfg_frontend *fe,
		      const struct cfg_cert *c, struct errlist *errs, const char *sect)
{
	const char *key = c->key_line ? "key" : "cert";
	int line = c->key_line ? c->key_line : c->line;
	char why[256];

	switch (load_failure(why, sizeof(why))) {
	case LOAD_MISMATCH:
		FE_ERR(key, line, "key '%s' does not match certificate '%s'", c->key_path,
		       c->cert_path);
		break;
	case LOAD_NOT_FOUND:
		FE_ERR(key, line, "no private key in '%s'%s", c->key_path,
		       c->key_line ? ""
				   : " (add a key line after this cert, or append the key "
				     "to the file)");
		break;
	default:
		FE_ERR(key, line, "cannot load private key '%s': %s", c->key_path, why);
	}
}

/* Loads one cert/key pair into a fresh context; reports against the cert's lines. */
static SSL_CTX *load_cert(const struct config *cfg, const struct cfg_frontend *fe,
			  const struct cfg_cert *c, struct errlist *errs, const char *sect)
{
	char why[256];
	/* unreadable files were reported while parsing; say nothing twice (the check also keeps
	 * OpenSSL away from a file replaced by a FIFO or a device since then) */
	if (c->bad || config_file_check(c->cert_path, why, sizeof(why)) < 0 ||
	    config_file_check(c->key_path, why, sizeof(why)) < 0)
		return NULL;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		FE_ERR("cert", c->line, "cannot create TLS context");
		return NULL;
	}
	if (!SSL_CTX_use_certificate_chain_file(ctx, c->cert_path)) {
		if (load_failure(why, sizeof(why)) == LOAD_NOT_FOUND)
			FE_ERR("cert", c->line, "no certificate in '%s'", c->cert_path);
		else
			FE_ERR("cert", c->line, "cannot load certificate '%s': %s", c->cert_path,
			       why);
		goto err;
	}
	if (!SSL_CTX_use_PrivateKey_file(ctx, c->key_path, SSL_FILETYPE_PEM)) {
		key_error(cfg, fe, c, errs, sect);
		goto err;
	}
	if (!SSL_CTX_check_private_key(ctx)) {
		ERR_clear_error();
		FE_ERR(c->key_line ? "key" : "cert", c->key_line ? c->key_line : c->line,
		       "key '%s' does not match certificate '%s'", c->key_path, c->cert_path);
		goto err;
	}
	return ctx;
err:
	SSL_CTX_free(ctx);
	return NULL;
}

/* notAfter as UTC seconds; 0 if it cannot be read (then it is reported as long expired). */
static int64_t cert_not_after(const X509 *leaf)
{
	struct tm tm;

	if (!leaf || !ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

struct tls_frontend *tls_frontend_create(const struct config *cfg, const struct cfg_frontend *fe,
					 bool ktls, struct errlist *errs)
{
	char sect[300];
	snprintf(sect, sizeof(sect), "frontend %s", fe->name);
	struct tls_frontend *t = calloc(1, sizeof(*t));
	if (!t || !(t->certs = calloc(fe->ncerts ? fe->ncerts : 1, sizeof(*t->certs)))) {
		free(t);
		FE_ERR(NULL, fe->line, "out of memory");
		return NULL;
	}
	t->fe = fe;
	t->ktls = ktls;
	int bad = 0;
	char why[320];
	if (fe->ticket_keys && fe->session_tickets &&
	    load_ticket_keys(t, fe->ticket_keys, why, sizeof(why)) < 0) {
		FE_ERR("ticket_keys", fe->ticket_keys_line, "%s", why);
		bad = -1;
	}
	for (size_t i = 0; i < fe->ncerts; i++) {
		SSL_CTX *ctx = load_cert(cfg, fe, &fe->certs[i], errs, sect);
		if (!ctx) {
			bad = -1;
			continue;
		}
		t->certs[t->ncerts].ctx = ctx;
		t->certs[t->ncerts].leaf = SSL_CTX_get0_certificate(ctx);
		t->certs[t->ncerts].not_after = cert_not_after(t->certs[t->ncerts].leaf);
		t->ncerts++;
		/* report list errors once, not once per certificate */
		struct errlist again;
		errlist_init(&again);
		if (ctx_settings(ctx, cfg, fe, ktls, t->ncerts == 1 ? errs : &again, sect) < 0)
			bad = -1;
		errlist_finish(&again);
		SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
		SSL_CTX_set_tlsext_servername_arg(ctx, t);
		SSL_CTX_set_ex_data(ctx, 0, t);
		if (t->nkeys)
			SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
		if (fe->session_tickets)
			SSL_CTX_set_session_ticket_cb(ctx, ticket_gen_cb, ticket_dec_cb, NULL);
	}
	if (!bad && t->ncerts > 0 && sid_ctx_set(t) < 0) {
		FE_ERR(NULL, fe->line, "cannot compute the session ID context");
		bad = -1;
	}
	if (bad || t->ncerts == 0) {
		tls_frontend_destroy(t);
		return NULL;
	}
	return t;
}

void tls_frontend_destroy(struct tls_frontend *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->ncerts; i++)
		SSL_CTX_free(t->certs[i].ctx);
	free(t->certs);
	tls_keys_free(t->keys, t->nkeys);
	free(t);
}

SSL *tls_accept(struct tls_frontend *t, int fd)
{
	SSL *ssl = SSL_new(t->certs[0].ctx);
	if (!ssl)
		return NULL;
	if (!SSL_set_fd(ssl, fd)) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	if (!t->ktls) {
		/* nothing will go to the kernel: read whole flights, and later several records,
		 * per system call */
		SSL_set_read_ahead(ssl, 1);
		SSL_set_default_read_buffer_len(ssl, TLS_READ_BUFFER);
	}
	return ssl;
}

size_t tls_frontend_ncerts(const struct tls_frontend *t)
{
	return t ? t->ncerts : 0;
}

int64_t tls_frontend_cert_expiry(const struct tls_frontend *t, size_t i)
{
	return t->certs[i].not_after;
}

char *tls_frontend_cert_subject(const struct tls_frontend *t, size_t i, char *out, size_t outlen)
{
	X509_NAME *name = X509_get_subject_name(t->certs[i].leaf);

	out[0] = '\0';
	if (name)
		X509_NAME_oneline(name, out, (int)outlen);
	return out;
}

/* Expiry is worth a line at start-up, on reload and in -t, before clients see it. */
void tls_frontend_expiry_warn(const struct tls_frontend *t, const struct config *cfg, int64_t now,
			      struct errlist *warns)
{
	const struct cfg_frontend *fe = t->fe;
	char sect[300], date[32];

	snprintf(sect, sizeof(sect), "frontend %s", fe->name);
	for (size_t i = 0; i < t->ncerts; i++) {
		int64_t left = t->certs[i].not_after - now;
		time_t when = (time_t)t->certs[i].not_after;
		struct tm tm;

		if (left > (int64_t)TLS_EXPIRY_WARN_DAYS * 86400)
			continue;
		gmtime_r(&when, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
		if (left <= 0)
			errlist_add(warns, cfg->path, fe->certs[i].line, sect, "cert",
				    "certificate '%s' expired on %s", fe->certs[i].cert_path, date);
		else
			errlist_add(warns, cfg->path, fe->certs[i].line, sect, "cert",
				    "certificate '%s' expires on %s (in %lld days)",
				    fe->certs[i].cert_path, date, (long long)(left / 86400));
	}
}
