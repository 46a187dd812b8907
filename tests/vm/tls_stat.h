/* The kernel's kTLS counters (/proc/net/tls_stat, per network namespace), for the VM tests. */
#ifndef TLSPLICE_TEST_TLS_STAT_H
#define TLSPLICE_TEST_TLS_STAT_H

#include <stdio.h>
#include <string.h>

struct tls_stats {
	long tx_sw, rx_sw, curr_tx, curr_rx, decrypt_error;
};

/* One counter; -1 if absent (no kTLS in this kernel). */
static inline long tls_stat(const char *name)
{
	char key[64];
	long value, found = -1;
	FILE *f = fopen("/proc/net/tls_stat", "r");

	if (f == NULL)
		return -1;
	while (fscanf(f, "%63s %ld", key, &value) == 2)
		if (strcmp(key, name) == 0)
			found = value;
	fclose(f);
	return found;
}

static inline struct tls_stats tls_stats_now(void)
{
	struct tls_stats s = {
		.tx_sw = tls_stat("TlsTxSw"),
		.rx_sw = tls_stat("TlsRxSw"),
		.curr_tx = tls_stat("TlsCurrTxSw"),
		.curr_rx = tls_stat("TlsCurrRxSw"),
		.decrypt_error = tls_stat("TlsDecryptError"),
	};
	return s;
}

#endif
