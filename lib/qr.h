/*
 * qr.h — QR codes for pages (libqrencode): the gate's "open this in WeChat" page and the
 * provider's website-login (qrconnect) page.
 */
#ifndef WX_QR_H
#define WX_QR_H

#include <wxauth/base.h>

/*
 * Appends an <img> of the QR code of text (an SVG as a data: URI, which the pages' CSP allows),
 * px pixels square. WX_ERR_LIMIT when text does not fit a QR code.
 */
int wx_qr_img(struct wx_buf *b, const char *text, int px);

#endif
