/*
 * esmtp - ESMTP parameters of MAIL and RCPT, pure.
 *
 * esmtp_params_split() cuts the text after the path into keyword/value pairs
 * (RFC 5321 4.1.2 esmtp-param, with RFC 6531 UTF-8 values).
 * esmtp_mail_params() and esmtp_rcpt_params() check each pair against the
 * extensions the session advertised: a parameter of an extension that was
 * not advertised is refused as unknown, since the client had no right to use
 * it and the upstream may not implement it either.  Values are checked for
 * syntax only; what they mean (a size limit, a DSN policy) is the session's
 * and the upstream's business.  esmtp_xtext_valid()/esmtp_xtext_encode()
 * implement RFC 3461 xtext.
 *
 * Nothing allocates; values point into the caller's buffer.
 *
 * Diagnostics: esmtp_status codes; esmtp_status_reply() gives the reply.
 */
#include "codec/esmtp.h"

#include <string.h>
#include <strings.h>

static bool esmtp_is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static bool esmtp_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool esmtp_is_alnum(unsigned char c)
{
    return esmtp_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool esmtp_equal_nocase(const char *s, size_t len, const char *lit)
{
    size_t lit_len = strlen(lit);
    return len == lit_len && strncasecmp(s, lit, len) == 0;
}

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool esmtp_keyword_valid(const char *s, size_t len)
{
    if (len == 0 || !esmtp_is_alnum((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!esmtp_is_alnum((unsigned char)s[i]) && s[i] != '-')
            return false;
    return true;
}

/* esmtp-value = 1*(%d33-60 / %d62-126 / UTF8-non-ascii) */
static bool esmtp_value_valid(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 33 || c == '=' || c == 127)
            return false;
    }
    return true;
}

enum esmtp_status esmtp_params_split(const char *s, size_t len, struct esmtp_param *out, size_t max,
                                     size_t *n)
{
    size_t count = 0;
    size_t p = 0;

    *n = 0;
    if (s == NULL)
        len = 0;
    for (;;) {
        while (p < len && esmtp_is_blank((unsigned char)s[p]))
            p++;
        if (p >= len)
            break;
        size_t start = p;
        while (p < len && !esmtp_is_blank((unsigned char)s[p]))
            p++;
        const char *tok = s + start;
        size_t tok_len = p - start;
        const char *eq = memchr(tok, '=', tok_len);
        size_t key_len = eq ? (size_t)(eq - tok) : tok_len;
        if (!esmtp_keyword_valid(tok, key_len))
            return ESMTP_SYNTAX;
        if (eq && !esmtp_value_valid(eq + 1, tok_len - key_len - 1))
            return ESMTP_SYNTAX;
        if (count >= max)
            return ESMTP_TOO_MANY;
        out[count].key = tok;
        out[count].key_len = key_len;
        out[count].value = eq ? eq + 1 : NULL;
        out[count].value_len = eq ? tok_len - key_len - 1 : 0;
        count++;
        *n = count;
    }
    return ESMTP_OK;
}

bool esmtp_xtext_valid(const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            /* hexchar: upper-case hex only, as RFC 3461 writes it. */
            if (len - i < 3 || s[i + 1] == '\0' || s[i + 2] == '\0' || !strchr(hex, s[i + 1]) ||
                !strchr(hex, s[i + 2]))
                return false;
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return false;
        }
    }
    return true;
}

size_t esmtp_xtext_encode(const char *in, size_t len, char *out, size_t out_size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    if (out_size == 0)
        return (size_t)-1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 33 && c <= 126 && c != '+' && c != '=') {
            if (out_size - o < 2)
                goto too_long;
            out[o++] = (char)c;
        } else {
            if (out_size - o < 4)
                goto too_long;
            out[o++] = '+';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return o;

too_long:
    /* Never leave a truncated value that looks complete. */
    out[0] = '\0';
    return (size_t)-1;
}

/* SIZE value: 1*DIGIT; absurd values saturate instead of wrapping. */
static bool esmtp_size_parse(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!esmtp_is_digit((unsigned char)s[i]))
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            v = UINT64_MAX;
        else
            v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* The keywords of both commands; the index is the bit in a "seen" mask. */
enum esmtp_key {
    KEY_SIZE,
    KEY_BODY,
    KEY_SMTPUTF8,
    KEY_RET,
    KEY_ENVID,
    KEY_AUTH,
    KEY_NOTIFY,
    KEY_ORCPT,
    KEY__COUNT
};

struct esmtp_keyword {
    const char *name;
    unsigned caps; /* any of these advertised makes the keyword known */
    bool rcpt;     /* RCPT parameter; otherwise MAIL */
};

static const struct esmtp_keyword esmtp_keywords[KEY__COUNT] = {
    [KEY_SIZE] = {"SIZE", ESMTP_CAP_SIZE, false},
    [KEY_BODY] = {"BODY", ESMTP_CAP_8BITMIME | ESMTP_CAP_BINARYMIME, false},
    [KEY_SMTPUTF8] = {"SMTPUTF8", ESMTP_CAP_SMTPUTF8, false},
    [KEY_RET] = {"RET", ESMTP_CAP_DSN, false},
    [KEY_ENVID] = {"ENVID", ESMTP_CAP_DSN, false},
    [KEY_AUTH] = {"AUTH", ESMTP_CAP_AUTH, false},
    [KEY_NOTIFY] = {"NOTIFY", ESMTP_CAP_DSN, true},
    [KEY_ORCPT] = {"ORCPT", ESMTP_CAP_DSN, true},
};

