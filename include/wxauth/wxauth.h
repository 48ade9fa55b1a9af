/*
 * wxauth/wxauth.h — the umbrella header of libwxauth, WeChat web authorization (OAuth 2.0).
 * Include this one; the focused headers it pulls in are listed below.
 */
#ifndef WXAUTH_H
#define WXAUTH_H

#include <wxauth/base.h>
#include <wxauth/errcode.h>
#include <wxauth/url.h>
#include <wxauth/state.h>
#include <wxauth/client.h>

#define WXAUTH_VERSION "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

/* One-time library initialisation (libsodium). Safe to call more than once; 0 on success. */
int wx_init(void);

#ifdef __cplusplus
}
#endif
#endif
