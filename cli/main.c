/* The fedbridge command: subcommands in the style of nginx -t and git. */
#include "cli_int.h"
#include "fb_login.h"

#include <curl/curl.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

static const char usage_main[] =
    "usage: fedbridge [--version] [--help] <command> [<args>]\n"
    "\n"
    "commands:\n"
    "  check   validate a configuration file and exit (like nginx -t)\n"
    "  serve   run the bridge\n"
    "  reload  check a configuration, then have the running bridge load it\n"
    "  keys    generate, list and publish signing keys\n"
    "  token   issue a federation token, or run the relay check on one\n"
    "  mapping dry-run the mapping rules on saved identities (test, diff)\n"
    "  import  legacy files: whitelists into a pin table, federation.yml into trusts\n"
    "  sessions list, show and revoke sessions, users, tenants and trusts\n"
    "  trust   export this installation, import a remote's export, show, remove\n"
    "\n"
    "Run 'fedbridge <command> --help' for a command's options.\n";

static const char usage_check[] =
    "usage: fedbridge check -c FILE\n"
    "       fedbridge check --reference\n"
    "\n"
    "Validates FILE and every file it references. Prints a one-line summary and\n"
    "exits 0 when it is valid; prints every error as file:line:column and exits 1\n"
    "otherwise.\n"
    "\n"
    "  -c, --config FILE   the configuration file\n"
    "      --reference     print the configuration reference (Markdown) and exit\n"
    "  -h, --help          this text\n";

static const char usage_serve[] =
    "usage: fedbridge serve -c FILE [--listen HOST:PORT] [--relay-listen HOST:PORT]\n"
    "       [--pid-file FILE]\n"
    "\n"
    "Runs the bridge in the foreground, logging to stderr. SIGHUP reloads FILE:\n"
    "a file with errors is refused (the errors are logged) and the running\n"
    "configuration keeps serving. SIGTERM or SIGINT stops it.\n"
    "\n"
    "  -c, --config FILE        the configuration file\n"
    "  -l, --listen HOST:PORT   override installation.listen (port 0: any free port)\n"
    "  -r, --relay-listen HOST:PORT  override installation.relay_listen (port 0: any free port)\n"
    "  -p, --pid-file FILE      write the process id there once listening (for reload)\n"
    "  -h, --help               this text\n";

int
fb_cli_usage(const char *cmd, const char *usage_text, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fedbridge%s%s: ", cmd != NULL ? " " : "", cmd != NULL ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", usage_text);
	return EXIT_USAGE;
}

struct fb_conf *
fb_cli_load_conf(const char *path, struct fb_rules **rules)
{
	struct fb_conf_diags diags = { 0 };
	struct fb_conf *conf = fb_conf_load_file(path, 0, &diags);
	struct fb_rules *r = NULL;

	/* The rules are part of the configuration: `check` fails on them too. */
	if (conf != NULL && fb_bridge_rules_load(conf, &r, &diags) != FB_OK) {
		fb_conf_unref(conf);
		conf = NULL;
	}
	if (rules != NULL)
		*rules = r;
	else
		fb_rules_free(r);
	if (conf == NULL) {
		for (size_t i = 0; i < diags.n; i++)
			fprintf(stderr, "%s\n", diags.v[i].msg);
		if (diags.dropped)
			fprintf(stderr, "%s: %zu more errors not shown\n", path, diags.dropped);
		fprintf(stderr, "%s: configuration is invalid (%zu error%s)\n", path,
		    diags.n + diags.dropped, diags.n + diags.dropped == 1 ? "" : "s");
		fb_conf_diags_free(&diags);
	}
	return conf;
}

/* One warning per remote key set that could not be fetched (check_unreached's arg). */
struct unreached {
	const struct fb_conf *conf;
	struct fb_conf_diags *out;
};

