/*
 * sa_eval_relay - SpamAssassin's tests of the relay chain (Plugin::RelayEval),
 * natively, over the chain sa_relays builds for the message:
 *
 *   check_all_trusted()        trusted relays only, none unparseable
 *   check_no_relays()          no relay at all, none unparseable
 *   check_relays_unparseable() a Received field SpamAssassin cannot read
 *   check_for_numeric_helo()   an untrusted relay's HELO a public IPv4 address
 *   helo_ip_mismatch()         an untrusted relay's public IPv4 HELO outside
 *                              the /24-ish prefix of its public address
 *   check_for_no_rdns_dotcom_helo()  the last public untrusted relay HELOs
 *                              as a big mail service and has no rDNS
 *   check_for_sender_no_reverse()    the first untrusted relay's rDNS has a
 *                              dot and its address is public (sic, as there)
 *   check_for_forged_received_trail(), check_for_forged_received_ip_helo()
 *                              a by= that is not the previous relay's rDNS
 *                              domain (more than once), an IP HELO of
 *                              another class B
 *   check_for_from_domain_in_received_headers(DOMAIN, 'true'|'false')
 *                              a relay from DOMAIN by DOMAIN when From has it
 *   check_for_illegal_ip()     retired there: never hits
 *
 * What it promises: each is SpamAssassin 4.0's function over the same chain
 * (untrusted relays are the ones after the trust boundary, newest first);
 * the chain is built once per message, when the first of these runs.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/sa_eval.h"
#include "rules/sa_relays.h"
#include "util/alloc.h"

/* SpamAssassin's IS_IPV4_ADDRESS: four octets, no leading zero */
static bool is_ipv4(const char *s)
{
    for (int i = 0; i < 4; i++) {
        int n = 0;
        const char *st = s;
        while (isdigit((unsigned char)*s) && n < 3)
            s++, n++;
        if (n == 0 || (n > 1 && *st == '0') || atoi(st) > 255 || isdigit((unsigned char)*s))
            return false;
        if (i < 3 && *s++ != '.')
            return false;
    }
    return *s == '\0';
}

static const struct sa_relay *untrusted(const struct sa_relays *r, size_t i)
{
    return &r->v[r->list[SA_RL_UNTRUSTED][i]];
}

static int all_trusted(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    const struct sa_relays *r = sa_relays_of(m);
    if (r == NULL)
        return -1;
    return r->count[SA_RL_TRUSTED] > 0 && r->count[SA_RL_UNTRUSTED] == 0 && r->unparseable == 0;
}

static int no_relays(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    const struct sa_relays *r = sa_relays_of(m);
    if (r == NULL)
        return -1;
    return r->count[SA_RL_TRUSTED] == 0 && r->count[SA_RL_UNTRUSTED] == 0 && r->unparseable == 0;
}

static int unparseable(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    const struct sa_relays *r = sa_relays_of(m);
    if (r == NULL)
        return -1;
    return r->unparseable > 0;
}

static int illegal_ip(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    (void)m;
    return 0;
}

static bool numeric_helo_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, 0, why, wn) &&
           sa_eval_compile(c,
                           "\\bhelo=(\\b(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]"
                           "\\d|25[0-5]|[1-9]\\d|\\d)\\.(?:1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\.(?"
                           ":1\\d\\d|2[0-4]\\d|25[0-5]|[1-9]\\d|\\d)\\b)(?=[\\x00-\\x20,;\\[()<>]|\\z)",
                           PCRE2_CASELESS, why, wn);
}

static int numeric_helo(const struct sa_eval_call *c, struct rules_msg *m)
{
    const struct sa_relays *r = sa_relays_of(m);
    if (r == NULL)
        return -1;
    const char *s = r->str[SA_RL_UNTRUSTED];
    size_t gs, gl;
    int rc = sa_eval_match(c, 0, NULL, s, strlen(s), 1, &gs, &gl);
    if (rc != 1)
        return rc;
    char ip[16];
    if (gl >= sizeof(ip))
        return 0;
    memcpy(ip, s + gs, gl);
    ip[gl] = '\0';
    int pv = sa_ip_is_private(ip);
    return pv < 0 ? -1 : pv == 0;
}

