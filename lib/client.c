/*
 * client.c — the relying-party client: authorize URLs, callback classification, and WeChat's
 * APIs over libcurl (TLS verification always on, bounded bodies, retries only where safe).
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wxauth/client.h>
#include <wxauth/errcode.h>
#include <wxauth/url.h>

struct wx_client {
    struct wx_client_config cfg; /* strings below are the client's own copies */
    char *appid, *secret, *open_base, *api_base, *ca_file, *connect_to;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;
/* Each thread keeps one libcurl handle, so its connections to WeChat stay open between calls. */
static pthread_key_t handle_key;

static void handle_free(void *h)
{
    curl_easy_cleanup(h);
}

static void curl_init_once(void)
{
    curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK &&
              pthread_key_create(&handle_key, handle_free) == 0;
}

/* This thread's handle, with every option reset (its connection cache stays). */
static CURL *thread_handle(void)
{
    CURL *h = pthread_getspecific(handle_key);
    if (h) {
        curl_easy_reset(h);
        return h;
    }
    h = curl_easy_init();
    if (h && pthread_setspecific(handle_key, h) != 0) {
        curl_easy_cleanup(h);
        h = NULL;
    }
    return h;
}

void wx_client_thread_done(void)
{
    if (!curl_ok)
        return;
    CURL *h = pthread_getspecific(handle_key);
    if (h) {
        pthread_setspecific(handle_key, NULL);
        curl_easy_cleanup(h);
    }
}

