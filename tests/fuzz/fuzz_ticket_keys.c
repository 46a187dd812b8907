/* Fuzz target: the ticket_keys file format (tls_keys_parse over a buffer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsplice/tls.h"

#define FUZZ_MAX_INPUT 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_ticket_key *keys;
	size_t n;
	char why[128];
	int rc;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	why[0] = '\0';
	rc = tls_keys_parse((const char *)data, size, &keys, &n, why, sizeof(why));
	/* success gives at least one key and at most one per 109 bytes (108 + newline) */
	if (rc == 0 && (n == 0 || keys == NULL || n > size / 108))
		abort();
	if (rc < 0 && (keys != NULL || n != 0 || why[0] == '\0'))
		abort();
	tls_keys_free(keys, n);
	return 0;
}
