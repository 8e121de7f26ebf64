/*
 * sa_mime - SpamAssassin's MIME tree of a message (see sa_mime.h), pure.
 *
 * The steps are Message.pm's (new, parse_body, _parse_multipart,
 * _parse_normal) and Node.pm's (header, decode), in their order, so the
 * quirks the eval tests see are the same: a part's header key is not
 * trimmed before its colon, the first boundary line also sets the state
 * the "missing boundary" test reads, a boundary state is an assignment
 * then a decrement per closing line (two levels sharing one boundary leave
 * it at -1), and the parse queue runs breadth first as Perl's does.
 *
 * Bounds: every loop runs over the input's lines or a node's; the parts
 * per multipart stop at 1000 and the nesting at 20, as SpamAssassin's.
 */
#include "rules/sa_mime.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"

#define MAX_BODY_LINE     2048
#define MAX_HEADER_KEY    256
#define MAX_HEADER_VALUE  8192
#define MAX_PARTS         1000
#define SUBPARSE_DEPTH    20
#define MAX_BLANK_LINES   20
#define NONE              ((size_t)-1)

static const char nl_line[] = "\n";

struct qitem {
    size_t node;
    char *boundary; /* owned */
    size_t a, b;    /* lines [a, b) */
    unsigned subparse;
};

struct bstate {
    char *b;
    long state;
};

struct link {
    size_t first, next, last;
};

struct build {
    struct sa_mime *t;
    size_t ncap, lcap, bcap, blcap;
    struct link *links; /* children, per node in creation order */
    size_t kcap;
    struct qitem *q;
    size_t qhead, qn, qcap;
    struct bstate *bs;
    size_t nbs, bscap;
    bool nomem;
};

static bool perl_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* octet i of a line, its "\n" counted */
static unsigned char lat(const struct sa_mime_line *l, size_t i)
{
    return i < l->n ? (unsigned char)l->p[i] : '\n';
}

static bool all_space_from(const struct sa_mime_line *l, size_t i)
{
    size_t len = sa_mime_line_len(l);
    for (; i < len; i++)
        if (!perl_space(lat(l, i)))
            return false;
    return true;
}

/* /^[\041-\071\073-\176]+[ \t]*:/, the blanks only when ws */
static bool header_start(const struct sa_mime_line *l, bool ws)
{
    size_t len = sa_mime_line_len(l), i = 0;
    while (i < len && lat(l, i) >= 041 && lat(l, i) <= 0176 && lat(l, i) != ':')
        i++;
    if (i == 0)
        return false;
    while (ws && i < len && (lat(l, i) == ' ' || lat(l, i) == '\t'))
        i++;
    return i < len && lat(l, i) == ':';
}

/* /^--\QB\E(--)?\s*$/: 0 no, 1 a boundary, 2 the closing one */
static int boundary_line(const struct sa_mime_line *l, const char *b, bool closing_ok)
{
    size_t bl = strlen(b), len = sa_mime_line_len(l);
    if (len < 2 + bl || lat(l, 0) != '-' || lat(l, 1) != '-')
        return 0;
    for (size_t i = 0; i < bl; i++)
        if (lat(l, 2 + i) != (unsigned char)b[i])
            return 0;
    size_t r = 2 + bl;
    if (closing_ok && r + 1 < len && lat(l, r) == '-' && lat(l, r + 1) == '-' &&
        all_space_from(l, r + 2))
        return 2;
    return all_space_from(l, r) ? 1 : 0;
}

static void *nomem(struct build *bd)
{
    bd->nomem = true;
    return NULL;
}

static char *keep_buf(struct build *bd, char *p, size_t n)
{
    if (p == NULL)
        return nomem(bd);
    if (util_grow(&bd->t->bufs, &bd->bcap, bd->t->nbufs + 1, sizeof(char *)) != 0 ||
        util_grow(&bd->t->buf_lens, &bd->blcap, bd->t->nbufs + 1, sizeof(size_t)) != 0) {
        free(p);
        return nomem(bd);
    }
    bd->t->bufs[bd->t->nbufs] = p;
    bd->t->buf_lens[bd->t->nbufs++] = n;
    return p;
}

static bool push_line(struct build *bd, const char *p, size_t n, bool nl)
{
    struct sa_mime *t = bd->t;
    if (util_grow(&t->lines, &bd->lcap, t->nlines + 1, sizeof(*t->lines)) != 0) {
        bd->nomem = true;
        return false;
    }
    t->lines[t->nlines++] = (struct sa_mime_line){p, n, nl};
    return true;
}

/* pushes l cut into MAX_BODY_LINE pieces, each but the last given a "\n" */
static bool push_split(struct build *bd, struct sa_mime_line l)
{
    while (sa_mime_line_len(&l) > MAX_BODY_LINE) {
        if (!push_line(bd, l.p, MAX_BODY_LINE, true))
            return false;
        l.p += MAX_BODY_LINE;
        l.n -= MAX_BODY_LINE;
    }
    return push_line(bd, l.p, l.n, l.nl);
}

