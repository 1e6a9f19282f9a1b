/*
 * fedbridge mapping: what the admin's rules produce. Today the fid contract
 * (fid:0/<tenantID>/<local-id>); the rule language builds on it.
 */
#ifndef FB_MAPPING_H
#define FB_MAPPING_H

#include "fb_common.h"

#define FB_FID_PREFIX "fid:0/"
#define FB_FID_TENANT_MAX 16
#define FB_FID_LOCAL_MAX 128
/* "fid:0/" + tenant + "/" + local id + NUL */
#define FB_FID_MAX (sizeof(FB_FID_PREFIX) - 1 + FB_FID_TENANT_MAX + 1 + FB_FID_LOCAL_MAX + 1)

/* A parsed fid: both parts NUL-terminated copies. */
struct fb_fid {
	char tenant[FB_FID_TENANT_MAX + 1];
	char local[FB_FID_LOCAL_MAX + 1];
};

/*
 * A local id is 1 to 128 of [A-Za-z0-9._-]: employee numbers ("100401"),
 * directory object ids, pairwise hashes in base64url.
 */
bool fb_fid_local_valid(const char *local, size_t len);

/* Parses s (len bytes) into out; FB_ERR_INVALID, with the reason in err, when it is not a fid. */
fb_rc fb_fid_parse(const char *s, size_t len, struct fb_fid *out, struct fb_err *err);

/* Writes "fid:0/<tenant>/<local>" into out (size >= FB_FID_MAX). */
fb_rc fb_fid_format(
    const char *tenant, const char *local, char *out, size_t size, struct fb_err *err);

#endif
