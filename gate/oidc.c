/*
 * oidc.c — the gate as an OpenID Connect provider (`wxauth gate --oidc`, docs/oidc.md): every
 * app that can "log in with OpenID Connect" gets WeChat login, through the gate's own logins
 * (in WeChat, the desktop QR), sessions (so single sign-on), refusal page and store. The issuer
 * is PUBLIC_URL + PREFIX, so everything sits under the prefix the nginx snippet forwards:
 *
 *   GET  PREFIX/.well-known/openid-configuration   discovery
 *   GET  PREFIX/oidc/jwks                           the public keys
 *   GET|POST PREFIX/oidc/authorize                  code flow; a login when there is no session
 *        PREFIX/oidc/a?r=ID                         the same request, back from the login
 *   POST PREFIX/oidc/token                          authorization_code, refresh_token
 *   GET|POST PREFIX/oidc/userinfo                   Bearer access token
 *   GET|POST PREFIX/oidc/logout                     RP-initiated logout
 *
 * Credentials are random (256 bits), kept in the store only under a hash of themselves (kv):
 * a code for OIDC_CODE_TTL seconds and used once (a second use revokes what the first issued,
 * RFC 6749 §4.1.2), access tokens for oidc-token-ttl, refresh tokens (with offline_access) for
 * oidc-refresh-ttl, rotated at every use (a rotated one used again revokes the grant). The
 * handlers run on the gate's workers: signing with RSA takes a millisecond or so, and the
 * store calls take the store's lock there.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <wxauth/wxauth.h>

#include "gate_internal.h"
#include "html.h"
#include "json.h"
#include "oidc.h"
#include "seal.h"

#define OIDC_CODE_TTL    60 /* an authorization code lives a minute (RFC 6749 §4.1.2: 10 at most) */
#define OIDC_PENDING_TTL 600   /* a request waiting for its WeChat login */
#define OIDC_STATE_MAX   512   /* state, bytes */
#define OIDC_NONCE_MAX   255   /* nonce, bytes */
#define OIDC_KEY_KEEP    86400 /* a retired key stays published this long past the token lifetime */
#define OIDC_RECORD_MAX  4096  /* a code's, token's or pending request's record in the store */
#define OIDC_TOKEN_LEN   43    /* 32 random bytes, base64url */
#define OIDC_PENDING_LEN 22    /* 16 random bytes, base64url */

struct gate_oidc {
    char issuer[600];
    struct wx_keys keys; /* from the store's master key: client secrets, sealed signing keys */
    pthread_rwlock_t lock;
    struct wx_oidc_keyset ks;
    int64_t token_ttl, refresh_ttl, rotate;
};

/* ---- small pieces ---- */