static size_t new_node(struct build *bd, size_t parent)
{
    struct sa_mime *t = bd->t;
    if (util_grow(&t->nodes, &bd->ncap, t->nnodes + 1, sizeof(*t->nodes)) != 0 ||
        util_grow(&bd->links, &bd->kcap, t->nnodes + 1, sizeof(*bd->links)) != 0) {
        bd->nomem = true;
        return NONE;
    }
    size_t i = t->nnodes++;
    t->nodes[i] = (struct sa_mime_node){.parent = parent, .leaf = false};
    bd->links[i] = (struct link){NONE, NONE, NONE};
    if (parent != NONE) {
        if (bd->links[parent].last == NONE)
            bd->links[parent].first = i;
        else
            bd->links[bd->links[parent].last].next = i;
        bd->links[parent].last = i;
    }
    return i;
}

static bool enqueue(struct build *bd, size_t node, const char *boundary, size_t a, size_t b,
                    unsigned subparse)
{
    char *bc = NULL;
    if (boundary != NULL && (bc = util_strdup(boundary)) == NULL) {
        bd->nomem = true;
        return false;
    }
    if (util_grow(&bd->q, &bd->qcap, bd->qn + 1, sizeof(*bd->q)) != 0) {
        free(bc);
        bd->nomem = true;
        return false;
    }
    bd->q[bd->qn++] = (struct qitem){node, bc, a, b, subparse};
    return true;
}

static long *bstate(struct build *bd, const char *b)
{
    for (size_t i = 0; i < bd->nbs; i++)
        if (strcmp(bd->bs[i].b, b) == 0)
            return &bd->bs[i].state;
    char *c = util_strdup(b);
    if (c == NULL || util_grow(&bd->bs, &bd->bscap, bd->nbs + 1, sizeof(*bd->bs)) != 0) {
        free(c);
        return nomem(bd);
    }
    bd->bs[bd->nbs] = (struct bstate){c, 0};
    return &bd->bs[bd->nbs++].state;
}

/* Node::header's decoding: s/\n[ \t]+/ /g, then trimmed (RFC 2047 aside) */
static char *decode_value(const char *v, size_t n)
{
    char *o = util_malloc(n + 1);
    if (o == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '\n' && i + 1 < n && (v[i + 1] == ' ' || v[i + 1] == '\t')) {
            while (i + 1 < n && (v[i + 1] == ' ' || v[i + 1] == '\t'))
                i++;
            o[k++] = ' ';
            continue;
        }
        o[k++] = v[i];
    }
    size_t s = 0;
    while (s < k && perl_space((unsigned char)o[s]))
        s++;
    while (k > s && perl_space((unsigned char)o[k - 1]))
        k--;
    memmove(o, o + s, k - s);
    o[k - s] = '\0';
    return o;
}

/* stores value under key when it is one of the three fields kept */
static bool set_header(struct sa_mime_node *nd, const char *key, size_t kn, const char *v,
                       size_t vn)
{
    static const char *const names[] = {"content-type", "content-transfer-encoding",
                                        "content-disposition"};
    for (size_t f = 0; f < 3; f++) {
        size_t fl = strlen(names[f]);
        if (kn != fl)
            continue;
        size_t i = 0;
        while (i < fl && lower((unsigned char)key[i]) == (unsigned char)names[f][i])
            i++;
        if (i != fl)
            continue;
        char *d = decode_value(v, vn);
        if (d == NULL)
            return false;
        char **slot = f == 0 ? &nd->ct : f == 1 ? &nd->cte : &nd->cd;
        free(*slot);
        *slot = d;
    }
    return true;
}

static bool starts_ci(const char *s, const char *p)
{
    for (; *p; s++, p++)
        if (lower((unsigned char)*s) != (unsigned char)*p)
            return false;
    return true;
}

/* ["']?(.*?)["']?(?:;|$) from v, '.' not crossing a "\n" that is not the
 * last octet: the capture's end, or NONE */
static size_t lazy_value_end(const char *s, size_t from, size_t n)
{
    for (size_t p = from; p <= n; p++) {
        bool at_end = p == n || (p + 1 == n && s[p] == '\n');
        if (at_end || s[p] == ';')
            return p;
        if ((s[p] == '"' || s[p] == '\'') &&
            (p + 1 == n || s[p + 1] == ';' || (p + 2 == n && s[p + 1] == '\n')))
            return p;
        if (s[p] == '\n')
            return NONE;
    }
    return NONE;
}

/* \bWORD(\*(\d+))?\s*=\s*["']?(.*?)["']?(?:;|$), the leftmost match at or
 * after from, case-insensitive; for name, WORD is (?:file)?name.  star: the
 * RFC 2231 form, its number in *idx.  The value is [*st, *e), the match
 * ends at *mend.  false: no match. */
