/*
 * test_redirect.c — unit tests for lib/redirect.c (and wx_state_valid): the strict redirect_uri
 * parser and WeChat's registered-domain rule, SECURITY.md §1 rule 1 and the §2 pinned choices:
 * exact host (case-insensitive, no subdomain, no parent), explicit default port equals none,
 * other ports refused, trailing dot, userinfo, backslash, controls, space, fragment, other
 * schemes and percent-escapes in the host all refused, https_only, two domains, and a domain
 * registered with a port.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <wxauth/wxauth.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- wx_uri_parse ----------------------------------------------------------------------- */

struct parse_case {
    const char *uri;
    size_t len; /* 0: strlen(uri) */
    int rc;
    const char *host; /* expected when rc == WX_OK */
    int port;
    int https;
    const char *path;
};

#define BAD(u)                                                                                     \
    {                                                                                              \
        (u), 0, WX_ERR_INVALID, NULL, 0, 0, NULL                                                   \
    }

static const struct parse_case parse_cases[] = {
    {"https://good.example/cb", 0, WX_OK, "good.example", 443, 1, "/cb"},
    {"http://good.example/cb", 0, WX_OK, "good.example", 80, 0, "/cb"},
    {"https://good.example", 0, WX_OK, "good.example", 443, 1, ""},
    {"https://good.example/", 0, WX_OK, "good.example", 443, 1, "/"},
    {"https://good.example?x=1", 0, WX_OK, "good.example", 443, 1, "?x=1"},
    {"https://good.example/cb?x=1&y=%2F", 0, WX_OK, "good.example", 443, 1, "/cb?x=1&y=%2F"},
    {"https://good.example:8443/cb", 0, WX_OK, "good.example", 8443, 1, "/cb"},
    {"https://good.example:443/cb", 0, WX_OK, "good.example", 443, 1, "/cb"},
    {"http://good.example:80", 0, WX_OK, "good.example", 80, 0, ""},
    {"https://good.example:65535/", 0, WX_OK, "good.example", 65535, 1, "/"},
    {"https://good.example:1/", 0, WX_OK, "good.example", 1, 1, "/"},
    {"HTTPS://Good.Example/CB", 0, WX_OK, "Good.Example", 443, 1, "/CB"},
    {"HtTp://good.example/", 0, WX_OK, "good.example", 80, 0, "/"},
    {"https://1.2.3.4/cb", 0, WX_OK, "1.2.3.4", 443, 1, "/cb"},
    {"http://localhost:8080/cb", 0, WX_OK, "localhost", 8080, 0, "/cb"},
    {"https://a-b.c-d.example/", 0, WX_OK, "a-b.c-d.example", 443, 1, "/"},
    {"https://good.example/%41%e4%BD%a0", 0, WX_OK, "good.example", 443, 1, "/%41%e4%BD%a0"},
    {"https://good.example/cb?next=https://other.example/", 0, WX_OK, "good.example", 443, 1,
     "/cb?next=https://other.example/"},
    {"https://good.example/a:b;c,d!e$f'g(h)i*j+k=l~m", 0, WX_OK, "good.example", 443, 1,
     "/a:b;c,d!e$f'g(h)i*j+k=l~m"},
    /* trailing dot, empty labels, bad labels */
    BAD("https://good.example./cb"),
    BAD("https://good.example.:443/cb"),
    BAD("https://.good.example/cb"),
    BAD("https://good..example/cb"),
    BAD("https:///cb"),
    BAD("https://"),
    BAD("https://:443/cb"),
    BAD("https://-good.example/"),
    BAD("https://good-.example/"),
    BAD("https://good.example-/"),
    BAD("https://good_example/"),
    BAD("https://*.good.example/"),
    BAD("https://[::1]/cb"),
    BAD("https://[::1]:443/cb"),
    /* userinfo, backslash */
    BAD("https://user@good.example/cb"),
    BAD("https://user:pass@good.example/cb"),
    BAD("https://@good.example/cb"),
    BAD("https://good.example@evil.example/cb"),
    BAD("https://evil.example@good.example/cb"),
    BAD("https://evil.example\\@good.example/cb"),
    BAD("https://good.example\\evil.example/cb"),
    BAD("https://good.example/cb\\x"),
    BAD("https:\\\\good.example/cb"),
    /* '@' anywhere: refused (no URL parser can then disagree about userinfo) */
    BAD("https://good.example/@evil.example"),
    BAD("https://good.example?@evil.example"),
    BAD("https://good.example/cb?email=a@b.example"),
    /* controls, space, DEL, non-ASCII */
    BAD("https://good.example/c b"),
    BAD("https://good .example/cb"),
    BAD(" https://good.example/cb"),
    BAD("https://good.example/cb "),
    BAD("https://good.example/c\tb"),
    BAD("https://good.example/cb\r\nSet-Cookie: x=1"),
    BAD("https://good.example/cb\n"),
    BAD("https://good.example/\x01"),
    BAD("https://good.example/\x7f"),
    BAD("https://good.example/\xe4\xbd\xa0"),
    BAD("https://g\xc3\xb6od.example/"),
    {"https://good.example/\0evil", 26, WX_ERR_INVALID, NULL, 0, 0, NULL},
    /* fragment */
    BAD("https://good.example/cb#frag"),
    BAD("https://good.example/cb#"),
    BAD("https://good.example#@evil.example"),
    /* other schemes and relative forms */
    BAD("ftp://good.example/cb"),
    BAD("javascript://good.example/%0aalert(1)"),
    BAD("javascript:alert(1)"),
    BAD("data:text/html,hi"),
    BAD("httpss://good.example/"),
    BAD("htt://good.example/"),
    BAD("https:good.example/cb"),
    BAD("https:/good.example/cb"),
    BAD("//good.example/cb"),
    BAD("good.example/cb"),
    BAD("/cb"),
    BAD(""),
    /* percent in the host or port, bad escapes elsewhere */
    BAD("https://good%2Eexample/cb"),
    BAD("https://%67ood.example/cb"),
    BAD("https://good.example:%34%34%33/cb"),
    BAD("https://good.example/%zz"),
    BAD("https://good.example/%4"),
    BAD("https://good.example/%"),
    BAD("https://good.example/?a=%g1"),
    /* ports */
    BAD("https://good.example:/cb"),
    BAD("https://good.example:0/cb"),
    BAD("https://good.example:65536/cb"),
    BAD("https://good.example:99999/cb"),
    BAD("https://good.example:100000/cb"),
    BAD("https://good.example:80a/cb"),
    BAD("https://good.example:+80/cb"),
    BAD("https://good.example:-1/cb"),
    BAD("https://good.example:443:443/cb"),
    /* characters outside RFC 3986 pchar in the path or query */
    BAD("https://good.example/a<b"),
    BAD("https://good.example/a>b"),
    BAD("https://good.example/a\"b"),
    BAD("https://good.example/a{b}"),
    BAD("https://good.example/a|b"),
    BAD("https://good.example/a^b"),
    BAD("https://good.example/a`b"),
    BAD("https://good.example/a[b]"),
};

