/* The control socket: clients, their bounded lines, and the commands. A command that needs
 * the workers' connections (show servers, show conns) asks them for a list (proc_snapshot)
 * and answers when it comes; the client's next lines wait until then. */
#include "tlsplice/control.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "tlsplice/clock.h"
#include "tlsplice/ktls.h"
#include "tlsplice/log.h"
#include "tlsplice/net.h"
#include "tlsplice/notify.h"
#include "tlsplice/server.h"

#define MAX_ARGS 8
#define OUT_HIGH (256 * 1024) /* answers waiting this large: stop reading commands */
#define SNAP_WAIT_MS 5000     /* workers that have not answered by then never will */
#define SHOW_CONNS_DEFAULT 100

struct client {
	struct control *ctl;
	struct client *prev, *next;
	struct bufferevent *bev;
	struct proc_snap *snap; /* a list of connections is on its way */
	struct event *snap_timer;
	char *pending;     /* the command that waits for snap */
	uint64_t id;       /* names it to an upgrade that answers later */
	bool waiting;      /* for an upgrade's outcome */
	bool done_reading; /* EOF, an overlong line or an idle timeout: close once answered */
};

struct control {
	struct event_base *base;
	struct evconnlistener *lev;
	char *path;
	struct proc *proc;
	struct control_ops ops;
	struct client *clients;
	unsigned nclients;
	uint64_t next_id;
	bool handed_over; /* the socket file is the new process's now: never removed */
	uint64_t started_ms;
};

static void client_process(struct client *cl);

/* The process ends (an upgrade's old one, often right after answering): what the loop has
 * not sent yet goes out now, best effort, without blocking. */
