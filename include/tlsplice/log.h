/* Leveled error log on stderr, and the JSON access log. */
#ifndef TLSPLICE_LOG_H
#define TLSPLICE_LOG_H

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
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_current_level >= LOG_DEBUG)                                                \
			log_msg(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__);                       \
	} while (0)

/* Access log target: "stdout", "stderr", "off" or a file path (appended). */
int access_log_open(const char *target);
int access_log_reopen(void); /* SIGUSR1 */
void access_log_close(void);
/* Writes one complete line (with its newline) in a single write. */
void access_log_write(const char *line, size_t len);
int access_log_enabled(void);

#endif