static void test_uri_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(parse_cases); i++) {
        const struct parse_case *c = &parse_cases[i];
        struct wx_uri u;
        size_t n = c->len ? c->len : strlen(c->uri);
        int rc = wx_uri_parse((struct wx_slice){c->uri, n}, &u);
        if (rc != c->rc)
            fail_msg("case %zu \"%s\": rc %d, want %d", i, c->uri, rc, c->rc);
        if (rc != WX_OK)
            continue;
        if (!wx_slice_eq(u.host, c->host))
            fail_msg("case %zu \"%s\": host \"%.*s\"", i, c->uri, (int)u.host.len, u.host.ptr);
        assert_int_equal(u.port, c->port);
        assert_int_equal(u.https, c->https);
        assert_int_equal(u.scheme.len, c->https ? 5 : 4);
        assert_ptr_equal(u.scheme.ptr, c->uri);
        if (!wx_slice_eq(u.path_and_query, c->path))
            fail_msg("case %zu \"%s\": path \"%.*s\"", i, c->uri, (int)u.path_and_query.len,
                     u.path_and_query.ptr);
    }
}

static char *long_uri(const char *prefix, size_t total)
{
    char *s = malloc(total + 1);
    assert_non_null(s);
    size_t n = strlen(prefix);
    memcpy(s, prefix, n);
    memset(s + n, 'a', total - n);
    s[total] = '\0';
    return s;
}

