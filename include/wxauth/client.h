/*
 * wxauth/client.h — the relying-party client: build the authorize URL, parse the callback into a
 * typed outcome before any network call, and call WeChat's APIs over libcurl with TLS
 * verification always on. A client is immutable after wx_client_new() and safe to share between
 * threads. Results land in caller-owned structs with fixed, named capacities.
 */
#ifndef WXAUTH_CLIENT_H
#define WXAUTH_CLIENT_H

#include <stdint.h>
#include <wxauth/base.h>
#include <wxauth/state.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WX_MAX_TOKEN   512 /* WeChat: reserve 512 characters for tokens */
#define WX_MAX_ID      128 /* openid, unionid */
#define WX_MAX_CODE    128
#define WX_MAX_URLTEXT 1024

#define WX_DEFAULT_OPEN_BASE "https://open.weixin.qq.com"
#define WX_DEFAULT_API_BASE  "https://api.weixin.qq.com"

enum wx_log_severity { WX_SEV_ERROR, WX_SEV_WARN, WX_SEV_INFO, WX_SEV_DEBUG };

struct wx_client_config {
    const char *appid;               /* required */
    const char *secret;              /* required for code exchange and the basic token */
    const char *open_base;           /* NULL: WX_DEFAULT_OPEN_BASE */
    const char *api_base;            /* NULL: WX_DEFAULT_API_BASE */
    long connect_timeout_ms;         /* 0: 3000 */
    long timeout_ms;                 /* 0: 10000 */
    const char *ca_file;             /* NULL: the system's CA store; else only this PEM bundle */
    int max_retries;                 /* idempotent calls only; -1: none, 0: default 2 */
    long retry_backoff_ms;           /* first backoff, doubled each time; 0: 200 */
    struct wx_state_keys state_keys; /* for sealed state; may be empty */
    int64_t state_ttl;               /* 0: 600 s */
    /* Log sink (optional): one line per call, secrets never included. */
    void (*log)(void *ud, enum wx_log_severity sev, const char *line);
    void *log_ud;
    /* Allocator hook (optional): used for everything the client allocates. */
    void *(*alloc)(size_t size);
    void (*free)(void *ptr);
    /*
     * Optional (NULL: none): connect somewhere else than the URL's host, with libcurl's
     * CURLOPT_CONNECT_TO syntax "HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT", e.g.
     * "api.weixin.qq.com:443:10.0.0.5:8443" (an egress proxy, a test server). TLS still verifies
     * the certificate against HOST, the name in api_base.
     */
    const char *connect_to;
};

struct wx_client;

/* Creates a client; copies every string of cfg (the state keys stay borrowed). */
int wx_client_new(const struct wx_client_config *cfg, struct wx_client **out, struct wx_error *err);
void wx_client_free(struct wx_client *c);
/*
 * Calls reuse one libcurl handle per thread, so connections to WeChat stay open between calls
 * (libcurl never reuses a connection across different TLS settings). A thread that is about to
 * exit may release its handle now; threads that end are cleaned up automatically.
 */
void wx_client_thread_done(void);

struct wx_authorize_params {
    const char *redirect_uri; /* absolute, not yet encoded: encoded exactly once here */
    const char *scope;        /* "snsapi_base", "snsapi_userinfo", or "snsapi_login": a website
                                 app's QR login, built on /connect/qrconnect (no extras) */
    const char *state;        /* [A-Za-z0-9]{0,128}, or NULL */
    int connect_redirect;     /* append connect_redirect=1 */
    int force_popup;          /* forcePopup=true */
    int force_snapshot;       /* forceSnapShot=true */
};

/*
 * Appends the authorize URL: parameters in WeChat's canonical order (appid, redirect_uri,
 * response_type, scope, state, then extras) and "#wechat_redirect". WX_ERR_INVALID for a bad
 * scope, state or redirect_uri.
 */
int wx_authorize_url(const struct wx_client *c, const struct wx_authorize_params *p,
                     struct wx_buf *out);

enum wx_callback_kind {
    WX_CALLBACK_CODE,    /* code + verified state: exchange it (once) */
    WX_CALLBACK_DENIED,  /* verified state, no code: the user refused */
    WX_CALLBACK_INVALID, /* do not call WeChat; show an error page */
};

struct wx_callback {
    enum wx_callback_kind kind;
    char code[WX_MAX_CODE + 1];
    struct wx_state state;
    const char *reason; /* for INVALID: static text, e.g. "state expired" */
};

