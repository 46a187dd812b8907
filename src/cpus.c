/* CPUs this process may use. sysconf(_SC_NPROCESSORS_ONLN) counts the node's CPUs, which in a
 * container (or under taskset) starts more workers than the process can run at once. */
#include "tlsplice/cpus.h"

#include <errno.h>
#include <sched.h>
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

/* The cgroup v2 path of this process ("0::/kubepods/..."), or NULL. */
static char *own_cgroup(void)
{
	char line[4096];
	char *path = NULL;
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return NULL;
	while (!path && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			path = strdup(line + 3);
		}
	}
	fclose(f);
	return path;
}

/* The tightest cpu.max quota from this process's cgroup up to the root, in thousandths of a
 * CPU; 0: no limit. */
static unsigned long cgroup_quota(void)
{
	char file[4200], line[128];
	unsigned long best = 0;
	char *path = own_cgroup();
	if (!path)
		return 0;
	for (;;) {
		snprintf(file, sizeof(file), CGROUP_ROOT "%s/cpu.max", strcmp(path, "/") ? path : "");
		FILE *f = fopen(file, "re");
		if (f) {
			unsigned long q = fgets(line, sizeof(line), f) ? cpus_parse_max(line) : 0;
			if (q && (!best || q < best))
				best = q;
			fclose(f);
		}
		char *slash = strrchr(path, '/');
		if (!slash || slash == path)
			break;
		*slash = '\0';
	}
	free(path);
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
