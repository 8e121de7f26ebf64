/*
 * sa_eval_header - SpamAssassin's header eval tests (Plugin::HeaderEval,
 * and MIMEEval's charset test that reads a header), natively:
 *
 *   check_for_missing_to_header()      no To (nor Apparently-To) value
 *   check_header_count_range(H,MIN,MAX) distinct values of H within MIN..MAX
 *   check_illegal_chars(H,RATIO,COUNT) octets RFC 2045 forbids in raw H
 *                                      (ALL: the whole header), unless
 *                                      valid UTF-8 without controls
 *   check_outlook_message_id()         an Outlook-style Message-ID whose
 *                                      time token fits neither the Date nor
 *                                      the Received dates
 *   subject_is_all_caps()              a Subject of several words, all capitals
 *                                      (Re: and the like dropped; Asian and
 *                                      Cyrillic charsets left out)
 *   check_for_to_in_subject('user'|'address')  the recipient's name or
 *                                      address in the Subject
 *   check_ratware_name_id()            a 28-capital Message-ID whose right
 *                                      side is the From address
 *   check_unresolved_template()        a %TEMPLATE left in a header line
 *   check_equal_from_domains()         the From address's domain and the
 *                                      EnvelopeFrom's differ in their last
 *                                      two labels (case-insensitive); no
 *                                      hit when either has no domain
 *   check_for_faraway_charset_in_headers(), check_for_faraway_charset()
 *                                      with ok_locales "all", SpamAssassin's
 *                                      default (smtpgate reads no other),
 *                                      they never hit, as there
 *
 * What it promises: each function's result is SpamAssassin's on the same
 * header values (sa_eval_get gives them as its get() does).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/rules_int.h"
#include "rules/sa_date.h"
#include "rules/sa_eval.h"

static int missing_to(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    struct sa_eval_buf b = {0};
    long n = sa_eval_get(m, "To", false, &b);
    if (n == 0)
        n = sa_eval_get(m, "Apparently-To", false, &b);
    sa_eval_buf_free(&b);
    return n < 0 ? -1 : n == 0;
}

static bool check_count_range(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 3, 3, why, wn) && sa_eval_number(c, 1, false, why, wn) &&
           sa_eval_number(c, 2, false, why, wn);
}

/* the distinct decoded values of the field */
static int count_range(const struct sa_eval_call *c, struct rules_msg *m)
{
    size_t nf = rules_msg_field_count(m), nv = 0;
    const char **seen = calloc(nf ? nf : 1, sizeof(*seen));
    if (seen == NULL)
        return -1;
    for (size_t i = 0; i < nf; i++) {
        struct rules_msg_field *f = rules_msg_field(m, i);
        if (strcasecmp(f->name, c->args.v[0]) != 0)
            continue;
        const char *v = rules_msg_field_decoded(m, i);
        if (v == NULL) {
            free(seen);
            return -1;
        }
        bool dup = false;
        for (size_t k = 0; k < nv && !dup; k++)
            dup = strcmp(seen[k], v) == 0;
        if (!dup)
            seen[nv++] = v;
    }
    free(seen);
    return (double)nv >= c->num[1] && (double)nv <= c->num[2];
}

static bool check_illegal(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 3, 3, why, wn) && sa_eval_number(c, 1, false, why, wn) &&
           sa_eval_number(c, 2, false, why, wn);
}

/* Perl's utf8::valid after decode: well-formed UTF-8, no overlongs or
 * surrogates (as Encode's strict UTF-8 checks). */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += k + 1;
    }
    return true;
}