static void random_token(char *out, size_t bytes)
{
    unsigned char raw[32];
    randombytes_buf(raw, bytes);
    sodium_bin2base64(out, bytes * 4 / 3 + 3, raw, bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

static void key_of(char kind, const char *secret, unsigned char out[16])
{
    wx_g_kv_key(kind, secret, strlen(secret), out);
}

/* A JSON record into the store under key until until. */
static int put_json(struct gate *g, const unsigned char key[16], const json_t *o, int64_t until)
{
    struct wx_buf b;
    wx_buf_init(&b, OIDC_RECORD_MAX);
    int rc = wx_json_append(&b, o);
    if (rc == WX_OK)
        rc = wx_g_kv_put(g, key, b.ptr, until);
    if (b.ptr)
        sodium_memzero(b.ptr, b.len);
    wx_buf_free(&b);
    return rc;
}

/* The JSON record under key: WX_OK with *o, WX_ERR_NOTFOUND, or a store error. */
static int get_json(struct gate *g, const unsigned char key[16], json_t **o)
{
    char v[OIDC_RECORD_MAX + 1], err[64];
    int rc = wx_g_kv_get(g, key, v, sizeof v);
    *o = NULL;
    if (rc == WX_OK && wx_json_parse(wx_slice_cstr(v), OIDC_RECORD_MAX, o, err, sizeof err))
        rc = WX_ERR_STORE;
    sodium_memzero(v, sizeof v);
    return rc;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static int64_t jint(const json_t *o, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(o, k));
}

static int client_get(struct gate *g, const char *id, struct wx_oidc_client *c)
{
    struct wx_store *s = wx_g_store_take(g);
    int rc = wx_oidc_client_get(s, id ? id : "", c);
    wx_g_store_give(g, s);
    return rc;
}

/* An error of the token or userinfo endpoint, as RFC 6749 §5.2 gives it. */
static void json_error(struct wx_http_req *req, int status, const char *error, const char *desc)
{
    json_t *o = json_pack("{s:s, s:s}", "error", error, "error_description", desc);
    wx_buf_reset(&req->out);
    if (!o || wx_json_append(&req->out, o))
        wx_buf_puts(&req->out, "{\"error\":\"server_error\"}");
    json_decref(o);
    wx_http_json(req, status); /* Cache-Control: no-store (RFC 6749 §5.1) */
}

/* o (released) as the 200 answer: no-store, or cacheable for 5 minutes (discovery: relying
 * parties that meet a new key's kid fetch the keys again, OIDC Core §10.1.1). */
static void json_reply(struct wx_http_req *req, json_t *o, int cacheable)
{
    wx_buf_reset(&req->out);
    if (!o || wx_json_append(&req->out, o)) {
        json_decref(o);
        json_error(req, 500, "server_error", "the answer could not be written");
        return;
    }
    json_decref(o);
    if (!cacheable) {
        wx_http_json(req, 200);
        return;
    }
    req->status = 200;
    req->content_type = "application/json; charset=utf-8";
    wx_http_set_header(req, "Cache-Control", "public, max-age=300");
}

static void json_answer(struct wx_http_req *req, json_t *o)
{
    json_reply(req, o, 0);
}

/* The request's parameters: the query, or for a POST the form body. */
static int params_of(struct wx_http_req *req, struct wx_query *q)
{
    if (!strcmp(req->method, "POST")) {
        const char *ct = wx_http_header(req, "Content-Type");
        if (!ct || strncmp(ct, "application/x-www-form-urlencoded", 33))
            return WX_ERR_SYNTAX;
        return wx_query_parse(
            q, (struct wx_slice){req->body.ptr ? req->body.ptr : "", req->body.len}, WX_MAX_BODY);
    }
    return wx_query_parse(q, req->query, WX_MAX_URL);
}

/* ---- discovery and keys ---- */

static void route_discovery(struct gate *g, struct wx_http_req *req)
{
    const char *iss = g->oidc->issuer;
    char ep[6][700];
    static const char *const names[6] = {"authorize", "token", "userinfo", "jwks", "logout", ""};
    for (int i = 0; i < 5; i++)
        snprintf(ep[i], sizeof ep[i], "%s/oidc/%s", iss, names[i]);
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:[s], s:[s,s], s:[s], s:[s,s], s:[s,s,s],"
        " s:[s,s,s], s:[s], s:[s,s,s,s], s:b, s:b, s:b, s:b}",
        "issuer", iss, "authorization_endpoint", ep[0], "token_endpoint", ep[1],
        "userinfo_endpoint", ep[2], "jwks_uri", ep[3], "end_session_endpoint", ep[4],
        "response_types_supported", "code", "response_modes_supported", "query",
        "grant_types_supported", "authorization_code", "refresh_token", "subject_types_supported",
        "public", "id_token_signing_alg_values_supported", "RS256", "ES256", "scopes_supported",
        "openid", "profile", "offline_access", "token_endpoint_auth_methods_supported",
        "client_secret_basic", "client_secret_post", "none", "code_challenge_methods_supported",
        "S256", "prompt_values_supported", "none", "login", "consent", "select_account",
        "authorization_response_iss_parameter_supported", 0, "request_parameter_supported", 0,
        "request_uri_parameter_supported", 0, "claims_parameter_supported", 0);
    json_t *claims = json_pack("[s,s,s,s,s,s,s,s,s,s,s,s,s,s,s]", "sub", "iss", "aud", "exp", "iat",
                               "auth_time", "nonce", "amr", "azp", "at_hash", "sid", "name",
                               "picture", "wechat_openid", "wechat_unionid");
    if (o && claims)
        json_object_set_new(o, "claims_supported", claims);
    json_reply(req, o, 1);
}

static void route_jwks(struct gate *g, struct wx_http_req *req)
{
    pthread_rwlock_rdlock(&g->oidc->lock);
    json_t *o = wx_oidc_jwks(&g->oidc->ks);
    pthread_rwlock_unlock(&g->oidc->lock);
    json_reply(req, o, 1);
}

/* ---- authorize ---- */

/* The parameters of an authorization request, checked against the client. */
struct authz {
    struct wx_oidc_client client;
    char redirect[WX_OIDC_MAX_URI + 1], scope[WX_OIDC_MAX_SCOPES + 1];
    char state[OIDC_STATE_MAX + 1], nonce[OIDC_NONCE_MAX + 1], challenge[48], prompt[64];
    int64_t max_age;     /* -1: none */
    int64_t login_after; /* a login made for this request: auth_time must not be older */
};

/* Redirects the user agent to the client with error (RFC 6749 §4.1.2.1). */
static void to_client_error(struct gate *g, struct wx_http_req *req, const struct authz *a,
                            const char *error, const char *desc)
{
    /*
     * No iss here (it rides with codes): mod_auth_openidc 2.4 (Debian 12's) takes an error
     * response that carries iss for a third-party-initiated login and loses the error. So
     * discovery does not claim RFC 9207 support.
     */
    const char *kv[] = {"error", error, "error_description", desc, "state", a->state};
    struct wx_buf u;
    wx_buf_init(&u, WX_MAX_URL);
    if (wx_uri_add_params(&u, a->redirect, kv, a->state[0] ? 3 : 2) ||
        wx_http_redirect(req, 302, u.ptr))
        wx_g_page(g, req, 400, "登录请求无效 · Invalid login request", desc, NULL, 0);
    wx_buf_free(&u);
}

static int copy_param(const struct wx_query *q, const char *name, char *out, size_t outsz)
{
    const char *v = wx_query_get(q, name);
    out[0] = '\0';
    if (!v)
        return 0;
    if (strlen(v) >= outsz || wx_query_count(q, name) > 1)
        return -1;
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

/* The scopes asked for that the client may have; "" when openid is not among them. Others are
 * left out, not refused (RPs ask for "email" by default; WeChat has none to give). */
static void grant_scopes(const char *asked, const struct wx_oidc_client *c, char *out, size_t n)
{
    static const char *const known[] = {"openid", "profile", "offline_access"};
    out[0] = '\0';
    if (!wx_oidc_scope_has(asked, "openid") || !wx_oidc_scope_has(c->scopes, "openid"))
        return;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (wx_oidc_scope_has(asked, known[i]) && wx_oidc_scope_has(c->scopes, known[i]))
            snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? " " : "", known[i]);
}

/*
 * Reads and checks an authorization request into a. 1: a is ready; 0: req was answered (a page
 * when the client or redirect_uri cannot be trusted, else a redirect with the error).
 */
static int authz_parse(struct gate *g, struct wx_http_req *req, const struct wx_query *q,
                       struct authz *a)
{
    char client_id[WX_OIDC_MAX_ID + 2], rtype[32], method[16], mode[16], maxage[24], scope[512];
    memset(a, 0, sizeof *a);
    a->max_age = -1;
    if (copy_param(q, "client_id", client_id, sizeof client_id) || !client_id[0] ||
        client_get(g, client_id, &a->client) != WX_OK) {
        wx_g_page(g, req, 400, "未知的应用 · Unknown client",
                  "这个登录请求来自一个没有登记的应用。The login request names no registered "
                  "client (client_id).",
                  NULL, 0);
        return 0;
    }
    if (copy_param(q, "redirect_uri", a->redirect, sizeof a->redirect) ||
        !wx_oidc_uri_listed(a->client.redirect, a->client.nredirect, a->redirect)) {
        wx_g_page(g, req, 400, "回调地址未登记 · Unregistered redirect_uri",
                  "这个应用没有登记这个回调地址。The redirect_uri is not one the client "
                  "registered (compared exactly).",
                  NULL, 0);
        return 0;
    }
    /* From here on the client is known and its redirect_uri trusted: errors go there. */
    if (copy_param(q, "state", a->state, sizeof a->state)) {
        a->state[0] = '\0';
        to_client_error(g, req, a, "invalid_request", "state is longer than 512 bytes");
        return 0;
    }
    const char *why = NULL, *error = "invalid_request";
    if (copy_param(q, "response_type", rtype, sizeof rtype) ||
        copy_param(q, "scope", scope, sizeof scope) ||
        copy_param(q, "nonce", a->nonce, sizeof a->nonce) ||
        copy_param(q, "code_challenge", a->challenge, sizeof a->challenge) ||
        copy_param(q, "code_challenge_method", method, sizeof method) ||
        copy_param(q, "prompt", a->prompt, sizeof a->prompt) ||
        copy_param(q, "response_mode", mode, sizeof mode) ||
        copy_param(q, "max_age", maxage, sizeof maxage))
        why = "a parameter is repeated or too long (nonce: 255 bytes at most)";
    else if (wx_query_get(q, "request"))
        why = "request objects are not supported", error = "request_not_supported";
    else if (wx_query_get(q, "request_uri"))
        why = "request_uri is not supported", error = "request_uri_not_supported";
    else if (strcmp(rtype, "code"))
        why = "response_type must be code", error = "unsupported_response_type";
    else if (mode[0] && strcmp(mode, "query"))
        why = "response_mode must be query";
    else if ((grant_scopes(scope, &a->client, a->scope, sizeof a->scope), !a->scope[0]))
        why = "scope must include openid", error = "invalid_scope";
    else if (a->challenge[0] && (strcmp(method, "S256") || strlen(a->challenge) != 43))
        why = "code_challenge_method must be S256, with a 43-character code_challenge";
    else if (!a->challenge[0] && method[0])
        why = "code_challenge_method without code_challenge";
    else if (!a->challenge[0] && !a->client.confidential)
        why = "a public client must use PKCE (code_challenge, S256)";
    else if (wx_oidc_scope_has(a->prompt, "none") && strcmp(a->prompt, "none"))
        why = "prompt=none cannot be combined with other values";
    if (!why && maxage[0]) {
        char *end;
        a->max_age = strtoll(maxage, &end, 10);
        if (*end || a->max_age < 0 || maxage[0] == '-' || maxage[0] == '+')
            why = "max_age must be a number of seconds";
    }
    if (why) {
        to_client_error(g, req, a, error, why);
        return 0;
    }
    return 1;
}

/* The request, kept while the user logs in with WeChat, as JSON. */
static json_t *authz_json(const struct authz *a)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "client_id", a->client.id,
                     "redirect_uri", a->redirect, "scope", a->scope, "state", a->state, "nonce",
                     a->nonce, "code_challenge", a->challenge, "prompt", a->prompt, "max_age",
                     (json_int_t)a->max_age, "login_after", (json_int_t)a->login_after);
}

