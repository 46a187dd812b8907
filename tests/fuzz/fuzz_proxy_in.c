/* Fuzz target: the PROXY header parser (proxy_in_parse) and the accept_proxy_from networks.
 * The first byte picks the accepted versions (and, with its high bit, the network parser);
 * the rest is what a peer sent before its TLS hello. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsplice/proxy_in.h"

#define FUZZ_MAX_INPUT 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_cidr(const uint8_t *data, size_t size)
{
	struct proxy_in_cidr net;
	struct sockaddr_storage peer = { .ss_family = AF_INET6 };
	char text[64], err[160] = "";
	size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;

	memcpy(text, data, n);
	text[n] = '\0';
	if (proxy_in_cidr_parse(text, &net, err, sizeof(err)) == 0) {
		if (net.bits < 0 || net.bits > (net.family == AF_INET ? 32 : 128))
			abort();
		(void)proxy_in_peer_allowed(&net, 1, &peer);
	} else if (err[0] == '\0') {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_in_info info;
	char err[160] = "";
	int r;

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	if (data[0] & 0x80) {
		fuzz_cidr(data + 1, size - 1);
		return 0;
	}
	unsigned versions = data[0] & 3u;
	data++, size--;
	r = proxy_in_parse(data, size, versions, &info, err, sizeof(err));
	if (r < 0 && err[0] == '\0')
		abort();
	if (r == 0 && size >= PROXY_IN_MAX)
		abort(); /* "not yet" must never let a header grow past the bound */
	if (r > 0) {
		/* the header is exactly its own bytes: the same answer from them alone, and "not
		 * yet" from one byte less */
		if ((size_t)r > size || (size_t)r > PROXY_IN_MAX)
			abort();
		if (proxy_in_parse(data, (size_t)r, versions, &info, err, sizeof(err)) != r)
			abort();
		if (proxy_in_parse(data, (size_t)r - 1, versions, &info, err, sizeof(err)) != 0)
			abort();
	}
	return 0;
}
