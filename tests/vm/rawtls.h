/* A TLS client that writes its own records. The handshake runs through OpenSSL (memory BIOs,
 * so the client decides when each byte goes out); then records of any type, length and
 * content are built by hand from the client's traffic keys:
 *  - TLS 1.3: CLIENT_TRAFFIC_SECRET_0 from the keylog callback, key and IV by
 *    HKDF-Expand-Label (RFC 8446 7.3), as the proxy derives them for the kernel;
 *  - TLS 1.2 AES-GCM: the key block from the master secret with the TLS 1.2 PRF
 *    (RFC 5246 6.3), the explicit nonce being the record sequence number.
 * Reading goes through OpenSSL, which also reports every alert the server sent. */
#ifndef TLSPLICE_TEST_RAWTLS_H
#define TLSPLICE_TEST_RAWTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define RAWTLS_MAX_ALERTS 8

struct rawtls {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *in, *out; /* what the socket delivered / what OpenSSL wrote */
	bool tls13;
	unsigned char secret[64]; /* TLS 1.3 client application traffic secret */
	size_t secret_len;
	unsigned char key[32], iv[12];
	size_t key_len;
	uint64_t seq;
	/* the client Finished flight, when the caller sends it (rawtls_connect with hold) */
	unsigned char *held;
	size_t held_len;
	/* what came back (rawtls_collect) */
	unsigned char alerts[RAWTLS_MAX_ALERTS][2]; /* level, description */
	int nalerts;
	char err[256];
};

/* How the server's side of the stream ended. */
enum rawtls_end { RAWTLS_FIN, RAWTLS_RST, RAWTLS_TIMEOUT, RAWTLS_ERROR };

struct rawtls_result {
	uint64_t bytes; /* application data received */
	char sha[65];   /* its SHA-256 */
	char text[128]; /* its first bytes, NUL-terminated */
	bool close_notify;
	enum rawtls_end end;
};

/* Connects to 127.0.0.1:port and completes the handshake (version TLS1_2_VERSION with
 * ECDHE-ECDSA-AES128-GCM-SHA256, or TLS1_3_VERSION with TLS_AES_128_GCM_SHA256), then
 * derives the client write key. With hold (TLS 1.3 only), the client Finished flight is
 * kept back for rawtls_send_held. 0, or -1 with r->err set. */
int rawtls_connect(struct rawtls *r, int port, int version, bool hold, int timeout_ms);
/* Appends one encrypted record of `type` carrying data[0..len) to out (cap bytes); flags
 * below. Returns the record's size, 0 if it does not fit. Consumes one sequence number. */
#define RAWTLS_BAD_TAG 1 /* flip a bit of the authentication tag */
size_t rawtls_record(struct rawtls *r, int type, const void *data, size_t len, int flags,
		     unsigned char *out, size_t cap);
/* TLS 1.3: the next generation of the client key (after sending a KeyUpdate). 0 or -1. */
int rawtls_key_update(struct rawtls *r);
/* Sends bytes; seg > 0 sends them seg bytes per send() (TCP_NODELAY: one segment each). */
int rawtls_send(struct rawtls *r, const void *buf, size_t len, size_t seg);
/* Sends the held Finished flight followed by extra[0..len) in one send(). */
int rawtls_send_held(struct rawtls *r, const void *extra, size_t len);
/* Reads until the server ends the stream or timeout_ms pass; fills res and r->alerts. */
void rawtls_collect(struct rawtls *r, struct rawtls_result *res, int timeout_ms);
/* The client's local address "127.0.0.1:PORT", as the access log shows it. */
void rawtls_local_addr(const struct rawtls *r, char *out, size_t cap);
void rawtls_close(struct rawtls *r);

#endif
