/* The process's life on the main thread: loading the configuration, signals, reload, and
 * the start and stop of everything in one order. What runs on other threads (workers,
 * health checks) is started and stopped from here and nowhere else. */
#include "tlsplice/app.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
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
#include "tlsplice/control.h"
#include "tlsplice/health.h"
#include "tlsplice/ktls.h"
#include "tlsplice/ktls_suites.h"
#include "tlsplice/log.h"
#include "tlsplice/metrics.h"
#include "tlsplice/notify.h"
#include "tlsplice/privs.h"
#include "tlsplice/proc.h"
#include "tlsplice/resolve.h"
#include "tlsplice/upgrade.h"
#include "tlsplice/watch.h"

#define NSIGS 5
#define STATUS_EVERY_MS 5000 /* STATUS= with the connection count */
#define RELOAD_RETRY_MS 20   /* a worker has not taken the previous generation yet */
#define SETTLE_MS 2000       /* how long a command waits for the workers to take the last one */

struct app {
	const char *path;
	bool level_override; /* -l given: it wins over log_level on reload too */
	enum log_level level;
	struct proc proc;
	struct health *health;
	struct event_base *base;
	struct event *sig[NSIGS];
	struct event *force;
	struct event *grace; /* shutdown_grace: the drain starts when it fires */
	struct event *reload_retry;
	struct event *status; /* STATUS= to the service manager now and then */
	struct metrics *metrics;
	struct watch *watch;     /* NULL: watch = off, or inotify failed */
	char metrics_run[128];   /* address the metrics endpoint serves on; "" if none */
	struct control *control; /* NULL: control unset */
	unsigned generation;     /* configuration generations applied, 1 at start */
	struct upgrade *upgrade; /* the last one started (kept until the next or the end) */
	bool upgrading;          /* it has not finished */
	bool upgraded;           /* a new process serves: this one only drains */
	uint64_t upgrade_client; /* the control client waiting for it; 0: none */
	bool stopping;

	struct resolver *resolver; /* NULL: no server names a host, or it failed */
	struct event *resolved;    /* the resolver found new answers: a new generation */
};

static void print_errs(const struct errlist *el)
{
	for (size_t i = 0; i < el->n; i++)
		fprintf(stderr, "%s\n", el->msgs[i]);
}

struct runtime *app_load_errs(const char *path, struct errlist *errs, struct errlist *warns)
{
	struct config *cfg = config_load_partial(path, errs, warns);
	struct runtime *rt = NULL;
	if (cfg)
		resolve_config(cfg, errs, warns);
	if (cfg)
		rt = runtime_create(cfg, cfg->ktls != KTLS_OFF && ktls_probe(), errs);
	for (size_t i = 0; rt && warns && i < rt->cfg->nfrontends; i++)
		tls_frontend_expiry_warn(rt->tls[i], rt->cfg, time(NULL), warns);
	config_unref(cfg);
	if (!rt || errs->n) {
		errlist_sort(errs); /* parse and certificate errors in file order */
		runtime_unref(rt);
		rt = NULL;
	}
	return rt;
}

