/* The fid contract: fid:0/<tenantID>/<local-id>, as the messenger writes it. */
#include "fb_mapping.h"

#include "fb_conf.h"

#include <stdio.h>
#include <string.h>

bool
fb_fid_local_valid(const char *local, size_t len)
{
	if (len == 0 || len > FB_FID_LOCAL_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)local[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

fb_rc
fb_fid_parse(const char *s, size_t len, struct fb_fid *out, struct fb_err *err)
{
	const size_t plen = sizeof(FB_FID_PREFIX) - 1;
	const char *tenant, *slash;
	char tid[FB_FID_TENANT_MAX + 1];
	size_t tlen, llen;

	if (len < plen || memcmp(s, FB_FID_PREFIX, plen) != 0)
		return FB_ERR_SET(err, FB_ERR_INVALID, "a fid starts with %s", FB_FID_PREFIX);
	tenant = s + plen;
	slash = memchr(tenant, '/', len - plen);
	if (slash == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "a fid is fid:0/<tenantID>/<local-id>");
	tlen = (size_t)(slash - tenant);
	llen = len - plen - tlen - 1;
	if (tlen > FB_FID_TENANT_MAX)
		return FB_ERR_SET(err, FB_ERR_INVALID, "the fid's tenantID is too long");
	memcpy(tid, tenant, tlen);
	tid[tlen] = '\0';
	if (memchr(tenant, '\0', tlen) != NULL || !fb_conf_tenant_id_valid(tid))
		return FB_ERR_SET(err, FB_ERR_INVALID, "the fid's tenantID is not valid");
	if (!fb_fid_local_valid(slash + 1, llen))
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "the fid's local id must be 1 to %d of A-Z a-z 0-9 . _ -", FB_FID_LOCAL_MAX);
	memcpy(out->tenant, tid, tlen + 1);
	memcpy(out->local, slash + 1, llen);
	out->local[llen] = '\0';
	return FB_OK;
}

fb_rc
fb_fid_format(const char *tenant, const char *local, char *out, size_t size, struct fb_err *err)
{
	if (!fb_conf_tenant_id_valid(tenant))
		return FB_ERR_SET(err, FB_ERR_INVALID, "not a tenantID");
	if (!fb_fid_local_valid(local, strlen(local)))
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "a local id must be 1 to %d of A-Z a-z 0-9 . _ -", FB_FID_LOCAL_MAX);
	if (size < FB_FID_MAX)
		return FB_ERR_SET(err, FB_ERR_LIMIT, "output buffer too small for a fid");
	(void)snprintf(out, size, "%s%s/%s", FB_FID_PREFIX, tenant, local);
	return FB_OK;
}
