/*
 * The signing keyring: a directory (mode 0700) holding <kid>.pem files
 * (0600) and keyring.json with each key's state. `fedbridge keys rotate`
 * moves it one step at a time, SPIFFE-style: a next key is published ahead
 * of use (several JWKS refresh intervals), then becomes the active key; the
 * old active key is retired and stays published until every token it signed
 * has expired, then it is deleted.
 */
#include "fb_federation.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYRING_FILE "keyring.json"
#define KEYRING_MAX_BYTES 65536
#define KEYRING_MAX_KEYS 16

static const char *const state_names[] = { "next", "active", "retired" };

const char *
fb_key_state_name(enum fb_key_state s)
{
	return (unsigned)s < 3 ? state_names[s] : "unknown";
}

void
fb_keyring_free(struct fb_keyring *kr)
{
	if (kr == NULL)
		return;
	free(kr->v);
	free(kr->dir);
	free(kr);
}

/* The directory holds private keys: it must be ours alone. */
static fb_rc
dir_check(const char *dir, bool create, struct fb_err *err)
{
	struct stat st;

	if (stat(dir, &st) != 0) {
		if (errno == ENOENT && create && mkdir(dir, 0700) == 0)
			return FB_OK;
		if (errno == ENOENT)
			return FB_ERR_SET(err, FB_ERR_NOTFOUND,
			    "keyring %s does not exist: run fedbridge keys rotate -c FILE to "
			    "create "
			    "the first key",
			    dir);
		return FB_ERR_SET(err, FB_ERR_IO, "keyring %s: %s", dir, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return FB_ERR_SET(err, FB_ERR_INVALID, "keyring %s is not a directory", dir);
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "keyring %s holds private keys but is accessible by group or others (mode "
		    "%04o); "
		    "run chmod 700 on it",
		    dir, (unsigned)(st.st_mode & 07777));
	return FB_OK;
}

static bool
kid_valid(const char *kid)
{
	size_t n = 0;
	unsigned char raw[32];

	return strlen(kid) == 43 && fb_b64url_decode(kid, 43, raw, sizeof(raw), &n) == FB_OK &&
	    n == 32;
}

fb_rc
fb_keyring_load(const char *dir, bool create, struct fb_keyring **out, struct fb_err *err)
{
	struct fb_keyring *kr;
	char path[4096], *text = NULL;
	json_t *root = NULL, *keys, *e;
	json_error_t jerr;
	size_t len = 0, i;
	fb_rc rc;

	if ((rc = dir_check(dir, create, err)) != FB_OK)
		return rc;
	if ((kr = calloc(1, sizeof(*kr))) == NULL || (kr->dir = strdup(dir)) == NULL) {
		free(kr);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	(void)snprintf(path, sizeof(path), "%s/%s", dir, KEYRING_FILE);
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		*out = kr; /* a new keyring: empty */
		return FB_OK;
	}
	if ((rc = fb_file_read(path, KEYRING_MAX_BYTES, &text, &len, err)) != FB_OK)
		goto done;
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	keys = json_object_get(root, "keys");
	if (!json_is_array(keys) || json_array_size(keys) > KEYRING_MAX_KEYS) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "%s: expected {\"keys\": [...]} (%s)", path,
		    root ? "wrong shape" : jerr.text);
		goto done;
	}
	if ((kr->v = calloc(json_array_size(keys) + 1, sizeof(*kr->v))) == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	json_array_foreach(keys, i, e)
	{
		struct fb_keyring_entry *k = &kr->v[kr->n];
		const char *kid = NULL, *alg = NULL, *state = NULL;
		json_int_t created = 0, activated = 0, retired = 0, exp = 0;

		if (json_unpack(e, "{s:s, s:s, s:s, s:I, s?I, s?I, s:I !}", "kid", &kid, "alg",
		        &alg, "state", &state, "created", &created, "activated", &activated,
		        "retired", &retired, "exp", &exp) != 0 ||
		    !kid_valid(kid)) {
			rc = FB_ERR_SET(err, FB_ERR_INVALID, "%s: key %zu is malformed", path, i);
			goto done;
		}
		memcpy(k->kid, kid, 44);
		k->alg = strcmp(alg, "EdDSA") == 0 ? FB_ALG_EDDSA : FB_ALG_ES256;
		if (strcmp(state, "next") == 0)
			k->state = FB_KEY_NEXT;
		else if (strcmp(state, "active") == 0)
			k->state = FB_KEY_ACTIVE;
		else if (strcmp(state, "retired") == 0)
			k->state = FB_KEY_RETIRED;
		else {
			rc = FB_ERR_SET(
			    err, FB_ERR_INVALID, "%s: key %s has an unknown state", path, kid);
			goto done;
		}
		k->created = created;
		k->activated = activated;
		k->retired = retired;
		k->exp = exp;
		kr->n++;
	}
done:
	json_decref(root);
	free(text);
	if (rc != FB_OK) {
		fb_keyring_free(kr);
		return rc;
	}
	*out = kr;
	return FB_OK;
}

