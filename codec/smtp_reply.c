/*
 * smtp_reply - SMTP reply parser and formatter (RFC 5321 4.2, RFC 3463), pure.
 *
 * smtp_reply_line() checks one line: three digits (the first 2..5), then SP,
 * "-" or the end of the line.  Text containing CR, LF or NUL is refused too:
 * the texts are kept joined by '\n' and relayed to clients, where such octets
 * would end or split a line.  smtp_reply_feed() accumulates the lines of one
 * reply and enforces one code for all lines and the line and byte limits, so
 * a broken or hostile upstream cannot make the proxy buffer without bound.
 * smtp_reply_format() and smtp_reply_format_text() write wire lines.
 * smtp_ehlo_caps() reads the keywords of an EHLO reply.
 *
 * Only struct smtp_reply's text and the formatted output are allocated.
 */
#include "codec/smtp_reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"

#include "codec/esmtp.h"

static bool reply_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool reply_is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

bool smtp_reply_line(const char *line, size_t len, struct smtp_reply_line *out)
{
    if (line == NULL || len < 3)
        return false;
    unsigned char d0 = (unsigned char)line[0];
    if (d0 < '2' || d0 > '5' || !reply_is_digit((unsigned char)line[1]) ||
        !reply_is_digit((unsigned char)line[2]))
        return false;
    bool last;
    if (len == 3)
        last = true;
    else if (line[3] == ' ')
        last = true;
    else if (line[3] == '-')
        last = false;
    else
        return false;
    const char *text = line + (len > 3 ? 4 : 3);
    size_t text_len = len > 3 ? len - 4 : 0;
    for (size_t i = 0; i < text_len; i++)
        if (text[i] == '\r' || text[i] == '\n' || text[i] == '\0')
            return false;

    out->code = (d0 - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    out->last = last;
    out->text = text;
    out->text_len = text_len;
    return true;
}

/* 1*3DIGIT, stored in *value; returns the digits consumed (0 if none). */
static size_t reply_number(const char *s, size_t len, int *value)
{
    size_t n = 0;
    int v = 0;
    while (n < len && n < 3 && reply_is_digit((unsigned char)s[n])) {
        v = v * 10 + (s[n] - '0');
        n++;
    }
    if (n < len && n == 3 && reply_is_digit((unsigned char)s[n]))
        return 0;
    *value = v;
    return n;
}

bool smtp_enhanced_parse(const char *text, size_t len, struct smtp_enhanced *out, size_t *consumed)
{
    if (text == NULL || len < 5)
        return false;
    if (text[0] != '2' && text[0] != '4' && text[0] != '5')
        return false;
    if (text[1] != '.')
        return false;
    size_t p = 2;
    int subject, detail;
    size_t n = reply_number(text + p, len - p, &subject);
    if (n == 0)
        return false;
    p += n;
    if (p >= len || text[p] != '.')
        return false;
    p++;
    n = reply_number(text + p, len - p, &detail);
    if (n == 0)
        return false;
    p += n;
    if (p < len && !reply_is_blank((unsigned char)text[p]))
        return false;
    while (p < len && reply_is_blank((unsigned char)text[p]))
        p++;
    out->klass = text[0] - '0';
    out->subject = subject;
    out->detail = detail;
    *consumed = p;
    return true;
}

void smtp_reply_init(struct smtp_reply *r)
{
    memset(r, 0, sizeof(*r));
}

void smtp_reply_reset(struct smtp_reply *r)
{
    r->code = 0;
    r->nlines = 0;
    r->text_len = 0;
    if (r->text)
        r->text[0] = '\0';
}

void smtp_reply_free(struct smtp_reply *r)
{
    free(r->text);
    memset(r, 0, sizeof(*r));
}

/*
 * The size of the reply on the wire: each line is code, separator, text and
 * CRLF, i.e. 6 octets more than its text, and the texts are joined by one '\n'.
 */
static size_t reply_wire_size(size_t text_len, size_t nlines)
{
    return nlines == 0 ? 0 : text_len - (nlines - 1) + 6 * nlines;
}

enum smtp_reply_status smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len)
{
    struct smtp_reply_line l;
    if (!smtp_reply_line(line, len, &l))
        return SMTP_REPLY_ERROR;
    if (r->nlines > 0 && l.code != r->code)
        return SMTP_REPLY_ERROR;
    if (r->nlines + 1 > SMTP_REPLY_MAX_LINES)
        return SMTP_REPLY_ERROR;
    size_t sep = r->nlines > 0 ? 1 : 0;
    size_t new_len = r->text_len + sep + l.text_len;
    if (reply_wire_size(new_len, r->nlines + 1) > SMTP_REPLY_MAX_BYTES)
        return SMTP_REPLY_ERROR;

