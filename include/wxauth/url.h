/*
 * wxauth/url.h — strict URL pieces: percent-encoding, query/form parsing, and the
 * redirect_uri check that WeChat applies to its registered web-authorization domain.
 *
 * All parsers take explicit lengths, enforce the limits of base.h and never read past them.
 */
#ifndef WXAUTH_URL_H
#define WXAUTH_URL_H

#include <wxauth/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Percent-decodes src into out (which must hold at least src.len + 1 bytes). With plus_space,
 * '+' decodes to ' ' (application/x-www-form-urlencoded). Fails with WX_ERR_SYNTAX on a
 * truncated or non-hex escape and on a decoded NUL byte. *out_len excludes the NUL written.
 */
int wx_pct_decode(struct wx_slice src, int plus_space, char *out, size_t *out_len);

/* Appends the percent-encoding of src to b: unreserved characters (RFC 3986) stay as they are. */
int wx_pct_encode(struct wx_buf *b, struct wx_slice src);

/* One decoded parameter; key and value point into the owning struct wx_query's arena. */
struct wx_param {
    const char *key;
    const char *value;
    size_t key_len;
    size_t value_len;
};

/*
 * A parsed query string or form body. Owns its arena; release with wx_query_free(), which wipes
 * the arena first (queries carry secrets, codes and tokens in the clear).
 * Duplicate keys are kept in order and counted in ndup so callers can refuse them.
 */
struct wx_query {
    struct wx_param params[WX_MAX_PARAMS];
    size_t count;
    size_t ndup;
    char *arena;
    size_t arena_size;
};

/*
 * Parses "a=1&b=2" (no leading '?'). Errors: WX_ERR_LIMIT (more than WX_MAX_PARAMS parameters,
 * a key or value over WX_MAX_PARAM, input over WX_MAX_URL for queries), WX_ERR_SYNTAX (bad escape),
 * WX_ERR_NOMEM. Empty segments ("a=1&&b=2") are skipped. On error q is left empty.
 */
int wx_query_parse(struct wx_query *q, struct wx_slice input, size_t max_input);
void wx_query_free(struct wx_query *q);
/* The value of the first parameter named key, or NULL. */
const char *wx_query_get(const struct wx_query *q, const char *key);
/* How many parameters are named key. */
size_t wx_query_count(const struct wx_query *q, const char *key);

/* A redirect_uri split into its parts (views into the checked string). */
struct wx_uri {
    struct wx_slice scheme; /* "http" or "https", as written */
    struct wx_slice host;   /* as written; compared case-insensitively */
    int port;               /* explicit port, or the scheme's default */
    int https;
    struct wx_slice path_and_query;
};

/*
 * Parses an absolute http(s) URL strictly: no userinfo, no fragment, no backslash, no control,
 * space or non-ASCII byte, no percent-escape in the host, valid escapes elsewhere, host a DNS
 * name or IPv4 literal without a trailing dot, port 1..65535. WX_ERR_INVALID when refused.
 */
int wx_uri_parse(struct wx_slice uri, struct wx_uri *out);

/*
 * WeChat's domain rule: the redirect_uri's host must equal one registered domain exactly
 * (case-insensitive; no subdomain, no parent). A domain registered with ":port" matches only that
 * port; without one, only the scheme's default port. With https_only, http is refused.
 * domains is a comma-separated list. Returns WX_OK or WX_ERR_INVALID.
 */
int wx_redirect_check(struct wx_slice uri, const char *domains, int https_only);

/* Validates a registered domain entry ("host" or "host:port"). */
int wx_domain_valid(struct wx_slice domain);

/* Appends "code=...&state=..." style parameters to a checked URI, with '?' or '&' as needed. */
int wx_uri_add_params(struct wx_buf *out, const char *uri, const char *const *kv, size_t nkv);

/* WeChat's state rule: empty or [A-Za-z0-9]{1,128}. */
int wx_state_valid(struct wx_slice state);

#ifdef __cplusplus
}
#endif
#endif
