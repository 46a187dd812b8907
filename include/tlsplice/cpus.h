/* How many CPUs this process may really use: what `workers = auto` starts. */
#ifndef TLSPLICE_CPUS_H
#define TLSPLICE_CPUS_H

#include <stddef.h>

/* The CPUs in this thread's affinity mask, capped by the cgroup v2 CPU quota (cpu.max of
 * this process's cgroup and of every cgroup above it, rounded up); at least 1. why gets
 * where the number came from, e.g. "2 CPUs in the affinity mask, cgroup quota 1.5 CPUs". */
unsigned cpus_available(char *why, size_t whylen);

/* The quota in a cpu.max line ("QUOTA PERIOD" or "max PERIOD") in thousandths of a CPU;
 * 0 when it sets no limit or cannot be read. Pure, for the unit test. */
unsigned long cpus_parse_max(const char *line);

#endif
