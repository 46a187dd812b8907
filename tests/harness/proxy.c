/* The proxy process: spawning tlsplice, waiting for it to listen, stopping it, and one-shot
 * runs of the binary (see harness.h). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef TLSPLICE_BIN
#define TLSPLICE_BIN "tlsplice"
#endif

struct proxy {
	pid_t pid;
	bool collected;
	int code;
	char out[4096];
	char err[4096];
};

const char *harness_tlsplice_bin(void)
{
	const char *env = getenv("TLSPLICE_BIN");

	return env && *env ? env : TLSPLICE_BIN;
}

/* fork + exec argv with stdout/stderr redirected to files; the child dies with us. */
static pid_t spawn(char *const *argv, const char *out, const char *err)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	/* Child: async-signal-safe calls only, the parent has threads. */
	int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	int fi = open("/dev/null", O_RDONLY);

	if (fo < 0 || fe < 0 || fi < 0)
		_exit(126);
	dup2(fi, 0);
	dup2(fo, 1);
	dup2(fe, 2);
	close_range(3, ~0u, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* SIG_IGN and the signal mask survive exec; give the binary a clean slate. */
	signal(SIGPIPE, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(argv[0], argv);
	_exit(127);
}

static int decode_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

/* Waits for pid up to timeout_ms: exit code (see decode_status) or -1 if still running. */
static int wait_pid(pid_t pid, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return decode_status(st);
		if (r < 0 && errno != EINTR)
			return -2;
		if (harness_now_ms() >= deadline)
			return -1;
		harness_nap_ms(5);
	}
}

/* True if some socket LISTENs on TCP port (IPv4 or IPv6). Reading /proc instead of
 * connecting keeps readiness probes out of the proxy's access log. */
bool harness_port_listening(int port)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	char line[512];
	size_t i;

	for (i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "r");
		bool found = false;

		if (!f)
			continue;
		while (!found && fgets(line, sizeof(line), f)) {
			char *colon = strchr(line, ':');
			unsigned lport = 0, st = 0;

			colon = colon ? strchr(colon + 1, ':') : NULL;
			if (colon && sscanf(colon + 1, "%x %*s %x", &lport, &st) == 2)
				found = (int)lport == port && st == 0x0A;
		}
		fclose(f);
		if (found)
			return true;
	}
	return false;
}

static void copy_stderr_of(const struct proxy *p)
{
	char *s = harness_read_file(p->err, NULL);

	harness_log("proxy stderr (%s):\n%s", p->err, s ? s : "(unreadable)");
	free(s);
}

/* Polls until the proxy listens on port, or exits, or the deadline passes. */
static bool proxy_wait_ready(struct proxy *p, int port, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;

	for (;;) {
		if (harness_port_listening(port))
			return true;
		if (!proxy_running(p)) {
			harness_log("proxy exited with %d before listening on %d", p->code, port);
			return false;
		}
		if (harness_now_ms() >= deadline) {
			harness_log("proxy not listening on %d after %d ms", port, timeout_ms);
			return false;
		}
		harness_nap_ms(10);
	}
}

struct proxy *proxy_start_args(const char *config, const char *const *extra, int wait_port)
{
	const char *argv[32];
	size_t n = 0;
	struct proxy *p = calloc(1, sizeof(*p));

	if (!p || H.nproxies >= MAX_TRACKED) {
		free(p);
		return NULL;
	}
	argv[n++] = harness_tlsplice_bin();
	argv[n++] = "-c";
	argv[n++] = config;
	while (extra && *extra && n < 31)
		argv[n++] = *extra++;
	argv[n] = NULL;
	snprintf(p->out, sizeof(p->out), "%s/proxy%zu.out", H.dir, H.nproxies);
	snprintf(p->err, sizeof(p->err), "%s/proxy%zu.err", H.dir, H.nproxies);
	p->pid = spawn((char *const *)argv, p->out, p->err);
	if (p->pid < 0) {
		free(p);
		return NULL;
	}
	H.proxies[H.nproxies++] = p;
	if (wait_port > 0 && !proxy_wait_ready(p, wait_port, HARNESS_TIMEOUT_MS)) {
		copy_stderr_of(p);
		return NULL;
	}
	return p;
}

struct proxy *proxy_start(const char *config, int wait_port)
{
	return proxy_start_args(config, NULL, wait_port);
}

pid_t proxy_pid(const struct proxy *p)
{
	return p->pid;
}

const char *proxy_stdout_path(const struct proxy *p)
{
	return p->out;
}

const char *proxy_stderr_path(const struct proxy *p)
{
	return p->err;
}

const char *proxy_access_log(const struct proxy *p)
{
	return p->out;
}

int proxy_signal(struct proxy *p, int sig)
{
	if (p->collected)
		return -1;
	return kill(p->pid, sig);
}

int proxy_wait(struct proxy *p, int timeout_ms)
{
	int r;

	if (p->collected)
		return p->code;
	r = wait_pid(p->pid, timeout_ms);
	if (r == -1)
		return -1;
	p->collected = true;
	p->code = r;
	return r;
}

bool proxy_running(struct proxy *p)
{
	return proxy_wait(p, 0) == -1;
}

int proxy_stop(struct proxy *p, int timeout_ms)
{
	int r;

	proxy_signal(p, SIGTERM);
	r = proxy_wait(p, timeout_ms);
	if (r == -1) {
		harness_log("proxy %d still running %d ms after SIGTERM; killing it", (int)p->pid,
			    timeout_ms);
		kill(p->pid, SIGKILL);
		proxy_wait(p, HARNESS_TIMEOUT_MS);
		return -1;
	}
	return r;
}

int harness_run(struct run_result *r, int timeout_ms, const char *const *argv)
{
	const char *args[64];
	size_t n = 0;
	char out[4200], err[4200];
	static unsigned seq;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	args[n++] = harness_tlsplice_bin();
	while (argv && *argv && n < 63)
		args[n++] = *argv++;
	args[n] = NULL;
	snprintf(out, sizeof(out), "%s/run%u.out", H.dir, seq);
	snprintf(err, sizeof(err), "%s/run%u.err", H.dir, seq++);
	pid = spawn((char *const *)args, out, err);
	if (pid < 0)
		return -1;
	r->status = wait_pid(pid, timeout_ms);
	if (r->status == -1) {
		kill(pid, SIGKILL);
		wait_pid(pid, HARNESS_TIMEOUT_MS);
	}
	r->out = harness_read_file(out, NULL);
	r->err = harness_read_file(err, NULL);
	if (!r->out)
		r->out = strdup("");
	if (!r->err)
		r->err = strdup("");
	return 0;
}

void run_result_finish(struct run_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

int harness_count_lines(const char *text)
{
	int n = 0;
	const char *p;

	if (!text)
		return 0;
	for (p = text; *p; p++)
		if (*p == '\n')
			n++;
	if (p > text && p[-1] != '\n')
		n++;
	return n;
}

bool harness_kernel_ktls(void)
{
	static int cached = -1;
	if (cached < 0) {
		const char *argv[] = { "-V", NULL };
		struct run_result r;
		cached = harness_run(&r, HARNESS_TIMEOUT_MS, argv) == 0 && r.out &&
			 strstr(r.out, "kTLS: available") != NULL;
		run_result_finish(&r);
	}
	return cached == 1;
}
