/*
 * The relay check. First sight of a token: strict parse, key lookup,
 * signature, then the per-check rules. Later sights of the same bytes hit a
 * bounded cache of verified claims and run only the per-check rules (time,
 * audience and tenant, certificate binding, sender, revocation, policy).
 */
#include "verify_int.h"
#include "verify_trusts.h"

#include <jansson.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CACHE_WAYS 4
#define HEADER_MAX 512

static const char *const reason_names[FB_VERIFY_REASONS] = { "allow", "malformed", "bad_signature",
	"unknown_key", "untrusted_issuer", "wrong_tenant", "wrong_audience", "expired",
	"not_yet_valid", "cert_mismatch", "sender_mismatch", "revoked", "policy_denied" };

const char *
fb_verify_reason_name(enum fb_verify_reason reason)
{
	return (unsigned)reason < FB_VERIFY_REASONS ? reason_names[reason] : "unknown";
}

const char *
fb_verify_alg_name(enum fb_verify_alg alg)
{
	return alg == FB_ALG_EDDSA ? "EdDSA" : "ES256";
}

/* ---- hashing ---- */

static inline uint64_t
read64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t
mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* Four independent lanes keep the multiplier busy on long tokens. */
uint64_t
verify_hash(uint64_t seed, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t a = seed ^ 0x9e3779b97f4a7c15ULL, b = seed + len, c = ~seed, d = seed * 31;
	const uint64_t k = 0x87c37b91114253d5ULL;
	size_t i = 0;
	unsigned char tail[8] = { 0 };

	for (; i + 32 <= len; i += 32) {
		a = (a ^ read64(p + i)) * k;
		b = (b ^ read64(p + i + 8)) * k;
		c = (c ^ read64(p + i + 16)) * k;
		d = (d ^ read64(p + i + 24)) * k;
		a ^= a >> 29;
		b ^= b >> 29;
		c ^= c >> 29;
		d ^= d >> 29;
	}
	for (; i + 8 <= len; i += 8)
		a = mix(a ^ read64(p + i));
	if (i < len) {
		memcpy(tail, p + i, len - i);
		b = mix(b ^ read64(tail));
	}
	return mix(a ^ mix(b) ^ (c * 3) ^ (d * 5) ^ len);
}

/* ---- verified claims, shared by the cache and results ---- */

struct claims {
	atomic_uint refs;
	char *token; /* the exact bytes verified */
	size_t token_len;
	uint64_t hash;
	const struct trust_issuer *issuer; /* valid while trusts_gen matches */
	uint64_t trusts_gen;
	char *iss, *sub, *tid, *aud, *sid, *jti, *attrs_json;
	int64_t iat, nbf, exp;
	unsigned char cnf[FB_VERIFY_SHA256_LEN];
	uint64_t h_sid, h_isid, h_sub, h_tid; /* revocation keys, computed once */
	/* Revocation memo: not revoked as of rev_gen (guarded by the cache set lock). */
	uint64_t rev_gen;
	bool revoked;
	json_t *payload; /* the verified claims, for the inbound policy (read-only once shared) */
	/* The policy's answer for this token: (policy_gen << 1) | allow; 0 when not asked. */
	_Atomic uint64_t policy_memo;
	char mem[]; /* the token and every string above, in one allocation */
};

