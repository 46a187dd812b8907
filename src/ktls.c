/* Kernel TLS: probe, per-direction enable, TLS 1.3 receive-key install, control records.
 *
 * OpenSSL 3.0 offloads what it can by itself once SSL_OP_ENABLE_KTLS is set; it never
 * offloads TLS 1.3 receive (3.2 does). For that direction we take the client application
 * traffic secret from the keylog callback, derive key and IV (RFC 8446 7.3) and hand them
 * to the kernel with TLS_RX ourselves, while OpenSSL has read nothing past the handshake.
 *
 * TLS 1.3 KeyUpdate: OpenSSL 3.0 does not pass new keys to the kernel and Linux could not
 * take them before about 6.14 (a second TLS_RX/TLS_TX fails with EBUSY; 6.14+ holds receive
 * after a KeyUpdate until the next key is set). Where the probe finds that a second key is
 * taken, the traffic secrets of both directions outlive ktls_enable (struct ktls_keys, wiped
 * on free) and each KeyUpdate is followed in the kernel: the next secret is
 * HKDF-Expand-Label(secret, "traffic upd", "", Hash.length) (RFC 8446 7.2), installed with
 * record sequence 0. Elsewhere (Debian 12's 6.1 and 6.12) nothing is kept and a KeyUpdate
 * closes the connection cleanly (close = "key_update").
 *
 * For callers: once ktls_enable reports KTLS_RX on TLS 1.3, OpenSSL does not know the kernel
 * decrypts (we installed the key behind its back), so SSL_read must not be used on that
 * connection again: read with read()/splice() and, on EIO/EINVAL, ktls_read_record().
 * ktls_ctx_prepare must run on every SSL_CTX a connection can end up on (an SNI callback's
 * SSL_set_SSL_CTX makes OpenSSL use the new context's keylog callback). */
#include "tlsplice/ktls.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <linux/tls.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "ktls_internal.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif
#ifndef TLS_GET_RECORD_TYPE
#define TLS_GET_RECORD_TYPE 2
#endif
#ifndef TLS_CIPHER_CHACHA20_POLY1305
#define TLS_CIPHER_CHACHA20_POLY1305 54
struct tls12_crypto_info_chacha20_poly1305 {
	struct tls_crypto_info info;
	unsigned char iv[12];
	unsigned char key[32];
	unsigned char salt[0];
	unsigned char rec_seq[8];
};
#endif
#ifndef EKEYEXPIRED
#define EKEYEXPIRED 127
#endif

#define REC_CHANGE_CIPHER_SPEC 20
#define REC_ALERT 21
#define REC_HANDSHAKE 22
#define REC_APPLICATION_DATA 23
#define HS_KEY_UPDATE 24
#define TLS13_IV_LEN 12

/* The TLS 1.3 application traffic secrets of one SSL, from the keylog callback to
 * ktls_enable: the client's (our receive key) and the server's (our send key). */
struct ktls_secret {
	unsigned char secret[EVP_MAX_MD_SIZE];
	size_t len;
	unsigned char server[EVP_MAX_MD_SIZE];
	size_t server_len; /* 0: not seen */
	/* Bytes OpenSSL had read from the socket when it switched to this secret, i.e. right
	 * after the client Finished: any more means it consumed application records. */
	uint64_t bytes_read;
};

static const struct ktls_suite tls13_suites[] = {
	{ 0x1301, TLS_CIPHER_AES_GCM_128, 16, 4 },
	{ 0x1302, TLS_CIPHER_AES_GCM_256, 32, 4 },
	{ 0x1303, TLS_CIPHER_CHACHA20_POLY1305, 32, 0 },
};

