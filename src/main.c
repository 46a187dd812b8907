/* tlsplice: arguments, -t and -V; app.c runs the rest. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "tlsplice/app.h"
#include "tlsplice/ctl.h"
#include "tlsplice/errlist.h"
#include "tlsplice/ktls.h"
#include "tlsplice/ktls_suites.h"
#include "tlsplice/log.h"
#include "tlsplice/upgrade.h"

#define DEFAULT_CONFIG "/etc/tlsplice/tlsplice.ini"

struct opts {
	const char *config;
	bool check;
	bool dump; /* -T: print the effective configuration */
	const char *level;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: tlsplice [-c FILE] [-t] [-T] [-V] [-h] [-l LEVEL]\n"
		   "       tlsplice ctl [-s PATH] COMMAND...\n"
		   "  -c, --config FILE     configuration file (default " DEFAULT_CONFIG ")\n"
		   "  -t, --check           validate the configuration and exit\n"
		   "  -T, --dump            validate, print the effective configuration and exit\n"
		   "  -V, -v, --version     print versions and kernel TLS support\n"
		   "  -l, --log-level LEVEL error, warn, info or debug (overrides log_level)\n"
		   "  -h, --help            this help\n");
}

static void version(void)
{
	printf("tlsplice %s\n", TLSPLICE_VERSION);
	printf("OpenSSL %s (built with %s)\n", OpenSSL_version(OPENSSL_FULL_VERSION_STRING),
	       OPENSSL_FULL_VERSION_STR);
	printf("libevent %s\n", event_get_version());
	printf("%s\n", ktls_probe_describe());
	printf("kTLS cipher suites offloaded: %s\n", ktls_suites_describe());
}

/* -t checks what start-up would refuse too: ktls = on where the kernel lacks kTLS. */
static int check_ktls(const struct config *cfg)
{
	struct errlist errs;
	if (cfg->ktls != KTLS_ON || ktls_probe() == (KTLS_TX | KTLS_RX))
		return 0;
	errlist_init(&errs);
	errlist_add(&errs, cfg->path, cfg->ktls_line, "global", "ktls",
		    "on, but %s (use ktls = auto, or load the module: modprobe tls)",
		    ktls_probe_describe());
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	errlist_finish(&errs);
	return -1;
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "dump", no_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	enum log_level lvl;
	char safe[256]; /* an argument quoted back, its control bytes escaped */
	int ch;
	o->config = DEFAULT_CONFIG;
	while ((ch = getopt_long(argc, argv, "c:tTVvhl:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 't':
			o->check = true;
			break;
		case 'T':
			o->check = o->dump = true;
			break;
		case 'V':
		case 'v':
			version();
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case 'l':
			if (log_parse_level(optarg, &lvl) < 0) {
				fprintf(stderr,
					"tlsplice: bad log level '%s' (error, warn, info, debug)\n",
					errlist_escape(optarg, safe, sizeof(safe)));
				return APP_EXIT_USAGE;
			}
			o->level = optarg;
			break;
		default:
			usage(stderr);
			return APP_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tlsplice: unexpected argument '%s'\n",
			errlist_escape(argv[optind], safe, sizeof(safe)));
		usage(stderr);
		return APP_EXIT_USAGE;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	if (argc > 1 && strcmp(argv[1], "ctl") == 0)
		return ctl_main(argc - 1, argv + 1);
	upgrade_save_args(argc, argv);
	bool child = upgrade_child_init(); /* started by an upgrade: report to the old process */
	int rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	struct errlist warns;
	errlist_init(&warns);
	struct errlist errs;
	errlist_init(&errs);
	struct runtime *rt = app_load_errs(o.config, &errs, &warns);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	if (!rt && child)
		upgrade_child_fail(&errs);
	errlist_finish(&errs);
	enum log_level lvl = LOG_INFO;
	if (rt)
		lvl = rt->cfg->log_level;
	if (o.level)
		log_parse_level(o.level, &lvl);
	log_set_level(lvl);
	for (size_t i = 0; i < warns.n; i++)
		log_warn("%s", warns.msgs[i]);
	errlist_finish(&warns);
	if (!rt)
		return APP_EXIT_CONFIG;
	if (o.check) {
		rc = check_ktls(rt->cfg) < 0 ? APP_EXIT_CONFIG : APP_EXIT_OK;
		if (rc == APP_EXIT_OK && o.dump)
			config_dump(rt->cfg, stdout);
		else if (rc == APP_EXIT_OK)
			printf("%s: configuration OK\n", o.config);
		runtime_unref(rt);
		return rc;
	}
	rc = app_run(rt, o.config, o.level);
	runtime_unref(rt);
	return rc;
}
