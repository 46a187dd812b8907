/* The load generator's latency histogram (see hist.h). */
#include "hist.h"

#include <stdlib.h>

#define HIST_RES_NS 100u      /* bucket width */
#define HIST_BUCKETS 2000000u /* 100 ns * 2e6 = 200 ms, then overflow */

static uint32_t *hist;
static uint64_t hist_over, hist_n, lat_sum_ns, lat_max_ns;

int hist_init(void)
{
	hist = calloc(HIST_BUCKETS, sizeof *hist);
	return hist ? 0 : -1;
}

void hist_add(uint64_t ns)
{
	uint64_t b = ns / HIST_RES_NS;
	if (b < HIST_BUCKETS)
		hist[b]++;
	else
		hist_over++;
	hist_n++;
	lat_sum_ns += ns;
	if (ns > lat_max_ns)
		lat_max_ns = ns;
}

double hist_pct(double p)
{
	uint64_t want = (uint64_t)(p * (double)hist_n + 0.999999), acc = 0;
	if (hist_n == 0)
		return 0.0;
	for (uint64_t i = 0; i < HIST_BUCKETS; i++) {
		acc += hist[i];
		if (acc >= want)
			return (double)(i * HIST_RES_NS + HIST_RES_NS / 2) / 1000.0;
	}
	return (double)lat_max_ns / 1000.0;
}

double hist_max_us(void)
{
	return (double)lat_max_ns / 1000.0;
}

double hist_mean_us(void)
{
	return hist_n ? (double)lat_sum_ns / (double)hist_n / 1000.0 : 0.0;
}
