/*
 * The formats fedbridge replaces, read so an admin can move to it: the
 * messenger's whitelist.yaml and remote_whitelist.yaml (whitelist.c) and
 * its federation.yml (vkfed.c). Positions are kept for every value so each
 * problem is named as file:line:column.
 */
#ifndef FB_LEGACY_H
#define FB_LEGACY_H

#include "fb_common.h"

#include <stdbool.h>
#include <stddef.h>

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
