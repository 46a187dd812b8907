/* The privilege drop where no switch is needed: a container started with --user already runs
 * as the configured user, without the capabilities a switch would need. */
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tlsplice/privs.h"

/* Runs privs_drop(user, group) in a child that already is pw; its exit status: 0 on success. */
static int drop_as(const struct passwd *pw, const char *user, const char *group)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char err[256] = "";
		if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
			_exit(2);
		if (privs_drop(user, group, err, sizeof(err)) < 0) {
			fprintf(stderr, "privs_drop: %s\n", err);
			_exit(1);
		}
		_exit(getuid() == pw->pw_uid && getgid() == pw->pw_gid ? 0 : 3);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(privs, already_that_user_is_no_switch)
{
	struct passwd *pw = getpwnam("nobody");
	if (geteuid() != 0 || !pw)
		cr_skip_test("needs root and the user nobody to become it");
	cr_assert_eq(drop_as(pw, "nobody", NULL), 0,
		     "running as nobody, user = nobody needs no switch");
}

Test(privs, a_needed_switch_that_is_impossible_fails)
{
	struct passwd *pw = getpwnam("nobody");
	if (geteuid() != 0 || !pw)
		cr_skip_test("needs root and the user nobody to become it");
	int rc = drop_as(pw, "root", NULL);
	cr_assert_eq(rc, 1, "nobody cannot become root: an error (child exit %d)", rc);
}
