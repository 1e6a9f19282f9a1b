/* Log lines to stderr, one write per line so concurrent lines never interleave. */
#include "fb_common.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum fb_log_level log_min = FB_LOG_INFO;
static enum fb_log_format log_format = FB_LOG_TEXT;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
fb_log_setup(enum fb_log_level min, enum fb_log_format format)
{
	log_min = min;
	log_format = format;
}

bool
fb_log_level_parse(const char *s, enum fb_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum fb_log_level)i;
			return true;
		}
	}
	return false;
}

void
fb_log(enum fb_log_level level, const char *fmt, ...)
{
	char msg[2048], ts[96];
	struct fb_buf line;
	struct timespec now;
	struct tm tm;
	va_list ap;

	if (level < log_min)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	(void)clock_gettime(CLOCK_REALTIME, &now);
	(void)gmtime_r(&now.tv_sec, &tm);
	(void)snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);

	fb_buf_init(&line, sizeof(msg) * 2 + 128);
	if (log_format == FB_LOG_JSON) {
		(void)fb_buf_printf(
		    &line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts, level_names[level]);
		(void)fb_buf_append_json_string(&line, msg);
		(void)fb_buf_append(&line, "}\n", 2);
	} else {
		(void)fb_buf_printf(&line, "%s %s %s\n", ts, level_names[level], msg);
	}
	if (line.len > 0)
		(void)!write(STDERR_FILENO, line.data, line.len);
	fb_buf_free(&line);
}
