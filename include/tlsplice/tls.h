/* TLS for one frontend: an SSL_CTX per certificate (the first is the default, SNI picks
 * another), versions, ciphers, ALPN, client certificates, session tickets; and the one
 * classifier that every OpenSSL result goes through. */
#ifndef TLSPLICE_TLS_H
#define TLSPLICE_TLS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "tlsplice/config.h"
#include "tlsplice/errlist.h"

struct tls_frontend;

/* OpenSSL's read buffer when reading ahead: room for several whole records. */
#define TLS_READ_BUFFER (65536 + 4 * SSL3_RT_MAX_ENCRYPTED_OVERHEAD)

/* Loads every certificate and key of fe and checks that each key matches its certificate.
 * Problems go to errs as "FILE:LINE: [frontend NAME] key: reason"; returns NULL then.
 * ktls: whether to let OpenSSL hand keys to the kernel. */
struct tls_frontend *tls_frontend_create(const struct config *cfg, const struct cfg_frontend *fe,
					 bool ktls, struct errlist *errs);
void tls_frontend_destroy(struct tls_frontend *t); /* NULL ok */

/* Its certificates, in the order of the frontend's cert lines: how many, the leaf's notAfter
 * (UTC seconds since the epoch) and its subject (one line, into out). */
size_t tls_frontend_ncerts(const struct tls_frontend *t); /* NULL: 0 */
int64_t tls_frontend_cert_expiry(const struct tls_frontend *t, size_t i);
char *tls_frontend_cert_subject(const struct tls_frontend *t, size_t i, char *out, size_t outlen);

/* Adds to warns, against each cert line, a certificate that expired or expires within
 * TLS_EXPIRY_WARN_DAYS days of now, with the date. */
#define TLS_EXPIRY_WARN_DAYS 14
void tls_frontend_expiry_warn(const struct tls_frontend *t, const struct config *cfg, int64_t now,
			      struct errlist *warns);

/* A server-side SSL on an accepted socket; NULL on allocation failure. */
SSL *tls_accept(struct tls_frontend *t, int fd);

enum tls_result {
	TLS_OK,         /* the call did what was asked (ret > 0) */
	TLS_WANT_READ,  /* retry when the socket is readable */
	TLS_WANT_WRITE, /* retry when the socket is writable */
	TLS_CLOSED,     /* the peer sent close_notify, or FIN (treated alike) */
	TLS_FATAL,      /* protocol error, reset, ...: err says what */
};

/* Classifies the result ret of an SSL_* call on ssl. On TLS_FATAL, err gets a short
 * human reason ("wrong version number", "connection reset by peer", ...). Clears the
 * thread's OpenSSL error queue. */
enum tls_result tls_classify(SSL *ssl, int ret, char *err, size_t errlen);

/* A session ticket key as nginx and HAProxy lay it out: name, HMAC secret, AES-256 key. */
struct tls_ticket_key {
	unsigned char name[16];
	unsigned char hmac[32];
	unsigned char aes[32];
};

/* Parses the text of a ticket_keys file (len bytes, NUL bytes allowed and refused): one key
 * per line, base64 of 80 bytes; '#' starts a comment, blank lines are skipped. On success
 * *keys holds *nkeys >= 1 keys (free with tls_keys_free); -1 with a reason in why
 * ("line 3: expected base64 of 80 bytes", "holds no key"). */
int tls_keys_parse(const char *text, size_t len, struct tls_ticket_key **keys, size_t *nkeys,
		   char *why, size_t whylen);
/* Wipes and frees keys (NULL ok). */
void tls_keys_free(struct tls_ticket_key *keys, size_t nkeys);

/* Short names for the access log. */
const char *tls_version_name(const SSL *ssl);

#endif
