/*
 * Unit tests for the relay check (verify) and federation token
 * issuance (federation/token.c): one test per reason code, a table of hostile
 * tokens in the spirit of RFC 8725, the verified-token cache, JWKS parsing
 * and the exact shape of issued tokens.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fb_federation.h"
#include "fb_verify.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOCAL "HWqHczeM2P"
#define REMOTE "HZnKEBoqDU"
#define ISS_A "https://sso.a.example"
#define ISS_C "https://sso.c.example"
#define TEN_C "Cc8sT2mZx4"
#define LOCAL_C "Lq8sT2mZx4"
#define SUB "fid:0/" REMOTE "/100401"
#define SID "sess-0001"
#define ATTRS "{\"email\":\"alice@a.example\"}"
#define SKEW 30
#define MAX_LIFE 900
#define MAX_TOKEN 8192
#define TTL 300

/* ---- fixture ---- */

static struct {
	char dir[64];
	struct fb_signing_key *es, *ed, *cc; /* issuer A: es + ed; issuer C: cc */
	struct fb_verify_keyset *ks_a, *ks_c;
	char *jwks_a;
	json_t *jwk_es, *jwk_ed;
	char *pub_pem, *pub_jwk;
	unsigned char *pub_der;
	size_t pub_pem_len, pub_der_len;
	unsigned char pub_point[65];
	unsigned char thumb[32], other[32];
	time_t now;
	struct fb_verifier *v;
	unsigned long seq;
} fx;

static const struct fb_verify_opts fx_opts = {
	.clock_skew = SKEW, .max_lifetime = MAX_LIFE, .max_token = MAX_TOKEN, .cache_entries = 1024
};

static bool
load_key(const char *name, enum fb_verify_alg alg, struct fb_signing_key **out)
{
	struct fb_err err = { 0 };
	char path[128];

	(void)snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
	if (fb_keys_generate(path, alg, &err) != FB_OK ||
	    fb_signing_key_load(path, out, &err) != FB_OK) {
		print_error("%s: %s\n", path, err.msg);
		return false;
	}
	return true;
}

static struct fb_verify_keyset *
keyset_of(struct fb_signing_key *const *keys, const int64_t *exps, size_t n, char **text)
{
	struct fb_verify_keyset *ks = NULL;
	struct fb_err err = { 0 };
	char *jwks = NULL;

	if (fb_keys_jwks(keys, exps, n, &jwks, &err) != FB_OK)
		return NULL;
	if (fb_verify_keyset_from_jwks(jwks, strlen(jwks), &ks, &err) != FB_OK)
		ks = NULL;
	if (text != NULL)
		*text = jwks;
	else
		free(jwks);
	return ks;
}

/* The ES256 public key in the encodings an HS256 confusion attack would use as secret. */
static bool
public_encodings(void)
{
	char path[128];
	EVP_PKEY *pkey;
	BIO *bio;
	FILE *f;
	unsigned char *der = NULL;
	char *mem = NULL;
	long mlen;
	int dlen;
	size_t n = 0;
	bool ok;

	(void)snprintf(path, sizeof(path), "%s/es.pem", fx.dir);
	if ((f = fopen(path, "re")) == NULL)
		return false;
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	(void)fclose(f);
	if (pkey == NULL)
		return false;
	bio = BIO_new(BIO_s_mem());
	ok = bio != NULL && PEM_write_bio_PUBKEY(bio, pkey) == 1;
	mlen = ok ? BIO_get_mem_data(bio, &mem) : 0;
	if (ok && mlen > 0 && (fx.pub_pem = malloc((size_t)mlen)) != NULL) {
		memcpy(fx.pub_pem, mem, (size_t)mlen);
		fx.pub_pem_len = (size_t)mlen;
	}
	BIO_free(bio);
	dlen = i2d_PUBKEY(pkey, &der);
	if (dlen > 0 && (fx.pub_der = malloc((size_t)dlen)) != NULL) {
		memcpy(fx.pub_der, der, (size_t)dlen);
		fx.pub_der_len = (size_t)dlen;
	}
	OPENSSL_free(der);
	ok = EVP_PKEY_get_octet_string_param(
	         pkey, OSSL_PKEY_PARAM_PUB_KEY, fx.pub_point, sizeof(fx.pub_point), &n) == 1 &&
	    n == sizeof(fx.pub_point);
	EVP_PKEY_free(pkey);
	fx.pub_jwk = json_dumps(fx.jwk_es, JSON_COMPACT);
	return ok && fx.pub_pem != NULL && fx.pub_der != NULL && fx.pub_jwk != NULL;
}

static int
group_setup(void **state)
{
	struct fb_signing_key *a[2];
	json_t *root, *keys;

	(void)state;
	(void)snprintf(fx.dir, sizeof(fx.dir), "/tmp/fbverify.XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	if (!load_key("es.pem", FB_ALG_ES256, &fx.es) ||
	    !load_key("ed.pem", FB_ALG_EDDSA, &fx.ed) || !load_key("cc.pem", FB_ALG_ES256, &fx.cc))
		return -1;
	a[0] = fx.es;
	a[1] = fx.ed;
	if ((fx.ks_a = keyset_of(a, NULL, 2, &fx.jwks_a)) == NULL ||
	    (fx.ks_c = keyset_of(&fx.cc, NULL, 1, NULL)) == NULL)
		return -1;
	root = json_loads(fx.jwks_a, 0, NULL);
	keys = json_object_get(root, "keys");
	fx.jwk_es = json_incref(json_array_get(keys, 0));
	fx.jwk_ed = json_incref(json_array_get(keys, 1));
	json_decref(root);
	if (fx.jwk_es == NULL || fx.jwk_ed == NULL || !public_encodings())
		return -1;
	if (fb_random_bytes(fx.thumb, sizeof(fx.thumb)) != FB_OK ||
	    fb_random_bytes(fx.other, sizeof(fx.other)) != FB_OK)
		return -1;
	fx.now = time(NULL);
	return 0;
}

static int
group_teardown(void **state)
{
	char path[128];
	static const char *const names[] = { "es.pem", "ed.pem", "cc.pem" };

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		(void)snprintf(path, sizeof(path), "%s/%s", fx.dir, names[i]);
		(void)unlink(path);
	}
	(void)rmdir(fx.dir);
	fb_signing_key_free(fx.es);
	fb_signing_key_free(fx.ed);
	fb_signing_key_free(fx.cc);
	fb_verify_keyset_unref(fx.ks_a);
	fb_verify_keyset_unref(fx.ks_c);
	json_decref(fx.jwk_es);
	json_decref(fx.jwk_ed);
	free(fx.jwks_a);
	free(fx.pub_pem);
	free(fx.pub_der);
	free(fx.pub_jwk);
	return 0;
}

/* A trust table: LOCAL trusts ISS_A (keys ka) for REMOTE, LOCAL_C trusts ISS_C for TEN_C. */
static struct fb_verify_trusts *
trusts_with(struct fb_verify_keyset *ka)
{
	static const char *const rem_a[] = { REMOTE };
	static const char *const rem_c[] = { TEN_C };
	struct fb_verify_trust_spec specs[2] = {
		{ LOCAL_C, ISS_C, rem_c, 1, fx.ks_c },
		{ LOCAL, ISS_A, rem_a, 1, ka },
	};
	struct fb_verify_trusts *t = NULL;
	struct fb_err err = { 0 };

	assert_int_equal(fb_verify_trusts_new(specs, ka != NULL ? 2 : 1, &t, &err), FB_OK);
	assert_non_null(t);
	return t;
}

static int
verifier_setup(void **state)
{
	struct fb_err err = { 0 };

	(void)state;
	if (fb_verifier_new(&fx_opts, &fx.v, &err) != FB_OK)
		return -1;
	fb_verifier_set_trusts(fx.v, trusts_with(fx.ks_a));
	return 0;
}

static int
verifier_teardown(void **state)
{
	(void)state;
	fb_verifier_free(fx.v);
	fx.v = NULL;
	return 0;
}

/* ---- token building ---- */

static char *
b64s(const void *data, size_t n)
{
	size_t cap = FB_B64URL_ENCODED_LEN(n) + 1;
	char *s = malloc(cap);

	assert_non_null(s);
	assert_int_equal(fb_b64url_encode(data, n, s, cap), FB_OK);
	return s;
}

/* "a.b.c", or "a.b" when c is NULL. */
static char *
join(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
	char *s = malloc(n);

	assert_non_null(s);
	if (c != NULL)
		(void)snprintf(s, n, "%s.%s.%s", a, b, c);
	else
		(void)snprintf(s, n, "%s.%s", a, b);
	return s;
}

static void
sign_input(const struct fb_signing_key *k, const char *h64, const char *p64, unsigned char sig[64])
{
	struct fb_err err = { 0 };
	char *input = join(h64, p64, NULL);

	assert_int_equal(fb_signing_key_sign(k, input, strlen(input), sig, &err), FB_OK);
	free(input);
}

/* header.payload as given (already base64url), signed with k. */
static char *
sign_b64(const struct fb_signing_key *k, const char *h64, const char *p64)
{
	unsigned char sig[64];
	char *s64, *tok;

	sign_input(k, h64, p64, sig);
	s64 = b64s(sig, sizeof(sig));
	tok = join(h64, p64, s64);
	free(s64);
	return tok;
}

/* Arbitrary header and payload JSON text, base64url'd and signed with k. */
static char *
sign_text(const struct fb_signing_key *k, const char *hdr, const char *pl)
{
	char *h64 = b64s(hdr, strlen(hdr)), *p64 = b64s(pl, strlen(pl)), *tok;

	tok = sign_b64(k, h64, p64);
	free(h64);
	free(p64);
	return tok;
}

static char *
hdr_text(const char *alg, const char *kid)
{
	char buf[512];

	(void)snprintf(
	    buf, sizeof(buf), "{\"alg\":\"%s\",\"typ\":\"fed+jwt\",\"kid\":\"%s\"}", alg, kid);
	return strdup(buf);
}

static char *
hdr_of(const struct fb_signing_key *k)
{
	return hdr_text(fb_verify_alg_name(fb_signing_key_alg(k)), fb_signing_key_kid(k));
}

/* Replaces every "$KID" in tmpl with kid. */
static char *
subst_kid(const char *tmpl, const char *kid)
{
	size_t cap = strlen(tmpl) * 2 + 256, o = 0;
	char *s = malloc(cap);

	assert_non_null(s);
	for (const char *p = tmpl; *p != '\0';) {
		if (strncmp(p, "$KID", 4) == 0) {
			size_t kl = strlen(kid);
			assert_true(o + kl < cap);
			memcpy(s + o, kid, kl);
			o += kl;
			p += 4;
		} else {
			assert_true(o + 1 < cap);
			s[o++] = *p++;
		}
	}
	s[o] = '\0';
	return s;
}

static json_t *
payload_for(const char *iss, const char *sub, const char *tid, const char *aud)
{
	char jti[48], cnf[48];
	json_t *pl;

	(void)snprintf(jti, sizeof(jti), "jti-%lu", ++fx.seq);
	(void)fb_b64url_encode(fx.thumb, sizeof(fx.thumb), cnf, sizeof(cnf));
	pl = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:{s:s}, s:{s:s}}", "iss",
	    iss, "sub", sub, "tid", tid, "aud", aud, "iat", (json_int_t)fx.now, "nbf",
	    (json_int_t)fx.now, "exp", (json_int_t)fx.now + TTL, "jti", jti, "sid", SID, "cnf",
	    "x5t#S256", cnf, "attrs", "email", "alice@a.example");
	assert_non_null(pl);
	return pl;
}

static json_t *
payload(void)
{
	return payload_for(ISS_A, SUB, REMOTE, LOCAL);
}

static char *
dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

	assert_non_null(s);
	return s;
}

/* Signs hdr (taken) and pl (taken) with k. */
static char *
make_token(const struct fb_signing_key *k, char *hdr, json_t *pl)
{
	char *pls = dump(pl), *tok;

	tok = sign_text(k, hdr, pls);
	free(pls);
	free(hdr);
	json_decref(pl);
	return tok;
}

/* Signs hdr (taken) and payload text pl (taken) with k. */
static char *
make_token_text(const struct fb_signing_key *k, char *hdr, char *pl)
{
	char *tok = sign_text(k, hdr, pl);

	free(hdr);
	free(pl);
	return tok;
}

/* A token as the bridge issues it. */
static char *
issue_full(const struct fb_signing_key *k, const char *iss, const char *sub, const char *tid,
    const char *aud, int64_t iat, int64_t ttl)
{
	struct fb_token_claims c = { 0 };
	struct fb_err err = { 0 };
	json_t *attrs = json_loads(ATTRS, 0, NULL);
	char *tok = NULL;

	assert_non_null(attrs);
	c.iss = iss;
	c.sub = sub;
	c.tid = tid;
	c.aud = aud;
	c.sid = SID;
	c.attrs = attrs;
	c.cnf_sha256 = fx.thumb;
	c.iat = iat;
	c.ttl = ttl;
	assert_int_equal(fb_token_issue(k, &c, &tok, &err), FB_OK);
	json_decref(attrs);
	assert_non_null(tok);
	return tok;
}

static char *
issue(void)
{
	return issue_full(fx.es, ISS_A, SUB, REMOTE, LOCAL, fx.now, TTL);
}

/* ---- checking ---- */

static enum fb_verify_reason
check_at(const char *tok, size_t len, const char *tenant, const unsigned char *peer,
    const char *sender, time_t now, struct fb_verify_result *r)
{
	struct fb_verify_input in = { 0 };

	in.token = tok;
	in.token_len = len;
	in.receiving_tenant = tenant;
	in.peer_cert_sha256 = peer;
	in.sender_fid = sender;
	in.now = now;
	return fb_verifier_check(fx.v, &in, r);
}

/* The usual check of tok: receiving LOCAL, from the bound peer, now. */
static enum fb_verify_reason
check(const char *tok, struct fb_verify_result *r)
{
	return check_at(tok, strlen(tok), LOCAL, fx.thumb, NULL, fx.now, r);
}

static enum fb_verify_reason
check_reason(const char *tok)
{
	struct fb_verify_result r;
	enum fb_verify_reason got = check(tok, &r);

	fb_verify_result_clear(&r);
	return got;
}

#define assert_reason(got, want)                                                                   \
	assert_string_equal(fb_verify_reason_name(got), fb_verify_reason_name(want))

static struct fb_verify_stats
stats(void)
{
	struct fb_verify_stats s;

	fb_verifier_stats(fx.v, &s);
	return s;
}

/* ---- 1. one test per reason code ---- */

