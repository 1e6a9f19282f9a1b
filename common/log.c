/* Log lines to stderr, one write per line so concurrent lines never interleave. */
#include "fb_common.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The formatted message, and what of it is written once escaped. */
#define LOG_MSG_MAX 2048
#define LOG_TEXT_MAX 4096
/* The JSON form doubles at most the escaped text's quotes and backslashes. */
#define LOG_LINE_MAX (2 * LOG_TEXT_MAX + 256)

/*
 * The level and the format in one word, so a reload (fb_log_setup on the
 * main thread) and the workers' lines never race and a line never sees a
 * new level with an old format: the level in the low byte, the format above.
 */
#define LOG_FORMAT_SHIFT 8
#define LOG_LEVEL_MASK 0xffu
static atomic_uint log_setting = FB_LOG_INFO | (FB_LOG_TEXT << LOG_FORMAT_SHIFT);

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
fb_log_setup(enum fb_log_level min, enum fb_log_format format)
{
	atomic_store_explicit(&log_setting, (unsigned)min | ((unsigned)format << LOG_FORMAT_SHIFT),
	    memory_order_relaxed);
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

/*
 * Values from outside (a browser's path, an IdP's error text, a remote's
 * jti) reach messages through %s: the whole message is escaped once here,
 * so no value can end the line, forge the next one or drive a terminal, in
 * either format, and a JSON line is always complete.
 */
void
fb_log(enum fb_log_level level, const char *fmt, ...)
{
	char msg[LOG_MSG_MAX], ts[96];
	struct fb_buf text, line;
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;
	unsigned setting = atomic_load_explicit(&log_setting, memory_order_relaxed);
	enum fb_log_format format = (enum fb_log_format)(setting >> LOG_FORMAT_SHIFT);

	if ((unsigned)level < (setting & LOG_LEVEL_MASK))
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		(void)snprintf(msg, sizeof(msg), "(unformattable message: %s)", fmt);

	(void)clock_gettime(CLOCK_REALTIME, &now);
	(void)gmtime_r(&now.tv_sec, &tm);
	(void)snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);

	fb_buf_init(&text, LOG_TEXT_MAX + 1);
	(void)fb_text_escape(&text, msg, strlen(msg), LOG_TEXT_MAX - sizeof(FB_ESCAPE_CUT_MARKER));
	if (n >= (int)sizeof(msg)) /* vsnprintf cut it */
		(void)fb_buf_append(&text, FB_ESCAPE_CUT_MARKER, sizeof(FB_ESCAPE_CUT_MARKER) - 1);
	fb_buf_init(&line, LOG_LINE_MAX);
	if (format == FB_LOG_JSON) {
		(void)fb_buf_printf(
		    &line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts, level_names[level]);
		(void)fb_buf_append_json_string(&line, text.data ? text.data : "");
		(void)fb_buf_append(&line, "}\n", 2);
	} else {
		(void)fb_buf_printf(
		    &line, "%s %s %s\n", ts, level_names[level], text.data ? text.data : "");
	}
	if (line.len > 0)
		(void)!write(STDERR_FILENO, line.data, line.len);
	fb_buf_free(&line);
	fb_buf_free(&text);
}
