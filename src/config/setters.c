/* The setters of keys that no value kind fits (keys.c holds the table and the generic ones),
 * and the path helpers they share: relative paths resolve against the config file's folder. */
#include "tlsplice/config.h"

#include <ctype.h>
#include <grp.h>
#include <openssl/tls1.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "setting.h"
#include "tlsplice/cpus.h"

#define MAX_WORKERS 1024

int setters_oom(char *err, size_t errlen)
{
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* Relative paths resolve against the config file's folder, not the working directory. */
static char *path_resolve(struct loader *ld, const char *val)
{
	char *path;

	if (val[0] == '/')
		return loader_strdup(ld, val);
	if (asprintf(&path, "%s/%s", ld->cfg->dir, val) < 0) {
		ld->oom = true;
		return NULL;
	}
	return path;
}

/* Opening is the honest readability test (access() answers for the real uid, and root passes);
 * only a regular file of bounded size is opened at all, so a FIFO or /dev/zero fails here. */
static int path_check(const char *path, const char *shown, char *err, size_t errlen)
{
	char why[160];

	if (config_file_check(path, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "cannot read '%s': %s", shown, why);
		return -1;
	}
	return 0;
}

/* Resolved, readable path of a file the config names; NULL with a reason otherwise. */
char *setters_path_load(struct loader *ld, const char *val, char *err, size_t errlen)
{
	char *path = path_resolve(ld, val);

	if (path == NULL) {
		setters_oom(err, errlen);
		return NULL;
	}
	if (path_check(path, path, err, errlen) < 0) { /* as resolved: the file it tried */
		free(path);
		return NULL;
	}
	return path;
}

/* A value in double quotes keeps its outer spaces; the quotes themselves are not part of it. */
static char *unquote(struct loader *ld, const char *val)
{
	size_t len = strlen(val);
	char *s;

	if (len < 2 || val[0] != '"' || val[len - 1] != '"')
		return loader_strdup(ld, val);
	s = strndup(val + 1, len - 2);
	if (s == NULL)
		ld->oom = true;
	return s;
}

int set_workers(struct loader *ld, const struct setting *st, void *base, const char *val, char *err,
		size_t errlen)
{
	long v;

	struct config *cfg = base;
	cfg->workers_auto[0] = '\0';
	if (strcasecmp(val, "auto") == 0) {
		v = cpus_available(cfg->workers_auto, sizeof(cfg->workers_auto));
		v = v > MAX_WORKERS ? MAX_WORKERS : v;
	} else if (values_parse_long(val, &v) < 0 || v < 1 || v > MAX_WORKERS) {
		snprintf(err, errlen, "bad value '%s' (auto or 1..%d)", val, MAX_WORKERS);
		return -1;
	}
	cfg->workers = (int)v;
	return 0;
}

int set_access_log(struct loader *ld, const struct setting *st, void *base, const char *val,
		   char *err, size_t errlen)
{
	static const char *const streams[] = { "stdout", "stderr", "off" };
	struct config *cfg = base;
	char *s = NULL;

	for (size_t i = 0; i < ARRAY_LEN(streams) && s == NULL; i++)
		if (strcasecmp(val, streams[i]) == 0)
			s = loader_strdup(ld, streams[i]);
	if (s == NULL && !ld->oom)
		s = path_resolve(ld, val);
	if (s == NULL)
		return setters_oom(err, errlen);
	free(cfg->access_log);
	cfg->access_log = s;
	return 0;
}

/* The control socket's path, resolved; it must fit a Unix socket address (108 bytes). */
int set_control(struct loader *ld, const struct setting *st, void *base, const char *val, char *err,
		size_t errlen)
{
	struct config *cfg = base;
	char *s = ld->oom ? NULL : path_resolve(ld, val);

	if (s == NULL)
		return setters_oom(err, errlen);
	if (strlen(s) >= CFG_CONTROL_PATH_MAX) {
		snprintf(err, errlen, "path '%s' is longer than a Unix socket allows (%d bytes)", s,
			 CFG_CONTROL_PATH_MAX - 1);
		free(s);
		return -1;
	}
	free(cfg->control);
	cfg->control = s;
	return 0;
}

int check_user(const char *val, char *err, size_t errlen)
{
	if (getpwnam(val) == NULL) {
		snprintf(err, errlen, "unknown user '%s'", val);
		return -1;
	}
	return 0;
}

int check_group(const char *val, char *err, size_t errlen)
{
	if (getgrnam(val) == NULL) {
		snprintf(err, errlen, "unknown group '%s'", val);
		return -1;
	}
	return 0;
}

int set_listen(struct loader *ld, const struct setting *st, void *base, const char *val, char *err,
	       size_t errlen)
{
	struct cfg_frontend *fe = base;
	struct cfg_addr addr = { .line = ld->line };
	struct cfg_addr *grown;

	if (config_parse_addr(val, true, &addr, err, errlen) < 0)
		return -1;
	grown = loader_grow(ld, fe->listens, fe->nlistens, sizeof(*grown));
	if (grown == NULL)
		return setters_oom(err, errlen);
	fe->listens = grown;
	fe->listens[fe->nlistens++] = addr;
	return 0;
}

/* The shipped config/tlsplice.ini names demo.pem, which the demo script makes: on a fresh
 * checkout -t says so instead of leaving the operator to find out. */
static void demo_cert_hint(const char *val, char *err, size_t errlen)
{
	const char *slash = strrchr(val, '/');
	size_t used = strlen(err);

	if (strcmp(slash ? slash + 1 : val, "demo.pem") == 0 && strstr(err, "No such file") &&
	    used < errlen)
		snprintf(err + used, errlen - used,
			 " (scripts/demo.sh makes the demo certificate, or see \"Building by "
			 "hand\" in README.md)");
}

int set_cert(struct loader *ld, const struct setting *st, void *base, const char *val, char *err,
	     size_t errlen)
{
	struct cfg_frontend *fe = base;
	struct cfg_cert *grown;
	char *path;

	ld->cur->cert_bad = true;
	path = setters_path_load(ld, val, err, errlen);
	if (path == NULL) {
		demo_cert_hint(val, err, errlen);
		return -1;
	}
	grown = loader_grow(ld, fe->certs, fe->ncerts, sizeof(*grown));
	if (grown == NULL) {
		free(path);
		return setters_oom(err, errlen);
	}
	fe->certs = grown;
	fe->certs[fe->ncerts].cert_path = path;
	fe->certs[fe->ncerts].line = ld->line;
	fe->ncerts++;
	ld->cur->cert_bad = false;
	return 0;
}

/* A key belongs to the cert line before it; after a cert that failed, only its path is checked. */
int set_key(struct loader *ld, const struct setting *st, void *base, const char *val, char *err,
	    size_t errlen)
{
	struct cfg_frontend *fe = base;
	struct cfg_cert *c = fe->ncerts ? &fe->certs[fe->ncerts - 1] : NULL;
	char *path;

	if (!ld->cur->cert_bad && c == NULL) {
		snprintf(err, errlen,
			 "no cert line before it (a key belongs to the cert above it)");
		return -1;
	}
	if (!ld->cur->cert_bad && c->key_line != 0) {
		snprintf(err, errlen, "the cert at line %d already has a key (line %d)", c->line,
			 c->key_line);
		return -1;
	}
	path = setters_path_load(ld, val, err, errlen);
	if (path == NULL) {
		if (c && !ld->cur->cert_bad) {
			c->key_line = ld->line;
			c->bad = true; /* reported here; nothing to load later */
		}
		return -1;
	}
	if (ld->cur->cert_bad) {
		free(path);
		return 0;
	}
	c->key_path = path;
	c->key_line = ld->line;
	return 0;
}

static int route_add(struct loader *ld, struct cfg_frontend *fe, const char *pattern,
		     const char *backend, char *err, size_t errlen)
{
	struct cfg_route r = { .backend = -1, .line = ld->line };
	struct cfg_route *grown;

	r.pattern = loader_strdup(ld, pattern);
	r.backend_name = loader_strdup(ld, backend);
	grown = r.pattern && r.backend_name ? loader_grow(ld, fe->routes, fe->nroutes, sizeof(r))
					    : NULL;
	if (grown == NULL) {
		free(r.pattern);
		free(r.backend_name);
		return setters_oom(err, errlen);
	}
	for (char *p = r.pattern; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	fe->routes = grown;
	fe->routes[fe->nroutes++] = r;
	return 0;
}

int set_route(struct loader *ld, const struct setting *st, void *base, const char *val, char *err,
	      size_t errlen)
{
	char *buf = loader_strdup(ld, val);
	char *w[2];
	int n, rc = -1;

	if (buf == NULL)
		return setters_oom(err, errlen);
	n = values_split_words(buf, w, 2);
	if (n != 2)
		snprintf(err, errlen, "expected 'SNI-PATTERN BACKEND', got '%s'", val);
	else if (!values_sni_pattern_ok(w[0]))
		snprintf(err, errlen, "bad pattern '%s' (a host name or *.domain)", w[0]);
	else
		rc = route_add(ld, base, w[0], w[1], err, errlen);
	free(buf);
	return rc;
}

/* "h2,http/1.1" becomes the length-prefixed wire list OpenSSL's ALPN callback works on. */
int set_alpn(struct loader *ld, const struct setting *st, void *base, const char *val, char *err,
	     size_t errlen)
{
	struct cfg_frontend *fe = base;
	unsigned char *wire = malloc(strlen(val) + 1);
	size_t n = 0;
	const char *p = val;

	if (wire == NULL)
		return setters_oom(err, errlen);
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len > 0 && isspace((unsigned char)*p))
			p++, len--;
		while (len > 0 && isspace((unsigned char)p[len - 1]))
			len--;
		if (len < 1 || len > 255) {
			snprintf(err, errlen, "bad alpn '%s' (each protocol 1..255 bytes)", val);
			free(wire);
			return -1;
		}
		wire[n++] = (unsigned char)len;
		memcpy(wire + n, p, len);
		n += len;
		if (end == NULL)
			break;
		p = end + 1;
	}
	free(fe->alpn);
	fe->alpn = wire;
	fe->alpn_len = n;
	return 0;
}