static void
test_reason_names(void **state)
{
	static const char *const want[FB_VERIFY_REASONS] = { "allow", "malformed", "bad_signature",
		"unknown_key", "untrusted_issuer", "wrong_tenant", "wrong_audience", "expired",
		"not_yet_valid", "cert_mismatch", "sender_mismatch", "revoked", "policy_denied" };

	(void)state;
	for (int i = 0; i < FB_VERIFY_REASONS; i++)
		assert_string_equal(fb_verify_reason_name((enum fb_verify_reason)i), want[i]);
	assert_int_equal(FB_VERIFY_POLICY_DENIED + 1, FB_VERIFY_REASONS);
	assert_string_equal(
	    fb_verify_reason_name((enum fb_verify_reason)FB_VERIFY_REASONS), "unknown");
	assert_string_equal(fb_verify_alg_name(FB_ALG_ES256), "ES256");
	assert_string_equal(fb_verify_alg_name(FB_ALG_EDDSA), "EdDSA");
}

static void
test_allow(void **state)
{
	struct fb_verify_result r;
	char *tok = issue();

	(void)state;
	assert_reason(check(tok, &r), FB_VERIFY_ALLOW);
	assert_reason(r.reason, FB_VERIFY_ALLOW);
	assert_null(r.detail);
	assert_string_equal(r.fid, SUB);
	assert_string_equal(r.tid, REMOTE);
	assert_string_equal(r.sid, SID);
	assert_non_null(r.jti);
	assert_string_equal(r.attrs_json, ATTRS);
	assert_int_equal((int64_t)r.exp, (int64_t)fx.now + TTL);
	fb_verify_result_clear(&r);
	assert_null(r.fid);
	assert_null(r.hold);
	free(tok);
}

static void
test_malformed(void **state)
{
	struct fb_verify_result r;
	char *tok = issue();

	(void)state;
	tok[3] = '.'; /* four parts */
	assert_reason(check(tok, &r), FB_VERIFY_MALFORMED);
	assert_non_null(r.detail);
	assert_null(r.fid);
	assert_null(r.attrs_json);
	fb_verify_result_clear(&r);
	free(tok);
}

static void
test_bad_signature(void **state)
{
	struct fb_verify_result r;
	char *tok = issue();
	size_t n = strlen(tok);

	(void)state;
	/* The first signature character: flip a bit that stays within the alphabet. */
	tok[n - 86] = tok[n - 86] == 'A' ? 'B' : 'A';
	assert_reason(check(tok, &r), FB_VERIFY_BAD_SIGNATURE);
	assert_null(r.fid);
	fb_verify_result_clear(&r);
	free(tok);
}

static void
test_unknown_key(void **state)
{
	char *tok = make_token(fx.es, hdr_text("ES256", "no-such-kid"), payload());

	(void)state;
	assert_reason(check_reason(tok), FB_VERIFY_UNKNOWN_KEY);
	free(tok);
}

static void
test_untrusted_issuer(void **state)
{
	char *tok = issue_full(fx.es, "https://sso.b.example", SUB, REMOTE, LOCAL, fx.now, TTL);

	(void)state;
	assert_reason(check_reason(tok), FB_VERIFY_UNTRUSTED_ISSUER);
	free(tok);
}

static void
test_wrong_tenant(void **state)
{
	char *tok =
	    issue_full(fx.es, ISS_A, "fid:0/Zz9sT2mZx4/7", "Zz9sT2mZx4", LOCAL, fx.now, TTL);
	struct fb_verify_result r;

	(void)state;
	assert_reason(check(tok, &r), FB_VERIFY_WRONG_TENANT);
	/* Denied after the signature: the claims are there for logs. */
	assert_string_equal(r.fid, "fid:0/Zz9sT2mZx4/7");
	fb_verify_result_clear(&r);
	free(tok);
}

static void
test_wrong_audience(void **state)
{
	struct fb_verify_result r;
	char *tok = issue();

	(void)state;
	assert_reason(check_at(tok, strlen(tok), LOCAL_C, fx.thumb, NULL, fx.now, &r),
	    FB_VERIFY_WRONG_AUDIENCE);
	fb_verify_result_clear(&r);
	assert_reason(
	    check_at(tok, strlen(tok), NULL, fx.thumb, NULL, fx.now, &r), FB_VERIFY_WRONG_AUDIENCE);
	fb_verify_result_clear(&r);
	free(tok);
}

static void
test_expired(void **state)
{
	char *tok = issue_full(fx.es, ISS_A, SUB, REMOTE, LOCAL, fx.now - 400, TTL);

	(void)state;
	assert_reason(check_reason(tok), FB_VERIFY_EXPIRED);
	free(tok);
}

static void
test_not_yet_valid(void **state)
{
	char *tok = issue_full(fx.es, ISS_A, SUB, REMOTE, LOCAL, fx.now + 120, TTL);

	(void)state;
	assert_reason(check_reason(tok), FB_VERIFY_NOT_YET_VALID);
	free(tok);
}

static void
test_cert_mismatch(void **state)
{
	struct fb_verify_result r;
	char *tok = issue();

	(void)state;
	assert_reason(
	    check_at(tok, strlen(tok), LOCAL, fx.other, NULL, fx.now, &r), FB_VERIFY_CERT_MISMATCH);
	fb_verify_result_clear(&r);
	assert_reason(
	    check_at(tok, strlen(tok), LOCAL, NULL, NULL, fx.now, &r), FB_VERIFY_CERT_MISMATCH);
	fb_verify_result_clear(&r);
	free(tok);
}

static void
test_sender_mismatch(void **state)
{
	struct fb_verify_result r;
	char *tok = issue();

	(void)state;
	assert_reason(
	    check_at(tok, strlen(tok), LOCAL, fx.thumb, "fid:0/" REMOTE "/100402", fx.now, &r),
	    FB_VERIFY_SENDER_MISMATCH);
	fb_verify_result_clear(&r);
	assert_reason(check_at(tok, strlen(tok), LOCAL, fx.thumb, SUB "x", fx.now, &r),
	    FB_VERIFY_SENDER_MISMATCH);
	fb_verify_result_clear(&r);
	assert_reason(
	    check_at(tok, strlen(tok), LOCAL, fx.thumb, SUB, fx.now, &r), FB_VERIFY_ALLOW);
	fb_verify_result_clear(&r);
	free(tok);
}

/* Revoking one kind of value: the token first allows, then is revoked; others stay allowed. */
static void
revoke_case(enum fb_verify_revoke_kind kind, const char *value, bool other_survives)
{
	char *tok = issue(), *other;
	struct fb_verify_result r;

	other = issue_full(fx.es, ISS_A, "fid:0/" REMOTE "/200", REMOTE, LOCAL, fx.now, TTL);
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	assert_int_equal(fb_verifier_revoke(fx.v, kind, value, fx.now + 3600), FB_OK);
	assert_int_equal(fb_verifier_revoked_count(fx.v), 1);
	assert_reason(check(tok, &r), FB_VERIFY_REVOKED);
	assert_string_equal(r.fid, SUB);
	fb_verify_result_clear(&r);
	/* A fresh token with the same value is refused from first sight on. */
	free(tok);
	tok = issue();
	assert_reason(check_reason(tok), FB_VERIFY_REVOKED);
	if (kind == FB_REVOKE_SESSION || kind == FB_REVOKE_TENANT)
		assert_reason(check_reason(other), FB_VERIFY_REVOKED);
	else if (other_survives)
		assert_reason(check_reason(other), FB_VERIFY_ALLOW);
	free(tok);
	free(other);
}

static void
test_revoked_session(void **state)
{
	(void)state;
	revoke_case(FB_REVOKE_SESSION, SID, false);
}

static void
test_revoked_fid(void **state)
{
	(void)state;
	revoke_case(FB_REVOKE_FID, SUB, true);
}

static void
test_revoked_tenant(void **state)
{
	(void)state;
	revoke_case(FB_REVOKE_TENANT, REMOTE, false);
}

static void
test_revoked_other_values(void **state)
{
	char *tok = issue();

	(void)state;
	/* A value of one kind does not revoke the same text of another kind. */
	assert_int_equal(fb_verifier_revoke(fx.v, FB_REVOKE_SESSION, SUB, fx.now + 3600), FB_OK);
	assert_int_equal(fb_verifier_revoke(fx.v, FB_REVOKE_FID, REMOTE, fx.now + 3600), FB_OK);
	assert_int_equal(fb_verifier_revoke(fx.v, FB_REVOKE_TENANT, SID, fx.now + 3600), FB_OK);
	assert_int_equal(fb_verifier_revoked_count(fx.v), 3);
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	/* An entry whose until has passed no longer applies. */
	assert_int_equal(fb_verifier_revoke(fx.v, FB_REVOKE_SESSION, SID, fx.now - 1), FB_OK);
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	free(tok);
}

/* A remote's session revocation names its issuer: another issuer's same sid is another. */
static void
test_revoked_session_of_issuer(void **state)
{
	char *tok = issue();

	(void)state;
	assert_int_equal(fb_verifier_revoke_session(fx.v, ISS_C, SID, fx.now + 3600), FB_OK);
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	assert_int_equal(fb_verifier_revoke_session(fx.v, ISS_A, SID, fx.now + 3600), FB_OK);
	assert_reason(check_reason(tok), FB_VERIFY_REVOKED);
	/* An unknown kind is refused, not taken as some other. */
	assert_int_equal(fb_verifier_revoke(fx.v, (enum fb_verify_revoke_kind)7, SID, fx.now + 60),
	    FB_ERR_INVALID);
	free(tok);
}

static void
test_revoked_before(void **state)
{
	char *old = issue_full(fx.es, ISS_A, SUB, REMOTE, LOCAL, fx.now - 10, TTL);
	char *tok = issue();

	(void)state;
	assert_reason(check_reason(old), FB_VERIFY_ALLOW);
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	fb_verifier_revoke_before(fx.v, fx.now - 5);
	assert_reason(check_reason(old), FB_VERIFY_REVOKED);
	/* iat == t is not before t. */
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	fb_verifier_revoke_before(fx.v, fx.now + 1);
	assert_reason(check_reason(tok), FB_VERIFY_REVOKED);
	/* An earlier cut-off never moves it back. */
	fb_verifier_revoke_before(fx.v, fx.now - 100);
	assert_reason(check_reason(tok), FB_VERIFY_REVOKED);
	free(old);
	free(tok);
}

struct seen {
	int calls;
	bool verdict;
	char fid[FB_VERIFY_FID_MAX + 1];
	char tid[FB_VERIFY_TENANT_MAX + 1];
	char attrs[256];
};

static bool
policy_hook(void *arg, const struct fb_verify_result *r)
{
	struct seen *s = arg;

	s->calls++;
	(void)snprintf(s->fid, sizeof(s->fid), "%s", r->fid ? r->fid : "(null)");
	(void)snprintf(s->tid, sizeof(s->tid), "%s", r->tid ? r->tid : "(null)");
	(void)snprintf(s->attrs, sizeof(s->attrs), "%s", r->attrs_json ? r->attrs_json : "(null)");
	return s->verdict;
}

static void
test_policy_denied(void **state)
{
	struct seen s = { 0 };
	struct fb_verify_result r;
	char *tok = issue();

	(void)state;
	fb_verifier_set_policy(fx.v, policy_hook, &s);
	s.verdict = false;
	assert_reason(check(tok, &r), FB_VERIFY_POLICY_DENIED);
	assert_non_null(r.detail);
	fb_verify_result_clear(&r);
	assert_int_equal(s.calls, 1);
	assert_string_equal(s.fid, SUB);
	assert_string_equal(s.tid, REMOTE);
	assert_string_equal(s.attrs, ATTRS);
	/* A cached token keeps its answer until the policy is set again. */
	s.verdict = true;
	assert_reason(check_reason(tok), FB_VERIFY_POLICY_DENIED);
	assert_int_equal(s.calls, 1);
	fb_verifier_set_policy(fx.v, policy_hook, &s);
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	assert_int_equal(s.calls, 2);
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	assert_int_equal(s.calls, 2);
	/* Denials before it never reach it. */
	assert_reason(
	    check_at(tok, strlen(tok), LOCAL, fx.other, NULL, fx.now, &r), FB_VERIFY_CERT_MISMATCH);
	fb_verify_result_clear(&r);
	assert_int_equal(s.calls, 2);
	fb_verifier_set_policy(fx.v, NULL, NULL);
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	assert_int_equal(s.calls, 2);
	free(tok);
}

/* ---- 2. the table ---- */

struct probe {
	char *tok;
	size_t len; /* 0: strlen(tok) */
	bool use_len; /* len is exact even when 0 */
	const unsigned char *peer;
	const char *tenant;
	const char *sender;
	time_t now;
};

struct row;
typedef void (*builder_fn)(struct probe *p, const struct row *r);

struct row {
	const char *name;
	builder_fn build;
	const char *s, *s2;
	long a, b, c;
	enum fb_verify_reason want;
};

/* The parts of a valid ES256 token, for builders that tamper with one of them. */
struct parts {
	char *h64, *p64;
	unsigned char sig[64];
};

static void
parts_of(const struct fb_signing_key *k, char *hdr, json_t *pl, struct parts *out)
{
	char *pls = dump(pl);

	out->h64 = b64s(hdr, strlen(hdr));
	out->p64 = b64s(pls, strlen(pls));
	sign_input(k, out->h64, out->p64, out->sig);
	free(pls);
	free(hdr);
	json_decref(pl);
}

static void
parts_free(struct parts *pt)
{
	free(pt->h64);
	free(pt->p64);
}

static void
with_sig(struct probe *p, const struct parts *pt, const unsigned char *sig, size_t n)
{
	char *s64 = b64s(sig, n);

	p->tok = join(pt->h64, pt->p64, s64);
	free(s64);
}

static void
b_valid(struct probe *p, const struct row *r)
{
	(void)r;
	p->tok = make_token(fx.es, hdr_of(fx.es), payload());
}

/* A header with alg r->s over the ES256 kid; r->a: 0 empty signature, 1 an ES256 one. */
static void
b_alg(struct probe *p, const struct row *r)
{
	char *hdr = hdr_text(r->s, fb_signing_key_kid(fx.es)), *pls;
	json_t *pl = payload();

	if (r->a == 1) {
		p->tok = make_token(fx.es, hdr, pl);
		return;
	}
	pls = dump(pl);
	{
		char *h64 = b64s(hdr, strlen(hdr)), *p64 = b64s(pls, strlen(pls));
		p->tok = join(h64, p64, "");
		free(h64);
		free(p64);
	}
	free(pls);
	free(hdr);
	json_decref(pl);
}

/* HS256/384/512 keyed by the ES256 public key: r->a 0 PEM, 1 DER, 2 point, 3 JWK. */
static void
b_hmac(struct probe *p, const struct row *r)
{
	const EVP_MD *md = strcmp(r->s, "HS384") == 0 ? EVP_sha384()
	    : strcmp(r->s, "HS512") == 0              ? EVP_sha512()
	                                              : EVP_sha256();
	const void *key[] = { fx.pub_pem, fx.pub_der, fx.pub_point, fx.pub_jwk };
	const size_t klen[] = { fx.pub_pem_len, fx.pub_der_len, sizeof(fx.pub_point),
		strlen(fx.pub_jwk) };
	char *hdr = hdr_text(r->s, fb_signing_key_kid(fx.es)), *pls = NULL, *h64, *p64, *in, *s64;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int ml = 0;
	json_t *pl = payload();

	assert_true(r->a >= 0 && r->a < 4);
	pls = dump(pl);
	h64 = b64s(hdr, strlen(hdr));
	p64 = b64s(pls, strlen(pls));
	in = join(h64, p64, NULL);
	assert_non_null(
	    HMAC(md, key[r->a], (int)klen[r->a], (const unsigned char *)in, strlen(in), mac, &ml));
	s64 = b64s(mac, ml);
	p->tok = join(h64, p64, s64);
	free(s64);
	free(in);
	free(h64);
	free(p64);
	free(pls);
	free(hdr);
	json_decref(pl);
}

