/*
 * Fuzz target for the mapping expression compiler and evaluator: any bytes
 * as source, compiled for every input set and result kind; what compiles is
 * evaluated (with a trace) against fixed inputs holding nested objects,
 * lists, odd types, a principal record and a token, in a small scratch.
 */
#include "fb_mapping.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static json_t *claims, *attrs, *token;
static struct fb_expr_scratch *scratch;

static const char claims_text[] =
    "{\"iss\":\"https://kc.a.example\",\"sub\":\"u1\",\"email\":\"A@B.example\","
    "\"email_verified\":true,\"groups\":[\"staff\",\"sales\"],\"n\":42,\"r\":1.5,\"z\":null,"
    "\"realm_access\":{\"roles\":[\"federation\",{\"x\":[1,[2,[3]]]}]},\"s\":\"a,b,,c\","
    "\"u\":\"\\u0451\\u4e2d\"}";
static const char attrs_text[] =
    "{\"mail\":[\"a@b.example\"],\"memberOf\":[\"x\",\"y\"],\"employeeNumber\":[\"100401\"]}";
static const char token_text[] = "{\"sub\":\"fid:0/HZnKEBoqDU/7\",\"tid\":\"HZnKEBoqDU\","
                                 "\"attrs\":{\"department\":\"sales\",\"groups\":[\"a\"]}}";

static void
setup(void)
{
	claims = json_loads(claims_text, 0, NULL);
	attrs = json_loads(attrs_text, 0, NULL);
	token = json_loads(token_text, 0, NULL);
	if (claims == NULL || attrs == NULL || token == NULL ||
	    fb_expr_scratch_new(4096, &scratch) != FB_OK)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char secret[] = "fuzz-fid-secret-0123456789abcdef";
	static const char *const names[] = { "fid", "tenant", "provider", "groups" };
	struct fb_value pv[4] = {
		{ .kind = FB_V_STRING, .u.s = { "fid:0/HZnKEBoqDU/7", 18 } },
		{ .kind = FB_V_STRING, .u.s = { "HZnKEBoqDU", 10 } },
		{ .kind = FB_V_STRING, .u.s = { "kc", 2 } },
		{ .kind = FB_V_ABSENT },
	};
	struct fb_expr_record principal = { names, pv, 4 };
	struct fb_expr_input in = { 0 };
	char *src;

	if (claims == NULL)
		setup();
	if (size > FB_EXPR_SRC_MAX + 16 || (src = malloc(size + 1)) == NULL)
		return 0;
	memcpy(src, data, size);
	src[size] = '\0';
	in.claims = claims;
	in.attrs = attrs;
	in.token = token;
	in.principal = &principal;
	in.nameid = "n1";
	in.issuer = "https://kc.a.example";
	in.provider = "kc";
	in.tenant = "HZnKEBoqDU";
	in.fid_secret = secret;
	in.fid_secret_len = sizeof(secret) - 1;
	for (int want = FB_EXPR_WANT_BOOL; want <= FB_EXPR_WANT_ANY; want++) {
		struct fb_expr_error where;
		struct fb_expr *e = NULL;
		struct fb_value v;
		struct fb_buf trace;
		size_t off;
		const char *name;

		if (fb_expr_compile(src, 0xff, (enum fb_expr_want)want, &e, &where) != FB_OK) {
			if (where.offset > size ||
			    memchr(where.msg, '\0', sizeof(where.msg)) == NULL)
				abort(); /* an error must point inside the source */
			continue;
		}
		(void)fb_expr_reads_mutable(e, &off, &name);
		fb_buf_init(&trace, 8192);
		fb_expr_scratch_reset(scratch);
		if (fb_expr_eval(e, &in, scratch, &v, &trace, NULL) == FB_OK) {
			json_t *j = fb_value_to_json(&v);
			json_decref(j);
		}
		fb_expr_scratch_reset(scratch);
		(void)fb_expr_eval_truth(e, &in, scratch, NULL, NULL);
		fb_buf_free(&trace);
		fb_expr_free(e);
	}
	free(src);
	return 0;
}
