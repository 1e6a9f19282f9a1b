/* Private to bridge/: the subcommands of the fedbridge command. */
#ifndef FB_CLI_INT_H
#define FB_CLI_INT_H

#include "fb_bridge.h"

#define EXIT_USAGE 2

int fb_cli_keys(int argc, char **argv);
int fb_cli_token(int argc, char **argv);

/* Fetches every remote key set given by URL now (for one-shot commands). */
fb_rc fb_cli_fetch_keys(struct fb_federation *fed, struct fb_err *err);

/* Prints a configuration's diagnostics to stderr; returns NULL when it did not load. */
struct fb_conf *fb_cli_load_conf(const char *path);

#endif