/* r->a 0: EdDSA header, ES256 kid, Ed25519 signature; 1: ES256 header, EdDSA kid, P-256 one. */
static void
b_alg_kid(struct probe *p, const struct row *r)
{
	if (r->a == 0)
		p->tok = make_token(fx.ed, hdr_text("EdDSA", fb_signing_key_kid(fx.es)), payload());
	else
		p->tok = make_token(fx.es, hdr_text("ES256", fb_signing_key_kid(fx.ed)), payload());
}

/* kid: r->b ? the real kid : "", then r->s (JSON text) or r->a 'k's. */
static void
b_kid(struct probe *p, const struct row *r)
{
	char kid[400];
	size_t o = 0;

	kid[0] = '\0';
	if (r->b != 0)
		o = (size_t)snprintf(kid, sizeof(kid), "%s", fb_signing_key_kid(fx.es));
	if (r->s != NULL) {
		(void)snprintf(kid + o, sizeof(kid) - o, "%s", r->s);
	} else {
		assert_true(r->a > 0 && (size_t)r->a + o < sizeof(kid));
		memset(kid + o, 'k', (size_t)r->a);
		kid[o + (size_t)r->a] = '\0';
	}
	p->tok = make_token(fx.es, hdr_text("ES256", kid), payload());
}

/* The real kid with its first character written as a JSON \u escape: the same string. */
static void
b_kid_escaped(struct probe *p, const struct row *r)
{
	const char *kid = fb_signing_key_kid(fx.es);
	char esc[160];

	(void)r;
	(void)snprintf(esc, sizeof(esc), "\\u%04x%s", (unsigned)(unsigned char)kid[0], kid + 1);
	p->tok = make_token(fx.es, hdr_text("ES256", esc), payload());
}

/* A header from a template ("$KID": the ES256 kid), signed with ES256 (r->a 1: EdDSA). */
static void
b_hdr(struct probe *p, const struct row *r)
{
	const struct fb_signing_key *k = r->a == 1 ? fx.ed : fx.es;

	p->tok = make_token(k, subst_kid(r->s, fb_signing_key_kid(k)), payload());
}

/* Claims patched by the JSON object r->s (a null member deletes the claim). */
static void
b_patch(struct probe *p, const struct row *r)
{
	json_error_t jerr;
	json_t *patch = json_loads(r->s, JSON_ALLOW_NUL, &jerr), *pl = payload(), *val;
	const char *key;

	if (patch == NULL)
		print_error("row %s: patch: %s\n", r->name, jerr.text);
	assert_non_null(patch);
	json_object_foreach(patch, key, val)
	{
		if (json_is_null(val))
			(void)json_object_del(pl, key);
		else
			assert_int_equal(json_object_set(pl, key, val), 0);
	}
	json_decref(patch);
	p->tok = make_token(fx.es, hdr_of(fx.es), pl);
}

/* Payload text edited: the first r->s becomes r->s2. */
static void
b_edit(struct probe *p, const struct row *r)
{
	json_t *pl = payload();
	char *pls = dump(pl), *at, *out;
	size_t n = strlen(pls) + strlen(r->s2) + 1;

	at = strstr(pls, r->s);
	assert_non_null(at);
	out = malloc(n);
	assert_non_null(out);
	(void)snprintf(out, n, "%.*s%s%s", (int)(at - pls), pls, r->s2, at + strlen(r->s));
	p->tok = make_token_text(fx.es, hdr_of(fx.es), out);
	free(pls);
	json_decref(pl);
}

/* iat, nbf, exp at now + r->a, r->b, r->c. */
static void
b_times(struct probe *p, const struct row *r)
{
	json_t *pl = payload();

	assert_int_equal(json_object_set_new(pl, "iat", json_integer(fx.now + r->a)), 0);
	assert_int_equal(json_object_set_new(pl, "nbf", json_integer(fx.now + r->b)), 0);
	assert_int_equal(json_object_set_new(pl, "exp", json_integer(fx.now + r->c)), 0);
	p->tok = make_token(fx.es, hdr_of(fx.es), pl);
}

/* A time claim r->s of another JSON type: r->a 0 a real, 1 a string, 2 negative. */
static void
b_time_type(struct probe *p, const struct row *r)
{
	json_t *pl = payload(), *val;
	json_int_t t = json_integer_value(json_object_get(pl, r->s));
	char buf[32];

	if (r->a == 0) {
		val = json_real((double)t);
	} else if (r->a == 1) {
		(void)snprintf(buf, sizeof(buf), "%lld", (long long)t);
		val = json_string(buf);
	} else if (r->a == 2) {
		val = json_integer(-t);
	} else {
		val = json_integer(t); /* control */
	}
	assert_int_equal(json_object_set_new(pl, r->s, val), 0);
	p->tok = make_token(fx.es, hdr_of(fx.es), pl);
}

/* r->a 0: another peer certificate; 1: none. */
static void
b_peer(struct probe *p, const struct row *r)
{
	p->tok = make_token(fx.es, hdr_of(fx.es), payload());
	p->peer = r->a == 0 ? fx.other : NULL;
}

/* Issuer C and cross-trust cases, see the rows. */
static void
b_cross(struct probe *p, const struct row *r)
{
	switch (r->a) {
	case 0: /* C's token to the tenant that trusts C */
		p->tok = make_token(
		    fx.cc, hdr_of(fx.cc), payload_for(ISS_C, "fid:0/" TEN_C "/9", TEN_C, LOCAL_C));
		p->tenant = LOCAL_C;
		break;
	case 1: /* C's token to a tenant that does not trust C */
		p->tok = make_token(
		    fx.cc, hdr_of(fx.cc), payload_for(ISS_C, "fid:0/" TEN_C "/9", TEN_C, LOCAL));
		break;
	case 2: /* A's token to the tenant that trusts only C */
		p->tok = make_token(fx.es, hdr_of(fx.es), payload_for(ISS_A, SUB, REMOTE, LOCAL_C));
		p->tenant = LOCAL_C;
		break;
	case 3: /* iss A, signed by C's key under C's kid */
		p->tok = make_token(fx.cc, hdr_of(fx.cc), payload());
		break;
	case 4: /* iss C, signed by A's key under A's kid */
		p->tok = make_token(
		    fx.es, hdr_of(fx.es), payload_for(ISS_C, "fid:0/" TEN_C "/9", TEN_C, LOCAL_C));
		p->tenant = LOCAL_C;
		break;
	default: /* C's tenant claimed under iss A */
		p->tok = make_token(
		    fx.es, hdr_of(fx.es), payload_for(ISS_A, "fid:0/" TEN_C "/9", TEN_C, LOCAL));
		break;
	}
}

/* A token padded (attrs.pad) to the first size above (r->a 0) or at most (1) the cap. */
static void
b_size(struct probe *p, const struct row *r)
{
	char *hdr = hdr_of(fx.es), *pad;
	size_t hl = FB_B64URL_ENCODED_LEN(strlen(hdr)), want = MAX_TOKEN, best = 0;
	json_t *pl = payload();
	char *base = dump(pl);
	size_t bl = strlen(base) + strlen(",\"pad\":\"\"");

	free(base);
	/* Total: header . payload . 86 signature characters. */
	for (size_t n = 1; n < MAX_TOKEN; n++) {
		size_t total = hl + 1 + FB_B64URL_ENCODED_LEN(bl + n) + 1 + 86;
		if (r->a == 0 && total > want) {
			best = n;
			break;
		}
		if (r->a == 1 && total <= want)
			best = n;
	}
	assert_true(best > 0);
	pad = malloc(best + 1);
	assert_non_null(pad);
	memset(pad, 'x', best);
	pad[best] = '\0';
	assert_int_equal(
	    json_object_set_new(json_object_get(pl, "attrs"), "pad", json_string(pad)), 0);
	free(pad);
	p->tok = make_token(fx.es, hdr, pl);
	if (r->a == 0)
		assert_true(strlen(p->tok) == MAX_TOKEN + 1 || strlen(p->tok) == MAX_TOKEN + 2);
	else
		assert_true(strlen(p->tok) <= MAX_TOKEN && strlen(p->tok) >= MAX_TOKEN - 2);
}

/* Structural damage to a valid token (r->a selects). */
static void
b_shape(struct probe *p, const struct row *r)
{
	char *tok = issue(), *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
	size_t n = strlen(tok);

	switch (r->a) {
	case 0: /* cut 1 signature character: 85 cannot be base64url */
		tok[n - 1] = '\0';
		break;
	case 1: /* cut 2: a 63-byte signature */
		tok[n - 2] = '\0';
		break;
	case 2: /* "h.p." */
		d2[1] = '\0';
		break;
	case 3: /* "h.p" */
		d2[0] = '\0';
		break;
	case 4: /* inside the payload */
		d1[(d2 - d1) / 2] = '\0';
		break;
	case 5: /* inside the header */
		tok[10] = '\0';
		break;
	case 6: /* "h." */
		d1[1] = '\0';
		break;
	case 7: /* ".p.s" */
		memmove(tok, d1, strlen(d1) + 1);
		break;
	default:
		break;
	}
	p->tok = tok;
}

/* Literal tokens and a few built from a valid one (r->a selects). */
static void
b_literal(struct probe *p, const struct row *r)
{
	char *tok;

	if (r->s != NULL) {
		p->tok = strdup(r->s);
		assert_non_null(p->tok);
		return;
	}
	tok = issue();
	switch (r->a) {
	case 0: /* four parts */
		p->tok = join(tok, "AAAA", NULL);
		free(tok);
		break;
	case 1: /* a trailing dot */
		p->tok = join(tok, "", NULL);
		free(tok);
		break;
	case 2: /* empty: length 0 */
		tok[0] = '\0';
		p->tok = tok;
		p->use_len = true;
		break;
	case 3: /* a NUL inside the counted bytes */
		tok[5] = '\0';
		p->tok = tok;
		p->len = strlen(tok + 6) + 6;
		p->use_len = true;
		break;
	case 4: /* two tokens joined */
		p->tok = join(tok, tok, NULL);
		free(tok);
		break;
	default: /* the token twice, as "header.payload" of a new one */
	{
		char *d = strrchr(tok, '.');
		*d = '\0';
		p->tok = join(tok, d + 1, NULL);
		free(tok);
	} break;
	}
}

static int
b64_index(char c)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *at = strchr(alpha, c);

	return at != NULL && c != '\0' ? (int)(at - alpha) : -1;
}

static char
b64_char(int i)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	return alpha[i & 63];
}

/* Sets an unused trailing bit of an unpadded base64url string (length % 4 is 2 or 3). */
static void
flip_trailing(char *s)
{
	size_t n = strlen(s);
	int v;

	assert_true(n % 4 == 2 || n % 4 == 3);
	v = b64_index(s[n - 1]);
	assert_true(v >= 0);
	s[n - 1] = b64_char(v ^ 1);
}

/* The same text with '=' padding appended. */
static char *
padded(const char *s)
{
	size_t n = strlen(s), pad = (4 - n % 4) % 4;
	char *out = malloc(n + 4);

	assert_non_null(out);
	assert_true(pad > 0);
	memcpy(out, s, n);
	memset(out + n, '=', pad);
	out[n + pad] = '\0';
	return out;
}

/* Replaces the first of '-' (with '+') or '_' (with '/'); false when neither occurs. */
static bool
std_alphabet(char *s, char which)
{
	char *at = strchr(s, which);

	if (at == NULL)
		return false;
	*at = which == '-' ? '+' : '/';
	return true;
}

/*
 * A header text whose base64url satisfies need: spacing and whitespace vary.
 * kid NULL is the ES256 kid. An ASCII-only header never encodes to '-' or '_'
 * (those need a byte like '?', '>' or '~' in the third position of a group).
 */
static char *
header_such_that(bool (*need)(const char *h64), const char *kid)
{
	static const char ws[] = " \t\n\r";

	for (int w = 0; w < 4; w++) {
		for (int sp = 0; sp < 48; sp++) {
			char hdr[512], spaces[64], *h64;
			memset(spaces, ws[w], (size_t)sp);
			spaces[sp] = '\0';
			(void)snprintf(hdr, sizeof(hdr),
			    "{%s\"alg\":\"ES256\",\"typ\":\"fed+jwt\",%s\"kid\":\"%s\"}", spaces,
			    spaces, kid != NULL ? kid : fb_signing_key_kid(fx.es));
			h64 = b64s(hdr, strlen(hdr));
			if (need(h64))
				return h64;
			free(h64);
		}
	}
	fail_msg("no header spacing gives the wanted base64url");
	return NULL;
}

static bool
has_url_char(const char *s)
{
	return strchr(s, '-') != NULL || strchr(s, '_') != NULL;
}

static bool
not_multiple_of_4(const char *s)
{
	return strlen(s) % 4 != 0;
}

/* A payload whose base64url has '-', '_' and a length that is not a multiple of 4. */
static char *
payload_b64_rich(void)
{
	for (size_t n = 0; n < 8; n++) {
		json_t *pl = payload();
		char pad[32], *pls, *p64;
		(void)snprintf(pad, sizeof(pad), "~~~~~~~~~?????????%.*s", (int)n, "xxxxxxxx");
		assert_int_equal(
		    json_object_set_new(json_object_get(pl, "attrs"), "pad", json_string(pad)), 0);
		pls = dump(pl);
		json_decref(pl);
		p64 = b64s(pls, strlen(pls));
		free(pls);
		if (strlen(p64) % 4 != 0 && strchr(p64, '-') != NULL && strchr(p64, '_') != NULL)
			return p64;
		free(p64);
	}
	fail_msg("no payload padding gives the wanted base64url");
	return NULL;
}

