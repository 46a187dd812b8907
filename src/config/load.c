/* Loading: the line reader around inih, sections, the checks across keys and sections once the
 * file is read, and freeing. Every problem is reported, each against the line it comes from. */
#include "tlsplice/config.h"

#include <ctype.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RD_NONE (-2) /* no section header yet */
#define RD_SKIP (-1) /* a header that was reported: its keys are skipped */

/* ---- loader bookkeeping ---- */

/* Errors keep their line (errlist stores it) so they can be handed over in file order. */
void loader_error(struct loader *ld, int line, const char *section, const char *key,
		  const char *fmt, ...)
{
	char reason[ERRLEN + 128];
	size_t before = ld->errs.n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	errlist_add(&ld->errs, ld->file, line, section, key, "%s", reason);
	if (ld->errs.n == before)
		ld->oom = true;
}

char *loader_strdup(struct loader *ld, const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		ld->oom = true;
	return p;
}

/* Grows arr (n elements) by one zeroed element; NULL (arr untouched) when memory runs out. */
void *loader_grow(struct loader *ld, void *arr, size_t n, size_t size)
{
	char *grown = realloc(arr, (n + 1) * size);

	if (grown == NULL) {
		ld->oom = true;
		return NULL;
	}
	memset(grown + n * size, 0, size);
	return grown;
}

/* ---- sections ---- */

static const char *const sect_kinds[] = { "global", "frontend", "backend" };

static void *sect_base(struct loader *ld, const struct psect *ps)
{
	if (ps->kind == SECT_FRONTEND)
		return &ld->cfg->frontends[ps->idx];
	if (ps->kind == SECT_BACKEND)
		return &ld->cfg->backends[ps->idx];
	return ld->cfg;
}

/* The earlier section of the same kind and name, if any. */
static const struct psect *sect_find(struct loader *ld, enum sect_kind kind, const char *name)
{
	for (size_t i = 0; i < ld->nsects; i++) {
		const struct psect *ps = &ld->sects[i];

		if (ps->kind != kind)
			continue;
		if (kind == SECT_GLOBAL ||
		    (kind == SECT_FRONTEND &&
		     strcmp(ld->cfg->frontends[ps->idx].name, name) == 0) ||
		    (kind == SECT_BACKEND && strcmp(ld->cfg->backends[ps->idx].name, name) == 0))
			return ps;
	}
	return NULL;
}

