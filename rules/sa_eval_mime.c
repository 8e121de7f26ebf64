/*
 * sa_eval_mime - SpamAssassin's MIME eval tests (Plugin::MIMEEval),
 * natively, over the MIME tree as its parser builds it (sa_mime.h):
 *
 *   check_for_mime(KEY)          a fact of MIMEEval's _check_attachments
 *                                is true: mime_base64_count,
 *                                mime_base64_encoded_text,
 *                                mime_body_html_count, mime_body_text_count,
 *                                mime_faraway_charset, mime_missing_boundary,
 *                                mime_multipart_alternative,
 *                                mime_multipart_ratio, mime_qp_count,
 *                                mime_qp_long_line, mime_qp_ratio,
 *                                mime_ascii_text_illegal,
 *                                mime_text_unicode_ratio, mime_attachment,
 *                                mime_bad_iso_charset, mime_qp_bytes,
 *                                mime_html_charsets,
 *                                mime_checked_attachments; any other key is
 *                                absent there, so never a hit (as
 *                                mimepart_limit_exceeded, which the rules
 *                                ask but _check_attachments never sets)
 *   check_for_mime_html()        the first Content-Type is text/html, or a
 *                                node is
 *   check_for_mime_html_only()   the same, or html nodes and no other text
 *   check_mime_multipart_ratio(MIN, MAX)
 *                                text/plain to text/html raw octets of the
 *                                last alternative pair, in [MIN, MAX)
 *   check_msg_parse_flags(FLAG)  the parser set FLAG on the top message:
 *                                missing_head_body_separator,
 *                                truncated_header,
 *                                missing_mime_head_body_separator,
 *                                missing_mime_headers,
 *                                mime_epilogue_exists,
 *                                mimepart_limit_exceeded
 *   check_for_ascii_text_illegal()
 *                                a us-ascii text/plain line holds NUL, CR or
 *                                an octet above 127
 *   check_abundant_unicode_ratio(R)
 *                                &#xHHHH; entities per octet of 7bit/8bit
 *                                text/plain at least R (R as \d{0,3}\.\d{1,3},
 *                                any other R never hits)
 *   check_for_uppercase(MIN, MAX) the share of capitals among letters and
 *                                digits of the body's lines with words
 *                                (200 octets at least) in (MIN, MAX]; 0 when
 *                                a charset is one that writes in capitals
 *   check_ma_non_text()          a multipart/alternative has a leaf child
 *                                that is not text, multipart/related or
 *                                application/rtf
 *   check_base64_length(MIN[, MAX])
 *                                the longest raw line of a base64 leaf (not
 *                                application/ics) in [MIN, MAX]
 *   check_qp_ratio(MIN)          encoded octets per octet of the
 *                                quoted-printable lines at least MIN
 *
 * What it promises: the facts are computed once per message, on the first
 * call, from the tree that is itself parsed once; they are MIMEEval's,
 * line for line (its regular expressions spelled out in C).  ok_locales is
 * "all" (SpamAssassin's default; smtpgate reads no other), so
 * mime_faraway_charset is always 0, as there.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/rules_int.h"
#include "rules/sa_eval.h"
#include "rules/sa_mime.h"
#include "util/alloc.h"

struct sa_mime_facts {
    double base64_count, base64_encoded_text, body_html_count, body_text_count;
    double missing_boundary, multipart_alternative, multipart_ratio;
    double qp_count, qp_long_line, qp_ratio, ascii_text_illegal, text_unicode_ratio;
    double attachment, qp_bytes;
    bool has_attachment, has_bad_iso, has_qp_bytes, has_html_charsets;
    bool caps_charset; /* a part's charset is one body_charset_is_likely_to_fp names */
    double base64_length;
    double uppercase; /* check_for_uppercase's share, once computed */
    bool uppercase_done;
};

