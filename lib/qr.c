/*
 * qr.c — QR codes as inline SVG images (libqrencode).
 */
#include <qrencode.h>

#include <wxauth/url.h>

#include "qr.h"

int wx_qr_img(struct wx_buf *b, const char *text, int px)
{
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!qr)
        return WX_ERR_LIMIT;
    struct wx_buf svg;
    int w = qr->width, rc;
    wx_buf_init(&svg, 1 << 20);
    rc = wx_buf_printf(&svg,
                       "<svg xmlns='http://www.w3.org/2000/svg' viewBox='-4 -4 %d %d' "
                       "shape-rendering='crispEdges'><rect x='-4' y='-4' width='%d' height='%d' "
                       "fill='#fff'/><path fill='#000' d='",
                       w + 8, w + 8, w + 8, w + 8);
    for (int y = 0; rc == WX_OK && y < w; y++)
        for (int x = 0; rc == WX_OK && x < w; x++)
            if (qr->data[y * w + x] & 1)
                rc = wx_buf_printf(&svg, "M%d %dh1v1h-1z", x, y);
    if (rc == WX_OK)
        rc = wx_buf_puts(&svg, "'/></svg>");
    if (rc == WX_OK)
        rc = wx_buf_printf(
            b, "<img width=\"%d\" height=\"%d\" alt=\"QR\" src=\"data:image/svg+xml,", px, px);
    if (rc == WX_OK)
        rc = wx_pct_encode(b, (struct wx_slice){svg.ptr, svg.len});
    if (rc == WX_OK)
        rc = wx_buf_puts(b, "\">");
    wx_buf_free(&svg);
    QRcode_free(qr);
    return rc;
}