union ktls_crypto_info {
	struct tls_crypto_info info;
	struct tls12_crypto_info_aes_gcm_128 gcm128;
	struct tls12_crypto_info_aes_gcm_256 gcm256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_dirs;
static bool probe_rekey;
static char probe_text[128];

static pthread_once_t exidx_once = PTHREAD_ONCE_INIT;
static int exidx = -1;

/* Appends "fmt" to a "; "-separated reason list (why may be NULL). */
static void why_add(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void why_add(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	size_t used;

	if (why == NULL || whylen == 0)
		return;
	used = strnlen(why, whylen);
	if (used + 3 >= whylen)
		return;
	if (used > 0) {
		memcpy(why + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(why + used, whylen - used, fmt, ap);
	va_end(ap);
}

/* Opens a connected loopback TCP pair; the kernel only takes TCP_ULP on an established socket. */
static int probe_pair(int fds[2])
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t slen = sizeof(sin);
	int lfd, cfd = -1, afd = -1;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -1;
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &slen) < 0)
		goto cleanup;
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		goto cleanup;
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
cleanup:
	if (afd < 0 && cfd >= 0)
		close(cfd);
	close(lfd);
	if (afd < 0)
		return -1;
	fds[0] = cfd;
	fds[1] = afd;
	return 0;
}

/* Tries to install a throw-away key in one direction: proves the kernel has the cipher. */
static bool probe_direction(int fd, int optname)
{
	struct tls12_crypto_info_aes_gcm_128 ci;

	memset(&ci, 0, sizeof(ci));
	ci.info.version = TLS_1_2_VERSION;
	ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
	return setsockopt(fd, SOL_TLS, optname, &ci, sizeof(ci)) == 0;
}

/* Installs a TLS 1.3 key twice on fd: a kernel that takes the second can follow KeyUpdates
 * (6.14+); older ones answer EBUSY. */
static bool probe_second_key(int fd)
{
	struct tls12_crypto_info_aes_gcm_128 ci;
	int i;

	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) < 0)
		return false;
	memset(&ci, 0, sizeof(ci));
	ci.info.version = TLS_1_3_VERSION;
	ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
	for (i = 0; i < 2; i++)
		if (setsockopt(fd, SOL_TLS, TLS_RX, &ci, sizeof(ci)) < 0 ||
		    setsockopt(fd, SOL_TLS, TLS_TX, &ci, sizeof(ci)) < 0)
			return false;
	return true;
}

static void probe_run(void)
{
	int fds[2], err;

	if (probe_pair(fds) < 0) {
		snprintf(probe_text, sizeof(probe_text), "kTLS: not available (probe failed: %s)",
			 strerror(errno));
		return;
	}
	if (setsockopt(fds[0], IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) < 0) {
		err = errno;
		snprintf(probe_text, sizeof(probe_text), "kTLS: not available (%s)",
			 err == ENOENT ? "no tls ULP in this kernel" : strerror(err));
		goto cleanup;
	}
	if (probe_direction(fds[0], TLS_TX))
		probe_dirs |= KTLS_TX;
	if (probe_direction(fds[0], TLS_RX))
		probe_dirs |= KTLS_RX;
	probe_rekey = probe_dirs == (KTLS_TX | KTLS_RX) && probe_second_key(fds[1]);
	if (probe_dirs == (KTLS_TX | KTLS_RX))
		snprintf(probe_text, sizeof(probe_text), "kTLS: available (tx, rx)");
	else if (probe_dirs != 0)
		snprintf(probe_text, sizeof(probe_text), "kTLS: available (%s only)",
			 probe_dirs == KTLS_TX ? "tx" : "rx");
	else
		snprintf(probe_text, sizeof(probe_text),
			 "kTLS: not available (tls ULP present, AES-GCM key refused)");
cleanup:
	close(fds[0]);
	close(fds[1]);
}

int ktls_probe(void)
{
	pthread_once(&probe_once, probe_run);
	return probe_dirs;
}

const char *ktls_probe_describe(void)
{
	pthread_once(&probe_once, probe_run);
	return probe_text;
}

bool ktls_probe_rekey(void)
{
	pthread_once(&probe_once, probe_run);
	return probe_rekey;
}

static void secret_free(struct ktls_secret *sec)
{
	if (sec != NULL)
		OPENSSL_clear_free(sec, sizeof(*sec));
}

/* ex_data destructor: an SSL freed before ktls_enable still wipes its secret. */
static void exdata_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	secret_free(ptr);
}

static void exidx_init(void)
{
	exidx = SSL_get_ex_new_index(0, NULL, NULL, NULL, exdata_free);
}

/* The ex_data slot of the captured secret; -1 if OpenSSL could not give one. */
static int ex_index(void)
{
	pthread_once(&exidx_once, exidx_init);
	return exidx;
}

/* Hex "secret" of a keylog line into sec; -1 on a malformed line. */
static int secret_parse(const char *hex, struct ktls_secret *sec)
{
	size_t n = strlen(hex), i;
	int hi, lo;

	if (n == 0 || n % 2 != 0 || n / 2 > sizeof(sec->secret))
		return -1;
	for (i = 0; i < n / 2; i++) {
		hi = OPENSSL_hexchar2int((unsigned char)hex[2 * i]);
		lo = OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		sec->secret[i] = (unsigned char)(hi << 4 | lo);
	}
	sec->len = n / 2;
	return 0;
}