static bool sect_name_ok(const char *name)
{
	static const char ok[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";

	return name[0] != '\0' && strspn(name, ok) == strlen(name);
}

/* Adds the frontend or backend a new section fills, with its defaults; idx gets its index. */
static int sect_add_item(struct loader *ld, enum sect_kind kind, const char *name, size_t *idx)
{
	struct config *cfg = ld->cfg;
	char *copy = loader_strdup(ld, name);
	void *base;

	if (copy == NULL)
		return -1;
	if (kind == SECT_FRONTEND) {
		struct cfg_frontend *fe;

		fe = loader_grow(ld, cfg->frontends, cfg->nfrontends, sizeof(*fe));
		if (fe == NULL)
			goto fail;
		cfg->frontends = fe;
		*idx = cfg->nfrontends++;
		fe[*idx] = (struct cfg_frontend){ .name = copy, .line = ld->line, .backend = -1 };
		base = &fe[*idx];
	} else {
		struct cfg_backend *be;

		be = loader_grow(ld, cfg->backends, cfg->nbackends, sizeof(*be));
		if (be == NULL)
			goto fail;
		cfg->backends = be;
		*idx = cfg->nbackends++;
		be[*idx] = (struct cfg_backend){ .name = copy, .line = ld->line };
		base = &be[*idx];
	}
	keys_defaults(ld, kind, base);
	return 0;
fail:
	free(copy);
	return -1;
}

static struct psect *sect_open(struct loader *ld, enum sect_kind kind, const char *name)
{
	struct psect ps = { .kind = kind, .line = ld->line };
	struct psect *grown;

	ps.seen = calloc(keys_count(), sizeof(*ps.seen));
	if (kind == SECT_GLOBAL)
		ps.label = loader_strdup(ld, "global");
	else if (asprintf(&ps.label, "%s %s", sect_kinds[kind], name) < 0)
		ps.label = NULL;
	grown = ps.seen && ps.label ? loader_grow(ld, ld->sects, ld->nsects, sizeof(ps)) : NULL;
	if (grown == NULL || (kind != SECT_GLOBAL && sect_add_item(ld, kind, name, &ps.idx) < 0)) {
		ld->sects = grown ? grown : ld->sects;
		ld->oom = true;
		free(ps.seen);
		free(ps.label);
		return NULL;
	}
	ld->sects = grown;
	grown[ld->nsects] = ps;
	return &grown[ld->nsects++];
}

/* Remembers the name of a section whose header was refused (its keys are skipped), so that
 * errors it causes can point at it. */
static int header_skip(struct loader *ld, const char *name)
{
	struct skipped_sect *grown;
	char *copy;

	copy = loader_strdup(ld, name);
	grown = copy ? loader_grow(ld, ld->skipped, ld->nskipped, sizeof(*grown)) : NULL;
	if (grown == NULL) {
		free(copy);
		return RD_SKIP;
	}
	ld->skipped = grown;
	grown[ld->nskipped++] = (struct skipped_sect){ copy, ld->line };
	return RD_SKIP;
}

/* Validates a header's text (between the brackets) at its own line; returns the index of the
 * section it opens, or RD_SKIP if it is unusable. */
static int header_open(struct loader *ld, char *inner)
{
	const char *label = ld->rd_label;
	char *name = inner + strcspn(inner, " \t");
	const struct psect *prev;
	struct psect *ps;
	int kind = -1;

	if (*name != '\0')
		*name++ = '\0';
	name += strspn(name, " \t");
	for (int k = 0; k < (int)ARRAY_LEN(sect_kinds); k++)
		if (strcmp(inner, sect_kinds[k]) == 0)
			kind = k;
	if (kind < 0) {
		loader_error(ld, ld->line, label, NULL, "unknown section");
		return header_skip(ld, name);
	}
	if ((kind == SECT_GLOBAL) != (*name == '\0')) {
		loader_error(ld, ld->line, label, NULL, "%s",
			     kind == SECT_GLOBAL ? "[global] takes no name" : "missing name");
		return RD_SKIP;
	}
	if (kind != SECT_GLOBAL && !sect_name_ok(name)) {
		loader_error(ld, ld->line, label, NULL,
			     "bad name '%s' (letters, digits, '_', '.' and '-')", name);
		return header_skip(ld, name);
	}
	prev = sect_find(ld, (enum sect_kind)kind, name);
	if (prev != NULL) {
		loader_error(ld, ld->line, label, NULL, "duplicate section (first at line %d)",
			     prev->line);
		return header_skip(ld, name);
	}
	ps = sect_open(ld, (enum sect_kind)kind, name);
	if (ps == NULL)
		return RD_SKIP;
	snprintf(ld->rd_label, sizeof(ld->rd_label), "%s", ps->label);
	return (int)(ps - ld->sects);
}

/* ---- the reader inih pulls lines from ---- */

/* Why the reader below does inih's work: Debian builds inih (55 in 12, 58 in 13) with a
 * 200-byte line buffer on the stack (12 reads the rest of a longer line as more lines, 13 drops
 * it; the variables that change this are a Debian patch, not inih's interface), with no
 * callback for a section header or for a line without '=' (it returns only the first such
 * line), and it splits keys at ':' as well and joins an indented line to the key above. So
 * every line is read, checked and numbered here; inih is handed "k=v" for a key line and calls
 * the key handler, which takes the real key and value from the loader. */

static char *lskip(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

static void rstrip(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

/* inih's comment rules: ';' or '#' opening the line, or ';' after whitespace. */
static void comment_cut(char *s)
{
	if (*s == ';' || *s == '#') {
		*s = '\0';
		return;
	}
	for (char *p = s; *p; p++) {
		if (*p == ';' && p > s && isspace((unsigned char)p[-1])) {
			*p = '\0';
			return;
		}
	}
}

static const char *rd_label(const struct loader *ld)
{
	return ld->rd_label[0] ? ld->rd_label : NULL;
}

/* Opens the section a header names; after a header already reported, its keys are skipped
 * rather than each reported again. */
static void header_read(struct loader *ld, char *s)
{
	char *close = strchr(s, ']');
	char *inner;

	ld->rd_sect = RD_SKIP;
	if (close == NULL) {
		snprintf(ld->rd_label, sizeof(ld->rd_label), "%s", s + 1);
		loader_error(ld, ld->line, NULL, NULL, "bad section header '%s' (no ']')", s);
		return;
	}
	*close = '\0';
	inner = lskip(s + 1);
	rstrip(inner);
	snprintf(ld->rd_label, sizeof(ld->rd_label), "%s", inner);
	if (*lskip(close + 1) != '\0')
		loader_error(ld, ld->line, rd_label(ld), NULL, "unexpected text after ']'");
	else
		ld->rd_sect = header_open(ld, inner);
}

/* Splits a key = value line in place into ld->key and ld->value. */
static void key_read(struct loader *ld, char *s)
{
	char *eq = strchr(s, '=');

	if (eq == NULL || eq == s) {
		loader_error(ld, ld->line, rd_label(ld), NULL, "expected 'key = value'");
		return;
	}
	*eq = '\0';
	rstrip(s);
	ld->key = s;
	ld->value = lskip(eq + 1);
}

/* Hands inih one line at a time; inih calls the key handler before asking for the next, so
 * ld->line, ld->key and ld->value are the handler's. Leading whitespace is dropped: an indented
 * key is a key, never a continuation of the value above. */
static char *ini_read(char *str, int num, void *stream)
{
	struct loader *ld = stream;
	char *s, *nl;

	if (ld->pos >= ld->len)
		return NULL;
	s = ld->text + ld->pos;
	nl = memchr(s, '\n', ld->len - ld->pos);
	if (nl != NULL)
		*nl = '\0';
	ld->pos = nl ? (size_t)(nl - ld->text) + 1 : ld->len;
	if (++ld->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	s = lskip(s);
	comment_cut(s);
	rstrip(s);
	ld->key = NULL;
	if (*s == '[')
		header_read(ld, s);
	else if (*s != '\0')
		key_read(ld, s);
	snprintf(str, (size_t)num, "%s", ld->key ? "k=v\n" : "\n");
	return str;
}

static int ini_on_key(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;

	if (ld->rd_sect == RD_NONE) {
		loader_error(ld, ld->line, NULL, ld->key,
			     "outside any section ([global], [frontend NAME] or [backend NAME])");
	} else if (ld->rd_sect >= 0) {
		ld->cur = &ld->sects[ld->rd_sect];
		keys_handle(ld, ld->cur, sect_base(ld, ld->cur), ld->key, ld->value);
	}
	return 1;
}

/* ---- checks across keys and sections, once the whole file is read ---- */

static int backend_find(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nbackends; i++)
		if (strcmp(cfg->backends[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* A name used where a backend is expected is unknown; if a refused header named it, the
 * error says where, so that the cause is read before this knock-on. */
static void unknown_backend(struct loader *ld, int line, const struct psect *ps, const char *key,
			    const char *name)
{
	for (size_t i = 0; i < ld->nskipped; i++) {
		if (strcmp(ld->skipped[i].name, name) == 0) {
			loader_error(ld, line, ps->label, key,
				     "unknown backend '%s' (see line %d: that section was not "
				     "read)",
				     name, ld->skipped[i].line);
			return;
		}
	}
	loader_error(ld, line, ps->label, key, "unknown backend '%s'", name);
}

/* A PROXY header names any address it likes: only listed peers may send one. */
static void accept_proxy_check(struct loader *ld, const struct psect *ps,
			       const struct cfg_frontend *fe)
{
	int from = keys_seen_line(ps, "accept_proxy_from");

	if (fe->accept_proxy != ACCEPT_PROXY_OFF && from == 0)
		loader_error(ld, keys_seen_line(ps, "accept_proxy"), ps->label, "accept_proxy",
			     "requires accept_proxy_from (the peers trusted to send a PROXY "
			     "header, e.g. 10.0.0.0/8)");
	else if (fe->accept_proxy == ACCEPT_PROXY_OFF && fe->naccept_proxy_from > 0)
		loader_error(ld, from, ps->label, "accept_proxy_from",
			     "has no effect while accept_proxy is off");
}

static void frontend_finish(struct loader *ld, const struct psect *ps, struct cfg_frontend *fe)
{
	for (size_t i = 0; i < fe->ncerts; i++)
		if (fe->certs[i].key_path == NULL)
			fe->certs[i].key_path = loader_strdup(ld, fe->certs[i].cert_path);
	if (fe->backend_name != NULL) {
		fe->backend = backend_find(ld->cfg, fe->backend_name);
		if (fe->backend < 0)
			unknown_backend(ld, fe->backend_line, ps, "backend", fe->backend_name);
	}
	for (size_t i = 0; i < fe->nroutes; i++) {
		struct cfg_route *r = &fe->routes[i];

		r->backend = backend_find(ld->cfg, r->backend_name);
		if (r->backend < 0)
			unknown_backend(ld, r->line, ps, "route", r->backend_name);
	}
	if (fe->tls_min_version > fe->tls_max_version)
		loader_error(ld, keys_seen_line(ps, "tls_min_version"), ps->label,
			     "tls_min_version", "TLSv1.3 is above tls_max_version TLSv1.2");
	accept_proxy_check(ld, ps, fe);
	if ((fe->proxy_tlvs || fe->proxy_crc32c) && fe->proxy_protocol != PROXY_V2)
		loader_error(ld,
			     keys_seen_line(ps, fe->proxy_tlvs ? "proxy_protocol_tlvs"
							       : "proxy_protocol_crc32c"),
			     ps->label,
			     fe->proxy_tlvs ? "proxy_protocol_tlvs" : "proxy_protocol_crc32c",
			     "requires proxy_protocol = v2 (TLVs exist only in v2 headers)");
	if (fe->client_crl && !fe->client_ca)
		loader_error(
			ld, fe->client_crl_line, ps->label, "client_crl",
			"requires client_ca (CRLs only apply to verified client certificates)");
}

static const char *const check_names[] = { "tcp", "send-expect", "none" };

/* check_send and check_expect belong to send-expect: set with another check they would be
 * silently ignored while the operator believes the servers are probed with them. */
static void check_keys_used(struct loader *ld, const struct psect *ps, const struct cfg_backend *be)
{
	static const char *const keys[] = { "check_send", "check_expect" };
	const bool set[] = { be->check_send != NULL, be->check_expect != NULL };

	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		int line = keys_seen_line(ps, keys[i]);

		/* a value that was refused has its own error already */
		if (line != 0 && set[i] && be->check != CHECK_SEND_EXPECT)
			loader_error(ld, line, ps->label, keys[i],
				     "not used by check = %s (set check = send-expect, or remove "
				     "it)",
				     check_names[be->check]);
	}
}

static void backend_finish(struct loader *ld, const struct psect *ps, struct cfg_backend *be)
{
	if (be->check == CHECK_SEND_EXPECT && keys_seen_line(ps, "check_send") == 0)
		loader_error(ld, keys_seen_line(ps, "check"), ps->label, "check",
			     "send-expect requires check_send");
	if (be->check == CHECK_SEND_EXPECT && keys_seen_line(ps, "check_expect") == 0)
		loader_error(ld, keys_seen_line(ps, "check"), ps->label, "check",
			     "send-expect requires check_expect");
	check_keys_used(ld, ps, be);
}

/* An earlier listen line with the same address as frontend fi's listen li, if any. */
static const struct cfg_addr *listen_earlier(const struct config *cfg, size_t fi, size_t li)
{
	const struct cfg_addr *a = &cfg->frontends[fi].listens[li];

	for (size_t f = 0; f <= fi; f++) {
		const struct cfg_frontend *fe = &cfg->frontends[f];

		for (size_t l = 0; l < fe->nlistens && (f < fi || l < li); l++)
			if (fe->listens[l].len == a->len &&
			    memcmp(&fe->listens[l].ss, &a->ss, a->len) == 0)
				return &fe->listens[l];
	}
	return NULL;
}

/* With SO_REUSEPORT a second bind of the same address would succeed and silently split
 * its clients between two frontends, so the config refuses it. */
static void listens_check(struct loader *ld, const struct psect *ps, size_t fi)
{
	const struct cfg_frontend *fe = &ld->cfg->frontends[fi];

	for (size_t li = 0; li < fe->nlistens; li++) {
		const struct cfg_addr *prev = listen_earlier(ld->cfg, fi, li);

		if (prev != NULL)
			loader_error(ld, fe->listens[li].line, ps->label, "listen",
				     "'%s' is already used at line %d", fe->listens[li].text,
				     prev->line);
	}
}

static void config_finish(struct loader *ld)
{
	for (size_t i = 0; i < ld->nsects; i++) {
		const struct psect *ps = &ld->sects[i];

		keys_required(ld, ps);
		if (ps->kind == SECT_FRONTEND) {
			frontend_finish(ld, ps, &ld->cfg->frontends[ps->idx]);
			listens_check(ld, ps, ps->idx);
		} else if (ps->kind == SECT_BACKEND) {
			backend_finish(ld, ps, &ld->cfg->backends[ps->idx]);
		}
	}
	if (ld->cfg->nfrontends == 0 && ld->nskipped == 0)
		loader_error(ld, 0, NULL, NULL,
			     "no [frontend NAME] section: nothing would listen (every file needs "
			     "at least one frontend)");
	else if (ld->cfg->nfrontends == 0) /* a misspelt header is the likely cause */
		loader_error(ld, 0, NULL, NULL,
			     "no [frontend NAME] section: nothing would listen (see line %d: that "
			     "section was not read)",
			     ld->skipped[0].line);
	ld->cfg->has_metrics = ld->cfg->metrics.len != 0;
}

/* ---- freeing ---- */

static void frontend_free(struct cfg_frontend *fe)
{
	for (size_t i = 0; i < fe->ncerts; i++) {
		free(fe->certs[i].cert_path);
		free(fe->certs[i].key_path);
	}
	for (size_t i = 0; i < fe->nroutes; i++) {
		free(fe->routes[i].pattern);
		free(fe->routes[i].backend_name);
	}
	free(fe->name);
	free(fe->listens);
	free(fe->certs);
	free(fe->backend_name);
	free(fe->routes);
	free(fe->ciphers);
	free(fe->ciphersuites);
	free(fe->alpn);
	free(fe->client_ca);
	free(fe->ticket_keys);
	free(fe->accept_proxy_from);
	free(fe->client_crl);
}

static void backend_free(struct cfg_backend *be)
{
	free(be->name);
	for (size_t i = 0; i < be->nservers; i++)
		free(be->servers[i].answers);
	free(be->servers);
	free(be->check_send);
	free(be->check_expect);
}

static void config_free(struct config *cfg)
{
	for (size_t i = 0; i < cfg->nfrontends; i++)
		frontend_free(&cfg->frontends[i]);
	for (size_t i = 0; i < cfg->nbackends; i++)
		backend_free(&cfg->backends[i]);
	free(cfg->frontends);
	free(cfg->backends);
	free(cfg->path);
	free(cfg->dir);
	free(cfg->access_log);
	free(cfg->user);
	free(cfg->group);
	free(cfg->control);
	free(cfg);
}

struct config *config_ref(struct config *cfg)
{
	if (cfg != NULL)
		atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
	return cfg;
}

/* acq_rel: the thread that frees must see every other holder's last reads as done. */
void config_unref(struct config *cfg)
{
	if (cfg != NULL && atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
		config_free(cfg);
}

/* ---- loading ---- */

/* Folder relative paths resolve against, made absolute so a later chdir cannot move it. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir, *real;

	if (slash == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (dir == NULL)
		return NULL;
	real = realpath(dir, NULL);
	if (real == NULL)
		return dir;
	free(dir);
	return real;
}

static struct config *config_new(struct loader *ld, const char *path)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		return NULL;
	atomic_init(&cfg->refs, 1);
	cfg->path = strdup(path);
	cfg->dir = dir_of(path);
	if (cfg->path == NULL || cfg->dir == NULL) {
		config_free(cfg);
		return NULL;
	}
	ld->cfg = cfg;
	keys_defaults(ld, SECT_GLOBAL, cfg);
	return cfg;
}

/* Errors found after the last line (missing keys, unknown backends) still read top to bottom. */
static void errors_flush(struct loader *ld, struct errlist *out)
{
	errlist_sort(&ld->errs);
	errlist_move(out, &ld->errs);
}

static void loader_finish(struct loader *ld)
{
	for (size_t i = 0; i < ld->nsects; i++) {
		free(ld->sects[i].label);
		free(ld->sects[i].seen);
	}
	free(ld->sects);
	for (size_t i = 0; i < ld->nskipped; i++)
		free(ld->skipped[i].name);
	free(ld->skipped);
	free(ld->text);
	errlist_finish(&ld->errs);
	config_unref(ld->cfg);
}

static struct config *loader_run(struct loader *ld, struct errlist *errs, bool partial)
{
	struct config *cfg = NULL;
	size_t before = errs->n;
	bool ok;

	if (config_new(ld, ld->file) == NULL) {
		ld->oom = true;
	} else {
		/* inih is handed no line it would reject; -2 is its own buffer failing */
		if (ini_parse_stream(ini_read, ld, ini_on_key, ld) == -2)
			ld->oom = true;
		config_finish(ld);
	}
	ok = !ld->oom && ld->errs.n == 0;
	if (ld->oom)
		loader_error(ld, 0, NULL, NULL, "out of memory");
	errors_flush(ld, errs);
	if (!ok && errs->n == before)
		errlist_add(errs, ld->file, 0, NULL, NULL, "out of memory");
	if (ok || (partial && !ld->oom)) {
		cfg = ld->cfg;
		ld->cfg = NULL;
	}
	return cfg;
}

/* Parses text (len bytes, owned from here on) as the config file named path. */
static struct config *load_text(const char *path, char *text, size_t len, struct errlist *errs,
				bool partial)
{
	struct errlist spare_errs;
	struct loader ld = { .file = path, .text = text, .len = len, .rd_sect = RD_NONE };
	struct config *cfg;

	errlist_init(&spare_errs);
	errlist_init(&ld.errs);
	cfg = loader_run(&ld, errs ? errs : &spare_errs, partial);
	loader_finish(&ld);
	errlist_finish(&spare_errs);
	return cfg;
}

static struct config *load(const char *path, struct errlist *errs, bool partial)
{
	char why[160];
	char *text;
	size_t len;

	if (config_file_read(path, &text, &len, why, sizeof(why)) < 0) {
		if (errs != NULL)
			errlist_add(errs, path, 0, NULL, NULL, "cannot open: %s", why);
		return NULL;
	}
	return load_text(path, text, len, errs, partial);
}

struct config *config_load_buffer(const char *path, const char *text, size_t len,
				  struct errlist *errs, struct errlist *warns)
{
	char *copy = malloc(len + 1);

	if (copy == NULL) {
		if (errs != NULL)
			errlist_add(errs, path, 0, NULL, NULL, "out of memory");
		return NULL;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	return load_text(path, copy, len, errs, false);
}

struct config *config_load(const char *path, struct errlist *errs, struct errlist *warns)
{
	return load(path, errs, false);
}

struct config *config_load_partial(const char *path, struct errlist *errs, struct errlist *warns)
{
	return load(path, errs, true);
}
