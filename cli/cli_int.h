/* Private to cli/: the subcommands of the fedbridge command. */
#ifndef FB_CLI_INT_H
#define FB_CLI_INT_H

#include "fb_daemon.h"
#include "fb_federation.h"
#include "fb_legacy.h"

#define EXIT_USAGE 2

/*
 * A usage error: "fedbridge CMD: " (cmd NULL: "fedbridge: "), the problem,
 * then the command's usage text, all on stderr. Returns EXIT_USAGE.
 */
int fb_cli_usage(const char *cmd, const char *usage_text, const char *fmt, ...) FB_PRINTF(3, 4);

int fb_cli_keys(int argc, char **argv);
int fb_cli_token(int argc, char **argv);
int fb_cli_mapping(int argc, char **argv);
int fb_cli_import(int argc, char **argv);
int fb_cli_sessions(int argc, char **argv);
int fb_cli_trust(int argc, char **argv);

/*
 * Loads a configuration and its keys, printing every problem. With trusts
 * (may be NULL), also fetches the remote key sets given by URL and builds
 * the trust table; a key set that cannot be fetched fails the load, unless
 * unreached is given: then it is a warning there (naming the trust, at its
 * keys) and the table is built without it, as the bridge starts. False when
 * anything failed (nothing to free then).
 */
bool fb_cli_open(const char *path, struct fb_conf **conf, struct fb_federation **fed,
    struct fb_verify_trusts **trusts, struct fb_rules **rules, struct fb_conf_diags *unreached);

/*
 * Loads a configuration and compiles its rules, printing every diagnostic to
 * stderr; NULL when either failed. rules (may be NULL) receives the rules.
 */
struct fb_conf *fb_cli_load_conf(const char *path, struct fb_rules **rules);

/* The tenant named by id, or the only one; NULL with a message. */
const struct fb_conf_tenant *fb_cli_tenant_pick(
    const struct fb_conf *conf, const char *id, const char *cmd);
const struct fb_conf_trust *fb_cli_trust_find(const struct fb_conf_tenant *t, const char *remote);
/* False, with a message naming where to add it, when the tenant has no trusts_dir. */
bool fb_cli_trusts_dir(const struct fb_conf *conf, const struct fb_conf_tenant *t, const char *cmd);
/* False, with a message, for a trust written in the configuration file itself. */
bool fb_cli_trust_writable(
    const struct fb_conf *conf, const struct fb_conf_trust *tr, const char *cmd);
/* Loads config again; when it fails, puts every file of u back. Frees u. */
bool fb_cli_undo_unless_valid(const char *config, struct fb_undo *u);

#endif
