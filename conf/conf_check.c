/*
 * The second pass: rules that tie parts of the configuration together
 * (names that must exist, must be unique, lifetimes that must agree).
 * Aliases let a small file hold large lists, so every check here is
 * O(n log n) in what the file expands to: sort and compare neighbours,
 * never all pairs.
 */
#include "conf_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT(field) conf_pos_lookup(c->pos, c->n_pos, (field))

/* A name and where it stands: a, b index the lists it came from; seq keeps file order. */
struct occ {
	const char *name;
	struct fb_conf_pos pos;
	size_t a, b, seq;
};

static int
occ_cmp(const void *x, const void *y)
{
	const struct occ *p = x, *q = y;
	int d = strcmp(p->name, q->name);

	if (d != 0)
		return d;
	return p->seq < q->seq ? -1 : (p->seq > q->seq);
}

static int
str_cmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static bool
str_in(const char *const *sorted, size_t n, const char *name)
{
	return n > 0 && bsearch(&name, sorted, n, sizeof(*sorted), str_cmp) != NULL;
}

static struct fb_conf_pos
first_set(struct fb_conf_pos a, struct fb_conf_pos b)
{
	return a.line ? a : b;
}

static bool
check_lifetimes(struct conf_ctx *c, const struct fb_conf *conf)
{
	/* Point at whichever of the two was written: a default has no position. */
	struct fb_conf_pos ttl = AT(&conf->tokens.ttl), max_ttl = AT(&conf->tokens.max_ttl),
	                   skew = AT(&conf->tokens.clock_skew),
	                   session = AT(&conf->tokens.session_ttl),
	                   idle = AT(&conf->tokens.session_idle);
	bool ok = true;

	if (conf->tokens.ttl > conf->tokens.max_ttl)
		ok = conf_diag(c, first_set(ttl, max_ttl), "tokens.ttl",
		    "%llds is longer than tokens.max_ttl (%llds)", (long long)conf->tokens.ttl,
		    (long long)conf->tokens.max_ttl);
	if (conf->tokens.clock_skew * 2 >= conf->tokens.ttl)
		ok = conf_diag(c, first_set(skew, ttl), "tokens.clock_skew",
		    "%llds must be less than half of tokens.ttl (%llds)",
		    (long long)conf->tokens.clock_skew, (long long)conf->tokens.ttl);
	if (conf->tokens.ttl > conf->tokens.session_ttl)
		ok = conf_diag(c, first_set(ttl, session), "tokens.ttl",
		    "%llds is longer than tokens.session_ttl (%llds)", (long long)conf->tokens.ttl,
		    (long long)conf->tokens.session_ttl);
	if (conf->tokens.session_idle > conf->tokens.session_ttl)
		ok = conf_diag(c, first_set(idle, session), "tokens.session_idle",
		    "%llds is longer than tokens.session_ttl (%llds)",
		    (long long)conf->tokens.session_idle, (long long)conf->tokens.session_ttl);
	return ok;
}

/* Exactly one source of signing keys. */
static bool
check_keys(struct conf_ctx *c, const struct fb_conf *conf)
{
	if (conf->keys.signing.n > 0 && conf->keys.signing_dir != NULL)
		return conf_diag(c, AT(&conf->keys.signing_dir), "keys.signing_dir",
		    "use keys.signing or keys.signing_dir, not both");
	if (conf->keys.signing.n == 0 && conf->keys.signing_dir == NULL)
		/* fid_secret is required: its line places the message in the keys section. */
		return conf_diag(c, AT(&conf->keys.fid_secret), "keys",
		    "missing required key \"signing\" (or \"signing_dir\")");
	return true;
}

static bool
check_store(struct conf_ctx *c, const struct fb_conf *conf)
{
	if (conf->store.password_file != NULL && conf->store.kind != FB_STORE_POSTGRESQL)
		return conf_diag(c, AT(&conf->store.password_file), "store_password_file",
		    "only used with a postgresql store");
	return true;
}

/*
 * Tenant ids, provider names (/login/<provider>) and client ids (POST /token
 * finds the tenant by its client) are unique across the installation.
 */