struct runtime *app_load(const char *path, struct errlist *warns)
{
	struct errlist errs;
	errlist_init(&errs);
	struct runtime *rt = app_load_errs(path, &errs, warns);
	print_errs(&errs);
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
static void on_resolved(evutil_socket_t fd, short what, void *arg);
static void resolver_follow(struct app *a, struct config *cfg);

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

/* STATUS= for the service manager, after the lines in head. */
static void notify_status(const struct app *a, const char *head, const char *what)
{
	notify_send("%sSTATUS=%s%ld connections, generation %u", head, what,
		    atomic_load(&a->proc.active), a->generation);
}

static void on_status(evutil_socket_t fd, short what, void *arg)
{
	struct app *a = arg;
	if (!a->stopping)
		notify_status(a, "", "serving; ");
	else
		notify_status(a, "", "draining; ");
}

/* The pools of a generation not yet visible follow the weights set at run time. */
static int reorder_pools(struct runtime *rt)
{
	for (size_t i = 0; i < rt->cfg->nbackends; i++)
		if (pool_reorder(&rt->pools[i]) < 0)
			return -1;
	return 0;
}

/* Makes rt (fully loaded) the running generation for new connections: state and counters
 * carry over from the old one. Nothing changes on failure (err says why). */
static int apply_generation(struct app *a, struct runtime *rt, char *err, size_t errlen)
{
	/* the old generation stays alive until this function is done with it */
	struct runtime *old_rt = runtime_ref(a->proc.rt);
	const struct config *old = old_rt->cfg, *cfg = rt->cfg;
	/* against what runs, not the previous file: those two are set at start only */
	if ((unsigned)cfg->workers != a->proc.nworkers ||
	    strcmp(cfg->has_metrics ? cfg->metrics.text : "", a->metrics_run) != 0)
		log_warn("reload: changes to workers and metrics take effect at the next restart");
	if (!cfg->control != !old->control ||
	    (cfg->control && strcmp(cfg->control, old->control) != 0))
		log_warn("reload: a change of control takes effect at the next restart");
	/* stop the old checks first, so no state change is lost between inherit and swap */
	health_destroy(a->health);
	a->health = NULL;
	runtime_inherit(rt, old_rt);
	if (reorder_pools(rt) < 0 || proc_reload(&a->proc, rt, err, errlen) < 0) {
		if (errno == ENOMEM && !err[0])
			snprintf(err, errlen, "out of memory");
		a->health = health_create(old_rt->pools, old->nbackends);
		runtime_unref(old_rt);
		return -1;
	}
	a->generation++;
	a->health = health_create(rt->pools, cfg->nbackends);
	metrics_set_runtime(a->metrics, rt);
	log_set_level(a->level_override ? a->level : cfg->log_level);
	if (strcmp(cfg->access_log, old->access_log) != 0 && access_log_open(cfg->access_log) < 0)
		log_error("cannot open access log '%s': %s", cfg->access_log, strerror(errno));
	follow_files(a, cfg);
	log_changes(old, cfg);
	runtime_unref(old_rt);
	return 0;
}

/* SIGHUP, a changed certificate or the control socket: a valid file replaces the running
 * generation for new connections; open ones keep theirs. An invalid one is reported (to
 * stderr, and into errs when given) and changes nothing. Returns 0, -1, or 1 when a worker
 * has not taken the previous generation yet. */
static int reload(struct app *a, const char *why, struct errlist *errs_out)
{
	char err[256] = "";
	struct errlist warns, errs;
	if (errs_out ? !proc_settle(&a->proc, SETTLE_MS) : proc_reload_busy(&a->proc)) {
		/* a worker has not taken the previous generation yet: try again in a moment */
		struct timeval tv = clock_ms_to_tv(RELOAD_RETRY_MS);
		if (!errs_out)
			evtimer_add(a->reload_retry, &tv);
		return 1;
	}
	errlist_init(&warns);
	errlist_init(&errs);
	notify_reloading();
	log_info("%s: reloading %s", why, a->path);
	struct runtime *rt = app_load_errs(a->path, &errs, &warns);
	print_errs(&errs);
	for (size_t i = 0; i < warns.n; i++)
		log_warn("%s", warns.msgs[i]);
	errlist_finish(&warns);
	if (errs_out)
		errlist_move(errs_out, &errs);
	errlist_finish(&errs);
	if (!rt) {
		log_error("reload of %s failed; the running configuration stays", a->path);
		notify_status(a, "READY=1\n", "reload failed; ");
		return -1;
	}
	int rc = apply_generation(a, rt, err, sizeof(err));
	runtime_unref(rt);
	if (rc < 0) {
		log_error("reload failed: %s; the running configuration stays", err);
		if (errs_out)
			errlist_add(errs_out, a->path, 0, NULL, NULL, "%s", err);
		notify_status(a, "READY=1\n", "reload failed; ");
		return -1;
	}
	resolver_follow(a, a->proc.rt->cfg);
	log_info("configuration reloaded");
	notify_status(a, "READY=1\n", "");
	return 0;
}

static void on_files_changed(void *arg)
{
	struct app *a = arg;
	if (!a->stopping)
		reload(a, "certificate, key or ticket key files changed", NULL);
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
		reload(a, "SIGHUP", NULL);
}

/* The drain itself: workers stop accepting (an upgrade's new process holds the listeners) and
 * finish their connections for up to shutdown_timeout. */
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

/* Stopping: /healthz answers 503 at once; listeners keep accepting for grace (the balancer in
 * front needs time to see it) and then the drain starts. */
static void start_drain(struct app *a, const char *why, uint64_t grace)
{
	if (a->stopping)
		return;
	a->stopping = true;
	if (!a->upgraded) /* the service goes on in the new process: nothing to tell */
		notify_status(a, "STOPPING=1\n", "draining; ");
	metrics_set_draining(a->metrics);
	if (grace > 0) {
		log_info("%s: stopping; /healthz answers 503, still accepting for %llu ms", why,
			 (unsigned long long)grace);
		struct timeval tv = clock_ms_to_tv(grace);
		evtimer_add(a->grace, &tv);
		return;
	}
	log_info("%s: stopping", why);
	drain_start(-1, 0, a);
}

/* The new process serves, or failed. Serving: it holds every listening socket, the
 * metrics and control sockets, so this process stops accepting (no socket closes: the
 * new one holds them) and drains its connections. */
static void on_upgraded(void *arg, bool ok, pid_t pid, const char *text)
{
	struct app *a = arg;
	char msg[160];
	a->upgrading = false;
	if (!ok) {
		for (const char *at = text; *at;) {
			size_t len = strcspn(at, "\n");
			log_error("upgrade failed: %.*s", (int)len, at);
			at += len + (at[len] == '\n');
		}
		log_error("upgrade failed; this process keeps serving");
		if (a->upgrade_client)
			control_upgrade_done(a->control, a->upgrade_client, false, text);
		return;
	}
	snprintf(msg, sizeof(msg), "pid %d serves; pid %d drains %ld connections", (int)pid,
		 (int)getpid(), atomic_load(&a->proc.active));
	log_info("upgrade: %s", msg);
	notify_send("MAINPID=%d", (int)pid);
	a->upgraded = true;
	event_del(a->status); /* the new process reports from now on */
	if (a->upgrade_client)
		control_upgrade_done(a->control, a->upgrade_client, true, msg);
	control_handover(a->control);
	metrics_destroy(a->metrics);
	a->metrics = NULL;
	/* queued before the drain command, so each worker hands off before it may exit */
	proc_hand_off(&a->proc, upgrade_channel(a->upgrade));
	start_drain(a, "upgrade", 0);
}

/* Starts the binary at path (NULL: this one) with the same arguments. client: the control
 * client to answer (0: none, SIGUSR2). */
static int app_upgrade(struct app *a, const char *path, uint64_t client, char *err, size_t errlen)
{
	if (a->stopping || a->upgrading || !proc_settle(&a->proc, SETTLE_MS)) {
		snprintf(err, errlen, "%s",
			 a->stopping    ? "stopping"
			 : a->upgrading ? "an upgrade is already in progress"
					: "a reload is still being applied; try again");
		return -1;
	}
	size_t cap = 2;
	for (unsigned i = 0; i < a->proc.nworkers; i++)
		cap += a->proc.workers[i].nlisteners;
	int *fds = calloc(cap, sizeof(*fds));
	char *state = upgrade_state_text(a->proc.rt);
	int rc = -1;
	if (!fds || !state) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	size_t n = proc_listener_fds(&a->proc, fds, cap - 2);
	if (metrics_fd(a->metrics) >= 0)
		fds[n++] = metrics_fd(a->metrics);
	if (control_fd(a->control) >= 0)
		fds[n++] = control_fd(a->control);
	upgrade_destroy(a->upgrade);
	a->upgrade = upgrade_start(a->base, path, fds, n, state, on_upgraded, a, err, errlen);
	if (a->upgrade) {
		a->upgrading = true;
		a->upgrade_client = client;
		rc = 0;
	}
out:
	free(fds);
	free(state);
	return rc;
}

/* Listeners close, open connections finish until shutdown_timeout. */
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
			reload(a, "SIGHUP", NULL);
		return;
	}
	if (sig == SIGUSR2) {
		char err[512];
		if (app_upgrade(a, NULL, 0, err, sizeof(err)) < 0)
			log_error("SIGUSR2: upgrade: %s", err);
		return;
	}
	start_drain(a, strsignal((int)sig), a->proc.rt->cfg->shutdown_grace_ms);
}

