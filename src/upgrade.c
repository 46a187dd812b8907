/* Binary upgrade over an inherited socketpair (SOCK_SEQPACKET: one message per send).
 * New -> old: "error: TEXT" (each configuration error, then it exits), "config ok",
 * "serving PID". Old -> new, after "config ok": "fds" messages carrying the listening
 * sockets (SCM_RIGHTS), "srv ..." lines of run-time server state, then "end". */
#include "tlsplice/upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "tlsplice/clock.h"
#include "tlsplice/log.h"
#include "tlsplice/notify.h"
#include "tlsplice/server.h"

#define MSG_MAX 16384
#define FDS_PER_MSG 200 /* under the kernel's SCM_MAX_FD (253) */
#define REAP_WAIT_MS 1000
#define REPORT_MAX 65536

extern char **environ;

static char **saved_argv;
static char saved_exe[PATH_MAX];
static int child_fd = -1;

struct upgrade {
	struct event_base *base;
	int fd;
	pid_t pid;
	struct event *ev, *timer;
	int *fds;
	size_t nfds;
	char *state;
	upgrade_done_fn *done;
	void *arg;
	char *report; /* what the new process reported, one error a line */
	size_t report_len;
	bool finished;
};

void upgrade_save_args(int argc, char **argv)
{
	(void)argc;
	saved_argv = argv;
	ssize_t n = readlink("/proc/self/exe", saved_exe, sizeof(saved_exe) - 1);
	saved_exe[n > 0 ? n : 0] = '\0';
}

/* ---------------------------------------------------------------- the old process */