/* Keylog callback: keeps CLIENT_TRAFFIC_SECRET_0 (and SERVER_TRAFFIC_SECRET_0, for sending
 * KeyUpdates) in memory for ktls_enable; logs nothing. Server side only: on a client the
 * client secret is its own sending key, not the receive key. */
static void keylog_capture(const SSL *cssl, const char *line)
{
	static const char client[] = "CLIENT_TRAFFIC_SECRET_0 ",
			  server[] = "SERVER_TRAFFIC_SECRET_0 ";
	SSL *ssl = (SSL *)cssl; /* ex_data setters take a non-const SSL */
	bool is_client = strncmp(line, client, sizeof(client) - 1) == 0;
	struct ktls_secret *sec, parsed;
	const char *hex;

	if (ex_index() < 0 || !SSL_is_server(ssl) ||
	    (!is_client && strncmp(line, server, sizeof(server) - 1) != 0))
		return;
	hex = strrchr(line, ' ');
	if (hex == NULL || secret_parse(hex + 1, &parsed) < 0)
		goto cleanup;
	sec = SSL_get_ex_data(ssl, exidx);
	if (sec == NULL && (sec = OPENSSL_zalloc(sizeof(*sec))) != NULL &&
	    !SSL_set_ex_data(ssl, exidx, sec)) {
		secret_free(sec);
		sec = NULL;
	}
	if (sec == NULL)
		goto cleanup;
	if (is_client) {
		memcpy(sec->secret, parsed.secret, parsed.len);
		sec->len = parsed.len;
		sec->bytes_read = BIO_number_read(SSL_get_rbio(ssl));
	} else {
		memcpy(sec->server, parsed.secret, parsed.len);
		sec->server_len = parsed.len;
	}
cleanup:
	OPENSSL_cleanse(&parsed, sizeof(parsed));
}

int ktls_ctx_prepare(SSL_CTX *ctx)
{
	if (ctx == NULL || ex_index() < 0)
		return -1;
	SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
	SSL_CTX_set_keylog_callback(ctx, keylog_capture);
	return 0;
}

void ktls_forget(SSL *ssl)
{
	struct ktls_secret *sec;

	if (ssl == NULL || ex_index() < 0)
		return;
	sec = SSL_get_ex_data(ssl, exidx);
	if (sec == NULL)
		return;
	SSL_set_ex_data(ssl, exidx, NULL);
	secret_free(sec);
}

int ktls_expand_label(const EVP_MD *md, const unsigned char *secret, size_t secretlen,
		      const char *label, unsigned char *out, size_t outlen)
{
	unsigned char info[2 + 1 + 255 + 1]; /* HkdfLabel with an empty context */
	size_t llen = strlen(label), n = 0;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, rc = -1;
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[5];

	if (md == NULL || llen + 6 > 255 || outlen > 0xffff)
		return -1;
	info[n++] = (unsigned char)(outlen >> 8);
	info[n++] = (unsigned char)outlen;
	info[n++] = (unsigned char)(llen + 6);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, llen);
	n += llen;
	info[n++] = 0;
	params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						     (char *)EVP_MD_get0_name(md), 0);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret,
						      secretlen);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	params[4] = OSSL_PARAM_construct_end();
	kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	if (kctx != NULL && EVP_KDF_derive(kctx, out, outlen, params) > 0)
		rc = 0;
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

const struct ktls_suite *ktls_suite_by_id(uint16_t id)
{
	for (size_t i = 0; i < sizeof(tls13_suites) / sizeof(tls13_suites[0]); i++)
		if (tls13_suites[i].id == id)
			return &tls13_suites[i];
	return NULL;
}

static const struct ktls_suite *suite_find(const SSL_CIPHER *cipher)
{
	return cipher != NULL ? ktls_suite_by_id(SSL_CIPHER_get_protocol_id(cipher)) : NULL;
}

