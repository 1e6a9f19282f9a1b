/*
 * Fuzz target for the revocation feed consumer: any bytes as the payload of
 * a remote's feed document (as if its signature had verified), applied to
 * a memory store for one fixed remote. Whatever a remote sends, only its own
 * tokens' revocations may be recorded, and nothing may crash.
 */
#include "fb_federation.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct fb_conf *conf;
static struct fb_store *store;
static unsigned long runs;

static const char conf_text[] =
    "installation: {name: installation_B, domain: b.example, public_url: "
    "https://sso.b.example, listen: 127.0.0.1:8080}\n"
    "keys: {signing: [k.pem], fid_secret: fid.secret}\n"
    "store: \"memory:\"\n"
    "tenants:\n"
    "  - id: HWqHczeM2P\n"
    "    providers: [{name: kc, type: oidc, issuer: https://kc.b.example, client_id: x, "
    "client_secret_file: s}]\n"
    "    mapping: [{provider: kc, fid: pairwise(claims.sub)}]\n"
    "    trusts:\n"
    "      - {remote: installation_A, tenants: [HZnKEBoqDU], relay: a.example:443, ca: c, "
    "client_cert: c, client_key: k, keys: k, issuer: https://sso.a.example}\n";

static void
setup(void)
{
	struct fb_conf_diags d = { 0 };
	struct fb_store_opts o = { .kind = FB_STORE_MEMORY };

	conf = fb_conf_load_buffer(
	    conf_text, sizeof(conf_text) - 1, "fuzz.yaml", "/nonexistent", FB_CONF_NO_FS, &d);
	if (conf == NULL || fb_store_open(&o, &store, NULL) != FB_OK)
		abort();
	fb_conf_diags_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct fb_conf_trust *t;
	struct fb_feed_cursor cursor = { 0 };
	struct fb_feed_taken taken;
	json_t *doc;

	if (conf == NULL)
		setup();
	t = &conf->tenants[0].trusts[0];
	doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (doc == NULL)
		return 0;
	(void)fb_bridge_feed_apply(
	    store, conf, t->remote, t->issuer, doc, 1800000000, &cursor, &taken, NULL);
	json_decref(doc);
	/* Reset the cursor so every input is read as an answer to since=0. */
	cursor = (struct fb_feed_cursor){ 0 };
	(void)fb_store_cursor_set(store, t->remote, &cursor, NULL);
	/* A fresh memory store now and then keeps a long run's memory flat. */
	if (++runs % 4096 == 0) {
		struct fb_store_opts o = { .kind = FB_STORE_MEMORY };
		fb_store_close(store);
		if (fb_store_open(&o, &store, NULL) != FB_OK)
			abort();
	}
	return 0;
}
