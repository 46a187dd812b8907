/* The effective configuration as INI text (tlsplice -T): every key with its value after
 * defaults, relative paths resolved, secrets elided. Operators diff it before a reload, so
 * the order is fixed and every value is written the same way each time. */
#include "tlsplice/config.h"

#include <arpa/inet.h>
#include <openssl/tls1.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Durations in the largest unit that divides them, as the file would say them. */
static void put_duration(FILE *f, const char *key, uint64_t ms)
{
	static const struct {
		uint64_t ms;
		const char *unit;
	} units[] = { { 3600000, "h" }, { 60000, "m" }, { 1000, "s" } };

	for (size_t i = 0; i < ARRAY_LEN(units); i++) {
		if (ms != 0 && ms % units[i].ms == 0) {
			fprintf(f, "%s = %llu%s\n", key, (unsigned long long)(ms / units[i].ms),
				units[i].unit);
			return;
		}
	}
	fprintf(f, "%s = %llu%s\n", key, (unsigned long long)ms, ms ? "ms" : "");
}

/* Strings come from the file and are quoted back with their control bytes escaped. */
static void put_str(FILE *f, const char *key, const char *val)
{
	char safe[1024];

	if (val != NULL)
		fprintf(f, "%s = %s\n", key, errlist_escape(val, safe, sizeof(safe)));
	else
		fprintf(f, "; %s = (none)\n", key);
}

static const char *on_off(bool b)
{
	return b ? "on" : "off";
}

static void dump_global(FILE *f, const struct config *cfg)
{
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	static const char *const ktls[] = { "auto", "off", "on" };

	fprintf(f, "[global]\n");
	if (cfg->workers_auto[0])
		fprintf(f, "workers = %d ; auto: %s\n", cfg->workers, cfg->workers_auto);
	else
		fprintf(f, "workers = %d\n", cfg->workers);
	fprintf(f, "max_connections = %ld\n", cfg->max_connections);
	fprintf(f, "log_level = %s\n", levels[cfg->log_level]);
	put_str(f, "access_log", cfg->access_log);
	fprintf(f, "ktls = %s\n", ktls[cfg->ktls]);
	fprintf(f, "splice = %s\n", on_off(cfg->splice));
	fprintf(f, "watch = %s\n", on_off(cfg->watch));
	put_duration(f, "shutdown_grace", cfg->shutdown_grace_ms);
	put_duration(f, "shutdown_timeout", cfg->shutdown_timeout_ms);
	put_str(f, "metrics", cfg->has_metrics ? cfg->metrics.text : NULL);
	put_str(f, "control", cfg->control);
	put_str(f, "user", cfg->user);
	put_str(f, "group", cfg->group);
}

/* The wire-format ALPN list back as the comma list it was written as. */
static void put_alpn(FILE *f, const struct cfg_frontend *fe)
{
	if (fe->alpn == NULL) {
		put_str(f, "alpn", NULL);
		return;
	}
	fprintf(f, "alpn = ");
	for (size_t i = 0; i < fe->alpn_len; i += 1u + fe->alpn[i])
		fprintf(f, "%s%.*s", i ? "," : "", (int)fe->alpn[i],
			(const char *)&fe->alpn[i + 1]);
	fprintf(f, "\n");
}

/* The PROXY keys of a frontend: what it takes from the tier in front, what it sends on. */
static void put_proxy(FILE *f, const struct cfg_frontend *fe)
{
	static const char *const accept[] = { "off", "v1", "v2", "any" };
	static const char *const tlvs[] = { "alpn", "authority", "ssl" };
	char addr[INET6_ADDRSTRLEN];

	fprintf(f, "accept_proxy = %s\n", accept[fe->accept_proxy]);
	if (fe->naccept_proxy_from == 0)
		put_str(f, "accept_proxy_from", NULL);
	for (size_t i = 0; i < fe->naccept_proxy_from; i++) {
		const struct proxy_in_cidr *n = &fe->accept_proxy_from[i];

		if (inet_ntop(n->family, n->addr, addr, sizeof(addr)) == NULL)
			snprintf(addr, sizeof(addr), "?");
		fprintf(f, "%s%s/%d", i ? ", " : "accept_proxy_from = ", addr, n->bits);
		if (i + 1 == fe->naccept_proxy_from)
			fprintf(f, "\n");
	}
	if (fe->proxy_tlvs == 0)
		put_str(f, "proxy_protocol_tlvs", NULL);
	for (size_t i = 0, n = 0; i < ARRAY_LEN(tlvs); i++)
		if (fe->proxy_tlvs & (1u << i))
			fprintf(f, "%s%s", n++ ? ", " : "proxy_protocol_tlvs = ", tlvs[i]);
	if (fe->proxy_tlvs != 0)
		fprintf(f, "\n");
	fprintf(f, "proxy_protocol_crc32c = %s\n", on_off(fe->proxy_crc32c));
}