/* Lays a derived key and 12-byte IV out as the kernel's crypto_info for su; returns its size. */
static size_t crypto_info_fill(const struct ktls_suite *su, const unsigned char *key,
			       const unsigned char *iv, union ktls_crypto_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	ci->info.version = TLS_1_3_VERSION;
	ci->info.cipher_type = su->cipher_type;
	switch (su->cipher_type) {
	case TLS_CIPHER_AES_GCM_128:
		memcpy(ci->gcm128.key, key, su->keylen);
		memcpy(ci->gcm128.salt, iv, su->saltlen);
		memcpy(ci->gcm128.iv, iv + su->saltlen, TLS13_IV_LEN - su->saltlen);
		return sizeof(ci->gcm128);
	case TLS_CIPHER_AES_GCM_256:
		memcpy(ci->gcm256.key, key, su->keylen);
		memcpy(ci->gcm256.salt, iv, su->saltlen);
		memcpy(ci->gcm256.iv, iv + su->saltlen, TLS13_IV_LEN - su->saltlen);
		return sizeof(ci->gcm256);
	default:
		memcpy(ci->chacha.key, key, su->keylen);
		memcpy(ci->chacha.iv, iv, TLS13_IV_LEN);
		return sizeof(ci->chacha);
	}
}

/* Derives the write key/IV of a traffic secret and installs them as optname (TLS_RX or
 * TLS_TX) on fd, record sequence 0. */
static int key_install(const struct ktls_suite *su, const EVP_MD *md, const unsigned char *secret,
		       size_t len, int fd, int optname)
{
	unsigned char key[32], iv[TLS13_IV_LEN];
	union ktls_crypto_info ci;
	size_t cilen;
	int rc = -1, err = 0;

	if (ktls_expand_label(md, secret, len, "key", key, su->keylen) < 0 ||
	    ktls_expand_label(md, secret, len, "iv", iv, sizeof(iv)) < 0) {
		err = EINVAL;
		goto cleanup;
	}
	cilen = crypto_info_fill(su, key, iv, &ci);
	if (setsockopt(fd, SOL_TLS, optname, &ci, cilen) < 0)
		err = errno;
	else
		rc = 0;
cleanup:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	OPENSSL_cleanse(&ci, sizeof(ci));
	errno = err;
	return rc;
}

/* The client's first receive key as TLS_RX on fd. */
static int rx_install(const struct ktls_suite *su, const EVP_MD *md, const struct ktls_secret *sec,
		      int fd)
{
	/* OpenSSL attached the ULP if it took TX; otherwise we attach it here. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) < 0 && errno != EEXIST)
		return -1;
	return key_install(su, md, sec->secret, sec->len, fd, TLS_RX);
}

/* TLS 1.3 receive, which OpenSSL 3.0 leaves in user space: install it if nothing was read. */
static bool tls13_rx_enable(SSL *ssl, int fd, char *why, size_t whylen)
{
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	const struct ktls_suite *su = suite_find(cipher);
	struct ktls_secret *sec = ex_index() >= 0 ? SSL_get_ex_data(ssl, exidx) : NULL;
	BIO *rbio = SSL_get_rbio(ssl);

	if (su == NULL) {
		why_add(why, whylen, "tls13-rx: cipher %s unsupported",
			cipher != NULL ? SSL_CIPHER_get_name(cipher) : "(none)");
		return false;
	}
	if (sec == NULL) {
		why_add(why, whylen, "tls13-rx: no client traffic secret captured");
		return false;
	}
	if (rbio == NULL || BIO_method_type(rbio) != BIO_TYPE_SOCKET ||
	    BIO_get_fd(rbio, NULL) != fd) {
		why_add(why, whylen, "tls13-rx: the SSL does not read fd %d directly", fd);
		return false;
	}
	if (SSL_has_pending(ssl) || BIO_number_read(rbio) != sec->bytes_read) {
		why_add(why, whylen, "tls13-rx: openssl holds unread data");
		return false;
	}
	if (rx_install(su, SSL_CIPHER_get_handshake_digest(cipher), sec, fd) < 0) {
		why_add(why, whylen, "tls13-rx: kernel refused key: %s", strerror(errno));
		return false;
	}
	return true;
}

/* Why OpenSSL left dir (KTLS_TX or KTLS_RX) in user space, as best we can tell. */
static void why_userspace(SSL *ssl, int dir, char *why, size_t whylen)
{
	const char *name = dir == KTLS_TX ? "tx" : "rx";
	BIO *bio = dir == KTLS_TX ? SSL_get_wbio(ssl) : SSL_get_rbio(ssl);
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);

	if (!(ktls_probe() & dir))
		why_add(why, whylen, "%s: no kTLS in this kernel", name);
	else if (!(SSL_get_options(ssl) & SSL_OP_ENABLE_KTLS))
		why_add(why, whylen, "%s: kTLS not enabled on the context", name);
	else if (bio == NULL || BIO_method_type(bio) != BIO_TYPE_SOCKET)
		why_add(why, whylen, "%s: not a socket BIO", name);
	else if (SSL_version(ssl) == TLS1_3_VERSION && suite_find(cipher) == NULL)
		why_add(why, whylen, "%s: cipher %s unsupported", name,
			cipher != NULL ? SSL_CIPHER_get_name(cipher) : "(none)");
	else
		why_add(why, whylen, "%s: openssl kept it in user space (cipher %s)", name,
			cipher != NULL ? SSL_CIPHER_get_name(cipher) : "(none)");
}

