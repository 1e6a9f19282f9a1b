/* The trust table: issuers, their keys, and which local tenant accepts which remote tenants. */
#include "verify_int.h"
#include "verify_trusts.h"

#include <stdlib.h>
#include <string.h>

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
local_free(struct trust_local *l)
{
	for (size_t i = 0; i < l->n_remote; i++)
		free(l->remote[i]);
	free(l->remote);
	free(l->tenant);
}

void
fb_verify_trusts_free(struct fb_verify_trusts *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		struct trust_issuer *is = &t->issuers[i];
		for (size_t j = 0; j < is->n_locals; j++)
			local_free(&is->locals[j]);
		free(is->locals);
		free(is->issuer);
		fb_verify_keyset_unref(is->keys);
	}
	free(t->issuers);
	free(t->index);
	free(t);
}

static struct trust_issuer *
issuer_get(struct fb_verify_trusts *t, const char *issuer)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->issuers[i].issuer, issuer) == 0)
			return &t->issuers[i];
	return NULL;
}

fb_rc
fb_verify_trusts_new(const struct fb_verify_trust_spec *specs, size_t n,
    struct fb_verify_trusts **out, struct fb_err *err)
{
	struct fb_verify_trusts *t;
	fb_rc rc = FB_OK;

	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->issuers = calloc(n ? n : 1, sizeof(*t->issuers))) == NULL) {
		free(t);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	(void)fb_random_bytes(&t->seed, sizeof(t->seed));
	/* Building is O(n * issuers); fine at load time, and lookups below are hashed. */
	for (size_t i = 0; i < n && rc == FB_OK; i++) {
		const struct fb_verify_trust_spec *sp = &specs[i];
		struct trust_issuer *is;
		struct trust_local *l, *nl;

		if (sp->keys == NULL || sp->issuer == NULL || sp->local_tenant == NULL ||
		    (sp->remote_tenants == NULL && sp->n_remote_tenants > 0)) {
			rc = FB_ERR_SET(err, FB_ERR_INVALID, "trust %zu is incomplete", i);
			break;
		}
		is = issuer_get(t, sp->issuer);
		if (is == NULL) {
			is = &t->issuers[t->n++];
			if ((is->issuer = strdup(sp->issuer)) == NULL) {
				rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
				break;
			}
			is->keys = fb_verify_keyset_ref(sp->keys);
		} else if (is->keys != sp->keys) {
			rc = FB_ERR_SET(err, FB_ERR_INVALID,
			    "issuer %s is given two different key sets", sp->issuer);
			break;
		}
		for (size_t j = 0; j < is->n_locals; j++) {
			if (strcmp(is->locals[j].tenant, sp->local_tenant) == 0) {
				rc = FB_ERR_SET(err, FB_ERR_INVALID,
				    "tenant %s trusts issuer %s twice", sp->local_tenant,
				    sp->issuer);
				break;
			}
		}
		if (rc != FB_OK)
			break;
		nl = realloc(is->locals, (is->n_locals + 1) * sizeof(*nl));
		if (nl == NULL) {
			rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
			break;
		}
		is->locals = nl;
		l = &is->locals[is->n_locals++];
		memset(l, 0, sizeof(*l));
		l->tenant = strdup(sp->local_tenant);
		l->remote = calloc(sp->n_remote_tenants ? sp->n_remote_tenants : 1, sizeof(char *));
		if (l->tenant == NULL || l->remote == NULL) {
			rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
			break;
		}
		for (size_t k = 0; k < sp->n_remote_tenants; k++) {
			if ((l->remote[k] = strdup(sp->remote_tenants[k])) == NULL) {
				rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
				break;
			}
			l->n_remote++;
		}
		qsort(l->remote, l->n_remote, sizeof(char *), str_cmp);
	}
	/* Open addressing index over issuers, at most half full. */
	if (rc == FB_OK) {
		t->index_cap = 16;
		while (t->index_cap < t->n * 2)
			t->index_cap *= 2;
		if ((t->index = calloc(t->index_cap, sizeof(*t->index))) == NULL)
			rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		for (size_t i = 0; t->index != NULL && rc == FB_OK && i < t->n; i++) {
			const char *s = t->issuers[i].issuer;
			if (s == NULL)
				break;
			size_t slot = verify_hash(t->seed, s, strlen(s)) & (t->index_cap - 1);
			while (t->index[slot] != 0)
				slot = (slot + 1) & (t->index_cap - 1);
			t->index[slot] = (uint32_t)i + 1;
		}
	}
	if (rc != FB_OK) {
		fb_verify_trusts_free(t);
		return rc;
	}
	*out = t;
	return FB_OK;
}

const struct trust_issuer *
verify_trusts_issuer(const struct fb_verify_trusts *t, const char *iss, size_t len)
{
	size_t slot;

	if (t == NULL || t->n == 0)
		return NULL;
	slot = verify_hash(t->seed, iss, len) & (t->index_cap - 1);
	for (; t->index[slot] != 0; slot = (slot + 1) & (t->index_cap - 1)) {
		const struct trust_issuer *is = &t->issuers[t->index[slot] - 1];
		if (strlen(is->issuer) == len && memcmp(is->issuer, iss, len) == 0)
			return is;
	}
	return NULL;
}

const struct trust_local *
verify_issuer_local(const struct trust_issuer *is, const char *tenant)
{
	for (size_t i = 0; i < is->n_locals; i++)
		if (strcmp(is->locals[i].tenant, tenant) == 0)
			return &is->locals[i];
	return NULL;
}

bool
verify_local_accepts(const struct trust_local *l, const char *remote_tenant)
{
	return l->n_remote > 0 &&
	    bsearch(&remote_tenant, l->remote, l->n_remote, sizeof(char *), str_cmp) != NULL;
}
