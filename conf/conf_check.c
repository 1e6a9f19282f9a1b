/*
 * The second pass: rules that tie parts of the configuration together
 * (names that must exist, must be unique, lifetimes that must agree).
 */
#include "conf_int.h"

#include <stdio.h>
#include <string.h>

#define AT(field) conf_pos_lookup(c->pos, c->n_pos, (field))

static bool
check_lifetimes(struct conf_ctx *c, const struct fb_conf *conf)
{
	bool ok = true;

	if (conf->tokens.ttl > conf->tokens.max_ttl)
		ok = conf_diag(c, AT(&conf->tokens.ttl), "tokens.ttl",
		    "%llds is longer than tokens.max_ttl (%llds)", (long long)conf->tokens.ttl,
		    (long long)conf->tokens.max_ttl);
	if (conf->tokens.clock_skew * 2 >= conf->tokens.ttl)
		ok = conf_diag(c, AT(&conf->tokens.clock_skew), "tokens.clock_skew",
		    "%llds must be less than half of tokens.ttl (%llds)",
		    (long long)conf->tokens.clock_skew, (long long)conf->tokens.ttl);
	if (conf->tokens.ttl > conf->tokens.session_ttl)
		ok = conf_diag(c, AT(&conf->tokens.ttl), "tokens.ttl",
		    "%llds is longer than tokens.session_ttl (%llds)", (long long)conf->tokens.ttl,
		    (long long)conf->tokens.session_ttl);
	if (conf->tokens.session_idle > conf->tokens.session_ttl)
		ok = conf_diag(c, AT(&conf->tokens.session_idle), "tokens.session_idle",
		    "%llds is longer than tokens.session_ttl (%llds)",
		    (long long)conf->tokens.session_idle, (long long)conf->tokens.session_ttl);
	return ok;
}

static bool
check_store(struct conf_ctx *c, const struct fb_conf *conf)
{
	if (conf->store.password_file != NULL && conf->store.kind != FB_STORE_POSTGRESQL)
		return conf_diag(c, AT(&conf->store.password_file), "store_password_file",
		    "only used with a postgresql store");
	return true;
}

static bool
check_providers(struct conf_ctx *c, const struct fb_conf *conf, size_t ti)
{
	const struct fb_conf_tenant *t = &conf->tenants[ti];
	char path[128];
	bool ok = true;

	/* Provider names are global: they appear in /login/<provider>. */
	for (size_t i = 0; i < t->n_providers; i++) {
		const struct fb_conf_provider *p = &t->providers[i];
		for (size_t tj = 0; tj <= ti; tj++) {
			const struct fb_conf_tenant *u = &conf->tenants[tj];
			size_t end = tj == ti ? i : u->n_providers;
			for (size_t j = 0; j < end; j++) {
				struct fb_conf_pos first = AT(&u->providers[j].name);
				if (strcmp(u->providers[j].name, p->name) != 0)
					continue;
				(void)snprintf(
				    path, sizeof(path), "tenants[%zu].providers[%zu].name", ti, i);
				ok = conf_diag(c, AT(&p->name), path,
				    "provider \"%s\" is defined twice (first at %u:%u)", p->name,
				    first.line, first.col);
			}
		}
	}
	return ok;
}

