/*
 * html.h — escaping for text reflected into HTML pages (SECURITY.md rule 6).
 */
#ifndef WX_HTML_H
#define WX_HTML_H

#include <wxauth/base.h>

/* Appends s with & < > " ' escaped as entities. Invalid UTF-8 bytes become U+FFFD. */
int wx_html_escape(struct wx_buf *b, const char *s);
/* 1 when s (len bytes) is valid UTF-8 without NUL or C0 controls other than none. */
int wx_utf8_valid(const char *s, size_t len);

#endif
