/* The process's life on the main thread: loading and validating the configuration, the
 * main event loop and its signals (SIGTERM and SIGINT drain, SIGHUP reloads, SIGUSR1 reopens
 * the access log), reload (on SIGHUP, or when a followed certificate file changes), and the
 * start and stop, in one order, of the workers, the metrics endpoint, the health checks and
 * the file watch. Main thread only. */
#ifndef TLSPLICE_APP_H
#define TLSPLICE_APP_H

#include "tlsplice/errlist.h"
#include "tlsplice/runtime.h"

/* Exit codes of the tlsplice command. */
enum app_exit { APP_EXIT_OK = 0, APP_EXIT_CONFIG = 1, APP_EXIT_USAGE = 2, APP_EXIT_RUNTIME = 3 };

/* Loads and fully validates path (certificates too) and prints every error to stderr at
 * once, in the order of the file's lines; warnings go to warns. NULL if anything is wrong. */
struct runtime *app_load(const char *path, struct errlist *warns);

/* The same, but the errors go to errs (in file order) instead of stderr. */
struct runtime *app_load_errs(const char *path, struct errlist *errs, struct errlist *warns);

/* Serves rt, loaded from path, until SIGTERM or SIGINT has drained the workers. level: the
 * -l option (NULL: none), which wins over log_level on every reload too. rt stays the
 * caller's. Returns the exit code. */
int app_run(struct runtime *rt, const char *path, const char *level);

#endif
