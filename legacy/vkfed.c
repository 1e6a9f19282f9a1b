/*
 * The messenger's federation.yml, read so that `fedbridge import federation`
 * can turn its instances into trusts:
 *
 *   enabled: true
 *   mtlsEnabled: true
 *   localTenant: 7BJqEXMGyEL
 *   instances:
 *   - address: federation.b.example:443
 *     name: installation_B
 *     cert_cn: installation_B
 *     ssl_cert: /opt/certs/client_B.cert.pem   # what our relay presents there
 *     ssl_key: /opt/certs/client_B.key.pem
 *     cacert: /opt/certs/client_B.cacert.pem   # the remote's CA
 *     tenants: [HWqHczeM2P]
 *
 * libyaml's event API first (anchors, aliases, tags and second documents are
 * refused: the format needs none of them, and aliases could fan out), then
 * its document API for the tree with positions. Every error names
 * file:line:col. Keys fedbridge has no use for are reported, not dropped silently.
 */
#include "fb_legacy.h"

#include "fb_conf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define VKFED_FILE_MAX ((size_t)1 << 20)
#define VKFED_INSTANCES_MAX 1000
#define VKFED_VALUE_MAX 1024

struct vk_parser {
	yaml_document_t doc;
	const char *name;
	struct fb_err *err;
	struct fb_buf *notes;
};

static fb_rc vk_fail(struct vk_parser *p, const yaml_node_t *n, const char *fmt, ...)
    FB_PRINTF(3, 4);

static fb_rc
vk_fail(struct vk_parser *p, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[FB_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return FB_ERR_SET(p->err, FB_ERR_INVALID, "%s:%zu:%zu: %s", p->name,
	    (size_t)n->start_mark.line + 1, (size_t)n->start_mark.column + 1, msg);
}

/* Refuses what the format never needs, with where it is. */
static fb_rc
vk_prescan(const char *data, size_t len, const char *name, struct fb_err *err)
{
	yaml_parser_t yp;
	yaml_event_t ev;
	size_t docs = 0;
	fb_rc rc = FB_OK;

	if (!yaml_parser_initialize(&yp))
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	yaml_parser_set_input_string(&yp, (const unsigned char *)data, len);
	for (;;) {
		const char *what = NULL;
		if (!yaml_parser_parse(&yp, &ev)) {
			rc = FB_ERR_SET(err, FB_ERR_INVALID, "%s:%zu:%zu: not a YAML file: %s",
			    name, (size_t)yp.problem_mark.line + 1,
			    (size_t)yp.problem_mark.column + 1,
			    yp.problem ? yp.problem : "unreadable");
			break;
		}
		if (ev.type == YAML_ALIAS_EVENT)
			what = "an alias";
		else if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.anchor != NULL)
			what = "an anchor";
		else if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.tag != NULL)
			what = "a tag";
		else if ((ev.type == YAML_SEQUENCE_START_EVENT &&
		             (ev.data.sequence_start.anchor != NULL ||
		                 ev.data.sequence_start.tag != NULL)) ||
		    (ev.type == YAML_MAPPING_START_EVENT &&
		        (ev.data.mapping_start.anchor != NULL ||
		            ev.data.mapping_start.tag != NULL)))
			what = "an anchor or tag";
		else if (ev.type == YAML_DOCUMENT_START_EVENT && ++docs > 1)
			what = "a second document";
		if (what != NULL) {
			rc = FB_ERR_SET(err, FB_ERR_INVALID, "%s:%zu:%zu: %s is not supported here",
			    name, (size_t)ev.start_mark.line + 1, (size_t)ev.start_mark.column + 1,
			    what);
			yaml_event_delete(&ev);
			break;
		}
		bool end = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		if (end)
			break;
	}
	yaml_parser_delete(&yp);
	return rc;
}

/* A scalar's value, or NULL with an error naming key. */
static const char *
vk_scalar(struct vk_parser *p, yaml_node_t *n, const char *key)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE) {
		vk_fail(p, n, "%s: expected a single value", key);
		return NULL;
	}
	s = (const char *)n->data.scalar.value;
	if (n->data.scalar.length == 0 || n->data.scalar.length > VKFED_VALUE_MAX ||
	    strlen(s) != n->data.scalar.length) {
		vk_fail(p, n, "%s: expected a value of 1 to %d bytes", key, VKFED_VALUE_MAX);
		return NULL;
	}
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			vk_fail(p, n, "%s: holds a control character", key);
			return NULL;
		}
	return s;
}

static bool
vk_bool(const char *s, bool *out)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "yes") == 0) {
		*out = true;
		return true;
	}
	if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "no") == 0) {
		*out = false;
		return true;
	}
	return false;
}

static void vk_note(struct vk_parser *p, const yaml_node_t *n, const char *fmt, ...)
    FB_PRINTF(3, 4);

