/*
 * cmd_client.c — the relying-party commands: `wxauth url`, `exchange`, `refresh`, `userinfo`,
 * `check`, `basic-token`, `explain`. Settings come from one directive table (flags, WXAUTH_*
 * variables, --config FILE). Human output by default, --json for scripts.
 * Exit codes: 0 done, 2 usage or configuration, 3 WeChat answered an errcode, 4 transport,
 * TLS or unparsable answer.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wxauth/wxauth.h>

#include "cli.h"
#include "config.h"

static const struct wx_cfg_directive directives[] = {
    {"appid", WX_CFG_STR, NULL, 0, 0, "the Official Account's AppID"},
    {"secret", WX_CFG_STR, NULL, 0, 0, "its AppSecret (prefer WXAUTH_SECRET to a flag)"},
    {"open-base", WX_CFG_STR, WX_DEFAULT_OPEN_BASE, 0, 0, "authorize server base URL"},
    {"api-base", WX_CFG_STR, WX_DEFAULT_API_BASE, 0, 0, "API server base URL"},
    {"ca-file", WX_CFG_STR, NULL, 0, 0, "CA bundle for TLS verification (default: system)"},
    {"timeout-ms", WX_CFG_INT, "10000", 100, 600000, "whole-call timeout"},
    {"retries", WX_CFG_INT, "2", 0, 10, "retries of idempotent calls on -1, 45011, transport"},
    {"redirect-uri", WX_CFG_STR, NULL, 0, 0, "url: the callback URL (not encoded)"},
    {"scope", WX_CFG_STR, "snsapi_base", 0, 0, "url: snsapi_base or snsapi_userinfo"},
    {"state", WX_CFG_STR, NULL, 0, 0, "url: state ([A-Za-z0-9], at most 128)"},
    {"force-popup", WX_CFG_BOOL, "false", 0, 0, "url: add forcePopup=true"},
    {"force-snapshot", WX_CFG_BOOL, "false", 0, 0, "url: add forceSnapShot=true"},
    {"connect-redirect", WX_CFG_BOOL, "false", 0, 0, "url: add connect_redirect=1"},
    {"lang", WX_CFG_STR, "zh_CN", 0, 0, "userinfo: zh_CN, zh_TW or en"},
    {"json", WX_CFG_BOOL, "false", 0, 0, "print JSON"},
    {"help", WX_CFG_BOOL, "false", 0, 0, "show this help"},
};

static void usage(const struct wx_cfg *cfg, FILE *f)
{
    struct wx_buf b;
    wx_buf_init(&b, 65536);
    wx_cfg_help(cfg, &b);
    fprintf(
        f,
        "Usage:\n"
        "  wxauth url --redirect-uri URL [--scope S] [--state S] [--force-popup] ...\n"
        "  wxauth exchange CODE            code -> web access_token + openid (never retried)\n"
        "  wxauth refresh REFRESH_TOKEN    a new access_token\n"
        "  wxauth userinfo TOKEN OPENID    nickname, avatar (snsapi_userinfo grants)\n"
        "  wxauth check TOKEN OPENID       is the web access_token valid? (/sns/auth)\n"
        "  wxauth basic-token              the basic access_token (cgi-bin/token)\n"
        "  wxauth explain [ERRCODE]        what an errcode means and how to fix it\n\n"
        "Options (also WXAUTH_<NAME> variables and --config FILE):\n"
        "  %-26s %s\n%s\n"
        "Exit codes: 0 done, 2 usage, 3 WeChat answered an errcode, 4 transport/TLS/bad answer.\n",
        "--config FILE", "read settings from FILE", b.ptr ? b.ptr : "");
    wx_buf_free(&b);
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2));
    if (s)
        puts(s);
    free(s);
    json_decref(j);
}

static int explain(int errcode, int json, FILE *f)
{
    const struct wx_errcode_info *e = wx_errcode_explain(errcode);
    if (!e) {
        fprintf(stderr, "wxauth explain: %d is not a WeChat errcode wxauth knows\n", errcode);
        return 3;
    }
    if (json)
        print_json(json_pack("{s:i, s:s, s:s, s:s, s:s}", "errcode", e->errcode, "errmsg",
                             e->errmsg, "meaning", e->zh, "hint_zh", e->hint_zh, "hint_en",
                             e->hint_en));
    else
        fprintf(f, "%d %s\n  %s\n  %s\n  %s\n", e->errcode, e->errmsg, e->zh, e->hint_zh,
                e->hint_en);
    return 0;
}

/* Reports a failed call; returns the exit code. */
static int report(const char *cmd, int rc, const struct wx_error *err, int json)
{
    if (json)
        print_json(json_pack("{s:i, s:s}", "errcode", err->errcode, "errmsg", err->errmsg));
    if (rc == WX_ERR_INVALID && err->errcode != -1) {
        fprintf(stderr, "wxauth %s: WeChat answered %d %s\n", cmd, err->errcode, err->errmsg);
        if (!json)
            explain(err->errcode, 0, stderr);
        return 3;
    }
    if (rc == WX_ERR_INVALID && err->errcode == -1 && !strstr(err->errmsg, "system error")) {
        fprintf(stderr, "wxauth %s: %s\n", cmd, err->errmsg);
        return 2;
    }
    fprintf(stderr, "wxauth %s: %s\n", cmd, err->errmsg[0] ? err->errmsg : wx_strerror(rc));
    return rc == WX_ERR_INVALID ? 3 : 4;
}

