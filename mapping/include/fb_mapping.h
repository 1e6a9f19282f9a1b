/*
 * fedbridge mapping: the admin's rules. The fid contract
 * (fid:0/<tenantID>/<local-id>), the expression language the rules are
 * written in, the compiled rules of a configuration, and the legacy pin
 * table. Pure code: no I/O, no clocks, no globals.
 */
#ifndef FB_MAPPING_H
#define FB_MAPPING_H

#include "fb_common.h"
#include "fb_conf.h"

#include <jansson.h>

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

/* ---- Expressions: a small subset of CEL, compiled once, evaluated per login or check ---- */

/* The inputs an expression may name; a name outside the allowed set is a compile error. */
enum fb_expr_inputs {
	FB_EXPR_IN_CLAIMS = 1u << 0, /* OIDC: ID token merged with userinfo (a JSON object) */
	FB_EXPR_IN_ATTRS = 1u << 1, /* SAML: name -> list of strings, by Name and FriendlyName */
	FB_EXPR_IN_NAMEID = 1u << 2, /* SAML NameID (string) */
	FB_EXPR_IN_ISSUER = 1u << 3, /* the IdP's issuer or entityID (string) */
	FB_EXPR_IN_PROVIDER = 1u << 4, /* the configured provider's name (string) */
	FB_EXPR_IN_TENANT = 1u << 5, /* the local tenantID (string) */
	FB_EXPR_IN_PRINCIPAL = 1u << 6, /* the mapped result: fid, tenant, provider, attributes */
	FB_EXPR_IN_TOKEN = 1u << 7, /* the verified federation token's claims (a JSON object) */
};
#define FB_EXPR_IN_LOGIN                                                                           \
	(FB_EXPR_IN_CLAIMS | FB_EXPR_IN_ATTRS | FB_EXPR_IN_NAMEID | FB_EXPR_IN_ISSUER |            \
	    FB_EXPR_IN_PROVIDER | FB_EXPR_IN_TENANT)
#define FB_EXPR_IN_OUTBOUND (FB_EXPR_IN_PRINCIPAL | FB_EXPR_IN_PROVIDER | FB_EXPR_IN_TENANT)
#define FB_EXPR_IN_INBOUND (FB_EXPR_IN_TOKEN | FB_EXPR_IN_TENANT)

/* What an expression must produce; checked at compile time when the type is known there. */
enum fb_expr_want {
	FB_EXPR_WANT_BOOL, /* require, deny, outbound, inbound */
	FB_EXPR_WANT_STRING, /* a fid candidate, a pin key */
	FB_EXPR_WANT_VALUE, /* an attribute: a string or a list of strings */
	FB_EXPR_WANT_ANY, /* no check (tests, tools) */
};

/* Caps that keep one evaluation bounded whatever the input. */
#define FB_EXPR_SRC_MAX 4096 /* bytes of source */
#define FB_EXPR_NODES_MAX 512 /* nodes of one compiled expression */
#define FB_EXPR_DEPTH_MAX 32 /* nesting of parentheses, calls and operators */
#define FB_EXPR_STRING_MAX 4096 /* bytes of any string an evaluation makes */
#define FB_EXPR_LIST_MAX 256 /* items of any list an evaluation makes */
#define FB_EXPR_REGEX_MAX 256 /* bytes of a matches() pattern */
#define FB_EXPR_PAIRWISE_BYTES 16 /* pairwise ids: 128 bits of HMAC-SHA-256, base64url */

/* Where and why compiling failed: offset is a byte offset into the source. */
struct fb_expr_error {
	size_t offset;
	char msg[200];
};

/* A value during or after evaluation. Strings are not NUL-terminated. */
enum fb_value_kind {
	FB_V_ABSENT, /* a path that leads nowhere, or a function of an absent value */
	FB_V_NULL,
	FB_V_BOOL,
	FB_V_INT,
	FB_V_STRING,
	FB_V_LIST,
	FB_V_JSON, /* a JSON object (or other value) from an input, not converted */
};
struct fb_value {
	enum fb_value_kind kind;
	union {
		bool b;
		int64_t i;
		struct {
			const char *p;
			size_t len;
		} s;
		struct {
			const struct fb_value *v;
			size_t n;
		} list;
		const json_t *json;
	} u;
};

/* A record of named values: how the mapped principal is handed to outbound policies. */
struct fb_expr_record {
	const char *const *names;
	const struct fb_value *values;
	size_t n;
};