static void set_err(struct wx_error *err, int errcode, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(struct wx_error *err, int errcode, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    err->errcode = errcode;
    vsnprintf(err->errmsg, sizeof err->errmsg, fmt, ap);
    va_end(ap);
}

static char *dup_str(const struct wx_client_config *cfg, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *p = cfg->alloc ? cfg->alloc(n) : malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void free_str(const struct wx_client_config *cfg, char *p)
{
    if (!p)
        return;
    sodium_memzero(p, strlen(p));
    if (cfg->free)
        cfg->free(p);
    else
        free(p);
}

/* Trims trailing slashes of a base URL copy and checks its scheme. */
static int base_ok(char *b)
{
    size_t n = strlen(b);
    while (n && b[n - 1] == '/')
        b[--n] = '\0';
    return !strncmp(b, "https://", 8) || !strncmp(b, "http://", 7);
}

void wx_client_free(struct wx_client *c)
{
    if (!c)
        return;
    struct wx_client_config cfg = c->cfg;
    free_str(&cfg, c->appid);
    free_str(&cfg, c->secret);
    free_str(&cfg, c->open_base);
    free_str(&cfg, c->api_base);
    free_str(&cfg, c->ca_file);
    free_str(&cfg, c->connect_to);
    sodium_memzero(c, sizeof *c);
    if (cfg.free)
        cfg.free(c);
    else
        free(c);
}

int wx_client_new(const struct wx_client_config *cfg, struct wx_client **out, struct wx_error *err)
{
    if (sodium_init() < 0 || (pthread_once(&curl_once, curl_init_once), !curl_ok)) {
        set_err(err, -1, "library initialisation failed");
        return WX_ERR_IO;
    }
    if (!cfg || !out) {
        set_err(err, -1, "no configuration");
        return WX_ERR_INVALID;
    }
    if (!cfg->appid || !*cfg->appid || strlen(cfg->appid) > WX_MAX_ID) {
        set_err(err, -1, "appid is required");
        return WX_ERR_INVALID;
    }
    struct wx_client *c = cfg->alloc ? cfg->alloc(sizeof *c) : malloc(sizeof *c);
    if (!c) {
        set_err(err, -1, "out of memory");
        return WX_ERR_NOMEM;
    }
    memset(c, 0, sizeof *c);
    c->cfg = *cfg;
    c->appid = dup_str(cfg, cfg->appid);
    c->secret = dup_str(cfg, cfg->secret);
    c->open_base = dup_str(cfg, cfg->open_base ? cfg->open_base : WX_DEFAULT_OPEN_BASE);
    c->api_base = dup_str(cfg, cfg->api_base ? cfg->api_base : WX_DEFAULT_API_BASE);
    c->ca_file = dup_str(cfg, cfg->ca_file);
    c->connect_to = dup_str(cfg, cfg->connect_to);
    /* The copy of cfg must not keep pointers to the caller's strings. */
    c->cfg.appid = c->appid;
    c->cfg.secret = c->secret;
    c->cfg.open_base = c->open_base;
    c->cfg.api_base = c->api_base;
    c->cfg.ca_file = c->ca_file;
    c->cfg.connect_to = c->connect_to;
    if (!c->appid || !c->open_base || !c->api_base || (cfg->secret && !c->secret) ||
        (cfg->ca_file && !c->ca_file) || (cfg->connect_to && !c->connect_to)) {
        wx_client_free(c);
        set_err(err, -1, "out of memory");
        return WX_ERR_NOMEM;
    }
    if (!base_ok(c->open_base) || !base_ok(c->api_base)) {
        set_err(err, -1, "base URLs must start with https:// or http://");
        wx_client_free(c);
        return WX_ERR_INVALID;
    }
    if (!c->cfg.connect_timeout_ms)
        c->cfg.connect_timeout_ms = 3000;
    if (!c->cfg.timeout_ms)
        c->cfg.timeout_ms = 10000;
    if (!c->cfg.max_retries)
        c->cfg.max_retries = 2;
    if (c->cfg.max_retries < 0)
        c->cfg.max_retries = 0;
    if (!c->cfg.retry_backoff_ms)
        c->cfg.retry_backoff_ms = 200;
    if (!c->cfg.state_ttl)
        c->cfg.state_ttl = 600;
    *out = c;
    return WX_OK;
}

/* ---- authorize URL ---- */

static int add_param(struct wx_buf *b, const char *key, const char *value, int first)
{
    int rc = wx_buf_puts(b, first ? "?" : "&");
    if (!rc)
        rc = wx_buf_puts(b, key);
    if (!rc)
        rc = wx_buf_puts(b, "=");
    if (!rc)
        rc = wx_pct_encode(b, wx_slice_cstr(value));
    return rc;
}

int wx_authorize_url(const struct wx_client *c, const struct wx_authorize_params *p,
                     struct wx_buf *out)
{
    struct wx_uri u;
    if (!p->scope || (strcmp(p->scope, "snsapi_base") && strcmp(p->scope, "snsapi_userinfo") &&
                      strcmp(p->scope, "snsapi_login")))
        return WX_ERR_INVALID;
    /* snsapi_login is a website app's QR login: another page, and no in-WeChat extras. */
    int web = !strcmp(p->scope, "snsapi_login");
    if (p->state && wx_state_valid(wx_slice_cstr(p->state)) != WX_OK)
        return WX_ERR_INVALID;
    if (!p->redirect_uri || wx_uri_parse(wx_slice_cstr(p->redirect_uri), &u) != WX_OK)
        return WX_ERR_INVALID;
    size_t mark = out->len;
    int rc = wx_buf_puts(out, c->open_base);
    if (!rc)
        rc = wx_buf_puts(out, web ? "/connect/qrconnect" : "/connect/oauth2/authorize");
    if (!rc)
        rc = add_param(out, "appid", c->appid, 1);
    if (!rc)
        rc = add_param(out, "redirect_uri", p->redirect_uri, 0);
    if (!rc)
        rc = add_param(out, "response_type", "code", 0);
    if (!rc)
        rc = add_param(out, "scope", p->scope, 0);
    if (!rc && p->state && *p->state)
        rc = add_param(out, "state", p->state, 0);
    if (!rc && p->force_popup && !web)
        rc = add_param(out, "forcePopup", "true", 0);
    if (!rc && p->force_snapshot && !web)
        rc = add_param(out, "forceSnapShot", "true", 0);
    if (!rc && p->connect_redirect && !web)
        rc = add_param(out, "connect_redirect", "1", 0);
    if (!rc)
        rc = wx_buf_puts(out, "#wechat_redirect");
    if (rc && out->ptr) {
        /* Nothing half-built is left behind. */
        out->len = mark;
        out->ptr[mark] = '\0';
    }
    return rc;
}

/* ---- callback ---- */

static int invalid(struct wx_callback *out, const char *reason)
{
    out->kind = WX_CALLBACK_INVALID;
    out->reason = reason;
    out->code[0] = '\0';
    return WX_OK;
}

/* WeChat's codes are [0-9A-Za-z] (32 characters); '-' and '_' are tolerated. */
static int code_ok(const char *code)
{
    size_t n = strlen(code);
    if (!n || n > WX_MAX_CODE)
        return 0;
    for (const char *p = code; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              *p == '-' || *p == '_'))
            return 0;
    return 1;
}

int wx_callback_parse(const struct wx_client *c, struct wx_slice query, struct wx_slice binding,
                      int64_t now, struct wx_callback *out)
{
    struct wx_query q;
    memset(out, 0, sizeof(*out));
    invalid(out, "not classified"); /* never CODE by default */
    int rc = wx_query_parse(&q, query, WX_MAX_URL);
    if (rc == WX_ERR_NOMEM) {
        invalid(out, "out of memory");
        return rc;
    }
    if (rc)
        return invalid(out, "malformed query string");
    const char *code = wx_query_get(&q, "code"), *state = wx_query_get(&q, "state");
    int src;
    if (wx_query_count(&q, "code") > 1 || wx_query_count(&q, "state") > 1)
        invalid(out, "duplicated code or state parameter");
    else if (!state || !*state)
        invalid(out, "state missing");
    else if (code && !code_ok(code))
        invalid(out, "malformed code");
    else if (wx_state_valid(wx_slice_cstr(state)) != WX_OK)
        invalid(out, "malformed state");
    else if ((src = wx_state_open(&c->cfg.state_keys, wx_slice_cstr(state), binding, now,
                                  &out->state)) != WX_OK) {
        invalid(out, src == WX_ERR_EXPIRED   ? "state expired"
                     : src == WX_ERR_INVALID ? "state issued to another browser"
                                             : "state forged or malformed");
        memset(&out->state, 0, sizeof out->state);
    } else if (code) {
        out->kind = WX_CALLBACK_CODE;
        out->reason = NULL;
        memcpy(out->code, code, strlen(code) + 1);
    } else {
        out->kind = WX_CALLBACK_DENIED;
        out->reason = NULL;
    }
    wx_query_free(&q);
    return WX_OK;
}

/* ---- transport ---- */

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct wx_buf *b = ud;
    return wx_buf_append(b, data, size * n) == WX_OK ? size * n : 0;
}