int ktls_enable(SSL *ssl, int fd, char *why, size_t whylen)
{
	int dirs = 0;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (ssl == NULL || fd < 0) {
		why_add(why, whylen, "no connection");
		return 0;
	}
	if (BIO_get_ktls_send(SSL_get_wbio(ssl)))
		dirs |= KTLS_TX;
	else
		why_userspace(ssl, KTLS_TX, why, whylen);
	if (BIO_get_ktls_recv(SSL_get_rbio(ssl)))
		dirs |= KTLS_RX;
	else if (SSL_version(ssl) != TLS1_3_VERSION || !(ktls_probe() & KTLS_RX))
		why_userspace(ssl, KTLS_RX, why, whylen);
	else if (tls13_rx_enable(ssl, fd, why, whylen))
		dirs |= KTLS_RX;
	/* kept for ktls_keys_take only where the kernel can follow a KeyUpdate */
	if (!(dirs & KTLS_RX) || SSL_version(ssl) != TLS1_3_VERSION || !ktls_probe_rekey())
		ktls_forget(ssl);
	return dirs;
}

/* Classifies a non-data record that recvmsg delivered into buf (for ktls_read_record). */
static enum ktls_record record_classify(unsigned char type, const unsigned char *buf, size_t n)
{
	switch (type) {
	case REC_ALERT:
		if (n >= 2 && buf[0] == 1 && buf[1] == 0)
			return KTLS_REC_CLOSE_NOTIFY;
		return KTLS_REC_ALERT;
	case REC_HANDSHAKE:
		if (n >= 1 && buf[0] == HS_KEY_UPDATE)
			return KTLS_REC_KEY_UPDATE;
		return KTLS_REC_HANDSHAKE;
	default:
		errno = EPROTO;
		return KTLS_REC_ERROR;
	}
}

int ktls_recv_record(int fd, void *buf, size_t cap, size_t *len, unsigned char *type)
{
	union {
		char buf[CMSG_SPACE(sizeof(unsigned char))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cmsg;
	bool typed = false;
	ssize_t n = -1;
	int tries;

	*len = 0;
	*type = REC_APPLICATION_DATA;
	for (tries = 0; tries < 8; tries++) {
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		n = recvmsg(fd, &msg, 0);
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n < 0)
		return -1;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg))
		if (cmsg->cmsg_level == SOL_TLS && cmsg->cmsg_type == TLS_GET_RECORD_TYPE) {
			*type = *(unsigned char *)CMSG_DATA(cmsg);
			typed = true;
		}
	/* A FIN carries no record type; a record, even an empty one, does. */
	if (n == 0 && !typed && cap > 0)
		return 0;
	*len = (size_t)n;
	return 1;
}

/* Maps a failed recvmsg; EKEYEXPIRED is how 6.14+ kernels say a KeyUpdate needs new keys. */
static enum ktls_record record_error(int err)
{
	if (err == EAGAIN || err == EWOULDBLOCK)
		return KTLS_REC_AGAIN;
	errno = err;
	return err == EKEYEXPIRED ? KTLS_REC_KEY_UPDATE : KTLS_REC_ERROR;
}

enum ktls_record ktls_read_record(int fd, void *buf, size_t cap, size_t *len)
{
	unsigned char type;
	int r = ktls_recv_record(fd, buf, cap, len, &type);

	if (r < 0)
		return record_error(errno);
	if (r == 0)
		return KTLS_REC_EOF;
	if (type == REC_APPLICATION_DATA)
		return KTLS_REC_DATA;
	return record_classify(type, buf, *len);
}

#ifndef TLS_SET_RECORD_TYPE
#define TLS_SET_RECORD_TYPE 1
#endif

/* Sends one record of content type `type` through kernel TX: 0, or -1 with errno (EAGAIN:
 * nothing went out, the socket buffer is full). */