static void flush_now(struct client *cl)
{
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	size_t len = evbuffer_get_length(out);
	unsigned char *p = len ? evbuffer_pullup(out, (ssize_t)len) : NULL;

	if (p && send(bufferevent_getfd(cl->bev), p, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("control: an answer was not sent at exit: %s", strerror(errno));
}

static void client_free(struct client *cl)
{
	struct control *ctl = cl->ctl;

	if (cl->prev)
		cl->prev->next = cl->next;
	else
		ctl->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	ctl->nclients--;
	proc_snap_release(cl->snap);
	if (cl->snap_timer)
		event_free(cl->snap_timer);
	free(cl->pending);
	bufferevent_free(cl->bev);
	free(cl);
}

/* Frees cl if it has nothing more to do: done reading, no answer pending or unsent. */
static bool client_maybe_close(struct client *cl)
{
	if (!cl->done_reading || cl->snap || cl->waiting ||
	    evbuffer_get_length(bufferevent_get_output(cl->bev)) > 0)
		return false;
	client_free(cl);
	return true;
}

static void reply(struct client *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct client *cl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(cl->bev), fmt, ap);
	va_end(ap);
}

/* Every answer ends with an empty line; no line of an answer is empty. */
static void reply_end(struct client *cl)
{
	evbuffer_add(bufferevent_get_output(cl->bev), "\n", 1);
}

static void reply_error(struct client *cl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void reply_error(struct client *cl, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	va_list ap;

	evbuffer_add(out, "error: ", 7);
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\n\n", 2);
}

/* ------------------------------------------------------------------------ commands */

static void cmd_help(struct client *cl)
{
	reply(cl,
	      "help                                            this list\n"
	      "show info                                       version, pid, uptime, "
	      "generation, workers, connections, kTLS\n"
	      "show servers [BACKEND]                          state, weight, active "
	      "connections, health, last change\n"
	      "show conns [N]                                  the N oldest connections "
	      "(default %d)\n"
	      "set server BACKEND/HOST:PORT state ready|drain|maint\n"
	      "set server BACKEND/HOST:PORT weight N           N: 1..256\n"
	      "reload                                          as SIGHUP; answers ok or the "
	      "errors\n"
	      "upgrade [PATH]                                  start PATH (default: this "
	      "binary) and hand over to it\n",
	      SHOW_CONNS_DEFAULT);
	reply_end(cl);
}

static void cmd_info(struct client *cl)
{
	struct control *ctl = cl->ctl;
	const struct config *cfg = ctl->proc->rt->cfg;

	reply(cl, "version: %s\n", TLSPLICE_VERSION);
	reply(cl, "pid: %ld\n", (long)getpid());
	reply(cl, "uptime_s: %llu\n",
	      (unsigned long long)((clock_mono_ms() - ctl->started_ms) / 1000));
	reply(cl, "generation: %u\n", ctl->ops.generation(ctl->ops.arg));
	reply(cl, "workers: %u\n", ctl->proc->nworkers);
	reply(cl, "connections: %ld\n", atomic_load(&ctl->proc->active));
	reply(cl, "max_connections: %ld\n", atomic_load(&ctl->proc->max_connections));
	reply(cl, "ktls: %s\n", cfg->ktls == KTLS_OFF ? "off" : ktls_probe_describe());
	reply_end(cl);
}

/* BACKEND/HOST:PORT in the current generation, or NULL (the error is answered). */
static struct server *find_server(struct client *cl, const char *name)
{
	const struct runtime *rt = cl->ctl->proc->rt;
	const char *slash = strchr(name, '/');
	char safe[256];

	for (size_t i = 0; slash && i < rt->cfg->nbackends; i++) {
		struct pool *p = &rt->pools[i];
		if (strlen(p->cfg->name) != (size_t)(slash - name) ||
		    strncmp(p->cfg->name, name, (size_t)(slash - name)) != 0)
			continue;
		for (unsigned k = 0; k < p->nservers; k++)
			if (strcmp(p->servers[k].cfg->addr.text, slash + 1) == 0)
				return &p->servers[k];
	}
	reply_error(cl, "no server '%s' (BACKEND/HOST:PORT as in the file)",
		    errlist_escape(name, safe, sizeof(safe)));
	return NULL;
}

/* 1..256, the whole word. */
static int parse_weight(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 256)
		return -1;
	*out = (int)v;
	return 0;
}

static void cmd_set_server(struct client *cl, int argc, char **argv)
{
	struct control *ctl = cl->ctl;
	char safe[256], err[256];
	enum server_admin a;
	int w;

	if (argc != 5 || (strcmp(argv[3], "state") != 0 && strcmp(argv[3], "weight") != 0)) {
		reply_error(cl, "usage: set server BACKEND/HOST:PORT state ready|drain|maint, "
				"or weight N");
		return;
	}
	struct server *s = find_server(cl, argv[2]);
	if (!s)
		return;
	if (strcmp(argv[3], "state") == 0) {
		if (server_admin_parse(argv[4], &a) < 0) {
			reply_error(cl, "bad state '%s' (ready, drain, maint)",
				    errlist_escape(argv[4], safe, sizeof(safe)));
			return;
		}
		server_set_admin(s, a);
		reply(cl, "ok\n\n");
		return;
	}
	if (parse_weight(argv[4], &w) < 0) {
		reply_error(cl, "bad weight '%s' (1..256)",
			    errlist_escape(argv[4], safe, sizeof(safe)));
		return;
	}
	server_set_weight(s, w);
	if (ctl->ops.reorder(ctl->ops.arg, err, sizeof(err)) < 0) {
		reply_error(cl, "weight stored, but the order was not rebuilt: %s", err);
		return;
	}
	reply(cl, "ok\n\n");
}

static void cmd_reload(struct client *cl)
{
	struct control *ctl = cl->ctl;
	struct errlist errs;

	errlist_init(&errs);
	if (ctl->ops.reload(ctl->ops.arg, &errs) == 0) {
		reply(cl, "ok\n\n");
	} else {
		reply(cl, "error: reload failed; the running configuration stays\n");
		for (size_t i = 0; i < errs.n; i++)
			reply(cl, "%s\n", errs.msgs[i][0] ? errs.msgs[i] : "?");
		reply_end(cl);
	}
	errlist_finish(&errs);
}

/* -------------------------------------------------- commands over the connection list */

static int by_age_desc(const void *a, const void *b)
{
	const struct conn_info *x = a, *y = b;

	return x->age_ms < y->age_ms ? 1 : x->age_ms > y->age_ms ? -1 : 0;
}

static void show_conns(struct client *cl, struct conn_info *v, size_t n, unsigned long want)
{
	qsort(v, n, sizeof(*v), by_age_desc);
	reply(cl, "connections: %zu, showing the %zu oldest\n", n, n < want ? n : (size_t)want);
	for (size_t i = 0; i < n && i < want; i++)
		reply(cl,
		      "age_ms=%llu frontend=%s client=%s backend=%s server=%s path=%s "
		      "bytes_in=%llu bytes_out=%llu\n",
		      (unsigned long long)v[i].age_ms, v[i].frontend, v[i].client,
		      v[i].backend[0] ? v[i].backend : "-", v[i].server[0] ? v[i].server : "-",
		      v[i].path, (unsigned long long)v[i].bytes_in,
		      (unsigned long long)v[i].bytes_out);
	reply_end(cl);
}

static size_t count_active(const struct conn_info *v, size_t n, const struct server *s)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += strcmp(v[i].server, s->cfg->addr.text) == 0 &&
		     strcmp(v[i].backend, s->pool->cfg->name) == 0;
	return k;
}

