/* Dropping root. A reload after the drop must still read what the config names (keys are
 * often root-only, 0600) and bind new listeners on ports below 1024, as the running process
 * did at start-up. So, as nginx's and HAProxy's masters keep the power to do so, the switch
 * to the configured user keeps exactly two capabilities: CAP_DAC_READ_SEARCH (read any
 * file, search any directory; it grants no write) and CAP_NET_BIND_SERVICE. Every other
 * capability leaves the effective, permitted, inheritable, ambient and bounding sets.
 * Raw capget/capset system calls: no libcap dependency for two bits. */
#include "tlsplice/privs.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tlsplice/log.h"

uint64_t privs_kept_caps(void)
{
	return (1ull << CAP_DAC_READ_SEARCH) | (1ull << CAP_NET_BIND_SERVICE);
}

/* This thread's permitted set, or 0 if it cannot be read. */
static uint64_t caps_permitted(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return 0;
	return (uint64_t)d[0].permitted | (uint64_t)d[1].permitted << 32;
}

/* Sets this thread's effective and permitted sets to caps, the inheritable set to none. */
static int caps_set(uint64_t caps)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	for (int i = 0; i < 2; i++) {
		d[i].effective = (uint32_t)(caps >> (32 * i));
		d[i].permitted = (uint32_t)(caps >> (32 * i));
	}
	return (int)syscall(SYS_capset, &h, d);
}

/* Removes every capability but keep from the bounding set, so no later execve or file
 * capability can bring one back. Needs CAP_SETPCAP: runs while still root. */
static int bound_to(uint64_t keep)
{
	for (int cap = 0; cap < 64; cap++) {
		int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (r < 0)
			return errno == EINVAL ? 0 : -1; /* past the kernel's last capability */
		if (r == 1 && !(keep & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			return -1;
	}
	return 0;
}

/* Number of threads of this process (from /proc), -1 if it cannot tell. */
static int thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Before setuid: what to keep (the wanted ones this process has), set to survive it. */
static int keep_prepare(uint64_t *keep, char *err, size_t errlen)
{
	*keep = privs_kept_caps() & caps_permitted();
	if (!(*keep & (1ull << CAP_DAC_READ_SEARCH)))
		log_warn("user: no CAP_DAC_READ_SEARCH to keep: reloads can read only the files "
			 "the user can read");
	if (!(*keep & (1ull << CAP_NET_BIND_SERVICE)))
		log_warn(
			"user: no CAP_NET_BIND_SERVICE to keep: reloads cannot bind ports below 1024");
	if (thread_count() > 1) {
		snprintf(err, errlen, "privileges must be dropped before any thread starts");
		return -1;
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || bound_to(*keep) < 0) {
		snprintf(err, errlen, "cannot limit capabilities: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* After setuid: the kept capabilities become effective, and nothing else stays anywhere. */
static int keep_finish(uint64_t keep, char *err, size_t errlen)
{
	if (caps_set(keep) < 0 || prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) {
		snprintf(err, errlen, "cannot keep capabilities: %s", strerror(errno));
		return -1;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
		snprintf(err, errlen, "cannot clear ambient capabilities: %s", strerror(errno));
		return -1;
	}
	if (caps_permitted() != keep) {
		snprintf(err, errlen, "capabilities beyond the kept ones remain");
		return -1;
	}
	return 0;
}

static int switch_ids(const struct passwd *pw, gid_t gid)
{
	if (setgroups(0, NULL) < 0 && errno != EPERM)
		return -1;
	if (pw && initgroups(pw->pw_name, gid) < 0)
		return -1;
	if (setgid(gid) < 0 || (pw && setuid(pw->pw_uid) < 0))
		return -1;
	return 0;
}

int privs_drop(const char *user, const char *group, char *err, size_t errlen)
{
	if (!user && !group)
		return 0;
	struct passwd *pw = user ? getpwnam(user) : NULL;
	struct group *gr = group ? getgrnam(group) : NULL;
	if ((user && !pw) || (group && !gr)) {
		snprintf(err, errlen, "unknown user or group '%s'", user && !pw ? user : group);
		return -1;
	}
	gid_t gid = gr ? gr->gr_gid : pw->pw_gid;
	/* started as that user already (a container's --user, runAsUser): nothing to switch,
	 * and no capability to do it with */
	if ((!pw || (getuid() == pw->pw_uid && geteuid() == pw->pw_uid)) && getgid() == gid &&
	    getegid() == gid)
		return 0;
	/* only root switching to another user has capabilities to lose and some to keep */
	bool caps = geteuid() == 0 && pw && pw->pw_uid != 0;
	uint64_t keep = 0;
	if (caps && keep_prepare(&keep, err, errlen) < 0)
		return -1;
	if (switch_ids(pw, gid) < 0) {
		snprintf(err, errlen, "cannot switch to user '%s' group '%s': %s",
			 user ? user : "-", group ? group : "-", strerror(errno));
		return -1;
	}
	if (caps && keep_finish(keep, err, errlen) < 0)
		return -1;
	if (pw && pw->pw_uid != 0 && setuid(0) == 0) {
		snprintf(err, errlen, "could regain root after dropping privileges");
		return -1;
	}
	return 0;
}