static bool param_match(const char *s, size_t n, size_t from, const char *word, bool file_prefix,
                        bool star, unsigned long *idx, size_t *st, size_t *e, size_t *mend)
{
    size_t wl = strlen(word);
    for (size_t i = from; i < n; i++) {
        if (i > 0 && word_char((unsigned char)s[i - 1]))
            continue;
        size_t j = i;
        if (file_prefix && n - j >= 4 && starts_ci(s + j, "file") && n - j >= 4 + wl &&
            starts_ci(s + j + 4, word))
            j += 4;
        if (n - j < wl || !starts_ci(s + j, word))
            continue;
        j += wl;
        if (star) {
            if (j >= n || s[j] != '*' || j + 1 >= n || s[j + 1] < '0' || s[j + 1] > '9')
                continue;
            j++;
            unsigned long v = 0;
            while (j < n && s[j] >= '0' && s[j] <= '9') {
                v = v < 100000 ? v * 10 + (unsigned long)(s[j] - '0') : v;
                j++;
            }
            *idx = v;
        }
        /* \s*=\s*: the blanks may take the "\n" too */
        while (j < n && perl_space((unsigned char)s[j]))
            j++;
        if (j >= n || s[j] != '=')
            continue;
        j++;
        while (j < n && perl_space((unsigned char)s[j]))
            j++;
        size_t vs = j;
        if (vs < n && (s[vs] == '"' || s[vs] == '\''))
            vs++;
        size_t ve = lazy_value_end(s, vs, n);
        if (ve == NONE)
            continue;
        size_t m = ve;
        if (m < n && (s[m] == '"' || s[m] == '\''))
            m++;
        if (m < n && s[m] == ';')
            m++;
        *st = vs;
        *e = ve;
        *mend = m > ve ? m : ve;
        return true;
    }
    return false;
}

static char *param_value(const char *s, size_t n, const char *word, bool file_prefix, bool *oom)
{
    size_t st, e, m;
    unsigned long idx;
    if (!param_match(s, n, 0, word, file_prefix, false, &idx, &st, &e, &m))
        return NULL;
    char *v = util_strndup(s + st, e - st);
    if (v == NULL)
        *oom = true;
    return v;
}

#define NAME_PIECES 64

/* RFC 2231's name*0=, name*1=, ... joined in their order (pieces numbered
 * past NAME_PIECES are dropped), as parse_content_type joins them */
static char *continued_name(const char *s, size_t n, bool *oom)
{
    size_t st, e, m;
    unsigned long idx;
    bool first = false;
    for (size_t from = 0; !first && param_match(s, n, from, "name", true, true, &idx, &st, &e, &m);
         from = m > from ? m : from + 1)
        first = idx == 0;
    if (!first)
        return NULL;
    size_t ps[NAME_PIECES], pe[NAME_PIECES];
    bool have[NAME_PIECES] = {false};
    for (size_t from = 0; from < n && param_match(s, n, from, "name", true, true, &idx, &st, &e, &m);
         from = m > from ? m : from + 1)
        if (idx < NAME_PIECES) {
            ps[idx] = st, pe[idx] = e;
            have[idx] = true;
        }
    size_t len = 0;
    for (size_t k = 0; k < NAME_PIECES; k++)
        len += have[k] ? pe[k] - ps[k] : 0;
    char *v = util_malloc(len + 1);
    if (v == NULL) {
        *oom = true;
        return NULL;
    }
    len = 0;
    for (size_t k = 0; k < NAME_PIECES; k++)
        if (have[k]) {
            memcpy(v + len, s + ps[k], pe[k] - ps[k]);
            len += pe[k] - ps[k];
        }
    v[len] = '\0';
    return v;
}

static char *boundary_value(const char *s, size_t n, bool *oom)
{
    for (size_t i = 0; i + 8 <= n; i++) {
        if ((i > 0 && word_char((unsigned char)s[i - 1])) || !starts_ci(s + i, "boundary"))
            continue;
        size_t j = i + 8;
        while (j < n && perl_space((unsigned char)s[j]))
            j++;
        if (j >= n || s[j] != '=')
            continue;
        j++;
        while (j < n && perl_space((unsigned char)s[j]))
            j++;
        size_t st = j, e;
        if (j < n && s[j] == '"') {
            e = j + 1;
            while (e < n && s[e] != '"')
                e++;
            if (e == j + 1)
                continue;
            st = j + 1;
        } else {
            e = j;
            while (e < n && !perl_space((unsigned char)s[e]) && s[e] != '"' && s[e] != ';')
                e++;
            if (e == j || (e < n && s[e] == '"'))
                continue;
        }
        char *v = util_strndup(s + st, e - st);
        if (v == NULL)
            *oom = true;
        return v;
    }
    return NULL;
}

void sa_mime_ct_free(struct sa_mime_ct *ct)
{
    free(ct->type);
    free(ct->boundary);
    free(ct->charset);
    free(ct->name);
    *ct = (struct sa_mime_ct){0};
}

