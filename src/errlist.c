/* A growable list of formatted messages, so a config check can report every problem at once. */
#include "tlsplice/errlist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void errlist_init(struct errlist *el)
{
	el->msgs = NULL;
	el->n = 0;
	el->cap = 0;
}

void errlist_finish(struct errlist *el)
{
	if (el == NULL)
		return;
	for (size_t i = 0; i < el->n; i++)
		free(el->msgs[i]);
	free(el->msgs);
	errlist_init(el);
}

/* Takes ownership of msg; frees it if the list cannot grow. */
static void errlist_push(struct errlist *el, char *msg)
{
	if (el->n == el->cap) {
		size_t cap = el->cap ? el->cap * 2 : 8;
		char **msgs = realloc(el->msgs, cap * sizeof(*msgs));

		if (msgs == NULL) {
			free(msg);
			return;
		}
		el->msgs = msgs;
		el->cap = cap;
	}
	el->msgs[el->n++] = msg;
}

void errlist_add(struct errlist *el, const char *file, int line, const char *section,
		 const char *key, const char *fmt, ...)
{
	char reason[1024];
	char lineno[24] = "";
	char *msg;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(lineno, sizeof(lineno), ":%d", line);
	if (asprintf(&msg, "%s%s: %s%s%s%s%s%s", file ? file : "", lineno,
		     section ? "[" : "", section ? section : "", section ? "] " : "",
		     key ? key : "", key ? ": " : "", reason) < 0)
		return;
	errlist_push(el, msg);
}

void errlist_move(struct errlist *dst, struct errlist *src)
{
	if (dst == src)
		return;
	for (size_t i = 0; i < src->n; i++)
		errlist_push(dst, src->msgs[i]);
	free(src->msgs);
	errlist_init(src);
}
