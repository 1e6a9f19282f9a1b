/*
 * libfedverify: the per-message relay check of federation tokens.
 *
 * Given a token, the certificate (SHA-256) the sending relay presented over
 * mTLS, the receiving tenant and optionally the sender fid the message
 * claims, it answers allow (fid, tenant, attributes) or deny with exactly one
 * reason code. It depends on OpenSSL, jansson and fedbridge's common helpers
 * only, so relays can embed it.
 *
 * Thread-safety: a verifier is shared by all threads; trust tables are
 * immutable and replaced whole (a check sees the old or the new table, never
 * a mix); revocations may be added while checks run.
 */
#ifndef FB_VERIFY_H
#define FB_VERIFY_H

#include "fb_err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Stable reason codes: their names are part of the relay contract. */
enum fb_verify_reason {
	FB_VERIFY_ALLOW = 0,
	FB_VERIFY_MALFORMED,
	FB_VERIFY_BAD_SIGNATURE,
	FB_VERIFY_UNKNOWN_KEY,
	FB_VERIFY_UNTRUSTED_ISSUER,
	FB_VERIFY_WRONG_TENANT,
	FB_VERIFY_WRONG_AUDIENCE,
	FB_VERIFY_EXPIRED,
	FB_VERIFY_NOT_YET_VALID,
	FB_VERIFY_CERT_MISMATCH,
	FB_VERIFY_SENDER_MISMATCH,
	FB_VERIFY_REVOKED,
	FB_VERIFY_POLICY_DENIED,
};
#define FB_VERIFY_REASONS 13

/* "allow", "malformed", "bad_signature", ... */
const char *fb_verify_reason_name(enum fb_verify_reason reason);

/* The only signature algorithms of federation tokens. */
enum fb_verify_alg { FB_ALG_ES256 = 1, FB_ALG_EDDSA };
const char *fb_verify_alg_name(enum fb_verify_alg alg);

#define FB_VERIFY_MAX_TOKEN 65536 /* hard ceiling; the configured cap is lower */
#define FB_VERIFY_KID_MAX 128
#define FB_VERIFY_FID_MAX 160
#define FB_VERIFY_TENANT_MAX 16
#define FB_VERIFY_SHA256_LEN 32

/* The shape attrs must have: an object of strings or lists of strings. Issuers use it
 * too, so nothing is signed that the relay check would refuse. */
bool fb_verify_attrs_valid(json_t *attrs);

/* ---- keys ---- */

/* An immutable set of public keys of one issuer, shared by reference. */
struct fb_verify_keyset;

/*
 * Parses a JWKS ({"keys":[...]}) holding EC P-256 (ES256) and OKP Ed25519
 * (EdDSA) public keys, each with a kid. Keys of other types, private members
 * ("d"), duplicate kids and an "alg" that does not fit the key are refused.
 */
fb_rc fb_verify_keyset_from_jwks(
    const char *json, size_t len, struct fb_verify_keyset **out, struct fb_err *err);
/* True when the set holds a key with this kid. */
bool fb_verify_keyset_has_kid(const struct fb_verify_keyset *ks, const char *kid);
/* A set with no keys (a remote whose keys were not fetched yet): every kid is unknown. */
fb_rc fb_verify_keyset_empty(struct fb_verify_keyset **out, struct fb_err *err);
struct fb_verify_keyset *fb_verify_keyset_ref(struct fb_verify_keyset *ks);
void fb_verify_keyset_unref(struct fb_verify_keyset *ks);
size_t fb_verify_keyset_count(const struct fb_verify_keyset *ks);
/* When the last of the keys stops signing (their "exp"), or 0 if some key has no exp. */
int64_t fb_verify_keyset_expiry(const struct fb_verify_keyset *ks);

/* ---- trust table ---- */

/* One local tenant's trust in one issuer (a remote bridge, or this one). */
struct fb_verify_trust_spec {
	const char *local_tenant; /* the receiving side */
	const char *issuer; /* iss of the tokens */
	const char *const *remote_tenants; /* tid values accepted from that issuer */
	size_t n_remote_tenants;
	struct fb_verify_keyset *keys; /* borrowed; the table takes its own reference */
};

struct fb_verify_trusts;
fb_rc fb_verify_trusts_new(const struct fb_verify_trust_spec *specs, size_t n,
    struct fb_verify_trusts **out, struct fb_err *err);
void fb_verify_trusts_free(struct fb_verify_trusts *t);

/* ---- the verifier ---- */

