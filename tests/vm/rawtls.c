/* A TLS client that writes its own records: see rawtls.h. */
#include "rawtls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(struct rawtls *r, const char *what)
{
	unsigned long e = ERR_get_error();
	snprintf(r->err, sizeof(r->err), "%s: %s", what,
		 e       ? ERR_reason_error_string(e)
		 : errno ? strerror(errno)
			 : "failed");
	ERR_clear_error();
	return -1;
}

static void keylog(const SSL *ssl, const char *line)
{
	static const char label[] = "CLIENT_TRAFFIC_SECRET_0 ";
	struct rawtls *r = SSL_get_app_data(ssl);
	const char *hex = strrchr(line, ' ');
	size_t n;

	if (!r || strncmp(line, label, sizeof(label) - 1) != 0 || !hex)
		return;
	n = strlen(++hex) / 2;
	if (n > sizeof(r->secret))
		return;
	for (size_t i = 0; i < n; i++)
		r->secret[i] = (unsigned char)(OPENSSL_hexchar2int((unsigned char)hex[2 * i]) << 4 |
					       OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]));
	r->secret_len = n;
}

static void on_msg(int write_p, int version, int type, const void *buf, size_t len, SSL *ssl,
		   void *arg)
{
	struct rawtls *r = SSL_get_app_data(ssl);
	const unsigned char *b = buf;

	if (!r || write_p || type != SSL3_RT_ALERT || len != 2 || r->nalerts >= RAWTLS_MAX_ALERTS)
		return;
	r->alerts[r->nalerts][0] = b[0];
	r->alerts[r->nalerts][1] = b[1];
	r->nalerts++;
}

static int send_all(struct rawtls *r, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	int64_t end = now_ms() + 10000;

	while (len > 0) {
		ssize_t n = send(r->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR) && now_ms() < end) {
			struct pollfd pf = { .fd = r->fd, .events = POLLOUT };
			poll(&pf, 1, 100);
		} else {
			return fail(r, "send");
		}
	}
	return 0;
}

/* What OpenSSL wrote goes out now (or is kept back when hold). */
static int flush_out(struct rawtls *r, bool hold)
{
	char *data;
	long len = BIO_get_mem_data(r->out, &data);
	int rc = 0;

	if (len <= 0)
		return 0;
	if (hold) {
		unsigned char *p = realloc(r->held, r->held_len + (size_t)len);
		if (!p)
			return fail(r, "out of memory");
		memcpy(p + r->held_len, data, (size_t)len);
		r->held = p;
		r->held_len += (size_t)len;
	} else {
		rc = send_all(r, data, (size_t)len);
	}
	(void)BIO_reset(r->out);
	return rc;
}

/* Waits for bytes from the server and hands them to OpenSSL: >0, 0 on EOF, -1. */
static ssize_t fill_in(struct rawtls *r, int64_t deadline)
{
	unsigned char buf[16384];
	struct pollfd pf = { .fd = r->fd, .events = POLLIN };
	int64_t left = deadline - now_ms();
	ssize_t n;

	if (left <= 0 || poll(&pf, 1, (int)left) <= 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	n = recv(r->fd, buf, sizeof(buf), 0);
	if (n > 0)
		BIO_write(r->in, buf, (int)n);
	return n;
}

static int derive13(struct rawtls *r, const char *label, unsigned char *out, size_t outlen)
{
	unsigned char info[64];
	size_t llen = strlen(label), n = 0;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, rc = -1;
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	EVP_KDF_CTX *k = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM p[5];

	info[n++] = 0;
	info[n++] = (unsigned char)outlen;
	info[n++] = (unsigned char)(6 + llen);
	memcpy(info + n, "tls13 ", 6);
	memcpy(info + n + 6, label, llen);
	n += 6 + llen;
	info[n++] = 0;
	p[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	p[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, r->secret, r->secret_len);
	p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	p[4] = OSSL_PARAM_construct_end();
	if (k && EVP_KDF_derive(k, out, outlen, p) > 0)
		rc = 0;
	EVP_KDF_CTX_free(k);
	EVP_KDF_free(kdf);
	return rc;
}

/* TLS 1.2 key block: PRF(master, "key expansion", server_random + client_random). */
static int derive12(struct rawtls *r)
{
	unsigned char master[48], seed[13 + 64], kb[40];
	size_t mlen = SSL_SESSION_get_master_key(SSL_get_session(r->ssl), master, sizeof(master));
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_TLS1_PRF, NULL);
	EVP_KDF_CTX *k = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM p[4];
	int rc = -1;

	memcpy(seed, "key expansion", 13);
	SSL_get_server_random(r->ssl, seed + 13, 32);
	SSL_get_client_random(r->ssl, seed + 45, 32);
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, master, mlen);
	p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof(seed));
	p[3] = OSSL_PARAM_construct_end();
	if (mlen == sizeof(master) && k && EVP_KDF_derive(k, kb, sizeof(kb), p) > 0) {
		memcpy(r->key, kb, 16);    /* client_write_key */
		memcpy(r->iv, kb + 32, 4); /* client_write_IV: the implicit nonce part */
		r->key_len = 16;
		r->seq = 1; /* the client Finished was record 0 of this epoch */
		rc = 0;
	}
	EVP_KDF_CTX_free(k);
	EVP_KDF_free(kdf);
	OPENSSL_cleanse(master, sizeof(master));
	OPENSSL_cleanse(kb, sizeof(kb));
	return rc;
}

