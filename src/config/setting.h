/* One row of the settings table and the setters behind it: shared by keys.c (the table, the
 * setters of each value kind, the handler's side) and setters.c (the keys that need their own). */
#ifndef TLSPLICE_CONFIG_SETTING_H
#define TLSPLICE_CONFIG_SETTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define NO_FIELD SIZE_MAX

enum value_kind { V_DURATION, V_BOOL, V_INT, V_ENUM, V_STRING, V_PATH, V_ADDR, V_CUSTOM };

struct setting;
/* Parses val into the section struct at base; -1 with the reason in err. */
typedef int set_fn(struct loader *ld, const struct setting *st, void *base, const char *val,
		   char *err, size_t errlen);

struct enum_name {
	const char *name;
	int value;
};

/* One row per key of the contract. Defaults are value text run through the same parser. */
struct setting {
	enum sect_kind sect;
	const char *name;
	enum value_kind kind;
	size_t off;  /* field in the section's struct; NO_FIELD for keys that only validate */
	size_t size; /* sizeof the field: ints and enums are stored by size */
	const char *def;
	bool repeat;
	bool required;
	long lo, hi; /* V_INT range; V_DURATION: lo is the minimum in ms */
	const struct enum_name *names;
	const char *hint; /* V_ENUM: replaces the list of names after a bad value */
	size_t line_off;  /* int field recording the key's line; 0: none (offset 0 is a name) */
	int (*check)(const char *val, char *err, size_t errlen); /* V_STRING: extra validation */
	set_fn *custom;
};

/* The keys with a setter of their own (setters.c). */
set_fn set_workers, set_access_log, set_listen, set_cert, set_key, set_route, set_alpn, set_server,
	set_check_send, set_check_expect, set_accept_proxy_from, set_proxy_tlvs, set_control;
int check_user(const char *val, char *err, size_t errlen);
int check_group(const char *val, char *err, size_t errlen);

/* "out of memory" as the reason; -1. */
int setters_oom(char *err, size_t errlen);
/* Resolved, readable path of a file the config names; NULL with a reason otherwise. */
char *setters_path_load(struct loader *ld, const char *val, char *err, size_t errlen);

#endif