static int helo_ip_mismatch(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    const struct sa_relays *r = sa_relays_of(m);
    if (r == NULL)
        return -1;
    for (size_t i = 0; i < r->count[SA_RL_UNTRUSTED]; i++) {
        const struct sa_relay *rl = untrusted(r, i);
        if (!is_ipv4(rl->helo) || sa_ip_is_private(rl->helo) != 0)
            continue;
        if (!is_ipv4(rl->ip) || rl->ip_private || strcmp(rl->helo, rl->ip) == 0)
            continue;
        /* the HELO's first three octets, with their dots: /^(\d+\.\d+\.\d+\.)/ */
        const char *d = rl->helo;
        for (int k = 0; k < 3; k++)
            d = strchr(d, '.') + 1;
        if (strncmp(rl->ip, rl->helo, (size_t)(d - rl->helo)) != 0)
            return 1;
    }
    return 0;
}

static bool dotcom_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, 0, why, wn) &&
           sa_eval_compile(c,
                           "(?:\\.|^)(lycos\\.com|lycos\\.co\\.uk|hotmail\\.com|localhost\\.com|"
                           "excite\\.com|caramail\\.com|cs\\.com|aol\\.com|msn\\.com|yahoo\\.com|"
                           "drizzle\\.com)$",
                           PCRE2_CASELESS, why, wn);
}

static int no_rdns_dotcom_helo(const struct sa_eval_call *c, struct rules_msg *m)
{
    const struct sa_relays *r = sa_relays_of(m);
    if (r == NULL)
        return -1;
    int hit = 0;
    /* each public untrusted relay sets the answer again: the last one's counts */
    for (size_t i = 0; i < r->count[SA_RL_UNTRUSTED]; i++) {
        const struct sa_relay *rl = untrusted(r, i);
        if (rl->ip_private)
            continue;
        hit = 0;
        int rc = sa_eval_match(c, 0, NULL, rl->helo, strlen(rl->helo), 0, NULL, NULL);
        if (rc < 0)
            return -1;
        if (rc == 1 && rl->no_reverse_dns)
            hit = 1;
    }
    return hit;
}

static int sender_no_reverse(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    const struct sa_relays *r = sa_relays_of(m);
    if (r == NULL)
        return -1;
    size_t n = r->count[SA_RL_UNTRUSTED];
    if (n == 0)
        return 0;
    const struct sa_relay *rl = untrusted(r, n - 1);
    return strchr(rl->rdns, '.') != NULL && !rl->ip_private;
}

/* RelayEval's hostname_to_domain, over a lower-cased name, into out */
static void to_domain(const char *h, char *out, size_t on)
{
    bool alpha = false;
    for (const char *p = h; *p && !alpha; p++)
        alpha = isalpha((unsigned char)*p);
    size_t n = strlen(h);
    if (!alpha) {
        snprintf(out, on, "%s", h);
        return;
    }
    /* split(/\./): the empty fields at the end dropped */
    size_t e = n;
    while (e > 0 && h[e - 1] == '.')
        e--;
    size_t parts = e > 0 ? 1 : 0, dot[2] = {0, 0}, seen = 0;
    for (size_t i = 0; i < e; i++)
        parts += h[i] == '.';
    for (size_t i = e; i-- > 0 && seen < 2;)
        if (h[i] == '.')
            dot[seen++] = i;
    /* the last field: /(?:\S{3,}|ie|fr|de)/, anywhere in it */
    const char *last = seen > 0 ? h + dot[0] + 1 : h;
    size_t ll = (size_t)(h + e - last), run = 0;
    bool fits = memmem(last, ll, "ie", 2) || memmem(last, ll, "fr", 2) || memmem(last, ll, "de", 2);
    for (size_t i = 0; i < ll && !fits; i++)
        fits = (run = isspace((unsigned char)last[i]) ? 0 : run + 1) >= 3;
    snprintf(out, on, "%s", h);
    if (parts > 1 && fits) {
        /* the last two fields */
        size_t from = seen > 1 ? dot[1] + 1 : 0;
        snprintf(out, on, "%.*s", (int)(e - from), h + from);
    } else if (parts > 2) {
        size_t d3 = 0, k = 0;
        for (size_t i = e; i-- > 0;)
            if (h[i] == '.' && ++k == 3) {
                d3 = i + 1;
                break;
            }
        snprintf(out, on, "%.*s", (int)(e - d3), h + d3);
    }
}

