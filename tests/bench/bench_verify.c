/*
 * Relay check benchmark: prints figures with the baseline measured in the
 * same run and the ratio. Not a test: nothing here passes or fails.
 *
 *   (a) raw OpenSSL EVP verify of the same ES256 signature
 *   (b) first-seen token checks (full parse + signature), vs (a)
 *   (c) checks of cached tokens, one thread
 *   (d) (c) with 1,000,000 revoked sessions and 10,000 trusts loaded, vs (c)
 *   (e) issuance vs raw signing
 *   (g) (c) with the receiving tenant's inbound policy (a mapping rule), vs (c)
 *
 * Each pair is measured in alternating rounds and compared by medians, so a
 * busy neighbour slows both sides alike.
 */
#include "fb_federation.h"

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
#define ROUNDS 9

struct bench {
	EVP_PKEY *pkey;
	struct fb_signing_key *key;
	char *tokens[CACHED_TOKENS];
	size_t lens[CACHED_TOKENS];
	unsigned char sig[64];
	size_t signed_len; /* header.payload of tokens[0] */
	struct fb_verifier *first, *cached, *loaded, *policed;
	struct fb_verify_input in;
	struct fb_token_claims claims;
	unsigned k;
	volatile int sink;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what, const struct fb_err *err)
{
	fprintf(stderr, "bench_verify: %s: %s\n", what, err ? err->msg : "");
	exit(1);
}

/* Operations per second of fn over at least secs. */
static double
rate(void (*fn)(struct bench *), struct bench *b, double secs)
{
	double t0 = now_s(), t;
	unsigned long n = 0;

	do {
		for (int i = 0; i < 32; i++)
			fn(b);
		n += 32;
	} while ((t = now_s() - t0) < secs);
	return (double)n / t;
}

static int
cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, c = *(const double *)y;

	return (a > c) - (a < c);
}

/* Alternating rounds of base and op; medians of each. */
static void
paired(void (*base)(struct bench *), void (*op)(struct bench *), struct bench *b, double secs,
    double *base_rate, double *op_rate)
{
	double rb[ROUNDS], ro[ROUNDS];

	for (int i = 0; i < ROUNDS; i++) {
		rb[i] = rate(base, b, secs);
		ro[i] = rate(op, b, secs);
	}
	qsort(rb, ROUNDS, sizeof(double), cmp_double);
	qsort(ro, ROUNDS, sizeof(double), cmp_double);
	*base_rate = rb[ROUNDS / 2];
	*op_rate = ro[ROUNDS / 2];
}

/* (a): r||s to DER and EVP verify, the way a program using OpenSSL directly would. */
static void
op_raw_verify(struct bench *b)
{
	unsigned char der[80], *p = der;
	BIGNUM *r = BN_bin2bn(b->sig, 32, NULL), *s = BN_bin2bn(b->sig + 32, 32, NULL);
	ECDSA_SIG *es = ECDSA_SIG_new();
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int len;

	ECDSA_SIG_set0(es, r, s);
	len = i2d_ECDSA_SIG(es, &p);
	b->sink += EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, b->pkey) == 1 &&
	    EVP_DigestVerify(
	        md, der, (size_t)len, (const unsigned char *)b->tokens[0], b->signed_len) == 1;
	EVP_MD_CTX_free(md);
	ECDSA_SIG_free(es);
}

static void
op_check(struct fb_verifier *v, struct bench *b, unsigned idx)
{
	struct fb_verify_result r;

	b->in.token = b->tokens[idx];
	b->in.token_len = b->lens[idx];
	b->sink += fb_verifier_check(v, &b->in, &r);
	fb_verify_result_clear(&r);
}

static void
op_first(struct bench *b)
{
	op_check(b->first, b, 0);
}

static void
op_cached(struct bench *b)
{
	op_check(b->cached, b, b->k++ % CACHED_TOKENS);
}

static void
op_loaded(struct bench *b)
{
	op_check(b->loaded, b, b->k++ % CACHED_TOKENS);
}

static void
op_policed(struct bench *b)
{
	op_check(b->policed, b, b->k++ % CACHED_TOKENS);
}