static bool perl_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* /^[-_a-z0-9]*(?:koi|jp|...)[-_a-z0-9]*$/i */
static bool caps_charset(const char *s, size_t n)
{
    static const char *const fp[] = {"koi", "jp",     "jis",          "euc",        "gb",
                                     "big5", "isoir", "cp1251",       "windows-1251",
                                     "georgianps", "pt154", "tis"};
    char low[256];
    if (n >= sizeof(low))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
        low[i] = (char)c;
    }
    low[n] = '\0';
    for (size_t k = 0; k < sizeof(fp) / sizeof(fp[0]); k++)
        if (strstr(low, fp[k]) != NULL)
            return true;
    return false;
}

/* /iso-\S+-\S+\b/i and not /iso-(?:8859-\d{1,2}|2022-(?:jp|kr))\b/ */
static bool bad_iso_charset(const char *s)
{
    size_t n = strlen(s);
    if (n > 512)
        n = 512;
    bool bad = false;
    for (size_t i = 0; i + 4 <= n && !bad; i++) {
        if (strncasecmp(s + i, "iso-", 4) != 0)
            continue;
        size_t run = i + 4; /* the non-blank run after "iso-" */
        while (run < n && !perl_space((unsigned char)s[run]))
            run++;
        for (size_t j = i + 5; j + 1 < run && !bad; j++) {
            if (s[j] != '-')
                continue;
            for (size_t k = j + 2; k <= run && !bad; k++) {
                bool w1 = word_char((unsigned char)s[k - 1]);
                bool w2 = k < n && word_char((unsigned char)s[k]);
                bad = w1 != w2;
            }
        }
    }
    if (!bad)
        return false;
    for (size_t i = 0; i + 4 <= n; i++) {
        if (strncasecmp(s + i, "iso-", 4) != 0)
            continue;
        const char *p = s + i + 4;
        size_t left = n - i - 4;
#define W(k) ((k) < left && word_char((unsigned char)p[k]))
#define D(k) ((k) < left && p[k] >= '0' && p[k] <= '9')
        if (left >= 6 && strncmp(p, "8859-", 5) == 0 && D(5) && (!W(6) || (D(6) && !W(7))))
            return false;
        if (left >= 7 && (strncasecmp(p, "2022-jp", 7) == 0 || strncasecmp(p, "2022-kr", 7) == 0) &&
            !W(7))
            return false;
#undef W
#undef D
    }
    return true;
}

