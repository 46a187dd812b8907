/* Sizes on the command lines of the load and abuse tools: a number with an optional K, M or
 * G suffix (powers of 1024). Header-only, so the load generator still builds with a bare cc. */
#ifndef TLSPLICE_BENCH_SIZE_H
#define TLSPLICE_BENCH_SIZE_H

#include <stdint.h>
#include <stdlib.h>

static inline uint64_t size_parse(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	switch (*end) {
	case 'k':
	case 'K':
		v *= 1024.0;
		break;
	case 'm':
	case 'M':
		v *= 1048576.0;
		break;
	case 'g':
	case 'G':
		v *= 1073741824.0;
		break;
	default:
		break;
	}
	return v < 0 ? 0 : (uint64_t)v;
}

#endif