/* Reads the words after HOST:PORT: weight=N, maxconn=N and backup. */
static int server_options(struct cfg_server *srv, char **w, int n, char *err, size_t errlen)
{
	for (int i = 1; i < n; i++) {
		long v;

		if (strncmp(w[i], "weight=", 7) == 0) {
			if (values_parse_long(w[i] + 7, &v) == 0 && v == 0) {
				snprintf(err, errlen,
					 "weight 0 is not supported (1..256): to stop new "
					 "connections to a server, run 'tlsplice ctl set server "
					 "BACKEND/ADDR state drain', or remove its line and "
					 "reload; open connections finish");
				return -1;
			}
			if (values_parse_long(w[i] + 7, &v) < 0 || v < 1 || v > 256) {
				snprintf(err, errlen, "bad weight '%s' (1..256)", w[i] + 7);
				return -1;
			}
			srv->weight = (int)v;
		} else if (strncmp(w[i], "maxconn=", 8) == 0) {
			if (values_parse_long(w[i] + 8, &v) < 0 || v < 1 || v > 10000000) {
				snprintf(err, errlen, "bad maxconn '%s' (1..10000000)", w[i] + 8);
				return -1;
			}
			srv->maxconn = (unsigned)v;
		} else if (strcmp(w[i], "backup") == 0) {
			srv->backup = true;
		} else {
			snprintf(err, errlen,
				 "unknown server option '%s' (weight=N, maxconn=N, backup)", w[i]);
			return -1;
		}
	}
	return 0;
}