static void
claims_unref(struct claims *c)
{
	if (c == NULL || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	json_decref(c->payload);
	free(c); /* strings live in c->mem */
}

/* ---- revoked set: open addressing over keyed 64-bit hashes ---- */

struct revoked_slot {
	uint64_t key; /* 0: empty */
	int64_t until;
};

struct revoked_set {
	pthread_rwlock_t lock;
	struct revoked_slot *slots;
	size_t cap, n;
	int64_t before; /* tokens with iat < before are revoked */
	/* Per tenant: tokens of that tid with iat < before (few; scanned on a memo miss). */
	struct tenant_before {
		uint64_t h_tid;
		int64_t before;
	} * tenant_before;
	size_t n_tenant_before;
	atomic_uint_fast64_t gen; /* bumped on every change */
};

/* ---- the cache: set-associative, bounded by construction ---- */

struct cache_set {
	atomic_flag lock;
	struct claims *way[CACHE_WAYS];
};

struct fb_verifier {
	struct fb_verify_opts opts;
	uint64_t seed;
	pthread_rwlock_t trusts_lock;
	struct fb_verify_trusts *trusts;
	uint64_t trusts_gen;
	fb_verify_policy_fn policy;
	void *policy_arg;
	uint64_t policy_gen; /* changes with every fb_verifier_set_policy; starts at 1 */
	struct cache_set *sets;
	size_t n_sets; /* power of two, or 0 */
	struct revoked_set rev;
	atomic_uint_fast64_t checks, hits, signatures;
};

static inline void
set_lock(struct cache_set *s)
{
	while (atomic_flag_test_and_set_explicit(&s->lock, memory_order_acquire))
		;
}

static inline void
set_unlock(struct cache_set *s)
{
	atomic_flag_clear_explicit(&s->lock, memory_order_release);
}

fb_rc
fb_verifier_new(const struct fb_verify_opts *opts, struct fb_verifier **out, struct fb_err *err)
{
	struct fb_verifier *v;
	size_t sets = 0;

	if (opts->max_token == 0 || opts->max_token > FB_VERIFY_MAX_TOKEN)
		return FB_ERR_SET(err, FB_ERR_INVALID, "token size cap must be 1 to %d bytes",
		    FB_VERIFY_MAX_TOKEN);
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	v->opts = *opts;
	(void)fb_random_bytes(&v->seed, sizeof(v->seed));
	pthread_rwlock_init(&v->trusts_lock, NULL);
	pthread_rwlock_init(&v->rev.lock, NULL);
	if (opts->cache_entries > 0) {
		sets = 1;
		while (sets * CACHE_WAYS < opts->cache_entries)
			sets *= 2;
		if ((v->sets = calloc(sets, sizeof(*v->sets))) == NULL) {
			fb_verifier_free(v);
			return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		}
		for (size_t i = 0; i < sets; i++)
			atomic_flag_clear(&v->sets[i].lock);
		v->n_sets = sets;
	}
	*out = v;
	return FB_OK;
}

void
fb_verifier_free(struct fb_verifier *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; v->sets != NULL && i < v->n_sets; i++)
		for (size_t w = 0; w < CACHE_WAYS; w++)
			claims_unref(v->sets[i].way[w]);
	free(v->sets);
	fb_verify_trusts_free(v->trusts);
	free(v->rev.slots);
	free(v->rev.tenant_before);
	pthread_rwlock_destroy(&v->trusts_lock);
	pthread_rwlock_destroy(&v->rev.lock);
	free(v);
}

void
fb_verifier_set_trusts(struct fb_verifier *v, struct fb_verify_trusts *t)
{
	struct fb_verify_trusts *old;

	/* The write lock waits for checks that use the old table; cached claims
	 * that point into it are re-verified, since their generation is stale. */
	pthread_rwlock_wrlock(&v->trusts_lock);
	old = v->trusts;
	v->trusts = t;
	v->trusts_gen++;
	pthread_rwlock_unlock(&v->trusts_lock);
	fb_verify_trusts_free(old);
}

void
fb_verifier_set_policy(struct fb_verifier *v, fb_verify_policy_fn fn, void *arg)
{
	pthread_rwlock_wrlock(&v->trusts_lock);
	v->policy = fn;
	v->policy_arg = arg;
	v->policy_gen++;
	pthread_rwlock_unlock(&v->trusts_lock);
}

void
fb_verifier_set_limits(struct fb_verifier *v, const struct fb_verify_opts *opts)
{
	pthread_rwlock_wrlock(&v->trusts_lock);
	v->opts.clock_skew = opts->clock_skew;
	v->opts.max_lifetime = opts->max_lifetime;
	if (opts->max_token > 0 && opts->max_token <= FB_VERIFY_MAX_TOKEN)
		v->opts.max_token = opts->max_token;
	pthread_rwlock_unlock(&v->trusts_lock);
}

void
fb_verifier_stats(struct fb_verifier *v, struct fb_verify_stats *out)
{
	out->checks = atomic_load(&v->checks);
	out->cache_hits = atomic_load(&v->hits);
	out->signatures = atomic_load(&v->signatures);
}

/* ---- revocation ---- */

/* The key kind of one issuer's session: apart from the public kinds. */
#define REVOKE_KEY_ISSUER_SESSION 3

static uint64_t
revoke_key(uint64_t seed, unsigned kind, const char *value, size_t len)
{
	uint64_t h = verify_hash(seed + (uint64_t)kind * 0x9e3779b97f4a7c15ULL, value, len);

	return h ? h : 1; /* 0 marks an empty slot */
}

/* This key covers the issuer too: one installation cannot name another's session. */
static uint64_t
issuer_session_key(uint64_t seed, const char *issuer, const char *sid)
{
	return revoke_key(
	    verify_hash(seed, issuer, strlen(issuer)), REVOKE_KEY_ISSUER_SESSION, sid, strlen(sid));
}

static bool
revoked_has(const struct revoked_set *r, uint64_t key, int64_t now)
{
	size_t mask, i;

	if (r->n == 0)
		return false;
	mask = r->cap - 1;
	for (i = key & mask; r->slots[i].key != 0; i = (i + 1) & mask)
		if (r->slots[i].key == key)
			return r->slots[i].until >= now;
	return false;
}

