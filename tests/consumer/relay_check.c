/*
 * A relay that embeds libfedverify, built against the installed library
 * through pkg-config: relay_check JWKS_FILE ISSUER REMOTE_TENANT
 * LOCAL_TENANT PEER_CERT_PEM TOKEN prints the reason code and exits 0 on
 * allow.
 */
#include <fb_verify.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FILE_MAX (1 << 20)

/* A relay reads its files its own way: only the check is libfedverify's. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data = malloc(FILE_MAX + 1);

	if (f == NULL || data == NULL || (*len = fread(data, 1, FILE_MAX + 1, f)) > FILE_MAX ||
	    ferror(f)) {
		fprintf(stderr, "%s: cannot read it (at most %d bytes)\n", path, FILE_MAX);
		exit(2);
	}
	data[*len] = '\0';
	(void)fclose(f);
	return data;
}

int
main(int argc, char **argv)
{
	struct fb_verify_opts o = {
		.clock_skew = 30, .max_lifetime = 900, .max_token = 8192, .cache_entries = 1024
	};
	struct fb_verify_keyset *ks = NULL;
	struct fb_verify_trusts *t = NULL;
	struct fb_verifier *v = NULL;
	struct fb_verify_result r;
	struct fb_verify_input in;
	struct fb_err err = { 0 };
	unsigned char sha[FB_VERIFY_SHA256_LEN];
	const char *remote[1];
	char *jwks, *pem;
	size_t jl, pl;
	int status;

	if (argc != 7) {
		fprintf(stderr,
		    "usage: relay_check JWKS ISSUER REMOTE_TENANT LOCAL_TENANT PEER_CERT "
		    "TOKEN\n");
		return 2;
	}
	jwks = slurp(argv[1], &jl);
	pem = slurp(argv[5], &pl);
	remote[0] = argv[3];
	struct fb_verify_trust_spec spec = { argv[4], argv[2], remote, 1, NULL };
	if (fb_verify_keyset_from_jwks(jwks, jl, &ks, &err) != FB_OK ||
	    fb_verify_cert_sha256(pem, pl, sha, &err) != FB_OK ||
	    (spec.keys = ks, fb_verify_trusts_new(&spec, 1, &t, &err)) != FB_OK ||
	    fb_verifier_new(&o, &v, &err) != FB_OK) {
		fprintf(stderr, "%s\n", err.msg);
		return 2;
	}
	fb_verifier_set_trusts(v, t);
	memset(&in, 0, sizeof(in));
	in.token = argv[6];
	in.token_len = strlen(argv[6]);
	in.receiving_tenant = argv[4];
	in.peer_cert_sha256 = sha;
	in.now = time(NULL);
	status = fb_verifier_check(v, &in, &r) == FB_VERIFY_ALLOW ? 0 : 1;
	printf("%s%s%s\n", fb_verify_reason_name(r.reason), status == 0 ? " " : "",
	    status == 0 ? r.fid : "");
	fb_verify_result_clear(&r);
	fb_verifier_free(v);
	fb_verify_keyset_unref(ks);
	free(jwks);
	free(pem);
	return status;
}