/* the charsets base64_encoded_text names, anywhere in the charset */
static bool ascii_charset(const char *cs)
{
    static const char *const names[] = {"us-ascii",  "ansi_x3.4-1968",   "iso-ir-6",
                                        "ansi_x3.4-1986", "iso_646.irv:1991", "ascii",
                                        "iso646-us", "us",               "ibm367",
                                        "cp367",     "csascii"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        if (strstr(cs, names[k]) != NULL)
            return true;
    return false;
}

static char *lower_dup(const char *s)
{
    char *d = util_strdup(s ? s : "");
    if (d != NULL)
        for (char *p = d; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p + 32);
    return d;
}

static bool qp_code(const char *p)
{
    /* =(?:09|3[0-9ABCEF]|[2456][0-9A-F]|7[0-9A-E]) */
    char a = p[0], b = p[1];
    bool hexu = (b >= '0' && b <= '9') || (b >= 'A' && b <= 'F');
    if (a == '0')
        return b == '9';
    if (a == '3')
        return hexu && b != 'D';
    if (a == '2' || a == '4' || a == '5' || a == '6')
        return hexu;
    if (a == '7')
        return hexu && b != 'F';
    return false;
}

/* one raw line's qp facts: the encoded octets, less the trailing =09/=20 */
static long qp_line_count(const char *s, size_t n)
{
    long count = 0;
    for (size_t i = 0; i + 2 < n; i++)
        if (s[i] == '=' && qp_code(s + i + 1)) {
            count++;
            i += 2;
        }
    if (count == 0)
        return 0;
    size_t e = n;
    while (e > 0 && perl_space((unsigned char)s[e - 1]))
        e--;
    long trail = 0;
    while (e >= 3 && s[e - 3] == '=' &&
           ((s[e - 2] == '0' && s[e - 1] == '9') || (s[e - 2] == '2' && s[e - 1] == '0')))
        e -= 3, trail++;
    return count - trail;
}

/* _check_mime_header over one node */
static void mime_header(struct sa_mime_facts *f, const char *ctype, const char *cte,
                        const char *cd, const char *charset)
{
    if (strcmp(ctype, "text/html") == 0)
        f->body_html_count++;
    else if (strncasecmp(ctype, "text", 4) == 0)
        f->body_text_count++;
    if (strstr(cte, "base64") != NULL)
        f->base64_count++;
    else if (strstr(cte, "quoted-printable") != NULL)
        f->qp_count++;
    if (*cd && strstr(cd, "attachment") != NULL) {
        f->attachment++;
        f->has_attachment = true;
    }
    if (strncmp(ctype, "text", 4) == 0 && strstr(cte, "base64") != NULL &&
        (!*charset || ascii_charset(charset)) &&
        !(*cd && (strncmp(cd, "attachment", 10) == 0 || strncmp(cd, "inline", 6) == 0)))
        f->base64_encoded_text = 1;
    if (bad_iso_charset(charset))
        f->has_bad_iso = true;
    bool letter = false;
    for (const char *p = charset; *p && !letter; p++)
        letter = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z');
    if (letter) {
        f->has_html_charsets = true;
        /* mime_html_charsets, split on blanks, for check_for_uppercase */
        const char *p = charset;
        while (*p) {
            while (*p && perl_space((unsigned char)*p))
                p++;
            const char *q = p;
            while (*q && !perl_space((unsigned char)*q))
                q++;
            if (q > p && caps_charset(p, (size_t)(q - p)))
                f->caps_charset = true;
            p = q;
        }
    }
}

static bool leaf_lines_max(const struct sa_mime *t, size_t i, double *max)
{
    const struct sa_mime_node *nd = &t->nodes[i];
    for (size_t k = 0; k < nd->nlines; k++) {
        double l = (double)sa_mime_line_len(&t->lines[nd->line0 + k]);
        if (l > *max)
            *max = l;
    }
    return true;
}

/* one line as Perl sees it: p[0..n) then "\n" when nl, copied into buf */
static const char *line_text(const struct sa_mime_line *l, char **buf, size_t *cap, size_t *n)
{
    *n = sa_mime_line_len(l);
    if (!l->nl)
        return l->p;
    if (util_grow(buf, cap, *n + 1, 1) != 0)
        return NULL;
    memcpy(*buf, l->p, l->n);
    (*buf)[l->n] = '\n';
    return *buf;
}

static struct sa_mime_facts *facts(struct rules_msg *m)
{
    struct sa_mime *t = rules_msg_sa_mime(m);
    if (t == NULL)
        return NULL;
    if (t->mime_facts != NULL)
        return t->mime_facts;
    struct sa_mime_facts *f = util_calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->multipart_ratio = 1.0;
    double qp_bytes = 0, qp_count = 0, normal = 0, unicode = 0;
    /* per leaf: its type and octets, for the alternative ratio */
    char **ptype = util_calloc(t->nnodes ? t->nnodes : 1, sizeof(char *));
    double *pbytes = util_calloc(t->nnodes ? t->nnodes : 1, sizeof(double));
    bool *pdef = util_calloc(t->nnodes ? t->nnodes : 1, sizeof(bool));
    char *lbuf = NULL;
    size_t lcap = 0;
    long part = -1;
    bool ok = ptype && pbytes && pdef;
    for (size_t i = 0; i < t->nnodes && ok; i++) {
        const struct sa_mime_node *nd = &t->nodes[i];
        struct sa_mime_ct ct;
        if (!sa_mime_content_type(nd->ct, &ct)) {
            ok = false;
            break;
        }
        if (strcmp(ct.type, "multipart/alternative") == 0)
            f->multipart_alternative = 1;
        char *cte = lower_dup(nd->cte), *cd = lower_dup(nd->cd), *cs = lower_dup(ct.charset);
        if (cte == NULL || cd == NULL || cs == NULL) {
            free(cte), free(cd), free(cs);
            sa_mime_ct_free(&ct);
            ok = false;
            break;
        }
        mime_header(f, ct.type, cte, cd, cs);
        if (nd->leaf) {
            part++;
            ptype[part] = ct.type;
            ct.type = NULL;
            bool attach = strstr(cd, "attachment") != NULL;
            pdef[part] = !attach;
            bool ascii = strcmp(ptype[part], "text/plain") == 0 &&
                         (ct.charset == NULL || strcmp(cs, "us-ascii") == 0);
            bool plain7 = strcmp(ptype[part], "text/plain") == 0 &&
                          (!*cte || strcmp(cte, "7bit") == 0 || strcmp(cte, "8bit") == 0);
            bool alt_text = !attach && (strcmp(ptype[part], "text/plain") == 0 ||
                                        strcmp(ptype[part], "text/html") == 0);
            bool qp = strcmp(cte, "quoted-printable") == 0;
            for (size_t k = 0; k < nd->nlines && ok; k++) {
                size_t n;
                const char *s = line_text(&t->lines[nd->line0 + k], &lbuf, &lcap, &n);
                if (s == NULL) {
                    ok = false;
                    break;
                }
                if (f->multipart_alternative && alt_text)
                    pbytes[part] += (double)n;
                if (qp && !(n >= 6 && memcmp(s, "SPAM: ", 6) == 0)) {
                    if (n > 79)
                        f->qp_long_line = 1;
                    qp_bytes += (double)n;
                    if (memchr(s, '=', n) != NULL)
                        qp_count += (double)qp_line_count(s, n);
                }
                if (ascii) {
                    bool bad = false;
                    for (size_t j = 0; j < n && !bad; j++) {
                        unsigned char c = (unsigned char)s[j];
                        bad = c == 0 || c == '\r' || c >= 0x80;
                    }
                    f->ascii_text_illegal += bad;
                }
                if (plain7) {
                    long subs = 0;
                    for (size_t j = 0; j + 8 <= n; j++) {
                        if (s[j] != '&' || s[j + 1] != '#' || s[j + 2] != 'x' || s[j + 7] != ';')
                            continue;
                        bool hex = true;
                        for (size_t h = 3; h < 7 && hex; h++)
                            hex = (s[j + h] >= '0' && s[j + h] <= '9') ||
                                  (s[j + h] >= 'A' && s[j + h] <= 'F');
                        if (hex) {
                            subs++;
                            j += 7;
                        }
                    }
                    normal += (double)n - 8.0 * (double)subs;
                    unicode += (double)subs;
                }
            }
        }
        /* check_base64_length's part of the walk */
        if (nd->leaf && strcmp(ptype[part], "application/ics") != 0 &&
            strcmp(cte, "base64") == 0)
            leaf_lines_max(t, i, &f->base64_length);
        free(cte), free(cd), free(cs);
        sa_mime_ct_free(&ct);
    }
    if (ok) {
        if (qp_bytes > 0) {
            f->qp_ratio = qp_count / qp_bytes;
            f->qp_count = qp_count;
            f->qp_bytes = qp_bytes;
            f->has_qp_bytes = true;
        }
        if (normal > 0)
            f->text_unicode_ratio = unicode / normal;
        if (f->multipart_alternative) {
            bool th = false, tt = false;
            double text = 0, html = 0;
            for (long i = part; i >= 0; i--) {
                if (!pdef[i])
                    continue;
                if (!th && strcmp(ptype[i], "text/html") == 0)
                    html = pbytes[i], th = true;
                else if (!tt && strcmp(ptype[i], "text/plain") == 0)
                    text = pbytes[i], tt = true;
                if (th && tt)
                    break;
            }
            if (th && tt && html > 0)
                f->multipart_ratio = text / html;
        }
        f->missing_boundary = t->missing_boundary;
    }
    for (long i = 0; ptype && i <= part; i++)
        free(ptype[i]);
    free(ptype);
    free(pbytes);
    free(pdef);
    free(lbuf);
    if (!ok) {
        free(f);
        return NULL;
    }
    t->mime_facts = f;
    return f;
}

static bool one_string(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 1, 1, why, wn);
}