static void show_server(struct client *cl, const struct server *s, size_t active)
{
	static const char *const checks[] = { "tcp", "send-expect", "none" };
	uint64_t changed = atomic_load(&s->changed_ms);
	const struct cfg_backend *b = s->pool->cfg;
	char since[32] = "-";

	if (changed)
		snprintf(since, sizeof(since), "%llus",
			 (unsigned long long)((clock_mono_ms() - changed) / 1000));
	reply(cl,
	      "%s/%s state=%s health=%s weight=%d active=%zu connections=%llu "
	      "connect_failures=%llu check=%s check_failures=%llu last_change=%s%s\n",
	      b->name, s->cfg->addr.text, server_admin_name(atomic_load(&s->admin)),
	      atomic_load(&s->up) ? "up" : "down", server_weight(s), active,
	      (unsigned long long)atomic_load(&s->connections),
	      (unsigned long long)atomic_load(&s->connect_failures),
	      server_in_maint(s)       ? "stopped"
	      : (unsigned)b->check < 3 ? checks[b->check]
				       : "?",
	      (unsigned long long)atomic_load(&s->check_failures), since,
	      s->cfg->backup ? " backup" : "");
}

static void show_servers(struct client *cl, const char *backend, const struct conn_info *v,
			 size_t n)
{
	const struct runtime *rt = cl->ctl->proc->rt;
	char safe[256];
	bool found = false;

	for (size_t i = 0; i < rt->cfg->nbackends; i++) {
		const struct pool *p = &rt->pools[i];
		if (backend && strcmp(p->cfg->name, backend) != 0)
			continue;
		found = true;
		for (unsigned k = 0; k < p->nservers; k++)
			show_server(cl, &p->servers[k], count_active(v, n, &p->servers[k]));
	}
	if (!found && backend) {
		reply_error(cl, "no backend '%s'", errlist_escape(backend, safe, sizeof(safe)));
		return;
	}
	if (!found)
		reply(cl, "no backends\n");
	reply_end(cl);
}

/* Upgrade: the answer comes when the new process serves or has failed. */
static void cmd_upgrade(struct client *cl, const char *path)
{
	struct control *ctl = cl->ctl;
	char err[512];

	if (ctl->ops.upgrade(ctl->ops.arg, path, cl->id, err, sizeof(err)) < 0) {
		reply_error(cl, "upgrade: %s", err);
		return;
	}
	cl->waiting = true;
}

