/* Leveled error log on stderr, and the JSON access log. */
#ifndef TLSPLICE_LOG_H
#define TLSPLICE_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "tlsplice/config.h"

extern enum log_level log_current_level;

void log_set_level(enum log_level level);
int log_parse_level(const char *s, enum log_level *out);
void log_msg(enum log_level level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_error(...) log_msg(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...)                                                                              \
	do {                                                                                       \
		if (log_current_level >= LOG_INFO)                                                 \
			log_msg(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__);                        \
	} while (0)
/* Debug lines cost nothing above level debug (the arguments are not even evaluated), and at
 * debug they are rate-limited per thread (each worker, the check thread, the main thread),
 * so a flood of connections cannot flood the log: a line refused is counted, not formatted,
 * and the next line let through is preceded by "N debug lines suppressed". */
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_current_level >= LOG_DEBUG && log_debug_admit())                           \
			log_msg(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__);                       \
	} while (0)

/* The limit: a token bucket of LOG_DEBUG_BURST lines, refilled at LOG_DEBUG_RATE a second. */
#define LOG_DEBUG_RATE 200
#define LOG_DEBUG_BURST 500

struct log_bucket {
	bool started;
	uint64_t last_ms;    /* when it was last refilled */
	uint64_t milli;      /* tokens, in thousandths of a line */
	uint64_t suppressed; /* lines refused since the last one let through */
};

/* Takes one line's token from b at now_ms (a monotonic clock): true if the line may go out;
 * then *missed is how many lines b refused before it (to be reported first). A fresh
 * (zeroed) bucket starts full. The bucket is its caller's; no locking. */
bool log_bucket_take(struct log_bucket *b, uint64_t now_ms, uint64_t *missed);
/* This thread's bucket: true if a debug line may go out now; logs the suppressed count
 * first where lines were refused. */
bool log_debug_admit(void);

/* Access log target: "stdout", "stderr", "off" or a file path (appended). */
int access_log_open(const char *target);
int access_log_reopen(void); /* SIGUSR1 */
void access_log_close(void);
/* Writes one complete line (with its newline) in a single write. */
void access_log_write(const char *line, size_t len);
int access_log_enabled(void);

#endif