/*
 * Classifies a callback query string (without '?') before any network call: duplicated or
 * malformed parameters, a missing, forged, expired or foreign-browser state are INVALID. The
 * one-time use of the state is the caller's to enforce (st.nonce), e.g. with a replay cache.
 * out->state is filled for CODE and DENIED only (zeroed for INVALID). Returns WX_OK, or
 * WX_ERR_NOMEM (out is then INVALID too).
 */
int wx_callback_parse(const struct wx_client *c, struct wx_slice query, struct wx_slice binding,
                      int64_t now, struct wx_callback *out);

struct wx_token {
    char access_token[WX_MAX_TOKEN + 1];
    char refresh_token[WX_MAX_TOKEN + 1];
    char openid[WX_MAX_ID + 1];
    char unionid[WX_MAX_ID + 1]; /* "" when absent */
    char scope[64];
    int64_t expires_in;
    int is_snapshotuser;
};

struct wx_userinfo {
    char openid[WX_MAX_ID + 1];
    char unionid[WX_MAX_ID + 1];
    char nickname[WX_MAX_NICKNAME + 1];
    char headimgurl[WX_MAX_URLTEXT + 1];
    char province[64], city[64], country[64];
    int sex;
};

struct wx_basic_userinfo {
    int subscribe;
    char openid[WX_MAX_ID + 1];
    char unionid[WX_MAX_ID + 1];
    int64_t subscribe_time;
    char language[16];
};

/*
 * The calls. Each returns WX_OK, or an error with err filled: a WeChat errcode answer is
 * WX_ERR_INVALID with err->errcode set (see wx_errcode_explain); transport failures, TLS errors,
 * non-JSON or oversized bodies are WX_ERR_IO with err->errcode -1 and a readable errmsg.
 * The code exchange is never retried; the others retry on -1, 45011 and transport errors.
 * The output struct is zeroed first, so after any failure it holds no stale or partial values.
 */
int wx_exchange_code(const struct wx_client *c, const char *code, struct wx_token *out,
                     struct wx_error *err);
int wx_refresh_token(const struct wx_client *c, const char *refresh_token, struct wx_token *out,
                     struct wx_error *err);
/* lang: "zh_CN", "zh_TW", "en" or NULL. Refuses a userinfo whose openid is not the one asked. */
int wx_get_userinfo(const struct wx_client *c, const char *access_token, const char *openid,
                    const char *lang, struct wx_userinfo *out, struct wx_error *err);
/* WX_OK when the web access_token is valid for openid (errcode 0). */
int wx_check_token(const struct wx_client *c, const char *access_token, const char *openid,
                   struct wx_error *err);
/* The basic access_token (cgi-bin/token), uncached: see wx_basic_cache for the cached one. */
int wx_basic_token(const struct wx_client *c, char token[WX_MAX_TOKEN + 1], int64_t *expires_in,
                   struct wx_error *err);
int wx_basic_userinfo(const struct wx_client *c, const char *basic_token, const char *openid,
                      struct wx_basic_userinfo *out, struct wx_error *err);

/*
 * The basic access_token, cached: refreshed `margin` seconds (0: 300) before it expires by one
 * refresher at a time — a mutex across threads and, when lock_file is given, flock() on that
 * file across processes, which share the token through it (created with mode 0600).
 * The cache borrows the client. wx_basic_cache_invalidate() after a 40001/42001 answer.
 */
struct wx_basic_cache;
int wx_basic_cache_new(const struct wx_client *c, const char *lock_file, int64_t margin,
                       struct wx_basic_cache **out);
int wx_basic_cache_get(struct wx_basic_cache *bc, char token[WX_MAX_TOKEN + 1],
                       struct wx_error *err);
void wx_basic_cache_invalidate(struct wx_basic_cache *bc);
/* How many times this cache called cgi-bin/token (for tests and metrics). */
uint64_t wx_basic_cache_fetches(struct wx_basic_cache *bc);
void wx_basic_cache_free(struct wx_basic_cache *bc);

/*
 * Response parsing, exposed for tests and other transports: body is what WeChat answered
 * (any Content-Type). Errors as above.
 */
int wx_parse_token(struct wx_slice body, struct wx_token *out, struct wx_error *err);
int wx_parse_userinfo(struct wx_slice body, struct wx_userinfo *out, struct wx_error *err);
int wx_parse_status(struct wx_slice body, struct wx_error *err);

#ifdef __cplusplus
}
#endif
#endif