void control_upgrade_done(struct control *ctl, uint64_t client, bool ok, const char *text)
{
	struct client *cl = ctl->clients;

	while (cl && cl->id != client)
		cl = cl->next;
	if (!cl || !cl->waiting)
		return; /* it went away meanwhile: the log has the outcome */
	cl->waiting = false;
	if (ok) {
		reply(cl, "ok: %s\n\n", text);
	} else {
		reply(cl, "error: upgrade failed: ");
		for (const char *at = text; *at;) { /* no empty line inside the answer */
			size_t len = strcspn(at, "\n");
			if (len)
				reply(cl, "%.*s\n", (int)len, at);
			at += len + (at[len] == '\n');
		}
		reply_end(cl);
	}
	if (!client_maybe_close(cl))
		client_process(cl);
}

int control_fd(const struct control *ctl)
{
	return ctl && ctl->lev ? evconnlistener_get_fd(ctl->lev) : -1;
}

void control_handover(struct control *ctl)
{
	if (!ctl || !ctl->lev)
		return;
	evconnlistener_free(ctl->lev);
	ctl->lev = NULL;
	ctl->handed_over = true;
}

/* The socket an old process passed on for path (upgrade), or -1. */
static int take_passed(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);

	if (len >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, len + 1);
	return notify_take_listener((struct sockaddr *)&sa,
				    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1),
				    NULL);
}

/* Splits line at blanks into at most MAX_ARGS words; -1 if there are more. */
static int split(char *line, char **argv)
{
	int argc = 0;

	for (char *tok = strtok(line, " \t"); tok; tok = strtok(NULL, " \t")) {
		if (argc == MAX_ARGS)
			return -1;
		argv[argc++] = tok;
	}
	return argc;
}

static bool backend_exists(const struct control *ctl, const char *name)
{
	const struct config *cfg = ctl->proc->rt->cfg;

	for (size_t i = 0; i < cfg->nbackends; i++)
		if (strcmp(cfg->backends[i].name, name) == 0)
			return true;
	return false;
}

/* N of show conns: 1..PROC_SNAP_MAX. */
static int parse_count(const char *s, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < 1 || v > PROC_SNAP_MAX)
		return -1;
	*out = v;
	return 0;
}

/* Answers a show command once the connection list is there. */
static void answer_show(struct client *cl, struct proc_snap *snap)
{
	char *argv[MAX_ARGS] = { NULL };
	int argc = split(cl->pending, argv);
	size_t n;
	const struct conn_info *v = proc_snap_conns(snap, &n);
	unsigned long want = SHOW_CONNS_DEFAULT;

	if (strcmp(argv[1], "conns") == 0) {
		if (argc == 3)
			parse_count(argv[2], &want);
		show_conns(cl, (struct conn_info *)v, n, want);
	} else {
		show_servers(cl, argc == 3 ? argv[2] : NULL, v, n);
	}
}

static void on_snap(struct proc_snap *snap, void *arg)
{
	struct client *cl = arg;

	evtimer_del(cl->snap_timer);
	answer_show(cl, snap);
	proc_snap_release(snap);
	cl->snap = NULL;
	free(cl->pending);
	cl->pending = NULL;
	if (!client_maybe_close(cl))
		client_process(cl);
}

static void on_snap_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct client *cl = arg;

	proc_snap_release(cl->snap);
	cl->snap = NULL;
	free(cl->pending);
	cl->pending = NULL;
	reply_error(cl, "the workers did not answer (stopping?)");
	if (!client_maybe_close(cl))
		client_process(cl);
}