static void on_worker_done(evutil_socket_t fd, short what, void *arg)
{
	struct app *a = arg;
	if (atomic_load(&a->proc.ndone) == a->proc.nworkers)
		event_base_loopbreak(a->base);
}

static int app_events(struct app *a)
{
	static const int sigs[NSIGS] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 };
	a->base = event_base_new();
	if (!a->base)
		return -1;
	for (int i = 0; i < NSIGS; i++) {
		a->sig[i] = evsignal_new(a->base, sigs[i], on_signal, a);
		if (!a->sig[i] || evsignal_add(a->sig[i], NULL) < 0)
			return -1;
	}
	a->force = evtimer_new(a->base, on_force, a);
	a->grace = evtimer_new(a->base, drain_start, a);
	a->reload_retry = evtimer_new(a->base, on_reload_retry, a);
	a->status = event_new(a->base, -1, EV_PERSIST, on_status, a);
	a->resolved = evtimer_new(a->base, on_resolved, a);
	a->proc.worker_done = event_new(a->base, -1, 0, on_worker_done, a);
	if (!a->resolved)
		return -1;
	return a->force && a->grace && a->reload_retry && a->status && a->proc.worker_done ? 0 : -1;
}

static void app_free(struct app *a)
{
	for (int i = 0; i < NSIGS; i++)
		if (a->sig[i])
			event_free(a->sig[i]);
	if (a->force)
		event_free(a->force);
	if (a->grace)
		event_free(a->grace);
	if (a->reload_retry)
		event_free(a->reload_retry);
	if (a->status)
		event_free(a->status);
	if (a->resolved)
		event_free(a->resolved);
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

/* A connection the old process of an upgrade handed over: one of our workers takes it. */
static int adopt(void *arg, int cfd, int bfd, const char *meta)
{
	struct app *a = arg;
	return proc_adopt(&a->proc, cfd, bfd, meta);
}

/* Starts health checks, the file watch and the workers, runs the main loop until the last
 * worker exits, and joins them. Health checks and the watch are the caller's to stop. */
static int app_serve(struct app *a, struct runtime *rt)
{
	a->health = health_create(rt->pools, rt->cfg->nbackends);
	if (!a->health)
		log_warn("cannot start health checks: %s", strerror(errno));
	follow_files(a, rt->cfg);
	resolver_follow(a, rt->cfg);
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
		struct timeval tv = clock_ms_to_tv(STATUS_EVERY_MS);
		event_add(a->status, &tv);
		notify_status(a, "READY=1\n", "serving; ");
		if (upgrade_is_child()) {
			upgrade_child_serving(a->base, adopt, a);
			notify_send("MAINPID=%d", (int)getpid());
		}
		event_base_dispatch(a->base);
	}
	proc_join(&a->proc);
	upgrade_child_finish();
	return rc < 0 ? APP_EXIT_RUNTIME : APP_EXIT_OK;
}