static int authz_of_json(struct gate *g, const json_t *o, struct authz *a)
{
    memset(a, 0, sizeof *a);
    if (client_get(g, jstr(o, "client_id"), &a->client) != WX_OK)
        return -1;
    snprintf(a->redirect, sizeof a->redirect, "%s", jstr(o, "redirect_uri"));
    snprintf(a->scope, sizeof a->scope, "%s", jstr(o, "scope"));
    snprintf(a->state, sizeof a->state, "%s", jstr(o, "state"));
    snprintf(a->nonce, sizeof a->nonce, "%s", jstr(o, "nonce"));
    snprintf(a->challenge, sizeof a->challenge, "%s", jstr(o, "code_challenge"));
    snprintf(a->prompt, sizeof a->prompt, "%s", jstr(o, "prompt"));
    a->max_age = jint(o, "max_age");
    a->login_after = jint(o, "login_after");
    /* The client may have changed meanwhile: its redirect_uri must still be registered. */
    return wx_oidc_uri_listed(a->client.redirect, a->client.nredirect, a->redirect) ? 0 : -1;
}

/* Keeps a and sends the user to the gate's login, which comes back to PREFIX/oidc/a?r=ID. */
static void to_login(struct gate *g, struct wx_http_req *req, struct authz *a, int fresh)
{
    char id[OIDC_PENDING_LEN + 4], rd[WX_STATE_MAX_PATH + 1], loc[WX_STATE_MAX_PATH + 200];
    unsigned char key[16];
    int64_t now = wx_g_now_s();
    if (fresh)
        a->login_after = now; /* prompt=login or max_age: a login newer than this request */
    random_token(id, 16);
    key_of('A', id, key);
    json_t *o = authz_json(a);
    int rc = o ? put_json(g, key, o, now + OIDC_PENDING_TTL) : WX_ERR_NOMEM;
    json_decref(o);
    if (rc) {
        wx_g_page(g, req, 503, "暂时无法登录 · Try again",
                  "登录服务暂时不可用，请稍后再试。The login could not be started; try again.",
                  NULL, 0);
        return;
    }
    snprintf(rd, sizeof rd, "%s/oidc/a?r=%s", g->prefix, id);
    const char *scope = wx_oidc_scope_has(a->scope, "profile") ? "snsapi_userinfo"
                                                               : wx_g_scope_str(g->default_scope);
    snprintf(loc, sizeof loc, "%s/start?scope=%s&rd=%s", g->prefix, scope, rd);
    wx_http_redirect(req, 302, loc);
}

static const char *subject_of(const struct wx_oidc_client *c, const struct session *s)
{
    return c->subject == WX_OIDC_SUB_UNIONID && s->unionid[0] ? s->unionid : s->openid;
}

