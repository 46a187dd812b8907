/* The effective configuration as INI text (tlsplice -T): every key with its value after
 * defaults, relative paths resolved, secrets elided. Operators diff it before a reload, so
 * the order is fixed and every value is written the same way each time. */
#include "tlsplice/config.h"

#include <openssl/tls1.h>
#include <stdio.h>

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
	put_duration(f, "handshake_timeout", fe->handshake_timeout_ms);
	put_duration(f, "idle_timeout", fe->idle_timeout_ms);
	put_str(f, "client_ca", fe->client_ca);
	fprintf(f, "session_tickets = %s\n", on_off(fe->session_tickets));
	put_str(f, "ticket_keys", fe->ticket_keys);
}

static void dump_backend(FILE *f, const struct cfg_backend *be)
{
	static const char *const checks[] = { "tcp", "send-expect", "none" };

	fprintf(f, "\n[backend %s]\n", be->name);
	for (size_t i = 0; i < be->nservers; i++)
		fprintf(f, "server = %s weight=%d%s\n", be->servers[i].addr.text,
			be->servers[i].weight, be->servers[i].backup ? " backup" : "");
	fprintf(f, "balance = roundrobin\n");
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
