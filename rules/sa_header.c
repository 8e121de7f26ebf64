/*
 * sa_header - SpamAssassin's header templates (see sa_header.h).  Each
 * step follows the Perl it emulates, quirks included, since the point is
 * the same octets: Util::wrap merges the first piece of a line without
 * looking at the next one, a non-spam's score equal to the required one is
 * shown 0.1 below it, a Perl number is printed with %.15g.  Every loop is
 * bounded by its input; a wrap prefix wider than the width (Perl would
 * loop forever) is treated as fitting.
 */
#include "rules/sa_header.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules_html.h"
#include "util/alloc.h"

static bool perl_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool printable(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c <= 0x7e);
}

static char *finish(struct rules_buf *b)
{
    char *s = rules_buf_cstr(b);
    if (s == NULL)
        free(b->p);
    return s;
}

/* ---- Util::wrap ---- */

struct piece {
    const char *p;
    size_t n;
};

static size_t vis_len(const char *p, size_t n)
{
    size_t l = n;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\t')
            l += 7;
    return l;
}

char *sa_wrap(const char *s, size_t n, const char *prefix, const char *first, size_t width,
              bool overflow, bool break_after_comma)
{
    /* split(/(BREAK)/, s): pieces and the separators, trailing empties dropped */
    size_t cap = 2 * n + 3, m = 0;
    struct piece *v = util_mallocarray(cap, sizeof(*v));
    if (v == NULL)
        return NULL;
    if (first != NULL && *first != '\0')
        v[m++] = (struct piece){first, strlen(first)};
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (break_after_comma) {
            if (i + 1 < n && (perl_space((unsigned char)s[i]) || s[i] == ',')) {
                v[m++] = (struct piece){s + from, i + 1 - from};
                v[m++] = (struct piece){"", 0};
                from = i + 1;
            }
        } else if (perl_space((unsigned char)s[i])) {
            v[m++] = (struct piece){s + from, i - from};
            v[m++] = (struct piece){s + i, 1};
            from = i + 1;
        }
    }
    v[m++] = (struct piece){s + from, n - from};
    while (m > 0 && v[m - 1].n == 0)
        m--;

    struct rules_buf out = {0}, cur = {0};
    size_t pl = strlen(prefix);
    bool pos_mod = false;
    if (m > 0)
        rules_buf_add(&cur, v[0].p, v[0].n);
    for (size_t k = 1; k < m;) {
        size_t len = vis_len(cur.p, cur.len);
        if (pos_mod && !overflow)
            len += vis_len(v[k].p, v[k].n);
        if (len <= width || (!pos_mod && cur.len == pl && memcmp(cur.p, prefix, pl) == 0)) {
            rules_buf_add(&cur, v[k].p, v[k].n);
            k++;
            pos_mod = true;
        } else {
            while (cur.len > 0 && perl_space((unsigned char)cur.p[cur.len - 1]))
                cur.len--;
            rules_buf_add(&out, cur.p, cur.len);
            rules_buf_addc(&out, '\n');
            cur.len = 0;
            rules_buf_add(&cur, prefix, pl);
            pos_mod = false;
        }
        if (cur.nomem)
            out.nomem = true;
    }
    rules_buf_add(&out, cur.p, cur.len);
    free(cur.p);
    free(v);
    if (cur.nomem)
        out.nomem = true;
    return finish(&out);
}

/* ---- the tags ---- */

static void add_s(struct rules_buf *b, const char *s)
{
    rules_buf_add(b, s, strlen(s));
}

/* Perl's "$number": %.15g */
static void add_num(struct rules_buf *b, double d)
{
    char t[64];
    if (d == 0)
        d = 0; /* no "-0" */
    snprintf(t, sizeof(t), "%.15g", d);
    add_s(b, t);
}

static void add_score(struct rules_buf *b, const struct sa_tags *v, const char *pad, size_t padn)
{
    char sc[64], rq[64];
    snprintf(sc, sizeof(sc), "%2.1f", v->score);
    snprintf(rq, sizeof(rq), "%2.1f", v->required);
    if (!v->spam && !(strtod(sc, NULL) < strtod(rq, NULL))) {
        double d = strtod(rq, NULL) - 0.1;
        snprintf(sc, sizeof(sc), "%.15g", d == 0 ? 0 : d);
    }
    if (pad != NULL && padn > 0) {
        bool zeros = true, blanks = true;
        for (size_t i = 0; i < padn; i++) {
            zeros = zeros && pad[i] == '0';
            blanks = blanks && pad[i] == ' ';
        }
        long count = (long)padn + 3 - (long)strlen(sc);
        if ((zeros || blanks) && count > 0)
            rules_buf_add(b, pad, (size_t)count < padn ? (size_t)count : padn);
    }
    add_s(b, sc);
}