static void test_uri_parse_lengths(void **state)
{
    (void)state;
    struct wx_uri u;
    char *ok = long_uri("https://good.example/", WX_MAX_REDIRECT_URI);
    char *over = long_uri("https://good.example/", WX_MAX_REDIRECT_URI + 1);
    assert_int_equal(wx_uri_parse(wx_slice_cstr(ok), &u), WX_OK);
    assert_int_equal(wx_uri_parse(wx_slice_cstr(over), &u), WX_ERR_INVALID);
    free(ok);
    free(over);

    /* One DNS label is at most 63 bytes; a host at most WX_MAX_DOMAIN. */
    char host[300];
    memcpy(host, "https://", 8);
    memset(host + 8, 'a', 63);
    memcpy(host + 8 + 63, ".example/", 10);
    assert_int_equal(wx_uri_parse(wx_slice_cstr(host), &u), WX_OK);
    memset(host + 8, 'a', 64);
    memcpy(host + 8 + 64, ".example/", 10);
    assert_int_equal(wx_uri_parse(wx_slice_cstr(host), &u), WX_ERR_INVALID);

    struct wx_buf b;
    wx_buf_init(&b, 1024);
    assert_int_equal(wx_buf_puts(&b, "https://"), WX_OK);
    for (int i = 0; i < 4; i++) /* 4 * 62 + 3 = 251 bytes of host */
        assert_int_equal(wx_buf_printf(&b, "%s%.62d", i ? "." : "", 0), WX_OK);
    assert_int_equal(wx_buf_puts(&b, ".ab/"), WX_OK); /* 254 bytes: over WX_MAX_DOMAIN */
    assert_int_equal(wx_uri_parse((struct wx_slice){b.ptr, b.len}, &u), WX_ERR_INVALID);
    b.len -= 4;
    assert_int_equal(wx_buf_puts(&b, ".a/"), WX_OK); /* 253 bytes */
    assert_int_equal(wx_uri_parse((struct wx_slice){b.ptr, b.len}, &u), WX_OK);
    assert_int_equal(u.host.len, WX_MAX_DOMAIN);
    wx_buf_free(&b);
}

/* ---- wx_redirect_check ------------------------------------------------------------------ */

struct check_case {
    const char *uri;
    const char *domains;
    int https_only;
    int rc;
};

#define OK_(u, d)                                                                                  \
    {                                                                                              \
        (u), (d), 0, WX_OK                                                                         \
    }
#define NO_(u, d)                                                                                  \
    {                                                                                              \
        (u), (d), 0, WX_ERR_INVALID                                                                \
    }
#define GOOD "good.example"

