/* The config tests' fixture: a temporary folder per test, and load helpers that check the
 * error and warning lists (see config_fixture.h). */
#include "config_fixture.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char tmpdir[PATH_MAX];
char realdir[PATH_MAX];
struct errlist errs, warns;

void write_file(const char *name, const char *text)
{
	FILE *f = fopen(name, "w");

	cr_assert_not_null(f, "cannot write %s: %s", name, strerror(errno));
	cr_assert_eq(fputs(text, f) >= 0, true);
	cr_assert_eq(fclose(f), 0);
}

void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tlsplice-config-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	cr_assert_eq(chdir(tmpdir), 0);
	cr_assert_not_null(realpath(tmpdir, realdir));
	write_file("c.pem", "placeholder: config only checks that the file is readable\n");
	errlist_init(&errs);
	errlist_init(&warns);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

void teardown(void)
{
	errlist_finish(&errs);
	errlist_finish(&warns);
	if (chdir("/") == 0)
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

struct config *load(const char *text)
{
	write_file("f.ini", text);
	return config_load("f.ini", &errs, &warns);
}

void dump(const char *what, const struct errlist *el)
{
	for (size_t i = 0; i < el->n; i++)
		cr_log_info("%s[%zu]: %s", what, i, el->msgs[i]);
}

/* want with its first "@/" replaced by the test folder as resolved (realdir + "/"). */
static void expand(const char *want, char *out, size_t len)
{
	const char *at = strstr(want, "@/");

	if (at == NULL)
		snprintf(out, len, "%s", want);
	else
		snprintf(out, len, "%.*s%s%s", (int)(at - want), want, realdir, at + 1);
}

void expect_errors(struct config *cfg, const char *const *want, size_t n)
{
	char w[PATH_MAX + 1024];

	dump("error", &errs);
	cr_assert_null(cfg, "load should fail");
	for (size_t i = 0; i < n && i < errs.n; i++) {
		expand(want[i], w, sizeof(w));
		cr_assert_str_eq(errs.msgs[i], w, "message %zu", i);
	}
	cr_assert_eq(errs.n, n, "got %zu messages, want %zu", errs.n, n);
}

struct config *load_ok(const char *text)
{
	struct config *cfg = load(text);

	dump("error", &errs);
	dump("warning", &warns);
	cr_assert_not_null(cfg, "load failed");
	cr_assert_eq(errs.n, 0);
	cr_assert_eq(warns.n, 0);
	return cfg;
}
