/*
 * The logger's setting changes under load, as a reload does while workers
 * log: every line must be whole and in one format. Built with
 * -DFB_TSAN=ON (scripts/test.sh does), ThreadSanitizer fails this test on
 * any data race between fb_log_setup and fb_log.
 */
#include "fb_common.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOGGERS 4
#define LINES_EACH 2000
#define SETUPS 2000
#define LINE_MAX_READ 8192

static void *
logger(void *arg)
{
	long id = (long)arg;

	for (int i = 0; i < LINES_EACH; i++)
		fb_log(FB_LOG_WARN, "logger %ld line %d", id, i);
	return NULL;
}

static int
fail(const char *what, const char *line)
{
	fprintf(stdout, "FAIL: %s: %s\n", what, line);
	return 1;
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");
	char path[PATH_MAX], line[LINE_MAX_READ];
	pthread_t t[LOGGERS];
	int fd, saved = dup(STDERR_FILENO);
	size_t lines = 0;
	FILE *f;

	/* Where the other tests put theirs: TMPDIR when set. */
	(void)snprintf(
	    path, sizeof(path), "%s/fb-log-race.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
	fd = mkstemp(path);
	if (fd < 0 || saved < 0 || dup2(fd, STDERR_FILENO) < 0)
		return fail("cannot redirect stderr", path);
	for (long i = 0; i < LOGGERS; i++)
		if (pthread_create(&t[i], NULL, logger, (void *)i) != 0)
			return fail("pthread_create", "");
	for (int i = 0; i < SETUPS; i++)
		fb_log_setup(FB_LOG_INFO, i % 2 == 0 ? FB_LOG_JSON : FB_LOG_TEXT);
	for (int i = 0; i < LOGGERS; i++)
		(void)pthread_join(t[i], NULL);
	(void)dup2(saved, STDERR_FILENO);
	(void)close(saved);
	(void)close(fd);

	if ((f = fopen(path, "r")) == NULL)
		return fail("cannot read back", path);
	(void)unlink(path);
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strlen(line);
		bool json = line[0] == '{';

		lines++;
		if (n == 0 || line[n - 1] != '\n')
			return fail("a line without its newline", line);
		if (json &&
		    (strncmp(line, "{\"ts\":\"", 7) != 0 ||
		        strstr(line, "\"level\":\"warn\",\"msg\":\"logger ") == NULL ||
		        strcmp(line + n - 3, "\"}\n") != 0))
			return fail("a JSON line not whole", line);
		if (!json && strstr(line, "Z warn logger ") == NULL)
			return fail("a text line not whole", line);
	}
	(void)fclose(f);
	if (lines != (size_t)LOGGERS * LINES_EACH) {
		(void)snprintf(line, sizeof(line), "%zu of %d", lines, LOGGERS * LINES_EACH);
		return fail("lines lost", line);
	}
	printf("ok: %zu lines whole across %d setting changes\n", lines, SETUPS);
	return 0;
}