static const struct check_case check_cases[] = {
    /* any path on exactly that host */
    OK_("https://good.example/cb", GOOD),
    OK_("https://good.example/", GOOD),
    OK_("https://good.example", GOOD),
    OK_("https://good.example/deep/path/cb?x=1&y=2", GOOD),
    OK_("https://good.example?x=1", GOOD),
    /* http is allowed, as WeChat allows it; https_only refuses it */
    OK_("http://good.example/cb", GOOD),
    {"http://good.example/cb", GOOD, 1, WX_ERR_INVALID},
    {"https://good.example/cb", GOOD, 1, WX_OK},
    {"HTTPS://good.example/cb", GOOD, 1, WX_OK},
    {"http://good.example:443/cb", GOOD, 1, WX_ERR_INVALID},
    /* host case-insensitive */
    OK_("https://GOOD.EXAMPLE/cb", GOOD),
    OK_("https://Good.Example/cb", GOOD),
    OK_("https://good.example/cb", "GOOD.Example"),
    /* no subdomain, no parent, no look-alikes */
    NO_("https://sub.good.example/cb", GOOD),
    NO_("https://www.good.example/cb", GOOD),
    NO_("https://example/cb", GOOD),
    NO_("https://good.example/cb", "sub.good.example"),
    NO_("https://good.example/cb", "example"),
    NO_("https://good.example.evil.example/cb", GOOD),
    NO_("https://evilgood.example/cb", GOOD),
    NO_("https://evil-good.example/cb", GOOD),
    NO_("https://good.examplex/cb", GOOD),
    NO_("https://good.exampl/cb", GOOD),
    NO_("https://evil.example/good.example", GOOD),
    NO_("https://evil.example/?good.example", GOOD),
    NO_("https://evil.example?x=https://good.example/", GOOD),
    /* explicit default port is the same as none; any other port is refused */
    OK_("https://good.example:443/cb", GOOD),
    OK_("http://good.example:80/cb", GOOD),
    NO_("https://good.example:80/cb", GOOD),
    NO_("http://good.example:443/cb", GOOD),
    NO_("https://good.example:8443/cb", GOOD),
    NO_("http://good.example:8080/cb", GOOD),
    NO_("https://good.example:/cb", GOOD),
    /* trailing dot refused, on either side */
    NO_("https://good.example./cb", GOOD),
    NO_("https://good.example/cb", "good.example."),
    /* userinfo '@', backslash (SECURITY.md §3's example), controls, space, fragment */
    NO_("https://evil.example\\@good.example/cb", GOOD),
    NO_("https://evil.example\\@good.example/cb", "evil.example,good.example"),
    NO_("https://evil.example@good.example/cb", GOOD),
    NO_("https://good.example@evil.example/cb", GOOD),
    NO_("https://good.example:443@evil.example/cb", GOOD),
    NO_("https://user:pass@good.example/cb", GOOD),
    NO_("https://good.example/@evil.example", GOOD),
    NO_("https://good.example\\.evil.example/cb", GOOD),
    NO_("https://good.example/cb\\..\\x", GOOD),
    NO_("https://good.example/c\x01", GOOD),
    NO_("https://good.example/cb\r\nLocation: https://evil.example/", GOOD),
    NO_("https://good.example/c\tb", GOOD),
    NO_("https://good.example\t/cb", GOOD),
    NO_("https://good.example/c b", GOOD),
    NO_("https://good.example /cb", GOOD),
    NO_("https://good.example/cb#", GOOD),
    NO_("https://good.example/cb#x", GOOD),
    NO_("https://good.example#@evil.example/", GOOD),
    NO_("https://good.example/\x7f", GOOD),
    NO_("https://good.example/\xc3\xa9", GOOD),
    /* other schemes and scheme-relative forms */
    NO_("ftp://good.example/cb", GOOD),
    NO_("javascript://good.example/%0aalert(1)", GOOD),
    NO_("wss://good.example/cb", GOOD),
    NO_("//good.example/cb", GOOD),
    NO_("good.example/cb", GOOD),
    NO_("https:/good.example/cb", GOOD),
    NO_("", GOOD),
    /* percent in the host */
    NO_("https://good%2Eexample/cb", GOOD),
    NO_("https://%67ood.example/cb", GOOD),
    NO_("https://good.example%2F@evil.example/cb", GOOD),
    /* two domains, comma-separated (spaces around entries tolerated) */
    OK_("https://good.example/cb", "good.example,other.example"),
    OK_("https://other.example/cb", "good.example,other.example"),
    OK_("https://other.example/cb", "good.example, other.example"),
    OK_("https://other.example/cb", " good.example , other.example "),
    NO_("https://third.example/cb", "good.example,other.example"),
    NO_("https://sub.other.example/cb", "good.example,other.example"),
    NO_("https://good.example,other.example/cb", "good.example,other.example"),
    OK_("https://good.example/cb", ",good.example"),
    OK_("https://good.example/cb", "good.example,"),
    /* a domain registered with a port matches only that port */
    OK_("http://good.example:8080/cb", "good.example:8080"),
    OK_("https://good.example:8080/cb", "good.example:8080"),
    NO_("http://good.example/cb", "good.example:8080"),
    NO_("https://good.example/cb", "good.example:8080"),
    NO_("http://good.example:8081/cb", "good.example:8080"),
    NO_("http://other.example:8080/cb", "good.example:8080"),
    OK_("https://good.example/cb", "good.example:443"),
    OK_("https://good.example:443/cb", "good.example:443"),
    NO_("http://good.example/cb", "good.example:443"),
    OK_("http://good.example:8080/cb", "good.example,good.example:8080"),
    OK_("https://good.example/cb", "good.example:8080,good.example"),
    /* nothing registered, or a malformed registration */
    NO_("https://good.example/cb", ""),
    NO_("https://good.example/cb", NULL),
    NO_("https://good.example/cb", ","),
    NO_("https://good.example/cb", "https://good.example"),
    NO_("https://good.example/cb", "good.example/cb"),
    NO_("https://good.example/cb", "*.example"),
    NO_("https://good.example/cb", "good.example:0"),
    NO_("https://good.example/cb", "good.example:"),
    /* IPv4 literals are compared exactly too */
    OK_("http://127.0.0.1:8080/cb", "127.0.0.1:8080"),
    NO_("http://127.0.0.2:8080/cb", "127.0.0.1:8080"),
    NO_("http://127.0.0.1.:8080/cb", "127.0.0.1:8080"),
};