static int send_text(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int send_text(int fd, const char *fmt, ...)
{
	char buf[MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	return send(fd, buf, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

static int send_fds(int fd, const int *fds, size_t n)
{
	char data[] = "fds";
	struct iovec iov = { data, 3 };
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDS_PER_MSG)];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf };

	mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	return sendmsg(fd, &mh, MSG_NOSIGNAL) == 3 ? 0 : -1;
}

/* The sockets, the state lines in messages of whole lines, then "end". */
static int send_takeover(struct upgrade *u)
{
	for (size_t i = 0; i < u->nfds; i += FDS_PER_MSG) {
		size_t n = u->nfds - i < FDS_PER_MSG ? u->nfds - i : FDS_PER_MSG;
		if (send_fds(u->fd, u->fds + i, n) < 0)
			return -1;
	}
	for (const char *at = u->state; at && *at;) {
		size_t len = strcspn(at, "\n");
		if (len < MSG_MAX - 1 && send_text(u->fd, "%.*s", (int)len, at) < 0)
			return -1;
		at += len + (at[len] == '\n');
	}
	return send_text(u->fd, "end");
}

/* Collects the new process's exit status (it exits right after closing the channel),
 * killing it if it does not within REAP_WAIT_MS. */
static void reap(pid_t pid, char *how, size_t howlen)
{
	int st = 0;
	pid_t r = 0;

	for (int i = 0; i < REAP_WAIT_MS && (r = waitpid(pid, &st, WNOHANG)) == 0; i++)
		nanosleep(&(struct timespec){ 0, 1000000L }, NULL);
	if (r == 0) {
		kill(pid, SIGKILL);
		r = waitpid(pid, &st, 0);
		snprintf(how, howlen, "was killed");
		return;
	}
	if (r < 0)
		snprintf(how, howlen, "is gone");
	else if (WIFEXITED(st))
		snprintf(how, howlen, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(how, howlen, "died of signal %d (%s)", WTERMSIG(st),
			 strsignal(WTERMSIG(st)));
	else
		snprintf(how, howlen, "ended");
}

/* On success the channel stays open: the connections that move go through it. */
static void finish(struct upgrade *u, bool ok, const char *text)
{
	u->finished = true;
	event_del(u->ev);
	event_del(u->timer);
	if (!ok) {
		close(u->fd);
		u->fd = -1;
	}
	u->done(u->arg, ok, u->pid, text);
}

int upgrade_channel(const struct upgrade *u)
{
	return u ? u->fd : -1;
}

int upgrade_send_conn(int fd, const char *meta, int cfd, int bfd)
{
	struct iovec iov = { (void *)meta, strlen(meta) };
	union {
		char buf[CMSG_SPACE(sizeof(int) * 2)];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	int fds[2] = { cfd, bfd };

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)iov.iov_len ? 0 : -1;
}

/* The new process failed: it is reaped, and the reason plus what it reported goes back. */
static void fail(struct upgrade *u, const char *why)
{
	char how[96], *text = NULL;
	size_t len = 0;

	reap(u->pid, how, sizeof(how));
	FILE *f = open_memstream(&text, &len);
	if (f) {
		fprintf(f, "the new process (pid %d) %s: %s\n%s", (int)u->pid, how, why,
			u->report ? u->report : "");
		fclose(f);
	}
	finish(u, false, text ? text : why);
	free(text);
}

static void on_message(struct upgrade *u, char *msg)
{
	if (strncmp(msg, "error: ", 7) == 0) {
		size_t len = strlen(msg + 7);
		char *more = u->report_len + len < REPORT_MAX
				     ? realloc(u->report, u->report_len + len + 2)
				     : NULL;
		if (more) {
			u->report = more;
			memcpy(u->report + u->report_len, msg + 7, len);
			u->report_len += len;
			u->report[u->report_len++] = '\n';
			u->report[u->report_len] = '\0';
		}
	} else if (strcmp(msg, "config ok") == 0) {
		log_info("upgrade: the new process (pid %d) accepted its configuration; passing "
			 "%zu listening sockets",
			 (int)u->pid, u->nfds);
		if (send_takeover(u) < 0)
			fail(u, "cannot pass the listening sockets");
	} else if (strncmp(msg, "serving ", 8) == 0) {
		finish(u, true, "");
	} else {
		fail(u, "unexpected message on the upgrade channel");
	}
}

static void on_channel(evutil_socket_t fd, short what, void *arg)
{
	struct upgrade *u = arg;
	char msg[MSG_MAX + 1];

	ssize_t n = recv(fd, msg, MSG_MAX, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		fail(u, u->report ? "its configuration is not valid" : "it exited before serving");
		return;
	}
	msg[n] = '\0';
	on_message(u, msg);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct upgrade *u = arg;
	char why[64];

	kill(u->pid, SIGKILL);
	snprintf(why, sizeof(why), "no answer within %d ms", UPGRADE_TIMEOUT_MS);
	fail(u, why);
}

/* After the privilege drop this process keeps the capabilities a reload needs (privs.c),
 * but an exec as a non-root user would lose them, and the new process could not read the
 * root-only keys a reload reads: they pass as ambient capabilities. In the forked child:
 * raw system calls only. */
static void keep_caps_across_exec(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	if (getuid() == 0 || syscall(SYS_capget, &h, d) < 0)
		return; /* root gets its capabilities again from the exec */
	for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		d[i].inheritable = d[i].permitted;
	if (syscall(SYS_capset, &h, d) < 0)
		return;
	for (int cap = 0; cap < 64; cap++)
		if (d[cap / 32].permitted & (1u << (cap % 32)))
			prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
}

/* The environment plus UPGRADE_ENV, made before fork: the child may only exec. */
static char **child_env(int fd)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], UPGRADE_ENV "=", sizeof(UPGRADE_ENV)) != 0)
			env[k++] = environ[i];
	if (asprintf(&env[k], UPGRADE_ENV "=%d", fd) < 0) {
		free(env);
		return NULL;
	}
	return env;
}

static pid_t spawn(const char *exe, int fd)
{
	char **env = child_env(fd);
	sigset_t none;

	if (!env)
		return -1;
	sigemptyset(&none);
	pid_t pid = fork();
	if (pid == 0) {
		/* async-signal-safe calls only: this process has threads */
		fcntl(fd, F_SETFD, 0);
		sigprocmask(SIG_SETMASK, &none, NULL);
		keep_caps_across_exec();
		execve(exe, saved_argv, env);
		_exit(127);
	}
	for (size_t i = 0; env[i]; i++)
		if (strncmp(env[i], UPGRADE_ENV "=", sizeof(UPGRADE_ENV)) == 0)
			free(env[i]);
	free(env);
	return pid;
}