/* Everything an evaluation may read; all borrowed, any may be NULL (then absent). */
struct fb_expr_input {
	const json_t *claims;
	const json_t *attrs;
	const json_t *token;
	const struct fb_expr_record *principal;
	const char *nameid;
	const char *issuer;
	const char *provider;
	const char *tenant;
	const unsigned char *fid_secret; /* for pairwise(); absent secret makes pairwise absent */
	size_t fid_secret_len;
};

/*
 * Per-thread working memory for evaluations: strings and lists that
 * functions make live here until the next fb_expr_scratch_reset. Its size is
 * fixed; running out is an evaluation error, never a crash or a realloc loop.
 */
struct fb_expr_scratch;
fb_rc fb_expr_scratch_new(size_t bytes, struct fb_expr_scratch **out);
void fb_expr_scratch_reset(struct fb_expr_scratch *s);
/* size bytes (16-byte aligned) from the scratch, valid until the next reset; NULL when full. */
void *fb_expr_scratch_alloc(struct fb_expr_scratch *s, size_t size);
void fb_expr_scratch_free(struct fb_expr_scratch *s);

/* A compiled expression: immutable, shareable across threads. */
struct fb_expr;

/*
 * Compiles src (NUL-terminated, at most FB_EXPR_SRC_MAX bytes) allowing the
 * inputs in `inputs` (enum fb_expr_inputs) and checking that it can produce
 * `want`. On failure returns FB_ERR_CONFIG (or FB_ERR_LIMIT, FB_ERR_NOMEM) and
 * fills *where with the offset and a message such as "unknown function
 * 'lowr' (did you mean 'lower'?)". The caller frees *out with fb_expr_free.
 */
fb_rc fb_expr_compile(const char *src, unsigned inputs, enum fb_expr_want want,
    struct fb_expr **out, struct fb_expr_error *where);
void fb_expr_free(struct fb_expr *e);
const char *fb_expr_source(const struct fb_expr *e);

/*
 * True when the expression reads an identifier users or admins can change
 * (e-mail, UPN, preferred_username, display names, their AD FS and SAML
 * URI forms) outside mutable(...): such a value must not become a fid.
 * *offset and *name say where and which.
 */
bool fb_expr_reads_mutable(const struct fb_expr *e, size_t *offset, const char **name);

/*
 * Evaluates e. Returns FB_OK with *out set (possibly FB_V_ABSENT); an error
 * at run time (a type mismatch on odd input, a cap hit, scratch exhausted)
 * returns FB_ERR_INVALID or FB_ERR_LIMIT with err set. Results point into
 * the inputs or the scratch. When trace is not NULL, appends one line per
 * input value read: "claims.groups = [\"staff\"]", "claims.dept: absent".
 */
fb_rc fb_expr_eval(const struct fb_expr *e, const struct fb_expr_input *in,
    struct fb_expr_scratch *scratch, struct fb_value *out, struct fb_buf *trace,
    struct fb_err *err);

/*
 * A truth for require/deny/outbound/inbound: only FB_V_BOOL true or false
 * decide; absent values and run-time errors are undecided, which every
 * caller treats as "no" (fail closed).
 */
enum fb_truth { FB_TRUTH_FALSE, FB_TRUTH_TRUE, FB_TRUTH_UNDECIDED };
enum fb_truth fb_expr_eval_truth(const struct fb_expr *e, const struct fb_expr_input *in,
    struct fb_expr_scratch *scratch, struct fb_buf *trace, struct fb_err *err);

/* Appends v as JSON text (strings quoted and escaped), for traces and output. */
fb_rc fb_value_append_json(struct fb_buf *b, const struct fb_value *v);
/* A new JSON value for v (a string or an array of strings); NULL for absent. */
json_t *fb_value_to_json(const struct fb_value *v);

/* ---- Rules: a configuration's mappings and trust policies, compiled ---- */

/* Caps on one mapped attribute, so released attributes always fit a token. */
#define FB_RULES_ATTR_BYTES_MAX 1024 /* a string value, or each item of a list */
#define FB_RULES_ATTR_ITEMS_MAX 64 /* items of a list value */

struct fb_pins;

struct fb_rules_params {
	const unsigned char *fid_secret; /* copied; NULL: pairwise() is absent (syntax checks) */
	size_t fid_secret_len;
	/* Reads a pin table file into a new buffer; NULL: pin tables are not loaded. */
	fb_rc (*read_file)(
	    void *arg, const char *path, char **data, size_t *len, struct fb_err *err);
	void *read_arg;
};

/* Every expression of a configuration, compiled; immutable and shareable across threads. */
struct fb_rules;

/*
 * Compiles the mappings and trust policies of conf (which must outlive the
 * result). Each error is appended to diags as "file:line:col: path: what",
 * with the column inside the expression and the source line under it;
 * returns FB_ERR_CONFIG when there was any.
 */