static int illegal_chars(const struct sa_eval_call *c, struct rules_msg *m)
{
    const char *h = c->args.v[0];
    size_t hl = strlen(h);
    if (hl >= 4 && strcmp(h + hl - 4, ":raw") == 0)
        hl -= 4;
    char name[256];
    snprintf(name, sizeof(name), "%.*s", (int)(hl < 255 ? hl : 255), h);
    struct sa_eval_buf b = {0};
    const unsigned char *s;
    size_t n;
    if (strcmp(name, "ALL") == 0) {
        s = (const unsigned char *)rules_msg_all_headers(m, true, &n);
    } else {
        if (sa_eval_get(m, name, true, &b) < 0) {
            sa_eval_buf_free(&b);
            return -1;
        }
        s = (const unsigned char *)b.s;
        n = b.n;
    }
    int hit = 0;
    bool visible = false, high = false, controls = false;
    size_t illegal = 0, exempt = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char o = s[i];
        visible |= !(o == ' ' || o == '\t' || o == '\n' || o == '\r' || o == '\f' || o == '\v');
        high |= o >= 0x80;
        bool ctl = o <= 0x08 || o == 0x0b || o == 0x0c || (o >= 0x0e && o <= 0x1f);
        controls |= ctl;
        illegal += ctl || o >= 0x7f;
        exempt += o == 0xa2 || o == 0xa3 || o == 0xae;
    }
    if (n > 0 && visible && !(high && !controls && valid_utf8(s, n))) {
        if (illegal > 0 && strcasecmp(name, "Subject") == 0 && exempt == 1)
            illegal--;
        hit = (double)illegal / (double)n >= c->num[1] && (double)illegal >= c->num[2];
    }
    sa_eval_buf_free(&b);
    return hit;
}

/* hex of 8 digits, the Message-ID's time token */
static bool outlook_token(const char *id, uint32_t *token)
{
    /* ^<[0-9a-f]{4}([0-9a-f]{8})\$[0-9a-f]{8}\$[0-9a-f]{8}\@ */
    static const char shape[] = "<xxxxTTTTTTTT$xxxxxxxx$xxxxxxxx@";
    uint32_t t = 0;
    for (size_t i = 0; shape[i]; i++) {
        char c = id[i];
        if (c == '\0')
            return false;
        if (shape[i] == 'x' || shape[i] == 'T') {
            bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
            if (!hex)
                return false;
            if (shape[i] == 'T')
                t = t * 16 + (uint32_t)(c <= '9' ? c - '0' : c - 'a' + 10);
        } else if (c != shape[i]) {
            return false;
        }
    }
    *token = t;
    return true;
}

static double outlook_diff(uint32_t token, const struct sa_eval_buf *b)
{
    int64_t t = 0;
    if (!sa_date_parse(b->s, b->n, &t))
        t = 0;
    double expected = floor((double)t * 0.0023283064365387 + 27111902.8329849);
    return fabs((double)token - expected);
}

static int outlook_message_id(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    static const char *const fields[] = {"X-Message-Id", "Resent-Message-Id",
                                         "X-Original-Message-ID", "Message-Id"};
    struct sa_eval_buf id = {0}, one = {0}, b = {0};
    int hit = -1;
    for (size_t k = 0; k < 4; k++) {
        if (sa_eval_get(m, fields[k], false, &one) < 0 || sa_eval_buf_add(&id, one.s, one.n) != 0)
            goto out;
    }
    uint32_t token;
    hit = 0;
    if (!outlook_token(id.s, &token))
        goto out;
    hit = -1;
    if (sa_eval_get(m, "Date", false, &b) < 0)
        goto out;
    hit = 0;
    if (outlook_diff(token, &b) < 250)
        goto out;
    /* SpamAssassin matches the Received text in void context and parses
     * the whole of it: its first date, whatever the match found */
    hit = -1;
    if (sa_eval_get(m, "Received", false, &b) < 0)
        goto out;
    hit = outlook_diff(token, &b) >= 250;
out:
    sa_eval_buf_free(&id);
    sa_eval_buf_free(&one);
    sa_eval_buf_free(&b);
    return hit;
}

/* ---- the Subject ---- */

enum { CAPS_PREFIX, CAPS_CHARSET };