bool sa_mime_content_type(const char *value, struct sa_mime_ct *out)
{
    *out = (struct sa_mime_ct){0};
    /* get_header's value ends with "\n" */
    char *s;
    if (value == NULL) {
        out->missing = true;
        s = util_strdup("text/plain; charset=us-ascii");
    } else {
        s = NULL;
        if (util_asprintf(&s, "%s\n", value) < 0)
            s = NULL;
    }
    if (s == NULL)
        return false;
    size_t n = strlen(s);
    bool oom = false;
    out->boundary = boundary_value(s, n, &oom);
    out->charset = param_value(s, n, "charset", false, &oom);
    out->name = param_value(s, n, "name", true, &oom);
    if (!oom && (out->name == NULL || out->name[0] == '\0' || strcmp(out->name, "0") == 0)) {
        char *c = continued_name(s, n, &oom);
        if (c != NULL) {
            free(out->name);
            out->name = c;
        }
    }
    /* the type: the first "a/b" with no blank in b, lower-cased */
    size_t i = 0;
    while (i < n && perl_space((unsigned char)s[i]))
        i++;
    size_t e = i;
    while (e < n && s[e] != ';')
        e++;
    size_t k = i;
    while (k < e && s[k] != '/')
        k++;
    if (k < e) {
        k++;
        while (k < e && s[k] != '/' && !perl_space((unsigned char)s[k]))
            k++;
    }
    char *t = util_strndup(s + i, k - i);
    free(s);
    if (t == NULL || oom) {
        free(t);
        sa_mime_ct_free(out);
        return false;
    }
    for (char *p = t; *p; p++)
        *p = (char)lower((unsigned char)*p);
    if (*t == '\0')
        out->missing = true;
    bool text = strncmp(t, "text", 4) == 0 && !word_char((unsigned char)t[4]);
    if (*t == '\0' || (text && strcmp(t, "text/x-vcard") != 0 && strcmp(t, "text/calendar") != 0 &&
                       strcmp(t, "text/html") != 0)) {
        free(t);
        if ((t = util_strdup("text/plain")) == NULL) {
            sa_mime_ct_free(out);
            return false;
        }
    }
    /* tr/\000-\040\177-\377\042\050\051\054\072-\077\100\133-\135//d */
    size_t w = 0;
    for (size_t r = 0; t[r]; r++) {
        unsigned char c = (unsigned char)t[r];
        if (c <= 040 || c >= 0177 || c == 042 || c == 050 || c == 051 || c == 054 ||
            (c >= 072 && c <= 077) || c == 0100 || (c >= 0133 && c <= 0135))
            continue;
        t[w++] = (char)c;
    }
    t[w] = '\0';
    out->type = t;
    if (out->boundary) {
        size_t bw = 0;
        for (size_t r = 0; out->boundary[r]; r++)
            if (out->boundary[r] != '"')
                out->boundary[bw++] = out->boundary[r];
        out->boundary[bw] = '\0';
    }
    return true;
}

/* Message->new: the header of one message, its body prepared and queued;
 * the root's index, or NONE when out of memory. */