/* Process-wide settings made once, before any thread: kernel TLS when ktls = on demands
 * it, SIGPIPE ignored (a write to a closed socket is an error, not a death), libevent's
 * locks, and the access log. The kernel's cipher suites are probed here too, before any
 * listener exists: probing later, for the start-up line, held throw-away sockets while
 * clients were already being accepted (slow under an emulated CPU). */
static int app_prepare(const struct runtime *rt)
{
	if (rt->cfg->ktls == KTLS_ON && ktls_probe() != (KTLS_TX | KTLS_RX)) {
		log_error("ktls = on, but %s", ktls_probe_describe());
		return -1;
	}
	(void)ktls_suites_describe();
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();
	if (access_log_open(rt->cfg->access_log) < 0) {
		log_error("cannot open access log '%s': %s", rt->cfg->access_log, strerror(errno));
		return -1;
	}
	return 0;
}

static int ctl_reload(void *arg, struct errlist *errs)
{
	struct app *a = arg;
	if (a->stopping) {
		errlist_add(errs, a->path, 0, NULL, NULL, "stopping");
		return -1;
	}
	int rc = reload(a, "control socket", errs);
	if (rc > 0)
		errlist_add(errs, a->path, 0, NULL, NULL,
			    "the previous reload is still being applied; try again");
	return rc == 0 ? 0 : -1;
}

/* A new generation of the same configuration, whose pools follow the weights set at run
 * time and the names' latest answers; connections pick through it as soon as each worker
 * has taken it. */
static int rebuild(struct app *a, char *err, size_t errlen)
{
	struct errlist errs;
	struct config *cfg = a->proc.rt->cfg;
	if (!proc_settle(&a->proc, SETTLE_MS)) {
		snprintf(err, errlen, "a reload is still being applied; try again");
		return -1;
	}
	errlist_init(&errs);
	struct runtime *rt = runtime_create(cfg, cfg->ktls != KTLS_OFF && ktls_probe(), &errs);
	if (!rt || errs.n) {
		snprintf(err, errlen, "%s", errs.n ? errs.msgs[0] : "out of memory");
		runtime_unref(rt);
		errlist_finish(&errs);
		return -1;
	}
	errlist_finish(&errs);
	int rc = apply_generation(a, rt, err, errlen);
	runtime_unref(rt);
	return rc;
}