static bool
check_unique_names(struct conf_ctx *c, const struct fb_conf *conf)
{
	struct occ *v;
	size_t n = 0, total = conf->n_tenants;
	char path[128];
	bool ok = true;

	for (size_t ti = 0; ti < conf->n_tenants; ti++)
		total += conf->tenants[ti].n_providers + conf->tenants[ti].n_clients;
	if ((v = calloc(total ? total : 1, sizeof(*v))) == NULL) {
		c->nomem = true;
		return false;
	}
	/* Tenants, providers, then clients: groups never mixed. */
	for (size_t pass = 0; pass < 3; pass++) {
		n = 0;
		for (size_t ti = 0; ti < conf->n_tenants; ti++) {
			const struct fb_conf_tenant *t = &conf->tenants[ti];
			if (pass == 0) {
				v[n] = (struct occ){ t->id, AT(&t->id), ti, 0, n };
				n++;
				continue;
			}
			for (size_t i = 0; pass == 1 && i < t->n_providers; i++) {
				v[n] = (struct occ){ t->providers[i].name,
					AT(&t->providers[i].name), ti, i, n };
				n++;
			}
			for (size_t i = 0; pass == 2 && i < t->n_clients; i++) {
				v[n] = (struct occ){ t->clients[i].client_id,
					AT(&t->clients[i].client_id), ti, i, n };
				n++;
			}
		}
		qsort(v, n, sizeof(*v), occ_cmp);
		for (size_t i = 1; i < n; i++) {
			size_t first = i;
			while (first > 0 && strcmp(v[first - 1].name, v[i].name) == 0)
				first--;
			if (first == i)
				continue;
			if (pass == 0) {
				(void)snprintf(path, sizeof(path), "tenants[%zu].id", v[i].a);
				ok = conf_diag(c, v[i].pos, path,
				    "tenant %s is defined twice (first at %u:%u)", v[i].name,
				    v[first].pos.line, v[first].pos.col);
			} else if (pass == 1) {
				(void)snprintf(path, sizeof(path),
				    "tenants[%zu].providers[%zu].name", v[i].a, v[i].b);
				ok = conf_diag(c, v[i].pos, path,
				    "provider \"%s\" is defined twice (first at %u:%u)", v[i].name,
				    v[first].pos.line, v[first].pos.col);
			} else {
				(void)snprintf(path, sizeof(path),
				    "tenants[%zu].clients[%zu].client_id", v[i].a, v[i].b);
				ok = conf_diag(c, v[i].pos, path,
				    "client \"%s\" is defined twice (first at %u:%u)", v[i].name,
				    v[first].pos.line, v[first].pos.col);
			}
		}
	}
	free(v);
	return ok;
}

/* At most 64 providers and 64 mappings per tenant: pairs are cheap here. */
static bool
check_mappings(struct conf_ctx *c, const struct fb_conf_tenant *t, size_t ti)
{
	char path[128];
	bool ok = true;

	for (size_t i = 0; i < t->n_mappings; i++) {
		const struct fb_conf_mapping *m = &t->mappings[i];
		bool found = false;

		for (size_t j = 0; j < t->n_providers; j++)
			found = found || strcmp(t->providers[j].name, m->provider) == 0;
		(void)snprintf(path, sizeof(path), "tenants[%zu].mapping[%zu].provider", ti, i);
		if (!found) {
			ok = conf_diag(c, AT(&m->provider), path,
			    "no provider named \"%s\" in tenant %s", m->provider, t->id);
			continue;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(t->mappings[j].provider, m->provider) == 0) {
				struct fb_conf_pos first = AT(&t->mappings[j].provider);
				ok = conf_diag(c, AT(&m->provider), path,
				    "a second mapping for provider \"%s\" (first at %u:%u)",
				    m->provider, first.line, first.col);
				break;
			}
		}
	}
	for (size_t j = 0; j < t->n_providers; j++) {
		bool mapped = false;

		for (size_t i = 0; i < t->n_mappings; i++)
			mapped =
			    mapped || strcmp(t->providers[j].name, t->mappings[i].provider) == 0;
		if (!mapped) {
			(void)snprintf(path, sizeof(path), "tenants[%zu].providers[%zu]", ti, j);
			ok = conf_diag(c, AT(&t->providers[j].name), path,
			    "provider \"%s\" has no mapping: nobody could log in through it",
			    t->providers[j].name);
		}
	}
	return ok;
}