/* The session's id as the sid claim: a hash, never the id itself (which ends a session). */
static void sid_claim(const unsigned char sid[16], char out[24])
{
    unsigned char h[16];
    crypto_generichash(h, sizeof h, sid, 16, (const unsigned char *)"wxauth-oidc-sid", 15);
    sodium_bin2base64(out, 24, h, sizeof h, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* Issues a code for a and the session s, and sends it to the client. */
static void issue_code(struct gate *g, struct wx_http_req *req, const struct authz *a,
                       const struct session *s)
{
    char code[OIDC_TOKEN_LEN + 4], sid[24];
    unsigned char key[16];
    int64_t now = wx_g_now_s();
    int profile = wx_oidc_scope_has(a->scope, "profile") && s->scope != SCOPE_BASE;
    random_token(code, 32);
    key_of('C', code, key);
    sid_claim(s->sid, sid);
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:s}", "client_id",
        a->client.id, "redirect_uri", a->redirect, "scope", a->scope, "nonce", a->nonce,
        "code_challenge", a->challenge, "sub", subject_of(&a->client, s), "openid", s->openid,
        "unionid", s->unionid, "appid", wx_g_session_client(g, s)->appid, "name",
        profile ? s->nickname : "", "picture", profile ? s->avatar : "", "auth_time",
        (json_int_t)(s->expires - g->session_ttl), "qr", s->scope == SCOPE_LOGIN, "sid", sid);
    int rc = o ? put_json(g, key, o, now + OIDC_CODE_TTL) : WX_ERR_NOMEM;
    json_decref(o);
    if (rc) {
        to_client_error(g, req, a, "temporarily_unavailable", "the code could not be stored");
        return;
    }
    const char *kv[] = {"code", code, "iss", g->oidc->issuer, "state", a->state};
    struct wx_buf u;
    wx_buf_init(&u, WX_MAX_URL);
    if (wx_uri_add_params(&u, a->redirect, kv, a->state[0] ? 3 : 2) ||
        wx_http_redirect(req, 302, u.ptr))
        wx_g_page(g, req, 500, "出错了", "The redirect could not be built.", NULL, 0);
    wx_buf_free(&u);
    sodium_memzero(code, sizeof code);
}

/* a, with the session if there is one that serves it: a code, a login, or an error. */
static void authz_continue(struct gate *g, struct wx_http_req *req, struct authz *a, int back)
{
    struct session s;
    int st = wx_g_session_get(g, req, &s);
    if (st == SESSION_STORE_DOWN) {
        to_client_error(g, req, a, "temporarily_unavailable", "the session store is unavailable");
        return;
    }
    int64_t now = wx_g_now_s(), auth_time = s.expires - g->session_ttl;
    int have = st == SESSION_OK,
        profile_ok = !wx_oidc_scope_has(a->scope, "profile") || (have && s.scope != SCOPE_BASE);
    int fresh_ok = a->login_after ? have && auth_time >= a->login_after
                                  : !wx_oidc_scope_has(a->prompt, "login") &&
                                        (a->max_age < 0 || (have && now - auth_time <= a->max_age));
    if (have && profile_ok && fresh_ok) {
        issue_code(g, req, a, &s);
    } else if (!strcmp(a->prompt, "none")) {
        to_client_error(g, req, a, have && fresh_ok ? "consent_required" : "login_required",
                        have && fresh_ok ? "the profile needs WeChat's consent (snsapi_userinfo)"
                                         : "the user must log in with WeChat");
    } else if (back) {
        /* Back from a login that did not give what the request needs (a snsapi_base session
         * for a profile request: the user chose "continue without profile"). */
        to_client_error(g, req, a, "access_denied", "the user did not grant the profile");
    } else {
        to_login(g, req, a, !fresh_ok && (!have || !a->login_after));
    }
    sodium_memzero(&s, sizeof s);
}

static void route_authorize(struct gate *g, struct wx_http_req *req)
{
    struct wx_query q;
    struct authz *a = malloc(sizeof *a);
    if (!a || params_of(req, &q)) {
        free(a);
        wx_g_page(g, req, 400, "登录请求无效 · Invalid login request",
                  "The authorization request could not be read.", NULL, 0);
        return;
    }
    if (authz_parse(g, req, &q, a))
        authz_continue(g, req, a, 0);
    wx_query_free(&q);
    free(a);
}

/* PREFIX/oidc/a?r=ID[&denied=1]: a request back from the gate's login. */
static void route_resume(struct gate *g, struct wx_http_req *req)
{
    struct wx_query q;
    json_t *o = NULL;
    struct authz *a = malloc(sizeof *a);
    unsigned char key[16];
    const char *r = NULL;
    if (a && wx_query_parse(&q, req->query, WX_MAX_URL) == WX_OK) {
        r = wx_query_get(&q, "r");
        int ok = r && strlen(r) == OIDC_PENDING_LEN;
        if (ok)
            key_of('A', r, key);
        if (ok && get_json(g, key, &o) == WX_OK && authz_of_json(g, o, a) == 0) {
            if (wx_query_get(&q, "denied"))
                to_client_error(g, req, a, "access_denied", "the user refused WeChat's consent");
            else
                authz_continue(g, req, a, 1);
        } else {
            r = NULL;
        }
        wx_query_free(&q);
    }
    if (!r)
        wx_g_page(g, req, 400, "登录链接已过期 · Login link expired",
                  "请回到原来的应用重新登录。Go back to the app and log in again.", NULL, 0);
    json_decref(o);
    free(a);
}

int wx_g_oidc_denied_return(const struct gate *g, const char *back, char *out, size_t outsz)
{
    char start[64];
    int n = snprintf(start, sizeof start, "%s/oidc/a?r=", g->prefix);
    if (!g->oidc || n <= 0 || strncmp(back, start, (size_t)n))
        return 0;
    snprintf(out, outsz, "%s&denied=1", back);
    return 1;
}

/* ---- token ---- */

/* The client the token request authenticates as (basic, post or none), or NULL (answered). */
static int token_client(struct gate *g, struct wx_http_req *req, const struct wx_query *q,
                        struct wx_oidc_client *c)
{
    const char *auth = wx_http_header(req, "Authorization");
    const char *id = wx_query_get(q, "client_id"), *secret = wx_query_get(q, "client_secret");
    char idbuf[WX_OIDC_MAX_ID * 3 + 1], secbuf[512], raw[1200];
    int basic = auth && !strncmp(auth, "Basic ", 6);
    if (basic) {
        size_t n = 0, il = 0, sl = 0;
        const char *colon;
        if (secret ||
            sodium_base642bin((unsigned char *)raw, sizeof raw - 1, auth + 6, strlen(auth + 6),
                              NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) ||
            (raw[n] = '\0', !(colon = strchr(raw, ':'))) ||
            wx_pct_decode((struct wx_slice){raw, (size_t)(colon - raw)}, 1, idbuf, &il) ||
            wx_pct_decode(wx_slice_cstr(colon + 1), 1, secbuf, &sl) || il >= sizeof idbuf ||
            (id && strcmp(id, idbuf))) {
            json_error(req, 401, "invalid_client", "malformed client authentication");
            wx_http_set_header(req, "WWW-Authenticate", "Basic realm=\"wxauth\"");
            return 0;
        }
        idbuf[il] = '\0';
        secbuf[sl] = '\0';
        id = idbuf;
        secret = secbuf;
    }
    int rc = id && wx_query_count(q, "client_id") <= 1 ? client_get(g, id, c) : WX_ERR_NOTFOUND;
    int ok = rc == WX_OK &&
             (c->confidential ? secret && wx_oidc_secret_ok(&g->oidc->keys, c, secret) : !secret);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(secbuf, sizeof secbuf);
    if (rc != WX_OK && rc != WX_ERR_NOTFOUND) {
        json_error(req, 503, "temporarily_unavailable", "the store is unavailable");
        return 0;
    }
    if (!ok) {
        json_error(req, 401, "invalid_client", "client authentication failed");
        if (basic)
            wx_http_set_header(req, "WWW-Authenticate", "Basic realm=\"wxauth\"");
        return 0;
    }
    return 1;
}