/*
 * Split s and find each keyword; KEY__COUNT marks nothing.  Duplicates and
 * keywords that are unknown for this command or not advertised are refused
 * here, in the order the client wrote them.
 */
static enum esmtp_status esmtp_classify(const char *s, size_t len, unsigned caps, bool rcpt,
                                        struct esmtp_param *params, enum esmtp_key *keys, size_t *n)
{
    enum esmtp_status st = esmtp_params_split(s, len, params, ESMTP_MAX_PARAMS, n);
    if (st != ESMTP_OK)
        return st;
    unsigned seen = 0;
    for (size_t i = 0; i < *n; i++) {
        keys[i] = KEY__COUNT;
        for (int k = 0; k < KEY__COUNT; k++) {
            if (esmtp_keywords[k].rcpt == rcpt && (esmtp_keywords[k].caps & caps) &&
                esmtp_equal_nocase(params[i].key, params[i].key_len, esmtp_keywords[k].name)) {
                keys[i] = (enum esmtp_key)k;
                break;
            }
        }
        if (keys[i] == KEY__COUNT)
            return ESMTP_UNKNOWN;
        if (seen & (1u << keys[i]))
            return ESMTP_DUPLICATE;
        seen |= 1u << keys[i];
    }
    return ESMTP_OK;
}

static enum esmtp_status esmtp_body_parse(const struct esmtp_param *p, unsigned caps,
                                          enum esmtp_body *body)
{
    if (p->value == NULL)
        return ESMTP_BAD_BODY;
    if (esmtp_equal_nocase(p->value, p->value_len, "7BIT")) {
        *body = ESMTP_BODY_7BIT;
    } else if (esmtp_equal_nocase(p->value, p->value_len, "8BITMIME")) {
        if (!(caps & ESMTP_CAP_8BITMIME))
            return ESMTP_UNKNOWN;
        *body = ESMTP_BODY_8BITMIME;
    } else if (esmtp_equal_nocase(p->value, p->value_len, "BINARYMIME")) {
        if (!(caps & ESMTP_CAP_BINARYMIME))
            return ESMTP_UNKNOWN;
        *body = ESMTP_BODY_BINARYMIME;
    } else {
        return ESMTP_BAD_BODY;
    }
    return ESMTP_OK;
}

enum esmtp_status esmtp_mail_params(const char *s, size_t len, unsigned caps,
                                    struct esmtp_mail *out)
{
    struct esmtp_param params[ESMTP_MAX_PARAMS];
    enum esmtp_key keys[ESMTP_MAX_PARAMS];
    size_t n;

    memset(out, 0, sizeof(*out));
    enum esmtp_status st = esmtp_classify(s, len, caps, false, params, keys, &n);
    if (st != ESMTP_OK)
        return st;

    for (size_t i = 0; i < n; i++) {
        const struct esmtp_param *p = &params[i];
        switch (keys[i]) {
        case KEY_SIZE:
            if (!esmtp_size_parse(p->value, p->value_len, &out->size))
                return ESMTP_BAD_SIZE;
            out->has_size = true;
            break;
        case KEY_BODY:
            st = esmtp_body_parse(p, caps, &out->body);
            if (st != ESMTP_OK)
                return st;
            break;
        case KEY_SMTPUTF8:
            if (p->value)
                return ESMTP_SMTPUTF8_VALUE;
            out->smtputf8 = true;
            break;
        case KEY_RET:
            if (p->value && esmtp_equal_nocase(p->value, p->value_len, "FULL"))
                out->ret = ESMTP_RET_FULL;
            else if (p->value && esmtp_equal_nocase(p->value, p->value_len, "HDRS"))
                out->ret = ESMTP_RET_HDRS;
            else
                return ESMTP_BAD_RET;
            break;
        case KEY_ENVID:
            if (!p->value || !esmtp_xtext_valid(p->value, p->value_len))
                return ESMTP_BAD_XTEXT;
            out->envid = p->value;
            out->envid_len = p->value_len;
            break;
        case KEY_AUTH:
            /* RFC 4954 5: "<>" says the submitter is not known to be trusted. */
            if (!p->value || (!esmtp_equal_nocase(p->value, p->value_len, "<>") &&
                              !esmtp_xtext_valid(p->value, p->value_len)))
                return ESMTP_BAD_XTEXT;
            out->auth = p->value;
            out->auth_len = p->value_len;
            break;
        default:
            return ESMTP_UNKNOWN;
        }
    }
    return ESMTP_OK;
}