static size_t message_new(struct build *bd, const char *msg, size_t len, size_t parent,
                          unsigned subparse, bool top)
{
    struct sa_mime *t = bd->t;
    size_t root = new_node(bd, parent);
    if (root == NONE)
        return NONE;
    /* split(/^/m): the lines, each with its "\n" */
    size_t a = t->nlines;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(msg + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - msg) + 1 : len;
        if (!push_line(bd, msg + i, e - i, false))
            return NONE;
        i = e;
    }
    if (t->nlines == a && !push_line(bd, nl_line, 1, false))
        return NONE;
    /* the mbox separator: /^From\s+(?!:)/ */
    {
        const struct sa_mime_line *l = &t->lines[a];
        size_t ln = sa_mime_line_len(l), k = 4;
        if (ln > 4 && memcmp(l->p, "From", 4) == 0 && perl_space(lat(l, 4))) {
            while (k < ln && perl_space(lat(l, k)))
                k++;
            if (k - 4 >= 2 || k >= ln || lat(l, k) != ':')
                a++;
        }
    }
    size_t b = t->nlines;
    bool squash = false;
    if (a < b) {
        const struct sa_mime_line *f = &t->lines[a], *z = &t->lines[b - 1];
        squash = (f->n >= 2 && memmem(f->p, f->n, "\r\n", 2) != NULL) ||
                 (z->n >= 2 && memmem(z->p, z->n, "\r\n", 2) != NULL);
    }
    struct sa_mime_node *nd = &t->nodes[root];
    /* the header section */
    char *hdr = NULL;
    size_t hn = 0, hcap = 0;
    bool have_hdr = false;
    unsigned errors = 0;
    size_t cur = a;
    bool missing_sep = false, truncated = false;
    for (;;) {
        bool eof = cur >= b;
        struct sa_mime_line line = eof ? (struct sa_mime_line){nl_line, 1, false} : t->lines[cur++];
        size_t ll = sa_mime_line_len(&line);
        bool cont = ll > 0 && (lat(&line, 0) == ' ' || lat(&line, 0) == '\t');
        if (!cont && have_hdr) {
            /* split(/:/s, $header, 2); squashed: every CRLF is "\n" */
            const char *colon = memchr(hdr, ':', hn);
            if (colon != NULL) {
                size_t kn = (size_t)(colon - hdr);
                while (kn > 0 && (hdr[kn - 1] == ' ' || hdr[kn - 1] == '\t'))
                    kn--;
                char *v = hdr + (colon - hdr) + 1;
                size_t vn = hn - (size_t)(v - hdr);
                if (squash) {
                    size_t w = 0;
                    for (size_t r = 0; r < vn; r++)
                        if (!(v[r] == '\r' && r + 1 < vn && v[r + 1] == '\n'))
                            v[w++] = v[r];
                    vn = w;
                }
                if (kn > MAX_HEADER_KEY)
                    kn = MAX_HEADER_KEY, truncated = true;
                if (vn > MAX_HEADER_VALUE)
                    vn = MAX_HEADER_VALUE, truncated = true;
                if (!set_header(nd, hdr, kn, v, vn)) {
                    free(hdr);
                    return nomem(bd), NONE;
                }
            }
            have_hdr = false;
        }
        if (cont || !eof) {
            bool end = squash ? ((line.n == 1 && line.p[0] == '\n') ||
                                 (line.n == 2 && line.p[0] == '\r' && line.p[1] == '\n'))
                              : (line.n == 1 && line.p[0] == '\n' && !line.nl);
            if (!cont) {
                if (end)
                    break;
                if (ll >= 2 && lat(&line, 0) == '-' && lat(&line, 1) == '-') {
                    missing_sep = true;
                    cur--;
                    break;
                }
                if (!header_start(&line, true) && ++errors > 3) {
                    missing_sep = true;
                    cur--;
                    break;
                }
                hn = 0;
            }
            if (util_grow(&hdr, &hcap, hn + ll + 1, 1) != 0) {
                free(hdr);
                return nomem(bd), NONE;
            }
            memcpy(hdr + hn, line.p, line.n);
            hn += line.n;
            if (line.nl)
                hdr[hn++] = '\n';
            have_hdr = true;
            continue;
        }
        missing_sep = true; /* the end of the input came first */
        break;
    }
    free(hdr);
    if (top) {
        t->missing_head_body_separator = missing_sep;
        t->truncated_header = truncated;
        t->pristine_body_off = cur < b ? (size_t)(t->lines[cur].p - msg) : len;
    }
    /* the body: its own copy of the line list, CRLFs squashed, long runs of
     * blank lines cut */
    size_t body = t->nlines;
    for (size_t i = cur; i < b; i++) {
        struct sa_mime_line l = t->lines[i];
        if (squash && !l.nl && l.n >= 2 && l.p[l.n - 2] == '\r' && l.p[l.n - 1] == '\n')
            l.n -= 2, l.nl = true;
        if (!push_line(bd, l.p, l.n, l.nl))
            return NONE;
    }
    size_t nb = t->nlines - body;
    if (nb > 0) {
        bool *drop = util_calloc(nb, sizeof(bool));
        if (drop == NULL)
            return nomem(bd), NONE;
        size_t start = NONE;
        for (size_t c = nb; c-- > 0;) {
            if (all_space_from(&t->lines[body + c], 0)) {
                if (start == NONE)
                    start = c;
                if (c != 0)
                    continue;
            }
            if (start != NONE) {
                size_t num = start - c;
                if (num > MAX_BLANK_LINES)
                    for (size_t k = c + 2; k < c + 2 + num - MAX_BLANK_LINES && k < nb; k++)
                        drop[k] = true;
                start = NONE;
            }
        }
        size_t w = body;
        for (size_t i = 0; i < nb; i++)
            if (!drop[i])
                t->lines[w++] = t->lines[body + i];
        t->nlines = w;
        free(drop);
    }
    nd = &t->nodes[root];
    struct sa_mime_ct ct;
    if (!sa_mime_content_type(nd->ct, &ct))
        return nomem(bd), NONE;
    nd->type = ct.type;
    ct.type = NULL;
    size_t e = t->nlines;
    if (strncmp(nd->type, "multipart/", 10) == 0 && e - body > 1) {
        const struct sa_mime_line *l0 = &t->lines[body];
        bool text = !all_space_from(l0, 0);
        bool starts = false;
        if (ct.boundary != NULL) {
            size_t bl = strlen(ct.boundary);
            starts = sa_mime_line_len(l0) >= 2 + bl && lat(l0, 0) == '-' && lat(l0, 1) == '-';
            for (size_t i = 0; starts && i < bl; i++)
                starts = lat(l0, 2 + i) == (unsigned char)ct.boundary[i];
        }
        if (text && !starts) {
            /* a blank line first, so the preamble is one */
            if (!push_line(bd, nl_line, 1, false)) {
                sa_mime_ct_free(&ct);
                return NONE;
            }
            memmove(&t->lines[body + 1], &t->lines[body], (e - body) * sizeof(*t->lines));
            t->lines[body] = (struct sa_mime_line){nl_line, 1, false};
            e++;
        }
    }
    bool ok = enqueue(bd, root, ct.boundary, body, e, subparse);
    sa_mime_ct_free(&ct);
    return ok ? root : NONE;
}

/* split(/:\s*\/, $header, 2) and header() */
static bool part_header(struct sa_mime_node *nd, const char *h, size_t hn, char **last_key,
                        size_t *last_kn)
{
    const char *colon = memchr(h, ':', hn);
    if (colon == NULL)
        return true;
    size_t kn = (size_t)(colon - h);
    const char *v = colon + 1;
    while (v < h + hn && perl_space((unsigned char)*v))
        v++;
    *last_key = (char *)h;
    *last_kn = kn;
    return set_header(nd, h, kn, v, (size_t)(h + hn - v));
}

static bool set_type(struct sa_mime_node *nd, const char *type)
{
    char *c = util_strdup(type);
    if (c == NULL)
        return false;
    free(nd->type);
    nd->type = c;
    return true;
}