static int tcp_connect(struct rawtls *r, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1;

	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (r->fd < 0 || connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fail(r, "connect");
	setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

static int ssl_setup(struct rawtls *r, int version)
{
	r->ctx = SSL_CTX_new(TLS_client_method());
	if (!r->ctx)
		return fail(r, "SSL_CTX_new");
	SSL_CTX_set_min_proto_version(r->ctx, version);
	SSL_CTX_set_max_proto_version(r->ctx, version);
	SSL_CTX_set_verify(r->ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_keylog_callback(r->ctx, keylog);
	if (version == TLS1_3_VERSION)
		SSL_CTX_set_ciphersuites(r->ctx, "TLS_AES_128_GCM_SHA256");
	else
		SSL_CTX_set_cipher_list(r->ctx, "ECDHE-ECDSA-AES128-GCM-SHA256");
	r->ssl = SSL_new(r->ctx);
	r->in = BIO_new(BIO_s_mem());
	r->out = BIO_new(BIO_s_mem());
	if (!r->ssl || !r->in || !r->out)
		return fail(r, "SSL_new");
	BIO_set_mem_eof_return(r->in, -1);
	SSL_set_bio(r->ssl, r->in, r->out);
	SSL_set_app_data(r->ssl, r);
	SSL_set_msg_callback(r->ssl, on_msg);
	SSL_set_tlsext_host_name(r->ssl, "demo.test");
	SSL_set_connect_state(r->ssl);
	r->tls13 = version == TLS1_3_VERSION;
	return 0;
}

int rawtls_connect(struct rawtls *r, int port, int version, bool hold, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (tcp_connect(r, port) < 0 || ssl_setup(r, version) < 0)
		return -1;
	for (;;) {
		int rc = SSL_do_handshake(r->ssl);
		if (rc == 1)
			break;
		if (SSL_get_error(r->ssl, rc) != SSL_ERROR_WANT_READ)
			return fail(r, "handshake");
		if (flush_out(r, false) < 0)
			return -1;
		if (fill_in(r, deadline) <= 0)
			return fail(r, "handshake read");
	}
	if (flush_out(r, hold && r->tls13) < 0)
		return -1;
	if (r->tls13) {
		r->key_len = 16;
		if (r->secret_len != 32 || derive13(r, "key", r->key, 16) < 0 ||
		    derive13(r, "iv", r->iv, 12) < 0)
			return fail(r, "TLS 1.3 key derivation");
	} else if (derive12(r) < 0) {
		return fail(r, "TLS 1.2 key derivation");
	}
	return 0;
}

int rawtls_key_update(struct rawtls *r)
{
	unsigned char next[32];

	if (!r->tls13 || derive13(r, "traffic upd", next, sizeof(next)) < 0)
		return -1;
	memcpy(r->secret, next, sizeof(next));
	OPENSSL_cleanse(next, sizeof(next));
	r->seq = 0;
	return derive13(r, "key", r->key, 16) < 0 || derive13(r, "iv", r->iv, 12) < 0 ? -1 : 0;
}

static int seal(struct rawtls *r, const unsigned char *nonce, const unsigned char *aad,
		size_t aadlen, const unsigned char *in, size_t len, unsigned char *out)
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int n, ok = x && EVP_EncryptInit_ex(x, EVP_aes_128_gcm(), NULL, r->key, nonce) &&
		    EVP_EncryptUpdate(x, NULL, &n, aad, (int)aadlen) &&
		    EVP_EncryptUpdate(x, out, &n, in, (int)len) &&
		    EVP_EncryptFinal_ex(x, out + len, &n) &&
		    EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, out + len);
	EVP_CIPHER_CTX_free(x);
	return ok ? 0 : -1;
}

size_t rawtls_record(struct rawtls *r, int type, const void *data, size_t len, int flags,
		     unsigned char *out, size_t cap)
{
	size_t inner = r->tls13 ? len + 1 : len;
	size_t body = (r->tls13 ? 0 : 8) + inner + 16;
	unsigned char nonce[12], aad[13], *plain;
	size_t aadlen;

	if (body > 0xffff || 5 + body > cap || !(plain = malloc(inner + 1)))
		return 0;
	memcpy(plain, data, len);
	out[0] = (unsigned char)(r->tls13 ? SSL3_RT_APPLICATION_DATA : type);
	out[1] = 3;
	out[2] = 3;
	out[3] = (unsigned char)(body >> 8);
	out[4] = (unsigned char)body;
	if (r->tls13) {
		plain[len] = (unsigned char)type;
		memcpy(nonce, r->iv, 12);
		for (int i = 0; i < 8; i++)
			nonce[4 + i] ^= (unsigned char)(r->seq >> (56 - 8 * i));
		memcpy(aad, out, 5);
		aadlen = 5;
	} else {
		memcpy(nonce, r->iv, 4);
		for (int i = 0; i < 8; i++)
			nonce[4 + i] = aad[i] = (unsigned char)(r->seq >> (56 - 8 * i));
		aad[8] = (unsigned char)type;
		aad[9] = 3;
		aad[10] = 3;
		aad[11] = (unsigned char)(len >> 8);
		aad[12] = (unsigned char)len;
		aadlen = 13;
		memcpy(out + 5, nonce + 4, 8);
	}
	if (seal(r, nonce, aad, aadlen, plain, inner, out + 5 + (r->tls13 ? 0 : 8)) < 0) {
		free(plain);
		return 0;
	}
	free(plain);
	if (flags & RAWTLS_BAD_TAG)
		out[5 + body - 1] ^= 0x01;
	r->seq++;
	return 5 + body;
}

int rawtls_send(struct rawtls *r, const void *buf, size_t len, size_t seg)
{
	const unsigned char *p = buf;

	if (seg == 0)
		return send_all(r, buf, len);
	for (size_t off = 0; off < len; off += seg) {
		struct timespec gap = { 0, 2000000 }; /* lets each byte leave as its own segment */
		if (send_all(r, p + off, len - off < seg ? len - off : seg) < 0)
			return -1;
		nanosleep(&gap, NULL);
	}
	return 0;
}

int rawtls_send_held(struct rawtls *r, const void *extra, size_t len)
{
	unsigned char *p = realloc(r->held, r->held_len + len);

	if (!p)
		return fail(r, "out of memory");
	memcpy(p + r->held_len, extra, len);
	r->held = p;
	r->held_len += len;
	return send_all(r, r->held, r->held_len);
}

/* Decrypts what OpenSSL holds; false once the stream is over for TLS (alert, error). */
static bool drain_ssl(struct rawtls *r, struct rawtls_result *res, EVP_MD_CTX *md)
{
	unsigned char buf[16384];

	for (;;) {
		int n = SSL_read(r->ssl, buf, sizeof(buf));
		if (n > 0) {
			size_t have = strlen(res->text), room = sizeof(res->text) - 1 - have;
			memcpy(res->text + have, buf, (size_t)n < room ? (size_t)n : room);
			EVP_DigestUpdate(md, buf, (size_t)n);
			res->bytes += (uint64_t)n;
			continue;
		}
		switch (SSL_get_error(r->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			return true;
		case SSL_ERROR_ZERO_RETURN:
			res->close_notify = true;
			return false;
		default:
			ERR_clear_error();
			return false;
		}
	}
}

void rawtls_collect(struct rawtls *r, struct rawtls_result *res, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char dg[32];
	bool tls = true;

	memset(res, 0, sizeof(*res));
	res->end = RAWTLS_TIMEOUT;
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (;;) {
		if (tls)
			tls = drain_ssl(r, res, md);
		ssize_t n = fill_in(r, deadline);
		if (n == 0) {
			res->end = RAWTLS_FIN;
			if (tls)
				drain_ssl(r, res, md);
			break;
		}
		if (n < 0) {
			res->end = errno == ECONNRESET  ? RAWTLS_RST
				   : errno == ETIMEDOUT ? RAWTLS_TIMEOUT
							: RAWTLS_ERROR;
			break;
		}
		if (!tls)
			(void)BIO_reset(r->in); /* after an alert: only the end still counts */
	}
	EVP_DigestFinal_ex(md, dg, NULL);
	EVP_MD_CTX_free(md);
	for (int i = 0; i < 32; i++)
		snprintf(res->sha + 2 * i, 3, "%02x", dg[i]);
}

void rawtls_local_addr(const struct rawtls *r, char *out, size_t cap)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if (getsockname(r->fd, (struct sockaddr *)&sa, &len) < 0)
		snprintf(out, cap, "?");
	else
		snprintf(out, cap, "127.0.0.1:%d", ntohs(sa.sin_port));
}

void rawtls_close(struct rawtls *r)
{
	if (r->fd >= 0)
		close(r->fd);
	SSL_free(r->ssl); /* frees the BIOs */
	SSL_CTX_free(r->ctx);
	free(r->held);
	OPENSSL_cleanse(r->secret, sizeof(r->secret));
	OPENSSL_cleanse(r->key, sizeof(r->key));
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}
