/*
 * redirect.c — the redirect_uri rule (SECURITY.md §1 rule 1 and §2): a strict absolute-URL
 * parser and the exact-host comparison against an app's registered web-authorization domains.
 * When in doubt, refuse.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <wxauth/url.h>

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * RFC 3986 pchar minus '%' (checked separately) and minus '@' (refused everywhere, see
 * wx_uri_parse), plus '/' and '?' for path and query.
 */
static int path_char(unsigned char c)
{
    if (is_alpha(c) || is_digit(c))
        return 1;
    return strchr("-._~!$&'()*+,;=:/?", c) != NULL && c != 0;
}

/* Host: DNS labels of [A-Za-z0-9-], no empty label, no label starting or ending with '-'. */
static int host_valid(struct wx_slice h)
{
    if (h.len == 0 || h.len > WX_MAX_DOMAIN)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < h.len; i++) {
        unsigned char c = (unsigned char)h.ptr[i];
        if (c == '.') {
            if (label == 0 || h.ptr[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!(is_alpha(c) || is_digit(c) || c == '-'))
            return 0;
        if (c == '-' && label == 0)
            return 0;
        if (++label > 63)
            return 0;
    }
    /* A trailing dot leaves label == 0: refused (SECURITY.md §2). */
    return label > 0 && h.ptr[h.len - 1] != '-';
}

static int parse_port(struct wx_slice p, int *port)
{
    if (p.len == 0 || p.len > 5)
        return 0;
    int v = 0;
    for (size_t i = 0; i < p.len; i++) {
        if (!is_digit((unsigned char)p.ptr[i]))
            return 0;
        v = v * 10 + (p.ptr[i] - '0');
    }
    if (v < 1 || v > 65535)
        return 0;
    *port = v;
    return 1;
}

/* Splits "host[:port]" and validates both. */
static int split_hostport(struct wx_slice hp, struct wx_slice *host, int *port, int *has_port)
{
    const char *colon = memchr(hp.ptr, ':', hp.len);
    *has_port = colon != NULL;
    host->ptr = hp.ptr;
    host->len = colon ? (size_t)(colon - hp.ptr) : hp.len;
    if (!host_valid(*host))
        return 0;
    if (colon) {
        struct wx_slice p = {colon + 1, hp.len - host->len - 1};
        if (!parse_port(p, port))
            return 0;
    }
    return 1;
}

int wx_uri_parse(struct wx_slice uri, struct wx_uri *out)
{
    memset(out, 0, sizeof(*out));
    if (uri.len == 0 || uri.len > WX_MAX_REDIRECT_URI)
        return WX_ERR_INVALID;
    /*
     * A raw '@' is refused anywhere, not only in the authority: lenient URL parsers (and some
     * clients that split on the last '@') can read "https://good.example/?@evil.example" as
     * userinfo + host evil.example. A real '@' in a path or query can be sent as %40.
     */
    for (size_t i = 0; i < uri.len; i++) {
        unsigned char c = (unsigned char)uri.ptr[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '#' || c == '@')
            return WX_ERR_INVALID;
    }
    size_t s = 0;
    while (s < uri.len && uri.ptr[s] != ':')
        s++;
    struct wx_slice scheme = {uri.ptr, s};
    if (scheme.len == 5 && !strncasecmp(scheme.ptr, "https", 5))
        out->https = 1;
    else if (!(scheme.len == 4 && !strncasecmp(scheme.ptr, "http", 4)))
        return WX_ERR_INVALID;
    if (uri.len < s + 3 || memcmp(uri.ptr + s, "://", 3) != 0)
        return WX_ERR_INVALID;
    size_t a = s + 3, e = a;
    while (e < uri.len && uri.ptr[e] != '/' && uri.ptr[e] != '?')
        e++;
    struct wx_slice auth = {uri.ptr + a, e - a};
    if (memchr(auth.ptr, '@', auth.len) || memchr(auth.ptr, '%', auth.len))
        return WX_ERR_INVALID;
    int has_port = 0;
    out->port = out->https ? 443 : 80;
    if (!split_hostport(auth, &out->host, &out->port, &has_port))
        return WX_ERR_INVALID;
    for (size_t i = e; i < uri.len; i++) {
        unsigned char c = (unsigned char)uri.ptr[i];
        if (c == '%') {
            if (i + 2 >= uri.len || !is_hex((unsigned char)uri.ptr[i + 1]) ||
                !is_hex((unsigned char)uri.ptr[i + 2]))
                return WX_ERR_INVALID;
            i += 2;
        } else if (!path_char(c)) {
            return WX_ERR_INVALID;
        }
    }
    out->scheme = scheme;
    out->path_and_query = (struct wx_slice){uri.ptr + e, uri.len - e};
    return WX_OK;
}

int wx_domain_valid(struct wx_slice domain)
{
    struct wx_slice host;
    int port = 0, has_port = 0;
    return split_hostport(domain, &host, &port, &has_port) ? WX_OK : WX_ERR_INVALID;
}

static int domain_matches(const struct wx_uri *u, struct wx_slice d)
{
    struct wx_slice host;
    int port = 0, has_port = 0;
    if (!split_hostport(d, &host, &port, &has_port))
        return 0;
    if (host.len != u->host.len || strncasecmp(host.ptr, u->host.ptr, host.len) != 0)
        return 0;
    if (!has_port)
        port = u->https ? 443 : 80;
    return port == u->port;
}

int wx_redirect_check(struct wx_slice uri, const char *domains, int https_only)
{
    struct wx_uri u;
    if (wx_uri_parse(uri, &u) != WX_OK)
        return WX_ERR_INVALID;
    if (https_only && !u.https)
        return WX_ERR_INVALID;
    const char *p = domains ? domains : "";
    while (*p) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        while (n && p[0] == ' ') {
            p++;
            n--;
        }
        while (n && p[n - 1] == ' ')
            n--;
        if (n && domain_matches(&u, (struct wx_slice){p, n}))
            return WX_OK;
        if (!c)
            break;
        p = c + 1;
    }
    return WX_ERR_INVALID;
}

int wx_uri_add_params(struct wx_buf *out, const char *uri, const char *const *kv, size_t nkv)
{
    int rc = wx_buf_puts(out, uri);
    size_t n = strlen(uri);
    char sep = strchr(uri, '?') ? '&' : '?';
    if (n && (uri[n - 1] == '?' || uri[n - 1] == '&'))
        sep = 0;
    for (size_t i = 0; rc == WX_OK && i + 1 < nkv * 2; i += 2) {
        if (sep)
            rc = wx_buf_append(out, &sep, 1);
        sep = '&';
        if (rc == WX_OK)
            rc = wx_buf_puts(out, kv[i]);
        if (rc == WX_OK)
            rc = wx_buf_append(out, "=", 1);
        if (rc == WX_OK)
            rc = wx_pct_encode(out, wx_slice_cstr(kv[i + 1]));
    }
    return rc;
}
