/*
 * fuzz_redirect.c — libFuzzer driver for wx_redirect_check / wx_uri_parse (lib/redirect.c)
 * against a fixed registered domain. Invariant (SECURITY.md §1 rule 1): whenever the check
 * says WX_OK, the URI — re-parsed here independently, the way a browser would read it — has
 * scheme http or https, its host equals the registered host case-insensitively, its port is
 * the scheme's default, and the URI contains no '@', '\', '#', nor any byte <= 0x20 or >= 0x7f.
 * Also checked: https_only never accepts http; wx_uri_parse's host view agrees with ours; a
 * host that differs only in case is accepted too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <wxauth/wxauth.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define DOMAIN "good.example"

struct split {
    int https;
    const char *host;
    size_t host_len;
    long port; /* -1: none written */
};

/* An independent reading: scheme "://" authority [path/query]; authority = host[:port]. */
static int independent_split(const char *s, size_t n, struct split *out)
{
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return 0;
    size_t sl = (size_t)(colon - s);
    if (sl == 5 && !strncasecmp(s, "https", 5))
        out->https = 1;
    else if (sl == 4 && !strncasecmp(s, "http", 4))
        out->https = 0;
    else
        return 0;
    if (n - sl < 3 || memcmp(colon, "://", 3) != 0)
        return 0;
    const char *a = colon + 3, *end = s + n, *e = a;
    /* WHATWG ends the authority at '/', '?', '#' and (for special schemes) '\'. */
    while (e < end && *e != '/' && *e != '?' && *e != '#' && *e != '\\')
        e++;
    /* userinfo: everything up to the last '@' of the authority */
    const char *h = a;
    for (const char *p = a; p < e; p++)
        if (*p == '@')
            h = p + 1;
    const char *pc = memchr(h, ':', (size_t)(e - h));
    out->host = h;
    out->host_len = (size_t)((pc ? pc : e) - h);
    out->port = -1;
    if (pc) {
        long v = 0;
        for (const char *p = pc + 1; p < e; p++) {
            if (*p < '0' || *p > '9' || v > 100000)
                return 0;
            v = v * 10 + (*p - '0');
        }
        out->port = pc + 1 < e ? v : -1;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct wx_slice uri = {s, size};
    int rc = wx_redirect_check(uri, DOMAIN, 0);
    int rc_https = wx_redirect_check(uri, DOMAIN, 1);
    int rc_two = wx_redirect_check(uri, "other.example:8443, " DOMAIN, 0);
    CHECK(rc == WX_OK || rc == WX_ERR_INVALID);
    CHECK(rc_https == WX_OK || rc_https == WX_ERR_INVALID);
    /* Adding a second domain never takes the first one away. */
    if (rc == WX_OK)
        CHECK(rc_two == WX_OK);

    struct wx_uri u;
    int prc = wx_uri_parse(uri, &u);
    if (prc == WX_OK) {
        CHECK(u.host.ptr >= s && u.host.ptr + u.host.len <= s + size);
        CHECK(u.host.len > 0 && u.host.len <= WX_MAX_DOMAIN);
        CHECK(!memchr(u.host.ptr, '%', u.host.len) && !memchr(u.host.ptr, '@', u.host.len));
        CHECK(u.port >= 1 && u.port <= 65535);
        struct split sp;
        CHECK(independent_split(s, size, &sp));
        CHECK(sp.https == u.https);
        CHECK(sp.host == u.host.ptr && sp.host_len == u.host.len);
        CHECK(sp.port == -1 ? u.port == (u.https ? 443 : 80) : sp.port == u.port);
    }
    if (rc != WX_OK && rc_https != WX_OK)
        return 0;
    CHECK(prc == WX_OK);

    for (size_t i = 0; i < size; i++) {
        unsigned char c = data[i];
        CHECK(c > 0x20 && c < 0x7f && c != '@' && c != '\\' && c != '#');
    }
    struct split sp;
    CHECK(independent_split(s, size, &sp));
    CHECK(sp.host_len == strlen(DOMAIN) && !strncasecmp(sp.host, DOMAIN, sp.host_len));
    CHECK(sp.port == -1 || sp.port == (sp.https ? 443 : 80));
    if (rc_https == WX_OK)
        CHECK(sp.https && rc == WX_OK);
    if (rc == WX_OK && sp.https)
        CHECK(rc_https == WX_OK);

    /* Flipping the case of the host keeps it accepted; changing a letter does not. */
    char *t = malloc(size);
    CHECK(t);
    memcpy(t, s, size);
    size_t off = (size_t)(sp.host - s);
    for (size_t i = 0; i < sp.host_len; i++)
        if ((t[off + i] | 0x20) >= 'a' && (t[off + i] | 0x20) <= 'z')
            t[off + i] ^= 0x20;
    CHECK(wx_redirect_check((struct wx_slice){t, size}, DOMAIN, 0) == WX_OK);
    t[off] = t[off] == 'x' ? 'y' : 'x';
    CHECK(wx_redirect_check((struct wx_slice){t, size}, DOMAIN, 0) == WX_ERR_INVALID);
    free(t);
    return 0;
}