static void test_redirect_check_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(check_cases); i++) {
        const struct check_case *c = &check_cases[i];
        int rc = wx_redirect_check(wx_slice_cstr(c->uri), c->domains, c->https_only);
        if (rc != c->rc)
            fail_msg("case %zu \"%s\" vs \"%s\" (https_only=%d): rc %d, want %d", i, c->uri,
                     c->domains ? c->domains : "(null)", c->https_only, rc, c->rc);
    }
}

/* The check uses the explicit length: a NUL or anything after uri.len is not looked at. */
static void test_redirect_check_length(void **state)
{
    (void)state;
    const char s[] = "https://good.example/cb@evil.example";
    assert_int_equal(wx_redirect_check((struct wx_slice){s, 23}, GOOD, 0), WX_OK);
    assert_int_equal(wx_redirect_check((struct wx_slice){s, sizeof s - 1}, GOOD, 0),
                     WX_ERR_INVALID);
    const char n[] = "https://good.example/\0@evil.example";
    assert_int_equal(wx_redirect_check((struct wx_slice){n, sizeof n - 1}, GOOD, 0),
                     WX_ERR_INVALID);
}

/* ---- wx_domain_valid -------------------------------------------------------------------- */

struct domain_case {
    const char *d;
    int rc;
};

static const struct domain_case domain_cases[] = {
    {"good.example", WX_OK},
    {"GOOD.Example", WX_OK},
    {"good.example:8080", WX_OK},
    {"good.example:1", WX_OK},
    {"good.example:65535", WX_OK},
    {"localhost", WX_OK},
    {"127.0.0.1:8080", WX_OK},
    {"a-b.example", WX_OK},
    {"", WX_ERR_INVALID},
    {"good.example.", WX_ERR_INVALID},
    {".good.example", WX_ERR_INVALID},
    {"good..example", WX_ERR_INVALID},
    {"good.example:", WX_ERR_INVALID},
    {"good.example:0", WX_ERR_INVALID},
    {"good.example:65536", WX_ERR_INVALID},
    {"good.example:http", WX_ERR_INVALID},
    {"good.example:80:80", WX_ERR_INVALID},
    {":8080", WX_ERR_INVALID},
    {"https://good.example", WX_ERR_INVALID},
    {"good.example/cb", WX_ERR_INVALID},
    {"*.good.example", WX_ERR_INVALID},
    {"user@good.example", WX_ERR_INVALID},
    {"good example", WX_ERR_INVALID},
    {"good.example,other.example", WX_ERR_INVALID},
    {"good%2Eexample", WX_ERR_INVALID},
    {"-good.example", WX_ERR_INVALID},
    {"good-.example", WX_ERR_INVALID},
    {"[::1]", WX_ERR_INVALID},
    {"g\xc3\xb6od.example", WX_ERR_INVALID},
};

static void test_domain_valid_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(domain_cases); i++) {
        int rc = wx_domain_valid(wx_slice_cstr(domain_cases[i].d));
        if (rc != domain_cases[i].rc)
            fail_msg("case %zu \"%s\": rc %d, want %d", i, domain_cases[i].d, rc,
                     domain_cases[i].rc);
    }
    char big[WX_MAX_DOMAIN + 2];
    for (size_t i = 0; i < sizeof big - 1; i++)
        big[i] = (i % 50 == 49) ? '.' : 'a';
    big[sizeof big - 1] = '\0'; /* 254 bytes */
    assert_int_equal(wx_domain_valid(wx_slice_cstr(big)), WX_ERR_INVALID);
    big[WX_MAX_DOMAIN] = '\0'; /* 253 bytes */
    assert_int_equal(wx_domain_valid(wx_slice_cstr(big)), WX_OK);
}

/* ---- wx_uri_add_params ------------------------------------------------------------------ */

struct add_case {
    const char *uri;
    const char *kv[4];
    size_t nkv;
    const char *out;
};