/* Non-canonical base64url in one part, the signature still over the bytes sent. */
static void
b_b64(struct probe *p, const struct row *r)
{
	char *h64 = NULL, *p64 = NULL, *tmp, *s64;
	unsigned char sig[64];

	switch (r->a) {
	case 0: /* header padded */
		tmp = header_such_that(not_multiple_of_4, NULL);
		h64 = padded(tmp);
		free(tmp);
		p64 = payload_b64_rich();
		break;
	case 1: /* payload padded */
		h64 = header_such_that(not_multiple_of_4, NULL);
		tmp = payload_b64_rich();
		p64 = padded(tmp);
		free(tmp);
		break;
	case 2: /* header in the standard alphabet: a kid of '?' puts a '_' in it, so a
	         * lax decoder would answer unknown_key, a strict one malformed */
		h64 = header_such_that(has_url_char, "?????????~~~~~~~~~");
		assert_true(std_alphabet(h64, '-') || std_alphabet(h64, '_'));
		p64 = payload_b64_rich();
		break;
	case 3: /* payload with '+' */
		h64 = header_such_that(not_multiple_of_4, NULL);
		p64 = payload_b64_rich();
		assert_true(std_alphabet(p64, '-'));
		break;
	case 4: /* payload with '/' */
		h64 = header_such_that(not_multiple_of_4, NULL);
		p64 = payload_b64_rich();
		assert_true(std_alphabet(p64, '_'));
		break;
	case 5: /* header trailing bits */
		h64 = header_such_that(not_multiple_of_4, NULL);
		flip_trailing(h64);
		p64 = payload_b64_rich();
		break;
	case 6: /* payload trailing bits */
		h64 = header_such_that(not_multiple_of_4, NULL);
		p64 = payload_b64_rich();
		flip_trailing(p64);
		break;
	case 7: /* whitespace in the header */
		tmp = header_such_that(not_multiple_of_4, NULL);
		h64 = join(tmp, "", NULL);
		h64[strlen(tmp)] = ' ';
		free(tmp);
		p64 = payload_b64_rich();
		break;
	case 8: /* a line break inside the payload */
		h64 = header_such_that(not_multiple_of_4, NULL);
		tmp = payload_b64_rich();
		p64 = malloc(strlen(tmp) + 2);
		assert_non_null(p64);
		(void)snprintf(p64, strlen(tmp) + 2, "%.8s\n%s", tmp, tmp + 8);
		free(tmp);
		break;
	case 9: /* control: canonical everywhere, same spacing and padding claim */
		h64 = header_such_that(not_multiple_of_4, NULL);
		p64 = payload_b64_rich();
		break;
	default:
		fail_msg("row %s: no such variant", r->name);
		return;
	}
	sign_input(fx.es, h64, p64, sig);
	s64 = b64s(sig, sizeof(sig));
	p->tok = join(h64, p64, s64);
	free(s64);
	free(h64);
	free(p64);
}

/* Non-canonical signature encodings over a valid header and payload. */
static void
b_sig_b64(struct probe *p, const struct row *r)
{
	struct parts pt;
	char *s64 = NULL, *tmp;

	parts_of(fx.es, hdr_of(fx.es), payload(), &pt);
	switch (r->a) {
	case 0: /* "==" */
		tmp = b64s(pt.sig, 64);
		s64 = padded(tmp);
		free(tmp);
		break;
	case 1: /* trailing bits */
		s64 = b64s(pt.sig, 64);
		flip_trailing(s64);
		break;
	case 2: /* the standard alphabet: re-sign until a '-' or '_' shows */
		for (int i = 0; i < 200 && s64 == NULL; i++) {
			tmp = b64s(pt.sig, 64);
			if (std_alphabet(tmp, '-') || std_alphabet(tmp, '_'))
				s64 = tmp;
			else
				free(tmp);
			if (s64 == NULL)
				sign_input(fx.es, pt.h64, pt.p64, pt.sig);
		}
		assert_non_null(s64);
		break;
	case 3: /* a space inside */
		tmp = b64s(pt.sig, 64);
		s64 = malloc(strlen(tmp) + 2);
		assert_non_null(s64);
		(void)snprintf(s64, strlen(tmp) + 2, "%.40s %s", tmp, tmp + 40);
		free(tmp);
		break;
	case 4: /* a trailing newline */
		tmp = b64s(pt.sig, 64);
		s64 = join(tmp, "", NULL);
		s64[strlen(tmp)] = '\n';
		free(tmp);
		break;
	case 5: /* control: untouched */
		s64 = b64s(pt.sig, 64);
		break;
	default: /* a signature far too long for any algorithm */
	{
		unsigned char big[200];
		memset(big, 0x41, sizeof(big));
		s64 = b64s(big, sizeof(big));
	} break;
	}
	p->tok = join(pt.h64, pt.p64, s64);
	free(s64);
	parts_free(&pt);
}

/* The order of P-256. */
static const unsigned char p256_n[32] = { 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
	0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51 };

/* ECDSA signature tricks over a valid ES256 header and payload (r->a selects). */
static void
b_ecdsa(struct probe *p, const struct row *r)
{
	struct parts pt;
	unsigned char sig[80];
	size_t n = 64;

	parts_of(fx.es, hdr_of(fx.es), payload(), &pt);
	memcpy(sig, pt.sig, 64);
	switch (r->a) {
	case 0: /* r = 0 */
		memset(sig, 0, 32);
		break;
	case 1: /* s = 0 */
		memset(sig + 32, 0, 32);
		break;
	case 2: /* r = s = 0 */
		memset(sig, 0, 64);
		break;
	case 3: /* r = n */
		memcpy(sig, p256_n, 32);
		break;
	case 4: /* s = n */
		memcpy(sig + 32, p256_n, 32);
		break;
	case 5: /* r = s = n */
		memcpy(sig, p256_n, 32);
		memcpy(sig + 32, p256_n, 32);
		break;
	case 6: /* DER instead of r||s */
	{
		ECDSA_SIG *es = ECDSA_SIG_new();
		BIGNUM *br = BN_bin2bn(pt.sig, 32, NULL), *bs = BN_bin2bn(pt.sig + 32, 32, NULL);
		unsigned char *q = sig;
		int dl;
		assert_non_null(es);
		assert_int_equal(ECDSA_SIG_set0(es, br, bs), 1);
		dl = i2d_ECDSA_SIG(es, NULL);
		assert_true(dl > 0 && (size_t)dl <= sizeof(sig));
		assert_int_equal(i2d_ECDSA_SIG(es, &q), dl);
		ECDSA_SIG_free(es);
		n = (size_t)dl;
	} break;
	case 7: /* 63 bytes */
		n = 63;
		break;
	case 8: /* 65 bytes */
		sig[64] = 0;
		n = 65;
		break;
	case 9: /* r and s swapped */
		memcpy(sig, pt.sig + 32, 32);
		memcpy(sig + 32, pt.sig, 32);
		break;
	case 10: /* all ones */
		memset(sig, 0xff, 64);
		break;
	case 11: /* a valid signature of another payload */
	{
		struct parts other;
		parts_of(fx.es, hdr_of(fx.es), payload(), &other);
		memcpy(sig, other.sig, 64);
		parts_free(&other);
	} break;
	case 12: /* an Ed25519 signature by the other key of the issuer */
	{
		char *in = join(pt.h64, pt.p64, NULL);
		struct fb_err err = { 0 };
		assert_int_equal(fb_signing_key_sign(fx.ed, in, strlen(in), sig, &err), FB_OK);
		free(in);
	} break;
	case 14: /* control: untouched */
		break;
	default: /* one bit of s flipped */
		sig[63] ^= 1;
		break;
	}
	with_sig(p, &pt, sig, n);
	parts_free(&pt);
}

/* EdDSA tokens: r->a 0 valid, 1 a flipped bit, 2 S above the group order, 3 64 zero bytes. */
static void
b_ed(struct probe *p, const struct row *r)
{
	struct parts pt;
	unsigned char sig[64];

	parts_of(fx.ed, hdr_of(fx.ed), payload(), &pt);
	memcpy(sig, pt.sig, 64);
	if (r->a == 1)
		sig[10] ^= 0x20;
	else if (r->a == 2)
		sig[63] |= 0xf0;
	else if (r->a == 3)
		memset(sig, 0, sizeof(sig));
	with_sig(p, &pt, sig, sizeof(sig));
	parts_free(&pt);
}

#define HDR_T(x) "{\"alg\":\"ES256\",\"typ\":\"fed+jwt\",\"kid\":\"$KID\"" x "}"

