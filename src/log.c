/* Leveled error log (stderr, one write per message so threads never interleave) and the
 * access log (one write per line, so a line is never torn by another worker). */
#include "tlsplice/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tlsplice/clock.h"
#include "tlsplice/errlist.h"

enum log_level log_current_level = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static pthread_mutex_t access_mu = PTHREAD_MUTEX_INITIALIZER;
static char access_target[4096];
static atomic_int access_fd = -1; /* -1: off */
static int parked_fd = -1;        /* a former access_fd, now on /dev/null (under access_mu) */

void log_set_level(enum log_level level)
{
	log_current_level = level;
}

int log_parse_level(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

void log_msg(enum log_level level, const char *file, int line, const char *fmt, ...)
{
	if (level > log_current_level)
		return;
	int saved = errno;
	char buf[2048];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	int n = snprintf(buf, sizeof(buf),
			 "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ tlsplice[%d] %s: ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int)(tv.tv_usec / 1000), (int)getpid(), level_names[level]);
	/* messages quote input (paths, names, peers' words): a byte a terminal could act on is
	 * written as \xHH */
	char raw[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	errlist_escape(raw, buf + n, sizeof(buf) - (size_t)n);
	size_t len = strlen(buf);
	if (log_current_level >= LOG_DEBUG)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, " [%s:%d]", base, line);
	if (len > sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	buf[len++] = '\n';
	write_all(STDERR_FILENO, buf, len);
	errno = saved;
}

bool log_bucket_take(struct log_bucket *b, uint64_t now_ms, uint64_t *missed)
{
	const uint64_t cap = (uint64_t)LOG_DEBUG_BURST * 1000u;

	*missed = 0;
	if (!b->started) {
		b->started = true;
		b->milli = cap;
		b->last_ms = now_ms;
	} else if (now_ms > b->last_ms) {
		/* bounded before multiplying: a bucket idle for ages is simply full */
		uint64_t idle = now_ms - b->last_ms;
		uint64_t add = idle >= cap ? cap : idle * LOG_DEBUG_RATE;
		b->milli = add >= cap - b->milli ? cap : b->milli + add;
		b->last_ms = now_ms;
	}
	if (b->milli < 1000u) {
		b->suppressed++;
		return false;
	}
	b->milli -= 1000u;
	*missed = b->suppressed;
	b->suppressed = 0;
	return true;
}

bool log_debug_admit(void)
{
	static _Thread_local struct log_bucket bucket;
	uint64_t missed;

	if (!log_bucket_take(&bucket, clock_coarse_ms(), &missed))
		return false;
	if (missed)
		log_msg(LOG_DEBUG, __FILE__, __LINE__,
			"%llu debug lines suppressed (at most %d a second per thread, bursts of %d)",
			(unsigned long long)missed, LOG_DEBUG_RATE, LOG_DEBUG_BURST);
	return true;
}

static int open_target(const char *target)
{
	if (strcmp(target, "off") == 0)
		return -1;
	if (strcmp(target, "stdout") == 0)
		return fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0);
	if (strcmp(target, "stderr") == 0)
		return fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
	return open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/* Turning the log off must not close the descriptor: a worker that loaded it a moment ago
 * may still write, and a reused number would send its line to a client socket. /dev/null
 * takes its place and the number is parked for the next target. */
static void park(int cur)
{
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	atomic_store(&access_fd, -1);
	if (null >= 0) {
		dup3(null, cur, O_CLOEXEC); /* an upgrade's new process must not inherit it */
		close(null);
	}
	parked_fd = cur;
}

int access_log_open(const char *target)
{
	int fd = open_target(target);
	if (fd < 0 && strcmp(target, "off") != 0)
		return -1;
	pthread_mutex_lock(&access_mu);
	snprintf(access_target, sizeof(access_target), "%s", target);
	int cur = atomic_load(&access_fd);
	if (cur < 0 && parked_fd >= 0 && fd >= 0) {
		cur = parked_fd;
		parked_fd = -1;
		atomic_store(&access_fd, cur);
	}
	if (cur >= 0 && fd >= 0) {
		/* dup2 swaps the file under the same descriptor number, so a worker writing
		 * concurrently never writes into a descriptor that was closed and reused */
		dup3(fd, cur, O_CLOEXEC);
		close(fd);
	} else if (cur >= 0) {
		park(cur);
	} else {
		atomic_store(&access_fd, fd);
	}
	pthread_mutex_unlock(&access_mu);
	return 0;
}

int access_log_reopen(void)
{
	char target[sizeof(access_target)];
	pthread_mutex_lock(&access_mu);
	memcpy(target, access_target, sizeof(target));
	pthread_mutex_unlock(&access_mu);
	if (target[0] == '\0' || strcmp(target, "off") == 0)
		return 0;
	return access_log_open(target);
}

void access_log_close(void)
{
	int old = atomic_exchange(&access_fd, -1);
	if (old >= 0)
		close(old);
	pthread_mutex_lock(&access_mu);
	if (parked_fd >= 0)
		close(parked_fd);
	parked_fd = -1;
	pthread_mutex_unlock(&access_mu);
}

int access_log_enabled(void)
{
	return atomic_load_explicit(&access_fd, memory_order_relaxed) >= 0;
}

void access_log_write(const char *line, size_t len)
{
	int fd = atomic_load_explicit(&access_fd, memory_order_relaxed);
	if (fd >= 0)
		write_all(fd, line, len);
}