/* A host name is resolved later (resolve.h), not here: 1 for a name, 0 for an address. */
static int server_name(struct cfg_server *srv, const char *word, char *err, size_t errlen)
{
	uint16_t port;
	int line = srv->addr.line;
	int rc = config_parse_name(word, &srv->addr, &port, err, errlen);

	srv->addr.line = line;
	return rc;
}

int set_server(struct loader *ld, const struct setting *st, void *base, const char *val, char *err,
	       size_t errlen)
{
	struct cfg_backend *be = base;
	struct cfg_server srv = { .weight = 1, .addr.line = ld->line };
	struct cfg_server *grown;
	char *buf = loader_strdup(ld, val);
	char *w[5];
	int n, name = 0, rc = -1;

	if (buf == NULL)
		return setters_oom(err, errlen);
	n = values_split_words(buf, w, 5);
	if (n < 1)
		snprintf(err, errlen, "expected 'HOST:PORT [weight=N] [maxconn=N] [backup]'");
	else if ((name = server_name(&srv, w[0], err, errlen)) >= 0 &&
		 (name == 1 || config_parse_addr(w[0], false, &srv.addr, err, errlen) == 0) &&
		 server_options(&srv, w, n, err, errlen) == 0)
		rc = 0;
	free(buf);
	if (rc < 0)
		return -1;
	srv.dns = name == 1;
	grown = loader_grow(ld, be->servers, be->nservers, sizeof(*grown));
	if (grown == NULL)
		return setters_oom(err, errlen);
	be->servers = grown;
	be->servers[be->nservers++] = srv;
	return 0;
}

