/*
 * Relay check benchmark: prints figures with the baseline measured in the
 * same run and the ratio. Not a test: nothing here passes or fails.
 *
 *   (a) raw OpenSSL EVP verify of the same ES256 signature
 *   (b) first-seen token checks (full parse + signature), vs (a)
 *   (c) checks of cached tokens, one thread
 *   (d) (c) with 1,000,000 revoked sessions and 10,000 trusts loaded, vs (c)
 *   (e) issuance vs raw signing
 */
#include "fb_bridge.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOCAL "HWqHczeM2P"
#define REMOTE "HZnKEBoqDU"
#define ISSUER "https://sso.a.example"
#define CACHED_TOKENS 64

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs fn until at least min_s seconds have passed; returns operations per second. */
#define RATE(min_s, ...)                                                                           \
	({                                                                                         \
		double t0_ = now_s(), t_;                                                          \
		unsigned long n_ = 0;                                                              \
		do {                                                                               \
			for (int i_ = 0; i_ < 64; i_++) {                                          \
				__VA_ARGS__;                                                       \
			}                                                                          \
			n_ += 64;                                                                  \
		} while ((t_ = now_s() - t0_) < (min_s));                                          \
		(double)n_ / t_;                                                                   \
	})

static void
die(const char *what, const struct fb_err *err)
{
	fprintf(stderr, "bench_verify: %s: %s\n", what, err ? err->msg : "");
	exit(1);
}

static struct fb_verify_trusts *
make_trusts(struct fb_verify_keyset *ks, size_t extra)
{
	struct fb_verify_trust_spec *specs = calloc(extra + 1, sizeof(*specs));
	static const char *const remote[] = { REMOTE };
	char **issuers = calloc(extra + 1, sizeof(char *));
	struct fb_verify_trusts *t = NULL;
	struct fb_err err = { 0 };

	if (specs == NULL || issuers == NULL)
		die("out of memory", NULL);
	specs[0] = (struct fb_verify_trust_spec){ LOCAL, ISSUER, remote, 1, ks };
	for (size_t i = 1; i <= extra; i++) {
		issuers[i] = malloc(64);
		if (issuers[i] == NULL)
			die("out of memory", NULL);
		(void)snprintf(issuers[i], 64, "https://sso-%zu.remote.example", i);
		specs[i] = (struct fb_verify_trust_spec){ LOCAL, issuers[i], remote, 1, ks };
	}
	if (fb_verify_trusts_new(specs, extra + 1, &t, &err) != FB_OK)
		die("trusts", &err);
	for (size_t i = 1; i <= extra; i++)
		free(issuers[i]);
	free(issuers);
	free(specs);
	return t;
}