    /* Bounded by SMTP_REPLY_MAX_BYTES above. */
    if (new_len + 1 > r->text_cap &&
        util_grow_first(&r->text, &r->text_cap, new_len + 1, 1, 128) != 0)
        return SMTP_REPLY_ERROR;
    if (sep)
        r->text[r->text_len] = '\n';
    memcpy(r->text + r->text_len + sep, l.text, l.text_len);
    r->text_len = new_len;
    r->text[new_len] = '\0';
    r->code = l.code;
    r->nlines++;
    return l.last ? SMTP_REPLY_DONE : SMTP_REPLY_MORE;
}

/*
 * Write code and '\n'-separated text as wire lines.  CR and NUL are dropped
 * from the text so that no line can end early on the client's side; an empty
 * last line is written as the bare code, which RFC 5321 allows.
 */
static size_t reply_format(int code, const char *text, size_t text_len, char **out)
{
    *out = NULL;
    /* Anything else would not be read as a reply at all: say "try later". */
    if (code < 200 || code > 599)
        code = 451;
    if (text == NULL) {
        text = "";
        text_len = 0;
    }

    size_t nlines = 1;
    for (size_t i = 0; i < text_len; i++)
        if (text[i] == '\n')
            nlines++;
    /* Each line: 3 digits, separator, CRLF; plus the text and a NUL. */
    size_t cap = text_len + nlines * 6 + 1;
    char *buf = malloc(cap);
    if (buf == NULL)
        return (size_t)-1;

    char digits[4];
    snprintf(digits, sizeof(digits), "%03d", code);
    size_t o = 0;
    size_t start = 0;
    for (size_t n = 0; n < nlines; n++) {
        const char *nl = memchr(text + start, '\n', text_len - start);
        size_t end = nl ? (size_t)(nl - text) : text_len;
        bool last = n + 1 == nlines;
        memcpy(buf + o, digits, 3);
        o += 3;
        if (!last || end > start)
            buf[o++] = last ? ' ' : '-';
        for (size_t i = start; i < end; i++)
            if (text[i] != '\r' && text[i] != '\0')
                buf[o++] = text[i];
        buf[o++] = '\r';
        buf[o++] = '\n';
        start = end + 1;
    }
    buf[o] = '\0';
    *out = buf;
    return o;
}

size_t smtp_reply_format(const struct smtp_reply *r, char **out)
{
    if (r->nlines == 0) {
        *out = calloc(1, 1);
        return *out ? 0 : (size_t)-1;
    }
    return reply_format(r->code, r->text, r->text_len, out);
}

size_t smtp_reply_format_text(int code, const char *text, size_t text_len, char **out)
{
    /* A single trailing newline ends the text; it does not add an empty line. */
    if (text && text_len > 0 && text[text_len - 1] == '\n')
        text_len--;
    return reply_format(code, text, text_len, out);
}

/*
 * Copy a blank-separated list, cut at a word boundary if it does not fit: a
 * truncated mechanism or attribute name could name something else.
 */
static void reply_copy_words(char *dst, size_t dst_size, const char *src, size_t len)
{
    size_t o = 0;
    size_t p = 0;
    while (p < len) {
        while (p < len && reply_is_blank((unsigned char)src[p]))
            p++;
        size_t start = p;
        while (p < len && !reply_is_blank((unsigned char)src[p]))
            p++;
        size_t word = p - start;
        if (word == 0)
            break;
        size_t need = word + (o ? 1 : 0);
        if (o + need + 1 > dst_size)
            break;
        if (o)
            dst[o++] = ' ';
        memcpy(dst + o, src + start, word);
        o += word;
    }
    dst[o] = '\0';
}