static fb_rc
revoked_grow(struct revoked_set *r, int64_t now)
{
	size_t ncap = r->cap ? r->cap * 2 : 1024, mask = ncap - 1, kept = 0;
	struct revoked_slot *ns = calloc(ncap, sizeof(*ns));

	if (ns == NULL)
		return FB_ERR_NOMEM;
	for (size_t i = 0; i < r->cap; i++) {
		size_t j;
		if (r->slots[i].key == 0 || r->slots[i].until < now)
			continue; /* forgotten: nothing it could affect is still valid */
		for (j = r->slots[i].key & mask; ns[j].key != 0; j = (j + 1) & mask)
			;
		ns[j] = r->slots[i];
		kept++;
	}
	free(r->slots);
	r->slots = ns;
	r->cap = ncap;
	r->n = kept;
	return FB_OK;
}

static fb_rc
revoke_key_add(struct fb_verifier *v, uint64_t key, time_t until)
{
	struct revoked_set *r = &v->rev;
	size_t i, mask;
	fb_rc rc = FB_OK;

	pthread_rwlock_wrlock(&r->lock);
	if ((r->n + 1) * 2 > r->cap)
		rc = revoked_grow(r, (int64_t)time(NULL));
	if (rc == FB_OK) {
		mask = r->cap - 1;
		for (i = key & mask; r->slots[i].key != 0 && r->slots[i].key != key;
		     i = (i + 1) & mask)
			;
		if (r->slots[i].key == 0) {
			r->slots[i].key = key;
			r->slots[i].until = until;
			r->n++;
		} else if (r->slots[i].until < until) {
			r->slots[i].until = until;
		}
		atomic_fetch_add(&r->gen, 1);
	}
	pthread_rwlock_unlock(&r->lock);
	return rc;
}

fb_rc
fb_verifier_revoke(
    struct fb_verifier *v, enum fb_verify_revoke_kind kind, const char *value, time_t until)
{
	if ((kind != FB_REVOKE_SESSION && kind != FB_REVOKE_FID && kind != FB_REVOKE_TENANT) ||
	    value == NULL)
		return FB_ERR_INVALID;
	return revoke_key_add(v, revoke_key(v->seed, kind, value, strlen(value)), until);
}

fb_rc
fb_verifier_revoke_session(struct fb_verifier *v, const char *issuer, const char *sid, time_t until)
{
	if (issuer == NULL || sid == NULL)
		return FB_ERR_INVALID;
	return revoke_key_add(v, issuer_session_key(v->seed, issuer, sid), until);
}

void
fb_verifier_revoke_before(struct fb_verifier *v, time_t t)
{
	pthread_rwlock_wrlock(&v->rev.lock);
	if ((int64_t)t > v->rev.before)
		v->rev.before = (int64_t)t;
	atomic_fetch_add(&v->rev.gen, 1);
	pthread_rwlock_unlock(&v->rev.lock);
}

fb_rc
fb_verifier_revoke_tenant_before(struct fb_verifier *v, const char *tenant, time_t t)
{
	uint64_t key = revoke_key(v->seed, FB_REVOKE_TENANT, tenant, strlen(tenant));
	struct revoked_set *r = &v->rev;
	struct tenant_before *nv;
	fb_rc rc = FB_OK;
	size_t i;

	pthread_rwlock_wrlock(&r->lock);
	for (i = 0; i < r->n_tenant_before && r->tenant_before[i].h_tid != key; i++)
		;
	if (i == r->n_tenant_before) {
		nv = realloc(r->tenant_before, (i + 1) * sizeof(*nv));
		if (nv == NULL) {
			rc = FB_ERR_NOMEM;
		} else {
			r->tenant_before = nv;
			nv[i] = (struct tenant_before){ key, (int64_t)t };
			r->n_tenant_before++;
		}
	} else if (r->tenant_before[i].before < (int64_t)t) {
		r->tenant_before[i].before = (int64_t)t;
	}
	atomic_fetch_add(&r->gen, 1);
	pthread_rwlock_unlock(&r->lock);
	return rc;
}

size_t
fb_verifier_revoked_count(struct fb_verifier *v)
{
	size_t n;

	pthread_rwlock_rdlock(&v->rev.lock);
	n = v->rev.n;
	pthread_rwlock_unlock(&v->rev.lock);
	return n;
}

/* Revoked? Memoised per claims against the set's generation (caller holds the set lock). */
static bool
claims_revoked(struct fb_verifier *v, struct claims *c, int64_t now)
{
	uint64_t gen = atomic_load_explicit(&v->rev.gen, memory_order_acquire);
	bool revoked;

	if (c->revoked)
		return true;
	if (c->rev_gen == gen && gen != 0)
		return false;
	pthread_rwlock_rdlock(&v->rev.lock);
	gen = atomic_load_explicit(&v->rev.gen, memory_order_relaxed);
	revoked = c->iat < v->rev.before || revoked_has(&v->rev, c->h_sid, now) ||
	    revoked_has(&v->rev, c->h_isid, now) || revoked_has(&v->rev, c->h_sub, now) ||
	    revoked_has(&v->rev, c->h_tid, now);
	for (size_t i = 0; !revoked && i < v->rev.n_tenant_before; i++)
		revoked = v->rev.tenant_before[i].h_tid == c->h_tid &&
		    c->iat < v->rev.tenant_before[i].before;
	pthread_rwlock_unlock(&v->rev.lock);
	if (revoked)
		c->revoked = true;
	else
		c->rev_gen = gen;
	return revoked;
}