/* The report's score column: "%4.0f" from 10 on, else "%4.1f". */
static void score_col(char *t, size_t n, double s)
{
    if (s >= 10 || s <= -10)
        snprintf(t, n, "%4.0f", s);
    else
        snprintf(t, n, "%4.1f", s);
}

/* check_cleanup's REPORT (terse) or SUMMARY line of each test. */
static void add_lines(struct rules_buf *b, const struct sa_tags *v, bool summary)
{
    for (size_t i = 0; i < v->ntests; i++) {
        const struct sa_test *t = &v->tests[i];
        char sc[64];
        score_col(sc, sizeof(sc), t->score);
        const char *area = t->area ? t->area : "";
        const char *desc = t->desc && *t->desc ? t->desc : "No description available.";
        size_t firstlen = (summary ? 3 : 4) + strlen(t->name) + strlen(sc) + strlen(area);
        char *first = util_malloc(firstlen + 1);
        if (first == NULL) {
            b->nomem = true;
            return;
        }
        memset(first, ' ', firstlen);
        first[firstlen] = '\0';
        char *w = sa_wrap(desc, strlen(desc), summary ? "                            " : "*      ",
                          first, v->wrap_width, false, false);
        free(first);
        if (w == NULL) {
            b->nomem = true;
            return;
        }
        const char *wd = w;
        while (perl_space((unsigned char)*wd))
            wd++;
        if (summary) {
            char name[64];
            snprintf(name, sizeof(name), "%-22s", "");
            add_s(b, sc);
            rules_buf_addc(b, ' ');
            add_s(b, t->name);
            size_t nl = strlen(t->name);
            if (nl < 22)
                rules_buf_add(b, name, 22 - nl);
        } else {
            add_s(b, "* ");
            add_s(b, sc);
            rules_buf_addc(b, ' ');
            add_s(b, t->name);
        }
        rules_buf_addc(b, ' ');
        add_s(b, area);
        add_s(b, wd);
        rules_buf_addc(b, '\n');
        free(w);
    }
}

static void add_list(struct rules_buf *b, const char *const *names, size_t n, bool collapse,
                     const char *sep, size_t sepn)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (collapse && i > 0 && strcmp(names[i], names[i - 1]) == 0)
            continue;
        if (k++ > 0)
            rules_buf_add(b, sep, sepn);
        add_s(b, names[i]);
    }
    if (k == 0)
        add_s(b, "none");
}

static bool tag_is(const char *name, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(name, w, n) == 0;
}

/* Tags SpamAssassin's PerMsgStatus declares that have no value here. */
static const char *const empty_tags[] = {
    "SUBJPREFIX", "RBL",      "LANGUAGES",        "ASN",
    "ASNCIDR",    "AWL",      "AWLMEAN",          "AWLCOUNT",
    "AWLPRESCORE", "DCCB",    "DCCR",             "EXTRACTTEXTCHARS",
    "EXTRACTTEXTWORDS", "EXTRACTTEXTTOOLS", "EXTRACTTEXTTYPES", "EXTRACTTEXTEXTENSIONS",
    "EXTRACTTEXTFLAGS", "EXTRACTTEXTURIS", "DCCREP", "PYZOR",
    "DKIMIDENTITY", "DKIMDOMAIN", "DKIMSELECTOR", "BAYESTC",
    "BAYESTCLEARNED", "BAYESTCSPAMMY", "BAYESTCHAMMY", "HAMMYTOKENS",
    "SPAMMYTOKENS", "TOKENSUMMARY", NULL,
};

/* get_tag_raw: the value of tag name(arg) appended to b, or false when
 * SpamAssassin would have none (the tag then stays as written). */
