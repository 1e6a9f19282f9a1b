/* Federation token issuance: the contract's claims, typ fed+jwt, one audience. */
#include "fb_bridge.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_JTI_BYTES 16

fb_rc
fb_token_issue(
    const struct fb_signing_key *k, const struct fb_token_claims *c, char **out, struct fb_err *err)
{
	unsigned char jti_raw[TOKEN_JTI_BYTES], sig[64];
	char jti[32], cnf[48], sig64[96];
	json_t *hdr = NULL, *pl = NULL, *amr = NULL;
	char *hdr_s = NULL, *pl_s = NULL, *tok = NULL;
	size_t hl, pl_len, total;
	fb_rc rc = FB_OK;

	if (c->iss == NULL || c->sub == NULL || c->tid == NULL || c->aud == NULL ||
	    c->sid == NULL || c->cnf_sha256 == NULL || c->ttl <= 0)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "a token needs iss, sub, tid, aud, sid, cnf "
		    "and a lifetime");
	if (c->attrs != NULL && !json_is_object(c->attrs))
		return FB_ERR_SET(err, FB_ERR_INVALID, "attrs must be a JSON object");
	if ((rc = fb_random_bytes(jti_raw, sizeof(jti_raw))) != FB_OK)
		return FB_ERR_SET(err, rc, "no randomness for jti");
	(void)fb_b64url_encode(jti_raw, sizeof(jti_raw), jti, sizeof(jti));
	(void)fb_b64url_encode(c->cnf_sha256, 32, cnf, sizeof(cnf));

	hdr = json_pack("{s:s, s:s, s:s}", "alg", fb_verify_alg_name(fb_signing_key_alg(k)), "typ",
	    "fed+jwt", "kid", fb_signing_key_kid(k));
	pl = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:{s:s}}", "iss", c->iss,
	    "sub", c->sub, "tid", c->tid, "aud", c->aud, "iat", (json_int_t)c->iat, "nbf",
	    (json_int_t)c->iat, "exp", (json_int_t)c->iat + (json_int_t)c->ttl, "jti", jti, "sid",
	    c->sid, "cnf", "x5t#S256", cnf);
	if (hdr == NULL || pl == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	if ((c->idp && json_object_set_new(pl, "idp", json_string(c->idp)) != 0) ||
	    (c->acr && json_object_set_new(pl, "acr", json_string(c->acr)) != 0) ||
	    json_object_set_new(pl, "attrs", c->attrs ? json_incref(c->attrs) : json_object()) !=
	        0) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "a claim is not valid UTF-8");
		goto done;
	}
	if (c->n_amr > 0) {
		amr = json_array();
		for (size_t i = 0; amr != NULL && i < c->n_amr; i++)
			(void)json_array_append_new(amr, json_string(c->amr[i]));
		if (amr == NULL || json_object_set_new(pl, "amr", amr) != 0) {
			rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
			goto done;
		}
	}
	hdr_s = json_dumps(hdr, JSON_COMPACT);
	pl_s = json_dumps(pl, JSON_COMPACT);
	if (hdr_s == NULL || pl_s == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	hl = FB_B64URL_ENCODED_LEN(strlen(hdr_s));
	pl_len = FB_B64URL_ENCODED_LEN(strlen(pl_s));
	total = hl + 1 + pl_len + 1 + FB_B64URL_ENCODED_LEN(64) + 1;
	if ((tok = malloc(total)) == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	(void)fb_b64url_encode(hdr_s, strlen(hdr_s), tok, hl + 1);
	tok[hl] = '.';
	(void)fb_b64url_encode(pl_s, strlen(pl_s), tok + hl + 1, pl_len + 1);
	if ((rc = fb_signing_key_sign(k, tok, hl + 1 + pl_len, sig, err)) != FB_OK)
		goto done;
	(void)fb_b64url_encode(sig, sizeof(sig), sig64, sizeof(sig64));
	tok[hl + 1 + pl_len] = '.';
	memcpy(tok + hl + 1 + pl_len + 1, sig64, strlen(sig64) + 1);
	*out = tok;
	tok = NULL;
done:
	free(tok);
	free(hdr_s);
	free(pl_s);
	json_decref(hdr);
	json_decref(pl);
	return rc;
}
