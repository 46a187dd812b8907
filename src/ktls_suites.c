/* The cipher suites this kernel offloads (see ktls_suites.h). Apart from ktls.c's probe,
 * which asks only whether the kernel has kTLS at all: this one asks it about every suite
 * tlsplice could hand over, so that the start-up log can name them. */
#include "tlsplice/ktls_suites.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <linux/tls.h>

#include "tlsplice/ktls.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif
#ifndef TLS_CIPHER_CHACHA20_POLY1305
#define TLS_CIPHER_CHACHA20_POLY1305 54
#endif

/* Each AEAD: the kernel's cipher type, the size of its crypto_info (header, IV, key, salt,
 * record sequence), the TLS 1.3 suite and the TLS 1.2 name. */
static const struct {
	unsigned short cipher_type;
	size_t info_size;
	const char *tls13, *tls12;
} aeads[KTLS_AEAD_N] = {
	{ TLS_CIPHER_AES_GCM_128, 4 + 8 + 16 + 4 + 8, "TLS_AES_128_GCM_SHA256", "AES-128-GCM" },
	{ TLS_CIPHER_AES_GCM_256, 4 + 8 + 32 + 4 + 8, "TLS_AES_256_GCM_SHA384", "AES-256-GCM" },
	{ TLS_CIPHER_CHACHA20_POLY1305, 4 + 12 + 32 + 8, "TLS_CHACHA20_POLY1305_SHA256",
	  "CHACHA20-POLY1305" },
};

_Static_assert(4 + 8 + 16 + 4 + 8 == sizeof(struct tls12_crypto_info_aes_gcm_128), "layout");
_Static_assert(4 + 8 + 32 + 4 + 8 == sizeof(struct tls12_crypto_info_aes_gcm_256), "layout");

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char text[512];

/* A connected loopback TCP pair: the kernel takes TCP_ULP only on an established socket. */
static int loopback_pair(int fds[2])
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t slen = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), cfd = -1, afd = -1;

	if (lfd < 0)
		return -1;
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &slen) < 0)
		goto out;
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cfd >= 0 && connect(cfd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
out:
	close(lfd);
	if (afd < 0) {
		if (cfd >= 0)
			close(cfd);
		return -1;
	}
	fds[0] = cfd;
	fds[1] = afd;
	return 0;
}

/* The directions the kernel takes a (zero) key of aead in version, on a fresh socket. */
static int probe_one(unsigned short version, int aead)
{
	_Alignas(8) unsigned char info[64] = { 0 };
	struct tls_crypto_info hdr = { .version = version, .cipher_type = aeads[aead].cipher_type };
	socklen_t len = (socklen_t)aeads[aead].info_size;
	int fds[2], dirs = 0;

	memcpy(info, &hdr, sizeof(hdr));
	if (loopback_pair(fds) < 0)
		return 0;
	if (setsockopt(fds[0], IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) == 0) {
		if (setsockopt(fds[0], SOL_TLS, TLS_TX, info, len) == 0)
			dirs |= KTLS_TX;
		if (setsockopt(fds[0], SOL_TLS, TLS_RX, info, len) == 0)
			dirs |= KTLS_RX;
	}
	close(fds[0]);
	close(fds[1]);
	return dirs;
}

static void probe_all(void)
{
	struct ktls_suites s;

	if (!ktls_probe()) {
		ktls_suites_format(NULL, text, sizeof(text));
		return;
	}
	for (int a = 0; a < KTLS_AEAD_N; a++) {
		s.dirs[0][a] = probe_one(TLS_1_2_VERSION, a);
		s.dirs[1][a] = probe_one(TLS_1_3_VERSION, a);
	}
	ktls_suites_format(&s, text, sizeof(text));
}

const char *ktls_suites_describe(void)
{
	pthread_once(&once, probe_all);
	return text;
}

/* Appends the AEADs of one TLS version that the kernel takes in some direction. */
static size_t list_version(const struct ktls_suites *s, int v, char *out, size_t outlen)
{
	size_t n = 0;
	bool any = false;

	for (int a = 0; a < KTLS_AEAD_N && n < outlen; a++) {
		int d = s->dirs[v][a];
		if (!d)
			continue;
		n += (size_t)snprintf(out + n, outlen - n, "%s%s%s", any ? ", " : "",
				      v ? aeads[a].tls13 : aeads[a].tls12,
				      d == KTLS_TX   ? " (send only)"
				      : d == KTLS_RX ? " (receive only)"
						     : "");
		any = true;
	}
	if (!any && n < outlen)
		n += (size_t)snprintf(out + n, outlen - n, "none");
	return n;
}

void ktls_suites_format(const struct ktls_suites *s, char *out, size_t outlen)
{
	bool none = true;
	size_t n;

	for (int v = 0; s && v < 2; v++)
		for (int a = 0; a < KTLS_AEAD_N; a++)
			none = none && !s->dirs[v][a];
	if (none) {
		snprintf(out, outlen, "none");
		return;
	}
	n = (size_t)snprintf(out, outlen, "TLS 1.3 ");
	if (n < outlen)
		n += list_version(s, 1, out + n, outlen - n);
	if (n < outlen)
		n += (size_t)snprintf(out + n, outlen - n, "; TLS 1.2 with ");
	if (n < outlen)
		list_version(s, 0, out + n, outlen - n);
}