static bool tag_value(struct rules_buf *b, const struct sa_tags *v, const char *name, size_t n,
                      const char *arg, size_t argn, bool has_arg)
{
    /* Perl's (shift || default): an empty or "0" argument is the default */
    bool arg_set = has_arg && !(argn == 0 || (argn == 1 && arg[0] == '0'));
    if (tag_is(name, n, "YESNO") || tag_is(name, n, "YESNOCAPS")) {
        /* split(/,/, arg, 2): an empty argument gives no field at all */
        const char *spam = NULL, *ham = NULL;
        size_t sn = 0, hn = 0;
        if (has_arg && argn > 0) {
            const char *c = memchr(arg, ',', argn);
            spam = arg;
            sn = c ? (size_t)(c - arg) : argn;
            if (c != NULL) {
                ham = c + 1;
                hn = argn - sn - 1;
            }
        }
        const char *w = v->spam ? (spam ? spam : "Yes") : (ham ? ham : "No");
        size_t wn = v->spam ? (spam ? sn : 3) : (ham ? hn : 2);
        size_t at = b->len;
        rules_buf_add(b, w, wn);
        if (n == 9 && !b->nomem)
            for (size_t i = at; i < b->len; i++)
                if (b->p[i] >= 'a' && b->p[i] <= 'z')
                    b->p[i] = (char)(b->p[i] - 'a' + 'A');
    } else if (tag_is(name, n, "SCORE") || tag_is(name, n, "HITS")) {
        add_score(b, v, has_arg ? arg : NULL, has_arg ? argn : 0);
    } else if (tag_is(name, n, "REQD")) {
        char t[64];
        snprintf(t, sizeof(t), "%2.1f", v->required);
        add_s(b, t);
    } else if (tag_is(name, n, "VERSION")) {
        add_s(b, v->version ? v->version : "");
    } else if (tag_is(name, n, "SUBVERSION")) {
        add_s(b, v->subversion ? v->subversion : "");
    } else if (tag_is(name, n, "HOSTNAME")) {
        add_s(b, v->hostname ? v->hostname : "localhost");
    } else if (tag_is(name, n, "REMOTEHOSTNAME")) {
        add_s(b, "localhost");
    } else if (tag_is(name, n, "REMOTEHOSTADDR")) {
        add_s(b, "127.0.0.1");
    } else if (tag_is(name, n, "CONTACTADDRESS")) {
        add_s(b, v->contact ? v->contact : "");
    } else if (tag_is(name, n, "BAYES")) {
        add_s(b, "0.5");
    } else if (tag_is(name, n, "DATE")) {
        if (v->date == NULL)
            return false;
        add_s(b, v->date);
    } else if (tag_is(name, n, "STARS")) {
        const char *c = arg_set ? arg : "*";
        size_t cn = arg_set ? argn : 1;
        double t = trunc(v->score);
        long stars = t > 50 ? 50 : t > 0 ? (long)t : 0;
        for (long i = 0; i < stars; i++)
            rules_buf_add(b, c, cn);
    } else if (tag_is(name, n, "AUTOLEARN")) {
        add_s(b, v->autolearn ? v->autolearn : "unavailable");
    } else if (tag_is(name, n, "TESTS") || tag_is(name, n, "TESTSSCORES")) {
        const char *sep = arg_set ? arg : ",";
        size_t sepn = arg_set ? argn : 1;
        for (size_t i = 0; i < v->ntests; i++) {
            if (i > 0)
                rules_buf_add(b, sep, sepn);
            add_s(b, v->tests[i].name);
            if (n == 11) {
                rules_buf_addc(b, '=');
                if (v->tests[i].score == 0)
                    rules_buf_addc(b, '0');
                else
                    add_num(b, v->tests[i].score);
            }
        }
        if (v->ntests == 0)
            add_s(b, "none");
    } else if (tag_is(name, n, "SUBTESTS") || tag_is(name, n, "SUBTESTSCOLLAPSED")) {
        add_list(b, v->subtests, v->nsubtests, n > 8, arg_set ? arg : ",", arg_set ? argn : 1);
    } else if (tag_is(name, n, "REPORT")) {
        rules_buf_addc(b, '\n');
        add_lines(b, v, false);
    } else if (tag_is(name, n, "SUMMARY")) {
        add_lines(b, v, true);
    } else if (tag_is(name, n, "RELAYSTRUSTED") || tag_is(name, n, "RELAYSUNTRUSTED") ||
               tag_is(name, n, "RELAYSINTERNAL") || tag_is(name, n, "RELAYSEXTERNAL")) {
        int k = name[6] == 'T' ? 0 : name[6] == 'U' ? 1 : name[6] == 'I' ? 2 : 3;
        if (v->relays[k] == NULL)
            return false;
        add_s(b, v->relays[k]);
    } else {
        for (size_t i = 0; empty_tags[i] != NULL; i++)
            if (tag_is(name, n, empty_tags[i]))
                return true;
        return false;
    }
    return true;
}

