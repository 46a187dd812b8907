/* Private to src/config/: the loader's state, which load.c (reader, sections, checks) and
 * keys.c (the settings table and its setters) share, and the helpers between the three files.
 * A loader lives for one load, on one thread. */
#ifndef TLSPLICE_CONFIG_INTERNAL_H
#define TLSPLICE_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "tlsplice/config.h"
#include "tlsplice/errlist.h"

#define ERRLEN 512
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum sect_kind { SECT_GLOBAL, SECT_FRONTEND, SECT_BACKEND };

/* One section header as parsed. */
struct psect {
	enum sect_kind kind;
	size_t idx; /* into frontends / backends */
	int line;
	char *label;   /* "frontend web", for messages */
	int *seen;     /* per setting: line it was first set on, 0 if never */
	bool cert_bad; /* the last cert line failed: its key lines have nothing to attach to */
};

struct loader {
	struct config *cfg;
	const char *file;
	char *text;
	size_t len, pos;
	int line;           /* line most recently handed to inih; the handler reports against it */
	char *key, *value;  /* that line's key and value, when it is a key line */
	char rd_label[128]; /* section the reader is in, as written; "" before the first */
	int rd_sect;        /* index into sects of that section, or RD_NONE / RD_SKIP */
	struct psect *cur;  /* section of the key being handled */
	struct psect *sects;
	size_t nsects;
	struct errlist errs; /* sorted by line before they reach the caller */
	/* sections whose header was reported and whose keys were skipped: a backend named in
	 * such a header is not "unknown" but unread, and its errors point there */
	struct skipped_sect {
		char *name;
		int line;
	} * skipped;
	size_t nskipped;
	bool oom;
};

/* load.c: errors keep their line so they can be handed over in file order; the other two
 * record running out of memory in ld->oom. */
void loader_error(struct loader *ld, int line, const char *section, const char *key,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
char *loader_strdup(struct loader *ld, const char *s);
void *loader_grow(struct loader *ld, void *arr, size_t n, size_t size);

/* keys.c: the settings table. keys_count sizes psect.seen; keys_defaults runs the defaults of
 * one section kind into base; keys_handle applies one key line of section ps (base is its
 * struct); keys_required reports the required keys ps lacks; keys_seen_line is the line a key
 * was first set on in ps, 0 if never. */
size_t keys_count(void);
void keys_defaults(struct loader *ld, enum sect_kind kind, void *base);
void keys_handle(struct loader *ld, struct psect *ps, void *base, const char *name,
		 const char *value);
void keys_required(struct loader *ld, const struct psect *ps);
int keys_seen_line(const struct psect *ps, const char *name);
/* The name and section kind of row i (< keys_count()) of the table, for tests. */
const char *keys_name(size_t i, enum sect_kind *kind);

/* values.c: pure helpers the setters share. */
int values_parse_long(const char *s, long *out);
int values_split_words(char *buf, char **words, int max);
bool values_sni_pattern_ok(const char *p);
/* Edit distance (insert, delete, substitute; case-insensitive) of two words of at most
 * VALUES_WORD_MAX bytes; INT_MAX for longer ones. For "did you mean" on unknown keys. */
#define VALUES_WORD_MAX 64
int values_edit_distance(const char *a, const char *b);
int values_split_list(char *buf, char **items, int max);
int values_parse_flags(char *buf, const char *const *names, unsigned *out, const char **bad);

#endif