static void parse_multipart(struct build *bd, struct qitem *it)
{
    struct sa_mime *t = bd->t;
    const char *B = it->boundary;
    unsigned subparse = it->subparse - 1;
    size_t a = it->a, b = it->b;
    bool nested = false;
    /* the preamble: up to the first boundary line */
    for (size_t i = a; i < b; i++) {
        if (boundary_line(&t->lines[i], B, false) == 1) {
            long *st = bstate(bd, B);
            if (st == NULL)
                return;
            *st = 1;
            if (i + 1 < b && !header_start(&t->lines[i + 1], false))
                t->missing_mime_headers = true;
            a = i + 1;
            break;
        }
    }
    size_t part = NONE;
    bool in_body = false;
    char *hdr = NULL;
    size_t hn = 0, hcap = 0;
    bool have_hdr = false;
    size_t arr = NONE; /* the part's lines start here, NONE: no array yet */
    size_t partcnt = 0;
    size_t line_count = b - a;
    size_t idx;
    for (idx = a; idx < b; idx++) {
        struct sa_mime_line cur = t->lines[idx];
        if (part == NONE && (part = new_node(bd, it->node)) == NONE)
            goto out;
        int bl = boundary_line(&cur, B, true);
        bool found_end = bl != 0, found_last = bl == 2;
        if (found_end && nested) {
            found_end = false;
            if (found_last)
                nested = false;
        }
        if (--line_count == 0 || found_end) {
            if (!found_end) {
                if (arr == NONE)
                    arr = t->nlines;
                if (!push_split(bd, cur))
                    goto out;
            } else if (arr != NONE && t->nlines > arr) {
                struct sa_mime_line *l = &t->lines[t->nlines - 1];
                if (l->nl)
                    l->nl = false;
                else if (l->n > 0 && l->p[l->n - 1] == '\n')
                    l->n--;
                if (l->n == 0 && !l->nl)
                    t->nlines--;
            } else if (arr == NONE) {
                arr = t->nlines;
            }
            struct sa_mime_node *nd = &t->nodes[part];
            struct sa_mime_ct ct;
            if (!sa_mime_content_type(nd->ct, &ct)) {
                bd->nomem = true;
                goto out;
            }
            const char *type = ct.type;
            if (ct.missing && strcmp(t->nodes[it->node].type, "multipart/digest") == 0)
                type = "message/rfc822";
            bool ok = set_type(nd, type);
            ok = ok && enqueue(bd, part, ct.boundary ? ct.boundary : B, arr == NONE ? 0 : arr,
                               arr == NONE ? 0 : t->nlines, subparse);
            sa_mime_ct_free(&ct);
            if (!ok) {
                bd->nomem = true;
                goto out;
            }
            if (found_last) {
                long *st = bstate(bd, B);
                if (st == NULL)
                    goto out;
                (*st)--;
                idx++;
                break;
            } else if (line_count && !header_start(&t->lines[idx + 1], false)) {
                t->missing_mime_headers = true;
            }
            if (++partcnt == MAX_PARTS) {
                t->mimepart_limit_exceeded = true;
                free(hdr);
                return;
            }
            in_body = false;
            part = NONE;
            arr = NONE;
            have_hdr = false;
            continue;
        }
        if (!in_body) {
            size_t ll = sa_mime_line_len(&cur);
            if (header_start(&cur, true) ||
                (have_hdr && ll > 0 && (lat(&cur, 0) == ' ' || lat(&cur, 0) == '\t'))) {
                bool cont = !header_start(&cur, true);
                char *lk;
                size_t lkn;
                if (!cont && have_hdr && !part_header(&t->nodes[part], hdr, hn, &lk, &lkn)) {
                    bd->nomem = true;
                    goto out;
                }
                if (!cont)
                    hn = 0;
                if (util_grow(&hdr, &hcap, hn + ll + 1, 1) != 0) {
                    bd->nomem = true;
                    goto out;
                }
                memcpy(hdr + hn, cur.p, cur.n);
                hn += cur.n;
                if (cur.nl)
                    hdr[hn++] = '\n';
                have_hdr = true;
                continue;
            }
            if (have_hdr) {
                char *lk = NULL;
                size_t lkn = 0;
                if (!part_header(&t->nodes[part], hdr, hn, &lk, &lkn)) {
                    bd->nomem = true;
                    goto out;
                }
                if (lk != NULL && lkn == 12 && starts_ci(lk, "content-type")) {
                    struct sa_mime_ct ct;
                    if (!sa_mime_content_type(t->nodes[part].ct, &ct)) {
                        bd->nomem = true;
                        goto out;
                    }
                    if (ct.boundary != NULL && strcmp(ct.boundary, B) == 0)
                        nested = true;
                    sa_mime_ct_free(&ct);
                }
            }
            in_body = true;
            size_t n = sa_mime_line_len(&cur);
            if (n == 0 || (n == 1 && (lat(&cur, 0) == '\n' || lat(&cur, 0) == '\r')) ||
                (n == 2 && lat(&cur, 0) == '\r' && lat(&cur, 1) == '\n'))
                continue;
            t->missing_mime_head_body_separator = true;
        }
        if (arr == NONE)
            arr = t->nlines;
        if (!push_split(bd, cur))
            goto out;
    }
    /* the epilogue: any text after the closing boundary */
    for (; line_count > 0 && idx < b; line_count--, idx++) {
        const struct sa_mime_line *l = &t->lines[idx];
        size_t n = sa_mime_line_len(l);
        bool text = false;
        for (size_t i = 0; i < n && !text; i++)
            text = !perl_space(lat(l, i)) && lat(l, i) != '.';
        if (text) {
            t->mime_epilogue_exists = true;
            break;
        }
    }
out:
    free(hdr);
    /* a part opened but never closed (out of memory) has no type yet */
    if (part != NONE && t->nodes[part].type == NULL && !set_type(&t->nodes[part], "text/plain"))
        bd->nomem = true;
}

