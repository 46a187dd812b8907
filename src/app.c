/* The process's life on the main thread: loading the configuration, signals, reload, and
 * the start and stop of everything in one order. What runs on other threads (workers,
 * health checks) is started and stopped from here and nowhere else. */
#include "tlsplice/app.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "tlsplice/clock.h"
#include "tlsplice/config.h"
#include "tlsplice/health.h"
#include "tlsplice/ktls.h"
#include "tlsplice/ktls_suites.h"
#include "tlsplice/log.h"
#include "tlsplice/metrics.h"
#include "tlsplice/privs.h"
#include "tlsplice/proc.h"
#include "tlsplice/watch.h"

#define RELOAD_RETRY_MS 20 /* a worker has not taken the previous generation yet */

struct app {
	const char *path;
	bool level_override; /* -l given: it wins over log_level on reload too */
	enum log_level level;
	struct proc proc;
	struct health *health;
	struct event_base *base;
	struct event *sig[4];
	struct event *force;
	struct event *grace; /* shutdown_grace: the drain starts when it fires */
	struct event *reload_retry;
	struct metrics *metrics;
	struct watch *watch;   /* NULL: watch = off, or inotify failed */
	char metrics_run[128]; /* address the metrics endpoint serves on; "" if none */
	bool stopping;
};

static void print_errs(const struct errlist *el)
{
	for (size_t i = 0; i < el->n; i++)
		fprintf(stderr, "%s\n", el->msgs[i]);
}