static int record_send(int fd, unsigned char type, const void *buf, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(unsigned char))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = control.buf,
			      .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_TLS;
	cmsg->cmsg_type = TLS_SET_RECORD_TYPE;
	cmsg->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(cmsg) = type;
	ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		errno = EIO; /* a record goes out whole or not at all */
	return -1;
}

int ktls_send_alert(int fd, int level, int description)
{
	unsigned char alert[2] = { (unsigned char)level, (unsigned char)description };
	return record_send(fd, REC_ALERT, alert, sizeof(alert));
}

int ktls_send_close_notify(int fd)
{
	return ktls_send_alert(fd, 1, 0); /* warning, close_notify */
}

/* ---- following TLS 1.3 KeyUpdates in the kernel ---- */

struct ktls_keys *ktls_keys_take(SSL *ssl, int dirs, uint64_t every)
{
	const SSL_CIPHER *cipher = ssl != NULL ? SSL_get_current_cipher(ssl) : NULL;
	struct ktls_secret *sec = ssl != NULL && ex_index() >= 0 ? SSL_get_ex_data(ssl, exidx)
								 : NULL;
	const struct ktls_suite *su = suite_find(cipher);
	struct ktls_keys *k = NULL;

	if (sec == NULL || su == NULL || !(dirs & KTLS_RX) || !ktls_probe_rekey() ||
	    SSL_version(ssl) != TLS1_3_VERSION || sec->len == 0)
		goto cleanup;
	k = OPENSSL_zalloc(sizeof(*k));
	if (k == NULL)
		goto cleanup;
	k->su = su;
	k->md = SSL_CIPHER_get_handshake_digest(cipher);
	k->len = sec->len;
	memcpy(k->rx, sec->secret, sec->len);
	/* the send key is ours to change only if the kernel sends with this very secret */
	k->tx_ok = (dirs & KTLS_TX) && sec->server_len == sec->len;
	if (k->tx_ok)
		memcpy(k->tx, sec->server, sec->len);
	k->every = k->tx_ok ? every : 0;
	k->next = every;
cleanup:
	ktls_forget(ssl);
	return k;
}

void ktls_keys_free(struct ktls_keys *k)
{
	if (k != NULL)
		OPENSSL_clear_free(k, sizeof(*k));
}

/* secret := HKDF-Expand-Label(secret, "traffic upd", "", len) and installs its key as optname;
 * the secret moves on only if the kernel took the key. */
static int key_next(struct ktls_keys *k, unsigned char *secret, int fd, int optname)
{
	unsigned char next[EVP_MAX_MD_SIZE];
	int rc = -1, err = EINVAL;

	if (ktls_expand_label(k->md, secret, k->len, "traffic upd", next, k->len) == 0) {
		rc = key_install(k->su, k->md, next, k->len, fd, optname);
		err = errno;
	}
	if (rc == 0)
		memcpy(secret, next, k->len);
	OPENSSL_cleanse(next, sizeof(next));
	errno = err;
	return rc;
}

int ktls_rekey_rx(struct ktls_keys *k, int fd, bool requested)
{
	if (k == NULL || (requested && !k->tx_ok)) {
		errno = EOPNOTSUPP;
		return -1;
	}
	if (key_next(k, k->rx, fd, TLS_RX) < 0)
		return -1;
	k->counts[0]++;
	k->answer |= requested;
	return 0;
}

bool ktls_rekey_tx_due(const struct ktls_keys *k, uint64_t sent)
{
	return k != NULL && k->tx_ok && (k->answer || (k->every > 0 && sent >= k->next));
}

int ktls_rekey_tx(struct ktls_keys *k, int fd, uint64_t sent)
{
	/* an answer never asks back (RFC 8446 4.6.3); our own re-key asks the client to follow */
	unsigned char msg[5] = { HS_KEY_UPDATE, 0, 0, 1, k->answer ? 0 : 1 };

	if (!k->tx_ok) {
		errno = EOPNOTSUPP;
		return -1;
	}
	if (record_send(fd, REC_HANDSHAKE, msg, sizeof(msg)) < 0)
		return -1;
	/* the KeyUpdate is out under the old key: from here a failure is fatal */
	if (key_next(k, k->tx, fd, TLS_TX) < 0) {
		k->tx_ok = false;
		if (errno == EAGAIN)
			errno = EPROTO;
		return -1;
	}
	k->counts[1]++;
	k->answer = false;
	k->next = sent + k->every;
	return 0;
}

unsigned ktls_keys_count(const struct ktls_keys *k, int dir)
{
	return k == NULL ? 0 : k->counts[dir == KTLS_TX];
}
