/*
 * spf_record - RFC 7208 record grammar and static limits: parser and validator, pure.
 *
 * A record is "v=spf1" then terms separated by one or more SP.  Each term is
 * a directive (optional qualifier, mechanism name in any case, argument) or
 * a modifier (name "=" macro-string).  The parser refuses what RFC 7208's
 * grammar refuses and libspf2's compiler accepts or refuses wrongly:
 * domain-specs are checked as macro-strings whose end is a macro or a
 * "." toplabel; CIDR lengths have no leading zeros and "/0" is a valid
 * length; redirect= and exp= may each appear once; unknown modifiers must
 * have a grammatical name and value.  Errors name the term's offset.
 */
#include "spf_record.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spf_macro.h"

static bool rec_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool rec_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool rec_alnum(unsigned char c)
{
    return rec_alpha(c) || rec_digit(c);
}

static int rec_fail(struct spf_record_error *err, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int rec_fail(struct spf_record_error *err, size_t offset, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->offset = offset;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return -1;
}

bool spf_record_is_spf1(const char *txt, size_t len)
{
    return len >= 6 && strncasecmp(txt, "v=spf1", 6) == 0 && (len == 6 || txt[6] == ' ');
}

const char *spf_mech_name(enum spf_mech mech)
{
    static const char *const names[] = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"};
    return (unsigned)mech < sizeof names / sizeof names[0] ? names[mech] : "?";
}

bool spf_mech_queries_dns(enum spf_mech mech)
{
    return mech == SPF_MECH_INCLUDE || mech == SPF_MECH_A || mech == SPF_MECH_MX ||
           mech == SPF_MECH_PTR || mech == SPF_MECH_EXISTS;
}

static bool rec_toplabel_ok(const char *s, size_t n)
{
    if (n == 0 || !rec_alnum((unsigned char)s[0]) || !rec_alnum((unsigned char)s[n - 1]))
        return false;
    bool alpha = false, dash = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '-')
            dash = true;
        else if (rec_alpha(c))
            alpha = true;
        else if (!rec_digit(c))
            return false;
    }
    return alpha || dash;
}

bool spf_record_domain_end_ok(const char *s, size_t len)
{
    /* Find where the last token starts, walking macro-expands as units. */
    bool last_macro = false;
    for (size_t i = 0; i < len;) {
        if (s[i] == '%' && i + 1 < len) {
            if (s[i + 1] == '{') {
                const char *close = memchr(s + i, '}', len - i);
                if (close == NULL)
                    return false;
                i = (size_t)(close - s) + 1;
            } else {
                i += 2;
            }
            last_macro = true;
        } else {
            i++;
            last_macro = false;
        }
    }
    if (last_macro)
        return true;
    size_t n = len;
    if (n > 0 && s[n - 1] == '.')
        n--;
    const char *dot = NULL;
    for (size_t i = n; i > 0; i--) {
        if (s[i - 1] == '.') {
            dot = s + i - 1;
            break;
        }
    }
    if (dot == NULL)
        return false;
    return rec_toplabel_ok(dot + 1, (size_t)(s + n - (dot + 1)));
}

static int rec_domain_spec(const char *s, size_t n, size_t off, const char *what,
                           struct spf_record_error *err)
{
    size_t pos;
    if (n == 0)
        return rec_fail(err, off, "%s: empty domain", what);
    if (!spf_macro_check(s, n, 0, &pos))
        return rec_fail(err, off + pos, "%s: invalid macro or character in domain '%.*s'", what,
                        (int)(n > 64 ? 64 : n), s);
    if (!spf_record_domain_end_ok(s, n))
        return rec_fail(err, off, "%s: invalid domain '%.*s'", what, (int)(n > 64 ? 64 : n), s);
    return 0;
}

/* Decimal without leading zeros, at most max.  -1 when not. */
static long rec_cidr(const char *s, size_t n, unsigned max)
{
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rec_digit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= (long)max ? v : -1;
}

/* Strict dotted quad (RFC 7208 ip4-network: no leading zeros). */
static bool rec_ip4(const char *s, size_t n, unsigned char out[4])
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start = i;
        unsigned v = 0;
        while (i < n && rec_digit((unsigned char)s[i]) && i - start < 3) {
            v = v * 10 + (unsigned)(s[i] - '0');
            i++;
        }
        size_t dl = i - start;
        if (dl == 0 || v > 255 || (dl > 1 && s[start] == '0'))
            return false;
        out[part] = (unsigned char)v;
        if (part < 3) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
    }
    return i == n;
}

