/* Helpers shared by the abuse, soak and scale tools. */
#include "common.h"

#include "../bench/size.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static unsigned char pattern[AB_PATLEN + 65536];

uint64_t ab_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t ab_parse_size(const char *s)
{
	return size_parse(s);
}

uint64_t ab_parse_secs(const char *s)
{
	double v = strtod(s, NULL);

	return v < 0 ? 0 : (uint64_t)(v * 1e6);
}

int ab_resolve(const char *host, const char *port, struct ab_addr *a)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
	struct addrinfo *res;
	int rc = getaddrinfo(host, port, &hints, &res);

	if (rc != 0) {
		fprintf(stderr, "%s:%s: %s\n", host, port, gai_strerror(rc));
		return -1;
	}
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int ab_connect(const struct ab_addr *a)
{
	int one = 1;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

void ab_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

SSL_CTX *ab_client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* No resumption: every connection runs the full handshake path of the proxy. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	return ctx;
}

int ab_client_hello(unsigned char *buf, size_t cap, size_t *len)
{
	SSL_CTX *ctx = ab_client_ctx();
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	int n, rc = -1;

	if (!ssl || !rb || !wb)
		goto out;
	SSL_set_bio(ssl, rb, wb);
	rb = wb = NULL;
	SSL_set_tlsext_host_name(ssl, "localhost");
	SSL_set_connect_state(ssl);
	SSL_do_handshake(ssl); /* wants to read the ServerHello; the hello sits in wbio */
	n = BIO_read(SSL_get_wbio(ssl), buf, (int)cap);
	if (n > 5) {
		*len = (size_t)n;
		rc = 0;
	}
out:
	BIO_free(rb);
	BIO_free(wb);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return rc;
}

void ab_pattern_init(void)
{
	uint32_t x = 0x9e3779b9u;

	for (size_t i = 0; i < AB_PATLEN; i++) {
		x = x * 1103515245u + 12345u;
		pattern[i] = (unsigned char)(x >> 16);
	}
	for (size_t i = AB_PATLEN; i < sizeof(pattern); i++)
		pattern[i] = pattern[i - AB_PATLEN];
}

/* Valid for reads of up to 64 KiB from the returned pointer. */
const unsigned char *ab_pattern_at(uint64_t seed, uint64_t off)
{
	return pattern + (seed + off) % AB_PATLEN;
}

uint64_t ab_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x853c49e6748fea9bull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 2685821657736338717ull;
}

void ab_close_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}
