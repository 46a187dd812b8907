/* Helpers shared by the abuse, soak and scale tools: clock, addresses, non-blocking connects,
 * a real ClientHello, a seeded byte pattern, and a bounded RESULT line. */
#ifndef TLSPLICE_ABUSE_COMMON_H
#define TLSPLICE_ABUSE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#define AB_PATLEN 65521u /* prime: the pattern never lines up with records or buffers */

struct ab_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

uint64_t ab_now_us(void);
/* Parses a size with an optional K/M/G suffix (binary). */
uint64_t ab_parse_size(const char *s);
/* Parses a duration in seconds, fractions allowed ("0.2"). Returns microseconds. */
uint64_t ab_parse_secs(const char *s);
int ab_resolve(const char *host, const char *port, struct ab_addr *a);
/* Starts a non-blocking connect; returns the fd or -1 (errno kept). */
int ab_connect(const struct ab_addr *a);
/* Raises the soft RLIMIT_NOFILE to the hard limit. */
void ab_raise_nofile(void);
/* A TLS 1.3-capable client context that verifies nothing (the tools test the proxy, not PKI). */
SSL_CTX *ab_client_ctx(void);
/* Writes the first flight of a real OpenSSL client (one ClientHello record) into buf. */
int ab_client_hello(unsigned char *buf, size_t cap, size_t *len);
/* Byte OFF of the stream with seed SEED: position-dependent so reordering is caught. */
void ab_pattern_init(void);
const unsigned char *ab_pattern_at(uint64_t seed, uint64_t off);
/* xorshift64*; never returns the same sequence for two seeds. */
uint64_t ab_rand(uint64_t *state);
/* Closes with a reset instead of a FIN. */
void ab_close_rst(int fd);

#endif
