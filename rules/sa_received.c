/*
 * sa_received - one Received field as SpamAssassin reads it (see
 * sa_received.h).
 *
 * The order of the tests is SpamAssassin's, pattern for pattern (its
 * parse_received_line, release 4.0): the first format that fits decides, so
 * reordering them would change what a field means.  Each pattern is
 * compiled the first time a field reaches it and kept for the process (an
 * atomic slot per call site: threads race harmlessly, the loser frees its
 * copy).  Perl's s/// on the line are done by hand where they change it.
 * It stays a ladder of if-blocks, not a table walked by a loop: many steps
 * edit the line, test a second pattern or fill fields from other groups,
 * and keeping Perl's shape lets the two be read side by side when
 * SpamAssassin's parser changes.
 *
 * What it assumes: Perl's \s \S \b \d on octets, which PCRE2 without UTF
 * mode matches the same way.
 */
#include "rules/sa_received.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "util/alloc.h"

/* SpamAssassin's Constants.pm IP_ADDRESS, IP_PRIVATE and LOCALHOST, their
 * /x whitespace and comments taken out, their /i kept */
#define IPA                                                                                        \
    "(?i:(?:\\b(?<!:)(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|"   \
    "[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|"   \
    "[1-9]\\d|\\d)\\b|(?:IPv6:|(?<![a-f0-9:]))(?:(?:(?:[a-f0-9]{1,4}:){6}|::(?:[a-f0-9]{1,4}:){0," \
    "5}|(?:[a-f0-9]{1,4}:){1,5}:|[a-f0-9]{1,4}::(?:[a-f0-9]{1,4}:){1,4}|(?:[a-f0-9]{1,4}:){2}:(?:" \
    "[a-f0-9]{1,4}:){1,3}|(?:[a-f0-9]{1,4}:){3}:(?:[a-f0-9]{1,4}:){1,2}|(?:[a-f0-9]{1,4}:){4}:["   \
    "a-f0-9]{1,4}:)(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-"  \
    "9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]" \
    "\\d|\\d)|(?:[a-f0-9]{1,4}:){7}[a-f0-9]{1,4}|:(?::[a-f0-9]{1,4}){1,7}|(?:[a-f0-9]{1,4}:){1,7}" \
    ":|[a-f0-9]{1,4}:(?::[a-f0-9]{1,4}){1,6}|(?:[a-f0-9]{1,4}:){2}(?::[a-f0-9]{1,4}){1,5}|(?:[a-"  \
    "f0-9]{1,4}:){3}(?::[a-f0-9]{1,4}){1,4}|(?:[a-f0-9]{1,4}:){4}(?::[a-f0-9]{1,4}){1,3}|(?:[a-"   \
    "f0-9]{1,4}:){5}(?::[a-f0-9]{1,4}){1,2}|(?:[a-f0-9]{1,4}:){6}:[a-f0-9]{1,4}|::)(?![a-f0-9:])" \
    "))"
#define IP_PRIVATE                                                                                 \
    "(?i:^(?:(?:10|127|169\\.254|172\\.(?:1[6-9]|2[0-9]|3[01])|192\\.168|100\\.(?:6[4-9]|[7-9]["   \
    "0-9]|1[01][0-9]|12[0-7]))\\..*|(?:(?:IPv6:|(?<![a-f0-9:]))(?:(?:(?:0{1,4}:){5}ffff:|::(?:0{"  \
    "1,4}:){0,4}ffff:|(?:0{1,4}:){1,4}:ffff:|0{1,4}::(?:0{1,4}:){1,3}ffff:|(?:0{1,4}:){2}:0{1,2}:" \
    "ffff:|(?:0{1,4}:){3}:0:ffff:|(?:0{1,4}:){4}:ffff:)(?:10|127|169\\.254|172\\.(?:1[6-9]|2[0-9]" \
    "|3[01])|192\\.168|100\\.(?:6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7]))\\..*|fe[89ab][0-9a-f]:.*|(" \
    "?:0{1,4}:){7}0{0,3}1|:(?::0{1,4}){0,6}:0{0,3}1|0{1,4}:(?::0{1,4}){0,5}:0{0,3}1|(?:0{1,4}:){2" \
    "}(?::0{1,4}){0,4}:0{0,3}1|(?:0{1,4}:){3}(?::0{1,4}){0,3}:0{0,3}1|(?:0{1,4}:){4}(?::0{1,4}){0" \
    ",2}:0{0,3}1|(?:0{1,4}:){5}(?::0{1,4}){0,1}:0{0,3}1|(?:0{1,4}:){6}:0{0,3}1)(?![a-f0-9:]))))"
#define LOCALHOST                                                                                  \
    "(?i:(?:localhost(?:\\.localdomain)?|\\b(?<!:)127\\.0\\.0\\.1\\b|(?:IPv6:|(?<![a-f0-9:]))(?:(" \
    "?:(?:0{1,4}:){5}ffff:|::(?:0{1,4}:){0,4}ffff:|(?:0{1,4}:){1,4}:ffff:|0{1,4}::(?:0{1,4}:){1,3" \
    "}ffff:|(?:0{1,4}:){2}:0{1,2}:ffff:|(?:0{1,4}:){3}:0:ffff:|(?:0{1,4}:){4}:ffff:)127\\.0\\.0\\" \
    ".1|(?:0{1,4}:){7}0{0,3}1|:(?::0{1,4}){0,6}:0{0,3}1|0{1,4}:(?::0{1,4}){0,5}:0{0,3}1|(?:0{1,4}" \
    ":){2}(?::0{1,4}){0,4}:0{0,3}1|(?:0{1,4}:){3}(?::0{1,4}){0,3}:0{0,3}1|(?:0{1,4}:){4}(?::0{1,4" \
    "}){0,2}:0{0,3}1|(?:0{1,4}:){5}(?::0{1,4}){0,1}:0{0,3}1|(?:0{1,4}:){6}:0{0,3}1)(?![a-f0-9:]))" \
    ")"
/* the HELO's octets in helo= and HELO/EHLO */
#define HC "[-A-Za-z0-9.^+_&:=?!@%*$\\\\/]"

