/* fedbridge keys: generate, list, jwks. */
#include "cli_int.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_keys[] =
    "usage: fedbridge keys generate [--alg ES256|EdDSA] --out FILE\n"
    "       fedbridge keys list -c FILE\n"
    "       fedbridge keys jwks -c FILE\n"
    "\n"
    "generate  writes a new signing key (PEM, mode 0600; never over an existing file)\n"
    "list      prints each configured signing key: kid, algorithm, role, file\n"
    "jwks      prints the public JWKS that remote installations verify tokens with\n"
    "\n"
    "  -a, --alg ALG       ES256 (default) or EdDSA\n"
    "  -o, --out FILE      where generate writes the key\n"
    "  -c, --config FILE   the configuration file\n"
    "  -h, --help          this text\n";

int
fb_cli_keys(int argc, char **argv)
{
	static const struct option opts[] = { { "alg", required_argument, NULL, 'a' },
		{ "out", required_argument, NULL, 'o' }, { "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	const char *verb, *out = NULL, *config = NULL;
	enum fb_verify_alg alg = FB_ALG_ES256;
	struct fb_err err = { 0 };
	struct fb_federation *fed = NULL;
	struct fb_conf *conf;
	int ch, status = 1;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_keys, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	verb = argv[1];
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, "a:o:c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			if (strcmp(optarg, "ES256") == 0)
				alg = FB_ALG_ES256;
			else if (strcmp(optarg, "EdDSA") == 0)
				alg = FB_ALG_EDDSA;
			else {
				fprintf(stderr, "fedbridge keys: --alg must be ES256 or EdDSA\n");
				return EXIT_USAGE;
			}
			break;
		case 'o':
			out = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'h':
			fputs(usage_keys, stdout);
			return 0;
		default:
			fputs(usage_keys, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(
		    stderr, "fedbridge keys: unexpected argument %s\n%s", argv[optind], usage_keys);
		return EXIT_USAGE;
	}
	if (strcmp(verb, "generate") == 0) {
		if (out == NULL) {
			fprintf(stderr, "fedbridge keys generate: --out FILE is required\n");
			return EXIT_USAGE;
		}
		if (fb_keys_generate(out, alg, &err) != FB_OK) {
			fprintf(stderr, "fedbridge keys generate: %s\n", err.msg);
			return 1;
		}
		printf("%s: new %s key\n", out, fb_verify_alg_name(alg));
		return 0;
	}
	if (strcmp(verb, "list") != 0 && strcmp(verb, "jwks") != 0) {
		fprintf(stderr, "fedbridge keys: unknown action '%s'\n%s", verb, usage_keys);
		return EXIT_USAGE;
	}
	if (config == NULL) {
		fprintf(stderr, "fedbridge keys %s: -c FILE is required\n", verb);
		return EXIT_USAGE;
	}
	if ((conf = fb_cli_load_conf(config)) == NULL)
		return EXIT_USAGE;
	if (fb_federation_load(conf, &fed, &err) != FB_OK) {
		fprintf(stderr, "%s: %s\n", config, err.msg);
		status = EXIT_USAGE;
	} else if (strcmp(verb, "jwks") == 0) {
		printf("%s\n", fb_federation_jwks(fed));
		status = 0;
	} else {
		for (size_t i = 0; i < conf->keys.signing.n; i++) {
			struct fb_signing_key *k = NULL;
			if (fb_signing_key_load(conf->keys.signing.v[i], &k, &err) != FB_OK) {
				fprintf(stderr, "%s\n", err.msg);
				continue;
			}
			printf("%s  %-5s  %-9s  %s\n", fb_signing_key_kid(k),
			    fb_verify_alg_name(fb_signing_key_alg(k)),
			    i == 0 ? "signing" : "published", fb_signing_key_path(k));
			fb_signing_key_free(k);
		}
		status = 0;
	}
	fb_federation_free(fed);
	fb_conf_unref(conf);
	return status;
}
