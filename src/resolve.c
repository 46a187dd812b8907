/* DNS names of backend servers: resolution at load and a thread that follows the answers.
 * The thread owns one entry per server line that names a host; the latest answers are kept
 * under one lock, so that the main loop, building a generation, copies them consistently. */
#include "tlsplice/resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tlsplice/clock.h"
#include "tlsplice/log.h"

struct entry {
	const struct cfg_backend *be;
	const struct cfg_server *srv;
	struct cfg_addr *addrs; /* the latest answers, sorted */
	size_t n;
	uint64_t due_ms;
};

struct resolver {
	struct config *cfg;
	struct entry *ents;
	size_t nents;
	void (*changed)(void *);
	void *arg;
	pthread_t thread;
	pthread_cond_t cond;
	bool stop;
};

/* Guards the running resolver, its entries' answers and its stop flag. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct resolver *running;

static int addr_cmp(const void *a, const void *b)
{
	const struct cfg_addr *x = a, *y = b;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(&x->ss, &y->ss, x->len);
}

/* "NAME:PORT" into its name and port (the loader checked both). */
static void split_label(const char *label, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon = strrchr(label, ':');
	size_t n = (size_t)(colon - label);
	if (n >= hostlen)
		n = hostlen - 1;
	memcpy(host, label, n);
	host[n] = '\0';
	*port = (uint16_t)atoi(colon + 1);
}

static void addr_fill(struct cfg_addr *a, const struct addrinfo *ai, uint16_t port,
		      const char *label, int line)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	memset(a, 0, sizeof(*a));
	memcpy(&a->ss, ai->ai_addr, ai->ai_addrlen);
	a->len = ai->ai_addrlen;
	if (ai->ai_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
		in->sin_port = htons(port);
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
		in6->sin6_port = htons(port);
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
	}
	/* the loader bounds a name's label so that this fits */
	size_t room = sizeof(a->text) - strlen(ip) - 4;
	snprintf(a->text, sizeof(a->text), "%.*s (%s)", (int)room, label, ip);
	a->line = line;
}

/* Every distinct A/AAAA answer for srv's name, sorted. 0, or the getaddrinfo error (EAI_*;
 * EAI_MEMORY when memory runs out). */
static int resolve_server(const struct cfg_server *srv, struct cfg_addr **out, size_t *n)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	char host[128];
	uint16_t port;
	size_t k = 0;

	split_label(srv->addr.text, host, sizeof(host), &port);
	int rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0)
		return rc;
	struct cfg_addr *v = calloc(RESOLVE_MAX_ANSWERS, sizeof(*v));
	if (!v) {
		freeaddrinfo(res);
		return EAI_MEMORY;
	}
	for (struct addrinfo *ai = res; ai && k < RESOLVE_MAX_ANSWERS; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		addr_fill(&v[k], ai, port, srv->addr.text, srv->addr.line);
		bool dup = false;
		for (size_t j = 0; j < k && !dup; j++)
			dup = addr_cmp(&v[j], &v[k]) == 0;
		k += !dup;
	}
	freeaddrinfo(res);
	qsort(v, k, sizeof(*v), addr_cmp);
	*out = v;
	*n = k;
	return 0;
}

static int copy_addrs(const struct cfg_addr *v, size_t n, struct cfg_addr **out, size_t *nout);

/* On reload: a line the running configuration has too (same backend, same NAME:PORT) takes
 * the answers the resolver holds for it, so that a reload does not wait on the resolver on
 * the main loop. 0 if it did, -1 if srv is to be resolved. */
static int carry_over(const char *backend, struct cfg_server *srv)
{
	int rc = -1;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; running && i < running->nents && rc < 0; i++) {
		const struct entry *e = &running->ents[i];
		if (e->n > 0 && strcmp(e->be->name, backend) == 0 &&
		    strcmp(e->srv->addr.text, srv->addr.text) == 0)
			rc = copy_addrs(e->addrs, e->n, &srv->answers, &srv->nanswers);
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

void resolve_config(struct config *cfg, struct errlist *errs, struct errlist *warns)
{
	char sect[160];
	for (size_t b = 0; b < cfg->nbackends; b++) {
		struct cfg_backend *be = &cfg->backends[b];
		snprintf(sect, sizeof(sect), "backend %s", be->name);
		for (size_t i = 0; i < be->nservers; i++) {
			struct cfg_server *srv = &be->servers[i];
			if (!srv->dns || carry_over(be->name, srv) == 0)
				continue;
			int rc = resolve_server(srv, &srv->answers, &srv->nanswers);
			if (rc == 0 && srv->nanswers > 0)
				continue;
			const char *why = rc ? gai_strerror(rc) : "no address";
			if (be->resolve_required)
				errlist_add(errs, cfg->path, srv->addr.line, sect, "server",
					    "cannot resolve '%s': %s", srv->addr.text, why);
			else if (warns)
				errlist_add(warns, cfg->path, srv->addr.line, sect, "server",
					    "cannot resolve '%s': %s (no address until it "
					    "resolves)",
					    srv->addr.text, why);
		}
	}
}

static int copy_addrs(const struct cfg_addr *v, size_t n, struct cfg_addr **out, size_t *nout)
{
	*out = NULL;
	*nout = 0;
	if (n == 0)
		return 0;
	if (!(*out = malloc(n * sizeof(*v))))
		return -1;
	memcpy(*out, v, n * sizeof(*v));
	*nout = n;
	return 0;
}

int resolve_answers(const struct config *cfg, const struct cfg_server *srv, struct cfg_addr **out,
		    size_t *n)
{
	int rc = 1;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; running && running->cfg == cfg && i < running->nents; i++)
		if (running->ents[i].srv == srv)
			rc = copy_addrs(running->ents[i].addrs, running->ents[i].n, out, n);
	pthread_mutex_unlock(&lock);
	if (rc == 1)
		rc = copy_addrs(srv->answers, srv->nanswers, out, n);
	return rc;
}