/* show servers and show conns: checks the arguments, then asks the workers. */
static void cmd_show_list(struct client *cl, const char *line, int argc, char **argv)
{
	unsigned long n;
	char safe[256];

	if (argc > 3) {
		reply_error(cl, "usage: show servers [BACKEND], show conns [N]");
		return;
	}
	if (argc == 3 && strcmp(argv[1], "conns") == 0 && parse_count(argv[2], &n) < 0) {
		reply_error(cl, "bad count '%s' (1..%d)",
			    errlist_escape(argv[2], safe, sizeof(safe)), PROC_SNAP_MAX);
		return;
	}
	if (argc == 3 && strcmp(argv[1], "servers") == 0 && !backend_exists(cl->ctl, argv[2])) {
		reply_error(cl, "no backend '%s'", errlist_escape(argv[2], safe, sizeof(safe)));
		return;
	}
	cl->pending = strdup(line);
	if (!cl->pending || !(cl->snap = proc_snapshot(cl->ctl->proc, on_snap, cl))) {
		free(cl->pending);
		cl->pending = NULL;
		reply_error(cl, "out of memory");
		return;
	}
	struct timeval tv = clock_ms_to_tv(SNAP_WAIT_MS);
	evtimer_add(cl->snap_timer, &tv);
}

static void dispatch(struct client *cl, char *line)
{
	char copy[CONTROL_LINE_MAX + 1], safe[256];
	char *argv[MAX_ARGS];
	size_t len = strnlen(line, CONTROL_LINE_MAX);
	int argc;

	memcpy(copy, line, len);
	copy[len] = '\0';
	argc = split(line, argv);
	if (argc == 0) {
		reply_error(cl, "empty command (try help)");
	} else if (argc < 0) {
		reply_error(cl, "too many words (try help)");
	} else if (argc == 1 && strcmp(argv[0], "help") == 0) {
		cmd_help(cl);
	} else if (argc == 2 && strcmp(argv[0], "show") == 0 && strcmp(argv[1], "info") == 0) {
		cmd_info(cl);
	} else if (argc >= 2 && strcmp(argv[0], "show") == 0 &&
		   (strcmp(argv[1], "servers") == 0 || strcmp(argv[1], "conns") == 0)) {
		cmd_show_list(cl, copy, argc, argv);
	} else if (argc >= 2 && strcmp(argv[0], "set") == 0 && strcmp(argv[1], "server") == 0) {
		cmd_set_server(cl, argc, argv);
	} else if (argc == 1 && strcmp(argv[0], "reload") == 0) {
		cmd_reload(cl);
	} else if (argc <= 2 && strcmp(argv[0], "upgrade") == 0) {
		cmd_upgrade(cl, argc == 2 ? argv[1] : NULL);
	} else {
		reply_error(cl, "unknown command '%s' (try help)",
			    errlist_escape(copy, safe, sizeof(safe)));
	}
}

/* --------------------------------------------------------------------- the clients */

/* Runs the complete lines that have arrived, one at a time, until one waits for the
 * workers. A line longer than CONTROL_LINE_MAX is answered with an error and ends the
 * connection: what follows it cannot be told apart from the rest of that line. */
static void client_process(struct client *cl)
{
	struct evbuffer *in = bufferevent_get_input(cl->bev);
	struct evbuffer *out = bufferevent_get_output(cl->bev);

	while (!cl->snap && !cl->waiting && !cl->done_reading &&
	       evbuffer_get_length(out) < OUT_HIGH) {
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
		size_t avail = evbuffer_get_length(in);
		if (eol.pos < 0 ? avail > CONTROL_LINE_MAX : (size_t)eol.pos > CONTROL_LINE_MAX) {
			reply_error(cl, "line longer than %d bytes", CONTROL_LINE_MAX);
			cl->done_reading = true;
			break;
		}
		if (eol.pos < 0)
			break;
		char line[CONTROL_LINE_MAX + 2];
		size_t len = (size_t)eol.pos;
		evbuffer_remove(in, line, len + 1);
		line[len] = '\0';
		if (len && line[len - 1] == '\r')
			line[len - 1] = '\0';
		dispatch(cl, line);
	}
	if (cl->done_reading || evbuffer_get_length(out) >= OUT_HIGH || cl->snap || cl->waiting)
		bufferevent_disable(cl->bev, EV_READ);
	else
		bufferevent_enable(cl->bev, EV_READ);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	client_process(arg);
}