/* ---- strict parsing ---- */

#define DENY(r, why)                                                                               \
	do {                                                                                       \
		out->reason = (r);                                                                 \
		out->detail = (why);                                                               \
		goto done;                                                                         \
	} while (0)

static bool
json_str(json_t *obj, const char *name, const char **out, size_t max)
{
	json_t *v = json_object_get(obj, name);

	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return false;
	*out = json_string_value(v);
	return true;
}

static bool
json_int(json_t *obj, const char *name, int64_t *out)
{
	json_t *v = json_object_get(obj, name);

	if (!json_is_integer(v))
		return false;
	*out = (int64_t)json_integer_value(v);
	return *out >= 0;
}

bool
fb_verify_attrs_valid(json_t *attrs)
{
	const char *key;
	json_t *val, *item;
	size_t i;

	if (!json_is_object(attrs))
		return false;
	json_object_foreach(attrs, key, val)
	{
		if (json_is_string(val))
			continue;
		if (!json_is_array(val))
			return false;
		json_array_foreach(val, i, item) if (!json_is_string(item)) return false;
	}
	return true;
}

/*
 * {"alg":"ES256"|"EdDSA","typ":"fed+jwt","kid":"<base64url chars>"} exactly, as
 * fedbridge writes it: the members are then known without a JSON parse. Any
 * other spelling goes through the strict parser.
 */
static bool
canonical_header(unsigned char *h, size_t n, enum fb_verify_alg *alg, const char **kid)
{
	static const char es[] = "{\"alg\":\"ES256\",\"typ\":\"fed+jwt\",\"kid\":\"";
	static const char ed[] = "{\"alg\":\"EdDSA\",\"typ\":\"fed+jwt\",\"kid\":\"";
	const size_t plen = sizeof(es) - 1; /* both prefixes have the same length */
	char *k = (char *)h + plen;
	size_t klen;

	if (n < plen + 3 || h[n - 2] != '"' || h[n - 1] != '}')
		return false;
	if (memcmp(h, es, plen) == 0)
		*alg = FB_ALG_ES256;
	else if (memcmp(h, ed, plen) == 0)
		*alg = FB_ALG_EDDSA;
	else
		return false;
	klen = n - plen - 2;
	if (klen > FB_VERIFY_KID_MAX)
		return false;
	for (size_t i = 0; i < klen; i++) {
		unsigned char c = (unsigned char)k[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		        c == '-' || c == '_'))
			return false;
	}
	k[klen] = '\0'; /* ends the kid where its closing quote was */
	*kid = k;
	return true;
}

static bool
claims_known(json_t *payload)
{
	static const char *const known[] = { "iss", "sub", "tid", "aud", "iat", "nbf", "exp", "jti",
		"sid", "cnf", "idp", "acr", "amr", "attrs", "cid", NULL };
	const char *key;
	json_t *val;

	json_object_foreach(payload, key, val)
	{
		bool ok = false;
		for (size_t i = 0; known[i] != NULL && !ok; i++)
			ok = strcmp(key, known[i]) == 0;
		if (!ok)
			return false;
	}
	return true;
}

