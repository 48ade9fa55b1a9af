/*
 * pages.c — what the gate shows and where it sends people: its HTML pages (errors, "try
 * again"), the QR code page for browsers outside WeChat, the return path check (rd only ever
 * leads back to this site) and the site's base URL behind trusted proxies.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <wxauth/wxauth.h>

#include "gate_internal.h"
#include "html.h"
#include "http.h"
#include "qr.h"

/* The page's head, title and text into req's answer. */
static void page_open(struct wx_http_req *req, int status, const char *title, const char *text)
{
    struct wx_buf *b = &req->out;
    wx_buf_reset(b);
    wx_http_page(req, status);
    wx_buf_puts(b, "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta "
                   "name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>");
    wx_html_escape(b, title);
    wx_buf_puts(b, "</title></head><body><h1>");
    wx_html_escape(b, title);
    wx_buf_puts(b, "</h1><p>");
    wx_html_escape(b, text);
    wx_buf_puts(b, "</p>");
}

void wx_g_page(struct gate *g, struct wx_http_req *req, int status, const char *title,
               const char *text, const char *rd, int offer_base)
{
    struct wx_buf *b = &req->out;
    page_open(req, status, title, text);
    if (rd) {
        struct wx_buf enc;
        wx_buf_init(&enc, 1024);
        wx_pct_encode(&enc, wx_slice_cstr(rd));
        wx_buf_printf(b,
                      "<p><a href=\"%s/start?scope=snsapi_userinfo&amp;rd=%s\">重新授权 · Try "
                      "again</a></p>",
                      g->prefix, enc.ptr ? enc.ptr : "%2F");
        if (offer_base)
            wx_buf_printf(b,
                          "<p><a href=\"%s/start?scope=snsapi_base&amp;rd=%s\">不授权，继续"
                          "使用基础功能 · Continue without your profile</a></p>",
                          g->prefix, enc.ptr ? enc.ptr : "%2F");
        wx_buf_free(&enc);
    }
    wx_buf_puts(b, "</body></html>");
}

void wx_g_form_page(struct gate *g, struct wx_http_req *req, const char *title, const char *text,
                    const char *form)
{
    page_open(req, form ? 200 : 500, title, form ? text : "The page could not be built.");
    if (form)
        wx_buf_puts(&req->out, form);
    wx_buf_puts(&req->out, "</body></html>");
}

/* rd only ever leads back to this site: a relative path, else "/". */
const char *wx_g_safe_rd(const char *rd)
{
    if (!rd || rd[0] != '/' || rd[1] == '/' || rd[1] == '\\')
        return "/";
    for (const char *c = rd; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '\\')
            return "/";
    return rd;
}

/* host is public-url's host or one of allowed-hosts (exact, case-insensitive). */
static int host_allowed(const struct gate *g, const char *host)
{
    if (!strcasecmp(host, g->public_host))
        return 1;
    size_t n = strlen(host);
    for (const char *p = g->allowed_hosts; p && *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        if ((size_t)(e - p) == n && n && !strncasecmp(p, host, n))
            return 1;
        p = e;
    }
    return 0;
}

/*
 * The site's base URL for this request: public-url, unless the request comes from a trusted
 * proxy that names an allowed host in X-Forwarded-Host (and http/https in X-Forwarded-Proto).
 * Everyone else's X-Forwarded-* is ignored: it would let a client choose the redirect_uri.
 */
const char *wx_g_base_url(const struct gate *g, struct wx_http_req *req, char *out, size_t outsz)
{
    struct in_addr peer;
    int trusted = 0;
    if (g->nproxies && inet_pton(AF_INET, req->peer, &peer) == 1)
        for (int i = 0; i < g->nproxies && !trusted; i++)
            trusted = g->proxies[i].s_addr == peer.s_addr;
    const char *host = trusted ? wx_http_header(req, "X-Forwarded-Host") : NULL;
    if (!host || !*host || strlen(host) > 253 || !host_allowed(g, host))
        return g->public_url;
    const char *proto = wx_http_header(req, "X-Forwarded-Proto");
    if (!proto || (strcmp(proto, "http") && strcmp(proto, "https")))
        proto = g->secure ? "https" : "http";
    snprintf(out, outsz, "%s://%s", proto, host);
    return out;
}

/* Outside WeChat: a page with the QR code of the page the user wanted, to open in WeChat. */
void wx_g_desktop_page(struct gate *g, struct wx_http_req *req, const char *base, const char *rd)
{
    char url[WX_MAX_URL + 320];
    snprintf(url, sizeof url, "%.300s%s", base, rd);
    struct wx_buf *b = &req->out;
    wx_buf_reset(b);
    wx_http_page(req, 200);
    wx_buf_puts(b,
                "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta "
                "name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>请在"
                "微信中打开</title></head><body><h1>请用微信扫码打开</h1><p>这个页面需要微信登录。"
                "Scan with WeChat to open this page there.</p>");
    if (wx_qr_img(b, url, 240) != WX_OK)
        wx_buf_puts(b, "<p>(QR code unavailable: the URL is too long)</p>");
    wx_buf_puts(b, "<p>");
    wx_html_escape(b, url);
    wx_buf_puts(b, "</p></body></html>");
}