static bool reply_equal_nocase(const char *s, size_t len, const char *lit)
{
    size_t lit_len = strlen(lit);
    return len == lit_len && strncasecmp(s, lit, len) == 0;
}

/* Plain keywords that map to one capability bit each. */
static const struct {
    const char *name;
    unsigned cap;
} reply_ehlo_keywords[] = {
    {"8BITMIME", ESMTP_CAP_8BITMIME},
    {"BINARYMIME", ESMTP_CAP_BINARYMIME},
    {"SMTPUTF8", ESMTP_CAP_SMTPUTF8},
    {"DSN", ESMTP_CAP_DSN},
    {"CHUNKING", ESMTP_CAP_CHUNKING},
    {"PIPELINING", ESMTP_CAP_PIPELINING},
    {"ENHANCEDSTATUSCODES", ESMTP_CAP_ENHANCEDSTATUSCODES},
    {"STARTTLS", ESMTP_CAP_STARTTLS},
    {"XFORWARD", ESMTP_CAP_XFORWARD},
};

static void reply_ehlo_line(const char *s, size_t len, struct smtp_ehlo_caps *out,
                            bool *auth_standard)
{
    size_t p = 0;
    while (p < len && reply_is_blank((unsigned char)s[p]))
        p++;
    size_t kw = p;
    while (p < len && !reply_is_blank((unsigned char)s[p]) && s[p] != '=')
        p++;
    const char *key = s + kw;
    size_t key_len = p - kw;
    bool old_auth = p < len && s[p] == '=';
    if (p < len)
        p++;
    const char *params = s + p;
    size_t params_len = len - p;

    if (reply_equal_nocase(key, key_len, "AUTH")) {
        /* Postfix with broken_sasl_auth_clients announces "AUTH=..." as well;
         * the standard form wins when both are there. */
        out->caps |= ESMTP_CAP_AUTH;
        if (!old_auth || !*auth_standard)
            reply_copy_words(out->auth_mechs, sizeof(out->auth_mechs), params, params_len);
        if (!old_auth)
            *auth_standard = true;
        return;
    }
    if (old_auth)
        return;
    if (reply_equal_nocase(key, key_len, "SIZE")) {
        out->caps |= ESMTP_CAP_SIZE;
        uint64_t v = 0;
        size_t i = 0;
        while (i < params_len && reply_is_blank((unsigned char)params[i]))
            i++;
        for (; i < params_len && reply_is_digit((unsigned char)params[i]); i++) {
            unsigned d = (unsigned)(params[i] - '0');
            v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        }
        out->size_limit = v;
        return;
    }
    if (reply_equal_nocase(key, key_len, "XCLIENT")) {
        out->caps |= ESMTP_CAP_XCLIENT;
        reply_copy_words(out->xclient_attrs, sizeof(out->xclient_attrs), params, params_len);
        return;
    }
    for (size_t i = 0; i < sizeof(reply_ehlo_keywords) / sizeof(reply_ehlo_keywords[0]); i++) {
        if (reply_equal_nocase(key, key_len, reply_ehlo_keywords[i].name)) {
            out->caps |= reply_ehlo_keywords[i].cap;
            return;
        }
    }
}

void smtp_ehlo_caps(const char *text, size_t len, struct smtp_ehlo_caps *out)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL)
        return;
    bool auth_standard = false;
    const char *nl = memchr(text, '\n', len);
    if (nl == NULL)
        return;
    size_t p = (size_t)(nl - text) + 1;
    while (p < len) {
        nl = memchr(text + p, '\n', len - p);
        size_t end = nl ? (size_t)(nl - text) : len;
        reply_ehlo_line(text + p, end - p, out, &auth_standard);
        p = end + 1;
    }
}

bool smtp_ehlo_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        p += strspn(p, " ");
        size_t w = strcspn(p, " ");
        if (w == n && n > 0 && strncasecmp(p, word, n) == 0)
            return true;
        p += w;
    }
    return false;
}
