/* The access log line of a connection, written when it closes. */
#ifndef TLSPLICE_ACCESS_H
#define TLSPLICE_ACCESS_H

#include <stddef.h>
#include <stdint.h>

struct conn;

/* Writes c's JSON line; now_us is the CLOCK_MONOTONIC time of the close. */
void access_log_conn(const struct conn *c, uint64_t now_us);
/* Appends s as a JSON string (with quotes) to out; returns the new length. Exposed for tests. */
size_t access_json_str(char *out, size_t len, size_t cap, const char *s);

#endif