static void parse_normal(struct build *bd, struct qitem *it)
{
    struct sa_mime_node *nd = &bd->t->nodes[it->node];
    struct sa_mime_ct ct;
    if (!sa_mime_content_type(nd->ct, &ct)) {
        bd->nomem = true;
        return;
    }
    if (!ct.missing &&
        !set_type(nd, strncmp(ct.type, "multipart/", 10) != 0 || it->boundary ? ct.type
                                                                               : "text/plain"))
        bd->nomem = true;
    /* the name: Content-Disposition's name=, else Content-Type's */
    const char *cd = nd->cd ? nd->cd : "";
    size_t cn = strlen(cd);
    for (size_t i = 0; i + 5 <= cn && nd->name == NULL; i++) {
        if (!starts_ci(cd + i, "name="))
            continue;
        size_t j = i + 5, w = j;
        while (w < cn && perl_space((unsigned char)cd[w]))
            w++;
        size_t st = w < cn && cd[w] == '"' ? w + 1 : w, e = st;
        while (e < cn && cd[e] != '"' && cd[e] != ';')
            e++;
        if (e == st) {
            /* the blanks themselves, when nothing follows them */
            st = j;
            e = j;
            while (e < cn && cd[e] != '"' && cd[e] != ';')
                e++;
            if (e == st)
                continue;
        }
        if ((nd->name = util_strndup(cd + st, e - st)) == NULL)
            bd->nomem = true;
    }
    if (nd->name == NULL && ct.name != NULL && ct.name[0] != '\0' &&
        !(ct.name[0] == '0' && ct.name[1] == '\0')) {
        nd->name = ct.name;
        ct.name = NULL;
    }
    sa_mime_ct_free(&ct);
    nd->leaf = true;
    nd->line0 = it->a;
    nd->nlines = it->b - it->a;
}

static void parse_queue(struct build *bd)
{
    while (bd->qhead < bd->qn && !bd->nomem) {
        struct qitem it = bd->q[bd->qhead++];
        const char *type = bd->t->nodes[it.node].type;
        if (strncmp(type, "multipart/", 10) == 0 && it.boundary && it.subparse > 0) {
            parse_multipart(bd, &it);
        } else {
            parse_normal(bd, &it);
            type = bd->t->nodes[it.node].type;
            if (!bd->nomem && strncmp(type, "message/", 8) == 0 &&
                strcmp(type, "message/partial") != 0 && it.subparse > 0 &&
                (strcmp(type, "message/rfc822") == 0 || strcmp(type, "message/global") == 0)) {
                size_t n = 0;
                char *d = sa_mime_decode(bd->t, it.node, &n);
                d = keep_buf(bd, d, n);
                if (d != NULL && n > 0) {
                    bd->t->nodes[it.node].leaf = false;
                    bd->t->nodes[it.node].nlines = 0;
                    message_new(bd, d, n, it.node, it.subparse - 1, false);
                }
            }
        }
        free(it.boundary);
        bd->q[bd->qhead - 1].boundary = NULL;
    }
}

/* the nodes in find_parts order: pre-order, children in order */
static bool preorder(struct build *bd)
{
    struct sa_mime *t = bd->t;
    size_t n = t->nnodes;
    size_t *order = util_mallocarray(n ? n : 1, sizeof(size_t));
    size_t *stack = util_mallocarray(n ? n : 1, sizeof(size_t));
    size_t *newidx = util_mallocarray(n ? n : 1, sizeof(size_t));
    struct sa_mime_node *nv = util_mallocarray(n ? n : 1, sizeof(*nv));
    bool ok = order && stack && newidx && nv;
    if (ok && n > 0) {
        size_t no = 0, sp = 0;
        stack[sp++] = 0;
        while (sp > 0) {
            size_t x = stack[--sp];
            order[no++] = x;
            /* children pushed last first, so the first comes out first */
            size_t kids = 0;
            for (size_t c = bd->links[x].first; c != NONE; c = bd->links[c].next)
                kids++;
            size_t base = sp;
            sp += kids;
            size_t k = 0;
            for (size_t c = bd->links[x].first; c != NONE; c = bd->links[c].next, k++)
                stack[base + kids - 1 - k] = c;
        }
        for (size_t i = 0; i < no; i++)
            newidx[order[i]] = i;
        for (size_t i = 0; i < no; i++) {
            nv[i] = t->nodes[order[i]];
            size_t p = nv[i].parent;
            nv[i].parent = p == NONE ? NONE : newidx[p];
            nv[i].depth = p == NONE ? 0 : nv[nv[i].parent].depth + 1;
        }
        free(t->nodes);
        t->nodes = nv;
        nv = NULL;
    }
    free(order);
    free(stack);
    free(newidx);
    free(nv);
    return ok;
}

