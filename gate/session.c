/*
 * session.c — the gate's sessions and its store: the session sealed into the cookie (idle and
 * absolute lifetimes, key rotation, the sign-out list), the profile refresher's claim, and
 * logins' outcomes kept under their state so that a refresh, Back or WeChat's second callback
 * gets the same session. The store is one connection behind one lock (struct gate's mu).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wxauth/wxauth.h>

#include "fiber.h"
#include "gate_internal.h"
#include "http.h"
#include "seal.h"

#define GATE_CODE_TTL      300 /* a redeemed code's session is handed out again for 5 minutes */
#define GATE_CODE_WAIT     10  /* seconds a second callback waits for the first one's exchange */
#define GATE_PROFILE_RETRY 300 /* a failed profile re-read is tried again after 5 minutes */

int64_t wx_g_now_s(void)
{
    return (int64_t)time(NULL);
}

int64_t wx_g_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wx_g_scope_of(const char *name)
{
    return !strcmp(name, "snsapi_userinfo") ? SCOPE_USERINFO
           : !strcmp(name, "snsapi_login")  ? SCOPE_LOGIN
                                            : SCOPE_BASE;
}

const char *wx_g_scope_str(int scope)
{
    return scope == SCOPE_USERINFO ? "snsapi_userinfo"
           : scope == SCOPE_LOGIN  ? "snsapi_login"
                                   : "snsapi_base";
}

/* The app whose openid the session holds. */
const struct app_client *wx_g_session_client(const struct gate *g, const struct session *s)
{
    return s->scope == SCOPE_LOGIN ? &g->web : &g->oa;
}

/*
 * 16-byte store key for (kind, id): a hash, so the store never holds a session id or a code.
 * Not keyed with cookie-secret on purpose: keys must stay the same across key rotation and on
 * every gate sharing a store; the ids hashed are random 128-bit values or single-use codes.
 */
void wx_g_kv_key(char kind, const void *id, size_t len, unsigned char out[16])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, (const unsigned char *)"wxauth-gate-kv-1", 16, 16);
    crypto_generichash_update(&st, (const unsigned char *)&kind, 1);
    crypto_generichash_update(&st, id, len);
    crypto_generichash_final(&st, out, 16);
}

/* The store this thread may use now: the loop's on a fiber, else the locked one. */
struct wx_store *wx_g_store_take(struct gate *g)
{
    if (g->loop_store && wx_fiber_self())
        return g->loop_store;
    pthread_mutex_lock(&g->mu);
    return g->store;
}

void wx_g_store_give(struct gate *g, struct wx_store *s)
{
    if (s != g->loop_store)
        pthread_mutex_unlock(&g->mu);
}

int wx_g_store_ping(struct gate *g)
{
    struct wx_store *s = wx_g_store_take(g);
    int rc = s->ops->ping(s);
    wx_g_store_give(g, s);
    return rc;
}

int wx_g_kv_put(struct gate *g, const unsigned char key[16], const char *v, int64_t until)
{
    struct wx_store *s = wx_g_store_take(g);
    int rc = s->ops->kv_put(s, key, v, strlen(v), until);
    wx_g_store_give(g, s);
    return rc;
}

int wx_g_sign_out(struct gate *g, const struct session *s)
{
    unsigned char key[16];
    wx_g_kv_key('r', s->sid, sizeof s->sid, key);
    return wx_g_kv_put(g, key, "1", s->expires); /* until the cookie would have expired anyway */
}

/* WX_OK with the value in out (NUL-terminated), WX_ERR_NOTFOUND, or a store error. */
int wx_g_kv_get(struct gate *g, const unsigned char key[16], char *out, size_t outsz)
{
    size_t n = 0;
    struct wx_store *s = wx_g_store_take(g);
    int rc = s->ops->kv_get(s, key, wx_g_now_s(), out, outsz - 1, &n);
    wx_g_store_give(g, s);
    out[rc == WX_OK ? n : 0] = '\0';
    return rc;
}

/* WX_OK for the first claimant of key, WX_ERR_CONFLICT for everyone after. */
int wx_g_kv_claim(struct gate *g, const unsigned char key[16], int64_t until)
{
    struct wx_store *s = wx_g_store_take(g);
    int rc = s->ops->nonce_use(s, key, until);
    wx_g_store_give(g, s);
    return rc;
}

static void put_str(struct wx_buf *b, const char *s)
{
    wx_buf_puts(b, s);
    wx_buf_append(b, "\n", 1);
}

static void put_num(struct wx_buf *b, int64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)v);
    put_str(b, num);
}

