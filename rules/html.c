/*
 * rules_html - HTML to text, and URIs out of HTML and text (see rules_html.h).
 *
 * Not an HTML5 parser: spam filtering needs the words a reader sees and the
 * links behind them, robustly against broken markup.  A "<" that does not
 * open a tag (not followed by a letter, "/" or "!") is text; a tag runs to
 * the first ">" outside quotes, or to the end of the input.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/rules_html.h"
#include "util/alloc.h"

#define URI_MAX 2048

void rules_buf_reserve(struct rules_buf *b, size_t n)
{
    if (b->nomem || b->cap >= b->len + n + 1)
        return;
    char *p = util_reallocarray(b->p, b->len + n + 1, 1);
    if (p == NULL) {
        b->nomem = true;
        return;
    }
    b->p = p;
    b->cap = b->len + n + 1;
}

void rules_buf_add(struct rules_buf *b, const char *s, size_t n)
{
    if (n == 0 || b->nomem)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = util_reallocarray(b->p, cap, 1);
        if (p == NULL) {
            b->nomem = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void rules_buf_addc(struct rules_buf *b, char c)
{
    rules_buf_add(b, &c, 1);
}

char *rules_buf_cstr(struct rules_buf *b)
{
    rules_buf_add(b, "", 1);
    if (b->nomem)
        return NULL;
    b->len--;
    return b->p;
}

static void add_utf8(struct rules_buf *b, uint32_t cp)
{
    char u[4];
    if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        cp = 0xfffd;
    if (cp < 0x80) {
        rules_buf_addc(b, (char)cp);
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        rules_buf_add(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        rules_buf_add(b, u, 3);
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        rules_buf_add(b, u, 4);
    }
}

static const struct {
    const char *name;
    uint32_t cp;
} entities[] = {
    {"amp", '&'},     {"lt", '<'},        {"gt", '>'},       {"quot", '"'},     {"apos", '\''},
    {"nbsp", ' '},    {"copy", 0xa9},     {"reg", 0xae},     {"euro", 0x20ac},  {"pound", 0xa3},
    {"eacute", 0xe9}, {"egrave", 0xe8},   {"agrave", 0xe0},  {"uuml", 0xfc},    {"ouml", 0xf6},
    {"auml", 0xe4},   {"szlig", 0xdf},    {"ccedil", 0xe7},  {"shy", 0xad},     {"zwnj", 0x200c},
    {"zwj", 0x200d},  {"hellip", 0x2026}, {"mdash", 0x2014}, {"ndash", 0x2013},
};

/* At s[0] == '&': decodes one reference into b and returns octets used, or 0
 * when it is not one (the '&' is then text). */
static size_t entity(const char *s, size_t n, struct rules_buf *b)
{
    size_t i = 1;
    if (i < n && s[i] == '#') {
        i++;
        uint32_t cp = 0;
        size_t digits = 0;
        bool hex = i < n && (s[i] == 'x' || s[i] == 'X');
        if (hex)
            i++;
        while (i < n && digits < 8 &&
               (hex ? isxdigit((unsigned char)s[i]) : isdigit((unsigned char)s[i]))) {
            int v = isdigit((unsigned char)s[i]) ? s[i] - '0'
                                                 : (tolower((unsigned char)s[i]) - 'a' + 10);
            cp = cp * (hex ? 16 : 10) + (uint32_t)v;
            i++, digits++;
        }
        if (digits == 0)
            return 0;
        if (i < n && s[i] == ';')
            i++;
        add_utf8(b, cp);
        return i;
    }
    size_t start = i;
    while (i < n && i - start < 10 && isalnum((unsigned char)s[i]))
        i++;
    size_t nl = i - start;
    for (size_t k = 0; k < sizeof(entities) / sizeof(entities[0]); k++) {
        if (strlen(entities[k].name) == nl && memcmp(entities[k].name, s + start, nl) == 0) {
            if (i < n && s[i] == ';')
                i++;
            add_utf8(b, entities[k].cp);
            return i;
        }
    }
    return 0;
}

