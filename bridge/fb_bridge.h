/* What bridge/ stands on while the login endpoints and the daemon share it. */
#ifndef FB_BRIDGE_H
#define FB_BRIDGE_H

#include "fb_daemon.h"
#include "fb_federation.h"
#include "fb_metrics.h"

#endif