static int upgrade_setup(struct upgrade *u, const int *fds, size_t nfds, const char *state)
{
	u->fds = calloc(nfds ? nfds : 1, sizeof(int));
	u->state = strdup(state ? state : "");
	u->ev = event_new(u->base, u->fd, EV_READ | EV_PERSIST, on_channel, u);
	u->timer = evtimer_new(u->base, on_timeout, u);
	if (!u->fds || !u->state || !u->ev || !u->timer)
		return -1;
	memcpy(u->fds, fds, nfds * sizeof(int));
	u->nfds = nfds;
	/* a send to a new process that stopped reading must not hold the main loop long */
	struct timeval tv = { 2, 0 };
	setsockopt(u->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return 0;
}

struct upgrade *upgrade_start(struct event_base *base, const char *exe, const int *fds, size_t nfds,
			      const char *state, upgrade_done_fn *done, void *arg, char *err,
			      size_t errlen)
{
	struct upgrade *u = calloc(1, sizeof(*u));
	int sv[2] = { -1, -1 };

	if (!exe)
		exe = saved_exe;
	if (!u || !saved_argv || !exe[0]) {
		snprintf(err, errlen, "%s",
			 u ? "the running executable's path is unknown" : "out of memory");
		free(u);
		return NULL;
	}
	u->base = base;
	u->done = done;
	u->arg = arg;
	if (access(exe, X_OK) < 0) {
		snprintf(err, errlen, "%s: %s", exe, strerror(errno));
		goto err;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		goto err;
	}
	u->fd = sv[0];
	if (upgrade_setup(u, fds, nfds, state) < 0) {
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	u->pid = spawn(exe, sv[1]);
	if (u->pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto err;
	}
	close(sv[1]);
	sv[1] = -1;
	struct timeval tv = clock_ms_to_tv(UPGRADE_TIMEOUT_MS);
	event_add(u->ev, NULL);
	evtimer_add(u->timer, &tv);
	log_info("upgrade: started %s as pid %d", exe, (int)u->pid);
	return u;
err:
	if (sv[1] >= 0)
		close(sv[1]);
	u->fd = -1;
	if (sv[0] >= 0)
		close(sv[0]);
	u->finished = true;
	upgrade_destroy(u);
	return NULL;
}

void upgrade_destroy(struct upgrade *u)
{
	if (!u)
		return;
	if (!u->finished) {
		char how[96];
		kill(u->pid, SIGKILL);
		reap(u->pid, how, sizeof(how));
	}
	if (u->fd >= 0)
		close(u->fd);
	if (u->ev)
		event_free(u->ev);
	if (u->timer)
		event_free(u->timer);
	free(u->report);
	free(u->fds);
	free(u->state);
	free(u);
}

/* The frontend totals that carry over (not the active gauge), in a fixed order. */
static const size_t fe_offsets[] = {
	offsetof(struct fe_stats, connections),
	offsetof(struct fe_stats, hs_failures[HS_FAIL_PROTOCOL]),
	offsetof(struct fe_stats, hs_failures[HS_FAIL_TIMEOUT]),
	offsetof(struct fe_stats, hs_failures[HS_FAIL_CLOSED]),
	offsetof(struct fe_stats, ktls_tx),
	offsetof(struct fe_stats, ktls_rx),
	offsetof(struct fe_stats, relay[RELAY_KIND_SPLICE]),
	offsetof(struct fe_stats, relay[RELAY_KIND_USERSPACE]),
	offsetof(struct fe_stats, relay[RELAY_KIND_MIXED]),
	offsetof(struct fe_stats, bytes_in),
	offsetof(struct fe_stats, bytes_out),
	offsetof(struct fe_stats, ktls_fallbacks[KTLS_FALLBACK_CIPHER]),
	offsetof(struct fe_stats, ktls_fallbacks[KTLS_FALLBACK_KERNEL]),
	offsetof(struct fe_stats, ktls_fallbacks[KTLS_FALLBACK_PARTIAL]),
};
#define FE_COUNTERS (sizeof(fe_offsets) / sizeof(fe_offsets[0]))

static atomic_uint_fast64_t *fe_counter(const struct fe_stats *st, size_t k)
{
	return (atomic_uint_fast64_t *)((char *)st + fe_offsets[k]);
}

char *upgrade_state_text(const struct runtime *rt)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; i < rt->cfg->nbackends; i++) {
		const struct pool *p = &rt->pools[i];
		for (unsigned k = 0; k < p->nservers; k++) {
			const struct server *s = &p->servers[k];
			fprintf(f, "srv %s %s %d %d %d %d %llu %llu %llu %d %d %llu %llu\n",
				p->cfg->name, s->cfg->addr.text, atomic_load(&s->up),
				atomic_load(&s->checked), atomic_load(&s->ok_streak),
				atomic_load(&s->fail_streak),
				(unsigned long long)atomic_load(&s->connections),
				(unsigned long long)atomic_load(&s->connect_failures),
				(unsigned long long)atomic_load(&s->check_failures),
				atomic_load(&s->admin), atomic_load(&s->weight),
				/* CLOCK_MONOTONIC is the machine's: the times mean the same there */
				(unsigned long long)atomic_load(&s->changed_ms),
				(unsigned long long)atomic_load(&s->retry_at_ms));
		}
	}
	for (size_t i = 0; i < rt->cfg->nfrontends; i++) {
		const struct fe_stats *st = rt->stats[i];
		fprintf(f, "fe %s", rt->cfg->frontends[i].name);
		for (size_t k = 0; k < FE_COUNTERS; k++)
			fprintf(f, " %llu", (unsigned long long)atomic_load(fe_counter(st, k)));
		fputc('\n', f);
	}
	fclose(f);
	return text;
}