static bool name_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

static bool is_block(const char *s, size_t n)
{
    static const char *blocks[] = {"br", "p",  "div", "tr",    "li",         "h1", "h2", "h3",
                                   "h4", "h5", "h6",  "table", "blockquote", "hr", "ul", "ol"};
    for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++)
        if (name_is(s, n, blocks[i]))
            return true;
    return false;
}

/* Case-insensitive search for needle in s[0..n). */
static const char *find_ci(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(s + i, needle, k) == 0)
            return s + i;
    return NULL;
}

/* The attributes in tag[0..n) (after the name): URI-carrying values go to uri. */
static void tag_attributes(const char *s, size_t n, rules_uri_fn uri, void *arg)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (isspace((unsigned char)s[i]) || s[i] == '/'))
            i++;
        size_t an = i;
        while (i < n && !isspace((unsigned char)s[i]) && s[i] != '=' && s[i] != '>' && s[i] != '/')
            i++;
        size_t alen = i - an;
        if (alen == 0) {
            i++;
            continue;
        }
        while (i < n && isspace((unsigned char)s[i]))
            i++;
        if (i >= n || s[i] != '=')
            continue;
        i++;
        while (i < n && isspace((unsigned char)s[i]))
            i++;
        size_t vs, ve;
        if (i < n && (s[i] == '"' || s[i] == '\'')) {
            char q = s[i++];
            vs = i;
            while (i < n && s[i] != q)
                i++;
            ve = i;
            if (i < n)
                i++;
        } else {
            vs = i;
            while (i < n && !isspace((unsigned char)s[i]) && s[i] != '>')
                i++;
            ve = i;
        }
        const char *a = s + an;
        if (uri != NULL && ve > vs &&
            (name_is(a, alen, "href") || name_is(a, alen, "src") || name_is(a, alen, "action") ||
             name_is(a, alen, "background"))) {
            struct rules_buf v = {0};
            for (size_t k = vs; k < ve && v.len < URI_MAX; k++) {
                size_t used = s[k] == '&' ? entity(s + k, ve - k, &v) : 0;
                if (used > 0)
                    k += used - 1;
                else if (!isspace((unsigned char)s[k]))
                    rules_buf_addc(&v, s[k]);
            }
            if (v.len > 0)
                uri(arg, v.p, v.len);
            free(v.p);
        }
    }
}

/* SpamAssassin's line breaks for a tag (HTML.pm html_whitespace), open or
 * closed alike: NULL when it has none. */
static const char *sa_tag_space(const char *s, size_t n)
{
    static const char *const nl[] = {"br", "div"};
    static const char *const blank[] = {"li", "th", "td", "dd", "dt", "embed",
                                        "h1", "h2", "h3", "h4", "h5", "h6"};
    static const char *const para[] = {"p",       "hr",        "blockquote", "pre",
                                       "listing", "plaintext", "xmp",        "title"};
    for (size_t i = 0; i < sizeof(nl) / sizeof(nl[0]); i++)
        if (name_is(s, n, nl[i]))
            return "\n";
    for (size_t i = 0; i < sizeof(blank) / sizeof(blank[0]); i++)
        if (name_is(s, n, blank[i]))
            return " ";
    for (size_t i = 0; i < sizeof(para) / sizeof(para[0]); i++)
        if (name_is(s, n, para[i]))
            return "\n\n";
    return NULL;
}

/* SpamAssassin's rendering state: the text event being read (HTML::Parser
 * hands text between two pieces of markup over as one) and what the last
 * element pushed was, for display_text's trimming of blanks. */
struct sa_render {
    struct rules_buf pend;
    enum { SA_NONE, SA_TEXT, SA_SPACE } last;
};

/* display_text for a text event: its whitespace runs (and NBSP) one blank,
 * the leading blank dropped after a whitespace element. */