/* fid:0/<tid>/<local-id>, local id 1 to 128 of [A-Za-z0-9._-] (the fid contract). */
static bool
sub_is_fid_of(const char *sub, const char *tid)
{
	size_t tl = strlen(tid), n;
	const char *local;

	if (strncmp(sub, "fid:0/", 6) != 0 || strncmp(sub + 6, tid, tl) != 0 || sub[6 + tl] != '/')
		return false;
	local = sub + 6 + tl + 1;
	n = strlen(local);
	if (n == 0 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)local[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		        c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* idp and acr are strings, amr a short list of strings, when present. */
static bool
optional_claims_valid(json_t *pl)
{
	const char *s;
	json_t *amr = json_object_get(pl, "amr"), *item;
	size_t i;

	if (json_object_get(pl, "idp") != NULL && !json_str(pl, "idp", &s, 256))
		return false;
	if (json_object_get(pl, "acr") != NULL && !json_str(pl, "acr", &s, 256))
		return false;
	/* cid goes into log lines as it is: a short id of safe characters only. */
	if (json_object_get(pl, "cid") != NULL &&
	    (!json_str(pl, "cid", &s, 64) || *s == '\0' ||
	        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
	            strlen(s)))
		return false;
	if (amr == NULL)
		return true;
	if (!json_is_array(amr) || json_array_size(amr) > 16)
		return false;
	json_array_foreach(amr, i, item) if (!json_is_string(item)) return false;
	return true;
}

/*
 * First sight of a token: everything up to and including the signature.
 * Returns new claims (one reference) or NULL with out->reason set.
 */
static struct claims *
verify_first(struct fb_verifier *v, const struct fb_verify_trusts *trusts, uint64_t trusts_gen,
    const struct fb_verify_input *in, uint64_t hash, struct fb_verify_result *out)
{
	char *attrs_text = NULL, *c_iss, *c_sub, *c_tid, *c_aud, *c_sid, *c_jti, *c_attrs;
	const char *tok = in->token, *dot1, *dot2, *iss, *sub, *tid, *aud, *jti, *sid, *alg, *typ,
	           *kid, *x5t, *key;
	size_t len = in->token_len, n, hlen;
	unsigned char header[HEADER_MAX + 1], sig[96], cnf[FB_VERIFY_SHA256_LEN + 1];
	unsigned char *payload = NULL;
	json_t *hdr = NULL, *pl = NULL, *val, *cnf_obj, *attrs;
	const struct trust_issuer *is;
	const struct verify_key *k;
	struct claims *c = NULL;
	int64_t iat, nbf, exp;
	enum fb_verify_alg want_alg;
	size_t sig_len = 0;

	dot1 = memchr(tok, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok)) : NULL;
	if (dot1 == NULL || dot2 == NULL || dot1 == tok || dot2 == dot1 + 1 ||
	    dot2 + 1 == tok + len || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - tok)) != NULL)
		DENY(FB_VERIFY_MALFORMED, "not a compact JWS of three parts");

	/* Header: canonical base64url, JSON without duplicates, only alg, typ, kid. */
	hlen = (size_t)(dot1 - tok);
	if (hlen > (size_t)HEADER_MAX / 3 * 4 ||
	    fb_b64url_decode(tok, hlen, header, sizeof(header), &n) != FB_OK)
		DENY(FB_VERIFY_MALFORMED, "header is not canonical base64url");
	header[n] = '\0';
	if (canonical_header(header, n, &want_alg, &kid)) {
		/* The exact bytes fedbridge writes: nothing left for a JSON parser to decide. */
	} else {
		hdr = json_loadb((const char *)header, n, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(hdr))
			DENY(FB_VERIFY_MALFORMED, "header is not a JSON object");
		json_object_foreach(hdr, key, val)
		{
			if (strcmp(key, "alg") != 0 && strcmp(key, "typ") != 0 &&
			    strcmp(key, "kid") != 0)
				DENY(FB_VERIFY_MALFORMED, "header member not allowed");
		}
		if (!json_str(hdr, "alg", &alg, 16) || !json_str(hdr, "typ", &typ, 32) ||
		    !json_str(hdr, "kid", &kid, FB_VERIFY_KID_MAX))
			DENY(FB_VERIFY_MALFORMED, "header needs alg, typ and kid");
		/* RFC 7515 4.1.9: media types compare case-insensitively, "application/" optional.
		 */
		if (strncasecmp(typ, "application/", 12) == 0)
			typ += 12;
		if (strcasecmp(typ, "fed+jwt") != 0)
			DENY(FB_VERIFY_MALFORMED, "typ is not fed+jwt");
		if (strcmp(alg, "ES256") == 0)
			want_alg = FB_ALG_ES256;
		else if (strcmp(alg, "EdDSA") == 0)
			want_alg = FB_ALG_EDDSA;
		else
			DENY(FB_VERIFY_MALFORMED, "alg is not ES256 or EdDSA");
	}

	/* Payload. */
	n = (size_t)(dot2 - dot1 - 1);
	if ((payload = malloc(n)) == NULL)
		DENY(FB_VERIFY_MALFORMED, "out of memory");
	if (fb_b64url_decode(dot1 + 1, n, payload, n, &n) != FB_OK)
		DENY(FB_VERIFY_MALFORMED, "payload is not canonical base64url");
	pl = json_loadb((const char *)payload, n, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(pl) || !claims_known(pl))
		DENY(FB_VERIFY_MALFORMED, "payload is not a JSON object of known claims");
	if (!json_str(pl, "iss", &iss, 1024) || !json_str(pl, "sub", &sub, FB_VERIFY_FID_MAX) ||
	    !json_str(pl, "tid", &tid, FB_VERIFY_TENANT_MAX) || !json_str(pl, "jti", &jti, 128) ||
	    !json_str(pl, "sid", &sid, 63) || !json_int(pl, "iat", &iat) ||
	    !json_int(pl, "nbf", &nbf) || !json_int(pl, "exp", &exp))
		DENY(FB_VERIFY_MALFORMED, "a required claim is missing or mistyped");
	if (!json_str(pl, "aud", &aud, FB_VERIFY_TENANT_MAX))
		DENY(FB_VERIFY_MALFORMED, "aud must be one tenantID string");
	cnf_obj = json_object_get(pl, "cnf");
	if (!json_is_object(cnf_obj) || json_object_size(cnf_obj) != 1 ||
	    !json_str(cnf_obj, "x5t#S256", &x5t, 43) ||
	    fb_b64url_decode(x5t, strlen(x5t), cnf, sizeof(cnf), &n) != FB_OK ||
	    n != FB_VERIFY_SHA256_LEN)
		DENY(FB_VERIFY_MALFORMED, "cnf must hold x5t#S256, a SHA-256 thumbprint");
	/* sub is a fid of the tenant tid names: a remote speaks only for its own users. */
	if (!sub_is_fid_of(sub, tid))
		DENY(FB_VERIFY_MALFORMED, "sub is not a fid of tenant tid");
	if (!optional_claims_valid(pl))
		DENY(FB_VERIFY_MALFORMED, "idp, acr, amr or cid is mistyped");
	attrs = json_object_get(pl, "attrs");
	if (attrs == NULL || !fb_verify_attrs_valid(attrs))
		DENY(FB_VERIFY_MALFORMED, "attrs must map names to strings or lists of strings");

	/* Issuer and key: only the trust's own keys, with the alg registered for them. */
	if ((is = verify_trusts_issuer(trusts, iss, strlen(iss))) == NULL)
		DENY(FB_VERIFY_UNTRUSTED_ISSUER, "iss is not a trusted issuer");
	if ((k = verify_keyset_find(is->keys, kid, strlen(kid))) == NULL)
		DENY(FB_VERIFY_UNKNOWN_KEY, "kid is not among the issuer's keys");
	if (k->alg != want_alg)
		DENY(FB_VERIFY_BAD_SIGNATURE, "alg is not the one registered for this key");
	/* A key signs nothing after its exp: a token claiming otherwise is not its. */
	if (k->exp != 0 && iat - v->opts.clock_skew > k->exp)
		DENY(FB_VERIFY_UNKNOWN_KEY, "the key had expired when the token was issued");
	if (fb_b64url_decode(
	        dot2 + 1, len - (size_t)(dot2 + 1 - tok), sig, sizeof(sig), &sig_len) != FB_OK)
		DENY(FB_VERIFY_MALFORMED, "signature is not canonical base64url");
	atomic_fetch_add_explicit(&v->signatures, 1, memory_order_relaxed);
	if (!verify_signature(k, (const unsigned char *)tok, (size_t)(dot2 - tok), sig, sig_len))
		DENY(FB_VERIFY_BAD_SIGNATURE, "signature does not verify");

	/* One allocation holds the claims, the token bytes and every string. */
	if ((attrs_text = json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		DENY(FB_VERIFY_MALFORMED, "out of memory");
	{
		const char *strs[] = { iss, sub, tid, aud, sid, jti, attrs_text };
		char **dst[] = { &c_iss, &c_sub, &c_tid, &c_aud, &c_sid, &c_jti, &c_attrs };
		size_t total = sizeof(*c) + len, at;

		for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
			total += strlen(strs[i]) + 1;
		if ((c = calloc(1, total)) == NULL)
			DENY(FB_VERIFY_MALFORMED, "out of memory");
		memcpy(c->mem, tok, len);
		at = len;
		for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
			size_t sl = strlen(strs[i]) + 1;
			memcpy(c->mem + at, strs[i], sl);
			*dst[i] = c->mem + at;
			at += sl;
		}
	}
	atomic_init(&c->refs, 1);
	c->token = c->mem;
	c->iss = c_iss;
	c->sub = c_sub;
	c->tid = c_tid;
	c->aud = c_aud;
	c->sid = c_sid;
	c->jti = c_jti;
	c->attrs_json = c_attrs;
	c->token_len = len;
	c->hash = hash;
	c->issuer = is;
	c->trusts_gen = trusts_gen;
	c->iat = iat;
	c->nbf = nbf;
	c->exp = exp;
	memcpy(c->cnf, cnf, sizeof(c->cnf));
	c->payload = pl;
	pl = NULL;
	c->h_sid = revoke_key(v->seed, FB_REVOKE_SESSION, sid, strlen(sid));
	c->h_isid = issuer_session_key(v->seed, iss, sid);
	c->h_sub = revoke_key(v->seed, FB_REVOKE_FID, sub, strlen(sub));
	c->h_tid = revoke_key(v->seed, FB_REVOKE_TENANT, tid, strlen(tid));
done:
	free(attrs_text);
	json_decref(hdr);
	json_decref(pl);
	free(payload);
	return c;
}

