/* What the parts of the harness library share and the tests do not see: the per-test state
 * and the small helpers every part uses. See harness.h for the public interface. */
#ifndef TLSPLICE_TEST_HARNESS_INTERNAL_H
#define TLSPLICE_TEST_HARNESS_INTERNAL_H

#include "harness.h"

#include <pthread.h>

#include <openssl/evp.h>

#define MAX_TRACKED 64

/* Per-test state; each Criterion test is its own process, so globals are per test. */
struct harness_state {
	char dir[1024];
	bool passed;
	char **strs; /* strings handed out as const char *, freed at teardown */
	size_t nstrs;
	struct proxy *proxies[MAX_TRACKED];
	size_t nproxies;
	struct backend *backends[MAX_TRACKED];
	size_t nbackends;
	struct tlsc *clients[MAX_TRACKED * 4];
	size_t nclients;
	pthread_mutex_t lock;
};

extern struct harness_state H;

/* "harness: ..." on stderr. */
void harness_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Keeps s (malloc'd) until teardown and returns it. */
const char *harness_keep_str(char *s);
/* vasprintf that returns the string, NULL on failure. */
char *harness_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Milliseconds left until deadline (a harness_now_ms() value), never negative. */
int harness_remaining_ms(int64_t deadline);
/* Short bounded pause used only inside deadline-bounded polling loops. */
void harness_nap_ms(int ms);
/* Non-blocking connect to host:port with a deadline. Returns the connected (non-blocking)
 * fd, or -1 with errno set (ECONNREFUSED, ETIMEDOUT, ...). */
int harness_tcp_connect(const char *host, int port, int timeout_ms);
/* Finishes a SHA-256 context into lower-case hex. */
void harness_sha_final_hex(EVP_MD_CTX *md, char out[65]);

#endif