static atomic_uint bad_patterns;

unsigned sa_received_bad_patterns(void)
{
    return atomic_load(&bad_patterns);
}

static pcre2_code *compiled(_Atomic(pcre2_code *) *slot, const char *pat, uint32_t flags)
{
    pcre2_code *re = atomic_load_explicit(slot, memory_order_acquire);
    if (re != NULL)
        return re;
    int err;
    PCRE2_SIZE off;
    re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, flags, &err, &off, NULL);
    if (re == NULL) {
        if (err != PCRE2_ERROR_NOMEMORY)
            atomic_fetch_add(&bad_patterns, 1);
        return NULL;
    }
    /* every field goes through dozens of these: JIT where the machine has it */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    pcre2_code *none = NULL;
    if (!atomic_compare_exchange_strong(slot, &none, re)) {
        pcre2_code_free(re);
        re = none;
    }
    return re;
}

/* the line being read, and what the last match captured */
struct rp {
    char *buf;   /* owned */
    char *s;     /* the line's current start within buf */
    size_t n;
    pcre2_match_data *md;
    const char *subj; /* of the last match */
    bool nomem;
};

static bool rx_run(struct rp *p, _Atomic(pcre2_code *) *slot, const char *pat, uint32_t flags,
                   const char *subj, size_t n)
{
    pcre2_code *re = compiled(slot, pat, flags);
    if (re == NULL) {
        p->nomem = true;
        return false;
    }
    int rc = pcre2_match(re, (PCRE2_SPTR)subj, n, 0, 0, p->md, NULL);
    if (rc < 0) {
        if (rc == PCRE2_ERROR_NOMEMORY)
            p->nomem = true;
        return false;
    }
    p->subj = subj;
    return true;
}

#define RXF(flags, pat, subj, n)                                                                   \
    ({                                                                                             \
        static _Atomic(pcre2_code *) slot_;                                                        \
        rx_run(p, &slot_, pat, flags, subj, n);                                                    \
    })
#define M(pat)  RXF(0, pat, p->s, p->n)
#define MI(pat) RXF(PCRE2_CASELESS, pat, p->s, p->n)

static size_t g_start(const struct rp *p, unsigned g)
{
    return pcre2_get_ovector_pointer(p->md)[2 * g];
}

static bool g_set(const struct rp *p, unsigned g)
{
    return g < pcre2_get_ovector_count(p->md) && g_start(p, g) != PCRE2_UNSET;
}

/* *f = group g of the last match ("" when it did not take part) */
static void set(struct rp *p, char **f, unsigned g)
{
    const char *v = "";
    size_t n = 0;
    if (g_set(p, g)) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->md);
        v = p->subj + ov[2 * g];
        n = ov[2 * g + 1] - ov[2 * g];
    }
    char *c = util_strndup(v, n);
    if (c == NULL) {
        p->nomem = true;
        return;
    }
    free(*f);
    *f = c;
}

static void set_str(struct rp *p, char **f, const char *v)
{
    char *c = util_strdup(v);
    if (c == NULL) {
        p->nomem = true;
        return;
    }
    free(*f);
    *f = c;
}

/* Perl's "$sub =~ s/PAT(\S+)// and $f = $1": the first match of group 1
 * cut out of *sub (which stays the caller's) */
static void sub_take(struct rp *p, char *sub, bool match, char **f)
{
    if (!match)
        return;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->md);
    set(p, f, 1);
    size_t len = strlen(sub);
    memmove(sub + ov[0], sub + ov[1], len - ov[1] + 1);
}

/* s/$chars/!/gs with SpamAssassin's [\s\000\#\[\]\(\)\<\>\|] */
static void strip_chars(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)s[i]) || s[i] == '\v' || s[i] == '\0' ||
            strchr("#[]()<>|", s[i]) != NULL)
            s[i] = '!';
}

static void strip_all(char *s)
{
    strip_chars(s, strlen(s));
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* envfrom: the blanks and angle brackets around it dropped, then the strip */
static void envfrom_clean(char *e)
{
    size_t n = strlen(e), a = 0;
    while (a < n && is_blank(e[a]))
        a++;
    while (a < n && e[a] == '<')
        a++;
    memmove(e, e + a, n - a + 1);
    n -= a;
    while (n > 0 && is_blank(e[n - 1]))
        n--;
    while (n > 0 && e[n - 1] == '>')
        n--;
    e[n] = '\0';
    strip_chars(e, n);
}

void sa_relay_clear(struct sa_relay *r)
{
    free(r->ip);
    free(r->rdns);
    free(r->helo);
    free(r->by);
    free(r->ident);
    free(r->id);
    free(r->auth);
    free(r->envfrom);
    memset(r, 0, sizeof(*r));
}

void sa_rcvd_extra_clear(struct sa_rcvd_extra *x)
{
    free(x->qmail_scanner_envfrom);
    memset(x, 0, sizeof(*x));
}

int sa_ip_is_private(const char *ip)
{
    struct rp q = {0}, *p = &q;
    if ((p->md = pcre2_match_data_create(4, NULL)) == NULL)
        return -1;
    bool hit = RXF(0, IP_PRIVATE, ip, strlen(ip));
    pcre2_match_data_free(p->md);
    return p->nomem ? -1 : hit;
}

int sa_received_find_ip(const char *s, size_t n, char **ip)
{
    struct rp q = {0}, *p = &q;
    *ip = NULL;
    if ((p->md = pcre2_match_data_create(4, NULL)) == NULL)
        return -1;
    int rc = 0;
    if (RXF(0, "(" IPA ")", s, n)) {
        set(p, ip, 1);
        rc = *ip == NULL ? -1 : 1;
    } else if (p->nomem) {
        rc = -1;
    }
    pcre2_match_data_free(p->md);
    return rc;
}

int sa_relay_string(const struct sa_relay *r, char **out)
{
    int n = util_asprintf(out,
                          "[ ip=%s rdns=%s helo=%s by=%s ident=%s envfrom=%s intl=%d id=%s auth=%s "
                          "msa=%d ]",
                          r->ip, r->rdns, r->helo, r->by, r->ident, r->envfrom ? r->envfrom : "",
                          r->internal ? 1 : 0, r->id, r->auth, r->msa ? 1 : 0);
    return n < 0 ? -1 : 0;
}

/* The line made one-spaced and trimmed, its closing semicolons dropped. */
static bool normalise(struct rp *p, const char *line, size_t n)
{
    /* room for the one space s/\)by /) by / adds */
    if ((p->buf = util_malloc(n + 2)) == NULL)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_blank(line[i])) {
            if (k > 0 && p->buf[k - 1] == ' ')
                continue;
            p->buf[k++] = ' ';
        } else {
            p->buf[k++] = line[i];
        }
    }
    p->s = p->buf;
    if (k > 0 && p->s[0] == ' ')
        p->s++, k--;
    if (k > 0 && p->s[k - 1] == ' ')
        k--;
    /* 1 while s/\s?;$// */
    while (k > 0 && p->s[k - 1] == ';') {
        k--;
        if (k > 0 && p->s[k - 1] == ' ')
            k--;
    }
    p->s[k] = '\0';
    p->n = k;
    return true;
}

