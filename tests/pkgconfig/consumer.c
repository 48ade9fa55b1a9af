/*
 * consumer.c — a program built only from the installed header and pkg-config file: proves that
 * `cmake --install` ships a usable libwxauth.
 */
#include <stdio.h>
#include <string.h>

#include <wxauth/wxauth.h>

int main(void)
{
    struct wx_client_config cfg = {0};
    struct wx_client *c = NULL;
    struct wx_error err = {0};
    struct wx_buf url;
    cfg.appid = "wx0123456789abcdef";
    if (wx_init() || wx_client_new(&cfg, &c, &err))
        return 1;
    struct wx_authorize_params p = {"https://a.example/cb?x=1", "snsapi_base", "s1", 0, 0, 0};
    wx_buf_init(&url, 4096);
    if (wx_authorize_url(c, &p, &url))
        return 1;
    const char *want = "https://open.weixin.qq.com/connect/oauth2/authorize?appid="
                       "wx0123456789abcdef&redirect_uri=https%3A%2F%2Fa.example%2Fcb%3Fx%3D1&"
                       "response_type=code&scope=snsapi_base&state=s1#wechat_redirect";
    int ok = !strcmp(url.ptr, want) && wx_errcode_explain(40163) != NULL;
    printf("%s\n", url.ptr);
    wx_buf_free(&url);
    wx_client_free(c);
    return ok ? 0 : 1;
}