static int for_mime(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_mime_facts *f = facts(m);
    if (f == NULL)
        return -1;
    const char *k = c->args.v[0];
    const struct {
        const char *name;
        double v;
        bool exists;
    } keys[] = {
        {"mime_base64_count", f->base64_count, true},
        {"mime_base64_encoded_text", f->base64_encoded_text, true},
        {"mime_body_html_count", f->body_html_count, true},
        {"mime_body_text_count", f->body_text_count, true},
        {"mime_faraway_charset", 0, true},
        {"mime_missing_boundary", f->missing_boundary, true},
        {"mime_multipart_alternative", f->multipart_alternative, true},
        {"mime_multipart_ratio", f->multipart_ratio, true},
        {"mime_qp_count", f->qp_count, true},
        {"mime_qp_long_line", f->qp_long_line, true},
        {"mime_qp_ratio", f->qp_ratio, true},
        {"mime_ascii_text_illegal", f->ascii_text_illegal, true},
        {"mime_text_unicode_ratio", f->text_unicode_ratio, true},
        {"mime_checked_attachments", 1, true},
        {"mime_attachment", f->attachment, f->has_attachment},
        {"mime_bad_iso_charset", 1, f->has_bad_iso},
        {"mime_qp_bytes", f->qp_bytes, f->has_qp_bytes},
        {"mime_html_charsets", 1, f->has_html_charsets},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(keys[i].name, k) == 0)
            return keys[i].exists && keys[i].v != 0;
    return 0;
}