static void print_token(const struct wx_token *t, int json)
{
    if (json) {
        json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:s}", "access_token", t->access_token,
                              "expires_in", (json_int_t)t->expires_in, "refresh_token",
                              t->refresh_token, "openid", t->openid, "scope", t->scope);
        if (t->unionid[0])
            json_object_set_new(o, "unionid", json_string(t->unionid));
        if (t->is_snapshotuser)
            json_object_set_new(o, "is_snapshotuser", json_integer(1));
        print_json(o);
        return;
    }
    printf("openid         %s\n", t->openid);
    if (t->unionid[0])
        printf("unionid        %s\n", t->unionid);
    printf("scope          %s\naccess_token   %s  (expires in %lld s)\nrefresh_token  %s\n",
           t->scope, t->access_token, (long long)t->expires_in, t->refresh_token);
    if (t->is_snapshotuser)
        printf("snapshot user  yes: a virtual account of WeChat's snapshot-page mode\n");
}

static void print_userinfo(const struct wx_userinfo *u, int json)
{
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s}", "openid", u->openid,
                              "nickname", u->nickname, "sex", u->sex, "province", u->province,
                              "city", u->city, "country", u->country, "headimgurl", u->headimgurl);
        if (u->unionid[0])
            json_object_set_new(o, "unionid", json_string(u->unionid));
        print_json(o);
        return;
    }
    printf("openid      %s\nnickname    %s\nheadimgurl  %s\n", u->openid, u->nickname,
           u->headimgurl);
    if (u->unionid[0])
        printf("unionid     %s\n", u->unionid);
}

static int make_client(const struct wx_cfg *cfg, struct wx_client **c)
{
    struct wx_client_config cc = {0};
    struct wx_error err = {0};
    cc.appid = wx_cfg_str(cfg, "appid");
    cc.secret = wx_cfg_str(cfg, "secret");
    cc.open_base = wx_cfg_str(cfg, "open-base");
    cc.api_base = wx_cfg_str(cfg, "api-base");
    cc.ca_file = wx_cfg_str(cfg, "ca-file");
    cc.timeout_ms = (long)wx_cfg_int(cfg, "timeout-ms");
    cc.max_retries = wx_cfg_int(cfg, "retries") ? (int)wx_cfg_int(cfg, "retries") : -1;
    if (!cc.appid) {
        fprintf(stderr, "wxauth: which app? give --appid (or WXAUTH_APPID)\n");
        return 2;
    }
    int rc = wx_client_new(&cc, c, &err);
    if (rc) {
        fprintf(stderr, "wxauth: %s\n", err.errmsg[0] ? err.errmsg : wx_strerror(rc));
        return 2;
    }
    return 0;
}

static int cmd_url(const struct wx_cfg *cfg, struct wx_client *c)
{
    struct wx_authorize_params p = {0};
    struct wx_buf out;
    p.redirect_uri = wx_cfg_str(cfg, "redirect-uri");
    p.scope = wx_cfg_str(cfg, "scope");
    p.state = wx_cfg_str(cfg, "state");
    p.force_popup = wx_cfg_bool(cfg, "force-popup");
    p.force_snapshot = wx_cfg_bool(cfg, "force-snapshot");
    p.connect_redirect = wx_cfg_bool(cfg, "connect-redirect");
    if (!p.redirect_uri) {
        fprintf(stderr, "wxauth url: give --redirect-uri URL\n");
        return 2;
    }
    wx_buf_init(&out, WX_MAX_URL * 2);
    int rc = wx_authorize_url(c, &p, &out);
    if (rc)
        fprintf(stderr, "wxauth url: %s\n",
                rc == WX_ERR_INVALID ? "bad --redirect-uri (absolute http(s) URL), --scope "
                                       "(snsapi_base|snsapi_userinfo) or --state ([A-Za-z0-9], "
                                       "at most 128)"
                                     : wx_strerror(rc));
    else if (wx_cfg_bool(cfg, "json"))
        print_json(json_pack("{s:s}", "url", out.ptr));
    else
        puts(out.ptr);
    wx_buf_free(&out);
    return rc ? 2 : 0;
}