/* Seals s (with the current key) into "name=value; attributes". */
int wx_g_session_cookie(struct gate *g, const struct session *s, struct wx_buf *out)
{
    struct wx_buf plain;
    char sid[33];
    wx_buf_init(&plain, WX_SEAL_MAX_PLAIN);
    sodium_bin2hex(sid, sizeof sid, s->sid, sizeof s->sid);
    put_str(&plain, sid);
    put_num(&plain, s->expires);
    put_num(&plain, s->seen_ms);
    put_num(&plain, s->profile_until);
    put_str(&plain, wx_g_scope_str(s->scope));
    put_str(&plain, s->openid);
    put_str(&plain, s->unionid);
    put_str(&plain, s->nickname);
    put_str(&plain, s->avatar);
    put_str(&plain, s->refresh);
    int rc = plain.ptr ? wx_buf_printf(out, "%s=", g->cookie_name) : WX_ERR_LIMIT;
    if (!rc)
        rc = wx_seal(g->seal_keys[0], "gate-session", plain.ptr, plain.len, out);
    /* The browser keeps the cookie for the absolute lifetime; the idle one is checked here. */
    if (!rc)
        rc = wx_buf_printf(out, "; Path=/; HttpOnly; SameSite=Lax; Max-Age=%lld%s",
                           (long long)(s->expires - wx_g_now_s()), g->secure ? "; Secure" : "");
    if (plain.ptr)
        sodium_memzero(plain.ptr, plain.len);
    wx_buf_free(&plain);
    return rc;
}

/* Splits the next '\n'-terminated field off *p into dst. */
static int take(char **p, char *dst, size_t dstsz)
{
    char *nl = strchr(*p, '\n');
    if (!nl || (size_t)(nl - *p) >= dstsz)
        return -1;
    memcpy(dst, *p, (size_t)(nl - *p));
    dst[nl - *p] = '\0';
    *p = nl + 1;
    return 0;
}

static int take_num(char **p, int64_t *v)
{
    char num[24], *end;
    if (take(p, num, sizeof num) || !num[0])
        return -1;
    *v = strtoll(num, &end, 10);
    return *end ? -1 : 0;
}

/*
 * The current session: SESSION_OK, SESSION_NONE when the cookie is absent, forged, expired
 * (absolute or idle) or signed out, SESSION_STORE_DOWN when the sign-out list cannot be read.
 */
int wx_g_session_get(struct gate *g, struct wx_http_req *req, struct session *s)
{
    const char *c = wx_http_cookie(req, g->cookie_name);
    char plain[WX_SEAL_MAX_PLAIN + 1], sid[33], scope[32], mark[8];
    size_t n = 0, bl = 0;
    memset(s, 0, sizeof *s);
    if (!c)
        return SESSION_NONE;
    s->key = -1;
    for (int k = 0; k < g->nkeys && s->key < 0; k++)
        if (!wx_unseal(g->seal_keys[k], "gate-session", wx_slice_cstr(c), plain, WX_SEAL_MAX_PLAIN,
                       &n))
            s->key = k;
    if (s->key < 0)
        return SESSION_NONE;
    plain[n] = '\0';
    char *p = plain;
    int bad = take(&p, sid, sizeof sid) || take_num(&p, &s->expires) || take_num(&p, &s->seen_ms) ||
              take_num(&p, &s->profile_until) || take(&p, scope, sizeof scope) ||
              take(&p, s->openid, sizeof s->openid) || take(&p, s->unionid, sizeof s->unionid) ||
              take(&p, s->nickname, sizeof s->nickname) || take(&p, s->avatar, sizeof s->avatar) ||
              take(&p, s->refresh, sizeof s->refresh) ||
              sodium_hex2bin(s->sid, sizeof s->sid, sid, strlen(sid), NULL, &bl, NULL) || bl != 16;
    sodium_memzero(plain, sizeof plain);
    if (bad)
        return SESSION_NONE;
    s->scope = wx_g_scope_of(scope);
    int64_t now = wx_g_now_s();
    if (s->expires <= now || !s->openid[0] ||
        (g->session_idle && s->seen_ms + g->session_idle * 1000 <= wx_g_now_ms()))
        return SESSION_NONE;
    unsigned char key[16];
    wx_g_kv_key('r', s->sid, sizeof s->sid, key);
    int rc = wx_g_kv_get(g, key, mark, sizeof mark);
    if (rc == WX_ERR_NOTFOUND)
        return SESSION_OK;
    if (rc == WX_OK)
        return SESSION_NONE; /* signed out */
    wx_logf(&g->log, WX_LOG_ERROR, "level=error msg=\"store: cannot read the sign-out list\"");
    return SESSION_STORE_DOWN;
}

/*
 * Re-reads nickname and avatar with the session's refresh token. Only one request per session
 * and 30-second window does it (a claim in the store, so this holds across gates sharing one);
 * the others go on with the profile they have. Returns 1 when s changed.
 */
