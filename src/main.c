/* tlsplice: arguments, -t, start-up, signals. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "tlsplice/clock.h"
#include "tlsplice/config.h"
#include "tlsplice/health.h"
#include "tlsplice/ktls.h"
#include "tlsplice/log.h"
#include "tlsplice/metrics.h"
#include "tlsplice/privs.h"
#include "tlsplice/proc.h"
#include "tlsplice/runtime.h"
#include "tlsplice/watch.h"
#include "tlsplice/worker.h"

#define DEFAULT_CONFIG "/etc/tlsplice/tlsplice.ini"
#define RELOAD_RETRY_MS 20 /* a worker has not taken the previous generation yet */

enum { EXIT_CONFIG = 1, EXIT_USAGE = 2, EXIT_RUNTIME = 3 };

struct opts {
	const char *config;
	bool check;
	const char *level;
};

struct app {
	const char *path;
	bool level_override; /* -l given: it wins over log_level on reload too */
	enum log_level level;
	struct proc proc;
	struct health *health;
	struct event_base *base;
	struct event *sig[4];
	struct event *force;
	struct event *reload_retry;
	struct metrics *metrics;
	struct watch *watch; /* NULL: watch = off, or inotify failed */
	bool stopping;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: tlsplice [-c FILE] [-t] [-V] [-h] [-l LEVEL]\n"
		   "  -c, --config FILE     configuration file (default " DEFAULT_CONFIG ")\n"
		   "  -t, --check           validate the configuration and exit\n"
		   "  -V, --version         print versions and kernel TLS support\n"
		   "  -l, --log-level LEVEL error, warn, info or debug (overrides log_level)\n"
		   "  -h, --help            this help\n");
}