static bool caps_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, 0, why, wn) &&
           sa_eval_compile(c, "^(?:(?:Re|Fwd|Fw|Aw|Antwort|WG|SV|VB|VS|VL):\\s*)+", PCRE2_CASELESS,
                           why, wn) &&
           sa_eval_compile(c,
                           "=\\?[-_a-z0-9]*(?:koi|jp|jis|euc|gb|big5|isoir|cp1251|windows-1251|"
                           "georgianps|pt154|tis)[-_a-z0-9]*\\?",
                           PCRE2_CASELESS, why, wn);
}

static bool perl_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int subject_all_caps(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_eval_buf b = {0};
    int rc = -1;
    if (sa_eval_get(m, "Subject", false, &b) < 0)
        goto out;
    const char *s = b.s;
    size_t n = b.n;
    while (n > 0 && perl_space(*s))
        s++, n--;
    while (n > 0 && perl_space(s[n - 1]))
        n--;
    size_t ps = 0, pl = 0;
    int r = sa_eval_match(c, CAPS_PREFIX, NULL, s, n, 0, &ps, &pl);
    if (r < 0)
        goto out;
    if (r == 1)
        s += pl, n -= pl;
    bool blank = false;
    for (size_t i = 0; i < n && !blank; i++)
        blank = perl_space(s[i]);
    rc = 0;
    if (!blank || n < 10)
        goto out;
    size_t letters = 0, lower = 0;
    for (size_t i = 0; i < n; i++) {
        letters += (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z');
        lower += s[i] >= 'a' && s[i] <= 'z';
    }
    rc = -1;
    if (sa_eval_get(m, "Subject", true, &b) < 0)
        goto out;
    r = sa_eval_match(c, CAPS_CHARSET, NULL, b.s, b.n, 0, NULL, NULL);
    if (r < 0)
        goto out;
    rc = r == 0 && letters > 0 && lower == 0;
out:
    sa_eval_buf_free(&b);
    return rc;
}

static bool to_in_subject_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 1, 1, why, wn);
}

/* text as a pattern of literal octets (PCRE2 takes \ before any non-alphanumeric) */
static int quote(struct sa_eval_buf *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char o = (unsigned char)s[i];
        bool alnum = (o >= '0' && o <= '9') || (o >= 'a' && o <= 'z') || (o >= 'A' && o <= 'Z');
        if (o == 0) {
            if (sa_eval_buf_add(p, "\\x00", 4) != 0)
                return -1;
            continue;
        }
        if ((!alnum && o < 0x80 && sa_eval_buf_add(p, "\\", 1) != 0) ||
            sa_eval_buf_add(p, s + i, 1) != 0)
            return -1;
    }
    return 0;
}

static int to_in_subject(const struct sa_eval_call *c, struct rules_msg *m)
{
    const char *test = c->args.v[0];
    bool user = strcmp(test, "user") == 0;
    if (!user && strcmp(test, "address") != 0)
        return 0;
    struct sa_eval_buf to = {0}, subj = {0}, pat = {0};
    int rc = -1;
    pcre2_code *re = NULL;
    if (sa_eval_get_addrs(m, "To", &to) < 0)
        goto out;
    rc = 0;
    if (to.n == 0)
        goto out;
    rc = -1;
    if (sa_eval_get(m, "Subject", false, &subj) < 0)
        goto out;
    size_t qn = to.n;
    if (user) {
        /* SpamAssassin drops from the first @ to the end of its line */
        char *at = memchr(to.s, '@', to.n);
        if (at != NULL) {
            char *nl = memchr(at, '\n', to.n - (size_t)(at - to.s));
            size_t keep = (size_t)(at - to.s);
            if (nl != NULL) {
                memmove(at, nl, to.n - (size_t)(nl - to.s));
                to.n -= (size_t)(nl - at);
            } else {
                to.n = keep;
            }
            qn = to.n;
        }
    }
    struct sa_eval_buf q = {0};
    if (quote(&q, to.s, qn) != 0) {
        sa_eval_buf_free(&q);
        goto out;
    }
    int bad = 0;
#define ADD(lit) sa_eval_buf_add(&pat, lit, sizeof(lit) - 1)
    if (user) {
        bad |= ADD("^(?:(?:re|fw):\\s*(?:\\w+\\s+)?");
        bad |= sa_eval_buf_add(&pat, q.s, q.n);
        bad |= ADD("$|(?-i:");
        bad |= sa_eval_buf_add(&pat, q.s, q.n);
        bad |= ADD(")\\s*[,:;!?-](?:$|\\s)|");
        bad |= sa_eval_buf_add(&pat, q.s, q.n);
        bad |= ADD("$|,\\s*");
        bad |= sa_eval_buf_add(&pat, q.s, q.n);
        bad |= ADD("[,:;!?-]$)");
    } else {
        bad |= ADD("\\b");
        bad |= sa_eval_buf_add(&pat, q.s, q.n);
        bad |= ADD("\\b");
    }
#undef ADD
    sa_eval_buf_free(&q);
    if (bad)
        goto out;
    int err;
    PCRE2_SIZE off;
    re = pcre2_compile((PCRE2_SPTR)pat.s, pat.n, PCRE2_CASELESS, &err, &off, NULL);
    if (re == NULL) {
        rc = err == PCRE2_ERROR_HEAP_FAILED ? -1 : 0;
        goto out;
    }
    rc = sa_eval_match(c, 0, re, subj.s, subj.n, 0, NULL, NULL);
out:
    pcre2_code_free(re);
    sa_eval_buf_free(&to);
    sa_eval_buf_free(&subj);
    sa_eval_buf_free(&pat);
    return rc;
}