/* The grant's revocation mark (a code used twice, a refresh token replayed). */
static void revoke_grant(struct gate *g, const char *grant)
{
    unsigned char key[16];
    key_of('X', grant, key);
    int64_t ttl =
        g->oidc->refresh_ttl > g->oidc->token_ttl ? g->oidc->refresh_ttl : g->oidc->token_ttl;
    if (wx_g_kv_put(g, key, "1", wx_g_now_s() + ttl + 60) != WX_OK)
        wx_logf(&g->log, WX_LOG_ERROR, "level=error msg=\"oidc: cannot revoke a grant\"");
}

/* WX_OK when the grant stands, WX_ERR_CONFLICT when revoked, else a store error. */
static int grant_ok(struct gate *g, const char *grant)
{
    unsigned char key[16];
    char v[8];
    key_of('X', grant, key);
    int rc = wx_g_kv_get(g, key, v, sizeof v);
    return rc == WX_ERR_NOTFOUND ? WX_OK : rc == WX_OK ? WX_ERR_CONFLICT : rc;
}

/*
 * Tokens for the grant that rec (a code's or a refresh token's record) describes: an access
 * token, a refresh token with offline_access, an ID token. rec gains the grant's fields.
 */
static void issue_tokens(struct gate *g, struct wx_http_req *req, const struct wx_oidc_client *c,
                         json_t *rec, const char *grant, int64_t grant_until, int with_nonce)
{
    struct gate_oidc *o = g->oidc;
    char at[OIDC_TOKEN_LEN + 4], rt[OIDC_TOKEN_LEN + 4] = "", at_hash[24];
    unsigned char key[16];
    int64_t now = wx_g_now_s();
    const char *scope = jstr(rec, "scope");
    int refresh = o->refresh_ttl > 0 && wx_oidc_scope_has(scope, "offline_access");
    json_object_set_new(rec, "grant", json_string(grant));
    json_object_set_new(rec, "grant_until", json_integer(grant_until));
    json_object_del(rec, "code_challenge");
    json_object_del(rec, "redirect_uri");
    random_token(at, 32);
    key_of('T', at, key);
    int rc = put_json(g, key, rec, now + o->token_ttl);
    if (rc == WX_OK && refresh) {
        random_token(rt, 32);
        key_of('R', rt, key);
        rc = put_json(g, key, rec, grant_until);
    }
    /* The ID token. */
    json_t *id = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "iss", o->issuer, "sub",
                           jstr(rec, "sub"), "aud", c->id, "azp", c->id, "iat", (json_int_t)now,
                           "exp", (json_int_t)(now + o->token_ttl), "auth_time",
                           (json_int_t)jint(rec, "auth_time"), "sid", jstr(rec, "sid"));
    wx_oidc_half_hash(at, at_hash);
    json_object_set_new(id, "at_hash", json_string(at_hash));
    json_object_set_new(id, "amr",
                        json_is_true(json_object_get(rec, "qr"))
                            ? json_pack("[s,s]", "wechat", "qr")
                            : json_pack("[s]", "wechat"));
    if (with_nonce && *jstr(rec, "nonce"))
        json_object_set_new(id, "nonce", json_string(jstr(rec, "nonce")));
    if (*jstr(rec, "name"))
        json_object_set_new(id, "name", json_string(jstr(rec, "name")));
    if (*jstr(rec, "picture"))
        json_object_set_new(id, "picture", json_string(jstr(rec, "picture")));
    json_object_set_new(id, "wechat_openid", json_string(jstr(rec, "openid")));
    if (*jstr(rec, "unionid"))
        json_object_set_new(id, "wechat_unionid", json_string(jstr(rec, "unionid")));
    struct wx_buf jws;
    wx_buf_init(&jws, WX_OIDC_MAX_JWS);
    if (rc == WX_OK) {
        pthread_rwlock_rdlock(&o->lock);
        const struct wx_oidc_key *k = wx_oidc_key_current(&o->ks, c->alg);
        rc = k ? wx_oidc_sign(k, id, &jws) : WX_ERR_CRYPTO;
        pthread_rwlock_unlock(&o->lock);
    }
    json_decref(id);
    if (rc) {
        json_error(req, rc == WX_ERR_CRYPTO ? 500 : 503,
                   rc == WX_ERR_CRYPTO ? "server_error" : "temporarily_unavailable",
                   rc == WX_ERR_CRYPTO ? "the ID token could not be signed"
                                       : "the store is unavailable");
    } else {
        json_t *ans =
            json_pack("{s:s, s:s, s:I, s:s, s:s}", "access_token", at, "token_type", "Bearer",
                      "expires_in", (json_int_t)o->token_ttl, "id_token", jws.ptr, "scope", scope);
        if (ans && rt[0])
            json_object_set_new(ans, "refresh_token", json_string(rt));
        json_answer(req, ans);
    }
    wx_buf_free(&jws);
    sodium_memzero(at, sizeof at);
    sodium_memzero(rt, sizeof rt);
}

