/* Kernel TLS: probe the kernel, turn each direction of an established TLS socket over to it
 * (installing the TLS 1.3 receive key that OpenSSL 3.0 does not), and read the non-data
 * records that a kernel-receive socket delivers out of band. */
#ifndef TLSPLICE_KTLS_H
#define TLSPLICE_KTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#define KTLS_TX 1
#define KTLS_RX 2

/* Once at start-up: which directions this kernel can take (KTLS_TX|KTLS_RX bits, 0: none),
 * and a one-line description for -V and the start-up log. Cached after the first call. */
int ktls_probe(void);
const char *ktls_probe_describe(void);
/* Whether this kernel takes a second TLS 1.3 key on a socket that has one, so that KeyUpdates
 * can be followed in place (Linux 6.14+): probed once, by installing a key twice on a
 * throw-away socket pair (one TlsRxRekeyOk and one TlsTxRekeyOk in tls_stat), never guessed
 * from the version. */
bool ktls_probe_rekey(void);

/* On a server SSL_CTX, before any handshake: lets OpenSSL offload what it can and records
 * the TLS 1.3 client traffic secret so that ktls_enable can install the receive key. */
int ktls_ctx_prepare(SSL_CTX *ctx);

/* After SSL_do_handshake() returned 1 on fd: returns the directions now in the kernel
 * (KTLS_TX|KTLS_RX bits). For what stays in user space, why gets a short reason
 * (e.g. "tls13-rx: openssl holds unread data", "cipher TLS_AES_128_CCM_SHA256 unsupported").
 * Wipes the captured secrets, except where TLS 1.3 receive went to a kernel that can re-key:
 * then ktls_keys_take takes them (or ktls_forget, SSL_free wipe them). */
int ktls_enable(SSL *ssl, int fd, char *why, size_t whylen);

/* Drops the captured secret of an SSL that never reached ktls_enable (NULL ok). */
void ktls_forget(SSL *ssl);

/* HKDF-Expand-Label (RFC 8446 7.1) with an empty context: the TLS 1.3 "key"/"iv" derivation
 * behind the receive-key install, exported for its unit test. 0 or -1. */
int ktls_expand_label(const EVP_MD *md, const unsigned char *secret, size_t secretlen,
		      const char *label, unsigned char *out, size_t outlen);

/* ---- TLS 1.3 KeyUpdate in the kernel ----
 * The current application traffic secret per direction, kept only to derive the next one
 * (RFC 8446 7.2), in memory wiped on free. */
struct ktls_keys;

/* Right after ktls_enable gave dirs: takes the secrets out of ssl where TLS 1.3 receive is in a
 * kernel that can re-key (ktls_probe_rekey); NULL otherwise, and the secrets are wiped either
 * way. The send direction is re-keyed only if dirs has KTLS_TX and the caller sends nothing
 * more through OpenSSL. every: key_update_bytes, our own KeyUpdate after that many bytes
 * sent (0: only when the client asks). */
struct ktls_keys *ktls_keys_take(SSL *ssl, int dirs, uint64_t every);
void ktls_keys_free(struct ktls_keys *k); /* wipes; NULL ok */
/* The client's KeyUpdate (requested: update_requested) was read from fd: installs its next
 * key as TLS_RX. With requested, our own KeyUpdate is then owed (ktls_rekey_tx_due). 0, or -1
 * with errno (EOPNOTSUPP: k is NULL, or requested where we cannot send one). */
int ktls_rekey_rx(struct ktls_keys *k, int fd, bool requested);
/* True when a KeyUpdate of ours must go out before more data: owed to the client, or `sent`
 * bytes reached key_update_bytes. */
bool ktls_rekey_tx_due(const struct ktls_keys *k, uint64_t sent);
/* Sends our KeyUpdate through kernel TX (update_not_requested when it answers the client,
 * update_requested when it is our own), then installs our next key as TLS_TX. 0, or -1 with
 * errno: EAGAIN when nothing went out (try again once writable), anything else is fatal. */
int ktls_rekey_tx(struct ktls_keys *k, int fd, uint64_t sent);
/* Re-keys done in direction dir (KTLS_RX: the client's KeyUpdates, KTLS_TX: ours); 0 for NULL. */
unsigned ktls_keys_count(const struct ktls_keys *k, int dir);

/* ---- carrying the secrets to a new process (binary upgrade; ktls_carry.c) ----
 * A fixed-size text of KTLS_KEYS_TEXT_LEN hex digits: format version, suite, both secrets,
 * whether we send KeyUpdates and one is owed, key_update_bytes and where the next is due (in
 * bytes sent, which travel with the connection), and the re-key counts. It holds secrets:
 * whoever holds a copy wipes it (OPENSSL_cleanse). */
#define KTLS_KEYS_BLOB_LEN 125
#define KTLS_KEYS_TEXT_LEN (2 * KTLS_KEYS_BLOB_LEN)
/* Writes k's text and a NUL into out (cap > KTLS_KEYS_TEXT_LEN). 0, or -1 with errno. */
int ktls_keys_export(const struct ktls_keys *k, char *out, size_t cap);
/* Reads exactly len characters of text (no NUL needed): new keys, or NULL with errno
 * (EINVAL: not a text that ktls_keys_export writes; ENOMEM). Nothing is installed in a kernel. */
struct ktls_keys *ktls_keys_import(const char *text, size_t len);

enum ktls_record {
	KTLS_REC_DATA,  /* application data was read into buf (*len bytes) */
	KTLS_REC_AGAIN, /* nothing to read now (EAGAIN) */
	KTLS_REC_EOF,   /* TCP FIN with no close_notify */
	KTLS_REC_CLOSE_NOTIFY,
	KTLS_REC_ALERT,      /* any other alert: fatal */
	KTLS_REC_KEY_UPDATE, /* TLS 1.3 KeyUpdate handshake message */
	KTLS_REC_HANDSHAKE,  /* another post-handshake message (e.g. NewSessionTicket) */
	KTLS_REC_ERROR,      /* EBADMSG (decrypt failed), reset, ...: errno set */
};

/* Reads one record from a kernel-receive socket with recvmsg(): 1 with its content type
 * (TLS_GET_RECORD_TYPE; 23 for data) in *type and its plaintext in buf[0..*len) (an empty
 * record is 1 with *len 0), 0 at a FIN, -1 with errno (EAGAIN, EBADMSG: failed to decrypt,
 * EMSGSIZE: too long, ...). What the record means is record.h's business. */
int ktls_recv_record(int fd, void *buf, size_t cap, size_t *len, unsigned char *type);

/* The same, sorted into the classes above (the kernel tests use it). */
enum ktls_record ktls_read_record(int fd, void *buf, size_t cap, size_t *len);

/* Sends an alert through kernel TX without OpenSSL (the SSL object may be gone).
 * 0, or -1 with errno (EAGAIN: the socket buffer is full). */
int ktls_send_alert(int fd, int level, int description);
/* ktls_send_alert(fd, warning, close_notify). */
int ktls_send_close_notify(int fd);

#endif