/* `explain ERRCODE`, or the whole table without an argument. */
static int cmd_explain(int npos, char **pos, int json)
{
    if (npos == 0) {
        size_t n;
        const struct wx_errcode_info *all = wx_errcode_all(&n);
        for (size_t i = 0; i < n; i++)
            printf("%6d  %-28.28s %s\n", all[i].errcode, all[i].errmsg, all[i].zh);
        return 0;
    }
    char *end = NULL;
    long v = strtol(pos[0], &end, 10);
    if (npos != 1 || !*pos[0] || *end) {
        fprintf(stderr, "wxauth explain: give one errcode, e.g. 40163 (none: the whole table)\n");
        return 2;
    }
    return explain((int)v, json, stdout);
}

static int need_args(const char *cmd, int npos, int want, const char *what)
{
    if (npos == want)
        return 0;
    fprintf(stderr, "wxauth %s: give %s\n", cmd, what);
    return 2;
}

int wx_cmd_client(int argc, char **argv)
{
    struct wx_cfg cfg;
    struct wx_client *c = NULL;
    struct wx_error err = {0};
    char errbuf[512];
    int npos = 0, rc;
    const char *cmd = argv[0];
    if (wx_init() || wx_cfg_init(&cfg, directives, sizeof directives / sizeof directives[0]))
        return 1;
    if (wx_cfg_load_all(&cfg, argc, argv, 1, &npos, errbuf, sizeof errbuf)) {
        fprintf(stderr, "wxauth %s: %s\n", cmd, errbuf);
        wx_cfg_free(&cfg);
        return 2;
    }
    char **pos = argv + 1;
    int json = wx_cfg_bool(&cfg, "json");
    if (wx_cfg_bool(&cfg, "help")) {
        usage(&cfg, stdout);
        rc = 0;
    } else if (!strcmp(cmd, "explain")) {
        rc = cmd_explain(npos, pos, json);
    } else if ((rc = make_client(&cfg, &c))) {
        /* reported */
    } else if (!strcmp(cmd, "url")) {
        if (!(rc = need_args(cmd, npos, 0, "no arguments, only options")))
            rc = cmd_url(&cfg, c);
    } else if (!strcmp(cmd, "exchange") || !strcmp(cmd, "refresh")) {
        struct wx_token t;
        if (!(rc = need_args(cmd, npos, 1, !strcmp(cmd, "exchange") ? "CODE" : "REFRESH_TOKEN"))) {
            int r = !strcmp(cmd, "exchange") ? wx_exchange_code(c, pos[0], &t, &err)
                                             : wx_refresh_token(c, pos[0], &t, &err);
            if (r)
                rc = report(cmd, r, &err, json);
            else
                print_token(&t, json);
            sodium_memzero(&t, sizeof t);
        }
    } else if (!strcmp(cmd, "userinfo")) {
        struct wx_userinfo u;
        if (!(rc = need_args(cmd, npos, 2, "ACCESS_TOKEN OPENID"))) {
            int r = wx_get_userinfo(c, pos[0], pos[1], wx_cfg_str(&cfg, "lang"), &u, &err);
            if (r)
                rc = report(cmd, r, &err, json);
            else
                print_userinfo(&u, json);
        }
    } else if (!strcmp(cmd, "check")) {
        if (!(rc = need_args(cmd, npos, 2, "ACCESS_TOKEN OPENID"))) {
            int r = wx_check_token(c, pos[0], pos[1], &err);
            if (r)
                rc = report(cmd, r, &err, json);
            else if (json)
                print_json(json_pack("{s:i, s:s}", "errcode", 0, "errmsg", "ok"));
            else
                printf("valid: the access_token works for this openid\n");
        }
    } else {
        char token[WX_MAX_TOKEN + 1];
        int64_t exp = 0;
        if (!(rc = need_args(cmd, npos, 0, "no arguments"))) {
            int r = wx_basic_token(c, token, &exp, &err);
            if (r)
                rc = report(cmd, r, &err, json);
            else if (json)
                print_json(
                    json_pack("{s:s, s:I}", "access_token", token, "expires_in", (json_int_t)exp));
            else
                printf("access_token  %s  (expires in %lld s)\n", token, (long long)exp);
            sodium_memzero(token, sizeof token);
        }
    }
    wx_client_free(c);
    wx_cfg_free(&cfg);
    return rc;
}