/* ---------------------------------------------------------------- the new process */

bool upgrade_child_init(void)
{
	const char *s = getenv(UPGRADE_ENV);
	char *end;

	if (!s)
		return false;
	errno = 0;
	long fd = strtol(s, &end, 10);
	unsetenv(UPGRADE_ENV);
	if (errno || end == s || *end || fd < 3 || fd > INT_MAX)
		return false;
	child_fd = (int)fd;
	fcntl(child_fd, F_SETFD, FD_CLOEXEC);
	return true;
}

bool upgrade_is_child(void)
{
	return child_fd >= 0;
}

void upgrade_child_fail(const struct errlist *errs)
{
	if (child_fd < 0)
		return;
	for (size_t i = 0; i < errs->n; i++)
		send_text(child_fd, "error: %s", errs->msgs[i]);
	close(child_fd);
	child_fd = -1;
}

/* Registers the sockets of one "fds" message. */
static int take_fds(struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fds[FDS_PER_MSG];
		memcpy(fds, CMSG_DATA(c), n * sizeof(int));
		for (size_t i = 0; i < n; i++)
			if (notify_add_passed(fds[i]) < 0)
				close(fds[i]);
	}
	return (mh->msg_flags & MSG_CTRUNC) ? -1 : 0;
}

/* One "fe" line: a frontend's totals, added to the new process's (still zero). */
static void take_fe(struct runtime *rt, char *line)
{
	char *save = NULL, *name;

	strtok_r(line, " ", &save);
	name = strtok_r(NULL, " ", &save);
	for (size_t i = 0; name && i < rt->cfg->nfrontends; i++) {
		if (strcmp(rt->cfg->frontends[i].name, name) != 0)
			continue;
		for (size_t k = 0; k < FE_COUNTERS; k++) {
			const char *v = strtok_r(NULL, " ", &save);
			if (!v)
				return;
			atomic_fetch_add(fe_counter(rt->stats[i], k), strtoull(v, NULL, 10));
		}
	}
}

/* One "srv" line: the old process's state of a server that is still in the file. */
static void take_state(struct runtime *rt, const char *line)
{
	char be[256], addr[256];
	int up, checked, oks, fails, admin, weight;
	unsigned long long conns, cfails, chfails, changed, retry;

	if (sscanf(line, "srv %255s %255s %d %d %d %d %llu %llu %llu %d %d %llu %llu", be, addr,
		   &up, &checked, &oks, &fails, &conns, &cfails, &chfails, &admin, &weight,
		   &changed, &retry) != 13)
		return;
	for (size_t i = 0; i < rt->cfg->nbackends; i++) {
		struct pool *p = &rt->pools[i];
		for (unsigned k = 0;
		     p->cfg->name && strcmp(p->cfg->name, be) == 0 && k < p->nservers; k++) {
			struct server *s = &p->servers[k];
			if (strcmp(s->cfg->addr.text, addr) != 0)
				continue;
			atomic_store(&s->up, up != 0);
			atomic_store(&s->checked, checked != 0);
			atomic_store(&s->ok_streak, oks);
			atomic_store(&s->fail_streak, fails);
			atomic_store(&s->connections, conns);
			atomic_store(&s->connect_failures, cfails);
			atomic_store(&s->check_failures, chfails);
			atomic_store(&s->admin,
				     admin >= SERVER_READY && admin <= SERVER_MAINT ? admin : 0);
			atomic_store(&s->weight, weight >= 0 && weight <= 256 ? weight : 0);
			atomic_store(&s->changed_ms, changed);
			if (p->cfg->check == CHECK_NONE)
				atomic_store(&s->retry_at_ms, retry);
			if (admin != SERVER_READY || weight != 0)
				log_info(
					"upgrade: backend %s server %s keeps its run-time settings: "
					"state %s, weight %d",
					be, addr, server_admin_name((enum server_admin)admin),
					server_weight(s));
			pool_reorder(p);
		}
	}
}