/* The keys a trust with another installation needs, and a local trust must not have. */
static bool
check_trust_keys(struct conf_ctx *c, const struct fb_conf *conf, size_t ti, size_t k)
{
	const struct fb_conf_trust *tr = &conf->tenants[ti].trusts[k];
	bool local = strcmp(tr->remote, conf->installation.name) == 0;
	char path[160];
	bool ok = true;
	const struct {
		const char *key;
		const void *field;
		bool set;
		bool local_may; /* a local trust may name it too */
		bool pending_may; /* a remote trust may lack it until the remote's export arrives */
	} remote_only[] = {
		{ "relay", &tr->relay, tr->relay != NULL, false, false },
		{ "ca", &tr->ca, tr->ca != NULL, false, false },
		{ "client_cert", &tr->client_cert, tr->client_cert != NULL, true, false },
		{ "client_key", &tr->client_key, tr->client_key != NULL, false, false },
		{ "keys", &tr->keys, tr->keys != NULL, false, true },
		{ "issuer", &tr->issuer, tr->issuer != NULL, false, true },
	};

	/* discover finds relay, issuer and keys: naming them too would say two things. */
	if (tr->discover != NULL) {
		const struct {
			const char *key;
			const void *field;
			bool set;
		} found[] = { { "relay", &tr->relay, tr->relay != NULL },
			{ "keys", &tr->keys, tr->keys != NULL },
			{ "issuer", &tr->issuer, tr->issuer != NULL } };
		for (size_t i = 0; i < sizeof(found) / sizeof(found[0]); i++) {
			if (!found[i].set)
				continue;
			(void)snprintf(
			    path, sizeof(path), "tenants[%zu].trusts[%zu].%s", ti, k, found[i].key);
			ok = conf_diag(c, AT(found[i].field), path,
			    "not used with discover, which finds it through DNS");
		}
		if (local) {
			(void)snprintf(
			    path, sizeof(path), "tenants[%zu].trusts[%zu].discover", ti, k);
			ok = conf_diag(c, AT(&tr->discover), path,
			    "not used for a trust between tenants of this installation");
		}
	}
	for (size_t i = 0; i < sizeof(remote_only) / sizeof(remote_only[0]); i++) {
		if (tr->discover != NULL &&
		    (remote_only[i].field == (const void *)&tr->relay ||
		        remote_only[i].pending_may))
			continue;
		if (local && remote_only[i].set && !remote_only[i].local_may) {
			(void)snprintf(path, sizeof(path), "tenants[%zu].trusts[%zu].%s", ti, k,
			    remote_only[i].key);
			ok = conf_diag(c, AT(remote_only[i].field), path,
			    "not used for a trust between tenants of this installation");
		} else if (!local && !remote_only[i].set && !remote_only[i].pending_may) {
			(void)snprintf(path, sizeof(path), "tenants[%zu].trusts[%zu]", ti, k);
			ok = conf_diag(c, AT(&tr->remote), path,
			    "missing required key \"%s\" for a trust with remote installation %s",
			    remote_only[i].key, tr->remote);
		}
	}
	/* Keys without an issuer (or the reverse) cannot check anything: say which is missing. */
	if (!local && tr->discover == NULL && (tr->keys == NULL) != (tr->issuer == NULL)) {
		(void)snprintf(path, sizeof(path), "tenants[%zu].trusts[%zu]", ti, k);
		ok =
		    conf_diag(c, AT(tr->keys ? (const void *)&tr->keys : (const void *)&tr->issuer),
		        path, "\"%s\" is set without \"%s\": a remote's tokens need both",
		        tr->keys ? "keys" : "issuer", tr->keys ? "issuer" : "keys");
	}
	return ok;
}