/* The rules every check runs, cached or not, but the policy (run outside the cache lock). */
static enum fb_verify_reason
check_claims(struct fb_verifier *v, struct claims *c, const struct fb_verify_input *in,
    struct fb_verify_result *out)
{
	const struct trust_local *l;
	int64_t now = (int64_t)in->now, skew = v->opts.clock_skew, exp;

	out->fid = c->sub;
	out->tid = c->tid;
	out->sid = c->sid;
	out->jti = c->jti;
	out->attrs_json = c->attrs_json;
	out->claims = c->payload;
	exp = c->exp;
	/* Whatever the token claims, it lives at most max_lifetime after iat. */
	if (c->iat <= INT64_MAX - v->opts.max_lifetime && c->iat + v->opts.max_lifetime < exp)
		exp = c->iat + v->opts.max_lifetime;
	out->exp = (time_t)exp;
	if (strcmp(c->aud, in->receiving_tenant) != 0)
		return out->detail = "aud is not the receiving tenant", FB_VERIFY_WRONG_AUDIENCE;
	if ((l = verify_issuer_local(c->issuer, in->receiving_tenant)) == NULL ||
	    !verify_local_accepts(l, c->tid))
		return out->detail = "the receiving tenant does not trust this tenant",
		       FB_VERIFY_WRONG_TENANT;
	if (now - skew >= exp)
		return out->detail = "expired", FB_VERIFY_EXPIRED;
	if (c->nbf > now + skew || c->iat > now + skew)
		return out->detail = "nbf or iat is in the future", FB_VERIFY_NOT_YET_VALID;
	if (in->peer_cert_sha256 == NULL ||
	    memcmp(c->cnf, in->peer_cert_sha256, FB_VERIFY_SHA256_LEN) != 0)
		return out->detail = "cnf does not match the peer certificate",
		       FB_VERIFY_CERT_MISMATCH;
	if (in->sender_fid != NULL && strcmp(in->sender_fid, c->sub) != 0)
		return out->detail = "the claimed sender is not sub", FB_VERIFY_SENDER_MISMATCH;
	if (claims_revoked(v, c, now))
		return out->detail = "revoked", FB_VERIFY_REVOKED;
	out->detail = NULL;
	return FB_VERIFY_ALLOW;
}

