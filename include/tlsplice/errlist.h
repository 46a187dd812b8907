/* A list of formatted messages: every configuration error, not just the first. */
#ifndef TLSPLICE_ERRLIST_H
#define TLSPLICE_ERRLIST_H

#include <stddef.h>

struct errlist {
	char **msgs;
	size_t n;
	size_t cap;
};

void errlist_init(struct errlist *el);
void errlist_finish(struct errlist *el);
/* Appends "FILE:LINE: [SECTION] KEY: reason"; key may be NULL ("FILE:LINE: [SECTION] reason"),
 * section may be NULL ("FILE:LINE: reason"). */
void errlist_add(struct errlist *el, const char *file, int line, const char *section,
		 const char *key, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Moves every message of src to the end of dst. */
void errlist_move(struct errlist *dst, struct errlist *src);

#endif