static const struct add_case add_cases[] = {
    {"https://a.example/cb",
     {"code", "C1", "state", "S1"},
     2,
     "https://a.example/cb?code=C1&state=S1"},
    {"https://a.example/cb?x=1",
     {"code", "C1", "state", "S1"},
     2,
     "https://a.example/cb?x=1&code=C1&state=S1"},
    {"https://a.example/cb?", {"code", "C1"}, 1, "https://a.example/cb?code=C1"},
    {"https://a.example/cb?x=1&", {"code", "C1"}, 1, "https://a.example/cb?x=1&code=C1"},
    {"https://a.example", {"code", "C1"}, 1, "https://a.example?code=C1"},
    {"https://a.example/cb", {"state", "S1"}, 1, "https://a.example/cb?state=S1"},
    {"https://a.example/cb",
     {"code", "a b&c=d/e?f#g"},
     1,
     "https://a.example/cb?code=a%20b%26c%3Dd%2Fe%3Ff%23g"},
    {"https://a.example/cb", {"code", ""}, 1, "https://a.example/cb?code="},
    {"https://a.example/cb", {NULL}, 0, "https://a.example/cb"},
};

static void test_add_params_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(add_cases); i++) {
        const struct add_case *c = &add_cases[i];
        struct wx_buf b;
        wx_buf_init(&b, WX_MAX_URL);
        assert_int_equal(wx_uri_add_params(&b, c->uri, c->kv, c->nkv), WX_OK);
        if (strcmp(b.ptr, c->out) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, b.ptr, c->out);
        /* The result is still a redirect_uri the check accepts. */
        assert_int_equal(wx_redirect_check((struct wx_slice){b.ptr, b.len}, "a.example", 0), WX_OK);
        wx_buf_free(&b);
    }
}

static void test_add_params_cap(void **state)
{
    (void)state;
    const char *kv[] = {"code", "0123456789"};
    struct wx_buf b;
    wx_buf_init(&b, 30);
    assert_int_equal(wx_uri_add_params(&b, "https://a.example/cb", kv, 1), WX_ERR_LIMIT);
    assert_true(b.len <= 30);
    wx_buf_free(&b);
}

/* ---- wx_state_valid --------------------------------------------------------------------- */

struct state_case {
    const char *s;
    size_t len; /* 0: strlen */
    int rc;
};

static const struct state_case state_cases[] = {
    {"", 0, WX_OK},
    {"a", 0, WX_OK},
    {"abcXYZ0189", 0, WX_OK},
    {"STATE", 0, WX_OK},
    {"a-b", 0, WX_ERR_INVALID},
    {"a_b", 0, WX_ERR_INVALID},
    {"a b", 0, WX_ERR_INVALID},
    {"a+b", 0, WX_ERR_INVALID},
    {"a%20b", 0, WX_ERR_INVALID},
    {"a=b", 0, WX_ERR_INVALID},
    {"a&b", 0, WX_ERR_INVALID},
    {"<script>", 0, WX_ERR_INVALID},
    {"\xc3\xa9", 0, WX_ERR_INVALID},
    {"a\0b", 3, WX_ERR_INVALID},
    {"abc\n", 0, WX_ERR_INVALID},
};

static void test_state_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(state_cases); i++) {
        const struct state_case *c = &state_cases[i];
        size_t n = c->len ? c->len : strlen(c->s);
        int rc = wx_state_valid((struct wx_slice){c->s, n});
        if (rc != c->rc)
            fail_msg("case %zu: rc %d, want %d", i, rc, c->rc);
    }
    char s[WX_MAX_STATE + 2];
    memset(s, 'A', sizeof s);
    assert_int_equal(wx_state_valid((struct wx_slice){s, WX_MAX_STATE}), WX_OK);
    assert_int_equal(wx_state_valid((struct wx_slice){s, WX_MAX_STATE + 1}), WX_ERR_LIMIT);
    s[WX_MAX_STATE - 1] = '!';
    assert_int_equal(wx_state_valid((struct wx_slice){s, WX_MAX_STATE}), WX_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_parse_table),      cmocka_unit_test(test_uri_parse_lengths),
        cmocka_unit_test(test_redirect_check_table), cmocka_unit_test(test_redirect_check_length),
        cmocka_unit_test(test_domain_valid_table),   cmocka_unit_test(test_add_params_table),
        cmocka_unit_test(test_add_params_cap),       cmocka_unit_test(test_state_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