/* _([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*(?:\(.*?\))?)_ at t[i]: the match's end
 * (past its last _), or 0.  The only backtracking that can succeed is over
 * the number of _WORD groups, tried from the most. */
static size_t match_tag(const char *t, size_t n, size_t i)
{
    if (i + 2 >= n || t[i] != '_' || !(t[i + 1] >= 'A' && t[i + 1] <= 'Z'))
        return 0;
#define UPDIG(c) (((c) >= 'A' && (c) <= 'Z') || ((c) >= '0' && (c) <= '9'))
    size_t p = i + 2;
    while (p < n && UPDIG(t[p]))
        p++;
    size_t ends[64], ne = 0; /* where each number of groups ends */
    ends[ne++] = p;
    while (p + 1 < n && t[p] == '_' && UPDIG(t[p + 1])) {
        p += 2;
        while (p < n && UPDIG(t[p]))
            p++;
        if (ne < sizeof(ends) / sizeof(ends[0]))
            ends[ne++] = p;
        else
            ends[ne - 1] = p;
    }
    for (size_t k = ne; k-- > 0;) {
        size_t e = ends[k];
        if (e < n && t[e] == '(') {
            for (size_t j = e + 1; j + 1 < n && t[j] != '\n'; j++)
                if (t[j] == ')' && t[j + 1] == '_')
                    return j + 2;
        }
        if (e < n && t[e] == '_')
            return e + 1;
    }
#undef UPDIG
    return 0;
}

char *sa_tags_expand(const struct sa_tags *v, const char *t, size_t n)
{
    struct rules_buf b = {0};
    rules_buf_reserve(&b, n);
    size_t i = 0;
    while (i < n) {
        size_t e = t[i] == '_' ? match_tag(t, n, i) : 0;
        if (e == 0) {
            rules_buf_addc(&b, t[i]);
            i++;
            continue;
        }
        const char *tag = t + i + 1;
        size_t tn = e - i - 2;
        const char *paren = memchr(tag, '(', tn);
        size_t nn = paren ? (size_t)(paren - tag) : tn;
        size_t at = b.len;
        bool known = false;
        /* ADDEDHEADER*: SpamAssassin leaves them, against recursion */
        if (!(nn >= 11 && memcmp(tag, "ADDEDHEADER", 11) == 0))
            known = tag_value(&b, v, tag, nn, paren ? paren + 1 : NULL,
                              paren ? tn - nn - 2 : 0, paren != NULL);
        if (!known) {
            b.len = at;
            rules_buf_add(&b, t + i, e - i);
        }
        i = e;
    }
    return finish(&b);
}

/* ---- _process_header and mime_encode_header ---- */

/* s/^\s*\n//gm */
static void drop_blank_lines(struct rules_buf *b)
{
    size_t w = 0;
    for (size_t i = 0; i < b->len;) {
        if (i == 0 || b->p[i - 1] == '\n') {
            size_t j = i, last = 0;
            bool nl = false;
            while (j < b->len && perl_space((unsigned char)b->p[j])) {
                if (b->p[j] == '\n') {
                    nl = true;
                    last = j;
                }
                j++;
            }
            if (nl) {
                /* the octet before i stays what it was: a line start */
                i = last + 1;
                continue;
            }
        }
        b->p[w++] = b->p[i++];
    }
    b->len = w;
}

static void add_b64(struct rules_buf *b, const unsigned char *s, size_t n)
{
    static const char d[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned x = (unsigned)s[i] << 16;
        if (i + 1 < n)
            x |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            x |= s[i + 2];
        rules_buf_addc(b, d[(x >> 18) & 63]);
        rules_buf_addc(b, d[(x >> 12) & 63]);
        rules_buf_addc(b, i + 1 < n ? d[(x >> 6) & 63] : '=');
        rules_buf_addc(b, i + 2 < n ? d[x & 63] : '=');
    }
}