/* $pms->get('Content-Type') =~ m{^text/html}i */
static int first_ct_html(struct rules_msg *m)
{
    struct sa_eval_buf b = {0};
    long n = sa_eval_get(m, "Content-Type", false, &b);
    int rc = n < 0 ? -1 : b.n >= 9 && strncasecmp(b.s, "text/html", 9) == 0;
    sa_eval_buf_free(&b);
    return rc;
}

static int mime_html(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    int rc = first_ct_html(m);
    if (rc != 0)
        return rc;
    struct sa_mime_facts *f = facts(m);
    return f == NULL ? -1 : f->body_html_count > 0;
}

static int mime_html_only(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    int rc = first_ct_html(m);
    if (rc != 0)
        return rc;
    struct sa_mime_facts *f = facts(m);
    return f == NULL ? -1 : f->body_html_count > 0 && f->body_text_count == 0;
}

static bool two_numbers(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 2, 2, why, wn) && sa_eval_number(c, 0, false, why, wn) &&
           sa_eval_number(c, 1, false, why, wn);
}

static int multipart_ratio(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_mime_facts *f = facts(m);
    if (f == NULL)
        return -1;
    return f->multipart_ratio >= c->num[0] && f->multipart_ratio < c->num[1];
}

static int parse_flags(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_mime *t = rules_msg_sa_mime(m);
    if (t == NULL)
        return -1;
    const char *k = c->args.v[c->args.n - 1];
    const struct {
        const char *name;
        bool v;
    } flags[] = {
        {"missing_head_body_separator", t->missing_head_body_separator},
        {"truncated_header", t->truncated_header},
        {"missing_mime_head_body_separator", t->missing_mime_head_body_separator},
        {"missing_mime_headers", t->missing_mime_headers},
        {"mime_epilogue_exists", t->mime_epilogue_exists},
        {"mimepart_limit_exceeded", t->mimepart_limit_exceeded},
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strcmp(flags[i].name, k) == 0)
            return flags[i].v;
    return 0;
}

