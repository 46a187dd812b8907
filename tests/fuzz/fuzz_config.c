/* Fuzz target: the INI reader and every value parser, through config_load_buffer. The files a
 * config may name exist in a scratch folder (c.pem, k.pem, ca.pem, t.keys) so that the parse
 * goes past path checks; host names resolve only when numeric or "localhost" (see below). */
#include <arpa/inet.h>
#include <ftw.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tlsplice/config.h"

#define FUZZ_MAX_INPUT 65536

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/tlsplice-fuzz-config-XXXXXX";
static char ini[sizeof(dir) + 8];

/* Name lookups stay on this machine: a fuzzed host name must never reach a DNS server.
 * This replaces the C library's resolver in this program only. */
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	struct {
		struct addrinfo ai;
		struct sockaddr_storage ss;
	} * r;
	int family = hints ? hints->ai_family : AF_UNSPEC;

	if (node == NULL || service != NULL)
		return EAI_NONAME;
	if (strcmp(node, "localhost") == 0)
		node = "127.0.0.1";
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return EAI_MEMORY;
	r->ai.ai_addr = (struct sockaddr *)&r->ss;
	if (family != AF_INET6 &&
	    inet_pton(AF_INET, node, &((struct sockaddr_in *)&r->ss)->sin_addr) == 1) {
		r->ss.ss_family = AF_INET;
		r->ai.ai_addrlen = sizeof(struct sockaddr_in);
	} else if (family != AF_INET &&
		   inet_pton(AF_INET6, node, &((struct sockaddr_in6 *)&r->ss)->sin6_addr) == 1) {
		r->ss.ss_family = AF_INET6;
		r->ai.ai_addrlen = sizeof(struct sockaddr_in6);
	} else {
		free(r);
		return EAI_NONAME;
	}
	r->ai.ai_family = r->ss.ss_family;
	r->ai.ai_socktype = SOCK_STREAM;
	*res = &r->ai;
	return 0;
}

void freeaddrinfo(struct addrinfo *res)
{
	free(res);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void cleanup(void)
{
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void touch(const char *name, const char *text)
{
	char path[sizeof(dir) + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	snprintf(ini, sizeof(ini), "%s/f.ini", dir);
	touch("c.pem", "not a certificate: the config only checks the file\n");
	touch("k.pem", "not a key\n");
	touch("ca.pem", "not a CA list\n");
	touch("t.keys", "not keys\n");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct errlist errs, warns;
	struct config *cfg;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	errlist_init(&errs);
	errlist_init(&warns);
	cfg = config_load_buffer(ini, (const char *)data, size, &errs, &warns);
	/* a config is returned exactly when there is no error, and every message is one line */
	if ((cfg == NULL) == (errs.n == 0))
		abort();
	for (size_t i = 0; i < errs.n; i++)
		if (strchr(errs.msgs[i], '\n') != NULL || strchr(errs.msgs[i], '\033') != NULL)
			abort();
	for (size_t i = 0; cfg != NULL && i < cfg->nfrontends; i++) {
		int be = config_route(&cfg->frontends[i], "a.example.com");

		if (be < 0 || (size_t)be >= cfg->nbackends)
			abort();
	}
	config_unref(cfg);
	errlist_finish(&errs);
	errlist_finish(&warns);
	return 0;
}