static void grant_code(struct gate *g, struct wx_http_req *req, const struct wx_query *q,
                       const struct wx_oidc_client *c)
{
    const char *code = wx_query_get(q, "code"), *verifier = wx_query_get(q, "code_verifier");
    const char *redirect = wx_query_get(q, "redirect_uri");
    unsigned char key[16], used[16];
    char grant[40];
    json_t *rec = NULL;
    if (!code || strlen(code) != OIDC_TOKEN_LEN) {
        json_error(req, 400, "invalid_grant", "the code is unknown or expired");
        return;
    }
    unsigned char gid[16];
    key_of('C', code, key);
    key_of('U', code, used);
    /* The grant's id comes from the code: a second use finds what to revoke without a lookup. */
    key_of('G', code, gid);
    sodium_bin2hex(grant, sizeof grant, gid, sizeof gid);
    int rc = get_json(g, key, &rec);
    if (rc == WX_OK)
        rc = wx_g_kv_claim(g, used, wx_g_now_s() + OIDC_CODE_TTL + 60);
    if (rc == WX_ERR_CONFLICT) {
        revoke_grant(g, grant); /* RFC 6749 §4.1.2: a code used twice revokes what it gave */
        json_error(req, 400, "invalid_grant", "the code was used before");
    } else if (rc == WX_ERR_NOTFOUND) {
        json_error(req, 400, "invalid_grant", "the code is unknown or expired");
    } else if (rc) {
        json_error(req, 503, "temporarily_unavailable", "the store is unavailable");
    } else if (strcmp(jstr(rec, "client_id"), c->id)) {
        json_error(req, 400, "invalid_grant", "the code was issued to another client");
    } else if (!redirect || strcmp(redirect, jstr(rec, "redirect_uri"))) {
        json_error(req, 400, "invalid_grant",
                   "redirect_uri differs from the authorization request");
    } else if (*jstr(rec, "code_challenge")
                   ? !wx_oidc_pkce_ok(verifier, jstr(rec, "code_challenge"))
                   : verifier != NULL) {
        json_error(req, 400, "invalid_grant", "code_verifier does not match the code_challenge");
    } else {
        issue_tokens(g, req, c, rec, grant, wx_g_now_s() + g->oidc->refresh_ttl, 1);
    }
    json_decref(rec);
}

static void grant_refresh(struct gate *g, struct wx_http_req *req, const struct wx_query *q,
                          const struct wx_oidc_client *c)
{
    const char *rt = wx_query_get(q, "refresh_token");
    unsigned char key[16], used[16];
    json_t *rec = NULL;
    if (!rt || strlen(rt) != OIDC_TOKEN_LEN) {
        json_error(req, 400, "invalid_grant", "the refresh token is unknown or expired");
        return;
    }
    key_of('R', rt, key);
    key_of('Q', rt, used);
    int rc = get_json(g, key, &rec);
    char grant[40];
    snprintf(grant, sizeof grant, "%s", rc == WX_OK ? jstr(rec, "grant") : "");
    if (rc == WX_OK && strcmp(jstr(rec, "client_id"), c->id)) {
        json_error(req, 400, "invalid_grant", "the refresh token was issued to another client");
    } else {
        if (rc == WX_OK)
            rc = wx_g_kv_claim(g, used, jint(rec, "grant_until") + 60);
        if (rc == WX_ERR_CONFLICT) {
            revoke_grant(g, grant); /* a rotated refresh token used again: stolen, or copied */
            json_error(req, 400, "invalid_grant", "the refresh token was used before");
        } else if (rc == WX_OK && (rc = grant_ok(g, grant)) == WX_ERR_CONFLICT) {
            json_error(req, 400, "invalid_grant", "the grant was revoked");
        } else if (rc == WX_ERR_NOTFOUND) {
            json_error(req, 400, "invalid_grant", "the refresh token is unknown or expired");
        } else if (rc) {
            json_error(req, 503, "temporarily_unavailable", "the store is unavailable");
        } else {
            issue_tokens(g, req, c, rec, grant, jint(rec, "grant_until"), 0);
        }
    }
    json_decref(rec);
}

static void route_token(struct gate *g, struct wx_http_req *req)
{
    struct wx_query q;
    struct wx_oidc_client *c = malloc(sizeof *c);
    if (!c) {
        json_error(req, 500, "server_error", "out of memory");
        return;
    }
    if (strcmp(req->method, "POST")) {
        json_error(req, 405, "invalid_request", "the token endpoint takes POST");
    } else if (params_of(req, &q)) {
        json_error(req, 400, "invalid_request",
                   "the body must be application/x-www-form-urlencoded");
    } else {
        const char *gt = wx_query_get(&q, "grant_type");
        if (q.ndup)
            json_error(req, 400, "invalid_request", "a parameter is repeated");
        else if (!gt)
            json_error(req, 400, "invalid_request", "grant_type is missing");
        else if (!token_client(g, req, &q, c))
            ;
        else if (!strcmp(gt, "authorization_code"))
            grant_code(g, req, &q, c);
        else if (!strcmp(gt, "refresh_token") && wx_oidc_scope_has(c->scopes, "offline_access"))
            grant_refresh(g, req, &q, c);
        else
            json_error(req, 400, "unsupported_grant_type",
                       "grant_type: authorization_code or refresh_token");
        wx_query_free(&q);
    }
    sodium_memzero(c, sizeof *c);
    free(c);
}

/* ---- userinfo ---- */

static void bearer_error(struct wx_http_req *req, const char *desc)
{
    char h[200];
    json_error(req, 401, "invalid_token", desc);
    snprintf(h, sizeof h, "Bearer error=\"invalid_token\", error_description=\"%s\"", desc);
    wx_http_set_header(req, "WWW-Authenticate", h);
}

static void route_userinfo(struct gate *g, struct wx_http_req *req)
{
    const char *auth = wx_http_header(req, "Authorization");
    char token[OIDC_TOKEN_LEN + 2] = "";
    struct wx_query q;
    if (auth && !strncasecmp(auth, "Bearer ", 7)) {
        snprintf(token, sizeof token, "%s", auth + 7);
    } else if (!strcmp(req->method, "POST") && params_of(req, &q) == WX_OK) {
        const char *t = wx_query_get(&q, "access_token");
        snprintf(token, sizeof token, "%s", t ? t : "");
        wx_query_free(&q);
    }
    if (!token[0]) {
        json_error(req, 401, "invalid_request", "no access token");
        wx_http_set_header(req, "WWW-Authenticate", "Bearer realm=\"wxauth\"");
        return;
    }
    unsigned char key[16];
    json_t *rec = NULL;
    struct wx_oidc_client c;
    key_of('T', token, key);
    int rc = strlen(token) == OIDC_TOKEN_LEN ? get_json(g, key, &rec) : WX_ERR_NOTFOUND;
    if (rc == WX_OK)
        rc = grant_ok(g, jstr(rec, "grant"));
    if (rc == WX_OK && client_get(g, jstr(rec, "client_id"), &c) == WX_ERR_NOTFOUND)
        rc = WX_ERR_NOTFOUND; /* the client was removed */
    if (rc == WX_ERR_NOTFOUND || rc == WX_ERR_CONFLICT) {
        bearer_error(req, rc == WX_ERR_CONFLICT ? "the grant was revoked"
                                                : "the access token is unknown or expired");
    } else if (rc) {
        json_error(req, 503, "temporarily_unavailable", "the store is unavailable");
    } else {
        json_t *o =
            json_pack("{s:s, s:s}", "sub", jstr(rec, "sub"), "wechat_openid", jstr(rec, "openid"));
        if (*jstr(rec, "unionid"))
            json_object_set_new(o, "wechat_unionid", json_string(jstr(rec, "unionid")));
        if (*jstr(rec, "name"))
            json_object_set_new(o, "name", json_string(jstr(rec, "name")));
        if (*jstr(rec, "picture"))
            json_object_set_new(o, "picture", json_string(jstr(rec, "picture")));
        json_answer(req, o);
    }
    json_decref(rec);
    sodium_memzero(token, sizeof token);
}