struct fb_verify_opts {
	int64_t clock_skew; /* seconds tolerated on iat, nbf, exp */
	int64_t max_lifetime; /* tokens count as expired at min(exp, iat + max_lifetime) */
	size_t max_token; /* size cap in bytes */
	size_t cache_entries; /* verified-token cache capacity (0: no cache) */
};

struct fb_verify_result;

/*
 * The receiving tenant's inbound policy, applied last. Returns true to allow.
 * Must be thread-safe, and a function of the token alone (not of the time):
 * a cached token keeps the answer it got until fb_verifier_set_policy is
 * called again.
 */
typedef bool (*fb_verify_policy_fn)(void *arg, const struct fb_verify_result *r);

struct fb_verifier;
fb_rc fb_verifier_new(
    const struct fb_verify_opts *opts, struct fb_verifier **out, struct fb_err *err);
void fb_verifier_free(struct fb_verifier *v);

/* Installs a trust table (the verifier owns it from here) and frees the old one safely. */
void fb_verifier_set_trusts(struct fb_verifier *v, struct fb_verify_trusts *t);
void fb_verifier_set_policy(struct fb_verifier *v, fb_verify_policy_fn fn, void *arg);
/* Applies new clock skew, lifetime cap and size cap (cache_entries is fixed at creation). */
void fb_verifier_set_limits(struct fb_verifier *v, const struct fb_verify_opts *opts);

/*
 * Revocations: until is when the entry may be forgotten (the longest lifetime
 * it affects). FB_REVOKE_SESSION: that sid whatever the issuer, for what is
 * decided here; a remote's revocation of its own session takes
 * fb_verifier_revoke_session.
 */
enum fb_verify_revoke_kind { FB_REVOKE_SESSION, FB_REVOKE_FID, FB_REVOKE_TENANT };
fb_rc fb_verifier_revoke(
    struct fb_verifier *v, enum fb_verify_revoke_kind kind, const char *value, time_t until);
/*
 * The tokens issuer issued in its session sid are revoked, and no others: a
 * session id means something only to the installation that made it, so the
 * same text from another issuer (ours included) is another session.
 */
fb_rc fb_verifier_revoke_session(
    struct fb_verifier *v, const char *issuer, const char *sid, time_t until);
/* Every token issued (iat) before t is revoked. */
void fb_verifier_revoke_before(struct fb_verifier *v, time_t t);
/* Every token of tenant (its tid) issued before t is revoked. */
fb_rc fb_verifier_revoke_tenant_before(struct fb_verifier *v, const char *tenant, time_t t);
size_t fb_verifier_revoked_count(struct fb_verifier *v);

struct fb_verify_input {
	const char *token;
	size_t token_len;
	const char *receiving_tenant;
	const unsigned char *peer_cert_sha256; /* FB_VERIFY_SHA256_LEN bytes */
	const char *sender_fid; /* NULL when the message claims none */
	time_t now;
};

/*
 * Filled by a check. The strings stay valid until fb_verify_result_clear
 * (the result holds a reference to the verified token's claims). On allow
 * fid, tid and attrs_json are set; on a deny after the signature was
 * verified they are set too, for logs.
 */
struct fb_verify_result {
	enum fb_verify_reason reason;
	const char *detail; /* a short static explanation, for logs */
	const char *fid;
	const char *tid;
	const char *sid;
	const char *jti;
	const char *attrs_json; /* the released attributes, a JSON object */
	const json_t *claims; /* the whole verified payload, held like the strings above */
	time_t exp;
	void *hold; /* private */
};

/* Runs the relay check. Release the result with fb_verify_result_clear. */
enum fb_verify_reason fb_verifier_check(
    struct fb_verifier *v, const struct fb_verify_input *in, struct fb_verify_result *out);
void fb_verify_result_clear(struct fb_verify_result *r);

/* Counters, for metrics and benchmarks. */
struct fb_verify_stats {
	uint64_t checks, cache_hits, signatures;
};
void fb_verifier_stats(struct fb_verifier *v, struct fb_verify_stats *out);

/*
 * Verifies another document a trusted issuer signed (the revocation feed):
 * a compact JWS whose header is exactly alg (ES256 or EdDSA), typ (== typ)
 * and kid, signed by a key of issuer's key set in the current trust table,
 * with a JSON object payload whose iss is issuer. *payload is a new reference.
 */
fb_rc fb_verifier_verify_jws(struct fb_verifier *v, const char *issuer, const char *typ,
    const char *jws, size_t len, json_t **payload, struct fb_err *err);

/* SHA-256 of a DER certificate, or of the first certificate in a PEM text. */
fb_rc fb_verify_cert_sha256(const char *pem_or_der, size_t len,
    unsigned char out[FB_VERIFY_SHA256_LEN], struct fb_err *err);

#endif