static const struct row rows[] = {
	{ "baseline: valid ES256", b_valid, .want = FB_VERIFY_ALLOW },
	/* alg none, in case variants, with and without a signature */
	{ "alg none, empty signature", b_alg, "none", .a = 0, .want = FB_VERIFY_MALFORMED },
	{ "alg None, empty signature", b_alg, "None", .a = 0, .want = FB_VERIFY_MALFORMED },
	{ "alg NONE, empty signature", b_alg, "NONE", .a = 0, .want = FB_VERIFY_MALFORMED },
	{ "alg nOnE, empty signature", b_alg, "nOnE", .a = 0, .want = FB_VERIFY_MALFORMED },
	{ "alg none, ES256 signature", b_alg, "none", .a = 1, .want = FB_VERIFY_MALFORMED },
	{ "alg None, ES256 signature", b_alg, "None", .a = 1, .want = FB_VERIFY_MALFORMED },
	{ "alg NONE, ES256 signature", b_alg, "NONE", .a = 1, .want = FB_VERIFY_MALFORMED },
	{ "alg nOnE, ES256 signature", b_alg, "nOnE", .a = 1, .want = FB_VERIFY_MALFORMED },
	/* HMAC keyed by the public key (key confusion) */
	{ "HS256 keyed by the PEM public key", b_hmac, "HS256", .a = 0,
	    .want = FB_VERIFY_MALFORMED },
	{ "HS256 keyed by the DER public key", b_hmac, "HS256", .a = 1,
	    .want = FB_VERIFY_MALFORMED },
	{ "HS256 keyed by the EC point", b_hmac, "HS256", .a = 2, .want = FB_VERIFY_MALFORMED },
	{ "HS256 keyed by the JWK", b_hmac, "HS256", .a = 3, .want = FB_VERIFY_MALFORMED },
	{ "HS384 keyed by the PEM public key", b_hmac, "HS384", .a = 0,
	    .want = FB_VERIFY_MALFORMED },
	{ "HS384 keyed by the DER public key", b_hmac, "HS384", .a = 1,
	    .want = FB_VERIFY_MALFORMED },
	{ "HS384 keyed by the EC point", b_hmac, "HS384", .a = 2, .want = FB_VERIFY_MALFORMED },
	{ "HS384 keyed by the JWK", b_hmac, "HS384", .a = 3, .want = FB_VERIFY_MALFORMED },
	{ "HS512 keyed by the PEM public key", b_hmac, "HS512", .a = 0,
	    .want = FB_VERIFY_MALFORMED },
	{ "HS512 keyed by the DER public key", b_hmac, "HS512", .a = 1,
	    .want = FB_VERIFY_MALFORMED },
	{ "HS512 keyed by the EC point", b_hmac, "HS512", .a = 2, .want = FB_VERIFY_MALFORMED },
	{ "HS512 keyed by the JWK", b_hmac, "HS512", .a = 3, .want = FB_VERIFY_MALFORMED },
	/* other algorithms over the ES256 key */
	{ "control for the alg rows: ES256", b_alg, "ES256", .a = 1, .want = FB_VERIFY_ALLOW },
	{ "alg RS256", b_alg, "RS256", .a = 1, .want = FB_VERIFY_MALFORMED },
	{ "alg ES384", b_alg, "ES384", .a = 1, .want = FB_VERIFY_MALFORMED },
	{ "alg ES512", b_alg, "ES512", .a = 1, .want = FB_VERIFY_MALFORMED },
	{ "alg PS256", b_alg, "PS256", .a = 1, .want = FB_VERIFY_MALFORMED },
	{ "alg es256 (case)", b_alg, "es256", .a = 1, .want = FB_VERIFY_MALFORMED },
	{ "alg Ed25519", b_alg, "Ed25519", .a = 1, .want = FB_VERIFY_MALFORMED },
	{ "alg ES256K", b_alg, "ES256K", .a = 1, .want = FB_VERIFY_MALFORMED },
	{ "alg a number", b_hdr, HDR_T("") "x", .a = 2, .want = FB_VERIFY_MALFORMED },
	{ "EdDSA header, ES256 kid", b_alg_kid, .a = 0, .want = FB_VERIFY_BAD_SIGNATURE },
	{ "ES256 header, EdDSA kid", b_alg_kid, .a = 1, .want = FB_VERIFY_BAD_SIGNATURE },
	/* kid tricks */
	{ "control for the kid rows", b_kid, "", .b = 1, .want = FB_VERIFY_ALLOW },
	{ "kid ../../etc/passwd", b_kid, "../../etc/passwd", .want = FB_VERIFY_UNKNOWN_KEY },
	{ "kid SQL injection", b_kid, "' OR 1=1 --", .want = FB_VERIFY_UNKNOWN_KEY },
	{ "kid with \\u0000", b_kid, "\\u0000", .b = 1, .want = FB_VERIFY_MALFORMED },
	{ "kid \\u0000 alone", b_kid, "\\u0000", .want = FB_VERIFY_MALFORMED },
	{ "kid of 200 characters", b_kid, NULL, .a = 200, .want = FB_VERIFY_MALFORMED },
	{ "kid of 128 characters", b_kid, NULL, .a = 128, .want = FB_VERIFY_UNKNOWN_KEY },
	{ "kid empty", b_kid, "", .want = FB_VERIFY_MALFORMED },
	{ "kid with a trailing space", b_kid, " ", .b = 1, .want = FB_VERIFY_UNKNOWN_KEY },
	{ "kid a prefix of the real one", b_hdr,
	    "{\"alg\":\"ES256\",\"typ\":\"fed+jwt\",\"kid\":\"$KIDx\"}",
	    .want = FB_VERIFY_UNKNOWN_KEY },
	{ "kid a number", b_hdr, "{\"alg\":\"ES256\",\"typ\":\"fed+jwt\",\"kid\":1}",
	    .want = FB_VERIFY_MALFORMED },
	{ "kid missing", b_hdr, "{\"alg\":\"ES256\",\"typ\":\"fed+jwt\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "kid with its first character \\u-escaped", b_kid_escaped, .want = FB_VERIFY_ALLOW },
	/* typ */
	{ "typ JWT", b_hdr, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"$KID\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "typ at+jwt", b_hdr, "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"$KID\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "typ missing", b_hdr, "{\"alg\":\"ES256\",\"kid\":\"$KID\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "typ empty", b_hdr, "{\"alg\":\"ES256\",\"typ\":\"\",\"kid\":\"$KID\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "typ fed+jwt with a space", b_hdr,
	    "{\"alg\":\"ES256\",\"typ\":\"fed+jwt \",\"kid\":\"$KID\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "typ application/ alone", b_hdr,
	    "{\"alg\":\"ES256\",\"typ\":\"application/\",\"kid\":\"$KID\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "typ application/application/fed+jwt", b_hdr,
	    "{\"alg\":\"ES256\",\"typ\":\"application/application/fed+jwt\",\"kid\":\"$KID\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "typ FED+JWT", b_hdr, "{\"alg\":\"ES256\",\"typ\":\"FED+JWT\",\"kid\":\"$KID\"}",
	    .want = FB_VERIFY_ALLOW },
	{ "typ application/fed+jwt", b_hdr,
	    "{\"alg\":\"ES256\",\"typ\":\"application/fed+jwt\",\"kid\":\"$KID\"}",
	    .want = FB_VERIFY_ALLOW },
	{ "typ Application/Fed+JWT", b_hdr,
	    "{\"alg\":\"ES256\",\"typ\":\"Application/Fed+JWT\",\"kid\":\"$KID\"}",
	    .want = FB_VERIFY_ALLOW },
	/* header members beyond alg, typ, kid */
	{ "header crit", b_hdr, HDR_T(",\"crit\":[\"exp\"]"), .want = FB_VERIFY_MALFORMED },
	{ "header jku", b_hdr, HDR_T(",\"jku\":\"https://evil.example/jwks\""),
	    .want = FB_VERIFY_MALFORMED },
	{ "header x5u", b_hdr, HDR_T(",\"x5u\":\"https://evil.example/cert\""),
	    .want = FB_VERIFY_MALFORMED },
	{ "header jwk", b_hdr, HDR_T(",\"jwk\":{\"kty\":\"EC\"}"), .want = FB_VERIFY_MALFORMED },
	{ "header x5c", b_hdr, HDR_T(",\"x5c\":[\"MIIB\"]"), .want = FB_VERIFY_MALFORMED },
	{ "header cty", b_hdr, HDR_T(",\"cty\":\"JWT\""), .want = FB_VERIFY_MALFORMED },
	{ "header zip", b_hdr, HDR_T(",\"zip\":\"DEF\""), .want = FB_VERIFY_MALFORMED },
	{ "header b64 false", b_hdr, HDR_T(",\"b64\":false"), .want = FB_VERIFY_MALFORMED },
	{ "header members reordered", b_hdr,
	    "{\"kid\":\"$KID\",\"typ\":\"fed+jwt\",\"alg\":\"ES256\"}", .want = FB_VERIFY_ALLOW },
	{ "header with whitespace", b_hdr,
	    " { \"alg\" : \"ES256\" ,\n\"typ\":\"fed+jwt\",\t\"kid\":\"$KID\" } ",
	    .want = FB_VERIFY_ALLOW },
	{ "header an array", b_hdr, "[\"ES256\",\"fed+jwt\",\"$KID\"]",
	    .want = FB_VERIFY_MALFORMED },
	{ "header null", b_hdr, "null", .want = FB_VERIFY_MALFORMED },
	{ "header duplicate alg", b_hdr,
	    "{\"alg\":\"none\",\"alg\":\"ES256\",\"typ\":\"fed+jwt\",\"kid\":\"$KID\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "header duplicate kid", b_hdr,
	    "{\"alg\":\"ES256\",\"typ\":\"fed+jwt\",\"kid\":\"x\",\"kid\":\"$KID\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "header trailing garbage", b_hdr, HDR_T("") "x", .want = FB_VERIFY_MALFORMED },
	{ "EdDSA via a header template", b_hdr,
	    "{\"alg\":\"EdDSA\",\"typ\":\"fed+jwt\",\"kid\":\"$KID\"}", .a = 1,
	    .want = FB_VERIFY_ALLOW },
	/* time */
	{ "expired beyond the skew", b_times, .a = -200, .b = -200, .c = -31,
	    .want = FB_VERIFY_EXPIRED },
	{ "expired exactly at the skew", b_times, .a = -200, .b = -200, .c = -30,
	    .want = FB_VERIFY_EXPIRED },
	{ "exp within the skew", b_times, .a = -200, .b = -200, .c = -29, .want = FB_VERIFY_ALLOW },
	{ "nbf in the future beyond the skew", b_times, .a = 0, .b = 31, .c = 300,
	    .want = FB_VERIFY_NOT_YET_VALID },
	{ "nbf in the future within the skew", b_times, .a = 0, .b = 30, .c = 300,
	    .want = FB_VERIFY_ALLOW },
	{ "iat in the future beyond the skew", b_times, .a = 31, .b = 0, .c = 300,
	    .want = FB_VERIFY_NOT_YET_VALID },
	{ "iat in the future within the skew", b_times, .a = 30, .b = 0, .c = 300,
	    .want = FB_VERIFY_ALLOW },
	{ "lifetime over the cap, within it", b_times, .a = -800, .b = -800, .c = 800,
	    .want = FB_VERIFY_ALLOW },
	{ "lifetime over the cap, past it", b_times, .a = -1000, .b = -1000, .c = 100,
	    .want = FB_VERIFY_EXPIRED },
	{ "exp far in the future, iat now", b_times, .a = 0, .b = 0, .c = 100L * 365 * 86400,
	    .want = FB_VERIFY_ALLOW },
	{ "control for the claim type rows", b_time_type, "exp", .a = 3, .want = FB_VERIFY_ALLOW },
	{ "exp as a float", b_time_type, "exp", .a = 0, .want = FB_VERIFY_MALFORMED },
	{ "exp as a string", b_time_type, "exp", .a = 1, .want = FB_VERIFY_MALFORMED },
	{ "exp negative", b_time_type, "exp", .a = 2, .want = FB_VERIFY_MALFORMED },
	{ "iat as a float", b_time_type, "iat", .a = 0, .want = FB_VERIFY_MALFORMED },
	{ "nbf as a string", b_time_type, "nbf", .a = 1, .want = FB_VERIFY_MALFORMED },
	{ "iat negative", b_time_type, "iat", .a = 2, .want = FB_VERIFY_MALFORMED },
	/* audience and tenants */
	{ "aud as an array", b_patch, "{\"aud\":[\"" LOCAL "\"]}", .want = FB_VERIFY_MALFORMED },
	{ "aud another tenant", b_patch, "{\"aud\":\"" LOCAL_C "\"}",
	    .want = FB_VERIFY_WRONG_AUDIENCE },
	{ "aud missing", b_patch, "{\"aud\":null}", .want = FB_VERIFY_MALFORMED },
	{ "aud empty", b_patch, "{\"aud\":\"\"}", .want = FB_VERIFY_MALFORMED },
	{ "aud with a NUL", b_patch, "{\"aud\":\"" LOCAL "\\u0000x\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "another peer thumbprint", b_peer, .a = 0, .want = FB_VERIFY_CERT_MISMATCH },
	{ "no peer thumbprint", b_peer, .a = 1, .want = FB_VERIFY_CERT_MISMATCH },
	{ "issuer C to its trusting tenant", b_cross, .a = 0, .want = FB_VERIFY_ALLOW },
	{ "issuer C to a tenant not trusting C", b_cross, .a = 1, .want = FB_VERIFY_WRONG_TENANT },
	{ "issuer A to a tenant trusting only C", b_cross, .a = 2, .want = FB_VERIFY_WRONG_TENANT },
	{ "iss A signed with C's key", b_cross, .a = 3, .want = FB_VERIFY_UNKNOWN_KEY },
	{ "iss C signed with the first key", b_cross, .a = 4, .want = FB_VERIFY_UNKNOWN_KEY },
	{ "C's tenant claimed under iss A", b_cross, .a = 5, .want = FB_VERIFY_WRONG_TENANT },
	{ "iss unknown", b_patch, "{\"iss\":\"https://evil.example\"}",
	    .want = FB_VERIFY_UNTRUSTED_ISSUER },
	{ "iss with a trailing slash", b_patch, "{\"iss\":\"" ISS_A "/\"}",
	    .want = FB_VERIFY_UNTRUSTED_ISSUER },
	{ "iss in upper case", b_patch, "{\"iss\":\"HTTPS://SSO.A.EXAMPLE\"}",
	    .want = FB_VERIFY_UNTRUSTED_ISSUER },
	{ "iss with a NUL then the real one", b_patch,
	    "{\"iss\":\"" ISS_A "\\u0000.evil.example\"}", .want = FB_VERIFY_MALFORMED },
	{ "iss missing", b_patch, "{\"iss\":null}", .want = FB_VERIFY_MALFORMED },
	{ "tid not in the trust", b_patch,
	    "{\"tid\":\"Zz9sT2mZx4\",\"sub\":\"fid:0/Zz9sT2mZx4/1\"}",
	    .want = FB_VERIFY_WRONG_TENANT },
	{ "tid the receiving tenant", b_patch,
	    "{\"tid\":\"" LOCAL "\",\"sub\":\"fid:0/" LOCAL "/1\"}",
	    .want = FB_VERIFY_WRONG_TENANT },
	{ "tid missing", b_patch, "{\"tid\":null}", .want = FB_VERIFY_MALFORMED },
	/* sub */
	{ "sub of another tenant", b_patch, "{\"sub\":\"fid:0/" LOCAL "/1\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "sub not a fid", b_patch, "{\"sub\":\"alice@a.example\"}", .want = FB_VERIFY_MALFORMED },
	{ "sub with \\u0000", b_patch, "{\"sub\":\"" SUB "\\u0000x\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "sub fid:1", b_patch, "{\"sub\":\"fid:1/" REMOTE "/1\"}", .want = FB_VERIFY_MALFORMED },
	{ "sub with an empty local id", b_patch, "{\"sub\":\"fid:0/" REMOTE "/\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "sub with a slash in the local id", b_patch, "{\"sub\":\"fid:0/" REMOTE "/a/b\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "sub with a tenant prefix", b_patch, "{\"sub\":\"fid:0/" REMOTE "x/1\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "sub with a space", b_patch, "{\"sub\":\"fid:0/" REMOTE "/a b\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "sub missing", b_patch, "{\"sub\":null}", .want = FB_VERIFY_MALFORMED },
	{ "sub with an allowed local id", b_patch, "{\"sub\":\"fid:0/" REMOTE "/a.B_c-9\"}",
	    .want = FB_VERIFY_ALLOW },
	/* other claims */
	{ "unknown claim", b_patch, "{\"foo\":1}", .want = FB_VERIFY_MALFORMED },
	{ "unknown claim scope", b_patch, "{\"scope\":\"admin\"}", .want = FB_VERIFY_MALFORMED },
	{ "attrs missing", b_patch, "{\"attrs\":null}", .want = FB_VERIFY_MALFORMED },
	{ "attrs with a nested object", b_patch, "{\"attrs\":{\"a\":{\"b\":\"c\"}}}",
	    .want = FB_VERIFY_MALFORMED },
	{ "attrs with a number in a list", b_patch, "{\"attrs\":{\"a\":[\"x\",1]}}",
	    .want = FB_VERIFY_MALFORMED },
	{ "attrs with a number", b_patch, "{\"attrs\":{\"a\":1}}", .want = FB_VERIFY_MALFORMED },
	{ "attrs with a nested list", b_patch, "{\"attrs\":{\"a\":[[\"x\"]]}}",
	    .want = FB_VERIFY_MALFORMED },
	{ "attrs a list", b_patch, "{\"attrs\":[\"x\"]}", .want = FB_VERIFY_MALFORMED },
	{ "attrs a string", b_patch, "{\"attrs\":\"x\"}", .want = FB_VERIFY_MALFORMED },
	{ "attrs with lists of strings", b_patch,
	    "{\"attrs\":{\"groups\":[\"a\",\"b\"],\"email\":\"x@a.example\"}}",
	    .want = FB_VERIFY_ALLOW },
	{ "attrs empty", b_patch, "{\"attrs\":{}}", .want = FB_VERIFY_ALLOW },
	{ "amr not a list", b_patch, "{\"amr\":\"pwd\"}", .want = FB_VERIFY_MALFORMED },
	{ "amr with a number", b_patch, "{\"amr\":[\"pwd\",1]}", .want = FB_VERIFY_MALFORMED },
	{ "idp a number", b_patch, "{\"idp\":5}", .want = FB_VERIFY_MALFORMED },
	{ "acr an object", b_patch, "{\"acr\":{}}", .want = FB_VERIFY_MALFORMED },
	{ "idp, acr, amr well typed", b_patch,
	    "{\"idp\":\"https://idp.a.example\",\"acr\":\"urn:mfa\",\"amr\":[\"pwd\",\"otp\"]}",
	    .want = FB_VERIFY_ALLOW },
	{ "cid a login correlation id", b_patch, "{\"cid\":\"at0-k1oWp_vmtu8.oYU\"}",
	    .want = FB_VERIFY_ALLOW },
	{ "cid empty", b_patch, "{\"cid\":\"\"}", .want = FB_VERIFY_MALFORMED },
	{ "cid with a space (log injection)", b_patch, "{\"cid\":\"a b\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "cid with a newline", b_patch, "{\"cid\":\"a\\nb\"}", .want = FB_VERIFY_MALFORMED },
	{ "cid too long", b_patch,
	    "{\"cid\":\"0123456789012345678901234567890123456789012345678901234567890123X\"}",
	    .want = FB_VERIFY_MALFORMED },
	{ "cid a number", b_patch, "{\"cid\":7}", .want = FB_VERIFY_MALFORMED },
	{ "cnf missing", b_patch, "{\"cnf\":null}", .want = FB_VERIFY_MALFORMED },
	{ "cnf thumbprint too short", b_patch, "{\"cnf\":{\"x5t#S256\":\"AAAA\"}}",
	    .want = FB_VERIFY_MALFORMED },
	{ "cnf a string", b_patch, "{\"cnf\":\"x\"}", .want = FB_VERIFY_MALFORMED },
	{ "jti missing", b_patch, "{\"jti\":null}", .want = FB_VERIFY_MALFORMED },
	{ "sid missing", b_patch, "{\"sid\":null}", .want = FB_VERIFY_MALFORMED },
	{ "nbf missing", b_patch, "{\"nbf\":null}", .want = FB_VERIFY_MALFORMED },
	{ "payload an array", b_edit, "{", "[{", .want = FB_VERIFY_MALFORMED },
	/* duplicate members in the payload */
	{ "payload duplicate sub", b_edit, "{\"iss\"", "{\"sub\":\"fid:0/" LOCAL "/1\",\"iss\"",
	    .want = FB_VERIFY_MALFORMED },
	{ "payload duplicate aud", b_edit, "{\"iss\"", "{\"aud\":\"" LOCAL_C "\",\"iss\"",
	    .want = FB_VERIFY_MALFORMED },
	{ "payload duplicate in attrs", b_edit, "\"attrs\":{",
	    "\"attrs\":{\"email\":\"eve@a.example\",", .want = FB_VERIFY_MALFORMED },
	{ "payload duplicate in cnf", b_edit, "\"cnf\":{", "\"cnf\":{\"x5t#S256\":\"AAAA\",",
	    .want = FB_VERIFY_MALFORMED },
	{ "payload cnf with another member", b_edit, "\"cnf\":{", "\"cnf\":{\"jkt\":\"AAAA\",",
	    .want = FB_VERIFY_MALFORMED },
	{ "payload with whitespace", b_edit, ",\"sub\"", " ,\n \"sub\" ", .want = FB_VERIFY_ALLOW },
	{ "payload trailing garbage", b_edit, "}}", "}}x", .want = FB_VERIFY_MALFORMED },
	/* shape */
	{ "control for the shape rows", b_shape, .a = 99, .want = FB_VERIFY_ALLOW },
	{ "truncated by 1 character", b_shape, .a = 0, .want = FB_VERIFY_MALFORMED },
	{ "truncated by 2 characters (63-byte signature)", b_shape, .a = 1,
	    .want = FB_VERIFY_BAD_SIGNATURE },
	{ "truncated after the second dot", b_shape, .a = 2, .want = FB_VERIFY_MALFORMED },
	{ "truncated before the second dot", b_shape, .a = 3, .want = FB_VERIFY_MALFORMED },
	{ "truncated in the payload", b_shape, .a = 4, .want = FB_VERIFY_MALFORMED },
	{ "truncated in the header", b_shape, .a = 5, .want = FB_VERIFY_MALFORMED },
	{ "truncated after the first dot", b_shape, .a = 6, .want = FB_VERIFY_MALFORMED },
	{ "header cut off", b_shape, .a = 7, .want = FB_VERIFY_MALFORMED },
	{ "oversized (above the cap)", b_size, .a = 0, .want = FB_VERIFY_MALFORMED },
	{ "at the size cap", b_size, .a = 1, .want = FB_VERIFY_ALLOW },
	{ "empty", b_literal, .a = 2, .want = FB_VERIFY_MALFORMED },
	{ "garbage", b_literal, "garbage", .want = FB_VERIFY_MALFORMED },
	{ "garbage with dots", b_literal, "a.b.c", .want = FB_VERIFY_MALFORMED },
	{ "only dots (2)", b_literal, "..", .want = FB_VERIFY_MALFORMED },
	{ "only dots (3)", b_literal, "...", .want = FB_VERIFY_MALFORMED },
	{ "one dot", b_literal, ".", .want = FB_VERIFY_MALFORMED },
	{ "four parts", b_literal, .a = 0, .want = FB_VERIFY_MALFORMED },
	{ "a trailing dot", b_literal, .a = 1, .want = FB_VERIFY_MALFORMED },
	{ "two parts", b_shape, .a = 3, .want = FB_VERIFY_MALFORMED },
	{ "a NUL inside", b_literal, .a = 3, .want = FB_VERIFY_MALFORMED },
	{ "two tokens joined", b_literal, .a = 4, .want = FB_VERIFY_MALFORMED },
	{ "a JSON object", b_literal, "{\"alg\":\"none\"}", .want = FB_VERIFY_MALFORMED },
	{ "JWE-like five parts", b_literal, "eyJhbGciOiJSU0EifQ.a.b.c.d",
	    .want = FB_VERIFY_MALFORMED },
	/* non-canonical base64url */
	{ "control for the base64url rows", b_b64, .a = 9, .want = FB_VERIFY_ALLOW },
	{ "header with padding", b_b64, .a = 0, .want = FB_VERIFY_MALFORMED },
	{ "payload with padding", b_b64, .a = 1, .want = FB_VERIFY_MALFORMED },
	{ "header in the standard alphabet", b_b64, .a = 2, .want = FB_VERIFY_MALFORMED },
	{ "payload with '+'", b_b64, .a = 3, .want = FB_VERIFY_MALFORMED },
	{ "payload with '/'", b_b64, .a = 4, .want = FB_VERIFY_MALFORMED },
	{ "header with non-zero trailing bits", b_b64, .a = 5, .want = FB_VERIFY_MALFORMED },
	{ "payload with non-zero trailing bits", b_b64, .a = 6, .want = FB_VERIFY_MALFORMED },
	{ "header with a space", b_b64, .a = 7, .want = FB_VERIFY_MALFORMED },
	{ "payload with a line break", b_b64, .a = 8, .want = FB_VERIFY_MALFORMED },
	{ "control for the signature encoding rows", b_sig_b64, .a = 5, .want = FB_VERIFY_ALLOW },
	{ "signature with padding", b_sig_b64, .a = 0, .want = FB_VERIFY_MALFORMED },
	{ "signature with non-zero trailing bits", b_sig_b64, .a = 1, .want = FB_VERIFY_MALFORMED },
	{ "signature in the standard alphabet", b_sig_b64, .a = 2, .want = FB_VERIFY_MALFORMED },
	{ "signature with a space", b_sig_b64, .a = 3, .want = FB_VERIFY_MALFORMED },
	{ "signature with a trailing newline", b_sig_b64, .a = 4, .want = FB_VERIFY_MALFORMED },
	/* ECDSA */
	{ "control for the ECDSA rows", b_ecdsa, .a = 14, .want = FB_VERIFY_ALLOW },
	{ "ECDSA r = 0", b_ecdsa, .a = 0, .want = FB_VERIFY_BAD_SIGNATURE },
	{ "ECDSA s = 0", b_ecdsa, .a = 1, .want = FB_VERIFY_BAD_SIGNATURE },
	{ "ECDSA r = s = 0", b_ecdsa, .a = 2, .want = FB_VERIFY_BAD_SIGNATURE },
	{ "ECDSA r = n", b_ecdsa, .a = 3, .want = FB_VERIFY_BAD_SIGNATURE },
	{ "ECDSA s = n", b_ecdsa, .a = 4, .want = FB_VERIFY_BAD_SIGNATURE },
	{ "ECDSA r = s = n", b_ecdsa, .a = 5, .want = FB_VERIFY_BAD_SIGNATURE },
	{ "ECDSA DER-encoded", b_ecdsa, .a = 6, .want = FB_VERIFY_BAD_SIGNATURE },
	{ "ECDSA 63 bytes", b_ecdsa, .a = 7, .want = FB_VERIFY_BAD_SIGNATURE },
	{ "ECDSA 65 bytes", b_ecdsa, .a = 8, .want = FB_VERIFY_BAD_SIGNATURE },
	{ "ECDSA r and s swapped", b_ecdsa, .a = 9, .want = FB_VERIFY_BAD_SIGNATURE },
	{ "ECDSA all ones", b_ecdsa, .a = 10, .want = FB_VERIFY_BAD_SIGNATURE },
	{ "valid signature over another payload", b_ecdsa, .a = 11,
	    .want = FB_VERIFY_BAD_SIGNATURE },
	{ "Ed25519 signature under an ES256 header", b_ecdsa, .a = 12,
	    .want = FB_VERIFY_BAD_SIGNATURE },
	{ "ECDSA one bit of s flipped", b_ecdsa, .a = 13, .want = FB_VERIFY_BAD_SIGNATURE },
	/* EdDSA */
	{ "EdDSA valid", b_ed, .a = 0, .want = FB_VERIFY_ALLOW },
	{ "EdDSA one bit flipped", b_ed, .a = 1, .want = FB_VERIFY_BAD_SIGNATURE },
	{ "EdDSA S above the order", b_ed, .a = 2, .want = FB_VERIFY_BAD_SIGNATURE },
	{ "EdDSA all zero", b_ed, .a = 3, .want = FB_VERIFY_BAD_SIGNATURE },
};

static void
probe_run(const struct row *r, size_t *fails)
{
	struct probe p = { 0 };
	struct fb_verify_result res;
	enum fb_verify_reason got;

	p.peer = fx.thumb;
	p.tenant = LOCAL;
	p.now = fx.now;
	r->build(&p, r);
	assert_non_null(p.tok);
	if (!p.use_len)
		p.len = strlen(p.tok);
	/* Twice: the second check may come from the cache and must agree. */
	for (int pass = 0; pass < 2; pass++) {
		got = check_at(p.tok, p.len, p.tenant, p.peer, p.sender, p.now, &res);
		if (got != r->want || res.reason != got) {
			print_error("row \"%s\" (pass %d): got %s (%s), want %s\n", r->name,
			    pass + 1, fb_verify_reason_name(got), res.detail ? res.detail : "-",
			    fb_verify_reason_name(r->want));
			(*fails)++;
		} else if (got == FB_VERIFY_ALLOW &&
		    (res.fid == NULL || res.tid == NULL || res.attrs_json == NULL)) {
			print_error("row \"%s\": allowed without fid, tid or attrs\n", r->name);
			(*fails)++;
		}
		fb_verify_result_clear(&res);
	}
	free(p.tok);
}

static void
test_table(void **state)
{
	size_t n = sizeof(rows) / sizeof(rows[0]), fails = 0;

	(void)state;
	assert_true(n >= 40);
	for (size_t i = 0; i < n; i++)
		probe_run(&rows[i], &fails);
	print_message("%zu rows, %zu failed\n", n, fails);
	assert_int_equal(fails, 0);
}

/* ---- 3. the cache ---- */

static void
test_cache_rules_still_apply(void **state)
{
	struct fb_verify_stats s0, s1;
	struct fb_verify_result r;
	char *tok = issue();
	size_t n = strlen(tok);

	(void)state;
	s0 = stats();
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	s1 = stats();
	assert_int_equal(s1.signatures, s0.signatures + 1);
	assert_int_equal(s1.cache_hits, s0.cache_hits);
	assert_int_equal(s1.checks, s0.checks + 1);

	/* Same bytes again: no signature, one hit. */
	assert_reason(check(tok, &r), FB_VERIFY_ALLOW);
	assert_string_equal(r.fid, SUB);
	assert_string_equal(r.attrs_json, ATTRS);
	fb_verify_result_clear(&r);
	s0 = stats();
	assert_int_equal(s0.signatures, s1.signatures);
	assert_int_equal(s0.cache_hits, s1.cache_hits + 1);

	/* Time still counts. */
	assert_reason(
	    check_at(tok, n, LOCAL, fx.thumb, NULL, fx.now + TTL + SKEW, &r), FB_VERIFY_EXPIRED);
	fb_verify_result_clear(&r);
	assert_reason(check_at(tok, n, LOCAL, fx.thumb, NULL, fx.now - SKEW - 1, &r),
	    FB_VERIFY_NOT_YET_VALID);
	fb_verify_result_clear(&r);
	/* So do the peer certificate, the sender, the receiving tenant. */
	assert_reason(check_at(tok, n, LOCAL, fx.other, NULL, fx.now, &r), FB_VERIFY_CERT_MISMATCH);
	fb_verify_result_clear(&r);
	assert_reason(check_at(tok, n, LOCAL, NULL, NULL, fx.now, &r), FB_VERIFY_CERT_MISMATCH);
	fb_verify_result_clear(&r);
	assert_reason(check_at(tok, n, LOCAL, fx.thumb, "fid:0/" REMOTE "/1", fx.now, &r),
	    FB_VERIFY_SENDER_MISMATCH);
	fb_verify_result_clear(&r);
	assert_reason(
	    check_at(tok, n, LOCAL_C, fx.thumb, NULL, fx.now, &r), FB_VERIFY_WRONG_AUDIENCE);
	fb_verify_result_clear(&r);
	assert_reason(
	    check_at(tok, n, "Zz9sT2mZx4", fx.thumb, NULL, fx.now, &r), FB_VERIFY_WRONG_AUDIENCE);
	fb_verify_result_clear(&r);
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	/* A revocation added after the first check. */
	assert_int_equal(fb_verifier_revoke(fx.v, FB_REVOKE_SESSION, SID, fx.now + 3600), FB_OK);
	assert_reason(check_reason(tok), FB_VERIFY_REVOKED);
	s1 = stats();
	assert_int_equal(s1.signatures, s0.signatures);
	assert_int_equal(s1.cache_hits, s0.cache_hits + 9);
	free(tok);
}

static void
test_cache_tenant_trust(void **state)
{
	struct fb_verify_stats s0, s1;
	struct fb_verify_result r;
	/* aud LOCAL_C, who trusts only C: wrong_tenant from cache as on first sight. */
	char *tok = make_token(fx.es, hdr_of(fx.es), payload_for(ISS_A, SUB, REMOTE, LOCAL_C));
	size_t n = strlen(tok);

	(void)state;
	assert_reason(
	    check_at(tok, n, LOCAL_C, fx.thumb, NULL, fx.now, &r), FB_VERIFY_WRONG_TENANT);
	fb_verify_result_clear(&r);
	s0 = stats();
	assert_reason(
	    check_at(tok, n, LOCAL_C, fx.thumb, NULL, fx.now, &r), FB_VERIFY_WRONG_TENANT);
	fb_verify_result_clear(&r);
	s1 = stats();
	assert_int_equal(s1.signatures, s0.signatures);
	assert_int_equal(s1.cache_hits, s0.cache_hits + 1);
	free(tok);
}

static void
test_cache_garbage(void **state)
{
	struct fb_verify_stats s0, s1;
	char *tok = issue(), garbage[96];
	struct parts pt;

	(void)state;
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	parts_of(fx.es, hdr_of(fx.es), payload(), &pt);
	s0 = stats();
	for (int i = 0; i < 10000; i++) {
		enum fb_verify_reason got;
		/* Alternate plain garbage with a valid header over a broken payload. */
		if (i % 2 == 0)
			(void)snprintf(garbage, sizeof(garbage), "g%d.x%d.y", i, i * 7);
		else
			(void)snprintf(garbage, sizeof(garbage), "%.40s.e%dQ.AAAA", pt.h64, i);
		got = check_reason(garbage);
		if (got != FB_VERIFY_MALFORMED)
			fail_msg("garbage %d (%s): %s", i, garbage, fb_verify_reason_name(got));
	}
	s1 = stats();
	assert_int_equal(s1.signatures, s0.signatures);
	assert_int_equal(s1.checks, s0.checks + 10000);
	assert_int_equal(s1.cache_hits, s0.cache_hits);
	/* The valid token is still cached. */
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	s0 = stats();
	assert_int_equal(s0.signatures, s1.signatures);
	assert_int_equal(s0.cache_hits, s1.cache_hits + 1);
	parts_free(&pt);
	free(tok);
}

static void
test_cache_trusts_replaced(void **state)
{
	struct fb_verify_stats s0, s1;
	char *tok = issue();

	(void)state;
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	s0 = stats();
	fb_verifier_set_trusts(fx.v, trusts_with(NULL));
	assert_reason(check_reason(tok), FB_VERIFY_UNTRUSTED_ISSUER);
	s1 = stats();
	assert_int_equal(s1.cache_hits, s0.cache_hits);
	/* And back: verified afresh under the new table. */
	fb_verifier_set_trusts(fx.v, trusts_with(fx.ks_a));
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	s0 = stats();
	assert_int_equal(s0.signatures, s1.signatures + 1);
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	s1 = stats();
	assert_int_equal(s1.signatures, s0.signatures);
	assert_int_equal(s1.cache_hits, s0.cache_hits + 1);
	/* A table that keeps the issuer but drops the key. */
	{
		struct fb_verify_keyset *only_ed = NULL;
		struct fb_signing_key *k[1] = { fx.ed };
		only_ed = keyset_of(k, NULL, 1, NULL);
		assert_non_null(only_ed);
		fb_verifier_set_trusts(fx.v, trusts_with(only_ed));
		fb_verify_keyset_unref(only_ed);
		assert_reason(check_reason(tok), FB_VERIFY_UNKNOWN_KEY);
	}
	free(tok);
}

static void
test_no_cache(void **state)
{
	struct fb_verify_opts o = fx_opts;
	struct fb_verifier *saved = fx.v;
	struct fb_verify_stats s;
	struct fb_err err = { 0 };
	char *tok = issue();

	(void)state;
	o.cache_entries = 0;
	assert_int_equal(fb_verifier_new(&o, &fx.v, &err), FB_OK);
	fb_verifier_set_trusts(fx.v, trusts_with(fx.ks_a));
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	assert_int_equal(fb_verifier_revoke(fx.v, FB_REVOKE_FID, SUB, fx.now + 60), FB_OK);
	assert_reason(check_reason(tok), FB_VERIFY_REVOKED);
	s = stats();
	assert_int_equal(s.signatures, 3);
	assert_int_equal(s.cache_hits, 0);
	fb_verifier_free(fx.v);
	fx.v = saved;
	/* A verifier with no trust table trusts no one. */
	assert_int_equal(fb_verifier_new(&o, &fx.v, &err), FB_OK);
	assert_reason(check_reason(tok), FB_VERIFY_UNTRUSTED_ISSUER);
	fb_verifier_free(fx.v);
	fx.v = saved;
	/* Size caps out of range are refused. */
	o.max_token = 0;
	assert_int_not_equal(fb_verifier_new(&o, &fx.v, &err), FB_OK);
	o.max_token = FB_VERIFY_MAX_TOKEN + 1;
	assert_int_not_equal(fb_verifier_new(&o, &fx.v, &err), FB_OK);
	fx.v = saved;
	free(tok);
}

static void
test_set_limits(void **state)
{
	struct fb_verify_opts o = fx_opts;
	char *tok = issue();

	(void)state;
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	o.max_token = strlen(tok) - 1;
	fb_verifier_set_limits(fx.v, &o);
	assert_reason(check_reason(tok), FB_VERIFY_MALFORMED);
	o.max_token = MAX_TOKEN;
	o.max_lifetime = 10;
	fb_verifier_set_limits(fx.v, &o);
	{
		struct fb_verify_result r;
		assert_reason(
		    check_at(tok, strlen(tok), LOCAL, fx.thumb, NULL, fx.now + 10 + SKEW, &r),
		    FB_VERIFY_EXPIRED);
		fb_verify_result_clear(&r);
		assert_reason(
		    check_at(tok, strlen(tok), LOCAL, fx.thumb, NULL, fx.now + 9 + SKEW, &r),
		    FB_VERIFY_ALLOW);
		assert_int_equal((int64_t)r.exp, (int64_t)fx.now + 10);
		fb_verify_result_clear(&r);
	}
	free(tok);
}

/* ---- 4. key sets ---- */

static const char *
jwk_str(json_t *jwk, const char *name)
{
	const char *s = json_string_value(json_object_get(jwk, name));

	assert_non_null(s);
	return s;
}

/* fb_verify_keyset_from_jwks on text; returns the rc and frees any set. */
static fb_rc
parse_jwks(const char *text)
{
	struct fb_verify_keyset *ks = NULL;
	struct fb_err err = { 0 };
	fb_rc rc = fb_verify_keyset_from_jwks(text, strlen(text), &ks, &err);

	if (rc == FB_OK)
		assert_non_null(ks);
	else
		assert_true(err.msg[0] != '\0');
	fb_verify_keyset_unref(ks);
	return rc;
}

/* {"keys":[ jwk ]} where jwk is the ES256 JWK patched by patch (null deletes). */
static char *
jwks_patched(json_t *base, const char *patch)
{
	json_t *jwk = json_deep_copy(base), *p = json_loads(patch, 0, NULL), *val;
	const char *key;
	char *out, *j;
	size_t n;

	assert_non_null(jwk);
	assert_non_null(p);
	json_object_foreach(p, key, val)
	{
		if (json_is_null(val))
			(void)json_object_del(jwk, key);
		else
			assert_int_equal(json_object_set(jwk, key, val), 0);
	}
	json_decref(p);
	j = dump(jwk);
	json_decref(jwk);
	n = strlen(j) + 16;
	out = malloc(n);
	assert_non_null(out);
	(void)snprintf(out, n, "{\"keys\":[%s]}", j);
	free(j);
	return out;
}

struct jwks_case {
	const char *name;
	bool ed; /* patch the Ed25519 JWK instead */
	const char *patch;
};

static void
test_keyset_refused(void **state)
{
	static const struct jwks_case cases[] = {
		{ "private member d", false, "{\"d\":\"AAAA\"}" },
		{ "Ed25519 private member d", true,
		    "{\"d\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}" },
		{ "RSA key", false,
		    "{\"kty\":\"RSA\",\"crv\":null,\"x\":null,\"y\":null,\"alg\":null,"
		    "\"n\":\"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1Wl"
		    "UzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZ"
		    "mdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_"
		    "75IDrGA"
		    "84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-V"
		    "TdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw\",\"e\":\"AQAB\"}" },
		{ "RSA key without extra members", false,
		    "{\"kty\":\"RSA\",\"alg\":null,\"y\":null}" },
		{ "P-384 key", false, "{\"crv\":\"P-384\",\"alg\":null}" },
		{ "P-521 key", false, "{\"crv\":\"P-521\",\"alg\":\"ES512\"}" },
		{ "secp256k1 key", false, "{\"crv\":\"secp256k1\",\"alg\":null}" },
		{ "oct key", false,
		    "{\"kty\":\"oct\",\"crv\":null,\"x\":null,\"y\":null,\"alg\":\"HS256\","
		    "\"k\":\"AAAA\"}" },
		{ "X25519 key", true, "{\"crv\":\"X25519\",\"alg\":null}" },
		{ "no kid", false, "{\"kid\":null}" },
		{ "empty kid", false, "{\"kid\":\"\"}" },
		{ "kid a number", false, "{\"kid\":7}" },
		{ "alg ES256 on an OKP key", true, "{\"alg\":\"ES256\"}" },
		{ "alg EdDSA on an EC key", false, "{\"alg\":\"EdDSA\"}" },
		{ "alg HS256 on an EC key", false, "{\"alg\":\"HS256\"}" },
		{ "use enc", false, "{\"use\":\"enc\"}" },
		{ "Ed25519 x of 31 bytes", true,
		    "{\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}" },
		{ "Ed25519 x of 33 bytes", true,
		    "{\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}" },
		{ "Ed25519 with a y", true, "{\"y\":\"AAAA\"}" },
		{ "EC x of 31 bytes", false,
		    "{\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}" },
		{ "EC without y", false, "{\"y\":null}" },
		{ "EC point (0,0)", false,
		    "{\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		    "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}" },
		{ "x padded", false, NULL },
		{ "exp a string", false, "{\"exp\":\"1700000000\"}" },
		{ "exp a float", false, "{\"exp\":1700000000.5}" },
		{ "exp zero", false, "{\"exp\":0}" },
		{ "exp negative", false, "{\"exp\":-5}" },
		{ "an unknown member", false, "{\"x5c\":[\"MIIB\"]}" },
	};
	char *text;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].patch == NULL) {
			char x[64];
			(void)snprintf(x, sizeof(x), "{\"x\":\"%s=\"}", jwk_str(fx.jwk_es, "x"));
			text = jwks_patched(fx.jwk_es, x);
		} else {
			text = jwks_patched(cases[i].ed ? fx.jwk_ed : fx.jwk_es, cases[i].patch);
		}
		if (parse_jwks(text) == FB_OK)
			fail_msg("JWKS case \"%s\" accepted: %s", cases[i].name, text);
		free(text);
	}
}

static void
test_keyset_refused_text(void **state)
{
	static const char *const texts[] = {
		"",
		"not json",
		"{}",
		"{\"keys\":[]}",
		"{\"keys\":{}}",
		"{\"keys\":null}",
		"[]",
		"{\"keys\":[1]}",
		"{\"keys\":[{}]}",
	};
	char *es = dump(fx.jwk_es), *ed = dump(fx.jwk_ed), buf[2048], *y;
	json_t *bad;

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (parse_jwks(texts[i]) == FB_OK)
			fail_msg("JWKS \"%s\" accepted", texts[i]);
	/* Both kinds together are fine. */
	(void)snprintf(buf, sizeof(buf), "{\"keys\":[%s,%s]}", es, ed);
	assert_int_equal(parse_jwks(buf), FB_OK);
	/* Duplicate kids. */
	(void)snprintf(buf, sizeof(buf), "{\"keys\":[%s,%s]}", es, es);
	assert_int_not_equal(parse_jwks(buf), FB_OK);
	/* Duplicate JSON members: inside a key, and at the top. */
	(void)snprintf(buf, sizeof(buf), "{\"keys\":[{\"kid\":\"dup\",%s]}", es + 1);
	assert_int_not_equal(parse_jwks(buf), FB_OK);
	(void)snprintf(buf, sizeof(buf), "{\"keys\":[%s],\"keys\":[%s]}", ed, es);
	assert_int_not_equal(parse_jwks(buf), FB_OK);
	/* A point not on the curve: y changed in its last byte. */
	{
		unsigned char raw[32];
		char enc[48];
		size_t n = 0;
		assert_int_equal(
		    fb_b64url_decode(jwk_str(fx.jwk_es, "y"), 43, raw, sizeof(raw), &n), FB_OK);
		assert_int_equal(n, 32);
		raw[31] ^= 0x01;
		(void)fb_b64url_encode(raw, 32, enc, sizeof(enc));
		bad = json_deep_copy(fx.jwk_es);
		assert_int_equal(json_object_set_new(bad, "y", json_string(enc)), 0);
		y = dump(bad);
		json_decref(bad);
		(void)snprintf(buf, sizeof(buf), "{\"keys\":[%s]}", y);
		free(y);
		assert_int_not_equal(parse_jwks(buf), FB_OK);
	}
	free(es);
	free(ed);
}

static void
test_keyset_accepts(void **state)
{
	struct fb_verify_keyset *ks = NULL, *empty = NULL;
	struct fb_err err = { 0 };
	char *text;

	(void)state;
	assert_int_equal(
	    fb_verify_keyset_from_jwks(fx.jwks_a, strlen(fx.jwks_a), &ks, &err), FB_OK);
	assert_int_equal(fb_verify_keyset_count(ks), 2);
	assert_int_equal(fb_verify_keyset_expiry(ks), 0);
	assert_ptr_equal(fb_verify_keyset_ref(ks), ks);
	fb_verify_keyset_unref(ks);
	fb_verify_keyset_unref(ks);
	/* Without the optional alg and use members. */
	text = jwks_patched(fx.jwk_es, "{\"alg\":null,\"use\":null}");
	assert_int_equal(parse_jwks(text), FB_OK);
	free(text);
	text = jwks_patched(fx.jwk_ed, "{\"alg\":null,\"use\":null,\"key_ops\":[\"verify\"]}");
	assert_int_equal(parse_jwks(text), FB_OK);
	free(text);
	assert_int_equal(fb_verify_keyset_empty(&empty, &err), FB_OK);
	assert_int_equal(fb_verify_keyset_count(empty), 0);
	assert_int_equal(fb_verify_keyset_expiry(empty), 0);
	fb_verify_keyset_unref(empty);
}

static void
test_keyset_expiry(void **state)
{
	struct fb_signing_key *k[2] = { fx.es, fx.ed };
	const int64_t both[2] = { 1000, 2000 }, one[2] = { 1000, 0 };
	struct fb_verify_keyset *ks;

	(void)state;
	ks = keyset_of(k, both, 2, NULL);
	assert_non_null(ks);
	assert_int_equal(fb_verify_keyset_expiry(ks), 2000);
	fb_verify_keyset_unref(ks);
	ks = keyset_of(k, one, 2, NULL);
	assert_non_null(ks);
	assert_int_equal(fb_verify_keyset_expiry(ks), 0);
	fb_verify_keyset_unref(ks);
	ks = keyset_of(k, one, 1, NULL);
	assert_non_null(ks);
	assert_int_equal(fb_verify_keyset_expiry(ks), 1000);
	fb_verify_keyset_unref(ks);
}

static void
test_keyset_key_exp(void **state)
{
	struct fb_signing_key *k[2] = { fx.es, fx.ed };
	const int64_t exps[2] = { (int64_t)fx.now - 1000, 0 };
	struct fb_verify_keyset *ks = keyset_of(k, exps, 2, NULL);
	struct fb_verify_result r;
	char *late, *early, *edge, *over, *ed;

	(void)state;
	assert_non_null(ks);
	fb_verifier_set_trusts(fx.v, trusts_with(ks));
	fb_verify_keyset_unref(ks);
	/* Issued after the key's exp (+ skew): not this key's token. */
	late = issue();
	assert_reason(check_reason(late), FB_VERIFY_UNKNOWN_KEY);
	over = issue_full(fx.es, ISS_A, SUB, REMOTE, LOCAL, fx.now - 1000 + SKEW + 1, TTL);
	assert_reason(
	    check_at(over, strlen(over), LOCAL, fx.thumb, NULL, fx.now - 1000 + SKEW + 1, &r),
	    FB_VERIFY_UNKNOWN_KEY);
	fb_verify_result_clear(&r);
	/* Issued before it (or within the skew): fine, when checked in its lifetime. */
	early = issue_full(fx.es, ISS_A, SUB, REMOTE, LOCAL, fx.now - 1100, TTL);
	assert_reason(check_at(early, strlen(early), LOCAL, fx.thumb, NULL, fx.now - 1050, &r),
	    FB_VERIFY_ALLOW);
	fb_verify_result_clear(&r);
	edge = issue_full(fx.es, ISS_A, SUB, REMOTE, LOCAL, fx.now - 1000 + SKEW, TTL);
	assert_reason(check_at(edge, strlen(edge), LOCAL, fx.thumb, NULL, fx.now - 1000 + SKEW, &r),
	    FB_VERIFY_ALLOW);
	fb_verify_result_clear(&r);
	/* The other key of the set has no exp. */
	ed = issue_full(fx.ed, ISS_A, SUB, REMOTE, LOCAL, fx.now, TTL);
	assert_reason(check_reason(ed), FB_VERIFY_ALLOW);
	free(late);
	free(over);
	free(early);
	free(edge);
	free(ed);
}

static void
test_keyset_empty_unknown_key(void **state)
{
	struct fb_verify_keyset *empty = NULL;
	struct fb_err err = { 0 };
	char *tok = issue();

	(void)state;
	assert_int_equal(fb_verify_keyset_empty(&empty, &err), FB_OK);
	fb_verifier_set_trusts(fx.v, trusts_with(empty));
	fb_verify_keyset_unref(empty);
	assert_reason(check_reason(tok), FB_VERIFY_UNKNOWN_KEY);
	free(tok);
}

/* An exp that would overflow (INT64_MAX, "never") is refused with the key set. */
static void
test_keyset_key_exp_max(void **state)
{
	struct fb_signing_key *k[1] = { fx.es };
	const int64_t exps[1] = { INT64_MAX };
	char *text = NULL;

	(void)state;
	assert_null(keyset_of(k, exps, 1, &text));
	assert_true(text != NULL && strstr(text, "9223372036854775807") != NULL);
	free(text);
}

/* alg and use given with another type are refused, not taken as absent. */
static void
test_keyset_member_types(void **state)
{
	char *text;

	(void)state;
	text = jwks_patched(fx.jwk_es, "{\"alg\":5}");
	assert_int_not_equal(parse_jwks(text), FB_OK);
	free(text);
	text = jwks_patched(fx.jwk_es, "{\"use\":true}");
	assert_int_not_equal(parse_jwks(text), FB_OK);
	free(text);
	text = jwks_patched(fx.jwk_es, "{\"kid\":7}");
	assert_int_not_equal(parse_jwks(text), FB_OK);
	free(text);
}

static void
test_trusts_refused(void **state)
{
	static const char *const rem[] = { REMOTE };
	struct fb_verify_trust_spec specs[2] = {
		{ LOCAL, ISS_A, rem, 1, fx.ks_a },
		{ LOCAL, ISS_A, rem, 1, fx.ks_a },
	};
	struct fb_verify_trusts *t = NULL;
	struct fb_err err = { 0 };

	(void)state;
	/* One tenant trusting one issuer twice. */
	assert_int_not_equal(fb_verify_trusts_new(specs, 2, &t, &err), FB_OK);
	/* One issuer with two key sets. */
	specs[1].local_tenant = LOCAL_C;
	specs[1].keys = fx.ks_c;
	assert_int_not_equal(fb_verify_trusts_new(specs, 2, &t, &err), FB_OK);
	/* A spec without an issuer after a complete one is refused, not dereferenced. */
	specs[1].local_tenant = LOCAL_C;
	specs[1].issuer = NULL;
	assert_int_equal(fb_verify_trusts_new(specs, 2, &t, &err), FB_ERR_INVALID);
	assert_non_null(strstr(err.msg, "trust 1 is incomplete"));
	/* Incomplete: the first spec alone. */
	specs[0].keys = NULL;
	assert_int_not_equal(fb_verify_trusts_new(specs, 1, &t, &err), FB_OK);
	/* Empty is fine, and trusts no one. */
	assert_int_equal(fb_verify_trusts_new(NULL, 0, &t, &err), FB_OK);
	fb_verify_trusts_free(t);
}

/* ---- 5. issuance ---- */

static json_t *
decode_part(const char *b64, size_t len)
{
	unsigned char buf[4096];
	size_t n = 0;
	json_t *j;

	assert_int_equal(fb_b64url_decode(b64, len, buf, sizeof(buf), &n), FB_OK);
	j = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(j);
	return j;
}

static void
split(const char *tok, json_t **hdr, json_t **pl, size_t *sig_chars)
{
	const char *d1 = strchr(tok, '.'), *d2;

	assert_non_null(d1);
	d2 = strchr(d1 + 1, '.');
	assert_non_null(d2);
	assert_null(strchr(d2 + 1, '.'));
	*hdr = decode_part(tok, (size_t)(d1 - tok));
	*pl = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
	*sig_chars = strlen(d2 + 1);
}

static void
assert_members(json_t *obj, const char *const *names, size_t n)
{
	assert_true(json_is_object(obj));
	for (size_t i = 0; i < n; i++)
		if (json_object_get(obj, names[i]) == NULL)
			fail_msg("member %s missing", names[i]);
	assert_int_equal(json_object_size(obj), n);
}

static void
test_issue_shape(void **state)
{
	static const char *const hnames[] = { "alg", "typ", "kid" };
	static const char *const pnames[] = { "iss", "sub", "tid", "aud", "iat", "nbf", "exp",
		"jti", "sid", "cnf", "attrs" };
	struct fb_signing_key *keys[2] = { fx.es, fx.ed };
	char cnf[48];

	(void)state;
	(void)fb_b64url_encode(fx.thumb, sizeof(fx.thumb), cnf, sizeof(cnf));
	for (int i = 0; i < 2; i++) {
		char *tok = issue_full(keys[i], ISS_A, SUB, REMOTE, LOCAL, fx.now, TTL), *again;
		json_t *hdr, *pl, *hdr2, *pl2, *c;
		size_t sc = 0, sc2 = 0;

		split(tok, &hdr, &pl, &sc);
		assert_int_equal(sc, 86);
		assert_members(hdr, hnames, 3);
		assert_string_equal(jwk_str(hdr, "alg"), i == 0 ? "ES256" : "EdDSA");
		assert_string_equal(jwk_str(hdr, "typ"), "fed+jwt");
		assert_string_equal(jwk_str(hdr, "kid"), fb_signing_key_kid(keys[i]));
		/* The header text is exactly that, in that order. */
		{
			char want[160];
			(void)snprintf(want, sizeof(want),
			    "{\"alg\":\"%s\",\"typ\":\"fed+jwt\",\"kid\":\"%s\"}",
			    i == 0 ? "ES256" : "EdDSA", fb_signing_key_kid(keys[i]));
			char *w64 = b64s(want, strlen(want));
			assert_int_equal(strncmp(tok, w64, strlen(w64)), 0);
			assert_int_equal(tok[strlen(w64)], '.');
			free(w64);
		}
		assert_members(pl, pnames, 11);
		assert_string_equal(jwk_str(pl, "iss"), ISS_A);
		assert_string_equal(jwk_str(pl, "sub"), SUB);
		assert_string_equal(jwk_str(pl, "tid"), REMOTE);
		assert_string_equal(jwk_str(pl, "aud"), LOCAL);
		assert_string_equal(jwk_str(pl, "sid"), SID);
		assert_true(json_is_integer(json_object_get(pl, "iat")));
		assert_int_equal(json_integer_value(json_object_get(pl, "iat")), fx.now);
		assert_int_equal(json_integer_value(json_object_get(pl, "nbf")), fx.now);
		assert_int_equal(json_integer_value(json_object_get(pl, "exp")), fx.now + TTL);
		assert_true(strlen(jwk_str(pl, "jti")) >= 16);
		c = json_object_get(pl, "cnf");
		assert_int_equal(json_object_size(c), 1);
		assert_string_equal(jwk_str(c, "x5t#S256"), cnf);
		{
			char *attrs = json_dumps(json_object_get(pl, "attrs"), JSON_COMPACT);
			assert_non_null(attrs);
			assert_string_equal(attrs, ATTRS);
			free(attrs);
		}
		/* A second token differs in jti. */
		again = issue_full(keys[i], ISS_A, SUB, REMOTE, LOCAL, fx.now, TTL);
		split(again, &hdr2, &pl2, &sc2);
		assert_string_not_equal(jwk_str(pl, "jti"), jwk_str(pl2, "jti"));
		/* Both verify. */
		assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
		assert_reason(check_reason(again), FB_VERIFY_ALLOW);
		json_decref(hdr);
		json_decref(pl);
		json_decref(hdr2);
		json_decref(pl2);
		free(tok);
		free(again);
	}
}

static void
test_issue_optional(void **state)
{
	static const char *const amr[] = { "pwd", "otp" };
	static const char *const pnames[] = { "iss", "sub", "tid", "aud", "iat", "nbf", "exp",
		"jti", "sid", "cnf", "idp", "acr", "amr", "attrs", "cid" };
	struct fb_token_claims c = { 0 };
	struct fb_verify_result r;
	struct fb_err err = { 0 };
	json_t *hdr, *pl,
	    *attrs = json_loads("{\"groups\":[\"a\",\"b\"],\"q\":\"\\\"x\\\\\"}", 0, NULL);
	char *tok = NULL;
	size_t sc = 0;

	(void)state;
	assert_non_null(attrs);
	c.iss = ISS_A;
	c.sub = SUB;
	c.tid = REMOTE;
	c.aud = LOCAL;
	c.sid = SID;
	c.idp = "https://idp.a.example";
	c.acr = "urn:mfa";
	c.amr = amr;
	c.n_amr = 2;
	c.cid = "N-DWpn5Ya_c70tFaNxmp2Q";
	c.attrs = attrs;
	c.cnf_sha256 = fx.thumb;
	c.iat = fx.now;
	c.ttl = 60;
	assert_int_equal(fb_token_issue(fx.ed, &c, &tok, &err), FB_OK);
	split(tok, &hdr, &pl, &sc);
	assert_members(pl, pnames, 15);
	assert_int_equal(json_array_size(json_object_get(pl, "amr")), 2);
	assert_string_equal(
	    json_string_value(json_object_get(pl, "cid")), "N-DWpn5Ya_c70tFaNxmp2Q");
	assert_reason(check(tok, &r), FB_VERIFY_ALLOW);
	assert_string_equal(r.attrs_json, "{\"groups\":[\"a\",\"b\"],\"q\":\"\\\"x\\\\\"}");
	fb_verify_result_clear(&r);
	json_decref(hdr);
	json_decref(pl);
	free(tok);
	/* No attrs: an empty object, still a valid token. */
	c.attrs = NULL;
	tok = NULL;
	assert_int_equal(fb_token_issue(fx.es, &c, &tok, &err), FB_OK);
	assert_reason(check(tok, &r), FB_VERIFY_ALLOW);
	assert_string_equal(r.attrs_json, "{}");
	fb_verify_result_clear(&r);
	free(tok);
	/* Refusals. */
	c.attrs = attrs;
	c.ttl = 0;
	assert_int_not_equal(fb_token_issue(fx.es, &c, &tok, &err), FB_OK);
	c.ttl = 60;
	c.cnf_sha256 = NULL;
	assert_int_not_equal(fb_token_issue(fx.es, &c, &tok, &err), FB_OK);
	c.cnf_sha256 = fx.thumb;
	/* Nothing no verifier would accept is signed: bytes that are not UTF-8, a sub
	 * that is not a fid of tid, attrs nested deeper than lists of strings. */
	c.idp = "\xff";
	assert_int_equal(fb_token_issue(fx.es, &c, &tok, &err), FB_ERR_INVALID);
	c.idp = "https://idp.a.example";
	c.sub = "fid:0/" LOCAL "/1";
	assert_int_equal(fb_token_issue(fx.es, &c, &tok, &err), FB_ERR_INVALID);
	c.sub = "alice";
	assert_int_equal(fb_token_issue(fx.es, &c, &tok, &err), FB_ERR_INVALID);
	c.sub = SUB;
	c.attrs = json_pack("{s:{s:s}}", "a", "b", "c");
	assert_int_equal(fb_token_issue(fx.es, &c, &tok, &err), FB_ERR_INVALID);
	json_decref(c.attrs);
	c.attrs = json_array();
	assert_int_not_equal(fb_token_issue(fx.es, &c, &tok, &err), FB_OK);
	json_decref(c.attrs);
	json_decref(attrs);
}

/* Strings the issuer writes itself are escaped into JSON the verifier reads back. */
static void
test_issue_escaping(void **state)
{
	static const char *const amr[] = { "a\"b", "\\", "tab\there" };
	static const char sid[] = "s\"i\\d/\x01\x1f\n\u00e9";
	static const char idp[] = "https://idp.a.example/\u2028\"";
	struct fb_token_claims c = { 0 };
	struct fb_verify_result r;
	struct fb_err err = { 0 };
	json_t *hdr, *pl;
	char *tok = NULL;
	size_t sc = 0;

	(void)state;
	c.iss = ISS_A;
	c.sub = SUB;
	c.tid = REMOTE;
	c.aud = LOCAL;
	c.sid = sid;
	c.idp = idp;
	c.acr = "\x7f";
	c.amr = amr;
	c.n_amr = 3;
	c.cnf_sha256 = fx.thumb;
	c.iat = fx.now;
	c.ttl = 60;
	assert_int_equal(fb_token_issue(fx.es, &c, &tok, &err), FB_OK);
	split(tok, &hdr, &pl, &sc);
	assert_string_equal(jwk_str(pl, "sid"), sid);
	assert_string_equal(jwk_str(pl, "idp"), idp);
	assert_string_equal(jwk_str(pl, "acr"), "\x7f");
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(pl, "amr"), 0)), "a\"b");
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(pl, "amr"), 2)), "tab\there");
	assert_reason(check(tok, &r), FB_VERIFY_ALLOW);
	assert_string_equal(r.sid, sid);
	fb_verify_result_clear(&r);
	/* Revoking that session by its exact text works. */
	assert_int_equal(fb_verifier_revoke(fx.v, FB_REVOKE_SESSION, sid, fx.now + 60), FB_OK);
	assert_reason(check_reason(tok), FB_VERIFY_REVOKED);
	json_decref(hdr);
	json_decref(pl);
	free(tok);
}

static void
test_revoke_bookkeeping(void **state)
{
	char *tok = issue(), name[32];

	(void)state;
	assert_int_equal(fb_verifier_revoked_count(fx.v), 0);
	assert_int_equal(fb_verifier_revoke(fx.v, FB_REVOKE_SESSION, "x", fx.now + 60), FB_OK);
	assert_int_equal(fb_verifier_revoke(fx.v, FB_REVOKE_SESSION, "x", fx.now + 120), FB_OK);
	assert_int_equal(fb_verifier_revoked_count(fx.v), 1);
	/* Many entries (the table grows) leave the token alone, until its own arrives. */
	for (int i = 0; i < 3000; i++) {
		(void)snprintf(name, sizeof(name), "sess-%d", i);
		assert_int_equal(fb_verifier_revoke(
		                     fx.v, (enum fb_verify_revoke_kind)(i % 3), name, fx.now + 600),
		    FB_OK);
	}
	assert_int_equal(fb_verifier_revoked_count(fx.v), 3001);
	assert_reason(check_reason(tok), FB_VERIFY_ALLOW);
	assert_int_equal(fb_verifier_revoke(fx.v, FB_REVOKE_FID, SUB, fx.now + 600), FB_OK);
	assert_reason(check_reason(tok), FB_VERIFY_REVOKED);
	free(tok);
}

#define VT(f) cmocka_unit_test_setup_teardown(f, verifier_setup, verifier_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		VT(test_reason_names),
		VT(test_allow),
		VT(test_malformed),
		VT(test_bad_signature),
		VT(test_unknown_key),
		VT(test_untrusted_issuer),
		VT(test_wrong_tenant),
		VT(test_wrong_audience),
		VT(test_expired),
		VT(test_not_yet_valid),
		VT(test_cert_mismatch),
		VT(test_sender_mismatch),
		VT(test_revoked_session),
		VT(test_revoked_fid),
		VT(test_revoked_tenant),
		VT(test_revoked_other_values),
		VT(test_revoked_session_of_issuer),
		VT(test_revoked_before),
		VT(test_policy_denied),
		VT(test_table),
		VT(test_cache_rules_still_apply),
		VT(test_cache_tenant_trust),
		VT(test_cache_garbage),
		VT(test_cache_trusts_replaced),
		VT(test_no_cache),
		VT(test_set_limits),
		VT(test_keyset_refused),
		VT(test_keyset_refused_text),
		VT(test_keyset_accepts),
		VT(test_keyset_expiry),
		VT(test_keyset_key_exp),
		VT(test_keyset_empty_unknown_key),
		VT(test_trusts_refused),
		VT(test_issue_shape),
		VT(test_issue_optional),
		VT(test_issue_escaping),
		VT(test_revoke_bookkeeping),
		VT(test_keyset_key_exp_max),
		VT(test_keyset_member_types),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