static void logline(const struct wx_client *c, enum wx_log_severity sev, const char *path,
                    int errcode, long ms, const char *note)
{
    if (!c->cfg.log)
        return;
    char line[512];
    snprintf(line, sizeof line, "wxauth client: GET %s errcode=%d ms=%ld%s%.300s", path, errcode,
             ms, note ? " " : "", note ? note : "");
    c->cfg.log(c->cfg.log_ud, sev, line);
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* One GET of api_base + path + query; body receives at most WX_MAX_JSON_RESP bytes. */
static int http_get(const struct wx_client *c, const char *path, const char *query,
                    struct wx_buf *body, struct wx_error *err)
{
    struct wx_buf url;
    char cerr[CURL_ERROR_SIZE] = "";
    long status = 0;
    wx_buf_init(&url, WX_MAX_URL * 2);
    if (wx_buf_printf(&url, "%s%s?%s", c->api_base, path, query)) {
        wx_buf_free(&url);
        set_err(err, -1, "request URL too long");
        return WX_ERR_LIMIT;
    }
    CURL *h = thread_handle();
    struct curl_slist *connect_to = NULL;
    if (h && c->connect_to && !(connect_to = curl_slist_append(NULL, c->connect_to)))
        h = NULL;
    if (!h) {
        wx_buf_free(&url);
        set_err(err, -1, "out of memory");
        return WX_ERR_NOMEM;
    }
    curl_easy_setopt(h, CURLOPT_URL, url.ptr);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file) {
        /* Only this bundle: the built-in CA directory must not widen the trust. */
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    if (connect_to)
        curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->cfg.timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "wxauth/0.1");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_CONNECT_TO, NULL);
    curl_slist_free_all(connect_to);
    sodium_memzero(url.ptr, url.len);
    wx_buf_free(&url);
    if (cc == CURLE_WRITE_ERROR) {
        set_err(err, -1, "response larger than %d bytes", WX_MAX_JSON_RESP);
        return WX_ERR_IO;
    }
    if (cc != CURLE_OK) {
        set_err(err, -1, "transport: %s", cerr[0] ? cerr : curl_easy_strerror(cc));
        return WX_ERR_IO;
    }
    if (status != 200) {
        set_err(err, -1, "HTTP status %ld (expected 200)", status);
        return WX_ERR_IO;
    }
    return WX_OK;
}

