/*
 * rules_html - what the body rules see of HTML, and the URIs of a text; pure.
 *
 * rules_html_text(html, len, out, uri, arg) appends to out the text of an
 * HTML document: tags removed, <script>, <style> and comments dropped, block
 * tags (br, p, div, tr, li, h1-h6, table, blockquote) turned into line ends,
 * character references (&amp; &#233; &#xE9; and the common names) decoded to
 * UTF-8.  The value of every href, src, action and background attribute is
 * handed to uri(arg, value, len), references decoded.
 *
 * rules_html_text_sa() renders as SpamAssassin's HTML.pm does for its body
 * rules: each text event's whitespace runs (and NBSP) one blank; br and div
 * a line end, li, td, th, dd, dt, embed and h1-h6 a blank, p, hr,
 * blockquote, pre, listing, plaintext, xmp and title a blank line, opening
 * and closing alike, a blank next to them trimmed; the same URIs.
 *
 * rules_text_uris(text, len, uri, arg) finds the URIs in plain text: what
 * starts with http://, https://, ftp://, mailto: or www. (at a word start)
 * and runs to a blank, a control octet or one of <>"'`{}|\^, without
 * trailing punctuation.
 *
 * Both are bounded by their input: one pass, no recursion, no allocation but
 * out's growth.  A rules_buf that runs out of memory stops growing and says
 * so (nomem, sticky); rules_buf_cstr() is then NULL, and the caller fails.
 */
#ifndef SMTPGATE_RULES_HTML_H
#define SMTPGATE_RULES_HTML_H

#include <stdbool.h>
#include <stddef.h>

struct rules_buf {
    char *p;
    size_t len;
    size_t cap;
    bool nomem; /* an append failed: the content is partial */
};

void rules_buf_add(struct rules_buf *b, const char *s, size_t n);
/* Room for n more octets (and a NUL) without a later copy. */
void rules_buf_reserve(struct rules_buf *b, size_t n);
void rules_buf_addc(struct rules_buf *b, char c);
/* NUL-terminates (not counted in len) and returns b->p; NULL after nomem. */
char *rules_buf_cstr(struct rules_buf *b);

typedef void (*rules_uri_fn)(void *arg, const char *uri, size_t len);

void rules_html_text(const char *html, size_t len, struct rules_buf *out, rules_uri_fn uri,
                     void *arg);
void rules_html_text_sa(const char *html, size_t len, struct rules_buf *out, rules_uri_fn uri,
                        void *arg);
void rules_text_uris(const char *text, size_t len, rules_uri_fn uri, void *arg);

#endif