static void
vk_note(struct vk_parser *p, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)fb_buf_printf(p->notes, "%s:%zu:%zu: %s\n", p->name, (size_t)n->start_mark.line + 1,
	    (size_t)n->start_mark.column + 1, msg);
}

static fb_rc
vk_instance(struct vk_parser *p, yaml_node_t *map, size_t idx, struct fb_vkfed_instance *in)
{
	static const char *const keys[] = { "address", "name", "cert_cn", "ssl_cert", "ssl_key",
		"cacert", NULL };
	char **fields[] = { &in->address, &in->name, &in->cert_cn, &in->ssl_cert, &in->ssl_key,
		&in->cacert };
	char key[96];

	if (map->type != YAML_MAPPING_NODE)
		return vk_fail(p, map, "instances[%zu]: expected a mapping", idx);
	in->line = (unsigned)map->start_mark.line + 1;
	in->col = (unsigned)map->start_mark.column + 1;
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = yaml_document_get_node(&p->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(&p->doc, pr->value);
		const char *ks = k ? vk_scalar(p, k, "a key") : NULL;
		bool known = false;

		if (ks == NULL || v == NULL)
			return p->err->rc ? p->err->rc : FB_ERR_INVALID;
		(void)snprintf(key, sizeof(key), "instances[%zu].%.40s", idx, ks);
		if (strcmp(ks, "tenants") == 0) {
			if (in->tenants != NULL)
				return vk_fail(p, k, "%s: given twice", key);
			if (v->type != YAML_SEQUENCE_NODE)
				return vk_fail(p, v, "%s: expected a list of tenantIDs", key);
			size_t n =
			    (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
			if (n == 0 || n > 1000)
				return vk_fail(p, v, "%s: expected 1 to 1000 tenantIDs", key);
			if ((in->tenants = calloc(n, sizeof(char *))) == NULL)
				return FB_ERR_SET(p->err, FB_ERR_NOMEM, "out of memory");
			for (size_t i = 0; i < n; i++) {
				yaml_node_t *it = yaml_document_get_node(
				    &p->doc, v->data.sequence.items.start[i]);
				const char *s = it ? vk_scalar(p, it, key) : NULL;
				if (s == NULL)
					return p->err->rc;
				if (!fb_conf_tenant_id_valid(s))
					return vk_fail(p, it,
					    "%s: %.40s is not a tenantID (8 to 16 letters and "
					    "digits)",
					    key, s);
				if ((in->tenants[i] = strdup(s)) == NULL)
					return FB_ERR_SET(p->err, FB_ERR_NOMEM, "out of memory");
				in->n_tenants++;
			}
			continue;
		}
		for (size_t i = 0; keys[i] != NULL && !known; i++) {
			const char *s;
			if (strcmp(ks, keys[i]) != 0)
				continue;
			known = true;
			if (*fields[i] != NULL)
				return vk_fail(p, k, "%s: given twice", key);
			if ((s = vk_scalar(p, v, key)) == NULL)
				return p->err->rc;
			if ((*fields[i] = strdup(s)) == NULL)
				return FB_ERR_SET(p->err, FB_ERR_NOMEM, "out of memory");
		}
		if (!known)
			vk_note(p, k, "%s: not used by fedbridge, ignored", key);
	}
	for (size_t i = 0; keys[i] != NULL; i++)
		if (*fields[i] == NULL && strcmp(keys[i], "cert_cn") != 0)
			return vk_fail(p, map, "instances[%zu]: missing \"%s\"", idx, keys[i]);
	if (in->tenants == NULL)
		return vk_fail(p, map, "instances[%zu]: missing \"tenants\"", idx);
	if (!fb_conf_install_name_valid(in->name))
		return vk_fail(p, map,
		    "instances[%zu].name: \"%.64s\" cannot name a trust (1 to 64 letters, digits, "
		    "'_', '.', '-'); write the installation's name as its relay certificate's CN "
		    "has it",
		    idx, in->name);
	if (in->cert_cn != NULL && !fb_conf_install_name_valid(in->cert_cn))
		return vk_fail(p, map,
		    "instances[%zu].cert_cn: \"%.64s\" is not an installation name (1 to 64 "
		    "letters, digits, '_', '.', '-')",
		    idx, in->cert_cn);
	return FB_OK;
}

fb_rc
fb_vkfed_parse(const char *data, size_t len, const char *name, struct fb_vkfed *out,
    struct fb_buf *notes, struct fb_err *err)
{
	struct vk_parser p = { .name = name, .err = err, .notes = notes };
	yaml_parser_t yp;
	yaml_node_t *root, *instances = NULL;
	fb_rc rc;

	memset(out, 0, sizeof(*out));
	if (len > VKFED_FILE_MAX)
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "%s: more than %zu bytes", name, VKFED_FILE_MAX);
	if ((rc = vk_prescan(data, len, name, err)) != FB_OK)
		return rc;
	if (!yaml_parser_initialize(&yp))
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	yaml_parser_set_input_string(&yp, (const unsigned char *)data, len);
	if (!yaml_parser_load(&yp, &p.doc)) {
		yaml_parser_delete(&yp);
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s: not a YAML file", name);
	}
	yaml_parser_delete(&yp);
	root = yaml_document_get_root_node(&p.doc);
	if (root == NULL || root->type != YAML_MAPPING_NODE) {
		rc = FB_ERR_SET(
		    err, FB_ERR_INVALID, "%s: expected a mapping (federation.yml)", name);
		goto out;
	}
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
	     pr < root->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(&p.doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(&p.doc, pr->value);
		const char *ks = k ? vk_scalar(&p, k, "a key") : NULL, *s;
		bool *flag = NULL;

		if (ks == NULL || v == NULL) {
			rc = err->rc ? err->rc : FB_ERR_INVALID;
			goto out;
		}
		if (strcmp(ks, "instances") == 0) {
			if (instances != NULL) {
				rc = vk_fail(&p, k, "instances: given twice");
				goto out;
			}
			instances = v;
			continue;
		}
		if (strcmp(ks, "enabled") == 0)
			flag = &out->enabled;
		else if (strcmp(ks, "mtlsEnabled") == 0)
			flag = &out->mtls_enabled;
		if (flag != NULL || strcmp(ks, "localTenant") == 0) {
			if ((s = vk_scalar(&p, v, ks)) == NULL) {
				rc = err->rc;
				goto out;
			}
			if (flag != NULL && !vk_bool(s, flag)) {
				rc = vk_fail(&p, v, "%s: expected true or false", ks);
				goto out;
			}
			if (flag == NULL) {
				if (out->local_tenant != NULL) {
					rc = vk_fail(&p, k, "localTenant: given twice");
					goto out;
				}
				if (!fb_conf_tenant_id_valid(s)) {
					rc = vk_fail(&p, v,
					    "localTenant: %.40s is not a tenantID (8 to 16 letters "
					    "and "
					    "digits)",
					    s);
					goto out;
				}
				if ((out->local_tenant = strdup(s)) == NULL) {
					rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
					goto out;
				}
				out->local_line = (unsigned)v->start_mark.line + 1;
				out->local_col = (unsigned)v->start_mark.column + 1;
			}
			continue;
		}
		vk_note(&p, k, "%.60s: not used by fedbridge, ignored", ks);
	}
	if (out->local_tenant == NULL) {
		rc = vk_fail(&p, root, "missing \"localTenant\"");
		goto out;
	}
	if (instances == NULL || instances->type != YAML_SEQUENCE_NODE) {
		rc = vk_fail(&p, instances ? instances : root, "instances: expected a list");
		goto out;
	}
	out->n =
	    (size_t)(instances->data.sequence.items.top - instances->data.sequence.items.start);
	if (out->n > VKFED_INSTANCES_MAX) {
		rc = vk_fail(&p, instances, "instances: more than %d", VKFED_INSTANCES_MAX);
		out->n = 0;
		goto out;
	}
	if (out->n > 0 && (out->v = calloc(out->n, sizeof(*out->v))) == NULL) {
		out->n = 0;
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < out->n; i++) {
		yaml_node_t *it =
		    yaml_document_get_node(&p.doc, instances->data.sequence.items.start[i]);
		if (it == NULL || (rc = vk_instance(&p, it, i, &out->v[i])) != FB_OK) {
			rc = rc != FB_OK ? rc : FB_ERR_INVALID;
			goto out;
		}
		for (size_t j = 0; j < i && out->v[i].name != NULL; j++)
			if (out->v[j].name != NULL && strcmp(out->v[j].name, out->v[i].name) == 0) {
				rc = vk_fail(&p, it, "instances[%zu]: a second instance named %s",
				    i, out->v[i].name);
				goto out;
			}
	}
	rc = FB_OK;
out:
	yaml_document_delete(&p.doc);
	if (rc != FB_OK)
		fb_vkfed_free(out);
	return rc;
}

void
fb_vkfed_free(struct fb_vkfed *f)
{
	for (size_t i = 0; i < f->n; i++) {
		struct fb_vkfed_instance *in = &f->v[i];
		free(in->address);
		free(in->name);
		free(in->cert_cn);
		free(in->ssl_cert);
		free(in->ssl_key);
		free(in->cacert);
		for (size_t j = 0; j < in->n_tenants; j++)
			free(in->tenants[j]);
		free(in->tenants);
	}
	free(f->v);
	free(f->local_tenant);
	memset(f, 0, sizeof(*f));
}
