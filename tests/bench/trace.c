/* The load generator's per-request trace (see trace.h). Buffered by stdio: a request costs
 * one formatted line in memory, written out in large blocks. */
#include "trace.h"

#include <inttypes.h>
#include <stdio.h>

static FILE *trace_f;

int trace_open(const char *path)
{
	trace_f = fopen(path, "w");
	if (!trace_f)
		return -1;
	setvbuf(trace_f, NULL, _IOFBF, 1 << 20);
	return 0;
}

void trace_add(uint64_t start_ns, unsigned conn, uint64_t latency_ns)
{
	if (trace_f)
		fprintf(trace_f, "%.1f %u %.1f\n", (double)start_ns / 1e3, conn,
			(double)latency_ns / 1e3);
}

void trace_close(void)
{
	if (trace_f)
		fclose(trace_f);
	trace_f = NULL;
}
