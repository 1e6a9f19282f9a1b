/* Private to the verify core: the trust table's layout and lookups. */
#ifndef FB_VERIFY_TRUSTS_H
#define FB_VERIFY_TRUSTS_H

#include "verify_int.h"

struct trust_local {
	char *tenant; /* receiving tenant */
	char **remote; /* accepted tid values, sorted */
	size_t n_remote;
};

struct trust_issuer {
	char *issuer;
	struct fb_verify_keyset *keys;
	struct trust_local *locals;
	size_t n_locals;
};

struct fb_verify_trusts {
	struct trust_issuer *issuers;
	size_t n;
	uint32_t *index; /* issuer hash -> position + 1 */
	size_t index_cap;
	uint64_t seed;
};

const struct trust_issuer *verify_trusts_issuer(
    const struct fb_verify_trusts *t, const char *iss, size_t len);
const struct trust_local *verify_issuer_local(const struct trust_issuer *is, const char *tenant);
bool verify_local_accepts(const struct trust_local *l, const char *remote_tenant);

#endif