/* Parses a JSON object; an errcode answer (non-zero errcode) becomes WX_ERR_INVALID. */
static int parse_object(struct wx_slice body, json_t **out, struct wx_error *err)
{
    json_error_t je;
    if (body.len > WX_MAX_JSON_RESP) {
        set_err(err, -1, "response larger than %d bytes", WX_MAX_JSON_RESP);
        return WX_ERR_IO;
    }
    json_t *o = json_loadb(body.ptr ? body.ptr : "", body.len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        set_err(err, -1, "the response is not a JSON object (%s)",
                body.len && body.ptr[0] == '<' ? "HTML" : "unparsable");
        return WX_ERR_IO;
    }
    json_t *ec = json_object_get(o, "errcode");
    if (ec && !json_is_integer(ec)) {
        json_decref(o);
        set_err(err, -1, "errcode is not an integer");
        return WX_ERR_IO;
    }
    if (ec && json_integer_value(ec) != 0) {
        const char *msg = json_string_value(json_object_get(o, "errmsg"));
        json_int_t code = json_integer_value(ec);
        /* An errcode outside int still is an error answer; never let it wrap to 0. */
        set_err(err, code >= INT32_MIN && code <= INT32_MAX ? (int)code : -1, "%s", msg ? msg : "");
        json_decref(o);
        return WX_ERR_INVALID;
    }
    *out = o;
    return WX_OK;
}

/* Copies a string field; required fields must be present, non-empty and fit. */
static int field(json_t *o, const char *key, char *dst, size_t dstsz, int required,
                 struct wx_error *err)
{
    json_t *v = json_object_get(o, key);
    dst[0] = '\0';
    if (!v || json_is_null(v)) {
        if (required)
            set_err(err, -1, "response lacks %s", key);
        return required ? WX_ERR_IO : WX_OK;
    }
    if (!json_is_string(v) || json_string_length(v) >= dstsz ||
        (required && !json_string_length(v))) {
        set_err(err, -1, "response field %s is malformed", key);
        return WX_ERR_IO;
    }
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return WX_OK;
}

int wx_parse_token(struct wx_slice body, struct wx_token *out, struct wx_error *err)
{
    json_t *o = NULL;
    memset(out, 0, sizeof(*out));
    int rc = parse_object(body, &o, err);
    if (rc)
        return rc;
    json_t *exp = json_object_get(o, "expires_in"), *snap = json_object_get(o, "is_snapshotuser");
    if ((rc = field(o, "access_token", out->access_token, sizeof out->access_token, 1, err)) ||
        (rc = field(o, "refresh_token", out->refresh_token, sizeof out->refresh_token, 1, err)) ||
        (rc = field(o, "openid", out->openid, sizeof out->openid, 1, err)) ||
        (rc = field(o, "unionid", out->unionid, sizeof out->unionid, 0, err)) ||
        (rc = field(o, "scope", out->scope, sizeof out->scope, 0, err)))
        goto done;
    if (!json_is_integer(exp) || json_integer_value(exp) <= 0) {
        set_err(err, -1, "response field %s is malformed", "expires_in");
        rc = WX_ERR_IO;
        goto done;
    }
    out->expires_in = json_integer_value(exp);
    out->is_snapshotuser = json_is_integer(snap) && json_integer_value(snap) == 1;
done:
    json_decref(o);
    if (rc)
        sodium_memzero(out, sizeof *out);
    return rc;
}

