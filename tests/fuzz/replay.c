/*
 * Replays a fuzz target's corpus as an ordinary test, so every input the
 * fuzzer ever kept runs in the normal test run, with or without clang.
 * Arguments are files or directories of files.
 */
#include "fb_common.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT ((size_t)2 * 1024 * 1024)

static int
replay_file(const char *path, size_t *count)
{
	struct fb_err err = { 0 };
	char *data = NULL;
	size_t len = 0;

	if (fb_file_read(path, REPLAY_MAX_INPUT, &data, &len, &err) != FB_OK) {
		fprintf(stderr, "replay: %s\n", err.msg);
		return -1;
	}
	(void)LLVMFuzzerTestOneInput((const uint8_t *)data, len);
	free(data);
	(*count)++;
	return 0;
}

static int
replay_path(const char *path, size_t *count)
{
	struct dirent *e;
	struct stat st;
	char child[4096];
	int rc = 0;
	DIR *d;

	if (stat(path, &st) != 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path, count);
	if ((d = opendir(path)) == NULL) {
		perror(path);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		(void)snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
		if (replay_path(child, count) != 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

int
main(int argc, char **argv)
{
	size_t count = 0;
	int rc = 0;

	for (int i = 1; i < argc; i++)
		if (replay_path(argv[i], &count) != 0)
			rc = 1;
	if (count == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		return 1;
	}
	printf("replayed %zu inputs\n", count);
	return rc;
}