static void
check_unreached(void *arg, const struct fb_key_source_info *s)
{
	const struct unreached *u = arg;

	if (s->last_error == NULL)
		return;
	fb_conf_diag_add(u->out, u->conf, fb_conf_pos_of(u->conf, &s->trust->keys),
	    "warning: trust %s: %s %s (%s); the bridge starts without them and keeps trying",
	    s->remote,
	    s->last_rc == FB_ERR_IO ? "could not reach the key set at" : "refused the key set at",
	    s->keys, s->last_error);
}

/* One warning per IdP whose metadata or discovery could not be had (check_idp's arg). */
static void
check_idp_unready(void *arg, const struct fb_login_unready *u)
{
	const struct unreached *un = arg;
	const struct fb_conf_provider *p = u->provider;
	const void *at =
	    p->type == FB_PROVIDER_SAML ? (const void *)&p->idp_metadata : (const void *)&p->issuer;

	fb_conf_diag_add(un->out, un->conf, fb_conf_pos_of(un->conf, at),
	    "warning: provider %s: %s (%s); the bridge starts without it and keeps trying", p->name,
	    u->rc == FB_ERR_CONFIG ? "its IdP serves what cannot be used (misconfigured)"
	                           : "could not reach its IdP",
	    u->why);
}

/*
 * The logins as serve builds them, their IdPs asked now: what cannot be built
 * is an error of the files (false, said on stderr); an IdP that cannot be
 * reached or serves what cannot be used is a warning in out, as it is for the
 * bridge, which starts without it.
 */
static bool
check_idps(const char *path, const struct fb_conf *conf, struct fb_conf_diags *out)
{
	struct fb_login_site *site = NULL;
	struct fb_err err = { 0 };
	struct unreached u = { conf, out };

	/* What the IdPs answered is reported below, once, not also as log lines. */
	fb_log_setup(FB_LOG_ERROR, FB_LOG_TEXT);
	if (fb_login_site_new(conf, &site, &err) != FB_OK) {
		fprintf(stderr, "%s: %s\n%s: configuration is invalid (1 error)\n", path, err.msg,
		    path);
		return false;
	}
	fb_login_site_refresh(site, (int64_t)time(NULL));
	fb_login_site_unready(site, check_idp_unready, &u);
	fb_login_site_free(site);
	return true;
}

bool
fb_cli_open(const char *path, struct fb_conf **conf, struct fb_federation **fed,
    struct fb_verify_trusts **trusts, struct fb_rules **rules, struct fb_conf_diags *unreached)
{
	struct fb_refresh_opts ro = { .now = (int64_t)time(NULL), .force = true };
	struct fb_err err = { 0 };
	struct fb_buf log;
	bool changed;
	fb_rc rc;

	*fed = NULL;
	if ((*conf = fb_cli_load_conf(path, rules)) == NULL)
		return false;
	rc = fb_federation_load(*conf, fed, &err);
	if (rc == FB_OK && trusts != NULL) {
		/* One-shot commands fetch every remote key set given by URL now. */
		fb_buf_init(&log, 65536);
		rc = fb_federation_refresh(*fed, &ro, &changed, &log, &err);
		fb_buf_free(&log);
		if (rc != FB_OK && unreached != NULL) {
			/* What a remote serves is not the files' fault: said, not refused. */
			struct unreached u = { *conf, unreached };

			fb_federation_key_sources(*fed, check_unreached, &u);
			rc = FB_OK;
		}
		if (rc == FB_OK)
			rc = fb_federation_trusts(*fed, trusts, &err);
	}
	if (rc != FB_OK) {
		fprintf(stderr, "%s: %s\n%s: configuration is invalid (1 error)\n", path, err.msg,
		    path);
		fb_federation_free(*fed);
		/* The rules point into the configuration: they go first. */
		if (rules != NULL) {
			fb_rules_free(*rules);
			*rules = NULL;
		}
		fb_conf_unref(*conf);
		*fed = NULL;
		*conf = NULL;
		return false;
	}
	return true;
}