/* "A, B, C" of v into buf. */
static void addrs_text(const struct cfg_addr *v, size_t n, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		const char *ip = strrchr(v[i].text, '(');
		int w = snprintf(buf + used, len - used, "%s%.*s", i ? ", " : "",
				 ip ? (int)strcspn(ip + 1, ")") : 0, ip ? ip + 1 : "");
		used += w > 0 ? (size_t)w : 0;
	}
}

/* Resolves e again (without the lock): true if its answers changed. A name that no longer
 * exists has no answers; a failure to ask (timeout, no server) keeps the last ones. */
static bool entry_refresh(struct entry *e)
{
	struct cfg_addr *v = NULL;
	size_t n = 0;
	char list[512];
	int rc = resolve_server(e->srv, &v, &n);
	if (rc != 0 && rc != EAI_NONAME && rc != EAI_NODATA) {
		log_warn("backend %s: cannot resolve %s: %s; its %zu addresses stay", e->be->name,
			 e->srv->addr.text, gai_strerror(rc), e->n);
		return false;
	}
	bool same = n == e->n;
	for (size_t i = 0; same && i < n; i++)
		same = addr_cmp(&v[i], &e->addrs[i]) == 0;
	if (same) {
		free(v);
		return false;
	}
	addrs_text(v, n, list, sizeof(list));
	log_info("backend %s: server %s now resolves to %s", e->be->name, e->srv->addr.text,
		 n ? list : "nothing");
	pthread_mutex_lock(&lock);
	free(e->addrs);
	e->addrs = v;
	e->n = n;
	pthread_mutex_unlock(&lock);
	return true;
}

/* Waits under the lock until due_ms or a stop. */
static void wait_until(struct resolver *r, uint64_t due_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = clock_mono_ms();
	uint64_t wait = due_ms > now ? due_ms - now : 0;
	ts.tv_sec += (time_t)(wait / 1000);
	ts.tv_nsec += (long)(wait % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	if (!r->stop)
		pthread_cond_timedwait(&r->cond, &lock, &ts);
}

static void *resolver_main(void *arg)
{
	struct resolver *r = arg;
	pthread_mutex_lock(&lock);
	while (!r->stop) {
		uint64_t next = UINT64_MAX;
		bool changed = false;
		for (size_t i = 0; i < r->nents && !r->stop; i++) {
			struct entry *e = &r->ents[i];
			if (e->due_ms <= clock_mono_ms()) {
				pthread_mutex_unlock(&lock);
				changed |= entry_refresh(e);
				pthread_mutex_lock(&lock);
				e->due_ms = clock_mono_ms() + e->be->resolve_interval_ms;
			}
			if (e->due_ms < next)
				next = e->due_ms;
		}
		if (changed && !r->stop) {
			pthread_mutex_unlock(&lock);
			r->changed(r->arg);
			pthread_mutex_lock(&lock);
		}
		wait_until(r, next);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

static void resolver_free(struct resolver *r)
{
	for (size_t i = 0; i < r->nents; i++)
		free(r->ents[i].addrs);
	free(r->ents);
	config_unref(r->cfg);
	free(r);
}

/* One entry per name of cfg, starting from the answers found at load. */
static int entries_create(struct resolver *r)
{
	uint64_t now = clock_mono_ms();
	for (size_t b = 0; b < r->cfg->nbackends; b++) {
		const struct cfg_backend *be = &r->cfg->backends[b];
		for (size_t i = 0; i < be->nservers; i++) {
			if (!be->servers[i].dns)
				continue;
			struct entry *grown = realloc(r->ents, (r->nents + 1) * sizeof(*grown));
			if (!grown)
				return -1;
			r->ents = grown;
			struct entry *e = &r->ents[r->nents++];
			*e = (struct entry){ .be = be, .srv = &be->servers[i] };
			e->due_ms = now + be->resolve_interval_ms;
			if (copy_addrs(be->servers[i].answers, be->servers[i].nanswers, &e->addrs,
				       &e->n) < 0)
				return -1;
		}
	}
	return 0;
}

static int cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0)
		return -1;
	int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
	return rc == 0 ? 0 : -1;
}

struct resolver *resolver_start(struct config *cfg, void (*changed)(void *), void *arg)
{
	struct resolver *r = calloc(1, sizeof(*r));
	sigset_t all, old;
	if (!r)
		return NULL;
	r->cfg = config_ref(cfg);
	r->changed = changed;
	r->arg = arg;
	if (entries_create(r) < 0 || r->nents == 0 || cond_init_mono(&r->cond) < 0) {
		errno = r->nents == 0 && r->ents == NULL ? 0 : ENOMEM;
		resolver_free(r);
		return NULL;
	}
	/* running before the thread: a generation it asks for must see its answers */
	pthread_mutex_lock(&lock);
	running = r;
	pthread_mutex_unlock(&lock);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&r->thread, NULL, resolver_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_mutex_lock(&lock);
		running = NULL;
		pthread_mutex_unlock(&lock);
		pthread_cond_destroy(&r->cond);
		resolver_free(r);
		errno = rc;
		return NULL;
	}
	return r;
}

void resolver_stop(struct resolver *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&lock);
	r->stop = true;
	if (running == r)
		running = NULL;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&lock);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cond);
	resolver_free(r);
}