static bool
check_mappings(struct conf_ctx *c, const struct fb_conf *conf, size_t ti)
{
	const struct fb_conf_tenant *t = &conf->tenants[ti];
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

static bool
attr_defined(const struct fb_conf_tenant *t, const char *name)
{
	for (size_t i = 0; i < t->n_mappings; i++)
		for (size_t j = 0; j < t->mappings[i].n_attrs; j++)
			if (strcmp(t->mappings[i].attrs[j].name, name) == 0)
				return true;
	return false;
}

static bool
is_local_tenant(const struct fb_conf *conf, const char *id)
{
	return fb_conf_tenant_find(conf, id) != NULL;
}

static bool
check_trust(struct conf_ctx *c, const struct fb_conf *conf, size_t ti, size_t k)
{
	const struct fb_conf_tenant *t = &conf->tenants[ti];
	const struct fb_conf_trust *tr = &t->trusts[k];
	bool local = strcmp(tr->remote, conf->installation.name) == 0;
	char path[160];
	bool ok = true;

	struct {
		const char *key;
		const void *field;
		bool set;
	} remote_only[] = {
		{ "relay", &tr->relay, tr->relay != NULL },
		{ "ca", &tr->ca, tr->ca != NULL },
		{ "client_cert", &tr->client_cert, tr->client_cert != NULL },
		{ "client_key", &tr->client_key, tr->client_key != NULL },
		{ "keys", &tr->keys, tr->keys != NULL },
		{ "issuer", &tr->issuer, tr->issuer != NULL },
	};

	for (size_t i = 0; i < sizeof(remote_only) / sizeof(remote_only[0]); i++) {
		(void)snprintf(path, sizeof(path), "tenants[%zu].trusts[%zu]", ti, k);
		if (local && remote_only[i].set) {
			(void)snprintf(path, sizeof(path), "tenants[%zu].trusts[%zu].%s", ti, k,
			    remote_only[i].key);
			ok = conf_diag(c, AT(remote_only[i].field), path,
			    "not used for a trust between tenants of this installation");
		} else if (!local && !remote_only[i].set) {
			ok = conf_diag(c, AT(&tr->remote), path,
			    "missing required key \"%s\" for a trust with remote installation %s",
			    remote_only[i].key, tr->remote);
		}
	}
	for (size_t i = 0; i < tr->tenants.n; i++) {
		const char *id = tr->tenants.v[i];
		struct fb_conf_pos at = AT(&tr->tenants.v[i]);

		(void)snprintf(
		    path, sizeof(path), "tenants[%zu].trusts[%zu].tenants[%zu]", ti, k, i);
		if (local && !is_local_tenant(conf, id))
			ok = conf_diag(c, at, path, "%s is not a tenant of this installation", id);
		else if (local && strcmp(id, t->id) == 0)
			ok = conf_diag(c, at, path, "a tenant does not need a trust with itself");
		else if (!local && is_local_tenant(conf, id))
			ok = conf_diag(c, at, path,
			    "%s is a tenant of this installation; name %s as remote for a local "
			    "trust",
			    id, conf->installation.name);
		/* One trust per remote tenant, or policies would be ambiguous. */
		for (size_t kk = 0; kk < k; kk++) {
			const struct fb_conf_trust *other = &t->trusts[kk];
			for (size_t j = 0; j < other->tenants.n; j++) {
				if (strcmp(other->tenants.v[j], id) == 0) {
					struct fb_conf_pos first = AT(&other->tenants.v[j]);
					ok =
					    conf_diag(c, at, path, "%s is already trusted at %u:%u",
					        id, first.line, first.col);
				}
			}
		}
	}
	for (size_t i = 0; i < tr->release.n; i++) {
		if (attr_defined(t, tr->release.v[i]))
			continue;
		(void)snprintf(
		    path, sizeof(path), "tenants[%zu].trusts[%zu].release[%zu]", ti, k, i);
		ok = conf_diag(c, AT(&tr->release.v[i]), path,
		    "no mapping of tenant %s defines attribute \"%s\"", t->id, tr->release.v[i]);
	}
	return ok;
}

bool
conf_check_refs(struct conf_ctx *c, const struct fb_conf *conf)
{
	bool ok = check_lifetimes(c, conf);
	char path[64];

	ok = check_store(c, conf) && ok;
	for (size_t ti = 0; ti < conf->n_tenants; ti++) {
		const struct fb_conf_tenant *t = &conf->tenants[ti];

		for (size_t tj = 0; tj < ti; tj++) {
			if (strcmp(conf->tenants[tj].id, t->id) == 0) {
				struct fb_conf_pos first = AT(&conf->tenants[tj].id);
				(void)snprintf(path, sizeof(path), "tenants[%zu].id", ti);
				ok = conf_diag(c, AT(&t->id), path,
				    "tenant %s is defined twice (first at %u:%u)", t->id,
				    first.line, first.col);
			}
		}
		ok = check_providers(c, conf, ti) && ok;
		ok = check_mappings(c, conf, ti) && ok;
		for (size_t k = 0; k < t->n_trusts; k++)
			ok = check_trust(c, conf, ti, k) && ok;
	}
	return ok;
}