static bool
policy_allows(struct fb_verifier *v, struct claims *c, const struct fb_verify_result *out)
{
	uint64_t memo = atomic_load_explicit(&c->policy_memo, memory_order_relaxed);
	bool allow;

	if (memo != 0 && (memo >> 1) == v->policy_gen)
		return (memo & 1) != 0;
	allow = v->policy(v->policy_arg, out);
	atomic_store_explicit(
	    &c->policy_memo, (v->policy_gen << 1) | (allow ? 1 : 0), memory_order_relaxed);
	return allow;
}

enum fb_verify_reason
fb_verifier_check(
    struct fb_verifier *v, const struct fb_verify_input *in, struct fb_verify_result *out)
{
	struct cache_set *set = NULL;
	struct claims *c = NULL;
	uint64_t hash = 0;
	size_t victim = 0;

	memset(out, 0, sizeof(*out));
	atomic_fetch_add_explicit(&v->checks, 1, memory_order_relaxed);
	pthread_rwlock_rdlock(&v->trusts_lock);
	if (in->token == NULL || in->token_len == 0 || in->token_len > v->opts.max_token) {
		out->reason = FB_VERIFY_MALFORMED;
		out->detail = "empty or larger than the token size cap";
		goto done;
	}
	if (in->receiving_tenant == NULL) {
		out->reason = FB_VERIFY_WRONG_AUDIENCE;
		out->detail = "no receiving tenant";
		goto done;
	}
	if (v->n_sets > 0) {
		hash = verify_hash(v->seed, in->token, in->token_len);
		set = &v->sets[hash & (v->n_sets - 1)];
		set_lock(set);
		for (size_t w = 0; w < CACHE_WAYS; w++) {
			struct claims *e = set->way[w];
			if (e != NULL && e->hash == hash && e->token_len == in->token_len &&
			    e->trusts_gen == v->trusts_gen &&
			    memcmp(e->token, in->token, in->token_len) == 0) {
				c = e;
				atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
				out->reason = check_claims(v, c, in, out);
				break;
			}
		}
		set_unlock(set);
		if (c != NULL) {
			atomic_fetch_add_explicit(&v->hits, 1, memory_order_relaxed);
			goto done;
		}
	}
	c = verify_first(v, v->trusts, v->trusts_gen, in, hash, out);
	if (c == NULL)
		goto done; /* garbage is never cached */
	if (set != NULL) {
		set_lock(set);
		out->reason = check_claims(v, c, in, out);
		/* Replace a stale or expired way, else the one that expires first. */
		for (size_t w = 0; w < CACHE_WAYS; w++) {
			struct claims *e = set->way[w];
			if (e == NULL || e->trusts_gen != v->trusts_gen ||
			    e->exp < (int64_t)in->now) {
				victim = w;
				break;
			}
			if (e->exp < set->way[victim]->exp)
				victim = w;
		}
		claims_unref(set->way[victim]);
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
		set->way[victim] = c;
		set_unlock(set);
	} else {
		out->reason = check_claims(v, c, in, out);
	}
done:
	/* The receiving tenant's inbound policy comes last, on every check; a cached
	 * token keeps its answer until the policy is replaced. */
	if (c != NULL && out->reason == FB_VERIFY_ALLOW && v->policy != NULL &&
	    !policy_allows(v, c, out)) {
		out->reason = FB_VERIFY_POLICY_DENIED;
		out->detail = "inbound policy";
	}
	pthread_rwlock_unlock(&v->trusts_lock);
	out->hold = c;
	if (c == NULL) {
		out->fid = out->tid = out->sid = out->jti = out->attrs_json = NULL;
		out->claims = NULL;
	}
	return out->reason;
}

