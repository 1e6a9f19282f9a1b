/*
 * Federation token issuance: the contract's claims, typ fed+jwt, one
 * audience. The payload is written directly (strings escaped by the same
 * JSON writer the logs use; attrs serialised by jansson) and the protected
 * header is precomputed per key: issuance costs little more than signing.
 */
#include "fb_federation.h"
#include "fb_mapping.h"

#include <stdlib.h>
#include <string.h>

#define TOKEN_JTI_BYTES 16
#define TOKEN_MAX 65536

static fb_rc
claim_str(struct fb_buf *b, const char *name, const char *v)
{
	fb_rc rc = fb_buf_printf(b, ",\"%s\":", name);

	return rc == FB_OK ? fb_buf_append_json_string(b, v) : rc;
}

static bool
text_ok(const char *s)
{
	return s == NULL || fb_utf8_valid(s, strlen(s));
}

/* Refuses what no verifier would accept, rather than sign it. */
static fb_rc
claims_check(const struct fb_token_claims *c, struct fb_err *err)
{
	struct fb_fid fid;
	bool ok = text_ok(c->iss) && text_ok(c->sub) && text_ok(c->tid) && text_ok(c->aud) &&
	    text_ok(c->sid) && text_ok(c->idp) && text_ok(c->acr) && text_ok(c->cid);

	for (size_t i = 0; ok && i < c->n_amr; i++)
		ok = text_ok(c->amr[i]);
	if (!ok)
		return FB_ERR_SET(err, FB_ERR_INVALID, "a claim is not valid UTF-8");
	if (fb_fid_parse(c->sub, strlen(c->sub), &fid, err) != FB_OK ||
	    strcmp(fid.tenant, c->tid) != 0)
		return FB_ERR_SET(err, FB_ERR_INVALID, "sub must be a fid of tenant tid");
	if (c->attrs != NULL && !fb_verify_attrs_valid(c->attrs))
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "attrs must map names to strings or lists of strings");
	return FB_OK;
}

fb_rc
fb_token_issue(
    const struct fb_signing_key *k, const struct fb_token_claims *c, char **out, struct fb_err *err)
{
	unsigned char jti_raw[TOKEN_JTI_BYTES], sig[64];
	char jti[32], cnf[48];
	struct fb_buf pl;
	char *attrs = NULL, *tok;
	const char *hdr = fb_signing_key_header_b64(k);
	size_t hl = strlen(hdr), enc, total;
	fb_rc rc;

	if (c->iss == NULL || c->sub == NULL || c->tid == NULL || c->aud == NULL ||
	    c->sid == NULL || c->cnf_sha256 == NULL || c->ttl <= 0)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "a token needs iss, sub, tid, aud, sid, cnf "
		    "and a lifetime");
	if ((rc = claims_check(c, err)) != FB_OK)
		return rc;
	if ((rc = fb_random_bytes(jti_raw, sizeof(jti_raw))) != FB_OK)
		return FB_ERR_SET(err, rc, "no randomness for jti");
	(void)fb_b64url_encode(jti_raw, sizeof(jti_raw), jti, sizeof(jti));
	(void)fb_b64url_encode(c->cnf_sha256, 32, cnf, sizeof(cnf));
	if (c->attrs != NULL && (attrs = json_dumps(c->attrs, JSON_COMPACT)) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");

	fb_buf_init(&pl, TOKEN_MAX);
	rc = fb_buf_append(&pl, "{\"iss\":", 7);
	if (rc == FB_OK)
		rc = fb_buf_append_json_string(&pl, c->iss);
	if (rc == FB_OK)
		rc = claim_str(&pl, "sub", c->sub);
	if (rc == FB_OK)
		rc = claim_str(&pl, "tid", c->tid);
	if (rc == FB_OK)
		rc = claim_str(&pl, "aud", c->aud);
	if (rc == FB_OK)
		rc = fb_buf_printf(&pl, ",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,\"jti\":\"%s\"",
		    (long long)c->iat, (long long)c->iat, (long long)c->iat + (long long)c->ttl,
		    jti);
	if (rc == FB_OK)
		rc = claim_str(&pl, "sid", c->sid);
	if (rc == FB_OK)
		rc = fb_buf_printf(&pl, ",\"cnf\":{\"x5t#S256\":\"%s\"}", cnf);
	if (rc == FB_OK && c->idp != NULL)
		rc = claim_str(&pl, "idp", c->idp);
	if (rc == FB_OK && c->acr != NULL)
		rc = claim_str(&pl, "acr", c->acr);
	if (rc == FB_OK && c->cid != NULL)
		rc = claim_str(&pl, "cid", c->cid);
	for (size_t i = 0; rc == FB_OK && i < c->n_amr; i++) {
		rc = fb_buf_append(&pl, i == 0 ? ",\"amr\":[" : ",", i == 0 ? 8 : 1);
		if (rc == FB_OK)
			rc = fb_buf_append_json_string(&pl, c->amr[i]);
		if (rc == FB_OK && i + 1 == c->n_amr)
			rc = fb_buf_append(&pl, "]", 1);
	}
	if (rc == FB_OK)
		rc = fb_buf_printf(&pl, ",\"attrs\":%s}", attrs ? attrs : "{}");
	free(attrs);
	if (rc != FB_OK) {
		fb_buf_free(&pl);
		return FB_ERR_SET(err, rc, "the claims do not fit in a token");
	}

	/* header.payload, signed, then .signature, in one exact allocation. */
	enc = FB_B64URL_ENCODED_LEN(pl.len);
	total = hl + 1 + enc + 1 + FB_B64URL_ENCODED_LEN(sizeof(sig)) + 1;
	if ((tok = malloc(total)) == NULL) {
		fb_buf_free(&pl);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	memcpy(tok, hdr, hl);
	tok[hl] = '.';
	(void)fb_b64url_encode(pl.data, pl.len, tok + hl + 1, enc + 1);
	fb_buf_free(&pl);
	if ((rc = fb_signing_key_sign(k, tok, hl + 1 + enc, sig, err)) != FB_OK) {
		free(tok);
		return rc;
	}
	tok[hl + 1 + enc] = '.';
	(void)fb_b64url_encode(
	    sig, sizeof(sig), tok + hl + 1 + enc + 1, total - (hl + 1 + enc + 1));
	*out = tok;
	return FB_OK;
}