static int ctl_reorder(void *arg, char *err, size_t errlen)
{
	return rebuild(arg, err, errlen);
}

/* Main loop: a name's answers changed. A reload under way is waited for; the servers that
 * left drain with their generation. */
static void on_resolved(evutil_socket_t fd, short what, void *arg)
{
	struct app *a = arg;
	char err[256] = "";
	if (a->stopping || a->upgraded)
		return;
	if (proc_reload_busy(&a->proc)) {
		struct timeval tv = clock_ms_to_tv(RELOAD_RETRY_MS);
		evtimer_add(a->resolved, &tv);
		return;
	}
	if (rebuild(a, err, sizeof(err)) < 0)
		log_error("new addresses not applied: %s", err);
	else
		log_info("new addresses applied: generation %u", a->generation);
}

/* Resolver thread: the main loop takes it from here. */
static void resolver_changed(void *arg)
{
	struct app *a = arg;
	event_active(a->resolved, EV_TIMEOUT, 0);
}

/* The names of cfg followed from now on (after a reload: the new file's). */
static void resolver_follow(struct app *a, struct config *cfg)
{
	resolver_stop(a->resolver);
	a->resolver = resolver_start(cfg, resolver_changed, a);
	if (!a->resolver && errno)
		log_error("cannot start the resolver: %s; server names stay as resolved",
			  strerror(errno));
}

static int ctl_upgrade(void *arg, const char *path, uint64_t client, char *err, size_t errlen)
{
	return app_upgrade(arg, path, client, err, errlen);
}

static unsigned ctl_generation(void *arg)
{
	return ((struct app *)arg)->generation;
}

/* Started as root with a user to become: the socket file belongs to that user, who runs
 * the process from now on (the mode stays 0600). */
static int chown_to_user(const char *path, const char *user, const char *group, char *err,
			 size_t errlen)
{
	if (!user || geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(user);
	struct group *gr = group ? getgrnam(group) : NULL;
	if (!pw || (group && !gr)) {
		snprintf(err, errlen, "control %s: unknown user or group", path);
		return -1;
	}
	if (chown(path, pw->pw_uid, gr ? gr->gr_gid : pw->pw_gid) < 0) {
		snprintf(err, errlen, "control %s: chown: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The control socket, owned by the user the process runs as once privileges drop. */
static int control_start(struct app *a, const struct config *cfg, char *err, size_t errlen)
{
	const struct control_ops ops = { a, ctl_reload, ctl_reorder, ctl_generation, ctl_upgrade };
	if (!cfg->control)
		return 0;
	a->control = control_create(a->base, cfg->control, &a->proc, &ops, err, errlen);
	if (!a->control)
		return -1;
	if (chown_to_user(cfg->control, cfg->user, cfg->group, err, errlen) < 0) {
		control_destroy(a->control);
		a->control = NULL;
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
	a.generation = 1;
	a.level_override = level != NULL;
	if (level)
		log_parse_level(level, &a.level);
	if (app_events(&a) < 0) {
		log_error("cannot set up the event loop");
		goto err_events;
	}
	if (notify_listen_fds(err, sizeof(err)) < 0 ||
	    (upgrade_is_child() && upgrade_child_take(rt, err, sizeof(err)) < 0) ||
	    proc_init(&a.proc, rt, a.base, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto err_events;
	}
	if (rt->cfg->has_metrics && !(a.metrics = metrics_create(a.base, rt, err, sizeof(err)))) {
		log_error("%s", err);
		goto err_proc;
	}
	if (rt->cfg->has_metrics)
		snprintf(a.metrics_run, sizeof(a.metrics_run), "%s", rt->cfg->metrics.text);
	if (control_start(&a, rt->cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto err_metrics;
	}
	notify_drop_unused(); /* after every taker: listeners, metrics, control */
	if (privs_drop(rt->cfg->user, rt->cfg->group, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto err_control;
	}
	rc = app_serve(&a, rt);
	served = true;
	resolver_stop(a.resolver);
	watch_destroy(a.watch);
	health_destroy(a.health);
	upgrade_destroy(a.upgrade);
err_control:
	control_destroy(a.control);
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
