/* libFuzzer target: the metrics endpoint's request parser, fed whatever a client may send.
 * Checks what the parser promises: it decides within METRICS_REQ_MAX bytes, every verdict is
 * a status it documents, and an accepted request's path lies inside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsplice/metrics.h"

static int known(int status)
{
	static const int ok[] = { 0, 400, 405, 413, 414, 431, 505 };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (status == ok[i])
			return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes, so ASan sees any read past the end */
	char *buf = malloc(size ? size : 1);
	struct metrics_request r;
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	int done = metrics_parse_request(buf, size, &r);
	if (done != 0 && done != 1)
		abort();
	if (!done && size >= METRICS_REQ_MAX)
		abort(); /* a full buffer must be decided */
	if (done && !known(r.status))
		abort();
	if (done && r.status == 0) {
		if (!r.path || r.path < buf || r.path + r.pathlen > buf + size || r.pathlen == 0 ||
		    r.path[0] != '/' || memchr(r.path, '?', r.pathlen))
			abort();
	}
	free(buf);
	return 0;
}