static void dump_frontend(FILE *f, const struct cfg_frontend *fe)
{
	static const char *const proxy[] = { "off", "v1", "v2" };

	fprintf(f, "\n[frontend %s]\n", fe->name);
	for (size_t i = 0; i < fe->nlistens; i++)
		put_str(f, "listen", fe->listens[i].text);
	for (size_t i = 0; i < fe->ncerts; i++) {
		put_str(f, "cert", fe->certs[i].cert_path);
		put_str(f, "key", fe->certs[i].key_path);
	}
	put_str(f, "backend", fe->backend_name);
	for (size_t i = 0; i < fe->nroutes; i++)
		fprintf(f, "route = %s %s\n", fe->routes[i].pattern, fe->routes[i].backend_name);
	if (fe->nroutes == 0)
		put_str(f, "route", NULL);
	fprintf(f, "tls_min_version = %s\n",
		fe->tls_min_version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2");
	fprintf(f, "tls_max_version = %s\n",
		fe->tls_max_version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2");
	put_str(f, "ciphers", fe->ciphers);
	put_str(f, "ciphersuites", fe->ciphersuites);
	put_alpn(f, fe);
	fprintf(f, "proxy_protocol = %s\n", proxy[fe->proxy_protocol]);
	put_proxy(f, fe);
	put_duration(f, "handshake_timeout", fe->handshake_timeout_ms);
	put_duration(f, "idle_timeout", fe->idle_timeout_ms);
	put_str(f, "client_ca", fe->client_ca);
	put_str(f, "client_crl", fe->client_crl);
	fprintf(f, "session_tickets = %s\n", on_off(fe->session_tickets));
	fprintf(f, "key_update_bytes = %llu\n", (unsigned long long)fe->key_update_bytes);
	put_str(f, "ticket_keys", fe->ticket_keys);
}

static void dump_backend(FILE *f, const struct cfg_backend *be)
{
	static const char *const checks[] = { "tcp", "send-expect", "none" };

	fprintf(f, "\n[backend %s]\n", be->name);
	for (size_t i = 0; i < be->nservers; i++) {
		const struct cfg_server *sv = &be->servers[i];

		fprintf(f, "server = %s weight=%d", sv->addr.text, sv->weight);
		if (sv->maxconn)
			fprintf(f, " maxconn=%u", sv->maxconn);
		fprintf(f, "%s\n", sv->backup ? " backup" : "");
	}
	fprintf(f, "balance = %s\n", be->balance == BALANCE_LEASTCONN ? "leastconn" : "roundrobin");
	put_duration(f, "slowstart", be->slowstart_ms);
	fprintf(f, "backend_maxqueue = %d\n", be->maxqueue);
	put_duration(f, "queue_timeout", be->queue_timeout_ms);
	put_duration(f, "connect_timeout", be->connect_timeout_ms);
	fprintf(f, "retries = %d\n", be->retries);
	fprintf(f, "check = %s\n", checks[be->check]);
	/* what a check sends may carry a password (AUTH ...): only its length is shown */
	if (be->check_send != NULL)
		fprintf(f, "check_send = (elided: %zu bytes)\n", be->check_send_len);
	else
		put_str(f, "check_send", NULL);
	put_str(f, "check_expect", be->check_expect);
	put_duration(f, "check_interval", be->check_interval_ms);
	put_duration(f, "check_timeout", be->check_timeout_ms);
	fprintf(f, "check_rise = %d\n", be->check_rise);
	fprintf(f, "check_fall = %d\n", be->check_fall);
	put_duration(f, "resolve_interval", be->resolve_interval_ms);
	fprintf(f, "resolve_required = %s\n", be->resolve_required ? "on" : "off");
}

void config_dump(const struct config *cfg, FILE *f)
{
	char safe[1024];

	fprintf(f,
		"; effective configuration of %s: defaults filled in, paths resolved, "
		"secrets elided\n",
		errlist_escape(cfg->path, safe, sizeof(safe)));
	dump_global(f, cfg);
	for (size_t i = 0; i < cfg->nfrontends; i++)
		dump_frontend(f, &cfg->frontends[i]);
	for (size_t i = 0; i < cfg->nbackends; i++)
		dump_backend(f, &cfg->backends[i]);
}

/* ---- what a reload changes ---- */

static const struct cfg_frontend *fe_find(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nfrontends; i++)
		if (strcmp(cfg->frontends[i].name, name) == 0)
			return &cfg->frontends[i];
	return NULL;
}

static const struct cfg_backend *be_find(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nbackends; i++)
		if (strcmp(cfg->backends[i].name, name) == 0)
			return &cfg->backends[i];
	return NULL;
}

static bool listen_in(const struct config *cfg, const char *text)
{
	for (size_t i = 0; i < cfg->nfrontends; i++)
		for (size_t l = 0; l < cfg->frontends[i].nlistens; l++)
			if (strcmp(cfg->frontends[i].listens[l].text, text) == 0)
				return true;
	return false;
}

