/* fedbridge keys: generate, list, jwks. */
#include "cli_int.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage_keys[] =
    "usage: fedbridge keys generate [--alg ES256|EdDSA] --out FILE\n"
    "       fedbridge keys list -c FILE\n"
    "       fedbridge keys jwks -c FILE\n"
    "       fedbridge keys rotate -c FILE [--alg ES256|EdDSA] [--force]\n"
    "\n"
    "generate  writes a new signing key (PEM, mode 0600; never over an existing file)\n"
    "list      prints each signing key: kid, algorithm, state, dates, file\n"
    "jwks      prints the public JWKS that remote installations verify tokens with\n"
    "rotate    moves the keyring of keys.signing_dir one step: creates the first key;\n"
    "          else publishes a next key; else, once the next key has been published\n"
    "          for keys.publish_ahead, makes it active and retires the active one;\n"
    "          deletes retired keys whose tokens have all expired. Run it from cron\n"
    "          and send the bridge SIGHUP afterwards.\n"
    "\n"
    "  -a, --alg ALG       ES256 (default) or EdDSA\n"
    "  -o, --out FILE      where generate writes the key\n"
    "  -c, --config FILE   the configuration file\n"
    "  -f, --force         rotate: promote the next key before publish_ahead has passed\n"
    "  -h, --help          this text\n";

static void
print_time(const char *label, int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0)
		return;
	(void)gmtime_r(&tt, &tm);
	(void)strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("  %s %s", label, buf);
}

static int
keyring_list(const char *dir)
{
	struct fb_keyring *kr = NULL;
	struct fb_err err = { 0 };
	char path[4200];

	if (fb_keyring_load(dir, false, &kr, &err) != FB_OK) {
		fprintf(stderr, "fedbridge keys list: %s\n", err.msg);
		return 1;
	}
	for (size_t i = 0; i < kr->n; i++) {
		const struct fb_keyring_entry *k = &kr->v[i];
		fb_keyring_key_path(kr, k, path, sizeof(path));
		printf("%s  %-5s  %-7s", k->kid, fb_verify_alg_name(k->alg),
		    fb_key_state_name(k->state));
		print_time("created", k->created);
		print_time("activated", k->activated);
		print_time("retired", k->retired);
		print_time("exp", k->exp);
		printf("  %s\n", path);
	}
	if (kr->n == 0)
		printf("%s: no keys yet (fedbridge keys rotate creates the first)\n", dir);
	fb_keyring_free(kr);
	return 0;
}

static int
keys_rotate(const struct fb_conf *conf, enum fb_verify_alg alg, bool force)
{
	struct fb_err err = { 0 };
	struct fb_buf report;
	int status = 0;

	fb_buf_init(&report, 8192);
	if (fb_keyring_rotate(conf, alg, force, (int64_t)time(NULL), &report, &err) != FB_OK) {
		fprintf(stderr, "fedbridge keys rotate: %s\n", err.msg);
		status = 1;
	}
	if (report.data != NULL)
		fputs(report.data, stdout);
	fb_buf_free(&report);
	return status;
}

int
fb_cli_keys(int argc, char **argv)
{
	static const struct option opts[] = { { "alg", required_argument, NULL, 'a' },
		{ "out", required_argument, NULL, 'o' }, { "config", required_argument, NULL, 'c' },
		{ "force", no_argument, NULL, 'f' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *verb, *out = NULL, *config = NULL;
	enum fb_verify_alg alg = FB_ALG_ES256;
	bool force = false;
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
	while ((ch = getopt_long(argc, argv, "a:o:c:fh", opts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			if (strcmp(optarg, "ES256") == 0)
				alg = FB_ALG_ES256;
			else if (strcmp(optarg, "EdDSA") == 0)
				alg = FB_ALG_EDDSA;
			else {
				return fb_cli_usage(
				    "keys", usage_keys, "--alg must be ES256 or EdDSA");
			}
			break;
		case 'o':
			out = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'f':
			force = true;
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
		return fb_cli_usage("keys", usage_keys, "unexpected argument %s", argv[optind]);
	}
	if (strcmp(verb, "generate") == 0) {
		if (out == NULL) {
			return fb_cli_usage("keys", usage_keys, "generate: --out FILE is required");
		}
		if (fb_keys_generate(out, alg, &err) != FB_OK) {
			fprintf(stderr, "fedbridge keys generate: %s\n", err.msg);
			return 1;
		}
		printf("%s: new %s key\n", out, fb_verify_alg_name(alg));
		return 0;
	}
	if (strcmp(verb, "list") != 0 && strcmp(verb, "jwks") != 0 && strcmp(verb, "rotate") != 0) {
		return fb_cli_usage("keys", usage_keys, "unknown action '%s'", verb);
	}
	if (config == NULL) {
		return fb_cli_usage("keys", usage_keys, "%s: -c FILE is required", verb);
	}
	if ((conf = fb_cli_load_conf(config, NULL)) == NULL)
		return EXIT_USAGE;
	if (strcmp(verb, "rotate") == 0)
		status = keys_rotate(conf, alg, force);
	else if (strcmp(verb, "list") == 0 && conf->keys.signing_dir != NULL)
		status = keyring_list(conf->keys.signing_dir);
	else if (fb_federation_load(conf, &fed, &err) != FB_OK) {
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
