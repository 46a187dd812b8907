/* Fuzz target: the traffic-secret text a binary upgrade carries (ktls_keys_import). */
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>

#include "tlsplice/ktls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char again[KTLS_KEYS_TEXT_LEN + 1];
	struct ktls_keys *k;

	if (size > 4 * KTLS_KEYS_TEXT_LEN)
		return 0;
	k = ktls_keys_import((const char *)data, size);
	if (k == NULL)
		return 0;
	/* what is taken is exactly what export writes back (in lower case) */
	if (size != KTLS_KEYS_TEXT_LEN || ktls_keys_export(k, again, sizeof(again)) < 0 ||
	    strncasecmp(again, (const char *)data, size) != 0)
		abort();
	ktls_keys_free(k);
	return 0;
}