static void truncate_at(struct rp *p, size_t at)
{
    p->n = at;
    p->s[at] = '\0';
}

static void drop_prefix(struct rp *p, size_t k)
{
    p->s += k;
    p->n -= k;
}

enum sa_rcvd_rc sa_received_parse(const char *line, size_t len, struct sa_relay *out,
                                  struct sa_rcvd_extra *extra)
{
    struct rp q = {0}, *p = &q;
    struct sa_relay r = {0};
    char *sub = NULL;
    enum sa_rcvd_rc rc = SA_RCVD_UNPARSEABLE;
    bool looked_up = false; /* SpamAssassin's $mta_looked_up_dns */
    if (extra != NULL)
        memset(extra, 0, sizeof(*extra));
    memset(out, 0, sizeof(*out));
    if ((p->md = pcre2_match_data_create(12, NULL)) == NULL || !normalise(p, line, len))
        goto nomem;
    char **fields[] = {&r.ip, &r.rdns, &r.helo, &r.by, &r.ident, &r.id, &r.auth};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if ((*fields[i] = util_strdup("")) == NULL)
            goto nomem;

    if (!MI("^\\(?from "))
        goto ignore;
    if (M("\\bwith local for\\b"))
        goto ignore;
    if (MI("^from (\\S+) by [^\\s;]+ ?;")) {
        size_t s1 = g_start(p, 1), e1 = pcre2_get_ovector_pointer(p->md)[3];
        char save = p->s[e1];
        p->s[e1] = '\0';
        bool bracketed = RXF(0, "^\\[[\\d.]+\\]$", p->s + s1, e1 - s1);
        p->s[e1] = save;
        if (!bracketed)
            goto ignore;
    }

    /* the date at the end */
    if (M("[\\s;]+(?:(?:Mon|T(?:ue|hu)|Wed|Fri|S(?:at|un)), )?\\d+ (?:J(?:an|u[nl])|Feb|Ma[ry]|"
          "A(?:pr|ug)|Sep|Oct|Nov|Dec) \\d+ \\d+:\\d+(?::\\d+)? \\S+$"))
        truncate_at(p, g_start(p, 0));
    {
        char *b = strstr(p->s, ")by ");
        if (b != NULL) {
            memmove(b + 2, b + 1, p->n - (size_t)(b + 1 - p->s) + 1);
            b[1] = ' ';
            p->n++;
        }
    }

    if (M(" id <?([^\\s<>;]{3,})"))
        set(p, &r.id, 1);
    if (M("\\bhelo=(" HC "+)(?:[^-A-Za-z0-9.^+_&:=?!@%*$\\\\/]|$)"))
        set(p, &r.helo, 1);
    else if (M("\\b(?:HELO|EHLO) (" HC "+)(?:[^-A-Za-z0-9.^+_&:=?!@%*$\\\\/]|$)"))
        set(p, &r.helo, 1);
    if (M(" by (\\S+)(?:[^-A-Za-z0-9;.]|$)"))
        set(p, &r.by, 1);

    /* the authentication the field names */
    if (M(" by ") && MI(" with ((?:ES|L|UTF8S|UTF8L)MTPS?A|ASMTP|HTTP[SU]?)(?: |;|$)"))
        set(p, &r.auth, 1);
    else if (M(" by mx\\.google\\.com with ESMTPS id [a-z0-9]{1,4}sm[0-9]{2,9}[a-z]{3}\\.[0-9]{1,"
               "3}\\.[0-9]{4}\\.(?:[0-6][0-9]\\.){4}[0-6][0-9]") &&
             M("\\(version=([^ ]+) cipher=([^\\)]+)\\)")) {
        char *v = NULL, *c = NULL, *a = NULL;
        set(p, &v, 1);
        set(p, &c, 2);
        if (v != NULL && c != NULL && util_asprintf(&a, "GMail - transport=%s cipher=%s", v, c) >= 0) {
            free(r.auth);
            r.auth = a;
        } else {
            p->nomem = true;
        }
        free(v);
        free(c);
    } else if (M("^from .*?(?:\\]\\)|\\)\\]) \\(AUTH: (LOGIN|PLAIN|DIGEST-MD5|CRAM-MD5) "
                 "\\S+(?:, .*?)?\\) by "))
        set(p, &r.auth, 1);
    else if (M("authenticated") &&
             M("^from .*?(?:\\](?: \\([^)]*\\))?\\)|\\)\\]) .*?\\(.*?authenticated.*?\\).*? by"))
        set_str(p, &r.auth, "Sendmail");
    else if (M("from \\S* \\((?:HELO|EHLO) (\\S*)\\) \\[(" IPA ")\\] by (mail\\.gmx\\.(?:net|com)) "
               "\\([^\\)]+\\) with ((?:ESMTP|SMTP))")) {
        char *a3 = NULL, *a4 = NULL, *a = NULL;
        set(p, &a3, 3);
        set(p, &a4, 4);
        if (a3 != NULL && a4 != NULL && util_asprintf(&a, "GMX (%s / %s)", a4, a3) >= 0) {
            free(r.auth);
            r.auth = a;
        } else {
            p->nomem = true;
        }
        free(a3);
        free(a4);
    } else if (M(" \\(authenticated as ") &&
               M("\\) by .+ \\(\\d{1,2}\\.\\d\\.\\d{3}(?:\\.\\d{1,3})?\\) \\(authenticated as .+\\) "
                 "id "))
        set_str(p, &r.auth, "CriticalPath");
    else if (M("\\) \\(Authenticated sender: \\S+\\) by \\S+ \\(([^\\)]+)\\) with ")) {
        char *m = NULL, *a = NULL;
        set(p, &m, 1);
        if (m != NULL && strcmp(m, "Postfix") == 0) {
            a = m;
            m = NULL;
        } else if (m == NULL || util_asprintf(&a, "Postfix (%s)", m) < 0) {
            a = NULL;
            p->nomem = true;
        }
        free(m);
        if (a != NULL) {
            free(r.auth);
            r.auth = a;
        }
    } else if (M("CommuniGate Pro (HTTP|SMTP|XIMSS|IMAP)") && M(" \\(account "))
        set_str(p, &r.auth, "Communigate");
    else if (M(" with Microsoft Exchange Server HTTP-DAV\\b"))
        set_str(p, &r.auth, "HTTP-DAV");
    else if (M(" by ") && MI(" \\(via (HTTP.?)\\)(?: |;|$)"))
        set(p, &r.auth, 1);
    if (p->nomem)
        goto nomem;