static void sa_flush(struct sa_render *st, struct rules_buf *out)
{
    if (st->pend.len == 0)
        return;
    const char *t = st->pend.p;
    size_t n = st->pend.len, from = out->len;
    for (size_t i = 0; i < n;) {
        bool sp = t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r' || t[i] == '\f' ||
                  t[i] == '\v';
        bool nbsp = i + 1 < n && (unsigned char)t[i] == 0xc2 && (unsigned char)t[i + 1] == 0xa0;
        if (!sp && !nbsp) {
            rules_buf_addc(out, t[i++]);
            continue;
        }
        if (nbsp) {
            rules_buf_addc(out, ' ');
            i += 2;
            continue;
        }
        rules_buf_addc(out, ' ');
        while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r' ||
                         t[i] == '\f' || t[i] == '\v'))
            i++;
    }
    if (st->last == SA_SPACE && out->len > from && !out->nomem && out->p[from] == ' ') {
        memmove(out->p + from, out->p + from + 1, out->len - from - 1);
        out->len--;
    }
    st->last = SA_TEXT;
    st->pend.len = 0;
}

static void sa_space(struct sa_render *st, struct rules_buf *out, const char *ws)
{
    if (st->last == SA_TEXT && out->len > 0 && !out->nomem && out->p[out->len - 1] == ' ')
        out->len--;
    rules_buf_add(out, ws, strlen(ws));
    st->last = SA_SPACE;
}

static void html_render(const char *s, size_t n, struct rules_buf *out, rules_uri_fn uri,
                        void *arg, struct sa_render *sa);

void rules_html_text(const char *s, size_t n, struct rules_buf *out, rules_uri_fn uri, void *arg)
{
    html_render(s, n, out, uri, arg, NULL);
}

void rules_html_text_sa(const char *s, size_t n, struct rules_buf *out, rules_uri_fn uri,
                        void *arg)
{
    struct sa_render st = {0};
    html_render(s, n, out, uri, arg, &st);
    sa_flush(&st, out);
    if (st.pend.nomem)
        out->nomem = true;
    free(st.pend.p);
}

static void html_render(const char *s, size_t n, struct rules_buf *out0, rules_uri_fn uri,
                        void *arg, struct sa_render *sa)
{
    size_t i = 0;
    /* SpamAssassin's text goes through its event buffer first */
    struct rules_buf *out = sa ? &sa->pend : out0;
    while (i < n) {
        char c = s[i];
        if (c == '&') {
            size_t used = entity(s + i, n - i, out);
            if (used > 0) {
                i += used;
                continue;
            }
            rules_buf_addc(out, c);
            i++;
            continue;
        }
        if (c != '<' || i + 1 >= n ||
            !(isalpha((unsigned char)s[i + 1]) || s[i + 1] == '/' || s[i + 1] == '!')) {
            /* the run of plain text up to the next markup, in one copy */
            size_t j = i + 1;
            while (j < n && s[j] != '<' && s[j] != '&')
                j++;
            rules_buf_add(out, s + i, j - i);
            i = j;
            continue;
        }
        if (sa != NULL)
            sa_flush(sa, out0);
        if (n - i >= 4 && memcmp(s + i, "<!--", 4) == 0) {
            const char *e = find_ci(s + i + 4, n - i - 4, "-->");
            i = e ? (size_t)(e - s) + 3 : n;
            continue;
        }
        /* a tag: to the first '>' outside quotes */
        size_t start = i + 1, j = start;
        char q = 0;
        while (j < n && (q != 0 || s[j] != '>')) {
            if (q == 0 && (s[j] == '"' || s[j] == '\''))
                q = s[j];
            else if (q != 0 && s[j] == q)
                q = 0;
            j++;
        }
        size_t tag_end = j;
        i = j < n ? j + 1 : n;
        bool closing = s[start] == '/';
        size_t ns = start + (closing ? 1 : 0), ne = ns;
        while (ne < tag_end && isalnum((unsigned char)s[ne]))
            ne++;
        const char *name = s + ns;
        size_t nlen = ne - ns;
        if (!closing && (name_is(name, nlen, "script") || name_is(name, nlen, "style"))) {
            const char *e =
                find_ci(s + i, n - i, name_is(name, nlen, "script") ? "</script" : "</style");
            if (e == NULL) {
                i = n;
            } else {
                const char *gt = memchr(e, '>', (size_t)(s + n - e));
                i = gt ? (size_t)(gt - s) + 1 : n;
            }
            continue;
        }
        if (sa != NULL) {
            const char *ws = sa_tag_space(name, nlen);
            if (ws != NULL)
                sa_space(sa, out0, ws);
        } else if (is_block(name, nlen))
            rules_buf_addc(out, '\n');
        else if (name_is(name, nlen, "td") || name_is(name, nlen, "th"))
            rules_buf_addc(out, ' ');
        if (!closing && ne < tag_end)
            tag_attributes(s + ne, tag_end - ne, uri, arg);
    }
}

