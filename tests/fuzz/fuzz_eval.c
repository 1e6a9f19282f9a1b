/*
 * Fuzz target for evaluation over hostile claims: the input is the claims
 * JSON an IdP might send (any shape, any types, any depth jansson accepts);
 * a fixed set of rules like the ones admins write runs over it. Nothing may
 * crash, leak or read out of bounds, whatever the types.
 */
#include "fb_mapping.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const rules[] = {
	"claims.email_verified == true && 'federation' in claims.realm_access.roles",
	"lower(claims.email)",
	"claims.groups",
	"first(claims.groups)",
	"has(claims.department) && claims.department == 'contractors'",
	"claims['http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn']",
	"matches(claims.email, '[a-z0-9._-]+@a[.]example')",
	"join(split(claims.s, ','), '|')",
	"size(claims.groups) == 2 || size(claims.email) == 3",
	"pairwise(claims.sub)",
	"pairwise(claims.employee_id, 'employee')",
	"claims.resource_access.fedbridge.roles[0]",
	"trim(upper(claims.name))",
	"startsWith(claims.sub, 'f') || endsWith(claims.sub, 'z')",
	"!(claims.a in ['x', 'y']) && claims.b != null",
	"claims.realm_access['roles'][1]",
	"'k' in claims",
	"claims.hd == 'a.example' && claims.email_verified",
	"[claims.a, claims.b] == [1, 'x']",
	"mutable(claims.preferred_username)",
};
#define N_RULES (sizeof(rules) / sizeof(rules[0]))

static struct fb_expr *compiled[N_RULES];
static struct fb_expr_scratch *scratch;

static void
setup(void)
{
	struct fb_expr_error where;

	for (size_t i = 0; i < N_RULES; i++)
		if (fb_expr_compile(rules[i], FB_EXPR_IN_LOGIN, FB_EXPR_WANT_VALUE, &compiled[i],
		        &where) != FB_OK &&
		    fb_expr_compile(rules[i], FB_EXPR_IN_LOGIN, FB_EXPR_WANT_BOOL, &compiled[i],
		        &where) != FB_OK)
			abort();
	if (fb_expr_scratch_new(8192, &scratch) != FB_OK)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char secret[] = "fuzz-fid-secret-0123456789abcdef";
	struct fb_expr_input in = { 0 };
	json_t *claims;

	if (scratch == NULL)
		setup();
	claims = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (claims == NULL)
		return 0;
	in.claims = claims;
	in.issuer = "https://kc.a.example";
	in.tenant = "HZnKEBoqDU";
	in.provider = "kc";
	in.fid_secret = secret;
	in.fid_secret_len = sizeof(secret) - 1;
	for (size_t i = 0; i < N_RULES; i++) {
		struct fb_value v;
		struct fb_buf trace;

		fb_buf_init(&trace, 4096);
		fb_expr_scratch_reset(scratch);
		if (fb_expr_eval(compiled[i], &in, scratch, &v, &trace, NULL) == FB_OK) {
			/* Read every byte of what came out: ASan sees any dangling result. */
			json_t *j = fb_value_to_json(&v);
			char *text = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
			free(text);
			json_decref(j);
		}
		fb_buf_free(&trace);
	}
	json_decref(claims);
	return 0;
}