static const struct cfg_server *server_in(const struct cfg_backend *be, const char *text)
{
	for (size_t i = 0; be && i < be->nservers; i++)
		if (strcmp(be->servers[i].addr.text, text) == 0)
			return &be->servers[i];
	return NULL;
}

/* Listeners in a and not in b, as "verb LISTEN (frontend F)" lines. */
static void listens_only_in(const struct config *a, const struct config *b, const char *verb,
			    struct errlist *out)
{
	for (size_t i = 0; i < a->nfrontends; i++)
		for (size_t l = 0; l < a->frontends[i].nlistens; l++)
			if (!listen_in(b, a->frontends[i].listens[l].text))
				errlist_add(out, "reload", 0, NULL, NULL,
					    "listener %s: %s (frontend %s)", verb,
					    a->frontends[i].listens[l].text, a->frontends[i].name);
}

/* Servers of a's backends that b's backend of the same name lacks. */
static void servers_only_in(const struct config *a, const struct config *b, const char *verb,
			    struct errlist *out)
{
	for (size_t i = 0; i < a->nbackends; i++) {
		const struct cfg_backend *be = &a->backends[i];

		for (size_t k = 0; k < be->nservers; k++)
			if (!server_in(be_find(b, be->name), be->servers[k].addr.text))
				errlist_add(out, "reload", 0, NULL, NULL,
					    "server %s: %s (backend %s)", verb,
					    be->servers[k].addr.text, be->name);
	}
}

static bool check_differs(const struct cfg_backend *a, const struct cfg_backend *b)
{
	bool send_differs = (a->check_send == NULL) != (b->check_send == NULL) ||
			    a->check_send_len != b->check_send_len ||
			    (a->check_send &&
			     memcmp(a->check_send, b->check_send, a->check_send_len));
	bool expect_differs = (a->check_expect == NULL) != (b->check_expect == NULL) ||
			      (a->check_expect && strcmp(a->check_expect, b->check_expect));

	return a->check != b->check || a->check_interval_ms != b->check_interval_ms ||
	       a->check_timeout_ms != b->check_timeout_ms || a->check_rise != b->check_rise ||
	       a->check_fall != b->check_fall || send_differs || expect_differs;
}

/* Weights and check settings of the backends both generations have. */
static void backends_changed(const struct config *old, const struct config *cfg,
			     struct errlist *out)
{
	for (size_t i = 0; i < cfg->nbackends; i++) {
		const struct cfg_backend *be = &cfg->backends[i], *was = be_find(old, be->name);

		if (was == NULL) {
			errlist_add(out, "reload", 0, NULL, NULL, "backend added: %s", be->name);
			continue;
		}
		for (size_t k = 0; k < be->nservers; k++) {
			const struct cfg_server *s = &be->servers[k];
			const struct cfg_server *o = server_in(was, s->addr.text);

			if (o && (o->weight != s->weight || o->backup != s->backup))
				errlist_add(out, "reload", 0, NULL, NULL,
					    "server %s (backend %s): weight %d%s -> %d%s",
					    s->addr.text, be->name, o->weight,
					    o->backup ? " backup" : "", s->weight,
					    s->backup ? " backup" : "");
		}
		if (check_differs(was, be))
			errlist_add(out, "reload", 0, NULL, NULL,
				    "backend %s: check settings changed", be->name);
	}
	for (size_t i = 0; i < old->nbackends; i++)
		if (be_find(cfg, old->backends[i].name) == NULL)
			errlist_add(out, "reload", 0, NULL, NULL, "backend removed: %s",
				    old->backends[i].name);
}

/* Frontends come and go by name; every remaining one had its certificates read again. */
static void frontends_changed(const struct config *old, const struct config *cfg,
			      struct errlist *out)
{
	for (size_t i = 0; i < cfg->nfrontends; i++) {
		const struct cfg_frontend *fe = &cfg->frontends[i];

		if (fe_find(old, fe->name) == NULL)
			errlist_add(out, "reload", 0, NULL, NULL, "frontend added: %s", fe->name);
		else
			errlist_add(out, "reload", 0, NULL, NULL,
				    "frontend %s: %zu certificate%s read again", fe->name,
				    fe->ncerts, fe->ncerts == 1 ? "" : "s");
	}
	for (size_t i = 0; i < old->nfrontends; i++)
		if (fe_find(cfg, old->frontends[i].name) == NULL)
			errlist_add(out, "reload", 0, NULL, NULL, "frontend removed: %s",
				    old->frontends[i].name);
}

void config_diff(const struct config *old, const struct config *cfg, struct errlist *out)
{
	listens_only_in(cfg, old, "added", out);
	listens_only_in(old, cfg, "removed", out);
	frontends_changed(old, cfg, out);
	servers_only_in(cfg, old, "added", out);
	servers_only_in(old, cfg, "removed", out);
	backends_changed(old, cfg, out);
}
