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
int fb_cli_trust(int argc, char **argv);

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

/* Files written by one command, put back as they were when the result is refused. */
struct fb_undo;
struct fb_undo *fb_undo_new(void);
/* Writes path whole (fb_file_write_atomic), first keeping what it held. */
fb_rc fb_undo_write(struct fb_undo *u, const char *path, const void *data, size_t len,
    unsigned mode, struct fb_err *err);
/* Frees u; with restore, every file written goes back to its old content (or away). */
void fb_undo_finish(struct fb_undo *u, bool restore);

/* One trust file of a trusts_dir, as the trust commands write it (NULL fields left out). */
struct fb_trust_file {
	const char *origin; /* a comment line: where it came from */
	const char *remote, *relay, *cert_cn, *ca, *client_cert, *client_key, *keys, *issuer;
	const char *const *tenants;
	size_t n_tenants;
	const char *outbound, *inbound;
	const char *const *release;
	size_t n_release;
};
/* Writes DIR/REMOTE.yaml through u. */
fb_rc fb_cli_trust_file_write(
    struct fb_undo *u, const char *dir, const struct fb_trust_file *t, struct fb_err *err);
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

/* The messenger's federation.yml (vkfed.c): its local tenant and remote instances. */
struct fb_vkfed_instance {
	char *address, *name, *cert_cn, *ssl_cert, *ssl_key, *cacert; /* cert_cn may be NULL */
	char **tenants;
	size_t n_tenants;
	unsigned line, col; /* of the instance */
};
struct fb_vkfed {
	char *local_tenant;
	unsigned local_line, local_col;
	bool enabled, mtls_enabled;
	struct fb_vkfed_instance *v;
	size_t n;
};
/*
 * Parses federation.yml from data (len bytes); errors as "name:line:col: what". Keys
 * fedbridge does not use are appended to notes, one "name:line:col: ..." line each.
 * Free *out with fb_vkfed_free (also after a failure).
 */
fb_rc fb_vkfed_parse(const char *data, size_t len, const char *name, struct fb_vkfed *out,
    struct fb_buf *notes, struct fb_err *err);
void fb_vkfed_free(struct fb_vkfed *f);

#endif