int upgrade_child_take(struct runtime *rt, char *err, size_t errlen)
{
	int64_t end = (int64_t)clock_mono_ms() + UPGRADE_TIMEOUT_MS;
	char msg[MSG_MAX + 1];

	if (send_text(child_fd, "config ok") < 0) {
		snprintf(err, errlen, "upgrade channel: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * FDS_PER_MSG)];
			struct cmsghdr align;
		} u;
		struct iovec iov = { msg, MSG_MAX };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = u.buf,
				     .msg_controllen = sizeof(u.buf) };
		struct pollfd pfd = { .fd = child_fd, .events = POLLIN };
		int64_t left = end - (int64_t)clock_mono_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			snprintf(err, errlen, "upgrade: the old process sent no sockets in time");
			return -1;
		}
		ssize_t n = recvmsg(child_fd, &mh, MSG_CMSG_CLOEXEC);
		if (n <= 0) {
			snprintf(err, errlen, "upgrade: the old process closed the channel");
			return -1;
		}
		msg[n] = '\0';
		if (strcmp(msg, "end") == 0)
			return 0;
		if (strcmp(msg, "fds") == 0 && take_fds(&mh) < 0) {
			snprintf(err, errlen, "upgrade: sockets lost in transit (fd limit?)");
			return -1;
		}
		if (strncmp(msg, "srv ", 4) == 0)
			take_state(rt, msg);
		else if (strncmp(msg, "fe ", 3) == 0)
			take_fe(rt, msg);
	}
}

static struct event *conn_ev;
static upgrade_adopt_fn *adopt_fn;
static void *adopt_arg;

/* A connection from the old process: its two sockets and the line that describes it. */
static void on_conn(evutil_socket_t fd, short what, void *arg)
{
	char msg[MSG_MAX + 1];
	union {
		char buf[CMSG_SPACE(sizeof(int) * 2)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { msg, MSG_MAX };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	int fds[2] = { -1, -1 };

	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) { /* the old process is gone: nothing more comes */
		event_free(conn_ev);
		conn_ev = NULL;
		close(child_fd);
		child_fd = -1;
		return;
	}
	msg[n] = '\0';
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(fds)))
		memcpy(fds, CMSG_DATA(c), sizeof(fds));
	if (fds[0] < 0 || fds[1] < 0 || strncmp(msg, "conn ", 5) != 0 ||
	    adopt_fn(adopt_arg, fds[0], fds[1], msg) < 0) {
		if (fds[0] >= 0)
			close(fds[0]);
		if (fds[1] >= 0)
			close(fds[1]);
	}
	OPENSSL_cleanse(msg, (size_t)n); /* a connection's TLS 1.3 traffic secrets */
}

void upgrade_child_serving(struct event_base *base, upgrade_adopt_fn *fn, void *arg)
{
	if (child_fd < 0)
		return;
	send_text(child_fd, "serving %d", (int)getpid());
	adopt_fn = fn;
	adopt_arg = arg;
	conn_ev = event_new(base, child_fd, EV_READ | EV_PERSIST, on_conn, NULL);
	if (!conn_ev || event_add(conn_ev, NULL) < 0) {
		if (conn_ev)
			event_free(conn_ev);
		conn_ev = NULL;
		close(child_fd);
		child_fd = -1;
	}
}

void upgrade_child_finish(void)
{
	if (conn_ev)
		event_free(conn_ev);
	conn_ev = NULL;
	if (child_fd >= 0)
		close(child_fd);
	child_fd = -1;
}