struct sa_mime *sa_mime_parse(const char *msg, size_t len)
{
    struct build bd = {0};
    bd.t = util_calloc(1, sizeof(*bd.t));
    if (bd.t == NULL)
        return NULL;
    if (message_new(&bd, msg, len, NONE, SUBPARSE_DEPTH, true) != NONE)
        parse_queue(&bd);
    for (size_t i = 0; i < bd.nbs; i++) {
        if (bd.bs[i].state != 0)
            bd.t->missing_boundary = true;
        free(bd.bs[i].b);
    }
    free(bd.bs);
    for (size_t i = bd.qhead; i < bd.qn; i++)
        free(bd.q[i].boundary);
    free(bd.q);
    /* a node never typed (out of memory on the way) */
    for (size_t i = 0; i < bd.t->nnodes; i++)
        if (bd.t->nodes[i].type == NULL && !set_type(&bd.t->nodes[i], "text/plain"))
            bd.nomem = true;
    if (!bd.nomem && !preorder(&bd))
        bd.nomem = true;
    free(bd.links);
    if (bd.nomem) {
        sa_mime_free(bd.t);
        return NULL;
    }
    return bd.t;
}

void sa_mime_free(struct sa_mime *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nnodes; i++) {
        free(t->nodes[i].type);
        free(t->nodes[i].ct);
        free(t->nodes[i].cte);
        free(t->nodes[i].cd);
        free(t->nodes[i].name);
    }
    free(t->nodes);
    free(t->lines);
    for (size_t i = 0; i < t->nbufs; i++)
        free(t->bufs[i]);
    free(t->bufs);
    free(t->buf_lens);
    free(t->mime_facts);
    free(t->image_facts);
    free(t->alt_facts);
    free(t);
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Util::qp_decode: blanks before a line end dropped, soft breaks
 * joined, =XX decoded; then CRLF made "\n" */
static size_t qp_decode(char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ' || s[i] == '\t') {
            size_t j = i;
            while (j < n && (s[j] == ' ' || s[j] == '\t'))
                j++;
            if (j < n && (s[j] == '\n' || (s[j] == '\r' && j + 1 < n && s[j + 1] == '\n'))) {
                i = j - 1;
                continue;
            }
        }
        s[w++] = s[i];
    }
    n = w, w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' && i + 1 < n && s[i + 1] == '\n') {
            i++;
            continue;
        }
        if (s[i] == '=' && i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
            i += 2;
            continue;
        }
        s[w++] = s[i];
    }
    n = w, w = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '=' && i + 2 < n && (h = hexval((unsigned char)s[i + 1])) >= 0 &&
            (l = hexval((unsigned char)s[i + 2])) >= 0) {
            s[w++] = (char)(h * 16 + l);
            i += 2;
            continue;
        }
        s[w++] = s[i];
    }
    return w;
}

/* Util::base64_decode over the text with its blanks removed */
static size_t b64_decode(char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (!perl_space((unsigned char)s[i]))
            s[w++] = s[i];
    n = w;
    bool clean = n % 4 == 0 && n >= 2;
    for (size_t i = 0; i < n && clean; i++)
        clean = b64val((unsigned char)s[i]) >= 0 || s[i] == '=';
    /* MIME::Base64 after inner '=' runs are made 'A'; else the uudecode
     * fallback, where '=' is the last value */
    size_t end = n;
    while (end > 0 && s[end - 1] == '=')
        end--;
    if (!clean) {
        w = 0;
        for (size_t i = 0; i < end; i++)
            if (b64val((unsigned char)s[i]) >= 0 || s[i] == '=')
                s[w++] = s[i];
        end = w;
        if (end % 4 == 1)
            end--;
    }
    uint32_t acc = 0;
    unsigned bits = 0;
    w = 0;
    for (size_t i = 0; i < end; i++) {
        int v = s[i] == '=' ? (clean ? 0 : 63) : b64val((unsigned char)s[i]);
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            s[w++] = (char)((acc >> bits) & 0xff);
        }
    }
    return w;
}

static size_t crlf_to_lf(char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n'))
            s[w++] = s[i];
    return w;
}

char *sa_mime_decode(const struct sa_mime *t, size_t node, size_t *n)
{
    const struct sa_mime_node *nd = &t->nodes[node];
    size_t total = 0;
    for (size_t i = 0; i < nd->nlines; i++)
        total += sa_mime_line_len(&t->lines[nd->line0 + i]);
    char *s = util_malloc(total + 1);
    if (s == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < nd->nlines; i++) {
        const struct sa_mime_line *l = &t->lines[nd->line0 + i];
        memcpy(s + k, l->p, l->n);
        k += l->n;
        if (l->nl)
            s[k++] = '\n';
    }
    const char *cte = nd->cte ? nd->cte : "";
    if (strcasecmp(cte, "quoted-printable") == 0) {
        k = crlf_to_lf(s, qp_decode(s, k));
    } else if (strcasecmp(cte, "base64") == 0) {
        k = b64_decode(s, k);
        if (nd->type && (strncmp(nd->type, "text/", 5) == 0 || strncmp(nd->type, "message/", 8) == 0))
            k = crlf_to_lf(s, k);
    }
    s[k] = '\0';
    *n = k;
    return s;
}