struct runtime *app_load(const char *path, struct errlist *warns)
{
	struct errlist errs;
	errlist_init(&errs);
	struct config *cfg = config_load_partial(path, &errs, warns);
	struct runtime *rt = NULL;
	if (cfg)
		rt = runtime_create(cfg, cfg->ktls != KTLS_OFF && ktls_probe(), &errs);
	for (size_t i = 0; rt && warns && i < rt->cfg->nfrontends; i++)
		tls_frontend_expiry_warn(rt->tls[i], rt->cfg, time(NULL), warns);
	config_unref(cfg);
	if (!rt || errs.n) {
		errlist_sort(&errs); /* parse and certificate errors in file order */
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

static void follow_files(struct app *a, const struct config *cfg);

/* The reload's summary: what changed in listeners, servers, weights, checks, certificates. */
static void log_changes(const struct config *old, const struct config *cfg)
{
	struct errlist changes;
	errlist_init(&changes);
	config_diff(old, cfg, &changes);
	for (size_t i = 0; i < changes.n; i++)
		log_info("%s", changes.msgs[i]);
	errlist_finish(&changes);
}

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
	struct runtime *rt = app_load(a->path, &warns);
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
	/* against what runs, not the previous file: those two are set at start only */
	if ((unsigned)cfg->workers != a->proc.nworkers ||
	    strcmp(cfg->has_metrics ? cfg->metrics.text : "", a->metrics_run) != 0)
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
	follow_files(a, cfg);
	log_changes(old, cfg);
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
static void follow_files(struct app *a, const struct config *cfg)
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

/* Listeners close, open connections finish until shutdown_timeout. */
static void drain_start(evutil_socket_t fd, short what, void *arg)
{
	struct app *a = arg;
	uint64_t ms = a->proc.rt->cfg->shutdown_timeout_ms;
	log_info("draining %ld connections for up to %llu ms", atomic_load(&a->proc.active),
		 (unsigned long long)ms);
	proc_command(&a->proc, WORKER_CMD_DRAIN);
	struct timeval tv = clock_ms_to_tv(ms);
	evtimer_add(a->force, &tv);
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
	metrics_set_draining(a->metrics);
	uint64_t grace = a->proc.rt->cfg->shutdown_grace_ms;
	if (grace > 0) {
		/* the balancer in front needs time to see /healthz fail before we refuse */
		log_info("%s: stopping; /healthz answers 503, still accepting for %llu ms",
			 strsignal((int)sig), (unsigned long long)grace);
		struct timeval tv = clock_ms_to_tv(grace);
		evtimer_add(a->grace, &tv);
		return;
	}
	log_info("%s: stopping", strsignal((int)sig));
	drain_start(-1, 0, a);
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
	a->grace = evtimer_new(a->base, drain_start, a);
	a->reload_retry = evtimer_new(a->base, on_reload_retry, a);
	a->proc.worker_done = event_new(a->base, -1, 0, on_worker_done, a);
	return a->force && a->grace && a->reload_retry && a->proc.worker_done ? 0 : -1;
}

static void app_free(struct app *a)
{
	for (int i = 0; i < 4; i++)
		if (a->sig[i])
			event_free(a->sig[i]);
	if (a->force)
		event_free(a->force);
	if (a->grace)
		event_free(a->grace);
	if (a->reload_retry)
		event_free(a->reload_retry);
	if (a->proc.worker_done)
		event_free(a->proc.worker_done);
	if (a->base)
		event_base_free(a->base);
}

/* One line per listener: what it serves and until when its certificates are valid. */
static void log_listeners(const struct runtime *rt)
{
	for (size_t i = 0; i < rt->cfg->nfrontends; i++) {
		const struct cfg_frontend *fe = &rt->cfg->frontends[i];
		char certs[1024] = "", subject[256], day[16];
		for (size_t k = 0, n = 0; k < tls_frontend_ncerts(rt->tls[i]) && n < sizeof(certs);
		     k++) {
			time_t t = (time_t)tls_frontend_cert_expiry(rt->tls[i], k);
			struct tm tm;
			strftime(day, sizeof(day), "%Y-%m-%d", gmtime_r(&t, &tm));
			tls_frontend_cert_subject(rt->tls[i], k, subject, sizeof(subject));
			n += (size_t)snprintf(certs + n, sizeof(certs) - n, "%s%s (expires %s)",
					      k ? ", " : "", subject, day);
		}
		for (size_t l = 0; l < fe->nlistens; l++)
			log_info("listening on %s: frontend %s, backend %s, certificates %s",
				 fe->listens[l].text, fe->name, fe->backend_name, certs);
	}
}

static void log_started(const struct app *a, const struct runtime *rt)
{
	const struct config *cfg = rt->cfg;
	log_listeners(rt);
	log_info("metrics: %s; access log: %s", cfg->has_metrics ? cfg->metrics.text : "off",
		 cfg->access_log);
	log_info("%s; cipher suites offloaded: %s; ktls = %s, splice = %s", ktls_probe_describe(),
		 ktls_suites_describe(),
		 cfg->ktls == KTLS_OFF  ? "off"
		 : cfg->ktls == KTLS_ON ? "on"
					: "auto",
		 cfg->splice ? "on" : "off");
	if (cfg->user || cfg->group)
		log_info("privileges dropped: running as uid %u gid %u (user %s, group %s)",
			 (unsigned)getuid(), (unsigned)getgid(), cfg->user ? cfg->user : "-",
			 cfg->group ? cfg->group : "-");
	else
		log_info("privileges: running as uid %u gid %u (no user or group set)",
			 (unsigned)getuid(), (unsigned)getgid());
	log_info("tlsplice %s started: %u workers%s%s%s, %zu frontends, %zu backends; %s",
		 TLSPLICE_VERSION, a->proc.nworkers, cfg->workers_auto[0] ? " (auto: " : "",
		 cfg->workers_auto, cfg->workers_auto[0] ? ")" : "", cfg->nfrontends,
		 cfg->nbackends, cfg->ktls == KTLS_OFF ? "kTLS: off" : ktls_probe_describe());
}

/* Starts health checks, the file watch and the workers, runs the main loop until the last
 * worker exits, and joins them. Health checks and the watch are the caller's to stop. */
static int app_serve(struct app *a, struct runtime *rt)
{
	a->health = health_create(rt->pools, rt->cfg->nbackends);
	if (!a->health)
		log_warn("cannot start health checks: %s", strerror(errno));
	follow_files(a, rt->cfg);
	sigset_t set, old;
	sigfillset(&set);
	pthread_sigmask(SIG_BLOCK, &set, &old); /* workers inherit: signals go to this thread */
	int rc = proc_start(&a->proc);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		log_error("cannot start workers: %s", strerror(errno));
		proc_command(&a->proc, WORKER_CMD_FORCE);
	} else {
		log_started(a, rt);
		event_base_dispatch(a->base);
	}
	proc_join(&a->proc);
	return rc < 0 ? APP_EXIT_RUNTIME : APP_EXIT_OK;
}

/* Process-wide settings made once, before any thread: kernel TLS when ktls = on demands
 * it, SIGPIPE ignored (a write to a closed socket is an error, not a death), libevent's
 * locks, and the access log. */
static int app_prepare(const struct runtime *rt)
{
	if (rt->cfg->ktls == KTLS_ON && ktls_probe() != (KTLS_TX | KTLS_RX)) {
		log_error("ktls = on, but %s", ktls_probe_describe());
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();
	if (access_log_open(rt->cfg->access_log) < 0) {
		log_error("cannot open access log '%s': %s", rt->cfg->access_log, strerror(errno));
		return -1;
	}
	return 0;
}

int app_run(struct runtime *rt, const char *path, const char *level)
{
	struct app a;
	char err[256];
	int rc = APP_EXIT_RUNTIME;
	bool served = false;
	if (app_prepare(rt) < 0)
		return APP_EXIT_RUNTIME;
	memset(&a, 0, sizeof(a));
	a.path = path;
	a.level_override = level != NULL;
	if (level)
		log_parse_level(level, &a.level);
	if (app_events(&a) < 0) {
		log_error("cannot set up the event loop");
		goto err_events;
	}
	if (proc_init(&a.proc, rt, a.base, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto err_events;
	}
	if (rt->cfg->has_metrics && !(a.metrics = metrics_create(a.base, rt, err, sizeof(err)))) {
		log_error("%s", err);
		goto err_proc;
	}
	if (rt->cfg->has_metrics)
		snprintf(a.metrics_run, sizeof(a.metrics_run), "%s", rt->cfg->metrics.text);
	if (privs_drop(rt->cfg->user, rt->cfg->group, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto err_metrics;
	}
	rc = app_serve(&a, rt);
	served = true;
	watch_destroy(a.watch);
	health_destroy(a.health);
err_metrics:
	metrics_destroy(a.metrics);
err_proc:
	proc_finish(&a.proc);
err_events:
	app_free(&a);
	if (served)
		log_info("stopped");
	access_log_close();
	return rc;
}