/* ---- logout ---- */

static void signed_out_page(struct gate *g, struct wx_http_req *req)
{
    wx_g_page(g, req, 200, "你已退出 · Signed out", "你已退出登录。You are signed out.", NULL, 0);
}

static void clear_cookie(struct gate *g, struct wx_http_req *req)
{
    char cookie[160];
    snprintf(cookie, sizeof cookie, "%s=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0%s",
             g->cookie_name, g->secure ? "; Secure" : "");
    wx_http_set_header(req, "Set-Cookie", cookie);
}

/* The confirmation form for a logout without id_token_hint (a link any site could show). */
static void logout_confirm(struct gate *g, struct wx_http_req *req, const struct session *s,
                           const char *client_id, const char *uri, const char *state)
{
    struct wx_buf b, t;
    char plain[128], sid[33];
    sodium_bin2hex(sid, sizeof sid, s->sid, sizeof s->sid);
    snprintf(plain, sizeof plain, "%s\n%lld", sid, (long long)(wx_g_now_s() + 600));
    wx_buf_init(&t, 512);
    wx_buf_init(&b, 16384);
    int rc = wx_seal(g->seal_keys[0], "oidc-logout", plain, strlen(plain), &t);
    if (!rc) {
        wx_buf_printf(&b,
                      "<form method=\"post\" action=\"%s/oidc/logout\">"
                      "<input type=\"hidden\" name=\"ticket\" value=\"%s\">",
                      g->prefix, t.ptr);
        const char *names[] = {"client_id", "post_logout_redirect_uri", "state"};
        const char *vals[] = {client_id, uri, state};
        for (int i = 0; i < 3; i++) {
            if (!vals[i])
                continue;
            wx_buf_printf(&b, "<input type=\"hidden\" name=\"%s\" value=\"", names[i]);
            wx_html_escape(&b, vals[i]);
            wx_buf_puts(&b, "\">");
        }
        wx_buf_puts(&b, "<button type=\"submit\">退出登录 · Sign out</button></form>");
    }
    wx_g_form_page(g, req, "退出登录？· Sign out?",
                   "一个应用请求让你退出微信登录。An app asks to sign you out of your WeChat "
                   "login.",
                   rc ? NULL : b.ptr);
    wx_buf_free(&b);
    wx_buf_free(&t);
}

static int ticket_ok(struct gate *g, const char *ticket, const struct session *s)
{
    char plain[128], sid[33];
    size_t n = 0;
    if (!ticket || wx_unseal(g->seal_keys[0], "oidc-logout", wx_slice_cstr(ticket), plain,
                             sizeof plain - 1, &n))
        return 0;
    plain[n] = '\0';
    sodium_bin2hex(sid, sizeof sid, s->sid, sizeof s->sid);
    char *nl = strchr(plain, '\n');
    return nl && (size_t)(nl - plain) == 32 && !memcmp(plain, sid, 32) &&
           strtoll(nl + 1, NULL, 10) > wx_g_now_s();
}

static void route_logout(struct gate *g, struct wx_http_req *req)
{
    struct wx_query q;
    struct wx_oidc_client c;
    json_t *hint = NULL;
    if (params_of(req, &q)) {
        wx_g_page(g, req, 400, "退出请求无效 · Invalid logout request",
                  "The logout request could not be read.", NULL, 0);
        return;
    }
    const char *hint_s = wx_query_get(&q, "id_token_hint");
    const char *client_id = wx_query_get(&q, "client_id");
    const char *uri = wx_query_get(&q, "post_logout_redirect_uri");
    const char *state = wx_query_get(&q, "state");
    const char *why = NULL;
    if (hint_s) {
        pthread_rwlock_rdlock(&g->oidc->lock);
        int rc = wx_oidc_verify(&g->oidc->ks, wx_slice_cstr(hint_s), &hint);
        pthread_rwlock_unlock(&g->oidc->lock);
        const char *aud = hint ? jstr(hint, "aud") : "";
        if (rc || strcmp(jstr(hint, "iss"), g->oidc->issuer))
            why = "id_token_hint is not an ID token this provider signed";
        else if (client_id && strcmp(client_id, aud))
            why = "client_id is not the ID token's audience";
        else
            client_id = aud;
    }
    if (!why && uri) {
        if (!client_id || client_get(g, client_id, &c) != WX_OK)
            why = "post_logout_redirect_uri needs client_id or id_token_hint";
        else if (!wx_oidc_uri_listed(c.logout, c.nlogout, uri))
            why = "post_logout_redirect_uri is not registered for this client";
    }
    if (why) {
        wx_g_page(g, req, 400, "退出请求无效 · Invalid logout request", why, NULL, 0);
        json_decref(hint);
        wx_query_free(&q);
        return;
    }
    struct session s;
    int st = wx_g_session_get(g, req, &s);
    char sid[24];
    if (st == SESSION_OK)
        sid_claim(s.sid, sid);
    /* Confirmed by an ID token of this session, or by the form's ticket, or no session. */
    int confirmed = st != SESSION_OK || (hint && !strcmp(jstr(hint, "sid"), sid)) ||
                    (!strcmp(req->method, "POST") && ticket_ok(g, wx_query_get(&q, "ticket"), &s));
    if (!confirmed) {
        logout_confirm(g, req, &s, client_id, uri, state);
    } else if (st == SESSION_OK && wx_g_sign_out(g, &s) != WX_OK) {
        wx_g_page(g, req, 503, "退出没有成功 · Sign-out failed",
                  "暂时无法退出，请稍后再试。The sign-out could not be recorded; try again.", NULL,
                  0);
    } else {
        struct wx_buf u;
        wx_buf_init(&u, WX_MAX_URL);
        const char *kv[] = {"state", state};
        int sent = uri && !wx_uri_add_params(&u, uri, kv, state ? 1 : 0) &&
                   !wx_http_redirect(req, 302, u.ptr);
        if (!sent)
            signed_out_page(g, req);
        clear_cookie(g, req);
        wx_buf_free(&u);
    }
    sodium_memzero(&s, sizeof s);
    json_decref(hint);
    wx_query_free(&q);
}