/* ---- ratware and templates ---- */

/* <[A-Z]{28}\.([^>]+?)> in the Message-IDs, and "NAME" <THAT> in From */
static int ratware_name_id(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    static const char *const fields[] = {"X-Message-Id", "Resent-Message-Id",
                                         "X-Original-Message-ID", "Message-Id"};
    struct sa_eval_buf id = {0}, one = {0}, from = {0};
    int rc = -1;
    for (size_t k = 0; k < 4; k++)
        if (sa_eval_get(m, fields[k], false, &one) < 0 || sa_eval_buf_add(&id, one.s, one.n) != 0)
            goto out;
    const char *cap = NULL;
    size_t capn = 0;
    for (size_t i = 0; i + 31 <= id.n && cap == NULL; i++) {
        if (id.s[i] != '<')
            continue;
        size_t k = 1;
        while (k <= 28 && id.s[i + k] >= 'A' && id.s[i + k] <= 'Z')
            k++;
        if (k != 29 || id.s[i + 29] != '.')
            continue;
        const char *gt = memchr(id.s + i + 30, '>', id.n - (i + 30));
        if (gt != NULL && gt > id.s + i + 30) {
            cap = id.s + i + 30;
            capn = (size_t)(gt - cap);
        }
    }
    rc = 0;
    if (cap == NULL)
        goto out;
    rc = -1;
    if (sa_eval_get(m, "From", false, &from) < 0)
        goto out;
    rc = 0;
    /* each <CAP> preceded by blanks, a closing quote, a name, an opening quote */
    for (size_t p = 1; p + capn + 2 <= from.n && rc == 0; p++) {
        if (from.s[p] != '<' || memcmp(from.s + p + 1, cap, capn) != 0 ||
            from.s[p + 1 + capn] != '>')
            continue;
        size_t k = p;
        while (k > 0 && perl_space(from.s[k - 1]))
            k--;
        if (k < 3 || from.s[k - 1] != '"')
            continue;
        size_t j = k - 1;
        size_t name = 0;
        while (j > 0 && from.s[j - 1] != '"')
            j--, name++;
        rc = j > 0 && name > 0;
    }
out:
    sa_eval_buf_free(&id);
    sa_eval_buf_free(&one);
    sa_eval_buf_free(&from);
    return rc;
}

static bool template_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, 0, why, wn) && sa_eval_compile(c, "%[A-Z][A-Z_-]", 0, why, wn) &&
           sa_eval_compile(c,
                           "^(?:X-VMS-To|X-UIDL|X-Face|To|Cc|From|Subject|References|In-Reply-To|"
                           "(?:X-|Resent-|X-Original-)?Message-Id):",
                           PCRE2_CASELESS, why, wn);
}

