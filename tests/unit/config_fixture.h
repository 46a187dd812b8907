/* What the three config test executables share: each test runs in its own process, in a fresh
 * temporary folder it chdirs into, so the config file is "f.ini" in messages just as a user
 * would name it. */
#ifndef TLSPLICE_TEST_CONFIG_FIXTURE_H
#define TLSPLICE_TEST_CONFIG_FIXTURE_H

#include <limits.h>
#include <stddef.h>

#include "tlsplice/config.h"

extern char tmpdir[PATH_MAX];
extern char realdir[PATH_MAX];
extern struct errlist errs, warns;

/* The smallest valid frontend and backend, for tests about something else. */
#define FE "[frontend web]\nlisten = 127.0.0.1:8443\ncert = c.pem\nbackend = app\n"
#define BE "[backend app]\nserver = 127.0.0.1:9001\n"

/* Writes text to the file name (in the test's folder). */
void write_file(const char *name, const char *text);
/* Criterion .init and .fini of the config suite. */
void setup(void);
void teardown(void);
/* Writes f.ini and loads it. */
struct config *load(const char *text);
/* Logs the messages of el. */
void dump(const char *what, const struct errlist *el);
/* The load failed with exactly these messages, in this order. */
void expect_errors(struct config *cfg, const char *const *want, size_t n);

#define EXPECT_ERRORS(cfg, ...)                                                                    \
	do {                                                                                       \
		static const char *const want_[] = { __VA_ARGS__ };                                \
		expect_errors((cfg), want_, sizeof(want_) / sizeof(want_[0]));                     \
	} while (0)

/* The load succeeded without errors or warnings. */
struct config *load_ok(const char *text);

#endif