/* NOTIFY=NEVER, or a comma list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1). */
static bool esmtp_notify_parse(const char *s, size_t len, unsigned *out)
{
    unsigned bits = 0;
    size_t p = 0;

    if (s == NULL || len == 0)
        return false;
    for (;;) {
        const char *comma = memchr(s + p, ',', len - p);
        size_t item_len = comma ? (size_t)(comma - (s + p)) : len - p;
        const char *item = s + p;
        if (esmtp_equal_nocase(item, item_len, "NEVER"))
            bits |= ESMTP_NOTIFY_NEVER;
        else if (esmtp_equal_nocase(item, item_len, "SUCCESS"))
            bits |= ESMTP_NOTIFY_SUCCESS;
        else if (esmtp_equal_nocase(item, item_len, "FAILURE"))
            bits |= ESMTP_NOTIFY_FAILURE;
        else if (esmtp_equal_nocase(item, item_len, "DELAY"))
            bits |= ESMTP_NOTIFY_DELAY;
        else
            return false;
        if (!comma)
            break;
        p += item_len + 1;
    }
    if ((bits & ESMTP_NOTIFY_NEVER) && bits != ESMTP_NOTIFY_NEVER)
        return false;
    *out = bits;
    return true;
}

/* RFC 5322 atext, for the addr-type atom of ORCPT. */
static bool esmtp_is_atext(unsigned char c)
{
    return esmtp_is_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* xtext in which octets >= 0x80 may also stand for themselves. */
static bool esmtp_unitext_valid(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80)
            continue;
        if (c == '+') {
            if (!esmtp_xtext_valid(s + i, len - i < 3 ? len - i : 3))
                return false;
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return false;
        }
    }
    return true;
}

static enum esmtp_status esmtp_orcpt_check(const char *s, size_t len)
{
    if (s == NULL || len == 0)
        return ESMTP_BAD_ORCPT;
    const char *semi = memchr(s, ';', len);
    if (semi == NULL || semi == s)
        return ESMTP_BAD_ORCPT;
    size_t type_len = (size_t)(semi - s);
    for (size_t i = 0; i < type_len; i++)
        if (!esmtp_is_atext((unsigned char)s[i]))
            return ESMTP_BAD_ORCPT;
    const char *addr = semi + 1;
    size_t addr_len = len - type_len - 1;
    if (addr_len == 0)
        return ESMTP_BAD_ORCPT;
    /* RFC 6533 utf-8-addr-unitext may carry raw UTF-8 besides xtext. */
    if (esmtp_equal_nocase(s, type_len, "utf-8"))
        return esmtp_unitext_valid(addr, addr_len) ? ESMTP_OK : ESMTP_BAD_XTEXT;
    if (!esmtp_xtext_valid(addr, addr_len))
        return ESMTP_BAD_XTEXT;
    return ESMTP_OK;
}

enum esmtp_status esmtp_rcpt_params(const char *s, size_t len, unsigned caps,
                                    struct esmtp_rcpt *out)
{
    struct esmtp_param params[ESMTP_MAX_PARAMS];
    enum esmtp_key keys[ESMTP_MAX_PARAMS];
    size_t n;

    memset(out, 0, sizeof(*out));
    enum esmtp_status st = esmtp_classify(s, len, caps, true, params, keys, &n);
    if (st != ESMTP_OK)
        return st;

    for (size_t i = 0; i < n; i++) {
        const struct esmtp_param *p = &params[i];
        switch (keys[i]) {
        case KEY_NOTIFY:
            if (!esmtp_notify_parse(p->value, p->value_len, &out->notify))
                return ESMTP_BAD_NOTIFY;
            break;
        case KEY_ORCPT:
            st = esmtp_orcpt_check(p->value, p->value_len);
            if (st != ESMTP_OK)
                return st;
            out->orcpt = p->value;
            out->orcpt_len = p->value_len;
            break;
        default:
            return ESMTP_UNKNOWN;
        }
    }
    return ESMTP_OK;
}

const char *esmtp_status_reply(enum esmtp_status st)
{
    switch (st) {
    case ESMTP_OK:
        return "250 2.0.0 Ok";
    case ESMTP_SYNTAX:
        return "501 5.5.4 Syntax error in parameters";
    case ESMTP_TOO_MANY:
        return "501 5.5.4 Too many parameters";
    case ESMTP_UNKNOWN:
        return "555 5.5.4 Unsupported option";
    case ESMTP_DUPLICATE:
        return "501 5.5.4 Duplicate parameter";
    case ESMTP_BAD_SIZE:
        return "501 5.5.4 Bad message size syntax";
    case ESMTP_BAD_BODY:
        return "501 5.5.4 Bad BODY parameter";
    case ESMTP_BAD_XTEXT:
        return "501 5.5.4 Bad xtext parameter syntax";
    case ESMTP_BAD_RET:
        return "501 5.5.4 Bad RET parameter syntax";
    case ESMTP_BAD_NOTIFY:
        return "501 5.5.4 Bad NOTIFY parameter syntax";
    case ESMTP_BAD_ORCPT:
        return "501 5.5.4 Bad ORCPT parameter syntax";
    case ESMTP_SMTPUTF8_VALUE:
        return "501 5.5.4 SMTPUTF8 takes no value";
    }
    return "501 5.5.4 Syntax error in parameters";
}
