/*
 * sa_eval_alt - SpamAssassin's body eval tests (Plugin::BodyEval) that read
 * the rendered text of single MIME parts, natively, over its MIME tree
 * (sa_mime.h):
 *
 *   multipart_alternative_difference(MIN, MAX)
 *                        of the words (blank-separated runs with a word
 *                        character) of a multipart/alternative's text/html
 *                        parts, rendered, the share (percent) not in its
 *                        text/plain parts as often; the highest over the
 *                        alternatives with HTML words; above MIN (or MIN is
 *                        0) and at most MAX ('undef': no bound)
 *   multipart_alternative_difference_count(RATIO, MINHTML)
 *                        the last such alternative has more than MINHTML
 *                        distinct HTML words, and its distinct text words
 *                        per HTML word are more than RATIO
 *   check_stock_info(MIN)
 *                        the distinct stock-tip labels ("Symbol:",
 *                        "Target price:", ...) of the first text/plain
 *                        part, rendered, at least MIN (or MIN is 0)
 *
 * What it promises: the parts are found, decoded and rendered as
 * Message::Node does (an HTML part through SpamAssassin's renderer,
 * rules_html_text_sa; a part named .htm/.html/.shtml is HTML), and an
 * alternative that is only text/html and text/calendar is skipped, as
 * BodyEval skips it; the word sets are computed once per message.
 *
 * What it assumes: charsets are not converted (normalize_charset is off,
 * SpamAssassin's default); an octet above 127 is a word character when the
 * part's charset is US-ASCII, UTF-8 or absent (SpamAssassin reads such text
 * as UTF-8 characters), and not otherwise.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/rules_html.h"
#include "rules/rules_int.h"
#include "rules/sa_eval.h"
#include "rules/sa_mime.h"
#include "util/alloc.h"

#define MAX_BODY_LINE 2048

struct sa_alt_facts {
    double madiff, madiff_html, madiff_text;
};

struct word {
    const char *p;
    size_t n;
    bool html;
};

struct words {
    struct word *v;
    size_t n, cap;
};

static bool perl_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static void no_uri(void *arg, const char *uri, size_t len)
{
    (void)arg, (void)uri, (void)len;
}

/* The rendered text of node i (malloc'ed, *n octets) and its type; NULL
 * with *type NULL when SpamAssassin renders nothing of it; NULL with a
 * type when out of memory. */
static char *rendered(const struct sa_mime *t, size_t i, size_t *n, const char **type,
                      bool *wide)
{
    const struct sa_mime_node *nd = &t->nodes[i];
    const char *eff = nd->type;
    size_t nl = nd->name ? strlen(nd->name) : 0;
    for (size_t k = nl; k > 0 && eff == nd->type; k--)
        if (nd->name[k - 1] == '.') {
            const char *x = nd->name + k;
            if (strcasecmp(x, "htm") == 0 || strcasecmp(x, "html") == 0 ||
                strcasecmp(x, "shtm") == 0 || strcasecmp(x, "shtml") == 0)
                eff = "text/html";
            break;
        }
    *type = NULL;
    if (strcmp(eff, "text/plain") != 0 && strcmp(eff, "text/html") != 0)
        return NULL;
    *type = eff;
    struct sa_mime_ct ct;
    if (!sa_mime_content_type(nd->ct, &ct))
        return NULL;
    /* _parse_normal keeps the charset of the Content-Type the node had */
    const char *cs = ct.charset;
    *wide = cs == NULL || strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "utf-8") == 0;
    sa_mime_ct_free(&ct);
    char *d = nd->leaf ? sa_mime_decode(t, i, n) : util_strdup("");
    if (d == NULL)
        return NULL;
    if (!nd->leaf)
        *n = 0;
    if (*n == 0 || strcmp(eff, "text/html") != 0)
        return d;
    struct rules_buf b = {0};
    rules_html_text_sa(d, *n, &b, no_uri, NULL);
    free(d);
    char *r = rules_buf_cstr(&b);
    if (r == NULL) {
        free(b.p);
        return NULL;
    }
    *n = b.len;
    return r;
}

/* an HTML part with an <img> tag: its only "word" when it has none */
static bool has_img(const struct sa_mime *t, size_t i)
{
    size_t n;
    char *d = sa_mime_decode(t, i, &n);
    bool img = false;
    for (size_t k = 0; d != NULL && k + 4 < n && !img; k++)
        img = d[k] == '<' && strncasecmp(d + k + 1, "img", 3) == 0 &&
              (perl_space((unsigned char)d[k + 4]) || d[k + 4] == '>' || d[k + 4] == '/');
    free(d);
    return img;
}