static void lower(const char *s, char *out, size_t on)
{
    size_t i = 0;
    for (; s[i] && i + 1 < on; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
}

static bool word(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* /^\w+(?:[\w.-]+\.)+\w+$/: octets of [\w.-], a word octet first, a last
 * dot at 2 or later with word octets only after it */
static bool dotted_host(const char *s)
{
    size_t n = strlen(s);
    const char *ld = strrchr(s, '.');
    if (n == 0 || !word(s[0]) || ld == NULL || ld - s < 2 || ld[1] == '\0')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!word(s[i]) && s[i] != '.' && s[i] != '-')
            return false;
    for (const char *p = ld + 1; *p; p++)
        if (!word(*p))
            return false;
    return true;
}

struct forged {
    int mismatch_from, mismatch_ip_helo;
};

static int forged_counts(struct rules_msg *m, struct forged *out)
{
    const struct sa_relays *r = sa_relays_of(m);
    if (r == NULL)
        return -1;
    size_t n = r->count[SA_RL_UNTRUSTED];
    *out = (struct forged){0};
    char(*from)[256] = util_calloc(n ? n : 1, sizeof(*from));
    bool *undef = util_calloc(n ? n : 1, sizeof(bool));
    if (from == NULL || undef == NULL) {
        free(from);
        free(undef);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char lc[256];
        lower(untrusted(r, i)->rdns, lc, sizeof(lc));
        to_domain(lc, from[i], sizeof(from[i]));
    }
    for (size_t i = 0; i < n; i++) {
        const struct sa_relay *rl = untrusted(r, i);
        char lc[256], by[256], helo[256];
        lower(rl->by, lc, sizeof(lc));
        to_domain(lc, by, sizeof(by));
        if (!dotted_host(by))
            continue;
        if (!undef[i] && (strcmp(from[i], "localhost") == 0 ||
                          strcmp(from[i], "localhost.localdomain") == 0) &&
            strcmp(rl->ip, "127.0.0.1") == 0)
            undef[i] = true;
        lower(rl->helo, lc, sizeof(lc));
        to_domain(lc, helo, sizeof(helo));
        unsigned h[4], f[4];
        char tail;
        if (sscanf(helo, "%u.%u.%u.%u%c", &h[0], &h[1], &h[2], &h[3], &tail) == 4 &&
            strspn(helo, "0123456789.") == strlen(helo) &&
            sscanf(rl->ip, "%u.%u.%u.%u%c", &f[0], &f[1], &f[2], &f[3], &tail) == 4 &&
            strspn(rl->ip, "0123456789.") == strlen(rl->ip) && strcmp(rl->ip, helo) != 0) {
            char hb[32], fb[32];
            snprintf(hb, sizeof(hb), "%.*s", (int)(strchr(strchr(helo, '.') + 1, '.') - helo),
                     helo);
            snprintf(fb, sizeof(fb), "%.*s",
                     (int)(strchr(strchr(rl->ip, '.') + 1, '.') - rl->ip), rl->ip);
            int pv = sa_ip_is_private(helo);
            if (pv < 0)
                goto nomem;
            if (strcmp(hb, fb) != 0 && pv == 0)
                out->mismatch_ip_helo++;
        }
        if (i > 0 && !undef[i - 1] && dotted_host(from[i - 1]) && strcmp(by, from[i - 1]) != 0 &&
            !(strcmp(by, "msn.com") == 0 && strcmp(from[i - 1], "hotmail.com") == 0))
            out->mismatch_from++;
    }
    free(from);
    free(undef);
    return 0;
nomem:
    free(from);
    free(undef);
    return -1;
}

static int forged_trail(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    struct forged f;
    if (forged_counts(m, &f) != 0)
        return -1;
    return f.mismatch_from > 1;
}

static int forged_ip_helo(const struct sa_eval_call *c, struct rules_msg *m)
{
    (void)c;
    struct forged f;
    if (forged_counts(m, &f) != 0)
        return -1;
    return f.mismatch_ip_helo > 0;
}

/* Perl's \Q...\E */
static char *quote_meta(const char *s)
{
    size_t n = strlen(s);
    char *q = util_malloc(2 * n + 1), *p = q;
    if (q == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            *p++ = '\\';
        *p++ = s[i];
    }
    *p = '\0';
    return q;
}

static bool from_domain_check(struct sa_eval_call *c, char *why, size_t wn)
{
    if (!sa_eval_nargs(c, 2, 2, why, wn))
        return false;
    const char *d = c->args.v[0];
    char *q = quote_meta(d), *p1 = NULL, *p2 = NULL;
    bool ok = q != NULL && util_asprintf(&p1, "\\b%s", q) >= 0 &&
              /* the domain goes into this one unquoted, as there */
              util_asprintf(&p2, " rdns=\\S*\\b%s [^\\]]*by=\\S*\\b%s ", d, d) >= 0;
    if (!ok) {
        snprintf(why, wn, "out of memory");
    } else {
        ok = sa_eval_compile(c, p1, PCRE2_CASELESS, why, wn) && sa_eval_compile(c, p2, 0, why, wn);
    }
    free(q);
    free(p1);
    free(p2);
    return ok;
}

static int from_domain(const struct sa_eval_call *c, struct rules_msg *m)
{
    bool desired = strcmp(c->args.v[1], "true") == 0;
    struct sa_eval_buf b = {0};
    if (sa_eval_get_addrs(m, "From", &b) < 0)
        return -1;
    int rc = sa_eval_match(c, 0, NULL, b.s ? b.s : "", b.n, 0, NULL, NULL);
    sa_eval_buf_free(&b);
    if (rc != 1)
        return rc < 0 ? -1 : 0;
    const struct sa_relays *r = sa_relays_of(m);
    if (r == NULL)
        return -1;
    char *both = NULL;
    if (util_asprintf(&both, "%s\n%s", r->str[SA_RL_TRUSTED], r->str[SA_RL_UNTRUSTED]) < 0)
        return -1;
    rc = sa_eval_match(c, 1, NULL, both, strlen(both), 0, NULL, NULL);
    free(both);
    if (rc < 0)
        return -1;
    return rc == 1 ? desired : !desired;
}

long sa_eval_get_received(struct rules_msg *m, struct sa_eval_buf *b)
{
    long n = sa_eval_get(m, "Received", false, b);
    if (n < 0)
        return -1;
    const struct sa_relays *r = sa_relays_of(m);
    if (r == NULL)
        return -1;
    if (r->facts_line == NULL)
        return n;
    struct sa_eval_buf t = {0};
    if (sa_eval_buf_add(&t, r->facts_line, strlen(r->facts_line)) != 0 ||
        sa_eval_buf_add(&t, "\n", 1) != 0 || (b->n > 0 && sa_eval_buf_add(&t, b->s, b->n) != 0)) {
        sa_eval_buf_free(&t);
        return -1;
    }
    sa_eval_buf_free(b);
    *b = t;
    return n + 1;
}

const struct sa_eval_def sa_eval_relay_defs[] = {
    {"check_all_trusted", all_trusted, NULL},
    {"check_no_relays", no_relays, NULL},
    {"check_relays_unparseable", unparseable, NULL},
    {"check_for_illegal_ip", illegal_ip, NULL},
    {"check_for_numeric_helo", numeric_helo, numeric_helo_check},
    {"helo_ip_mismatch", helo_ip_mismatch, NULL},
    {"check_for_no_rdns_dotcom_helo", no_rdns_dotcom_helo, dotcom_check},
    {"check_for_sender_no_reverse", sender_no_reverse, NULL},
    {"check_for_forged_received_trail", forged_trail, NULL},
    {"check_for_forged_received_ip_helo", forged_ip_helo, NULL},
    {"check_for_from_domain_in_received_headers", from_domain, from_domain_check},
    {NULL, NULL, NULL},
};