/* a header line, not of the fields where % is common, with %TEMPLATE left in */
static int unresolved_template(const struct sa_eval_call *c, struct rules_msg *m)
{
    size_t n;
    const char *all = rules_msg_all_headers(m, false, &n);
    if (rules_msg_nomem(m))
        return -1;
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(all + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (all + i)) : n - i;
        int a = sa_eval_match(c, 0, NULL, all + i, len, 0, NULL, NULL);
        if (a < 0)
            return -1;
        if (a == 1) {
            int b = sa_eval_match(c, 1, NULL, all + i, len, 0, NULL, NULL);
            if (b < 0)
                return -1;
            if (b == 0)
                return 1;
        }
        i += len + 1;
    }
    return 0;
}

static int never(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    (void)m;
    return 0;
}

static bool check_any(struct sa_eval_call *c, char *why, size_t wn)
{
    (void)c;
    (void)why;
    (void)wn;
    return true;
}

enum { ED_AT_DOMAIN, ED_LAST_TWO, ED__N };

static bool equal_domains_check(struct sa_eval_call *c, char *why, size_t wn)
{
    /* HeaderEval's patterns (bug 6487): the text after the last @, then its
     * last two labels when it has more */
    return sa_eval_nargs(c, 0, 0, why, wn) && sa_eval_compile(c, "\\@([^@]*)\\z", 0, why, wn) &&
           sa_eval_compile(c, "^.+\\.([^\\.]+\\.[^\\.]+)$", 0, why, wn);
}

/* The second-level domain of addr[0..n) into *s, *len (empty: none);
 * -1 on a match failure, which the caller counts as a miss of memory. */
static int second_level(const struct sa_eval_call *c, const char *addr, size_t n, const char **s,
                        size_t *len)
{
    size_t gs, gl;
    *s = "";
    *len = 0;
    int r = sa_eval_match(c, ED_AT_DOMAIN, NULL, addr, n, 1, &gs, &gl);
    if (r != 1)
        return r;
    const char *d = addr + gs;
    size_t dl = gl;
    size_t ts, tl;
    r = sa_eval_match(c, ED_LAST_TWO, NULL, d, dl, 1, &ts, &tl);
    if (r < 0)
        return r;
    if (r == 1) {
        d += ts;
        dl = tl;
    }
    *s = d;
    *len = dl;
    return 0;
}

static int equal_from_domains(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_eval_buf b = {0};
    int rc = -1;
    if (sa_eval_get_addrs(m, "From", &b) < 0)
        goto out;
    const char *fd, *ed;
    size_t fl, el;
    if (second_level(c, b.s, b.n, &fd, &fl) < 0)
        goto out;
    rc = 0;
    if (fl == 0)
        goto out;
    const char *env = rules_msg_envelope_from(m);
    if (env == NULL)
        env = "";
    if (second_level(c, env, strlen(env), &ed, &el) < 0) {
        rc = -1;
        goto out;
    }
    if (el == 0)
        goto out;
    rc = fl != el || strncasecmp(fd, ed, fl) != 0;
out:
    sa_eval_buf_free(&b);
    return rc;
}

const struct sa_eval_def sa_eval_header_defs[] = {
    {"check_for_missing_to_header", missing_to, NULL},
    {"check_header_count_range", count_range, check_count_range},
    {"check_illegal_chars", illegal_chars, check_illegal},
    {"check_outlook_message_id", outlook_message_id, NULL},
    {"check_for_faraway_charset_in_headers", never, NULL},
    {"check_for_faraway_charset", never, check_any},
    {"subject_is_all_caps", subject_all_caps, caps_check},
    {"check_for_to_in_subject", to_in_subject, to_in_subject_check},
    {"check_ratware_name_id", ratware_name_id, NULL},
    {"check_unresolved_template", unresolved_template, template_check},
    {"check_equal_from_domains", equal_from_domains, equal_domains_check},
    {NULL, NULL, NULL},
};