int wx_parse_userinfo(struct wx_slice body, struct wx_userinfo *out, struct wx_error *err)
{
    json_t *o = NULL;
    memset(out, 0, sizeof(*out));
    int rc = parse_object(body, &o, err);
    if (rc)
        return rc;
    json_t *sex = json_object_get(o, "sex");
    if ((rc = field(o, "openid", out->openid, sizeof out->openid, 1, err)) ||
        (rc = field(o, "unionid", out->unionid, sizeof out->unionid, 0, err)) ||
        (rc = field(o, "nickname", out->nickname, sizeof out->nickname, 0, err)) ||
        (rc = field(o, "headimgurl", out->headimgurl, sizeof out->headimgurl, 0, err)) ||
        (rc = field(o, "province", out->province, sizeof out->province, 0, err)) ||
        (rc = field(o, "city", out->city, sizeof out->city, 0, err)) ||
        (rc = field(o, "country", out->country, sizeof out->country, 0, err)))
        goto done;
    /* The official sample shows sex as the string "1"; everyone else sends a number. */
    if (json_is_integer(sex)) {
        json_int_t v = json_integer_value(sex);
        out->sex = v >= 0 && v <= 2 ? (int)v : 0;
    } else if (json_is_string(sex)) {
        const char *v = json_string_value(sex);
        out->sex = !strcmp(v, "1") ? 1 : !strcmp(v, "2") ? 2 : 0;
    }
done:
    json_decref(o);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

int wx_parse_status(struct wx_slice body, struct wx_error *err)
{
    json_t *o = NULL;
    int rc = parse_object(body, &o, err);
    if (rc == WX_OK && !json_is_integer(json_object_get(o, "errcode"))) {
        set_err(err, -1, "response lacks %s", "errcode");
        rc = WX_ERR_IO;
    }
    json_decref(o);
    return rc;
}

/* ---- calls ---- */

typedef int (*parse_fn)(struct wx_slice body, void *out, struct wx_error *err);

static int retryable(int rc, const struct wx_error *e)
{
    return rc == WX_ERR_IO || (rc == WX_ERR_INVALID && (e->errcode == -1 || e->errcode == 45011));
}

/* GET + parse, with retries when idempotent. The query is wiped afterwards. */
static int call(const struct wx_client *c, const char *path, struct wx_buf *query, int idempotent,
                parse_fn parse, void *out, size_t out_size, struct wx_error *err)
{
    struct wx_error local;
    if (!err)
        err = &local;
    memset(err, 0, sizeof *err);
    /* Whatever happens (transport errors included), the caller never reads stale results. */
    if (out && out_size)
        memset(out, 0, out_size);
    int rc = WX_ERR_IO, attempts = idempotent ? 1 + c->cfg.max_retries : 1;
    long backoff = c->cfg.retry_backoff_ms;
    for (int i = 0; i < attempts; i++) {
        struct timespec t0;
        struct wx_buf body;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        wx_buf_init(&body, WX_MAX_JSON_RESP);
        rc = http_get(c, path, query->ptr ? query->ptr : "", &body, err);
        if (rc == WX_OK)
            rc = parse((struct wx_slice){body.ptr, body.len}, out, err);
        wx_buf_free(&body);
        logline(c, rc ? WX_SEV_WARN : WX_SEV_INFO, path, rc ? err->errcode : 0, elapsed_ms(&t0),
                rc == WX_ERR_IO ? err->errmsg : NULL);
        if (!retryable(rc, err) || i + 1 == attempts)
            break;
        struct timespec ts = {backoff / 1000, (backoff % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        backoff *= 2;
    }
    if (query->ptr)
        sodium_memzero(query->ptr, query->len);
    wx_buf_free(query);
    return rc;
}

/* Builds "k=v&k=v" from NULL-terminated pairs; values are percent-encoded. */
static int build_query(struct wx_buf *q, const char *const *kv, struct wx_error *err)
{
    wx_buf_init(q, WX_MAX_URL);
    int rc = WX_OK;
    for (int i = 0; kv[i] && rc == WX_OK; i += 2) {
        if (i)
            rc = wx_buf_puts(q, "&");
        if (!rc)
            rc = wx_buf_puts(q, kv[i]);
        if (!rc)
            rc = wx_buf_puts(q, "=");
        if (!rc)
            rc = wx_pct_encode(q, wx_slice_cstr(kv[i + 1] ? kv[i + 1] : ""));
    }
    if (rc) {
        wx_buf_free(q);
        set_err(err, -1, "request too long");
    }
    return rc;
}

static int token_parse(struct wx_slice b, void *out, struct wx_error *e)
{
    return wx_parse_token(b, out, e);
}

static int userinfo_parse(struct wx_slice b, void *out, struct wx_error *e)
{
    return wx_parse_userinfo(b, out, e);
}

static int status_parse(struct wx_slice b, void *out, struct wx_error *e)
{
    (void)out;
    return wx_parse_status(b, e);
}

static int need(const char *v, const char *name, struct wx_error *err)
{
    if (v && *v && strlen(v) <= WX_MAX_TOKEN)
        return WX_OK;
    set_err(err, -1, "%s is missing or too long", name);
    return WX_ERR_INVALID;
}

int wx_exchange_code(const struct wx_client *c, const char *code, struct wx_token *out,
                     struct wx_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    struct wx_buf q;
    int rc;
    if ((rc = need(code, "code", err)) || (rc = need(c->secret, "secret", err)))
        return rc;
    const char *kv[] = {"appid", c->appid, "secret",     c->secret,
                        "code",  code,     "grant_type", "authorization_code",
                        NULL};
    if ((rc = build_query(&q, kv, err)))
        return rc;
    /* Never retried: a code is single-use, and a lost answer cannot be asked for again. */
    return call(c, "/sns/oauth2/access_token", &q, 0, token_parse, out, sizeof *out, err);
}

int wx_refresh_token(const struct wx_client *c, const char *refresh_token, struct wx_token *out,
                     struct wx_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    struct wx_buf q;
    int rc = need(refresh_token, "refresh_token", err);
    if (rc)
        return rc;
    const char *kv[] = {"appid",         c->appid,      "grant_type", "refresh_token",
                        "refresh_token", refresh_token, NULL};
    if ((rc = build_query(&q, kv, err)))
        return rc;
    return call(c, "/sns/oauth2/refresh_token", &q, 1, token_parse, out, sizeof *out, err);
}

int wx_get_userinfo(const struct wx_client *c, const char *access_token, const char *openid,
                    const char *lang, struct wx_userinfo *out, struct wx_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    struct wx_buf q;
    int rc;
    if ((rc = need(access_token, "access_token", err)) || (rc = need(openid, "openid", err)))
        return rc;
    if (lang && strcmp(lang, "zh_CN") && strcmp(lang, "zh_TW") && strcmp(lang, "en")) {
        set_err(err, -1, "lang must be zh_CN, zh_TW or en");
        return WX_ERR_INVALID;
    }
    const char *kv[] = {"access_token",       access_token, "openid", openid,
                        lang ? "lang" : NULL, lang,         NULL};
    if ((rc = build_query(&q, kv, err)))
        return rc;
    rc = call(c, "/sns/userinfo", &q, 1, userinfo_parse, out, sizeof *out, err);
    if (rc == WX_OK && strcmp(out->openid, openid) != 0) {
        set_err(err, -1, "userinfo answered for another openid");
        memset(out, 0, sizeof *out);
        return WX_ERR_IO;
    }
    return rc;
}

int wx_check_token(const struct wx_client *c, const char *access_token, const char *openid,
                   struct wx_error *err)
{
    struct wx_buf q;
    int rc;
    if ((rc = need(access_token, "access_token", err)) || (rc = need(openid, "openid", err)))
        return rc;
    const char *kv[] = {"access_token", access_token, "openid", openid, NULL};
    if ((rc = build_query(&q, kv, err)))
        return rc;
    return call(c, "/sns/auth", &q, 1, status_parse, NULL, 0, err);
}

struct basic_out {
    char *token;
    int64_t *expires_in;
};

static int basic_parse(struct wx_slice b, void *out, struct wx_error *e)
{
    struct basic_out *bo = out;
    json_t *o = NULL;
    int rc = parse_object(b, &o, e);
    if (rc)
        return rc;
    json_t *exp = json_object_get(o, "expires_in");
    rc = field(o, "access_token", bo->token, WX_MAX_TOKEN + 1, 1, e);
    if (!rc && (!json_is_integer(exp) || json_integer_value(exp) <= 0)) {
        set_err(e, -1, "response field %s is malformed", "expires_in");
        rc = WX_ERR_IO;
    }
    if (!rc && bo->expires_in)
        *bo->expires_in = json_integer_value(exp);
    json_decref(o);
    return rc;
}

int wx_basic_token(const struct wx_client *c, char token[WX_MAX_TOKEN + 1], int64_t *expires_in,
                   struct wx_error *err)
{
    if (token)
        token[0] = '\0';
    if (expires_in)
        *expires_in = 0;
    struct wx_buf q;
    struct basic_out bo = {token, expires_in};
    int rc = need(c->secret, "secret", err);
    if (rc)
        return rc;
    const char *kv[] = {"grant_type", "client_credential", "appid", c->appid,
                        "secret",     c->secret,           NULL};
    if ((rc = build_query(&q, kv, err)))
        return rc;
    return call(c, "/cgi-bin/token", &q, 1, basic_parse, &bo, 0, err);
}

static int basic_user_parse(struct wx_slice b, void *out, struct wx_error *e)
{
    struct wx_basic_userinfo *u = out;
    json_t *o = NULL;
    memset(u, 0, sizeof *u);
    int rc = parse_object(b, &o, e);
    if (rc)
        return rc;
    json_t *sub = json_object_get(o, "subscribe"), *t = json_object_get(o, "subscribe_time");
    if (!json_is_integer(sub)) {
        set_err(e, -1, "response lacks %s", "subscribe");
        rc = WX_ERR_IO;
    }
    if (!rc)
        rc = field(o, "openid", u->openid, sizeof u->openid, 1, e);
    if (!rc)
        rc = field(o, "unionid", u->unionid, sizeof u->unionid, 0, e);
    if (!rc)
        rc = field(o, "language", u->language, sizeof u->language, 0, e);
    if (!rc) {
        u->subscribe = (int)json_integer_value(sub);
        u->subscribe_time = json_is_integer(t) ? json_integer_value(t) : 0;
    }
    json_decref(o);
    return rc;
}

int wx_basic_userinfo(const struct wx_client *c, const char *basic_token, const char *openid,
                      struct wx_basic_userinfo *out, struct wx_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    struct wx_buf q;
    int rc;
    if ((rc = need(basic_token, "access_token", err)) || (rc = need(openid, "openid", err)))
        return rc;
    const char *kv[] = {"access_token", basic_token, "openid", openid, "lang", "zh_CN", NULL};
    if ((rc = build_query(&q, kv, err)))
        return rc;
    return call(c, "/cgi-bin/user/info", &q, 1, basic_user_parse, out, sizeof *out, err);
}
