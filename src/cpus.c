/* CPUs this process may use. sysconf(_SC_NPROCESSORS_ONLN) counts the node's CPUs, which in a
 * container (or under taskset) starts more workers than the process can run at once. */
#include "tlsplice/cpus.h"

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CGROUP_ROOT "/sys/fs/cgroup"

unsigned long cpus_parse_max(const char *line)
{
	char *end;
	errno = 0;
	if (strncmp(line, "max", 3) == 0)
		return 0;
	unsigned long long quota = strtoull(line, &end, 10);
	if (errno || end == line || *end != ' ')
		return 0;
	const char *p = end + 1;
	unsigned long long period = strtoull(p, &end, 10);
	if (errno || end == p || period == 0 || quota == 0 || quota > 1000000000000ull)
		return 0;
	return (unsigned long)((quota * 1000 + period - 1) / period);
}

/* The path of this process's cgroup: cgroup v2's "0::/path", or, on cgroup v1, the path of
 * the hierarchy that holds the cpu controller ("4:cpu,cpuacct:/path"). NULL if none. */
static char *own_cgroup(bool v2)
{
	char line[4096];
	char *path = NULL;
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return NULL;
	while (!path && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *ctl = strchr(line, ':'), *rest = ctl ? strchr(ctl + 1, ':') : NULL;
		if (!rest)
			continue;
		*ctl++ = '\0';
		*rest++ = '\0';
		bool cpu = false, unified = strcmp(line, "0") == 0 && *ctl == '\0';
		char *save = NULL;
		for (char *t = strtok_r(ctl, ",", &save); t; t = strtok_r(NULL, ",", &save))
			cpu = cpu || strcmp(t, "cpu") == 0;
		if (v2 ? unified : cpu)
			path = strdup(rest);
	}
	fclose(f);
	return path;
}

/* One cgroup's quota in thousandths of a CPU, 0: none. dir is the cgroup's folder. */
static unsigned long quota_in(const char *dir, bool v2)
{
	char file[4300], line[128], period[64];
	snprintf(file, sizeof(file), "%s/%s", dir, v2 ? "cpu.max" : "cpu.cfs_quota_us");
	FILE *f = fopen(file, "re");
	if (!f)
		return 0;
	bool got = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	if (!got)
		return 0;
	if (v2)
		return cpus_parse_max(line);
	/* v1: the quota ("-1": none) and the period are in two files */
	snprintf(file, sizeof(file), "%s/cpu.cfs_period_us", dir);
	if (!(f = fopen(file, "re")))
		return 0;
	got = fgets(period, sizeof(period), f) != NULL;
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	snprintf(file, sizeof(file), "%s %s", line, got ? period : "0");
	return cpus_parse_max(file);
}

/* The tightest quota of the cgroup at path below root and of every cgroup above it. */
static unsigned long walk_up(const char *root, const char *path, bool v2)
{
	char dir[4200];
	unsigned long best = 0;
	char *p = strdup(path);
	while (p) {
		snprintf(dir, sizeof(dir), "%s%s", root, strcmp(p, "/") ? p : "");
		unsigned long q = quota_in(dir, v2);
		if (q && (!best || q < best))
			best = q;
		char *slash = strrchr(p, '/');
		if (!slash || strcmp(p, "/") == 0)
			break;
		slash[slash == p] = '\0'; /* "/a/b" -> "/a", "/a" -> "/" */
	}
	free(p);
	return best;
}

/* This process's CPU quota in thousandths of a CPU; 0: no limit. Walking up also finds a
 * container's own cgroup, which its cgroup v1 mount shows at the root. */
static unsigned long cgroup_quota(void)
{
	static const char *const v1_roots[] = { CGROUP_ROOT "/cpu,cpuacct", CGROUP_ROOT "/cpu" };
	unsigned long best = 0;
	char *path = own_cgroup(true);
	if (path)
		best = walk_up(CGROUP_ROOT, path, true);
	free(path);
	/* a hybrid host lists a unified cgroup without the cpu controller: try v1 too */
	if (!best && (path = own_cgroup(false))) {
		for (size_t r = 0; r < 2 && !best; r++)
			best = walk_up(v1_roots[r], path, false);
		free(path);
	}
	return best;
}

unsigned cpus_available(char *why, size_t whylen)
{
	cpu_set_t set;
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = online > 0 ? (unsigned)online : 1;
	const char *from = "online";
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) {
		n = (unsigned)CPU_COUNT(&set);
		from = "in the affinity mask";
	}
	snprintf(why, whylen, "%u CPUs %s", n, from);
	unsigned long quota = cgroup_quota();
	if (quota) {
		unsigned q = (unsigned)((quota + 999) / 1000);
		size_t used = strlen(why);
		snprintf(why + used, whylen - used, ", cgroup quota %lu.%03lu CPUs", quota / 1000,
			 quota % 1000);
		if (q < n)
			n = q;
	}
	return n ? n : 1;
}
