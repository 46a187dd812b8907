/* Certificates followed on disk. Folders are watched, not files: replacing a file by rename
 * (editors, `mv`) or swapping the "..data" link Kubernetes mounts secrets with leaves a
 * watch on the old file's inode blind. Events for other names in those folders are ignored,
 * and a burst of events (a swap is several) becomes one call after a quiet moment. */
#include "tlsplice/watch.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "tlsplice/clock.h"

#define WATCH_MAX_NAMES 256
#define K8S_DATA_LINK "..data" /* what a Kubernetes secret volume swaps atomically */

struct watch {
	int fd;
	struct event *readable;
	struct event *quiet; /* the debounce timer */
	void (*changed)(void *arg);
	void *arg;
	char *names[WATCH_MAX_NAMES]; /* base names that matter */
	size_t nnames;
};

static bool name_matters(const struct watch *w, const char *name)
{
	if (strcmp(name, K8S_DATA_LINK) == 0)
		return true;
	for (size_t i = 0; i < w->nnames; i++)
		if (strcmp(w->names[i], name) == 0)
			return true;
	return false;
}

/* Watches path's folder and remembers its base name; 0 or -1. */
static int watch_path(struct watch *w, const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	if (!path[0] || w->nnames == WATCH_MAX_NAMES) {
		errno = path[0] ? E2BIG : EINVAL;
		return -1;
	}
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB;
	/* the same folder twice gives the same watch descriptor: no harm */
	if (inotify_add_watch(w->fd, dir, mask | IN_ONLYDIR) < 0)
		return -1;
	if (!(w->names[w->nnames] = strdup(slash ? slash + 1 : path)))
		return -1;
	w->nnames++;
	return 0;
}

static void on_quiet(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;
	w->changed(w->arg);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct watch *w = arg;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool hit = false;
	ssize_t n;
	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const void *)p;
			/* an overflowed queue may have dropped a change that matters */
			if ((ev->mask & IN_Q_OVERFLOW) || (ev->len && name_matters(w, ev->name)))
				hit = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	if (hit) {
		struct timeval tv = clock_ms_to_tv(WATCH_DEBOUNCE_MS);
		evtimer_add(w->quiet, &tv); /* re-arming restarts the quiet period */
	}
}

static int watch_frontend(struct watch *w, const struct cfg_frontend *fe)
{
	for (size_t i = 0; i < fe->ncerts; i++) {
		if (watch_path(w, fe->certs[i].cert_path) < 0)
			return -1;
		if (fe->certs[i].key_path && watch_path(w, fe->certs[i].key_path) < 0)
			return -1;
	}
	if (fe->client_ca && watch_path(w, fe->client_ca) < 0)
		return -1;
	if (fe->ticket_keys && watch_path(w, fe->ticket_keys) < 0)
		return -1;
	if (fe->client_crl && watch_path(w, fe->client_crl) < 0)
		return -1;
	return 0;
}

struct watch *watch_create(struct event_base *base, const struct config *cfg,
			   void (*changed)(void *arg), void *arg)
{
	struct watch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->changed = changed;
	w->arg = arg;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0)
		goto err;
	for (size_t i = 0; i < cfg->nfrontends; i++)
		if (watch_frontend(w, &cfg->frontends[i]) < 0)
			goto err;
	w->readable = event_new(base, w->fd, EV_READ | EV_PERSIST, on_readable, w);
	w->quiet = evtimer_new(base, on_quiet, w);
	if (!w->readable || !w->quiet || event_add(w->readable, NULL) < 0)
		goto err;
	return w;
err:;
	int e = errno;
	watch_destroy(w);
	errno = e;
	return NULL;
}

void watch_destroy(struct watch *w)
{
	if (!w)
		return;
	if (w->readable)
		event_free(w->readable);
	if (w->quiet)
		event_free(w->quiet);
	if (w->fd >= 0)
		close(w->fd);
	for (size_t i = 0; i < w->nnames; i++)
		free(w->names[i]);
	free(w);
}