int set_check_send(struct loader *ld, const struct setting *st, void *base, const char *val,
		   char *err, size_t errlen)
{
	struct cfg_backend *be = base;
	char *text = unquote(ld, val);
	char *bytes;
	size_t len;
	int rc;

	if (text == NULL)
		return setters_oom(err, errlen);
	rc = config_unescape(text, &bytes, &len, err, errlen);
	free(text);
	if (rc < 0)
		return -1;
	free(be->check_send);
	be->check_send = bytes;
	be->check_send_len = len;
	return 0;
}

int set_check_expect(struct loader *ld, const struct setting *st, void *base, const char *val,
		     char *err, size_t errlen)
{
	struct cfg_backend *be = base;
	char *text = unquote(ld, val);

	if (text == NULL)
		return setters_oom(err, errlen);
	if (text[0] == '\0') {
		free(text);
		snprintf(err, errlen, "empty value");
		return -1;
	}
	free(be->check_expect);
	be->check_expect = text;
	return 0;
}

/* "10.0.0.0/8, ::1": the networks whose peers may send a PROXY header. */
int set_accept_proxy_from(struct loader *ld, const struct setting *st, void *base, const char *val,
			  char *err, size_t errlen)
{
	struct cfg_frontend *fe = base;
	char *buf = loader_strdup(ld, val), *w[64];
	int n = buf ? values_split_list(buf, w, 64) : -1;
	struct proxy_in_cidr *nets = n > 0 ? calloc((size_t)n, sizeof(*nets)) : NULL;
	int rc = -1;

	if (buf == NULL || (n > 0 && nets == NULL))
		setters_oom(err, errlen);
	else if (n < 0)
		snprintf(err, errlen, "expected 'CIDR[, CIDR...]' (at most 64), got '%s'", val);
	for (int i = 0; nets && i < n; i++)
		if (proxy_in_cidr_parse(w[i], &nets[i], err, errlen) < 0)
			goto done;
	if (nets) {
		free(fe->accept_proxy_from);
		fe->accept_proxy_from = nets;
		fe->naccept_proxy_from = (size_t)n;
		nets = NULL;
		rc = 0;
	}
done:
	free(nets);
	free(buf);
	return rc;
}

/* "alpn, authority, ssl": the order of the names is the bit order of PROXY_TLV_*. */
int set_proxy_tlvs(struct loader *ld, const struct setting *st, void *base, const char *val,
		   char *err, size_t errlen)
{
	static const char *const names[] = { "alpn", "authority", "ssl", NULL };
	char *buf = loader_strdup(ld, val);
	const char *bad = NULL;
	unsigned mask;
	int rc = buf ? values_parse_flags(buf, names, &mask, &bad) : setters_oom(err, errlen);

	if (buf && rc < 0)
		snprintf(err, errlen, "bad TLV '%s' (alpn, authority, ssl)", bad ? bad : "");
	else if (rc == 0)
		((struct cfg_frontend *)base)->proxy_tlvs = mask;
	free(buf);
	return rc;
}
