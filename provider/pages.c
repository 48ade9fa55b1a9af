/*
 * pages.c — the provider's HTML: one layout, one stylesheet (served, never inline: the CSP
 * allows no inline style or script), generated icons, and the error page. Everything
 * reflected is escaped with wx_html_escape().
 */
#include <sodium.h>
#include <string.h>

#include "html.h"
#include "provider.h"

static const char css[] =
    "*{box-sizing:border-box}"
    "body{margin:0;font:16px/1.5 -apple-system,'PingFang SC','Noto Sans CJK SC','Microsoft "
    "YaHei',sans-serif;background:#ededed;color:#191919;overflow-wrap:anywhere}"
    ".top{background:#ededed;text-align:center;padding:12px 16px;font-size:17px;font-weight:600;"
    "border-bottom:1px solid #dcdcdc}"
    ".wrap{max-width:480px;margin:0 auto;padding:24px 20px}"
    ".card{background:#fff;border-radius:8px;padding:24px 20px;margin-bottom:16px}"
    ".card.qr{text-align:center}.card.qr .app{justify-content:center}"
    ".center{text-align:center}"
    ".app{display:flex;align-items:center;gap:12px;margin-bottom:20px}"
    ".app b{font-size:17px}"
    ".icon{border-radius:8px;flex:none}"
    ".avatar{border-radius:50%;flex:none}"
    "h1{font-size:20px;margin:0 0 8px}"
    "h2{font-size:15px;color:#7f7f7f;font-weight:normal;margin:16px 0 8px}"
    ".scope{border-top:1px solid #eee;border-bottom:1px solid #eee;padding:14px 0;margin:8px 0 "
    "16px;display:flex;gap:10px;align-items:center}"
    ".dot{width:8px;height:8px;border-radius:50%;background:#07c160;flex:none}"
    ".me{display:flex;align-items:center;gap:12px;padding:10px 0}.me .muted{flex:none}"
    ".btns{display:flex;flex-direction:column;gap:12px;margin-top:24px}"
    "button,.btn{display:block;width:100%;border:0;border-radius:8px;padding:12px;font-size:17px;"
    "font-weight:600;text-align:center;text-decoration:none;cursor:pointer}"
    ".ok{background:#07c160;color:#fff}.no{background:#f2f2f2;color:#07c160}"
    ".err{color:#fa5151;font-size:48px;line-height:1;margin:8px 0 16px}"
    ".code{font-family:monospace;color:#7f7f7f;font-size:14px;margin-top:16px}"
    ".muted{color:#7f7f7f;font-size:14px}"
    "ul.list{list-style:none;padding:0;margin:0}"
    "ul.list li{border-bottom:1px solid #eee;padding:12px 0;display:flex;align-items:center;"
    "gap:12px}"
    "ul.list li:last-child{border-bottom:0}"
    "ul.list form{margin:0 0 0 auto;flex:none}"
    ".small{width:auto;display:inline-block;padding:6px 14px;font-size:15px}"
    ".menu{display:flex;gap:8px;flex-wrap:wrap;margin-top:8px}"
    ".menu a{background:#f7f7f7;border-radius:6px;padding:6px 12px;color:#576b95;"
    "text-decoration:none;font-size:15px}"
    ".right{margin:0 0 0 auto;flex:none}"
    "a{color:#576b95}";

void wx_page_css(struct wx_http_req *req)
{
    wx_buf_reset(&req->out);
    wx_buf_puts(&req->out, css);
    req->status = 200;
    req->content_type = "text/css; charset=utf-8";
    wx_http_set_header(req, "Cache-Control", "public, max-age=3600");
}

void wx_page_begin(struct wx_http_req *req, int status, const char *title)
{
    wx_buf_reset(&req->out);
    wx_http_page(req, status);
    wx_buf_puts(&req->out, "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
                           "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                           "<title>");
    wx_html_escape(&req->out, title);
    wx_buf_puts(&req->out, "</title><link rel=\"stylesheet\" href=\"/static/wxauth.css\">"
                           "</head><body><div class=\"top\">");
    wx_html_escape(&req->out, title);
    wx_buf_puts(&req->out, "</div><div class=\"wrap\">");
}

void wx_page_end(struct wx_http_req *req)
{
    wx_buf_puts(&req->out, "</div></body></html>");
}

void wx_page_error(struct wx_http_req *req, int status, int errcode, const char *zh, const char *en)
{
    req->errcode = errcode;
    wx_page_begin(req, status, "微信网页授权");
    wx_buf_puts(&req->out, "<div class=\"card center\"><div class=\"err\">!</div><h1>");
    wx_html_escape(&req->out, zh);
    wx_buf_puts(&req->out, "</h1><p class=\"muted\">");
    wx_html_escape(&req->out, en);
    wx_buf_puts(&req->out, "</p>");
    if (errcode)
        wx_buf_printf(&req->out, "<p class=\"code\">错误码 / errcode: %d</p>", errcode);
    wx_buf_puts(&req->out, "</div>");
    wx_page_end(req);
}

/* The first UTF-8 character of name (for generated icons). */
static size_t first_char(const char *name, char out[8])
{
    const unsigned char *p = (const unsigned char *)name;
    size_t n = 1;
    if (!*p) {
        memcpy(out, "?", 2);
        return 1;
    }
    if (p[0] >= 0xf0)
        n = 4;
    else if (p[0] >= 0xe0)
        n = 3;
    else if (p[0] >= 0xc0)
        n = 2;
    for (size_t i = 1; i < n; i++)
        if (!p[i])
            n = i;
    memcpy(out, name, n);
    out[n] = '\0';
    return n;
}

static const char *const palette[] = {"#07c160", "#10aeff", "#fa9d3b", "#576b95",
                                      "#fa5151", "#6467f0", "#15bd9f", "#e64340"};

/* Appends an SVG of a coloured square with the name's first character. */
static int svg(struct wx_buf *b, const char *name, int round)
{
    unsigned char h[4];
    crypto_generichash(h, sizeof h, (const unsigned char *)name, strlen(name), NULL, 0);
    char ch[8];
    first_char(name, ch);
    int rc = wx_buf_printf(b,
                           "<svg xmlns='http://www.w3.org/2000/svg' width='132' height='132' "
                           "viewBox='0 0 132 132'><rect width='132' height='132' rx='%d' "
                           "fill='%s'/><text x='66' y='86' font-size='60' text-anchor='middle' "
                           "fill='#fff' font-family='sans-serif'>",
                           round ? 66 : 16, palette[h[0] % 8]);
    return rc ? rc : (wx_html_escape(b, ch) || wx_buf_puts(b, "</text></svg>"));
}

int wx_page_avatar_svg(struct wx_buf *b, const char *name)
{
    return svg(b, name, 1);
}

int wx_page_icon(struct wx_buf *b, const char *name, int size, const char *cls)
{
    struct wx_buf s;
    wx_buf_init(&s, 4096);
    int rc = svg(&s, name, 0);
    if (rc == WX_OK)
        rc = wx_buf_printf(b,
                           "<img class=\"%s\" width=\"%d\" height=\"%d\" alt=\"\" "
                           "src=\"data:image/svg+xml,",
                           cls, size, size);
    if (rc == WX_OK)
        rc = wx_pct_encode(b, (struct wx_slice){s.ptr, s.len});
    if (rc == WX_OK)
        rc = wx_buf_puts(b, "\">");
    wx_buf_free(&s);
    return rc;
}