fb_rc fb_rules_compile(const struct fb_conf *conf, const struct fb_rules_params *params,
    struct fb_rules **out, struct fb_conf_diags *diags);
void fb_rules_free(struct fb_rules *r);

/* What an IdP said about one login, normalized by idp/ (all borrowed). */
struct fb_login {
	const char *tenant;
	const char *provider;
	const char *issuer;
	const char *subject;
	const json_t *claims; /* OIDC; NULL for SAML */
	const json_t *attrs; /* SAML: name -> list of strings; NULL for OIDC */
	const char *nameid; /* SAML; NULL for OIDC */
};

struct fb_trust_decision {
	const struct fb_conf_trust *trust; /* borrowed from the configuration */
	bool outbound; /* this principal gets tokens for that remote */
};

/*
 * The outcome of one login's mapping. Strings and arrays point into the
 * rules, the login's inputs or the scratch: valid until the scratch is reset.
 */
struct fb_principal {
	bool allowed;
	char fid[FB_FID_MAX];
	const char *fid_source; /* the rule path that gave the fid, e.g. "...fid[1]" or "...pins" */
	const char
	    *rule; /* refused: the rule that refused, e.g. "tenants[0].mapping[0].require[1]" */
	char reason[320]; /* refused: why, naming the absent or failing value */
	size_t n_attrs;
	const char *const *attr_names;
	const struct fb_value *attr_values; /* FB_V_ABSENT where the IdP gave nothing */
	size_t n_trusts;
	const struct fb_trust_decision *trusts; /* one per trust of the tenant, in config order */
	const struct fb_pin *pin; /* the legacy pin that matched, or NULL */
};

/*
 * Runs the tenant's mapping for in->provider: fid, attributes, require and
 * deny, then every trust's outbound policy. Returns FB_OK whether the login
 * is allowed or refused (see out->allowed); FB_ERR_NOTFOUND for an unknown
 * tenant or provider; other errors for bad input. trace (may be NULL) gets
 * one line per rule and per value it read.
 */
fb_rc fb_mapping_run(const struct fb_rules *r, const struct fb_login *in,
    struct fb_expr_scratch *scratch, struct fb_principal *out, struct fb_buf *trace,
    struct fb_err *err);
/* Forgets p; its arrays live in the scratch, which the caller resets or frees. */
void fb_principal_clear(struct fb_principal *p);

/*
 * The attributes of p as a new JSON object: all of them (trust NULL) or only
 * those trust releases. Absent attributes are left out.
 */
json_t *fb_principal_attrs_json(const struct fb_principal *p, const struct fb_conf_trust *trust);

/*
 * The receiving tenant's inbound policy for a verified token from sender_tid
 * (token is its claims). No trust, no inbound rule, or an undecided result:
 * FB_TRUTH_FALSE or FB_TRUTH_UNDECIDED, both of which deny.
 */
enum fb_truth fb_rules_inbound(const struct fb_rules *r, const char *receiving_tenant,
    const char *sender_tid, const json_t *token, struct fb_expr_scratch *scratch,
    struct fb_buf *trace);

/* Counts, for `fedbridge check` and benchmarks. */
size_t fb_rules_expr_count(const struct fb_rules *r);

/* ---- Legacy pins: users who keep the fid a whitelist file gave them ---- */

struct fb_pin {
	const char *key; /* the identity key, e.g. an e-mail, as the file wrote it */
	const char *fid; /* NULL when the files gave only remotes for this key */
	const char *const *remotes; /* remote tenantIDs the whitelist allowed; may be empty */
	size_t n_remotes;
};

/*
 * Parses a pin table (JSON, as `fedbridge import whitelist` writes it):
 *   {"version": 1, "tenant": "<tenantID>",
 *    "pins": {"<key>": {"fid": "fid:0/<tenantID>/<id>", "remotes": ["<tenantID>", ...]}}}
 * (fid or remotes may be left out, not both).
 * Keys are matched case-insensitively (ASCII); every fid must be of the
 * file's tenant. Errors name the key and the reason. name is used in messages.
 */
fb_rc fb_pins_parse(
    const char *data, size_t len, const char *name, struct fb_pins **out, struct fb_err *err);
void fb_pins_free(struct fb_pins *p);
const char *fb_pins_tenant(const struct fb_pins *p);
size_t fb_pins_count(const struct fb_pins *p);
/* The pin for key (len bytes), or NULL. O(1) expected. */
const struct fb_pin *fb_pins_find(const struct fb_pins *p, const char *key, size_t len);

#endif