/* The receiving tenant's rules: one trust toward REMOTE with an inbound rule. */
static struct fb_rules *
make_rules(struct fb_conf **conf)
{
	static const char text[] =
	    "installation: {name: installation_B, domain: b.example, public_url: "
	    "https://sso.b.example, listen: 127.0.0.1:8080}\n"
	    "keys: {signing: [k.pem], fid_secret: fid.secret}\n"
	    "store: \"memory:\"\n"
	    "tenants:\n"
	    "  - id: " LOCAL "\n"
	    "    providers: [{name: kc, type: oidc, issuer: https://kc.b.example, client_id: x, "
	    "client_secret_file: s}]\n"
	    "    mapping: [{provider: kc, fid: pairwise(claims.sub)}]\n"
	    "    trusts:\n"
	    "      - {remote: installation_A, tenants: [" REMOTE "], relay: a.example:443, ca: c, "
	    "client_cert: c, client_key: k, keys: k, issuer: " ISSUER ",\n"
	    "         inbound: \"token.attrs.department in ['sales', 'legal']\"}\n";
	struct fb_conf_diags d = { 0 };
	struct fb_rules *r = NULL;

	*conf = fb_conf_load_buffer(
	    text, sizeof(text) - 1, "bench.yaml", "/nonexistent", FB_CONF_NO_FS, &d);
	if (*conf == NULL || fb_rules_compile(*conf, NULL, &r, &d) != FB_OK)
		die(d.n ? d.v[0].msg : "rules", NULL);
	fb_conf_diags_free(&d);
	return r;
}

static void
op_issue(struct bench *b)
{
	char *t = NULL;

	b->sink += fb_token_issue(b->key, &b->claims, &t, NULL) == FB_OK;
	free(t);
}

static void
op_raw_sign(struct bench *b)
{
	unsigned char out[80];
	size_t ol = sizeof(out);
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	b->sink += EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, b->pkey) == 1 &&
	    EVP_DigestSign(md, out, &ol, (const unsigned char *)b->tokens[0], b->signed_len) == 1;
	EVP_MD_CTX_free(md);
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
		if ((issuers[i] = malloc(64)) == NULL)
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

static struct fb_verifier *
make_verifier(struct bench *b, struct fb_verify_keyset *ks, size_t cache, size_t extra_trusts)
{
	struct fb_verify_opts vo = {
		.clock_skew = 30, .max_lifetime = 900, .max_token = 8192, .cache_entries = cache
	};
	struct fb_verifier *v = NULL;
	struct fb_verify_result r;
	struct fb_err err = { 0 };

	if (fb_verifier_new(&vo, &v, &err) != FB_OK)
		die("verifier", &err);
	fb_verifier_set_trusts(v, make_trusts(ks, extra_trusts));
	for (int i = 0; i < CACHED_TOKENS; i++) {
		b->in.token = b->tokens[i];
		b->in.token_len = b->lens[i];
		if (fb_verifier_check(v, &b->in, &r) != FB_VERIFY_ALLOW)
			die("a benchmark token was denied", NULL);
		fb_verify_result_clear(&r);
	}
	return v;
}

/*
 * --sweep: the cached check against the number of revocations and of trusts,
 * each point paired with the plain cached check (no revocation, one trust) of
 * the same run. One line per point, for scripts/perf-report.sh to plot.
 */
static void
sweep(struct bench *b, struct fb_verify_keyset *ks)
{
	static const size_t revs[] = { 0, 1000, 10000, 100000, 1000000 };
	static const size_t trusts[] = { 1, 10, 100, 1000, 10000 };
	double base, x;

	for (size_t i = 0; i < sizeof(revs) / sizeof(revs[0]); i++) {
		struct fb_verifier *v = make_verifier(b, ks, 4096, 0);
		for (size_t r = 0; r < revs[i]; r++) {
			char rs[32];
			(void)snprintf(rs, sizeof(rs), "revoked%015zu", r);
			if (fb_verifier_revoke(v, FB_REVOKE_SESSION, rs, time(NULL) + 3600) !=
			    FB_OK)
				die("revoke", NULL);
		}
		b->loaded = v;
		paired(op_cached, op_loaded, b, 0.3, &base, &x);
		printf("sweep revocations %zu trusts 1 checks_per_s %.0f baseline_per_s %.0f "
		       "ratio %.2f\n",
		    revs[i], x, base, x / base);
		fb_verifier_free(v);
	}
	for (size_t i = 0; i < sizeof(trusts) / sizeof(trusts[0]); i++) {
		struct fb_verifier *v = make_verifier(b, ks, 4096, trusts[i] - 1);
		b->loaded = v;
		paired(op_cached, op_loaded, b, 0.3, &base, &x);
		printf("sweep revocations 0 trusts %zu checks_per_s %.0f baseline_per_s %.0f "
		       "ratio %.2f\n",
		    trusts[i], x, base, x / base);
		fb_verifier_free(v);
	}
	b->loaded = NULL;
}