/* The answers went out: the client may send more, or it is done. */
static void on_write(struct bufferevent *bev, void *arg)
{
	struct client *cl = arg;

	if (!client_maybe_close(cl) && !cl->snap && !cl->waiting)
		client_process(cl);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct client *cl = arg;

	if (what & BEV_EVENT_EOF) {
		/* the lines it sent before its FIN are still answered */
		client_process(cl);
		cl->done_reading = true;
		client_maybe_close(cl);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && !cl->snap && !cl->waiting &&
	    !cl->done_reading) {
		reply_error(cl, "idle for %d s, closing", CONTROL_IDLE_MS / 1000);
		cl->done_reading = true;
		bufferevent_enable(bev, EV_WRITE);
		return;
	}
	client_free(cl); /* an error, or a client that does not read its answers */
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct control *ctl = arg;
	struct client *cl = calloc(1, sizeof(*cl));
	struct timeval idle = clock_ms_to_tv(CONTROL_IDLE_MS);

	if (!cl || !(cl->bev = bufferevent_socket_new(ctl->base, fd, BEV_OPT_CLOSE_ON_FREE))) {
		free(cl);
		close(fd);
		return;
	}
	cl->ctl = ctl;
	cl->id = ++ctl->next_id;
	cl->snap_timer = evtimer_new(ctl->base, on_snap_timeout, cl);
	cl->next = ctl->clients;
	if (ctl->clients)
		ctl->clients->prev = cl;
	ctl->clients = cl;
	ctl->nclients++;
	if (!cl->snap_timer) {
		client_free(cl);
		return;
	}
	bufferevent_setcb(cl->bev, on_read, on_write, on_event, cl);
	bufferevent_set_timeouts(cl->bev, &idle, &idle);
	/* never more than a line and a bit in memory per client */
	bufferevent_setwatermark(cl->bev, EV_READ, 0, CONTROL_LINE_MAX + 2);
	if (ctl->nclients > CONTROL_CLIENTS_MAX) {
		reply_error(cl, "too many control clients (%d)", CONTROL_CLIENTS_MAX);
		cl->done_reading = true;
		bufferevent_enable(cl->bev, EV_WRITE);
		return;
	}
	bufferevent_enable(cl->bev, EV_READ | EV_WRITE);
}

struct control *control_create(struct event_base *base, const char *path, struct proc *proc,
			       const struct control_ops *ops, char *err, size_t errlen)
{
	struct control *ctl = calloc(1, sizeof(*ctl));
	int fd = -1;

	if (!ctl || !(ctl->path = strdup(path))) {
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	ctl->base = base;
	ctl->proc = proc;
	ctl->ops = *ops;
	ctl->started_ms = clock_mono_ms();
	fd = take_passed(path);
	if (fd < 0)
		fd = net_listen_unix(path, err, errlen);
	if (fd < 0)
		goto err;
	ctl->lev = evconnlistener_new(base, on_accept, ctl,
				      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (!ctl->lev) {
		snprintf(err, errlen, "control %s: out of memory", path);
		close(fd);
		unlink(path);
		goto err;
	}
	return ctl;
err:
	if (ctl)
		free(ctl->path);
	free(ctl);
	return NULL;
}

void control_destroy(struct control *ctl)
{
	if (!ctl)
		return;
	while (ctl->clients) {
		flush_now(ctl->clients);
		client_free(ctl->clients);
	}
	if (ctl->lev)
		evconnlistener_free(ctl->lev);
	if (!ctl->handed_over)
		unlink(ctl->path);
	free(ctl->path);
	free(ctl);
}