static void encode_line(struct rules_buf *b, const char *s, size_t n)
{
    size_t end = n; /* before the line end */
    if (end > 0 && s[end - 1] == '\n')
        end -= 1 + (end > 1 && s[end - 2] == '\r');
    bool plain = end == n ? false : true;
    for (size_t i = 0; plain && i < end; i++)
        plain = printable((unsigned char)s[i]);
    if (plain && (end == n - 1 || (end == n - 2 && s[end] == '\r'))) {
        rules_buf_add(b, s, n);
        return;
    }
    /* suffix: from ^ or the first blank of the printable tail to the end */
    size_t tail = end;
    while (tail > 0 && printable((unsigned char)s[tail - 1]))
        tail--;
    size_t suf = n;
    if (tail == 0) {
        suf = 0;
    } else {
        for (size_t i = tail; i < end; i++)
            if (s[i] == ' ' || s[i] == '\t') {
                suf = i;
                break;
            }
        if (suf == n)
            suf = end;
    }
    /* prefix: the leading printable run up to its last blank, or all of it
     * when it reaches the end */
    size_t head = 0;
    while (head < suf && printable((unsigned char)s[head]))
        head++;
    size_t pre = 0;
    if (head == suf) {
        pre = suf;
    } else {
        for (size_t i = head; i-- > 0;)
            if (s[i] == ' ' || s[i] == '\t') {
                pre = i + 1;
                break;
            }
    }
    rules_buf_add(b, s, pre);
    const unsigned char *w = (const unsigned char *)s + pre;
    size_t wn = suf - pre;
    if (wn > 0) {
        size_t enc = 0;
        for (size_t i = 0; i < wn; i++)
            if (w[i] == '=' || w[i] == '?' || w[i] == '_' || w[i] < 0x20 || w[i] >= 0x7f)
                enc++;
        if ((double)(wn + enc * 2) <= 4.0 * (double)(wn + 2) / 3.0) {
            add_s(b, "=?UTF-8?Q?");
            for (size_t i = 0; i < wn; i++) {
                unsigned char c = w[i];
                if (c == ' ') {
                    rules_buf_addc(b, '_');
                } else if (c == '=' || c == '?' || c == '_' || c < 0x20 || c >= 0x7f) {
                    char h[4];
                    snprintf(h, sizeof(h), "=%02X", c);
                    add_s(b, h);
                } else {
                    rules_buf_addc(b, (char)c);
                }
            }
        } else {
            add_s(b, "=?UTF-8?B?");
            add_b64(b, w, wn);
        }
        add_s(b, "?=");
    }
    rules_buf_add(b, s + suf, n - suf);
}

static char *mime_encode(const char *s, size_t n)
{
    struct rules_buf b = {0};
    rules_buf_reserve(&b, n);
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - s) + 1 : n;
        encode_line(&b, s + i, e - i);
        i = e;
    }
    return finish(&b);
}

char *sa_header_value(const struct sa_tags *v, const char *name, const char *tmpl, bool fold)
{
    char *d = sa_tags_expand(v, tmpl, strlen(tmpl));
    if (d == NULL)
        return NULL;
    size_t n = strlen(d);
    while (n > 0 && d[n - 1] == '\n')
        n -= 1 + (n > 1 && d[n - 2] == '\r');
    d[n] = '\0';
    struct rules_buf b = {0};
    if (!fold) {
        for (size_t i = 0; i < n; i++)
            if (d[i] == '\n')
                d[i] = ' ';
        rules_buf_add(&b, d, n);
    } else if (memchr(d, '\n', n) != NULL) {
        /* s/\s*\n\s*\/\n\t/g: each blank run holding a line end */
        for (size_t i = 0; i < n;) {
            size_t j = i;
            bool nl = false;
            while (j < n && perl_space((unsigned char)d[j]))
                nl |= d[j++] == '\n';
            if (j > i && nl) {
                rules_buf_add(&b, "\n\t", 2);
                i = j;
            } else if (j > i) {
                rules_buf_add(&b, d + i, j - i);
                i = j;
            } else {
                rules_buf_addc(&b, d[i++]);
            }
        }
    } else {
        struct rules_buf h = {0};
        add_s(&h, "X-Spam-");
        add_s(&h, name);
        add_s(&h, "!!");
        rules_buf_add(&h, d, n);
        char *w = h.nomem ? NULL : sa_wrap(h.p, h.len, "\t", "", 79, false, true);
        free(h.p);
        if (w == NULL) {
            free(d);
            return NULL;
        }
        rules_buf_add(&b, w, strlen(w));
        free(w);
        drop_blank_lines(&b);
        /* (split(/!!/, $hdr, 2))[1] */
        const char *bang = b.nomem ? NULL : memmem(b.p, b.len, "!!", 2);
        size_t off = bang ? (size_t)(bang - b.p) + 2 : b.len;
        memmove(b.p, b.p + off, b.len - off);
        b.len -= off;
    }
    free(d);
    if (b.nomem) {
        free(b.p);
        return NULL;
    }
    char *r = mime_encode(b.p ? b.p : "", b.len);
    free(b.p);
    return r;
}