static bool parse_flags_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 1, 2, why, wn);
}

static int ascii_illegal(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    struct sa_mime_facts *f = facts(m);
    return f == NULL ? -1 : f->ascii_text_illegal > 0;
}

/* a ratio SpamAssassin takes: /^\d{0,3}\.\d{1,3}$/, else never a hit */
static bool unicode_check(struct sa_eval_call *c, char *why, size_t wn)
{
    if (!sa_eval_nargs(c, 1, 1, why, wn))
        return false;
    const char *s = c->args.v[0];
    size_t n = strlen(s), i = 0;
    if (n > 0 && s[n - 1] == '\n')
        n--;
    while (i < n && i < 4 && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t d = 0;
    bool ok = i <= 3 && i < n && s[i] == '.';
    for (size_t j = i + 1; ok && j < n; j++, d++)
        ok = s[j] >= '0' && s[j] <= '9';
    ok = ok && d >= 1 && d <= 3;
    c->undef[0] = !ok;
    c->num[0] = ok ? strtod(s, NULL) : 0;
    return true;
}

static int unicode_ratio(const struct sa_eval_call *c, struct rules_msg *m)
{
    if (c->undef[0])
        return 0;
    struct sa_mime_facts *f = facts(m);
    return f == NULL ? -1 : f->text_unicode_ratio >= c->num[0];
}

/* get_charset_from_ct_line over every Content-Type value */
static bool top_caps_charset(struct rules_msg *m, int *rc)
{
    struct sa_eval_buf b = {0};
    long n = sa_eval_get(m, "Content-Type", false, &b);
    *rc = 0;
    if (n < 0) {
        *rc = -1;
        return false;
    }
    bool caps = false, found = false;
    const char *s = b.s;
    size_t len = b.n;
    for (int pass = 0; pass < 3 && !found; pass++) {
        for (size_t i = 0; i + 8 <= len && !found; i++) {
            if (strncasecmp(s + i, "charset=", 8) != 0)
                continue;
            size_t st = i + 8, e = st;
            if (pass < 2) {
                char q = pass == 0 ? '"' : '\'';
                if (st >= len || s[st] != q)
                    continue;
                st++;
                e = st;
                while (e < len && s[e] != q)
                    e++;
                if (e == st || e >= len)
                    continue;
            } else {
                while (e < len && !perl_space((unsigned char)s[e]))
                    e++;
                if (e == st)
                    continue;
            }
            found = true;
            caps = caps_charset(s + st, e - st);
        }
    }
    sa_eval_buf_free(&b);
    return caps;
}

static int uppercase(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_mime_facts *f = facts(m);
    if (f == NULL)
        return -1;
    if (f->uppercase_done)
        return f->uppercase > c->num[0] && f->uppercase <= c->num[1];
    int rc;
    bool caps = top_caps_charset(m, &rc);
    if (rc < 0)
        return -1;
    double pct = 0;
    if (!caps && !f->caps_charset) {
        size_t len, nends;
        const size_t *ends;
        const char *s = rules_msg_sa_body(m, &len, &ends, &nends);
        if (rules_msg_nomem(m))
            return -1;
        double tlen = 0, lower = 0, upper = 0;
        size_t from = 0;
        for (size_t e = 0; e < nends; e++) {
            const char *l = s + from;
            size_t n = ends[e] - from;
            from = ends[e];
            /* /\S\s+\S/ */
            bool words = false;
            for (size_t i = 0; i + 2 < n + 0 && !words; i++) {
                if (perl_space((unsigned char)l[i]) || !perl_space((unsigned char)l[i + 1]))
                    continue;
                size_t j = i + 1;
                while (j < n && perl_space((unsigned char)l[j]))
                    j++;
                words = j < n;
            }
            if (!words)
                continue;
            /* /^(?:[A-Za-z0-9+\/=]{60,76} ){2}/ */
            size_t p = 0;
            int groups = 0;
            while (groups < 2) {
                size_t q = p;
                while (q < n && q - p < 77 &&
                       ((l[q] >= 'A' && l[q] <= 'Z') || (l[q] >= 'a' && l[q] <= 'z') ||
                        (l[q] >= '0' && l[q] <= '9') || l[q] == '+' || l[q] == '/' || l[q] == '='))
                    q++;
                if (q - p < 60 || q - p > 76 || q >= n || l[q] != ' ')
                    break;
                p = q + 1;
                groups++;
            }
            if (groups == 2)
                continue;
            /* s/\x1b\$B.*\x1b\(B//gs: from the first ESC $ B to the last ESC ( B */
            size_t cut_from = n, cut_to = n;
            for (size_t i = 0; i + 3 <= n; i++)
                if (l[i] == 0x1b && l[i + 1] == '$' && l[i + 2] == 'B') {
                    for (size_t j = n; j-- > i + 3 + 2;)
                        if (l[j - 2] == 0x1b && l[j - 1] == '(' && l[j] == 'B') {
                            cut_from = i, cut_to = j + 1;
                            break;
                        }
                    break;
                }
            for (size_t i = 0; i < n; i++) {
                if (i >= cut_from && i < cut_to)
                    continue;
                tlen++;
                char ch = l[i];
                if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
                    lower++;
                else if (ch >= 'A' && ch <= 'Z')
                    upper++;
            }
        }
        if (tlen >= 200 && upper + lower > 0)
            pct = upper / (upper + lower) * 100;
    }
    f->uppercase = pct;
    f->uppercase_done = true;
    return pct > c->num[0] && pct <= c->num[1];
}

static int ma_non_text(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    struct sa_mime *t = rules_msg_sa_mime(m);
    if (t == NULL)
        return -1;
    for (size_t i = 0; i < t->nnodes; i++) {
        if (strcmp(t->nodes[i].type, "multipart/alternative") != 0)
            continue;
        if (t->nodes[i].leaf)
            return 1; /* find_parts on a leaf finds the leaf itself */
        for (size_t k = i + 1; k < t->nnodes && t->nodes[k].depth > t->nodes[i].depth; k++) {
            const struct sa_mime_node *p = &t->nodes[k];
            if (p->parent != i || !p->leaf)
                continue;
            if (strcasecmp(p->type, "multipart/related") == 0 ||
                strcasecmp(p->type, "application/rtf") == 0 || strncasecmp(p->type, "text/", 5) == 0)
                continue;
            return 1;
        }
    }
    return 0;
}

static bool base64_length_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 1, 2, why, wn) && sa_eval_number(c, 0, false, why, wn) &&
           (c->args.n < 2 || sa_eval_number(c, 1, false, why, wn));
}