static int
cmd_check(int argc, char **argv)
{
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
		{ "reference", no_argument, NULL, 'r' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *path = NULL;
	bool reference = false;
	struct fb_federation *fed = NULL;
	struct fb_verify_trusts *table = NULL;
	struct fb_conf_diags findings = { 0 };
	struct fb_conf *conf;
	size_t providers = 0, trusts = 0;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'r':
			reference = true;
			break;
		case 'h':
			fputs(usage_check, stdout);
			return 0;
		default:
			fputs(usage_check, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc)
		return fb_cli_usage(
		    NULL, usage_check, "check: unexpected argument %s", argv[optind]);
	if (reference) {
		struct fb_buf b;
		fb_buf_init(&b, 1 << 20);
		if (fb_conf_reference_markdown(&b) != FB_OK) {
			fb_buf_free(&b);
			fprintf(stderr, "fedbridge: check: out of memory\n");
			return 1;
		}
		fputs(b.data, stdout);
		fb_buf_free(&b);
		return 0;
	}
	if (path == NULL)
		return fb_cli_usage(NULL, usage_check, "check: -c FILE is required");

	/* Like nginx -t: also load what the file points at (keys, remote JWKS); a remote
	 * that cannot be reached is a warning, as it is for the bridge. */
	if (!fb_cli_open(path, &conf, &fed, &table, NULL, &findings)) {
		fb_conf_diags_free(&findings);
		return 1;
	}
	fb_verify_trusts_free(table);
	fb_federation_free(fed);
	if (!check_idps(path, conf, &findings)) {
		fb_conf_diags_free(&findings);
		fb_conf_unref(conf);
		return 1;
	}
	for (size_t i = 0; i < conf->n_tenants; i++) {
		providers += conf->tenants[i].n_providers;
		trusts += conf->tenants[i].n_trusts;
	}
	/* What loads but is not ready yet: said, not refused (the bridge runs without it). */
	fb_trust_findings(conf, (int64_t)time(NULL), &findings);
	for (size_t i = 0; i < findings.n; i++)
		fprintf(stderr, "%s\n", findings.v[i].msg);
	printf("%s: ok: installation %s, %zu tenant%s, %zu provider%s, %zu trust%s", path,
	    conf->installation.name, conf->n_tenants, conf->n_tenants == 1 ? "" : "s", providers,
	    providers == 1 ? "" : "s", trusts, trusts == 1 ? "" : "s");
	if (findings.n + findings.dropped > 0)
		printf(", %zu warning%s", findings.n + findings.dropped,
		    findings.n + findings.dropped == 1 ? "" : "s");
	printf("\n");
	fb_conf_diags_free(&findings);
	fb_conf_unref(conf);
	return 0;
}

static int
cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "relay-listen", required_argument, NULL, 'r' },
		{ "pid-file", required_argument, NULL, 'p' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	struct fb_serve_opts so = { 0 };
	int ch;

	while ((ch = getopt_long(argc, argv, "c:l:r:p:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			so.conf_path = optarg;
			break;
		case 'l':
			so.listen = optarg;
			break;
		case 'r':
			so.relay_listen = optarg;
			break;
		case 'p':
			so.pid_file = optarg;
			break;
		case 'h':
			fputs(usage_serve, stdout);
			return 0;
		default:
			fputs(usage_serve, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc)
		return fb_cli_usage(
		    NULL, usage_serve, "serve: unexpected argument %s", argv[optind]);
	if (so.conf_path == NULL)
		return fb_cli_usage(NULL, usage_serve, "serve: -c FILE is required");
	return fb_serve(&so);
}

static const char usage_reload[] =
    "usage: fedbridge reload -c FILE --pid-file PIDFILE\n"
    "\n"
    "Like nginx -s reload: checks FILE as fedbridge check does and, only when it\n"
    "loads, sends SIGHUP to the bridge whose pid PIDFILE holds (serve --pid-file).\n"
    "The bridge swaps the new configuration in whole; checks in flight finish on\n"
    "the old one. Exit status: 0 sent, 1 refused (nothing sent), 2 usage error.\n"
    "\n"
    "  -c, --config FILE      the configuration file the bridge serves\n"
    "  -p, --pid-file FILE    the bridge's pid file\n"
    "  -h, --help             this text\n";

static int
cmd_reload(int argc, char **argv)
{
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
		{ "pid-file", required_argument, NULL, 'p' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *path = NULL, *pid_file = NULL;
	struct fb_federation *fed = NULL;
	struct fb_verify_trusts *table = NULL;
	struct fb_conf *conf = NULL;
	struct fb_err err = { 0 };
	struct fb_conf_diags unreached = { 0 };
	char *text = NULL, *end = NULL;
	size_t len = 0;
	long pid;
	int ch;

	while ((ch = getopt_long(argc, argv, "c:p:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'p':
			pid_file = optarg;
			break;
		case 'h':
			fputs(usage_reload, stdout);
			return 0;
		default:
			fputs(usage_reload, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || path == NULL || pid_file == NULL)
		return fb_cli_usage(
		    NULL, usage_reload, "reload: -c FILE and --pid-file FILE are required");
	if (!fb_cli_open(path, &conf, &fed, &table, NULL, &unreached) ||
	    !check_idps(path, conf, &unreached)) {
		fprintf(
		    stderr, "fedbridge reload: nothing sent: the bridge keeps its configuration\n");
		fb_conf_diags_free(&unreached);
		fb_verify_trusts_free(table);
		fb_federation_free(fed);
		fb_conf_unref(conf);
		return 1;
	}
	for (size_t i = 0; i < unreached.n; i++)
		fprintf(stderr, "%s\n", unreached.v[i].msg);
	fb_conf_diags_free(&unreached);
	fb_verify_trusts_free(table);
	fb_federation_free(fed);
	fb_conf_unref(conf);
	if (fb_file_read(pid_file, 64, &text, &len, &err) != FB_OK) {
		fprintf(stderr, "fedbridge reload: %s\n", err.msg);
		return 1;
	}
	pid = strtol(text, &end, 10);
	if (end == text || (*end != '\n' && *end != '\0') || pid <= 1) {
		fprintf(stderr, "fedbridge reload: %s holds no process id\n", pid_file);
		free(text);
		return 1;
	}
	free(text);
	if (kill((pid_t)pid, SIGHUP) != 0) {
		fprintf(stderr, "fedbridge reload: process %ld: %s\n", pid, strerror(errno));
		return 1;
	}
	printf("%s: ok; sent SIGHUP to fedbridge %ld\n", path, pid);
	return 0;
}

/*
 * Before any secret is read: no core dump (it would hold the signing keys, the fid secret
 * and client secrets) and no ptrace by other processes of the same user. Not dumpable also
 * keeps /proc/PID/mem and environ to root. Fails closed: a bridge that cannot promise this
 * does not start.
 */
static bool
no_core_dumps(void)
{
	static const struct rlimit none = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &none) != 0) {
		fprintf(stderr, "fedbridge: cannot turn core dumps off (RLIMIT_CORE 0): %s\n",
		    strerror(errno));
		return false;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		fprintf(stderr,
		    "fedbridge: cannot make the process non-dumpable (PR_SET_DUMPABLE 0): %s\n",
		    strerror(errno));
		return false;
	}
	return true;
}

int
main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int, char **);
	} commands[] = { { "check", cmd_check }, { "serve", cmd_serve }, { "keys", fb_cli_keys },
		{ "token", fb_cli_token }, { "mapping", fb_cli_mapping },
		{ "import", fb_cli_import }, { "sessions", fb_cli_sessions },
		{ "trust", fb_cli_trust }, { "reload", cmd_reload } };

	if (argc < 2) {
		fputs(usage_main, stderr);
		return EXIT_USAGE;
	}
	/* First of all: almost every command reads keys or secrets. */
	if (!no_core_dumps())
		return 1;
	/* Once, before any thread: libcurl fetches remote key sets. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "fedbridge: cannot initialise libcurl\n");
		return 1;
	}
	atexit(curl_global_cleanup);
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("fedbridge %s\n", FB_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_main, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	return fb_cli_usage(NULL, usage_main, "unknown command '%s'", argv[1]);
}
