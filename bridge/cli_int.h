/* Private to bridge/: the subcommands of the fedbridge command. */
#ifndef FB_CLI_INT_H
#define FB_CLI_INT_H

#include "fb_bridge.h"

#define EXIT_USAGE 2

int fb_cli_keys(int argc, char **argv);
int fb_cli_token(int argc, char **argv);
int fb_cli_mapping(int argc, char **argv);
int fb_cli_import(int argc, char **argv);
int fb_cli_sessions(int argc, char **argv);

/* One user of a legacy whitelist file, where it was written. */
struct fb_whitelist_user {
	char *key; /* the e-mail, as written */
	char *fid; /* remote_whitelist.yaml; NULL in whitelist.yaml */
	unsigned line, col; /* of the key */
	unsigned fid_line, fid_col; /* of the fid's value */
};

/* A whitelist.yaml (remote_tenant set) or remote_whitelist.yaml (users with fids). */
struct fb_whitelist {
	char *remote_tenant;
	unsigned remote_line, remote_col;
	struct fb_whitelist_user *users; /* sorted by key, without case */
	size_t n;
	bool has_fids;
};

/*
 * Parses either legacy format from data (len bytes, not NUL-terminated);
 * errors as "name:line:col: what". *out is written only on success; free it
 * with fb_whitelist_free.
 */
fb_rc fb_whitelist_parse(
    const char *data, size_t len, const char *name, struct fb_whitelist *out, struct fb_err *err);
void fb_whitelist_free(struct fb_whitelist *w);

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
