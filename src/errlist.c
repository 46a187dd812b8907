/* A growable list of formatted messages, so a config check can report every problem at once. */
#include "tlsplice/errlist.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void errlist_init(struct errlist *el)
{
	el->msgs = NULL;
	el->lines = NULL;
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
	free(el->lines);
	errlist_init(el);
}

/* cap counts the slots both arrays have; msgs may have more after a failed second step. */
static int errlist_grow(struct errlist *el)
{
	size_t cap = el->cap ? el->cap * 2 : 8;
	char **msgs = realloc(el->msgs, cap * sizeof(*msgs));
	int *lines;

	if (msgs == NULL)
		return -1;
	el->msgs = msgs;
	lines = realloc(el->lines, cap * sizeof(*lines));
	if (lines == NULL)
		return -1;
	el->lines = lines;
	el->cap = cap;
	return 0;
}

/* Takes ownership of msg; frees it if the list cannot grow. */
static void errlist_push(struct errlist *el, char *msg, int line)
{
	if (el->n == el->cap && errlist_grow(el) < 0) {
		free(msg);
		return;
	}
	el->msgs[el->n] = msg;
	el->lines[el->n++] = line;
}

char *errlist_escape(const char *in, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		bool plain = *p >= 0x20 && *p < 0x7f;
		size_t need = plain ? 1 : 4;

		if (n + need >= outlen)
			break;
		if (plain) {
			out[n++] = (char)*p;
			continue;
		}
		out[n++] = '\\';
		out[n++] = 'x';
		out[n++] = hex[*p >> 4];
		out[n++] = hex[*p & 15];
	}
	out[n] = '\0';
	return out;
}

/* Messages quote what the config says: every byte a terminal could act on is escaped. */
void errlist_add(struct errlist *el, const char *file, int line, const char *section,
		 const char *key, const char *fmt, ...)
{
	char reason[1024];
	char lineno[24] = "";
	char *msg, *safe;
	size_t cap;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(lineno, sizeof(lineno), ":%d", line);
	if (asprintf(&msg, "%s%s: %s%s%s%s%s%s", file ? file : "", lineno, section ? "[" : "",
		     section ? section : "", section ? "] " : "", key ? key : "", key ? ": " : "",
		     reason) < 0)
		return;
	cap = strlen(msg) * 4 + 1;
	safe = malloc(cap);
	if (safe != NULL)
		errlist_escape(msg, safe, cap);
	free(msg);
	if (safe != NULL)
		errlist_push(el, safe, line > 0 ? line : 0);
}

void errlist_move(struct errlist *dst, struct errlist *src)
{
	if (dst == src)
		return;
	for (size_t i = 0; i < src->n; i++)
		errlist_push(dst, src->msgs[i], src->lines[i]);
	free(src->msgs);
	free(src->lines);
	errlist_init(src);
}

struct lined_msg {
	int line;
	size_t seq;
	char *msg;
};

static int lined_cmp(const void *a, const void *b)
{
	const struct lined_msg *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* qsort is not stable: the position a message was added at breaks ties. */
void errlist_sort(struct errlist *el)
{
	struct lined_msg *v;

	if (el->n < 2)
		return;
	v = malloc(el->n * sizeof(*v));
	if (v == NULL)
		return;
	for (size_t i = 0; i < el->n; i++)
		v[i] = (struct lined_msg){ el->lines[i], i, el->msgs[i] };
	qsort(v, el->n, sizeof(*v), lined_cmp);
	for (size_t i = 0; i < el->n; i++) {
		el->msgs[i] = v[i].msg;
		el->lines[i] = v[i].line;
	}
	free(v);
}