static int base64_length(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_mime_facts *f = facts(m);
    if (f == NULL)
        return -1;
    if (c->args.n >= 2 && f->base64_length > c->num[1])
        return 0;
    return f->base64_length >= c->num[0];
}

static bool one_number(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 1, 1, why, wn) && sa_eval_number(c, 0, false, why, wn);
}

static int qp_ratio(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_mime_facts *f = facts(m);
    return f == NULL ? -1 : f->qp_ratio >= c->num[0];
}

const struct sa_eval_def sa_eval_mime_defs[] = {
    {"check_for_mime", for_mime, one_string},
    {"check_for_mime_html", mime_html, NULL},
    {"check_for_mime_html_only", mime_html_only, NULL},
    {"check_mime_multipart_ratio", multipart_ratio, two_numbers},
    {"check_msg_parse_flags", parse_flags, parse_flags_check},
    {"check_for_ascii_text_illegal", ascii_illegal, NULL},
    {"check_abundant_unicode_ratio", unicode_ratio, unicode_check},
    {"check_for_uppercase", uppercase, two_numbers},
    {"check_ma_non_text", ma_non_text, NULL},
    {"check_base64_length", base64_length, base64_length_check},
    {"check_qp_ratio", qp_ratio, one_number},
    {NULL, NULL, NULL},
};