static bool rec_ip6(const char *s, size_t n, unsigned char out[16])
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(AF_INET6, buf, out) == 1;
}

/* Split a trailing dual-cidr-length off arg: sets *dlen to what precedes it. */
static int rec_dual_cidr(const char *arg, size_t n, size_t off, struct spf_term *t, size_t *dlen,
                         struct spf_record_error *err)
{
    size_t p = n, q = n;
    while (q > 0 && rec_digit((unsigned char)arg[q - 1]))
        q--;
    if (q < p && q >= 2 && arg[q - 1] == '/' && arg[q - 2] == '/') {
        long v = rec_cidr(arg + q, p - q, 128);
        if (v < 0)
            return rec_fail(err, off + q, "invalid ip6 cidr length '%.*s'", (int)(p - q), arg + q);
        t->cidr6 = (unsigned)v;
        p = q - 2;
        q = p;
        while (q > 0 && rec_digit((unsigned char)arg[q - 1]))
            q--;
    }
    if (q < p && q >= 1 && arg[q - 1] == '/') {
        long v = rec_cidr(arg + q, p - q, 32);
        if (v < 0)
            return rec_fail(err, off + q, "invalid ip4 cidr length '%.*s'", (int)(p - q), arg + q);
        t->cidr4 = (unsigned)v;
        p = q - 1;
    }
    *dlen = p;
    return 0;
}

static int rec_directive(const char *s, size_t n, size_t off, struct spf_term *t,
                         struct spf_record_error *err)
{
    size_t i = 0;
    t->qualifier = '+';
    if (n > 0 && (s[0] == '+' || s[0] == '-' || s[0] == '~' || s[0] == '?')) {
        t->qualifier = s[0];
        i = 1;
    }
    size_t name = i;
    while (i < n && rec_alnum((unsigned char)s[i]))
        i++;
    size_t nlen = i - name;
    const char *nm = s + name;
    const char *arg = s + i;
    size_t alen = n - i;
    t->cidr4 = 32;
    t->cidr6 = 128;

#define REC_IS(lit) (nlen == sizeof(lit) - 1 && strncasecmp(nm, lit, nlen) == 0)
    if (REC_IS("all")) {
        t->mech = SPF_MECH_ALL;
        if (alen != 0)
            return rec_fail(err, off + i, "all takes no argument");
        return 0;
    }
    if (REC_IS("include") || REC_IS("exists")) {
        t->mech = REC_IS("include") ? SPF_MECH_INCLUDE : SPF_MECH_EXISTS;
        if (alen == 0 || arg[0] != ':')
            return rec_fail(err, off + i, "%s needs ':' and a domain", spf_mech_name(t->mech));
        t->domain = arg + 1;
        t->domain_len = alen - 1;
        return rec_domain_spec(t->domain, t->domain_len, off + i + 1, spf_mech_name(t->mech), err);
    }
    if (REC_IS("ptr")) {
        t->mech = SPF_MECH_PTR;
        if (alen == 0)
            return 0;
        if (arg[0] != ':')
            return rec_fail(err, off + i, "ptr: unexpected '%c'", arg[0]);
        t->domain = arg + 1;
        t->domain_len = alen - 1;
        return rec_domain_spec(t->domain, t->domain_len, off + i + 1, "ptr", err);
    }
    if (REC_IS("a") || REC_IS("mx")) {
        t->mech = REC_IS("a") ? SPF_MECH_A : SPF_MECH_MX;
        if (alen == 0)
            return 0;
        size_t dlen;
        if (arg[0] == '/') {
            if (rec_dual_cidr(arg, alen, off + i, t, &dlen, err) < 0)
                return -1;
            if (dlen != 0)
                return rec_fail(err, off + i, "%s: invalid cidr length", spf_mech_name(t->mech));
            return 0;
        }
        if (arg[0] != ':')
            return rec_fail(err, off + i, "%s: unexpected '%c'", spf_mech_name(t->mech), arg[0]);
        if (rec_dual_cidr(arg + 1, alen - 1, off + i + 1, t, &dlen, err) < 0)
            return -1;
        t->domain = arg + 1;
        t->domain_len = dlen;
        return rec_domain_spec(t->domain, t->domain_len, off + i + 1, spf_mech_name(t->mech), err);
    }
    if (REC_IS("ip4") || REC_IS("ip6")) {
        bool v6 = REC_IS("ip6");
        t->mech = v6 ? SPF_MECH_IP6 : SPF_MECH_IP4;
        if (alen < 2 || arg[0] != ':')
            return rec_fail(err, off + i, "%s needs ':' and a network", spf_mech_name(t->mech));
        const char *net = arg + 1;
        size_t netlen = alen - 1;
        const char *slash = memchr(net, '/', netlen);
        size_t alen_net = slash ? (size_t)(slash - net) : netlen;
        bool ok = v6 ? rec_ip6(net, alen_net, t->addr) : rec_ip4(net, alen_net, t->addr);
        if (!ok)
            return rec_fail(err, off + i + 1, "%s: invalid network '%.*s'", spf_mech_name(t->mech),
                            (int)(alen_net > 64 ? 64 : alen_net), net);
        if (slash != NULL) {
            size_t clen = netlen - alen_net - 1;
            long v = rec_cidr(slash + 1, clen, v6 ? 128 : 32);
            if (v < 0)
                return rec_fail(err, off + i + 1 + alen_net, "%s: invalid cidr length",
                                spf_mech_name(t->mech));
            if (v6)
                t->cidr6 = (unsigned)v;
            else
                t->cidr4 = (unsigned)v;
        }
        return 0;
    }
#undef REC_IS
    return rec_fail(err, off, "unknown mechanism '%.*s'", (int)(n > 64 ? 64 : n), s);
}

/* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ); returns its length, 0 if none. */
static size_t rec_modifier_name(const char *s, size_t n)
{
    if (n == 0 || !rec_alpha((unsigned char)s[0]))
        return 0;
    size_t i = 1;
    while (i < n && (rec_alnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.'))
        i++;
    return i;
}

static int rec_term(struct spf_record *rec, const char *s, size_t n, size_t off,
                    struct spf_record_error *err)
{
    size_t nl = rec_modifier_name(s, n);
    if (nl < n && s[nl] == '=' && nl > 0) {
        const char *val = s + nl + 1;
        size_t vlen = n - nl - 1;
        if (nl == 8 && strncasecmp(s, "redirect", 8) == 0) {
            if (rec->redirect != NULL)
                return rec_fail(err, off, "redirect given twice");
            if (rec_domain_spec(val, vlen, off + nl + 1, "redirect", err) < 0)
                return -1;
            rec->redirect = val;
            rec->redirect_len = vlen;
            return 0;
        }
        if (nl == 3 && strncasecmp(s, "exp", 3) == 0) {
            if (rec->exp != NULL)
                return rec_fail(err, off, "exp given twice");
            if (rec_domain_spec(val, vlen, off + nl + 1, "exp", err) < 0)
                return -1;
            rec->exp = val;
            rec->exp_len = vlen;
            return 0;
        }
        size_t pos;
        if (!spf_macro_check(val, vlen, 0, &pos))
            return rec_fail(err, off + nl + 1 + pos, "modifier %.*s: invalid value", (int)nl, s);
        return 0;
    }
    if (n > 0 && s[0] == '=')
        return rec_fail(err, off, "modifier without a name");
    struct spf_term t = {0};
    if (rec_directive(s, n, off, &t, err) < 0)
        return -1;
    t.text = s;
    t.text_len = n;
    rec->terms[rec->nterms++] = t;
    return 0;
}

int spf_record_parse(const char *txt, size_t len, struct spf_record *rec,
                     struct spf_record_error *err)
{
    memset(rec, 0, sizeof *rec);
    if (len > SPF_RECORD_MAX)
        return rec_fail(err, 0, "record longer than %d octets", SPF_RECORD_MAX);
    if (!spf_record_is_spf1(txt, len))
        return rec_fail(err, 0, "not an SPF version 1 record");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)txt[i];
        if (c < 0x20 || c > 0x7e)
            return rec_fail(err, i, "invalid octet 0x%02x in record", c);
    }
    rec->text = malloc(len + 1);
    /* At most one term per two octets ("a a a"). */
    rec->terms = calloc(len / 2 + 1, sizeof *rec->terms);
    if (rec->text == NULL || rec->terms == NULL) {
        spf_record_free(rec);
        return rec_fail(err, 0, "out of memory");
    }
    memcpy(rec->text, txt, len);
    rec->text[len] = '\0';
    const char *s = rec->text;
    size_t i = 6;
    while (i < len) {
        while (i < len && s[i] == ' ')
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && s[i] != ' ')
            i++;
        if (rec_term(rec, s + start, i - start, start, err) < 0) {
            spf_record_free(rec);
            return -1;
        }
    }
    return 0;
}

void spf_record_free(struct spf_record *rec)
{
    if (rec == NULL)
        return;
    free(rec->text);
    free(rec->terms);
    memset(rec, 0, sizeof *rec);
}