    if (strncmp(p->s, "from ", 5) == 0) {
        drop_prefix(p, 5);
        if (MI("(?:return-path:? |envelope-(?:sender|from)[ =])(\\S+)\\b"))
            set(p, &r.envfrom, 1);

        if (M(" \\((?:SquirrelMail|NaSMail) authenticated user ")) {
            if (M("(" IPA ")\\b(?![.-]).{10,80}by (\\S+) with HTTP")) {
                set(p, &r.ip, 1);
                set(p, &r.by, 2);
                goto enough;
            }
        }
        if (M("aol\\.com") && M("with HTTP \\(WebMailUI\\)")) {
            if (M("(" IPA ") by (\\S+) \\(" IPA "\\) with HTTP \\(WebMailUI\\)")) {
                set(p, &r.ip, 1);
                set(p, &r.by, 2);
                goto enough;
            }
        }

        if (M(" SMTPSVC")) {
            if (M("^(\\S*) \\(\\[(" IPA ")\\][^\\)]{0,40}\\) by (\\S+) with Microsoft SMTPSVC")) {
                set(p, &r.helo, 1);
                set(p, &r.ip, 2);
                set(p, &r.by, 3);
                goto enough;
            }
            if (M("^mail pickup service by (\\S+) with Microsoft SMTPSVC$"))
                goto ignore;
        } else if (M(" with (?:Microsoft SMTP Server|mapi id) (?:\\([^\\)]+\\) )?\\d+\\.\\d+\\.\\d+\\."
                     "\\d+(?:$| )")) {
            if (M("^(\\S+) \\(\\[?(" IPA ")(?:%[A-Z0-9._~-]*)?\\]?\\) by (\\S+) ")) {
                set(p, &r.helo, 1);
                set(p, &r.ip, 2);
                set(p, &r.by, 3);
                set_str(p, &r.id, "");
                goto enough;
            }
        } else if (M("\\[XMail ")) {
            if (M("^(\\S+) \\((\\[?" IPA "\\]?)(?::\\d+)\\) by (\\S+)(?: \\(\\S+\\))? with \\[XMail")) {
                set(p, &r.helo, 1);
                set(p, &r.ip, 2);
                set(p, &r.by, 3);
                if (M(" id <(\\S+)>"))
                    set(p, &r.id, 1);
                if (M(" from <(\\S+)>"))
                    set(p, &r.envfrom, 1);
                goto enough;
            }
        } else if (M("\\(ecelerity\\b")) {
            if (M("^\\(\\[(" IPA "):\\d+\\] helo=(\\S+)\\) by (\\S+) ")) {
                set(p, &r.ip, 1);
                set(p, &r.helo, 2);
                set(p, &r.by, 3);
                goto enough;
            }
            if (M("^\\S+ \\(\\[(" IPA "):\\d+\\]\\) by (\\S+) ")) {
                set(p, &r.ip, 1);
                set(p, &r.by, 2);
                goto enough;
            }
        } else if (M("Exim")) {
            if (M("\\bwith local(?:-\\S+)? "))
                goto ignore;
            if (M("^\\[(" IPA ")\\] \\((.*?)\\) by (\\S+) ")) {
                set(p, &r.ip, 1);
                set(p, &sub, 2);
                set(p, &r.by, 3);
                goto exim_sub;
            }
            if (M("^(\\S+) \\(\\[(" IPA ")\\](.*?)\\) by (\\S+) ")) {
                set(p, &r.rdns, 1);
                set(p, &r.ip, 2);
                set(p, &sub, 3);
                set(p, &r.by, 4);
                set(p, &r.helo, 1);
                goto exim_sub;
            }
            if (M("^(\\S+) \\[(" IPA ")\\](:\\d+)? by (\\S+) ")) {
                set(p, &r.rdns, 1);
                set(p, &r.ip, 2);
                set(p, &r.helo, 1);
                set(p, &r.by, 4);
                goto enough;
            }
            if (M("^(\\S+) "))
                set(p, &r.rdns, 1);
            if (M(" \\((\\S+)\\) "))
                set(p, &r.helo, 1);
            if (M(" \\[(" IPA ")(?:\\.\\d+)?\\] "))
                set(p, &r.ip, 1);
            if (M("by (\\S+) ")) {
                set(p, &r.by, 1);
                if (r.ip != NULL && r.ip[0] != '\0')
                    goto enough;
            }
        } else if (M(" \\(Postfix\\) with")) {
            if (M("^(\\S+) \\((\\S+) \\[(" IPA ")\\]\\) by (\\S+) ") ||
                M("^(\\S+) \\((\\S+)\\[(" IPA ")\\]\\) by (\\S+) ")) {
                looked_up = true;
                set(p, &r.helo, 1);
                set(p, &r.rdns, 2);
                set(p, &r.ip, 3);
                set(p, &r.by, 4);
                if (r.rdns != NULL && strcmp(r.rdns, "unknown") == 0)
                    set_str(p, &r.rdns, "");
                goto enough;
            }
        } else if (M("\\(Scalix SMTP Relay")) {
            if (M("^(\\S+) \\( ?(" IPA ")\\) by (\\S+)")) {
                set(p, &r.helo, 1);
                set(p, &r.ip, 2);
                set(p, &r.by, 3);
                goto enough;
            }
        } else if (M(" \\(Lotus Domino ")) {
            if (M("^(\\S+) \\(\\[(" IPA ")\\]\\) by (\\S+) \\(Lotus")) {
                looked_up = false;
                set(p, &r.helo, 1);
                set(p, &r.ip, 2);
                set(p, &r.by, 3);
                goto enough;
            }
        }

        if (M("\\bwith HTTP\\b") && M("^(" IPA ") \\(\\[" IPA "\\]\\) by (\\S+)")) {
            set(p, &r.ip, 1);
            set(p, &r.by, 2);
            goto enough;
        }

        if (!M(" by \\S+ \\(qmail-\\S+\\) with ")) {
            if (M("^(\\S+) \\((\\S+) \\[(" IPA ")\\].*\\) by (\\S+) \\(")) {
                looked_up = true;
                set(p, &r.helo, 1);
                set(p, &r.rdns, 2);
                set(p, &r.ip, 3);
                set(p, &r.by, 4);
                if (r.rdns != NULL && RXF(0, "^IDENT:([^@]*)@", r.rdns, strlen(r.rdns))) {
                    set(p, &r.ident, 1);
                    memmove(r.rdns, r.rdns + g_start(p, 0) + pcre2_get_ovector_pointer(p->md)[1],
                            strlen(r.rdns + pcre2_get_ovector_pointer(p->md)[1]) + 1);
                }
                if (r.rdns != NULL && RXF(0, "^([^@]*)@", r.rdns, strlen(r.rdns))) {
                    set(p, &r.ident, 1);
                    size_t e = pcre2_get_ovector_pointer(p->md)[1];
                    memmove(r.rdns, r.rdns + e, strlen(r.rdns + e) + 1);
                }
                goto enough;
            }
        }

        if (M("^(\\S+) \\((\\S+) \\[(" IPA ")\\]\\) by (\\S+) with \\S+ \\(")) {
            looked_up = true;
            set(p, &r.rdns, 2);
            set(p, &r.ip, 3);
            set(p, &r.helo, 1);
            set(p, &r.by, 4);
            goto enough;
        }
        if (M("^(\\S+) \\(\\[(" IPA ")\\] helo=(\\S+)\\) by (\\S+) with ")) {
            set(p, &r.rdns, 1);
            set(p, &r.ip, 2);
            set(p, &r.helo, 3);
            set(p, &r.by, 4);
            goto enough;
        }
        if (M("^(\\S+) \\(<unknown\\S*>\\[(" IPA ")\\]\\) by (\\S+) ")) {
            set(p, &r.helo, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^(\\S+) \\((\\S+\\.\\S+)\\[(" IPA ")\\]\\) by (\\S+) ")) {
            looked_up = true;
            set(p, &r.helo, 1);
            set(p, &r.rdns, 2);
            set(p, &r.ip, 3);
            set(p, &r.by, 4);
            goto enough;
        }
        if (M("^(\\S+) \\((\\S*)@\\[(" IPA ")\\].*\\) by (\\S+) \\(")) {
            looked_up = true;
            set(p, &r.helo, 1);
            set(p, &r.ip, 3);
            set(p, &r.by, 4);
            set(p, &r.ident, 2);
            goto enough;
        }
        if (M("by (\\S+\\.hotmail\\.msn\\.com) ")) {
            set(p, &r.by, 1);
            if (M("^(" IPA ") "))
                set(p, &r.ip, 1);
            goto enough;
        }
        if (M("^(\\S+) \\((?:HELO|EHLO) (\\S*)\\) \\((" IPA ")\\) by (\\S+) \\(qpsmtpd/\\S+\\) with "
              "(?:ESMTP|SMTP)") ||
            M("^(\\S+) \\(LHLO (\\S*)\\) \\((" IPA ")\\) by (\\S+) with LMTP") ||
            M("^(\\S+) \\((?:HELO|EHLO) (\\S*)\\) \\[(" IPA ")\\] by (\\S+) \\([^\\)]+\\) with "
              "(?:ESMTP|SMTP)")) {
            set(p, &r.rdns, 1);
            set(p, &r.helo, 2);
            set(p, &r.ip, 3);
            set(p, &r.by, 4);
            goto enough;
        }
        if (M("^(\\S+) \\(\\[(" IPA ")\\]\\) by (\\S+) via smtpd \\(for \\S+\\) with SMTP\\(")) {
            set(p, &r.helo, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }

        /* qmail's many forms */
        if (M("^\\S+( \\((?:HELO|EHLO) \\S*\\))? \\((\\S+@)?\\[?" IPA "\\]?\\)( \\(envelope-sender "
              "<\\S+>\\))? by \\S+( \\(.+\\))* with (.* )?(SMTP|QMQP)(?! id )")) {
            if (M("^(\\S+) \\((?:HELO|EHLO) ([^ \\(\\)]*)\\) \\((\\S*)@\\[?(" IPA
                  ")\\]?\\)( \\(envelope-sender <\\S+>\\))? by (\\S+)")) {
                set(p, &r.rdns, 1);
                set(p, &r.helo, 2);
                set(p, &r.ident, 3);
                set(p, &r.ip, 4);
                set(p, &r.by, 6);
            } else if (M("^(\\S+) \\((?:HELO|EHLO) ([^ \\(\\)]*)\\) \\(\\[?(" IPA
                         ")\\]?\\)( \\(envelope-sender <\\S+>\\))? by (\\S+)")) {
                set(p, &r.rdns, 1);
                set(p, &r.helo, 2);
                set(p, &r.ip, 3);
                set(p, &r.by, 5);
            } else if (M("^(\\S+) \\((\\S*)@\\[?(" IPA
                         ")\\]?\\)( \\(envelope-sender <\\S+>\\))? by (\\S+)")) {
                set(p, &r.helo, 1);
                set(p, &r.rdns, 1);
                set(p, &r.ident, 2);
                set(p, &r.ip, 3);
                set(p, &r.by, 5);
            } else if (M("^(\\S+) \\(\\[?(" IPA ")\\]?\\)( \\(envelope-sender <\\S+>\\))? by (\\S+)")) {
                set(p, &r.helo, 1);
                set(p, &r.rdns, 1);
                set(p, &r.ip, 2);
                set(p, &r.by, 4);
            }
            if (r.rdns != NULL && strcmp(r.rdns, "unknown") != 0)
                looked_up = true;
            else
                set_str(p, &r.rdns, "");
            goto enough;
        }

        if (M(" via HTTP$") && M("^\\[(" IPA ")\\] by (\\S+) via HTTP$")) {
            set(p, &r.ip, 1);
            set(p, &r.by, 2);
            goto enough;
        }
        if (M("^(\\S+) \\( \\[(" IPA ")\\]\\).*? by (\\S+) ")) {
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^\\((\\S+) \\[(" IPA ")\\]\\) by (\\S+) ")) {
            set(p, &r.helo, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^\\[(" IPA ")\\] by (\\S+) ") || M("^\\(\\[?(" IPA ")\\]?\\) by (\\S+) ")) {
            set(p, &r.ip, 1);
            set(p, &r.by, 2);
            goto enough;
        }
        if (M("^(\\S+) \\[(" IPA ")\\] by (\\S+) \\[" IPA "\\] with ")) {
            looked_up = true;
            set(p, &r.helo, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^(\\S+) \\[\\((" IPA ")\\)\\] by (\\S+) \\(" IPA "\\) ")) {
            set(p, &r.helo, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^(\\S+) \\(\\[(" IPA ")\\]\\) by (\\S+) \\(")) {
            looked_up = true;
            set(p, &r.helo, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^(\\S+) \\((\\S+) \\[(" IPA ")\\]\\).*? by (\\S+)\\b")) {
            char *two = NULL;
            set(p, &two, 2);
            if (two != NULL && strcmp(two, "softdnserr") == 0) {
                looked_up = false;
            } else {
                looked_up = true;
                set(p, &r.rdns, 2);
            }
            free(two);
            set(p, &r.helo, 1);
            set(p, &r.ip, 3);
            set(p, &r.by, 4);
            goto enough;
        }
        if (M("^(\\S+) \\(\\[(" IPA ")(?:[.:]\\d+)?\\]\\).*? by (\\S+) ")) {
            looked_up = true;
            set(p, &r.helo, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^(\\S+) \\((\\S+) \\[(" IPA ")\\]\\)(?: \\(authenticated bits=\\d+\\))? by (\\S+) "
              "\\(")) {
            looked_up = true;
            set(p, &r.helo, 1);
            set(p, &r.rdns, 2);
            set(p, &r.ip, 3);
            set(p, &r.by, 4);
            goto enough;
        }
        if (M("with (?:POP3|IMAP)")) {
            if (extra != NULL)
                extra->pop_fetcher = true;
            goto ignore;
        }
        if (M("^(\\S+) \\((?:HELO|EHLO) ([^\\)]*)\\) \\((\\S*@)?\\[?(" IPA ")\\]?\\).* by (\\S+) ")) {
            looked_up = true;
            set(p, &r.rdns, 1);
            set(p, &r.helo, 2);
            set(p, &r.ident, 3);
            set(p, &r.ip, 4);
            set(p, &r.by, 5);
            goto ident_at;
        }
        if (M("^(\\S+) \\((\\S*@)?\\[?(" IPA ")\\]?\\).* by (\\S+) ")) {
            looked_up = true;
            set(p, &r.rdns, 1);
            set(p, &r.helo, 1);
            set(p, &r.ident, 2);
            set(p, &r.ip, 3);
            set(p, &r.by, 4);
            goto ident_at;
        }
        if (M(" with http for ") && M("^\\[(" IPA ")\\] by (\\S+) with http for ")) {
            set(p, &r.ip, 1);
            set(p, &r.by, 2);
            goto enough;
        }
        if (M(" via smap ") && M("^(\\S+)\\((" IPA ")\\) by (\\S+) via smap ")) {
            looked_up = true;
            set(p, &r.rdns, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^(\\S+)\\((" IPA "), (?:HELO|EHLO) (\\S*)\\) by (\\S+) via smap ")) {
            looked_up = true;
            set(p, &r.rdns, 1);
            set(p, &r.ip, 2);
            set(p, &r.helo, 3);
            set(p, &r.by, 4);
            goto enough;
        }
        if ((M(" \\(Post") && M("^\\[(" IPA ")\\] by (\\S+) \\(Post")) ||
            (M(" \\(ArGoSoft") && M("^\\[(" IPA ")\\] by (\\S+) \\(ArGoSoft")) ||
            M("^(" IPA ") by (\\S+) \\((?:SMTPL|InterScan)\\b")) {
            set(p, &r.ip, 1);
            set(p, &r.by, 2);
            goto enough;
        }
        if (M(" with BSMTP") && M("^\\S+ by \\S+ with BSMTP"))
            goto ignore;
        if (M("^(\\S+) \\((\\S+) \\[(" IPA ")\\]\\) by (\\S+) with ")) {
            looked_up = true;
            set(p, &r.helo, 1);
            set(p, &r.rdns, 2);
            set(p, &r.ip, 3);
            set(p, &r.by, 4);
            goto enough;
        }
        if (M("^(\\S+) \\((?:HELO|EHLO) (\\S*)\\) \\((?:(\\S+)@)?(" IPA ").*?\\) by (\\S+) with ")) {
            looked_up = true;
            set(p, &r.rdns, 1);
            set(p, &r.helo, 2);
            set(p, &r.ip, 4);
            set(p, &r.by, 5);
            if (g_set(p, 3))
                set(p, &r.ident, 3);
            goto enough;
        }
        if (M("^\\[(" IPA ")\\] \\((?:account \\S+ )?(?:HELO|EHLO) (\\S*)\\) by (\\S+) \\(")) {
            set(p, &r.ip, 1);
            set(p, &r.helo, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M(" \\(CommuniGate Pro") && M("^(\\S+) \\(\\[(" IPA ")\\] verified\\) by (\\S+) \\(")) {
            looked_up = true;
            set(p, &r.rdns, 1);
            set(p, &r.helo, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^\\(\\[(" IPA ")\\]\\) by (\\S+) with ")) {
            set(p, &r.ip, 1);
            set(p, &r.by, 2);
            goto enough;
        }
        if (M("^([^\\d]\\S+) \\((" IPA ")\\) by (\\S+) ")) {
            set(p, &r.helo, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^\\S+ \\(\\S+\\) by \\S+ \\(Content Technologies "))
            goto ignore;
        if (M("^(\\S+) \\(\\[(" IPA ")\\] \\[(\\S+)\\]\\) by (\\S+) with ")) {
            set(p, &r.helo, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 4);
            goto enough;
        }
        if (M("^(" IPA ") by (\\S+) with ")) {
            set(p, &r.ip, 1);
            set(p, &r.by, 2);
            goto enough;
        }
        if (M("^(\\S+) \\((\\S+)\\[(" IPA ")\\]\\) by (\\S+) ")) {
            looked_up = true;
            set(p, &r.helo, 1);
            set(p, &r.rdns, 2);
            set(p, &r.ip, 3);
            set(p, &r.by, 4);
            goto enough;
        }
        if (M("^\\[(" IPA ")\\]\\S+ \\((?:HELO|EHLO) (\\S*)\\) by (\\S+) ") ||
            M("^(" IPA ") \\((?:HELO|EHLO) (\\S*)\\) by (\\S+) ")) {
            set(p, &r.ip, 1);
            set(p, &r.helo, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^(\\S+) \\[(" IPA ")\\] by (\\S+) ")) {
            set(p, &r.helo, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^(\\S+)\\((" IPA ")\\) by (\\S+) ")) {
            set(p, &r.rdns, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^\\[(" IPA ")\\] by (\\S+) \\(MailGate ")) {
            set(p, &r.ip, 1);
            set(p, &r.by, 2);
            goto enough;
        }
        if (M("^(\\S+) \\(unverified \\[(" IPA ")\\]\\) by (\\S+) ")) {
            set(p, &r.helo, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^(" IPA ") \\([A-Za-z][^\\)]+\\) by (\\S+) with ")) {
            set(p, &r.ip, 1);
            set(p, &r.by, 2);
            goto enough;
        }
        if (M("^\\[(" IPA ")\\] \\(([^\\)]+)\\) by (\\S+) ")) {
            set(p, &r.ip, 1);
            set(p, &sub, 2);
            set(p, &r.by, 3);
            goto exim_sub;
        }
        if (M("^(\\S+) \\((?:\\S+@)?(" IPA ")\\) by (\\S+) with ")) {
            set(p, &r.rdns, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^(\\S+)\\((" IPA ")\\)(?:, claiming to be \"(\\S+)\")? via \\S+ by (\\S+),")) {
            set(p, &r.rdns, 1);
            set(p, &r.ip, 2);
            set(p, &r.helo, 3);
            set(p, &r.by, 4);
            if (r.rdns != NULL && strcmp(r.rdns, "UNKNOWN") != 0)
                looked_up = true;
            goto enough;
        }
        if (M("^(\\S+) \\((\\S+)@(" IPA ") with login\\) by (\\S+\\.yahoo\\.com) with SMTP")) {
            set(p, &r.helo, 1);
            set(p, &r.ip, 3);
            set(p, &r.by, 4);
            goto enough;
        }
        if (M("^X-Originating-IP: (" IPA ")$")) {
            set(p, &r.ip, 1);
            set_str(p, &r.by, "");
            goto enough;
        }

        /* formats to ignore */
        if (M("^\\S+ \\([^\\s@]+@" LOCALHOST "\\) by \\S+ \\(") ||
            M("^\\S+ \\S+ by \\S+ with local-e?smtp ") ||
            M("^127\\.0\\.0\\.1 \\(AVG SMTP \\S+ \\[\\S+\\]\\)") ||
            M("^\\S+@\\S+ by \\S+ by uid \\S+ ") || M("^\\S+@\\S+ by \\S+ ") ||
            M("^Unknown/Local \\(") || M("^" LOCALHOST " \\((?:\\S+@)?" LOCALHOST "[\\)\\[]") ||
            M("^\\S+ \\((?:\\S+@)?" LOCALHOST "\\) ") ||
            M("^\\S+ \\(\\S+@\\S+ \\[" LOCALHOST "\\]\\) ") || M("^\\(AUTH: \\S+\\) by \\S+ with ") ||
            M("^localhost \\(localhost \\[\\[UNIX: localhost\\]\\]\\) by ") ||
            M("^\\S+\\.amazon\\.com by \\S+\\.amazon\\.com with ESMTP \\(peer crosscheck: ") ||
            M("^[^.]+ by \\S+ with Novell_GroupWise") ||
            M("^no\\.name\\.available by \\S+ via smtpd \\(for "))
            goto ignore;
        if (M("^\\S+ by \\S+ \\(.{0,100}\\) with qmail-scanner")) {
            if (extra != NULL && r.envfrom != NULL) {
                envfrom_clean(r.envfrom);
                extra->qmail_scanner_envfrom = r.envfrom;
                r.envfrom = NULL;
            }
            goto ignore;
        }
        if (M("^\\S+ by \\S+ with local") ||
            M("^\\S+ \\(\\[unix socket\\]\\) by \\S+ \\(Cyrus v[0-9]*?\\.[0-9]*?\\.[0-9]*?\\) with "
              "LMTPA") ||
            M("^\\S+ by \\S+ (?:with|via|for|\\()") ||
            M("^\\S+ (?:(?:with|via|for) \\S+|\\(unverified\\)) by\\b") ||
            M("^\\S+ \\(unknown\\) by \\S+ \\(SG\\) with \\b") ||
            M("^\\S+ \\(\\S+ \\[local\\]\\) by \\S+ \\(OpenSMTPD\\) with \\b") ||
            M("\\(LSMTP for") || M("^\\(\\[" LOCALHOST "\\]\\) with MailEnable ") ||
            M("^facebook\\.com \\([^\\)]+\\) by facebook\\.com with Thrift id \\S+$") ||
            M("^\\S+ named \\S+ by gmailapi\\.google\\.com with HTTPREST$") || M("^\\S+ id \\S+$") ||
            M("^\\[<.*? \\(Jetsend"))
            goto ignore;
        if ((r.helo == NULL || r.helo[0] == '\0') && M("^(\\S+)[^-A-Za-z0-9.]"))
            set(p, &r.helo, 1);
    } else if (strncmp(p->s, "FROM ", 5) == 0) {
        drop_prefix(p, 5);
        if (M("^(\\S+) \\((\\S+) \\[(" IPA ")\\]\\) BY (\\S+) (?:\\([^\\)]+\\) WITH SMTP )?ID "
              "<?(\\S+?)>?(?: FOR <[^>]+>)?$")) {
            looked_up = true;
            set(p, &r.helo, 1);
            set(p, &r.rdns, 2);
            set(p, &r.ip, 3);
            set(p, &r.by, 4);
            set(p, &r.id, 5);
            if (r.rdns != NULL && strcmp(r.rdns, "unverified") == 0)
                set_str(p, &r.rdns, "");
            goto enough;
        }
    } else if (strncmp(p->s, "(from ", 6) == 0) {
        drop_prefix(p, 6);
        if (M("^(\\S*) \\[(" IPA ")\\]\\) by (\\S+) \\(NAVGW .*?\\) with ")) {
            set(p, &r.helo, 1);
            set(p, &r.ip, 2);
            set(p, &r.by, 3);
            goto enough;
        }
        if (M("^\\S+@localhost\\) by \\S+ ") ||
            M("^[^\\s@]+@[^)]+\\) by \\S+\\(jqueuemail\\) id [^\\s;]+"))
            goto ignore;
    }

    if ((r.ip == NULL || r.ip[0] == '\0') && M("\\[(" IPA ")\\]"))
        set(p, &r.ip, 1);
    if (p->nomem)
        goto nomem;
    if (r.ip[0] != '\0' && r.by[0] != '\0')
        goto enough;
    goto done; /* unparseable */

ident_at:
    if (r.ident != NULL) {
        size_t k = strlen(r.ident);
        if (k > 0 && r.ident[k - 1] == '@')
            r.ident[k - 1] = '\0';
    }
    goto enough;

exim_sub:
    if (sub != NULL) {
        sub_take(p, sub, RXF(0, "helo=(\\S+)", sub, strlen(sub)), &r.helo);
        sub_take(p, sub, RXF(0, "ident=(\\S*)", sub, strlen(sub)), &r.ident);
    }
    goto enough;

enough:
    if (p->nomem)
        goto nomem;
    {
        size_t k = strlen(r.rdns);
        while (k > 0 && r.rdns[k - 1] == '.')
            r.rdns[--k] = '\0';
        if (strcasecmp(r.rdns, "unknown") == 0 || r.rdns[0] == '[')
            r.rdns[0] = '\0';
        char *ip = r.ip;
        if (strncasecmp(ip, "ipv6:", 5) == 0)
            memmove(ip, ip + 5, strlen(ip + 5) + 1);
        if (ip[0] == '[')
            memmove(ip, ip + 1, strlen(ip));
        k = strlen(ip);
        if (k > 0 && ip[k - 1] == ']')
            ip[--k] = '\0';
        /* a scoped address's zone (RFC 4007): s/%[A-Z0-9._~-]*\z//i */
        char *pct = strrchr(ip, '%');
        if (pct != NULL && strspn(pct + 1,
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-") ==
                               strlen(pct + 1))
            *pct = '\0';
        if (RXF(PCRE2_CASELESS, "^0*:0*:(?:0*:)*ffff:(\\d+\\.\\d+\\.\\d+\\.\\d+)$", ip, strlen(ip))) {
            size_t s1 = g_start(p, 1);
            memmove(ip, ip + s1, strlen(ip + s1) + 1);
        }
        k = strlen(r.by);
        if (k > 0 && r.by[k - 1] == ';')
            r.by[k - 1] = '\0';
        strip_all(r.ip);
        strip_all(r.rdns);
        strip_all(r.helo);
        strip_all(r.by);
        strip_all(r.ident);
        if (r.envfrom != NULL)
            envfrom_clean(r.envfrom);
        if (r.rdns[0] == '\0') {
            if (looked_up)
                r.no_reverse_dns = true;
            else
                r.rdns_not_in_headers = true;
        }
        int pv = sa_ip_is_private(r.ip);
        if (pv < 0)
            goto nomem;
        r.ip_private = pv == 1;
    }
    if (p->nomem)
        goto nomem;
    rc = SA_RCVD_PARSED;
    *out = r;
    memset(&r, 0, sizeof(r));
    goto done;

ignore:
    rc = p->nomem ? SA_RCVD_NOMEM : SA_RCVD_IGNORED;
    goto done;
nomem:
    rc = SA_RCVD_NOMEM;
    if (extra != NULL)
        sa_rcvd_extra_clear(extra);
done:
    sa_relay_clear(&r);
    free(sub);
    free(q.buf);
    pcre2_match_data_free(q.md);
    return rc;
}