/* ---- routing, setup, upkeep ---- */

int wx_g_oidc_handle(struct gate *g, struct wx_http_req *req, struct wx_slice rest)
{
    static const struct {
        const char *path, *label;
        void (*fn)(struct gate *, struct wx_http_req *);
        int post, offload;
    } routes[] = {{"/.well-known/openid-configuration", "oidc_discovery", route_discovery, 0, 0},
                  {"/oidc/jwks", "oidc_jwks", route_jwks, 0, 0},
                  {"/oidc/authorize", "oidc_authorize", route_authorize, 1, 1},
                  {"/oidc/a", "oidc_authorize", route_resume, 0, 1},
                  {"/oidc/token", "oidc_token", route_token, 1, 1},
                  {"/oidc/userinfo", "oidc_userinfo", route_userinfo, 1, 1},
                  {"/oidc/logout", "oidc_logout", route_logout, 1, 1}};
    if (!g->oidc)
        return 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!wx_slice_eq(rest, routes[i].path))
            continue;
        req->route = routes[i].label;
        int get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
        if (!strcmp(req->method, "OPTIONS")) {
            wx_http_text(req, 204, "");
            wx_http_set_header(req, "Allow", routes[i].post ? "GET, POST" : "GET");
        } else if (!get && !(routes[i].post && !strcmp(req->method, "POST"))) {
            wx_http_text(req, 405, "Method Not Allowed\n");
        } else if (routes[i].offload) {
            wx_g_offload(g, req, routes[i].fn);
        } else {
            routes[i].fn(g, req);
        }
        return 1;
    }
    return 0;
}

/* Loads the keys, after an upkeep: WX_OK, or a store error. */
static int keys_refresh(struct gate *g, int *changed)
{
    struct gate_oidc *o = g->oidc;
    struct wx_oidc_keyset fresh;
    struct wx_store *s = wx_g_store_take(g);
    int64_t keep = o->token_ttl + OIDC_KEY_KEEP;
    pthread_rwlock_rdlock(&o->lock);
    int rc = wx_oidc_keys_maintain(s, &o->keys, &o->ks, wx_g_now_s(), o->rotate, keep, changed);
    pthread_rwlock_unlock(&o->lock);
    if (rc == WX_OK)
        rc = wx_oidc_keys_load(s, &o->keys, &fresh);
    wx_g_store_give(g, s);
    if (rc == WX_OK) {
        pthread_rwlock_wrlock(&o->lock);
        struct wx_oidc_keyset old = o->ks;
        o->ks = fresh;
        pthread_rwlock_unlock(&o->lock);
        wx_oidc_keys_free(&old);
    }
    return rc;
}

void wx_g_oidc_tick(struct gate *g)
{
    int changed = 0;
    if (g->oidc && keys_refresh(g, &changed) != WX_OK)
        wx_logf(&g->log, WX_LOG_ERROR, "level=error msg=\"oidc: cannot read the signing keys\"");
}

int wx_g_oidc_setup(struct gate *g, int64_t token_ttl, int64_t refresh_ttl, int64_t rotate,
                    int memory_store, char *err, size_t errsz)
{
    static struct gate_oidc oidc;
    unsigned char master[WX_KEY_LEN];
    if (memory_store) {
        snprintf(err, errsz,
                 "oidc: give db or store (the clients are registered there with "
                 "`wxauth oidc client add --db ...`)");
        return WX_ERR_INVALID;
    }
    if (strlen(g->prefix) + 10 + OIDC_PENDING_LEN > WX_STATE_MAX_PATH - 8) {
        snprintf(err, errsz, "oidc: prefix must be at most %d bytes (it rides in WeChat's state)",
                 WX_STATE_MAX_PATH - 8 - 10 - OIDC_PENDING_LEN);
        return WX_ERR_INVALID;
    }
    struct wx_store *s = wx_g_store_take(g);
    int rc = s->ops->master_key(s, master);
    wx_g_store_give(g, s);
    if (rc) {
        snprintf(err, errsz, "oidc: cannot read the store's master key");
        return WX_ERR_STORE;
    }
    wx_keys_derive(&oidc.keys, master);
    sodium_memzero(master, sizeof master);
    snprintf(oidc.issuer, sizeof oidc.issuer, "%s%s", g->public_url, g->prefix);
    oidc.token_ttl = token_ttl;
    oidc.refresh_ttl = refresh_ttl;
    oidc.rotate = rotate;
    pthread_rwlock_init(&oidc.lock, NULL);
    g->oidc = &oidc;
    /* The first start makes the keys; a gate starting beside it waits for them (5 s at most). */
    for (int i = 0; i < 50; i++) {
        int changed = 0;
        rc = keys_refresh(g, &changed);
        if (rc || (wx_oidc_key_current(&oidc.ks, WX_OIDC_RS256) &&
                   wx_oidc_key_current(&oidc.ks, WX_OIDC_ES256)))
            break;
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    if (rc || !wx_oidc_key_current(&oidc.ks, WX_OIDC_RS256)) {
        snprintf(err, errsz, "oidc: cannot make or read the signing keys");
        g->oidc = NULL;
        return rc ? rc : WX_ERR_STORE;
    }
    return WX_OK;
}

void wx_g_oidc_free(struct gate *g)
{
    if (!g->oidc)
        return;
    wx_oidc_keys_free(&g->oidc->ks);
    sodium_memzero(&g->oidc->keys, sizeof g->oidc->keys);
    g->oidc = NULL;
}