int
main(void)
{
	char dir[] = "/tmp/fb-bench.XXXXXX", path[64], *jwks = NULL;
	struct fb_signing_key *key = NULL;
	struct fb_verify_keyset *ks = NULL;
	struct fb_verifier *first = NULL, *cached = NULL, *loaded = NULL;
	struct fb_verify_opts vo = { .clock_skew = 30, .max_lifetime = 900, .max_token = 8192 };
	struct fb_verify_result r;
	struct fb_verify_input in;
	struct fb_token_claims c;
	struct fb_err err = { 0 };
	unsigned char cnf[32], sig[64], der[80];
	char *tokens[CACHED_TOKENS], sid[32];
	time_t now = time(NULL);
	double a, b, cc, d, e, raw_sign;
	EVP_PKEY *pkey;
	EVP_MD_CTX *md;
	ECDSA_SIG *es;
	unsigned char *p;
	const char *dot;
	size_t der_len;
	volatile int sink = 0;

	if (mkdtemp(dir) == NULL)
		die("mkdtemp", NULL);
	(void)snprintf(path, sizeof(path), "%s/signing.pem", dir);
	if (fb_keys_generate(path, FB_ALG_ES256, &err) != FB_OK ||
	    fb_signing_key_load(path, &key, &err) != FB_OK ||
	    fb_keys_jwks(&key, NULL, 1, &jwks, &err) != FB_OK ||
	    fb_verify_keyset_from_jwks(jwks, strlen(jwks), &ks, &err) != FB_OK)
		die("keys", &err);
	(void)fb_random_bytes(cnf, sizeof(cnf));

	memset(&c, 0, sizeof(c));
	c.iss = ISSUER;
	c.sub = "fid:0/" REMOTE "/100401";
	c.tid = REMOTE;
	c.aud = LOCAL;
	c.cnf_sha256 = cnf;
	c.iat = now;
	c.ttl = 300;
	c.attrs = json_pack("{s:s, s:s}", "email", "alice@a.example", "department", "sales");
	for (int i = 0; i < CACHED_TOKENS; i++) {
		(void)snprintf(sid, sizeof(sid), "benchsession%010d", i);
		c.sid = sid;
		if (fb_token_issue(key, &c, &tokens[i], &err) != FB_OK)
			die("issue", &err);
	}
	printf("token: %zu bytes, ES256, %d distinct tokens in the cached runs\n",
	    strlen(tokens[0]), CACHED_TOKENS);

	/* (a) the same signature through OpenSSL alone: r||s to DER, EVP verify. */
	pkey = NULL;
	{
		FILE *f = fopen(path, "r");
		pkey = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
		if (f)
			fclose(f);
	}
	if (pkey == NULL)
		die("raw key", NULL);
	dot = strrchr(tokens[0], '.');
	{
		size_t n = 0;
		if (fb_b64url_decode(dot + 1, strlen(dot + 1), sig, sizeof(sig), &n) != FB_OK)
			die("signature", NULL);
	}
	a = RATE(1.0, {
		BIGNUM *rr = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
		es = ECDSA_SIG_new();
		ECDSA_SIG_set0(es, rr, ss);
		p = der;
		der_len = (size_t)i2d_ECDSA_SIG(es, &p);
		md = EVP_MD_CTX_new();
		sink += EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
		    EVP_DigestVerify(md, der, der_len, (const unsigned char *)tokens[0],
		        (size_t)(dot - tokens[0])) == 1;
		EVP_MD_CTX_free(md);
		ECDSA_SIG_free(es);
	});

	memset(&in, 0, sizeof(in));
	in.receiving_tenant = LOCAL;
	in.peer_cert_sha256 = cnf;
	in.now = now;

	/* (b) every check sees the token for the first time: no cache. */
	vo.cache_entries = 0;
	if (fb_verifier_new(&vo, &first, &err) != FB_OK)
		die("verifier", &err);
	fb_verifier_set_trusts(first, make_trusts(ks, 0));
	in.token = tokens[0];
	in.token_len = strlen(tokens[0]);
	if (fb_verifier_check(first, &in, &r) != FB_VERIFY_ALLOW)
		die("first check denied", NULL);
	fb_verify_result_clear(&r);
	b = RATE(1.0, {
		sink += fb_verifier_check(first, &in, &r);
		fb_verify_result_clear(&r);
	});

	/* (c) cached tokens. */
	vo.cache_entries = 4096;
	if (fb_verifier_new(&vo, &cached, &err) != FB_OK)
		die("verifier", &err);
	fb_verifier_set_trusts(cached, make_trusts(ks, 0));
	for (int i = 0; i < CACHED_TOKENS; i++) {
		in.token = tokens[i];
		in.token_len = strlen(tokens[i]);
		if (fb_verifier_check(cached, &in, &r) != FB_VERIFY_ALLOW)
			die("cached check denied", NULL);
		fb_verify_result_clear(&r);
	}
	{
		size_t lens[CACHED_TOKENS];
		unsigned k = 0;
		for (int i = 0; i < CACHED_TOKENS; i++)
			lens[i] = strlen(tokens[i]);
		cc = RATE(2.0, {
			in.token = tokens[k % CACHED_TOKENS];
			in.token_len = lens[k % CACHED_TOKENS];
			k++;
			sink += fb_verifier_check(cached, &in, &r);
			fb_verify_result_clear(&r);
		});

		/* (d) the same with 1M revoked sessions and 10k trusts. */
		if (fb_verifier_new(&vo, &loaded, &err) != FB_OK)
			die("verifier", &err);
		fb_verifier_set_trusts(loaded, make_trusts(ks, 10000));
		for (int i = 0; i < 1000000; i++) {
			char rs[32];
			(void)snprintf(rs, sizeof(rs), "revoked%015d", i);
			if (fb_verifier_revoke(loaded, FB_REVOKE_SESSION, rs, now + 3600) != FB_OK)
				die("revoke", NULL);
		}
		for (int i = 0; i < CACHED_TOKENS; i++) {
			in.token = tokens[i];
			in.token_len = lens[i];
			if (fb_verifier_check(loaded, &in, &r) != FB_VERIFY_ALLOW)
				die("loaded check denied", NULL);
			fb_verify_result_clear(&r);
		}
		d = RATE(2.0, {
			in.token = tokens[k % CACHED_TOKENS];
			in.token_len = lens[k % CACHED_TOKENS];
			k++;
			sink += fb_verifier_check(loaded, &in, &r);
			fb_verify_result_clear(&r);
		});
	}

	/* (e) issuance vs raw signing of an input of the same size. */
	c.sid = "benchsession0000000000";
	e = RATE(1.0, {
		char *t = NULL;
		sink += fb_token_issue(key, &c, &t, NULL) == FB_OK;
		free(t);
	});
	raw_sign = RATE(1.0, {
		unsigned char out[80];
		size_t ol = sizeof(out);
		md = EVP_MD_CTX_new();
		sink += EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
		    EVP_DigestSign(md, out, &ol, (const unsigned char *)tokens[0],
		        (size_t)(dot - tokens[0])) == 1;
		EVP_MD_CTX_free(md);
	});

	printf("(a) raw EVP verify            %12.0f /s\n", a);
	printf(
	    "(b) first-seen checks         %12.0f /s   (b)/(a) = %.2f  target >= 0.90\n", b, b / a);
	printf("(c) cached checks, 1 thread   %12.0f /s   target >= 5,000,000\n", cc);
	printf("(d) cached, 1M revoked, 10k trusts %7.0f /s   (d)/(c) = %.2f  target >= 0.90\n", d,
	    d / cc);
	printf("(e) issuance                  %12.0f /s   raw sign %.0f /s, (e)/raw = %.2f  "
	       "target >= 0.90\n",
	    e, raw_sign, e / raw_sign);
	(void)sink;

	for (int i = 0; i < CACHED_TOKENS; i++)
		free(tokens[i]);
	json_decref(c.attrs);
	fb_verifier_free(first);
	fb_verifier_free(cached);
	fb_verifier_free(loaded);
	fb_verify_keyset_unref(ks);
	fb_signing_key_free(key);
	EVP_PKEY_free(pkey);
	free(jwks);
	(void)unlink(path);
	(void)rmdir(dir);
	return 0;
}