void
fb_verify_result_clear(struct fb_verify_result *r)
{
	claims_unref(r->hold);
	memset(r, 0, sizeof(*r));
}

fb_rc
fb_verify_cert_sha256(
    const char *pem_or_der, size_t len, unsigned char out[FB_VERIFY_SHA256_LEN], struct fb_err *err)
{
	const unsigned char *p = (const unsigned char *)pem_or_der;
	X509 *x = NULL;
	BIO *bio;
	unsigned int n = 0;

	if (len > 11 && memcmp(pem_or_der, "-----BEGIN ", 11) == 0) {
		if ((bio = BIO_new_mem_buf(pem_or_der, (int)len)) == NULL)
			return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
	} else {
		x = d2i_X509(NULL, &p, (long)len);
	}
	if (x == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "not an X.509 certificate");
	if (X509_digest(x, EVP_sha256(), out, &n) != 1 || n != FB_VERIFY_SHA256_LEN) {
		X509_free(x);
		return FB_ERR_SET(err, FB_ERR_CRYPTO, "cannot hash the certificate");
	}
	X509_free(x);
	return FB_OK;
}

/* ---- other signed documents of a trusted issuer (the revocation feed) ---- */

fb_rc
fb_verifier_verify_jws(struct fb_verifier *v, const char *issuer, const char *typ, const char *jws,
    size_t len, json_t **payload_out, struct fb_err *err)
{
	const char *dot1 = memchr(jws, '.', len), *dot2, *alg, *htyp, *kid, *iss;
	unsigned char header[HEADER_MAX + 1], sig[96], *payload = NULL;
	json_t *hdr = NULL, *pl = NULL;
	const struct trust_issuer *is;
	const struct verify_key *k;
	size_t n, sig_len = 0;
	enum fb_verify_alg want;
	fb_rc rc = FB_ERR_INVALID;

	*payload_out = NULL;
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - jws)) : NULL;
	if (dot1 == NULL || dot2 == NULL || (size_t)(dot1 - jws) > (size_t)HEADER_MAX / 3 * 4 ||
	    fb_b64url_decode(jws, (size_t)(dot1 - jws), header, sizeof(header), &n) != FB_OK)
		return FB_ERR_SET(err, FB_ERR_INVALID, "not a compact JWS");
	hdr = json_loadb((const char *)header, n, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(hdr) || !json_str(hdr, "alg", &alg, 16) ||
	    !json_str(hdr, "typ", &htyp, 32) || !json_str(hdr, "kid", &kid, FB_VERIFY_KID_MAX) ||
	    json_object_size(hdr) != 3) {
		FB_ERR_SET(err, FB_ERR_INVALID, "the header must be exactly alg, typ and kid");
		goto done;
	}
	if (strncasecmp(htyp, "application/", 12) == 0)
		htyp += 12;
	want = strcmp(alg, "ES256") == 0 ? FB_ALG_ES256
	    : strcmp(alg, "EdDSA") == 0  ? FB_ALG_EDDSA
	                                 : (enum fb_verify_alg) - 1;
	if (strcasecmp(htyp, typ) != 0 || (int)want < 0) {
		FB_ERR_SET(err, FB_ERR_INVALID, "typ must be %s and alg ES256 or EdDSA", typ);
		goto done;
	}
	pthread_rwlock_rdlock(&v->trusts_lock);
	is = v->trusts ? verify_trusts_issuer(v->trusts, issuer, strlen(issuer)) : NULL;
	k = is ? verify_keyset_find(is->keys, kid, strlen(kid)) : NULL;
	if (k != NULL && k->alg == want &&
	    fb_b64url_decode(
	        dot2 + 1, len - (size_t)(dot2 + 1 - jws), sig, sizeof(sig), &sig_len) == FB_OK &&
	    verify_signature(k, (const unsigned char *)jws, (size_t)(dot2 - jws), sig, sig_len))
		rc = FB_OK;
	pthread_rwlock_unlock(&v->trusts_lock);
	if (rc != FB_OK) {
		FB_ERR_SET(err, FB_ERR_CRYPTO, "not signed by a key of %s", issuer);
		goto done;
	}
	rc = FB_ERR_INVALID;
	n = (size_t)(dot2 - dot1 - 1);
	if ((payload = malloc(n ? n : 1)) == NULL ||
	    fb_b64url_decode(dot1 + 1, n, payload, n, &n) != FB_OK ||
	    (pl = json_loadb((const char *)payload, n, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_object(pl) || !json_str(pl, "iss", &iss, 2048) || strcmp(iss, issuer) != 0) {
		FB_ERR_SET(
		    err, FB_ERR_INVALID, "the payload is not a JSON object with iss %s", issuer);
		json_decref(pl);
		goto done;
	}
	*payload_out = pl;
	rc = FB_OK;
done:
	free(payload);
	json_decref(hdr);
	return rc;
}