static int add_words(struct words *w, const char *s, size_t n, bool html, bool wide)
{
    for (size_t i = 0; i < n;) {
        while (i < n && perl_space((unsigned char)s[i]))
            i++;
        size_t st = i;
        bool word = false;
        for (; i < n && !perl_space((unsigned char)s[i]); i++) {
            unsigned char c = (unsigned char)s[i];
            word |= (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || (c >= 0x80 && wide);
        }
        if (!word)
            continue;
        if (util_grow(&w->v, &w->cap, w->n + 1, sizeof(*w->v)) != 0)
            return -1;
        w->v[w->n++] = (struct word){s + st, i - st, html};
    }
    return 0;
}

static int word_cmp(const void *a, const void *b)
{
    const struct word *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, m);
    if (c != 0)
        return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

/* content_summary is (multipart/alternative, text/html, text/calendar) */
static bool calendar_only(const struct sa_mime *t)
{
    if (strcmp(t->nodes[0].type, "multipart/alternative") != 0 || t->nodes[0].leaf)
        return false;
    size_t kids[3], nk = 0;
    for (size_t i = 1; i < t->nnodes; i++)
        if (t->nodes[i].parent == 0) {
            if (nk == 2)
                return false;
            kids[nk++] = i;
        }
    if (nk != 2)
        return false;
    /* each child's summary: its type and its descendants' */
    size_t end0 = kids[1], end1 = t->nnodes;
    return end0 == kids[0] + 1 && end1 == kids[1] + 1 &&
           strcmp(t->nodes[kids[0]].type, "text/html") == 0 &&
           strcmp(t->nodes[kids[1]].type, "text/calendar") == 0;
}

/* qr@^multipart/alternative\b@ */
static bool is_alternative(const char *ty)
{
    if (strncmp(ty, "multipart/alternative", 21) != 0)
        return false;
    char c = ty[21];
    return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_');
}

static struct sa_alt_facts *facts(struct rules_msg *m)
{
    struct sa_mime *t = rules_msg_sa_mime(m);
    if (t == NULL)
        return NULL;
    if (t->alt_facts != NULL)
        return t->alt_facts;
    struct sa_alt_facts *f = util_calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    bool ok = true, any = false;
    for (size_t i = 0; i < t->nnodes; i++)
        any |= is_alternative(t->nodes[i].type);
    if (any && calendar_only(t))
        any = false;
    for (size_t a = 0; any && ok && a < t->nnodes; a++) {
        const struct sa_mime_node *an = &t->nodes[a];
        if (!is_alternative(an->type))
            continue;
        /* find_parts(qr@^text\b@) under it, itself included */
        struct words w = {0};
        char **bufs = NULL;
        size_t nb = 0, bcap = 0;
        bool img_word = false;
        for (size_t k = a; ok && k < t->nnodes && (k == a || t->nodes[k].depth > an->depth);
             k++) {
            const char *ty = t->nodes[k].type;
            if (strncmp(ty, "text", 4) != 0 ||
                (ty[4] >= 'a' && ty[4] <= 'z') || (ty[4] >= '0' && ty[4] <= '9') || ty[4] == '_')
                continue;
            size_t n;
            const char *rtype;
            bool wide = false;
            char *r = rendered(t, k, &n, &rtype, &wide);
            if (r == NULL) {
                ok = rtype == NULL;
                continue;
            }
            if (util_grow(&bufs, &bcap, nb + 1, sizeof(char *)) != 0) {
                free(r);
                ok = false;
                break;
            }
            bufs[nb++] = r;
            bool html = strcmp(rtype, "text/html") == 0;
            size_t before = w.n;
            bool had_html = false;
            for (size_t j = 0; j < before; j++)
                had_html |= w.v[j].html;
            if (add_words(&w, r, n, html, wide) != 0) {
                ok = false;
                break;
            }
            bool now_html = had_html;
            for (size_t j = before; j < w.n; j++)
                now_html |= w.v[j].html;
            if (html && !now_html && !img_word && has_img(t, k))
                img_word = true;
        }
        if (ok) {
            qsort(w.v, w.n, sizeof(*w.v), word_cmp);
            double orig = img_word ? 1 : 0, text = 0, left = img_word ? 1 : 0;
            for (size_t i = 0; i < w.n;) {
                size_t j = i, nh = 0, nt = 0;
                while (j < w.n && word_cmp(&w.v[i], &w.v[j]) == 0) {
                    nh += w.v[j].html;
                    nt += !w.v[j].html;
                    j++;
                }
                orig += nh > 0;
                text += nt > 0;
                left += nh > 0 && !(nt > 0 && nh <= nt);
                i = j;
            }
            if (orig > 0) {
                f->madiff_html = orig;
                f->madiff_text = text;
                double diff = left / orig * 100;
                if (diff > f->madiff)
                    f->madiff = diff;
            }
        }
        free(w.v);
        for (size_t i = 0; i < nb; i++)
            free(bufs[i]);
        free(bufs);
    }
    if (!ok) {
        free(f);
        return NULL;
    }
    t->alt_facts = f;
    return f;
}

static bool madiff_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 2, 2, why, wn) && sa_eval_number(c, 0, false, why, wn) &&
           sa_eval_number(c, 1, true, why, wn);
}

static int madiff(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_alt_facts *f = facts(m);
    if (f == NULL)
        return -1;
    return (c->num[0] == 0 || f->madiff > c->num[0]) && (c->undef[1] || f->madiff <= c->num[1]);
}