static void version(void)
{
	printf("tlsplice %s\n", TLSPLICE_VERSION);
	printf("OpenSSL %s (built with %s)\n", OpenSSL_version(OPENSSL_FULL_VERSION_STRING),
	       OPENSSL_FULL_VERSION_STR);
	printf("libevent %s\n", event_get_version());
	printf("%s\n", ktls_probe_describe());
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "log-level", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	enum log_level lvl;
	int ch;
	o->config = DEFAULT_CONFIG;
	while ((ch = getopt_long(argc, argv, "c:tVhl:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->config = optarg; break;
		case 't': o->check = true; break;
		case 'V': version(); return 0;
		case 'h': usage(stdout); return 0;
		case 'l':
			if (log_parse_level(optarg, &lvl) < 0) {
				fprintf(stderr, "tlsplice: bad log level '%s' (error, warn, info, debug)\n",
					optarg);
				return EXIT_USAGE;
			}
			o->level = optarg;
			break;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tlsplice: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	return -1;
}

static void print_errs(const struct errlist *el)
{
	for (size_t i = 0; i < el->n; i++)
		fprintf(stderr, "%s\n", el->msgs[i]);
}

/* The line number of a "FILE:LINE: ..." message of path, 0 if it has none. */
static long msg_line(const char *msg, size_t pathlen)
{
	return msg[pathlen] == ':' ? strtol(msg + pathlen + 1, NULL, 10) : 0;
}

/* Orders the messages of el by line (stable), so parse and certificate errors interleave
 * as they stand in the file. */
static void sort_by_line(struct errlist *el, const char *path)
{
	size_t plen = strlen(path);
	for (size_t i = 1; i < el->n; i++) {
		char *m = el->msgs[i];
		long line = msg_line(m, plen);
		size_t j = i;
		for (; j > 0 && msg_line(el->msgs[j - 1], plen) > line; j--)
			el->msgs[j] = el->msgs[j - 1];
		el->msgs[j] = m;
	}
}

/* Loads and fully validates the file (certificates too), reporting every error at once.
 * NULL after printing them. */
static struct runtime *load(const char *path, struct errlist *warns)
{
	struct errlist errs;
	errlist_init(&errs);
	struct config *cfg = config_load_partial(path, &errs, warns);
	struct runtime *rt = NULL;
	if (cfg)
		rt = runtime_create(cfg, cfg->ktls != KTLS_OFF && ktls_probe(), &errs);
	config_unref(cfg);
	if (!rt || errs.n) {
		sort_by_line(&errs, path);
		print_errs(&errs);
		runtime_unref(rt);
		rt = NULL;
	}
	errlist_finish(&errs);
	return rt;
}

static void on_force(evutil_socket_t fd, short what, void *arg)
{
	struct app *a = arg;
	log_warn("shutdown_timeout reached: closing %ld open connections",
		 atomic_load(&a->proc.active));
	proc_command(&a->proc, WORKER_CMD_FORCE);
}

static void watch_start(struct app *a, const struct config *cfg);

/* SIGHUP, or a changed certificate: a valid file replaces the running generation for new
 * connections; open ones keep theirs. An invalid one is reported and changes nothing. */
static void reload(struct app *a, const char *why)
{
	char err[256];
	struct errlist warns;
	if (proc_reload_busy(&a->proc)) {
		/* a worker has not taken the previous generation yet: try again in a moment */
		struct timeval tv = clock_ms_to_tv(RELOAD_RETRY_MS);
		evtimer_add(a->reload_retry, &tv);
		return;
	}
	errlist_init(&warns);
	log_info("%s: reloading %s", why, a->path);
	struct runtime *rt = load(a->path, &warns);
	for (size_t i = 0; i < warns.n; i++)
		log_warn("%s", warns.msgs[i]);
	errlist_finish(&warns);
	if (!rt) {
		log_error("reload of %s failed; the running configuration stays", a->path);
		return;
	}
	/* the old generation stays alive until this function is done with it */
	struct runtime *old_rt = runtime_ref(a->proc.rt);
	const struct config *old = old_rt->cfg, *cfg = rt->cfg;
	if (cfg->workers != old->workers || cfg->has_metrics != old->has_metrics ||
	    (cfg->has_metrics && strcmp(cfg->metrics.text, old->metrics.text) != 0))
		log_warn("reload: changes to workers and metrics take effect at the next restart");
	/* stop the old checks first, so no state change is lost between inherit and swap */
	health_destroy(a->health);
	a->health = NULL;
	runtime_inherit(rt, old_rt);
	if (proc_reload(&a->proc, rt, err, sizeof(err)) < 0) {
		log_error("reload failed: %s; the running configuration stays", err);
		a->health = health_create(old_rt->pools, old->nbackends);
		runtime_unref(rt);
		runtime_unref(old_rt);
		return;
	}
	a->health = health_create(rt->pools, cfg->nbackends);
	metrics_set_runtime(a->metrics, rt);
	log_set_level(a->level_override ? a->level : cfg->log_level);
	if (strcmp(cfg->access_log, old->access_log) != 0 && access_log_open(cfg->access_log) < 0)
		log_error("cannot open access log '%s': %s", cfg->access_log, strerror(errno));
	watch_start(a, cfg);
	runtime_unref(rt);
	runtime_unref(old_rt);
	log_info("configuration reloaded");
}

static void on_files_changed(void *arg)
{
	struct app *a = arg;
	if (!a->stopping)
		reload(a, "certificate, key or ticket key files changed");
}

/* Follows the files cfg names (watch = on); the previous set stops being followed. */
static void watch_start(struct app *a, const struct config *cfg)
{
	watch_destroy(a->watch);
	a->watch = NULL;
	if (cfg->watch && !(a->watch = watch_create(a->base, cfg, on_files_changed, a)))
		log_warn("cannot follow certificate files (watch = on): %s; SIGHUP reloads them",
			 strerror(errno));
}

static void on_reload_retry(evutil_socket_t fd, short what, void *arg)
{
	struct app *a = arg;
	if (!a->stopping)
		reload(a, "SIGHUP");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct app *a = arg;
	if (sig == SIGUSR1) {
		if (access_log_reopen() < 0)
			log_error("cannot reopen access log: %s", strerror(errno));
		else
			log_info("access log reopened");
		return;
	}
	if (sig == SIGHUP) {
		if (!a->stopping)
			reload(a, "SIGHUP");
		return;
	}
	if (a->stopping)
		return;
	a->stopping = true;
	uint64_t ms = a->proc.rt->cfg->shutdown_timeout_ms;
	log_info("%s: stopping; draining %ld connections for up to %llu ms", strsignal((int)sig),
		 atomic_load(&a->proc.active), (unsigned long long)ms);
	metrics_set_draining(a->metrics);
	proc_command(&a->proc, WORKER_CMD_DRAIN);
	struct timeval tv = clock_ms_to_tv(ms);
	evtimer_add(a->force, &tv);
}

static void on_worker_done(evutil_socket_t fd, short what, void *arg)
{
	struct app *a = arg;
	if (atomic_load(&a->proc.ndone) == a->proc.nworkers)
		event_base_loopbreak(a->base);
}

static int app_events(struct app *a)
{
	static const int sigs[4] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	a->base = event_base_new();
	if (!a->base)
		return -1;
	for (int i = 0; i < 4; i++) {
		a->sig[i] = evsignal_new(a->base, sigs[i], on_signal, a);
		if (!a->sig[i] || evsignal_add(a->sig[i], NULL) < 0)
			return -1;
	}
	a->force = evtimer_new(a->base, on_force, a);
	a->reload_retry = evtimer_new(a->base, on_reload_retry, a);
	a->proc.worker_done = event_new(a->base, -1, 0, on_worker_done, a);
	return a->force && a->reload_retry && a->proc.worker_done ? 0 : -1;
}

static void app_free(struct app *a)
{
	for (int i = 0; i < 4; i++)
		if (a->sig[i])
			event_free(a->sig[i]);
	if (a->force)
		event_free(a->force);
	if (a->reload_retry)
		event_free(a->reload_retry);
	if (a->proc.worker_done)
		event_free(a->proc.worker_done);
	if (a->base)
		event_base_free(a->base);
}

/* Binds, starts workers and health checks, runs until the last worker exits. */
static int run(struct runtime *rt, const struct opts *o)
{
	struct app a;
	char err[256];
	memset(&a, 0, sizeof(a));
	a.path = o->config;
	a.level_override = o->level != NULL;
	if (o->level)
		log_parse_level(o->level, &a.level);
	if (app_events(&a) < 0) {
		log_error("cannot set up the event loop");
		app_free(&a);
		return EXIT_RUNTIME;
	}
	if (proc_init(&a.proc, rt, a.base, err, sizeof(err)) < 0) {
		log_error("%s", err);
		app_free(&a);
		return EXIT_RUNTIME;
	}
	if (rt->cfg->has_metrics &&
	    !(a.metrics = metrics_create(a.base, rt, err, sizeof(err)))) {
		log_error("%s", err);
		proc_finish(&a.proc);
		app_free(&a);
		return EXIT_RUNTIME;
	}
	if (privs_drop(rt->cfg->user, rt->cfg->group, err, sizeof(err)) < 0) {
		log_error("%s", err);
		metrics_destroy(a.metrics);
		proc_finish(&a.proc);
		app_free(&a);
		return EXIT_RUNTIME;
	}
	a.health = health_create(rt->pools, rt->cfg->nbackends);
	if (!a.health)
		log_warn("cannot start health checks: %s", strerror(errno));
	watch_start(&a, rt->cfg);
	sigset_t set, old;
	sigfillset(&set);
	pthread_sigmask(SIG_BLOCK, &set, &old); /* workers inherit: signals go to this thread */
	int rc = proc_start(&a.proc);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		log_error("cannot start workers: %s", strerror(errno));
		proc_command(&a.proc, WORKER_CMD_FORCE);
	} else {
		log_info("tlsplice %s started: %u workers%s%s%s, %zu frontends, %zu backends; %s",
			 TLSPLICE_VERSION, a.proc.nworkers, rt->cfg->workers_auto[0] ? " (auto: " : "",
			 rt->cfg->workers_auto, rt->cfg->workers_auto[0] ? ")" : "", rt->cfg->nfrontends, rt->cfg->nbackends,
			 rt->cfg->ktls == KTLS_OFF ? "kTLS: off" : ktls_probe_describe());
		event_base_dispatch(a.base);
	}
	proc_join(&a.proc);
	watch_destroy(a.watch);
	health_destroy(a.health);
	proc_finish(&a.proc);
	metrics_destroy(a.metrics);
	app_free(&a);
	log_info("stopped");
	return rc < 0 ? EXIT_RUNTIME : 0;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	int rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	struct errlist warns;
	errlist_init(&warns);
	struct runtime *rt = load(o.config, &warns);
	enum log_level lvl = LOG_INFO;
	if (rt)
		lvl = rt->cfg->log_level;
	if (o.level)
		log_parse_level(o.level, &lvl);
	log_set_level(lvl);
	for (size_t i = 0; i < warns.n; i++)
		log_warn("%s", warns.msgs[i]);
	errlist_finish(&warns);
	if (!rt)
		return EXIT_CONFIG;
	if (o.check) {
		printf("%s: configuration OK\n", o.config);
		runtime_unref(rt);
		return 0;
	}
	if (rt->cfg->ktls == KTLS_ON && ktls_probe() != (KTLS_TX | KTLS_RX)) {
		log_error("ktls = on, but %s", ktls_probe_describe());
		runtime_unref(rt);
		return EXIT_RUNTIME;
	}
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();
	if (access_log_open(rt->cfg->access_log) < 0) {
		log_error("cannot open access log '%s': %s", rt->cfg->access_log, strerror(errno));
		runtime_unref(rt);
		return EXIT_RUNTIME;
	}
	rc = run(rt, &o);
	access_log_close();
	runtime_unref(rt);
	return rc;
}
