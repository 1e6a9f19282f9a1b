/*
 * The bridge's side of the admin's rules: the file reads mapping/ leaves to
 * its caller (fid secret, pin tables), and the inbound policy the verifier
 * calls on every relay check.
 */
#include "fb_federation.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PINS_FILE_MAX ((size_t)1 << 30)
/* Inbound policies are small; this is ample for lower(), split() and friends. */
#define INBOUND_SCRATCH 16384

static fb_rc
read_pins(void *arg, const char *path, char **data, size_t *len, struct fb_err *err)
{
	(void)arg;
	return fb_file_read(path, PINS_FILE_MAX, data, len, err);
}

fb_rc
fb_bridge_rules_load(const struct fb_conf *conf, struct fb_rules **out, struct fb_conf_diags *diags)
{
	struct fb_rules_params params = { .read_file = read_pins };
	struct fb_err err = { 0 };
	char *secret = NULL;
	size_t len = 0;
	fb_rc rc;

	*out = NULL;
	if (conf->keys.fid_secret != NULL &&
	    fb_secret_read(conf->keys.fid_secret, FB_SECRET_SHORT_MAX, &secret, &len, &err) !=
	        FB_OK) {
		fb_conf_diag_add(diags, conf, fb_conf_pos_of(conf, &conf->keys.fid_secret),
		    "keys.fid_secret: %s", err.msg);
		return FB_ERR_CONFIG;
	}
	params.fid_secret = (const unsigned char *)secret;
	params.fid_secret_len = len;
	rc = fb_rules_compile(conf, &params, out, diags);
	fb_secret_free(secret);
	return rc;
}

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void
scratch_free(void *p)
{
	fb_expr_scratch_free(p);
}

static void
scratch_key_make(void)
{
	(void)pthread_key_create(&scratch_key, scratch_free);
}

/* The calling thread's scratch, made on first use; NULL when memory ran out. */
static struct fb_expr_scratch *
thread_scratch(void)
{
	struct fb_expr_scratch *s;

	(void)pthread_once(&scratch_once, scratch_key_make);
	if ((s = pthread_getspecific(scratch_key)) != NULL) {
		fb_expr_scratch_reset(s);
		return s;
	}
	if (fb_expr_scratch_new(INBOUND_SCRATCH, &s) != FB_OK)
		return NULL;
	if (pthread_setspecific(scratch_key, s) != 0) {
		fb_expr_scratch_free(s);
		return NULL;
	}
	return s;
}

bool
fb_bridge_inbound_policy(void *arg, const struct fb_verify_result *r)
{
	const struct fb_rules *rules = arg;
	struct fb_expr_scratch *s;
	json_t *aud;

	if (rules == NULL || r->claims == NULL || (s = thread_scratch()) == NULL)
		return false;
	/* The verifier has checked that aud is the receiving tenant. */
	aud = json_object_get(r->claims, "aud");
	if (!json_is_string(aud))
		return false;
	return fb_rules_inbound(rules, json_string_value(aud), r->tid, r->claims, s, NULL) ==
	    FB_TRUTH_TRUE;
}
