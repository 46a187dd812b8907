/* Fuzz target: the check_send escapes (config_unescape). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsplice/config.h"

#define FUZZ_MAX_INPUT 16384

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in, *out = NULL;
	size_t outlen = 0;
	char err[256];

	if (size > FUZZ_MAX_INPUT)
		return 0;
	in = malloc(size + 1);
	if (in == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	err[0] = '\0';
	if (config_unescape(in, &out, &outlen, err, sizeof(err)) == 0) {
		/* decoding never grows the text, and the result is NUL-terminated */
		if (outlen > strlen(in) || out[outlen] != '\0')
			abort();
		free(out);
	} else if (err[0] == '\0') {
		abort();
	}
	free(in);
	return 0;
}