static bool count_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 2, 2, why, wn) && sa_eval_number(c, 0, false, why, wn) &&
           sa_eval_number(c, 1, false, why, wn);
}

static int madiff_count(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_alt_facts *f = facts(m);
    if (f == NULL)
        return -1;
    if (!(f->madiff_html > c->num[1]))
        return 0;
    return f->madiff_text / f->madiff_html > c->num[0];
}

static const char STOCK_KEY[] = "^\\s*([^:\\s][^:\\n]{2,29})\\s*:\\s*\\S";
static const char STOCK_WORD[] =
    "(^trad(?:e|ing)date|company(?:name)?|s\\w?(?:t\\w?o\\w?c\\w?k|y\\w?m(?:\\w?b\\w?o\\w?l)?)|"
    "t(?:arget|icker)|(?:opening|current)p(?:rice)?|p(?:rojected|osition)|expectations|"
    "weeks?high|marketperformance|(?:year|week|month|day|price)(?:target|estimates?)|sector|"
    "r(?:ecommendation|ating))$";

static bool stock_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 1, 1, why, wn) && sa_eval_number(c, 0, false, why, wn) &&
           sa_eval_compile(c, STOCK_KEY, PCRE2_MULTILINE, why, wn) &&
           sa_eval_compile(c, STOCK_WORD, 0, why, wn);
}

/* the labels of one paragraph chunk added to hits (distinct, up to 32) */
static int stock_chunk(const struct sa_eval_call *c, const char *s, size_t n, char hits[][32],
                       size_t *nh)
{
    for (size_t off = 0; off < n;) {
        size_t gs, gl;
        int rc = sa_eval_match(c, 0, NULL, s + off, n - off, 1, &gs, &gl);
        if (rc <= 0)
            return rc;
        char key[40];
        size_t k = 0;
        for (size_t i = 0; i < gl && k < sizeof(key) - 1; i++) {
            char ch = s[off + gs + i];
            if (ch >= 'A' && ch <= 'Z')
                ch = (char)(ch + 32);
            if (ch >= 'a' && ch <= 'z')
                key[k++] = ch;
        }
        key[k] = '\0';
        size_t ws, wl;
        rc = sa_eval_match(c, 1, NULL, key, k, 1, &ws, &wl);
        if (rc < 0)
            return rc;
        if (rc == 1 && wl < 32) {
            bool seen = false;
            for (size_t i = 0; i < *nh && !seen; i++)
                seen = strlen(hits[i]) == wl && memcmp(hits[i], key + ws, wl) == 0;
            if (!seen && *nh < 32) {
                memcpy(hits[*nh], key + ws, wl);
                hits[(*nh)++][wl] = '\0';
            }
        }
        /* /mg goes on after the match: the next ^ is past a line end */
        const char *nl = memchr(s + off + gs + gl, '\n', n - (off + gs + gl));
        if (nl == NULL)
            break;
        off = (size_t)(nl - s) + 1;
    }
    return 0;
}

static int stock_info(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_mime *t = rules_msg_sa_mime(m);
    if (t == NULL)
        return -1;
    size_t count = 0;
    for (size_t i = 0; i < t->nnodes; i++) {
        if (strcmp(t->nodes[i].type, "text/plain") != 0)
            continue;
        size_t n;
        const char *type;
        bool wide;
        char *r = rendered(t, i, &n, &type, &wide);
        if (r == NULL)
            return type == NULL ? 0 : -1;
        char hits[32][32];
        size_t nh = 0;
        int rc = 0;
        /* split_into_array_of_short_paragraphs */
        size_t ofs = 0;
        if (n <= MAX_BODY_LINE) {
            rc = stock_chunk(c, r, n, hits, &nh);
            ofs = n;
        }
        while (rc >= 0 && ofs < n && n - ofs > 2 * MAX_BODY_LINE) {
            const char *seps = "\n> ";
            size_t j = ofs + MAX_BODY_LINE;
            bool found = false;
            for (const char *sp = seps; *sp && !found; sp++) {
                const char *q = memchr(r + ofs + MAX_BODY_LINE, *sp, n - ofs - MAX_BODY_LINE);
                if (q != NULL && (size_t)(q - r) - ofs + 1 <= 2 * MAX_BODY_LINE) {
                    j = (size_t)(q - r);
                    found = true;
                }
            }
            rc = stock_chunk(c, r + ofs, j - ofs + 1, hits, &nh);
            ofs = j + 1;
        }
        if (rc >= 0 && ofs < n)
            rc = stock_chunk(c, r + ofs, n - ofs, hits, &nh);
        free(r);
        if (rc < 0)
            return -1;
        count = nh;
        break;
    }
    return c->num[0] == 0 || (double)count >= c->num[0];
}

const struct sa_eval_def sa_eval_alt_defs[] = {
    {"multipart_alternative_difference", madiff, madiff_check},
    {"multipart_alternative_difference_count", madiff_count, count_check},
    {"check_stock_info", stock_info, stock_check},
    {NULL, NULL, NULL},
};