/* The tenants a trust names: local or not as the trust says, and each trusted once. */
static bool
check_trust_tenants(struct conf_ctx *c, const struct fb_conf *conf, size_t ti,
    const char *const *local_ids, size_t n_local)
{
	const struct fb_conf_tenant *t = &conf->tenants[ti];
	struct occ *v;
	size_t n = 0, total = 0;
	char path[160];
	bool ok = true;

	for (size_t k = 0; k < t->n_trusts; k++)
		total += t->trusts[k].tenants.n;
	if ((v = calloc(total ? total : 1, sizeof(*v))) == NULL) {
		c->nomem = true;
		return false;
	}
	for (size_t k = 0; k < t->n_trusts; k++) {
		const struct fb_conf_trust *tr = &t->trusts[k];
		bool local = strcmp(tr->remote, conf->installation.name) == 0;

		for (size_t i = 0; i < tr->tenants.n; i++) {
			const char *id = tr->tenants.v[i];
			bool is_local = str_in(local_ids, n_local, id);
			struct fb_conf_pos at = AT(&tr->tenants.v[i]);

			v[n] = (struct occ){ id, at, k, i, n };
			n++;
			(void)snprintf(
			    path, sizeof(path), "tenants[%zu].trusts[%zu].tenants[%zu]", ti, k, i);
			if (local && !is_local)
				ok = conf_diag(
				    c, at, path, "%s is not a tenant of this installation", id);
			else if (local && strcmp(id, t->id) == 0)
				ok = conf_diag(
				    c, at, path, "a tenant does not need a trust with itself");
			else if (!local && is_local)
				ok = conf_diag(c, at, path,
				    "%s is a tenant of this installation; name %s as remote for a "
				    "local trust",
				    id, conf->installation.name);
		}
	}
	/* One trust per remote tenant, or policies would be ambiguous. Repeats inside one
	 * list were reported when the list was read. */
	qsort(v, n, sizeof(*v), occ_cmp);
	for (size_t i = 1; i < n; i++) {
		size_t first = i;
		while (first > 0 && strcmp(v[first - 1].name, v[i].name) == 0)
			first--;
		if (first == i || v[first].a == v[i].a)
			continue;
		(void)snprintf(path, sizeof(path), "tenants[%zu].trusts[%zu].tenants[%zu]", ti,
		    v[i].a, v[i].b);
		ok = conf_diag(c, v[i].pos, path, "%s is already trusted at %u:%u", v[i].name,
		    v[first].pos.line, v[first].pos.col);
	}
	free(v);
	return ok;
}

/* release names only attributes some mapping of the tenant defines. */
static bool
check_release(struct conf_ctx *c, const struct fb_conf_tenant *t, size_t ti)
{
	const char **attrs;
	size_t n = 0, total = 0;
	char path[160];
	bool ok = true;

	for (size_t i = 0; i < t->n_mappings; i++)
		total += t->mappings[i].n_attrs;
	if ((attrs = calloc(total ? total : 1, sizeof(*attrs))) == NULL) {
		c->nomem = true;
		return false;
	}
	for (size_t i = 0; i < t->n_mappings; i++)
		for (size_t j = 0; j < t->mappings[i].n_attrs; j++)
			attrs[n++] = t->mappings[i].attrs[j].name;
	qsort(attrs, n, sizeof(*attrs), str_cmp);
	for (size_t k = 0; k < t->n_trusts; k++) {
		const struct fb_conf_trust *tr = &t->trusts[k];
		for (size_t i = 0; i < tr->release.n; i++) {
			if (str_in(attrs, n, tr->release.v[i]))
				continue;
			(void)snprintf(
			    path, sizeof(path), "tenants[%zu].trusts[%zu].release[%zu]", ti, k, i);
			ok = conf_diag(c, AT(&tr->release.v[i]), path,
			    "no mapping of tenant %s defines attribute \"%s\"", t->id,
			    tr->release.v[i]);
		}
	}
	free(attrs);
	return ok;
}

bool
conf_check_refs(struct conf_ctx *c, const struct fb_conf *conf)
{
	const char **local_ids;
	bool ok = check_lifetimes(c, conf);

	ok = check_store(c, conf) && ok;
	ok = check_keys(c, conf) && ok;
	ok = check_unique_names(c, conf) && ok;
	if ((local_ids = calloc(conf->n_tenants ? conf->n_tenants : 1, sizeof(*local_ids))) ==
	    NULL) {
		c->nomem = true;
		return false;
	}
	for (size_t ti = 0; ti < conf->n_tenants; ti++)
		local_ids[ti] = conf->tenants[ti].id;
	qsort(local_ids, conf->n_tenants, sizeof(*local_ids), str_cmp);
	for (size_t ti = 0; ti < conf->n_tenants; ti++) {
		const struct fb_conf_tenant *t = &conf->tenants[ti];

		ok = check_mappings(c, t, ti) && ok;
		for (size_t k = 0; k < t->n_trusts; k++)
			ok = check_trust_keys(c, conf, ti, k) && ok;
		ok = check_trust_tenants(c, conf, ti, local_ids, conf->n_tenants) && ok;
		ok = check_release(c, t, ti) && ok;
	}
	free(local_ids);
	return ok;
}
