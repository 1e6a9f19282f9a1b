/*
 * fedbridge sessions: login sessions, revocations, one-time use and audit.
 * Today the session identifier; the store interface builds on it.
 */
#ifndef FB_SESSIONS_H
#define FB_SESSIONS_H

#include "fb_common.h"

/* 128 random bits, base64url: 22 characters. */
#define FB_SESSION_ID_BYTES 16
#define FB_SESSION_ID_LEN 22

/* Writes a new random session id and a NUL into out. */
fb_rc fb_session_id_new(char out[FB_SESSION_ID_LEN + 1]);

/* True when s is a well-formed session id (it says nothing of whether it exists). */
bool fb_session_id_valid(const char *s, size_t len);

#endif
