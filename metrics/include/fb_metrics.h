/*
 * The bridge's counters and latency histograms (metrics.c), rendered in the
 * Prometheus text format for GET /metrics.
 */
#ifndef FB_METRICS_H
#define FB_METRICS_H

#include "fb_common.h"

#include <stdint.h>

enum fb_metric {
	FB_METRIC_LOGIN, /* provider, outcome (allowed | refused) */
	FB_METRIC_REFUSAL, /* rule (a mapping rule's path, or the login step that failed) */
	FB_METRIC_TOKEN, /* audience */
	FB_METRIC_IDP_REFRESH_FAILURE, /* provider */
	FB_METRIC_FEED_FAILURE, /* remote */
	FB_METRIC_FEED_QUOTA, /* remote */
	FB_METRIC_ANONYMOUS_REFUSAL, /* endpoint, reason */
	FB_METRIC_IDP_MISCONFIGURED, /* provider */
};
enum fb_hist { FB_HIST_VALIDATE, FB_HIST_LOGIN_CALLBACK };
/* Adds one to a counter; b is NULL for families with one label. Thread-safe. */
void fb_metric_count(enum fb_metric family, const char *a, const char *b);
/* Records one duration (nanoseconds) in a histogram. Lock-free. */
void fb_metric_observe(enum fb_hist h, int64_t ns);
/* Appends every counter and histogram in the Prometheus text format. */
void fb_metrics_render(struct fb_buf *out);

#endif