void
fb_keyring_key_path(
    const struct fb_keyring *kr, const struct fb_keyring_entry *k, char *out, size_t size)
{
	(void)snprintf(out, size, "%s/%s.pem", kr->dir, k->kid);
}

/* Written whole to a temporary file, synced, then renamed over the old one. */
static fb_rc
keyring_save(const struct fb_keyring *kr, struct fb_err *err)
{
	char path[4096], tmp[4200];
	json_t *keys = json_array(), *root;
	char *text = NULL;
	fb_rc rc = FB_OK;
	int fd;

	for (size_t i = 0; keys != NULL && i < kr->n; i++) {
		const struct fb_keyring_entry *k = &kr->v[i];
		json_t *e = json_pack("{s:s, s:s, s:s, s:I, s:I}", "kid", k->kid, "alg",
		    fb_verify_alg_name(k->alg), "state", fb_key_state_name(k->state), "created",
		    (json_int_t)k->created, "exp", (json_int_t)k->exp);
		if (e != NULL && k->activated)
			(void)json_object_set_new(e, "activated", json_integer(k->activated));
		if (e != NULL && k->retired)
			(void)json_object_set_new(e, "retired", json_integer(k->retired));
		if (e == NULL || json_array_append_new(keys, e) != 0)
			rc = FB_ERR_NOMEM;
	}
	root = json_pack("{s:o}", "keys", keys);
	if (rc != FB_OK || root == NULL ||
	    (text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL) {
		json_decref(root);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	json_decref(root);
	(void)snprintf(path, sizeof(path), "%s/%s", kr->dir, KEYRING_FILE);
	(void)snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
		rc = FB_ERR_SET(err, FB_ERR_IO, "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			(void)close(fd);
		(void)unlink(tmp);
	} else if (close(fd) != 0 || rename(tmp, path) != 0) {
		rc = FB_ERR_SET(err, FB_ERR_IO, "%s: %s", path, strerror(errno));
		(void)unlink(tmp);
	}
	free(text);
	return rc;
}

/* A new key file named after its kid; returns the entry (not yet saved). */
static fb_rc
keyring_new_key(struct fb_keyring *kr, enum fb_verify_alg alg, enum fb_key_state state, int64_t now,
    int64_t exp, struct fb_err *err)
{
	struct fb_keyring_entry *k = &kr->v[kr->n];
	struct fb_signing_key *sk = NULL;
	char tmp[4200], final[4200];
	fb_rc rc;

	(void)snprintf(tmp, sizeof(tmp), "%s/new-key.pem.tmp", kr->dir);
	(void)unlink(tmp);
	if ((rc = fb_keys_generate(tmp, alg, err)) != FB_OK ||
	    (rc = fb_signing_key_load(tmp, &sk, err)) != FB_OK) {
		(void)unlink(tmp);
		return rc;
	}
	memset(k, 0, sizeof(*k));
	memcpy(k->kid, fb_signing_key_kid(sk), 44);
	fb_signing_key_free(sk);
	k->alg = alg;
	k->state = state;
	k->created = now;
	k->activated = state == FB_KEY_ACTIVE ? now : 0;
	k->exp = exp;
	fb_keyring_key_path(kr, k, final, sizeof(final));
	if (rename(tmp, final) != 0) {
		(void)unlink(tmp);
		return FB_ERR_SET(err, FB_ERR_IO, "%s: %s", final, strerror(errno));
	}
	kr->n++;
	return FB_OK;
}

static struct fb_keyring_entry *
keyring_find(struct fb_keyring *kr, enum fb_key_state state)
{
	for (size_t i = 0; i < kr->n; i++)
		if (kr->v[i].state == state)
			return &kr->v[i];
	return NULL;
}

fb_rc
fb_keyring_rotate(const struct fb_conf *conf, enum fb_verify_alg alg, bool force, int64_t now,
    struct fb_buf *report, struct fb_err *err)
{
	const char *dir = conf->keys.signing_dir;
	struct fb_keyring_entry *active, *next, *grown;
	struct fb_keyring *kr = NULL;
	int64_t lifetime = conf->keys.lifetime, ahead = conf->keys.publish_ahead;
	/* A retired key is needed until every token it signed has expired. */
	int64_t keep = conf->tokens.max_ttl + conf->tokens.clock_skew;
	char path[4200];
	fb_rc rc;
	size_t w = 0;

	if (dir == NULL)
		return FB_ERR_SET(err, FB_ERR_CONFIG,
		    "keys rotate works on keys.signing_dir; this configuration lists keys.signing");
	if ((rc = fb_keyring_load(dir, true, &kr, err)) != FB_OK || kr == NULL)
		return rc != FB_OK ? rc : FB_ERR_INTERNAL;
	grown = realloc(kr->v, (kr->n + 2) * sizeof(*kr->v));
	if (grown == NULL) {
		fb_keyring_free(kr);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	kr->v = grown;

	/* 1. Forget retired keys whose tokens have all expired. */
	for (size_t i = 0; i < kr->n; i++) {
		struct fb_keyring_entry *k = &kr->v[i];
		if (k->state == FB_KEY_RETIRED && k->retired + keep < now) {
			fb_keyring_key_path(kr, k, path, sizeof(path));
			(void)unlink(path);
			(void)fb_buf_printf(report, "deleted retired key %s\n", k->kid);
			continue;
		}
		kr->v[w++] = *k;
	}
	kr->n = w;

	active = keyring_find(kr, FB_KEY_ACTIVE);
	next = keyring_find(kr, FB_KEY_NEXT);
	if (active == NULL && next != NULL) {
		/* Nothing signs yet: waiting would only delay the first token. */
		next->state = FB_KEY_ACTIVE;
		next->activated = now;
		next->exp = now + lifetime;
		(void)fb_buf_printf(
		    report, "key %s is now active (there was no active key)\n", next->kid);
	} else if (active == NULL) {
		if ((rc = keyring_new_key(kr, alg, FB_KEY_ACTIVE, now, now + lifetime, err)) !=
		    FB_OK)
			goto done;
		(void)fb_buf_printf(report, "created key %s (%s), active\n", kr->v[kr->n - 1].kid,
		    fb_verify_alg_name(alg));
	} else if (next == NULL) {
		if ((rc = keyring_new_key(
		         kr, alg, FB_KEY_NEXT, now, now + ahead + lifetime, err)) != FB_OK)
			goto done;
		(void)fb_buf_printf(report,
		    "created key %s (%s), next: published now, it may sign %lld s from now; run "
		    "keys rotate again then\n",
		    kr->v[kr->n - 1].kid, fb_verify_alg_name(alg), (long long)ahead);
	} else if (now >= next->created + ahead || force) {
		active->state = FB_KEY_RETIRED;
		active->retired = now;
		active->exp = now;
		next->state = FB_KEY_ACTIVE;
		next->activated = now;
		next->exp = now + lifetime;
		(void)fb_buf_printf(report,
		    "key %s is now active; key %s is retired and stays published for %lld s\n",
		    next->kid, active->kid, (long long)keep);
	} else {
		(void)fb_buf_printf(report,
		    "next key %s may sign in %lld s (published %lld s ago, publish_ahead %lld s); "
		    "nothing changed (--force promotes it now)\n",
		    next->kid, (long long)(next->created + ahead - now),
		    (long long)(now - next->created), (long long)ahead);
	}
	rc = keyring_save(kr, err);
done:
	fb_keyring_free(kr);
	return rc;
}