static bool uri_char(unsigned char c)
{
    return c > 32 && c != 127 && strchr("<>\"'`{}|\\^", c) == NULL;
}

static bool word_start(const char *s, const char *at)
{
    if (at == s)
        return true;
    unsigned char p = (unsigned char)at[-1];
    return !isalnum(p) && p != '.' && p != '/';
}

/* The next "www." (any case) at or after p, or NULL: found from its dot
 * with memchr, which is vectorised (memmem is not, for short needles). */
static const char *next_www(const char *p, const char *end)
{
    const char *q = p;
    while (q < end) {
        const char *d = memchr(q, '.', (size_t)(end - q));
        if (d == NULL)
            return NULL;
        if (d - p >= 3 && strncasecmp(d - 3, "www", 3) == 0)
            return d - 3;
        q = d + 1;
    }
    return NULL;
}

/* A URI whose scheme ends at the colon c: its start and prefix length. */
static const char *scheme_start(const char *s, const char *end, const char *c, size_t *plen)
{
    static const char *schemes[] = {"https", "http", "ftp", "mailto"};
    for (size_t k = 0; k < sizeof(schemes) / sizeof(schemes[0]); k++) {
        size_t l = strlen(schemes[k]);
        bool slashes = k < 3;
        if ((size_t)(c - s) < l || strncasecmp(c - l, schemes[k], l) != 0 || !word_start(s, c - l))
            continue;
        if (slashes && !(end - c >= 3 && c[1] == '/' && c[2] == '/'))
            continue;
        *plen = l + (slashes ? 3 : 1);
        return c - l;
    }
    return NULL;
}

/* Candidates are found with memchr and memmem, which are vectorised: a scan
 * octet by octet costs more than the rest of the MIME work together. */
void rules_text_uris(const char *s, size_t n, rules_uri_fn uri, void *arg)
{
    const char *end = s + n, *p = s;
    const char *colon = memchr(s, ':', n), *www = next_www(s, end);
    while (p < end && (colon != NULL || www != NULL)) {
        const char *at = NULL;
        size_t plen = 0;
        if (colon != NULL && (www == NULL || colon < www)) {
            at = scheme_start(s, end, colon, &plen);
            /* a scheme "https:" starts before its colon: never before p */
            if (at != NULL && at < p)
                at = NULL;
            colon = colon + 1 < end ? memchr(colon + 1, ':', (size_t)(end - colon - 1)) : NULL;
        } else {
            if (word_start(s, www)) {
                at = www;
                plen = 4;
            }
            www = next_www(www + 1, end);
        }
        if (at == NULL)
            continue;
        const char *j = at + plen;
        while (j < end && (size_t)(j - at) < URI_MAX && uri_char((unsigned char)*j))
            j++;
        const char *e = j;
        while (e > at + plen && strchr(".,;:!?)]", e[-1]) != NULL)
            e--;
        if (e > at + plen)
            uri(arg, at, (size_t)(e - at));
        p = j;
        if (colon != NULL && colon < p)
            colon = p < end ? memchr(p, ':', (size_t)(end - p)) : NULL;
        if (www != NULL && www < p)
            www = next_www(p, end);
    }
}
