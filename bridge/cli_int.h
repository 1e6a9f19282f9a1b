/* Private to bridge/: the subcommands of the fedbridge command. */
#ifndef FB_CLI_INT_H
#define FB_CLI_INT_H

#include "fb_bridge.h"

#define EXIT_USAGE 2

int fb_cli_keys(int argc, char **argv);
int fb_cli_token(int argc, char **argv);
int fb_cli_mapping(int argc, char **argv);

/*
 * Loads a configuration and its keys, printing every problem. With trusts
 * (may be NULL), also fetches the remote key sets given by URL and builds
 * the trust table. False when anything failed (nothing to free then).
 */
bool fb_cli_open(const char *path, struct fb_conf **conf, struct fb_federation **fed,
    struct fb_verify_trusts **trusts, struct fb_rules **rules);

/*
 * Loads a configuration and compiles its rules, printing every diagnostic to
 * stderr; NULL when either failed. rules (may be NULL) receives the rules.
 */
struct fb_conf *fb_cli_load_conf(const char *path, struct fb_rules **rules);

#endif
