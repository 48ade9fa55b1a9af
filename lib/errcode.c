/*
 * errcode.c — WeChat's error codes as one table (protocol sheet §9 and §1.4), the errmsg
 * wording per endpoint family, and the ", rid: ..." suffix of current responses.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include <wxauth/errcode.h>

static const struct wx_errcode_info table[] = {
    {-1, "system error", "系统繁忙，此时请开发者稍候再试", "稍后重试；持续出现时检查服务端存储",
     "Retry later; if it persists, check the server's store."},
    {0, "ok", "请求成功", "", ""},
    {10003, "redirect_uri domain mismatch", "redirect_uri域名与后台配置不一致",
     "redirect_uri 的主机名必须与网页授权域名完全一致；反向代理后请配置公开地址",
     "The redirect_uri host must equal the registered domain exactly; behind a proxy, configure "
     "the public base URL."},
    {10004, "account banned", "此公众号被封禁", "联系平台", "The account is banned."},
    {10005, "scope unauthorized", "此公众号并没有这些scope的权限",
     "scope 只能是 snsapi_base 或 snsapi_userinfo", "Use scope snsapi_base or snsapi_userinfo."},
    {10009, "too frequent", "操作太频繁了，请稍后重试", "稍后重试", "Slow down and retry later."},
    {10010, "scope empty", "scope不能为空", "加上 scope 参数", "Add the scope parameter."},
    {10011, "redirect_uri empty", "redirect_uri不能为空", "加上 urlencode 过的 redirect_uri",
     "Add the url-encoded redirect_uri parameter."},
    {10012, "appid empty", "appid不能为空", "加上 appid 参数", "Add the appid parameter."},
    {10013, "state empty", "state不能为空", "state 要么省略，要么为 1–128 位字母数字",
     "Omit state or send 1-128 letters and digits."},
    {10016, "open platform appid", "不支持微信开放平台的Appid，请使用公众号Appid",
     "使用公众号的 AppID", "Use the Official Account's AppID, not an Open Platform one."},
    {40001, "invalid credential, access_token is invalid or not latest",
     "AppSecret错误或access_token无效", "access_token 无效或已被撤销：重新授权或刷新",
     "The access_token is invalid or revoked: "
     "authorize again or refresh."},
    {40002, "invalid grant_type", "不合法的凭证类型",
     "grant_type 应为 authorization_code / "
     "refresh_token / client_credential",
     "Use the grant_type the endpoint documents."},
    {40003, "invalid openid", "不合法的OpenID", "openid 必须是该 access_token 所属用户的 openid",
     "Pass the openid that came with this access_token."},
    {40013, "invalid appid", "不合法的AppID", "检查 appid 是否正确", "Check the appid."},
    {40029, "invalid code", "不合法的oauth_code",
     "code 无效、已过期（5 分钟）或属于其他 appid：重新授权",
     "The code is wrong, expired (5 minutes) or for another appid: authorize again."},
    {40030, "invalid refresh_token", "不合法的refresh_token", "refresh_token 无效：重新授权",
     "The refresh_token is invalid: authorize again."},
    {40066, "invalid url", "不合法的url", "检查接口路径", "Check the API path."},
    {40125, "invalid appsecret", "AppSecret错误", "检查 AppSecret；重置后旧的立即失效",
     "Check the AppSecret; a reset invalidates the old one at once."},
    {40163, "code been used", "oauth_code已使用",
     "每个 code 只能换一次：回调去重，换取后重定向到干净的地址",
     "A code can be exchanged once: de-duplicate callbacks and redirect to a clean URL after "
     "the exchange."},
    {41001, "access_token missing", "缺少access_token参数", "加上 access_token 参数",
     "Add the access_token parameter."},
    {41002, "appid missing", "缺少appid参数", "加上 appid 参数", "Add the appid parameter."},
    {41003, "refresh_token missing", "缺少refresh_token参数", "加上 refresh_token 参数",
     "Add the refresh_token parameter."},
    {41004, "appsecret missing", "缺少secret参数", "加上 secret 参数", "Add the secret parameter."},
    {41008, "missing code", "缺少oauth code", "回调没有 code：用户可能拒绝了授权，请展示说明页面",
     "No code: the user may have refused; show an explanation page."},
    {41009, "missing openid", "缺少openid", "加上 openid 参数", "Add the openid parameter."},
    {42001, "access_token expired", "access_token超时", "用 refresh_token 刷新",
     "Refresh it with the refresh_token."},
    {42002, "refresh_token expired", "refresh_token超时", "refresh_token 30 天有效：重新授权",
     "refresh_token lives 30 days: authorize again."},
    {42003, "code expired", "oauth_code超时", "code 5 分钟有效：重新授权",
     "A code lives 5 minutes: authorize again."},
    {43003, "require https", "需要HTTPS请求", "使用 https", "Use https."},
    {45009, "reach max api daily quota limit", "接口调用超过限制", "明天再试或缓存 access_token",
     "Retry tomorrow; cache the access_token."},
    {45011, "api minute-quota reach limit, must slower, retry next minute", "API 调用太频繁",
     "降低频率，下一分钟重试", "Slow down and retry next minute."},
    {48001, "api unauthorized", "api功能未授权",
     "snsapi_base 授权不能拉取用户信息：改用 snsapi_userinfo",
     "A snsapi_base grant cannot read userinfo: use snsapi_userinfo."},
    {50001, "user unauthorized", "用户未授权该api", "让用户重新授权", "Ask the user to authorize."},
    {50002, "user limited", "用户受限", "该用户被限制", "The user is restricted."},
};

const struct wx_errcode_info *wx_errcode_explain(int errcode)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (table[i].errcode == errcode)
            return &table[i];
    return NULL;
}

const struct wx_errcode_info *wx_errcode_all(size_t *n)
{
    *n = sizeof(table) / sizeof(table[0]);
    return table;
}

const char *wx_errcode_msg(int errcode, enum wx_api_family family)
{
    if (family == WX_API_CGI && errcode == WX_EC_INVALID_CREDENTIAL)
        return "invalid credential, access_token is invalid or not latest, could get access_token "
               "by getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r";
    const struct wx_errcode_info *e = wx_errcode_explain(errcode);
    return e ? e->errmsg : "system error";
}

void wx_rid(char out[27], int64_t now)
{
    snprintf(out, 27, "%08x-%08x-%08x", (unsigned)(uint32_t)now, (unsigned)randombytes_random(),
             (unsigned)randombytes_random());
}

void wx_error_set(struct wx_error *e, int errcode, enum wx_api_family family, int64_t now)
{
    char rid[27];
    wx_rid(rid, now);
    e->errcode = errcode;
    snprintf(e->errmsg, sizeof(e->errmsg), "%s%s rid: %s", wx_errcode_msg(errcode, family),
             family == WX_API_SNS ? "," : "", rid);
}

int wx_error_json(struct wx_buf *b, int errcode, enum wx_api_family family, int64_t now)
{
    struct wx_error e;
    wx_error_set(&e, errcode, family, now);
    /* errmsg holds only ASCII from the table above, no quote or backslash: no escaping needed. */
    return wx_buf_printf(b, "{\"errcode\":%d,\"errmsg\":\"%s\"}", e.errcode, e.errmsg);
}