int wx_g_refresh_profile(struct gate *g, struct session *s)
{
    int64_t now = wx_g_now_s();
    unsigned char claim[16], id[24];
    int64_t window = now / 30;
    memcpy(id, s->sid, 16);
    memcpy(id + 16, &window, 8);
    wx_g_kv_key('p', id, sizeof id, claim);
    if (wx_g_kv_claim(g, claim, now + 60) != WX_OK)
        return 0;
    struct wx_token tok;
    struct wx_userinfo ui = {0};
    struct wx_error err = {0};
    struct wx_client *c = wx_g_session_client(g, s)->client;
    int rc = c ? wx_refresh_token(c, s->refresh, &tok, &err) : WX_ERR_INVALID;
    if (rc == WX_OK)
        rc = wx_get_userinfo(c, tok.access_token, s->openid, "zh_CN", &ui, &err);
    if (rc != WX_OK) {
        wx_logf(&g->log, WX_LOG_WARN,
                "level=warn msg=\"profile re-read failed; keeping the old one\" errcode=%d",
                err.errcode);
        s->profile_until = now + GATE_PROFILE_RETRY;
    } else {
        snprintf(s->nickname, sizeof s->nickname, "%s", ui.nickname);
        snprintf(s->avatar, sizeof s->avatar, "%s", ui.headimgurl);
        if (ui.unionid[0])
            snprintf(s->unionid, sizeof s->unionid, "%s", ui.unionid);
        if (tok.refresh_token[0])
            snprintf(s->refresh, sizeof s->refresh, "%s", tok.refresh_token);
        s->profile_until = now + g->profile_ttl;
    }
    sodium_memzero(&tok, sizeof tok);
    return 1;
}

/*
 * A login's outcome, kept GATE_CODE_TTL seconds under its state's one-time nonce: "S" + return
 * path + "\n" + the Set-Cookie value, or "E" + errcode when the exchange failed. One state gives
 * one exchange and one session, whatever arrives with it: the same code again (a refresh, Back)
 * or another code (WeChat sometimes calls the callback twice, with two codes), at any gate
 * sharing the store. The state replay cache and the redeemed-code cache in one.
 */
static void login_key(struct gate *g, char kind, const struct wx_state *st, unsigned char out[16])
{
    wx_g_kv_key(kind, st->nonce, sizeof st->nonce, out);
}

/*
 * A callback for a state seen before: waits while another request is still exchanging its
 * code, then answers with that outcome. 1 when answered; 0 when this request is the first and
 * exchanges the code itself.
 */
int wx_g_login_replay(struct gate *g, struct wx_http_req *req, const struct wx_state *st,
                      const char *back)
{
    unsigned char key[16];
    char v[CODE_RESULT_MAX];
    login_key(g, 's', st, key);
    for (int i = 0; i <= GATE_CODE_WAIT * 20; i++) {
        int rc = wx_g_kv_get(g, key, v, sizeof v);
        if (rc == WX_OK && v[0] == 'S' && strchr(v, '\n')) {
            char *nl = strchr(v, '\n');
            *nl = '\0';
            wx_http_redirect(req, 303, v + 1);
            wx_http_set_header(req, "Set-Cookie", nl + 1);
            sodium_memzero(v, sizeof v);
            return 1;
        }
        if (rc == WX_OK) { /* "E<errcode>": the first request failed; so does this one */
            int ec = (int)strtol(v + 1, NULL, 10);
            const struct wx_errcode_info *e = wx_errcode_explain(ec);
            req->errcode = ec;
            wx_g_page(g, req, 502, "登录没有成功", e ? e->hint_zh : "The login failed.", back, 0);
            return 1;
        }
        if (rc != WX_ERR_NOTFOUND)
            break;
        if (i == 0) { /* not the first request for this state? then wait for the first one */
            unsigned char claim[16];
            login_key(g, 'x', st, claim);
            rc = wx_g_kv_claim(g, claim, wx_g_now_s() + GATE_CODE_TTL);
            if (rc == WX_OK)
                return 0;
            if (rc != WX_ERR_CONFLICT)
                break;
        }
        usleep(50000);
    }
    wx_g_page(
        g, req, 503, "请稍候 · Please wait",
        "这次登录还在处理中，请刷新页面。The login is still being processed; reload the page.",
        back, 0);
    return 1;
}

void wx_g_login_remember(struct gate *g, const struct wx_state *st, const char *value)
{
    unsigned char key[16];
    login_key(g, 's', st, key);
    if (wx_g_kv_put(g, key, value, wx_g_now_s() + GATE_CODE_TTL) != WX_OK)
        wx_logf(&g->log, WX_LOG_ERROR, "level=error msg=\"store: cannot keep a login's outcome\"");
}