int
main(int argc, char **argv)
{
	char dir[] = "/tmp/fb-bench.XXXXXX", path[64], sid[32], *jwks = NULL;
	struct fb_verify_keyset *ks = NULL;
	struct fb_err err = { 0 };
	unsigned char cnf[32];
	double a, bb, c, d, e, raw, c2, g;
	struct fb_conf *rules_conf = NULL;
	struct fb_rules *rules = make_rules(&rules_conf);
	struct bench *b = calloc(1, sizeof(*b));
	const char *dot;
	size_t n = 0;
	FILE *f;

	if (b == NULL || mkdtemp(dir) == NULL)
		die("setup", NULL);
	(void)snprintf(path, sizeof(path), "%s/signing.pem", dir);
	if (fb_keys_generate(path, FB_ALG_ES256, &err) != FB_OK ||
	    fb_signing_key_load(path, &b->key, &err) != FB_OK ||
	    fb_keys_jwks(&b->key, NULL, 1, &jwks, &err) != FB_OK ||
	    fb_verify_keyset_from_jwks(jwks, strlen(jwks), &ks, &err) != FB_OK)
		die("keys", &err);
	if ((f = fopen(path, "r")) == NULL ||
	    (b->pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL)
		die("raw key", NULL);
	fclose(f);
	(void)fb_random_bytes(cnf, sizeof(cnf));

	b->claims.iss = ISSUER;
	b->claims.sub = "fid:0/" REMOTE "/100401";
	b->claims.tid = REMOTE;
	b->claims.aud = LOCAL;
	b->claims.cnf_sha256 = cnf;
	b->claims.iat = time(NULL);
	b->claims.ttl = 300;
	b->claims.attrs =
	    json_pack("{s:s, s:s}", "email", "alice@a.example", "department", "sales");
	for (int i = 0; i < CACHED_TOKENS; i++) {
		(void)snprintf(sid, sizeof(sid), "benchsession%010d", i);
		b->claims.sid = sid;
		if (fb_token_issue(b->key, &b->claims, &b->tokens[i], &err) != FB_OK)
			die("issue", &err);
		b->lens[i] = strlen(b->tokens[i]);
	}
	b->claims.sid = "benchsession0000000000";
	dot = strrchr(b->tokens[0], '.');
	b->signed_len = (size_t)(dot - b->tokens[0]);
	if (fb_b64url_decode(dot + 1, strlen(dot + 1), b->sig, sizeof(b->sig), &n) != FB_OK)
		die("signature", NULL);
	b->in.receiving_tenant = LOCAL;
	b->in.peer_cert_sha256 = cnf;
	b->in.now = time(NULL);

	b->first = make_verifier(b, ks, 0, 0);
	b->cached = make_verifier(b, ks, 4096, 0);
	if (argc > 1 && strcmp(argv[1], "--sweep") == 0) {
		sweep(b, ks);
		goto out;
	}
	b->loaded = make_verifier(b, ks, 4096, 10000);
	b->policed = make_verifier(b, ks, 4096, 0);
	fb_verifier_set_policy(b->policed, fb_bridge_inbound_policy, rules);
	for (int i = 0; i < 1000000; i++) {
		char rs[32];
		(void)snprintf(rs, sizeof(rs), "revoked%015d", i);
		if (fb_verifier_revoke(b->loaded, FB_REVOKE_SESSION, rs, time(NULL) + 3600) !=
		    FB_OK)
			die("revoke", NULL);
	}
	printf("token: %zu bytes, ES256; cached runs cycle %d tokens; %zu revocations, 10,001 "
	       "trusts in (d)\n",
	    b->lens[0], CACHED_TOKENS, fb_verifier_revoked_count(b->loaded));

	paired(op_raw_verify, op_first, b, 0.4, &a, &bb);
	paired(op_cached, op_loaded, b, 0.4, &c, &d);
	paired(op_raw_sign, op_issue, b, 0.4, &raw, &e);
	paired(op_cached, op_policed, b, 0.4, &c2, &g);
	printf("(a) raw EVP verify                 %10.0f /s\n", a);
	printf("(b) first-seen checks              %10.0f /s   (b)/(a) = %.2f  target >= 0.90\n",
	    bb, bb / a);
	printf("(c) cached checks, 1 thread        %10.0f /s   target >= 5,000,000\n", c);
	printf("(d) cached, 1M revoked, 10k trusts %10.0f /s   (d)/(c) = %.2f  target >= 0.90\n", d,
	    d / c);
	printf("(e) issuance                       %10.0f /s   raw sign %.0f /s, (e)/raw = %.2f  "
	       "target >= 0.90\n",
	    e, raw, e / raw);
	printf("(g) cached, with inbound policy    %10.0f /s   (g)/(c) = %.2f  target >= 0.90\n", g,
	    g / c2);

out:
	for (int i = 0; i < CACHED_TOKENS; i++)
		free(b->tokens[i]);
	json_decref(b->claims.attrs);
	fb_verifier_free(b->first);
	fb_verifier_free(b->cached);
	fb_verifier_free(b->loaded);
	fb_verifier_free(b->policed);
	fb_rules_free(rules);
	fb_conf_unref(rules_conf);
	fb_verify_keyset_unref(ks);
	fb_signing_key_free(b->key);
	EVP_PKEY_free(b->pkey);
	free(jwks);
	free(b);
	(void)unlink(path);
	(void)rmdir(dir);
	return 0;
}
