/* A list of formatted messages: every configuration error, not just the first. */
#ifndef TLSPLICE_ERRLIST_H
#define TLSPLICE_ERRLIST_H

#include <stddef.h>

/* msgs[i] was reported against lines[i] of its file (0: no line), so that a list can be put
 * in file order without reading the number back out of the text. */
struct errlist {
	char **msgs;
	int *lines;
	size_t n;
	size_t cap;
};

void errlist_init(struct errlist *el);
void errlist_finish(struct errlist *el);
/* Appends "FILE:LINE: [SECTION] KEY: reason" with every byte outside printable ASCII written
 * as \xHH, so that input quoted in a message (an ESC sequence in a value) never reaches the
 * operator's terminal as is; key may be NULL ("FILE:LINE: [SECTION] reason"),
 * section may be NULL ("FILE:LINE: reason"). */
void errlist_add(struct errlist *el, const char *file, int line, const char *section,
		 const char *key, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Copies in to out (outlen > 0) with every byte outside printable ASCII as \xHH; truncates
 * at a whole character. Returns out. */
char *errlist_escape(const char *in, char *out, size_t outlen);
/* Moves every message of src to the end of dst. */
void errlist_move(struct errlist *dst, struct errlist *src);
/* Orders the messages by line, keeping the order of messages on the same line; messages
 * without a line come first. Left as it is if memory runs out. */
void errlist_sort(struct errlist *el);

#endif
