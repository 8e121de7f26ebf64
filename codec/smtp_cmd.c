/*
 * smtp_cmd - SMTP command line parser (RFC 5321 section 4.1), pure.
 *
 * smtp_cmd_parse() refuses control characters anywhere in the line (a bare CR
 * or a NUL must never reach the upstream, where it could mean something else),
 * splits off the verb and classifies it, and checks whether the verb takes an
 * argument.  smtp_path_parse() checks a MAIL/RCPT path against RFC 5321 4.1.2
 * with RFC 6531 UTF-8 extensions and the usual size limits (4.5.3.1), and
 * smtp_bdat_parse()/smtp_helo_parse() check the other argument kinds.
 *
 * Nothing here allocates or writes outside the output structure: results point
 * into the caller's buffer, which is not NUL-terminated.
 *
 * Diagnostics: smtp_cmd_status codes; smtp_cmd_status_reply() gives the reply.
 */
#include "codec/smtp_cmd.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/* RFC 5321 4.5.3.1 size limits. */
#define SMTP_LOCAL_MAX   64
#define SMTP_DOMAIN_MAX  255
#define SMTP_PATH_MAX    256
#define SMTP_LABEL_MAX   63
#define SMTP_BDAT_DIGITS 18

enum cmd_arg { ARG_OPTIONAL, ARG_REQUIRED, ARG_NONE };

struct cmd_verb {
    const char *name;
    size_t len;
    enum cmd_arg arg;
};

/* Indexed by enum smtp_verb. */
static const struct cmd_verb cmd_verbs[SMTP_VERB__COUNT] = {
    [SMTP_VERB_UNKNOWN] = {"UNKNOWN", 7, ARG_OPTIONAL},
    [SMTP_VERB_HELO] = {"HELO", 4, ARG_REQUIRED},
    [SMTP_VERB_EHLO] = {"EHLO", 4, ARG_REQUIRED},
    [SMTP_VERB_MAIL] = {"MAIL", 4, ARG_REQUIRED},
    [SMTP_VERB_RCPT] = {"RCPT", 4, ARG_REQUIRED},
    [SMTP_VERB_DATA] = {"DATA", 4, ARG_NONE},
    [SMTP_VERB_BDAT] = {"BDAT", 4, ARG_REQUIRED},
    [SMTP_VERB_RSET] = {"RSET", 4, ARG_NONE},
    [SMTP_VERB_NOOP] = {"NOOP", 4, ARG_OPTIONAL},
    [SMTP_VERB_QUIT] = {"QUIT", 4, ARG_NONE},
    [SMTP_VERB_VRFY] = {"VRFY", 4, ARG_REQUIRED},
    [SMTP_VERB_EXPN] = {"EXPN", 4, ARG_REQUIRED},
    [SMTP_VERB_HELP] = {"HELP", 4, ARG_OPTIONAL},
    [SMTP_VERB_STARTTLS] = {"STARTTLS", 8, ARG_NONE},
    [SMTP_VERB_AUTH] = {"AUTH", 4, ARG_REQUIRED},
};

static bool cmd_is_blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* HTAB counts as a blank, not as a control character: clients do send it. */
static bool cmd_is_ctrl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

static bool cmd_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool cmd_is_alnum(unsigned char c)
{
    return cmd_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 5322 atext; octets >= 0x80 are the RFC 6531 UTF-8 extension. */
static bool cmd_is_atext(unsigned char c)
{
    return cmd_is_alnum(c) || c >= 0x80 || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool cmd_equal_nocase(const char *s, size_t len, const char *lit, size_t lit_len)
{
    return len == lit_len && strncasecmp(s, lit, len) == 0;
}

enum smtp_cmd_status smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out)
{
    memset(out, 0, sizeof(*out));
    out->verb = SMTP_VERB_UNKNOWN;
    if (line == NULL)
        len = 0;

    for (size_t i = 0; i < len; i++)
        if (cmd_is_ctrl((unsigned char)line[i]))
            return SMTP_CMD_BAD_CHAR;

    size_t p = 0;
    while (p < len && cmd_is_blank((unsigned char)line[p]))
        p++;
    if (p == len)
        return SMTP_CMD_EMPTY;

    out->verb_text = line + p;
    while (p < len && !cmd_is_blank((unsigned char)line[p]))
        p++;
    out->verb_len = (size_t)(line + p - out->verb_text);

    while (p < len && cmd_is_blank((unsigned char)line[p]))
        p++;
    size_t end = len;
    while (end > p && cmd_is_blank((unsigned char)line[end - 1]))
        end--;
    if (end > p) {
        out->arg = line + p;
        out->arg_len = end - p;
    }

    for (int v = SMTP_VERB_UNKNOWN + 1; v < SMTP_VERB__COUNT; v++) {
        if (cmd_equal_nocase(out->verb_text, out->verb_len, cmd_verbs[v].name, cmd_verbs[v].len)) {
            out->verb = (enum smtp_verb)v;
            break;
        }
    }
    if (out->verb == SMTP_VERB_UNKNOWN)
        return SMTP_CMD_UNKNOWN_VERB;
    if (cmd_verbs[out->verb].arg == ARG_REQUIRED && out->arg == NULL)
        return SMTP_CMD_ARG_REQUIRED;
    if (cmd_verbs[out->verb].arg == ARG_NONE && out->arg != NULL)
        return SMTP_CMD_ARG_FORBIDDEN;
    return SMTP_CMD_OK;
}

/*
 * Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
 * above U+10FFFF.  SMTPUTF8 promises UTF-8, and without SMTPUTF8 8-bit octets
 * are refused by the session anyway, so malformed sequences are never valid.
 */
static bool cmd_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= n; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return false;
        i += n + 1;
    }
    return true;
}

/* Dotted quad, each part 1*3DIGIT up to 255 (RFC 5321 IPv4-address-literal). */
static bool cmd_ipv4_valid(const char *s, size_t len)
{
    size_t p = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (p >= len || s[p] != '.')
                return false;
            p++;
        }
        unsigned value = 0;
        size_t digits = 0;
        while (p < len && cmd_is_digit((unsigned char)s[p]) && digits < 3) {
            value = value * 10 + (unsigned)(s[p] - '0');
            p++;
            digits++;
        }
        if (digits == 0 || value > 255)
            return false;
    }
    return p == len;
}

static bool cmd_ipv6_valid(const char *s, size_t len)
{
    /* inet_pton needs a string; anything longer than the longest textual
     * IPv6 address is invalid anyway. */
    char buf[INET6_ADDRSTRLEN];
    struct in6_addr a;
    if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

/* "[" ( IPv4 / "IPv6:" IPv6 / tag ":" 1*dcontent ) "]", RFC 5321 4.1.3. */
static bool cmd_literal_valid(const char *s, size_t len)
{
    if (len < 3 || s[0] != '[' || s[len - 1] != ']')
        return false;
    s++;
    len -= 2;
    if (len > 5 && strncasecmp(s, "IPv6:", 5) == 0)
        return cmd_ipv6_valid(s + 5, len - 5);
    if (cmd_is_digit((unsigned char)s[0]))
        return cmd_ipv4_valid(s, len);

    /* General-address-literal: Standardized-tag is an Ldh-str. */
    size_t p = 0;
    while (p < len && (cmd_is_alnum((unsigned char)s[p]) || s[p] == '-'))
        p++;
    if (p == 0 || p >= len || s[p] != ':' || s[p - 1] == '-')
        return false;
    if (++p == len)
        return false;
    for (; p < len; p++) {
        unsigned char c = (unsigned char)s[p];
        if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']')
            return false;
    }
    return true;
}

/*
 * A domain name or an address literal.  Labels are 1..63 octets of letters,
 * digits, "-" and (for RFC 6531) UTF-8; "_" is tolerated, and hyphen position
 * is not checked, as Postfix does not either: such names exist in the wild and
 * the upstream will judge them.
 */
static bool cmd_domain_valid(const char *s, size_t len)
{
    if (len == 0)
        return false;
    if (s[0] == '[')
        return cmd_literal_valid(s, len);
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (cmd_is_alnum(c) || c == '-' || c == '_' || c >= 0x80) {
            if (++label > SMTP_LABEL_MAX)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* End of one source-route or mailbox domain: a literal may contain ":". */
static size_t cmd_domain_span(const char *s, size_t len, const char *stops)
{
    size_t p = 0;
    if (p < len && s[0] == '[') {
        while (p < len && s[p] != ']')
            p++;
        return p < len ? p + 1 : len;
    }
    while (p < len && !strchr(stops, s[p]))
        p++;
    return p;
}

/*
 * Skip an RFC 5321 A-d-l ("@a,@b:"), which RFC 5321 says to accept and
 * ignore.  Returns its length, or 0 if it is malformed.
 */
static size_t cmd_source_route(const char *s, size_t len)
{
    size_t p = 0;
    for (;;) {
        if (p >= len || s[p] != '@')
            return 0;
        p++;
        size_t d = cmd_domain_span(s + p, len - p, ",:");
        if (!cmd_domain_valid(s + p, d))
            return 0;
        p += d;
        if (p >= len)
            return 0;
        if (s[p] == ':')
            return p + 1;
        if (s[p] != ',')
            return 0;
        p++;
    }
}

/* Length of a quoted local part including both quotes, or 0 if malformed. */
static size_t cmd_quoted_span(const char *s, size_t len)
{
    for (size_t p = 1; p < len; p++) {
        unsigned char c = (unsigned char)s[p];
        if (c == '"')
            return p + 1;
        if (c == '\\') {
            /* quoted-pairSMTP: backslash followed by printable ASCII. */
            if (++p >= len || (unsigned char)s[p] < 32 || (unsigned char)s[p] > 126)
                return 0;
        } else if (c < 32 || c == 127) {
            return 0;
        }
    }
    return 0;
}

/*
 * Check mailbox = Local-part "@" ( Domain / address-literal ).  Local-part is
 * a quoted string or a run of atext and dots; empty, leading, trailing and
 * doubled dots are accepted because such addresses are in real use and the
 * upstream accepts them.  *has_domain is false for a bare local part.
 */
static enum smtp_cmd_status cmd_mailbox_check(const char *s, size_t len, enum smtp_cmd_status bad,
                                              bool *has_domain)
{
    size_t local;
    *has_domain = false;
    if (len == 0)
        return bad;
    if (s[0] == '"') {
        local = cmd_quoted_span(s, len);
        if (local == 0)
            return bad;
    } else {
        local = 0;
        while (local < len && (cmd_is_atext((unsigned char)s[local]) || s[local] == '.'))
            local++;
        if (local == 0)
            return bad;
    }
    if (local > SMTP_LOCAL_MAX)
        return SMTP_CMD_PATH_TOO_LONG;
    if (local == len)
        return SMTP_CMD_OK;
    if (s[local] != '@')
        return bad;
    *has_domain = true;
    const char *domain = s + local + 1;
    size_t domain_len = len - local - 1;
    if (domain_len > SMTP_DOMAIN_MAX)
        return SMTP_CMD_PATH_TOO_LONG;
    if (!cmd_domain_valid(domain, domain_len))
        return bad;
    return SMTP_CMD_OK;
}

/* What both path parsers ask first: no control octet anywhere, then the
 * keyword ("FROM:" / "TO:"); its length in *kw_len. */
static enum smtp_cmd_status path_prologue(const char *arg, size_t len, bool is_mail, size_t *kw_len)
{
    const char *kw = is_mail ? "FROM:" : "TO:";
    *kw_len = strlen(kw);
    for (size_t i = 0; i < len; i++)
        if (cmd_is_ctrl((unsigned char)arg[i]))
            return is_mail ? SMTP_CMD_BAD_SENDER : SMTP_CMD_BAD_RECIPIENT;
    if (len < *kw_len || strncasecmp(arg, kw, *kw_len) != 0)
        return SMTP_CMD_BAD_SYNTAX;
    return SMTP_CMD_OK;
}

enum smtp_cmd_status smtp_path_parse(const char *arg, size_t len, bool is_mail,
                                     struct smtp_path *out)
{
    const enum smtp_cmd_status bad = is_mail ? SMTP_CMD_BAD_SENDER : SMTP_CMD_BAD_RECIPIENT;
    size_t kw_len;

    memset(out, 0, sizeof(*out));
    if (arg == NULL)
        len = 0;
    enum smtp_cmd_status first = path_prologue(arg, len, is_mail, &kw_len);
    if (first != SMTP_CMD_OK)
        return first;

    size_t p = kw_len;
    if (p < len && cmd_is_blank((unsigned char)arg[p]))
        p++;
    if (p >= len || arg[p] != '<')
        return bad;

    /* Find the closing bracket; a quoted local part may contain ">". */
    size_t open = p++;
    bool quoted = false;
    for (; p < len; p++) {
        if (quoted) {
            if (arg[p] == '\\')
                p++;
            else if (arg[p] == '"')
                quoted = false;
        } else if (arg[p] == '"') {
            quoted = true;
        } else if (arg[p] == '>') {
            break;
        }
    }
    if (p >= len)
        return bad;
    size_t close = p;
    if (close - open + 1 > SMTP_PATH_MAX)
        return SMTP_CMD_PATH_TOO_LONG;

    p = close + 1;
    if (p < len) {
        if (!cmd_is_blank((unsigned char)arg[p]))
            return bad;
        while (p < len && cmd_is_blank((unsigned char)arg[p]))
            p++;
        size_t end = len;
        while (end > p && cmd_is_blank((unsigned char)arg[end - 1]))
            end--;
        if (end > p) {
            out->params = arg + p;
            out->params_len = end - p;
        }
    }

    const char *inner = arg + open + 1;
    size_t inner_len = close - open - 1;
    if (inner_len == 0) {
        if (!is_mail)
            return bad;
        out->mailbox = "";
        out->null_path = true;
        return SMTP_CMD_OK;
    }
    if (inner[0] == '@') {
        size_t route = cmd_source_route(inner, inner_len);
        if (route == 0)
            return bad;
        inner += route;
        inner_len -= route;
    }

    bool has_domain;
    enum smtp_cmd_status st = cmd_mailbox_check(inner, inner_len, bad, &has_domain);
    if (st != SMTP_CMD_OK)
        return st;
    if (!has_domain) {
        /* Only RCPT TO:<Postmaster> may omit the domain (RFC 5321 4.5.1). */
        if (is_mail || !cmd_equal_nocase(inner, inner_len, "postmaster", 10))
            return bad;
        out->postmaster = true;
    }
    for (size_t i = 0; i < inner_len; i++) {
        if ((unsigned char)inner[i] >= 0x80) {
            out->utf8 = true;
            break;
        }
    }
    if (out->utf8 && !cmd_utf8_valid((const unsigned char *)inner, inner_len))
        return bad;
    out->mailbox = inner;
    out->mailbox_len = inner_len;
    return SMTP_CMD_OK;
}

/* ---- the lenient reading (Postfix, strict_rfc821_envelopes = no) ---- */

/*
 * Length of the address word: up to the first blank that no quote, angle
 * bracket or backslash protects, as Postfix's command tokenizer reads it.
 * 0 when a quote or bracket is left open, which Postfix refuses too.
 */
static size_t cmd_word_span(const char *s, size_t len)
{
    size_t angle = 0;
    bool quoted = false;
    for (size_t p = 0; p < len; p++) {
        char c = s[p];
        if (c == '\\') {
            if (++p >= len)
                return 0;
        } else if (quoted) {
            if (c == '"')
                quoted = false;
        } else if (c == '"') {
            quoted = true;
        } else if (c == '<') {
            angle++;
        } else if (c == '>' && angle > 0) {
            angle--;
        } else if (cmd_is_blank((unsigned char)c) && angle == 0) {
            return p;
        }
    }
    return quoted || angle ? 0 : len;
}

/* Past an RFC 5322 comment starting at s[0] == '(', or 0 if it never ends. */
static size_t cmd_comment_span(const char *s, size_t len)
{
    size_t depth = 0;
    for (size_t p = 0; p < len; p++) {
        if (s[p] == '\\')
            p++;
        else if (s[p] == '(')
            depth++;
        else if (s[p] == ')' && --depth == 0)
            return p + 1;
    }
    return 0;
}

/* Past blanks and comments; false if a comment never ends. */
static bool cmd_skip_cfws(const char *s, size_t len, size_t *p)
{
    while (*p < len) {
        if (cmd_is_blank((unsigned char)s[*p])) {
            (*p)++;
        } else if (s[*p] == '(') {
            size_t n = cmd_comment_span(s + *p, len - *p);
            if (n == 0)
                return false;
            *p += n;
        } else {
            break;
        }
    }
    return true;
}

/*
 * The span of the address inside a "phrase <address>" form, or of the whole
 * text when there are no brackets outside quotes and comments.  More than one
 * bracketed address, or words after it, make it ambiguous: false.
 */
static bool cmd_angle_addr(const char *s, size_t len, size_t *start, size_t *end)
{
    size_t open = len, close = len;
    bool quoted = false;
    for (size_t p = 0; p < len; p++) {
        char c = s[p];
        if (c == '\\') {
            p++;
        } else if (quoted) {
            quoted = c != '"';
        } else if (c == '"') {
            quoted = true;
        } else if (c == '(') {
            size_t n = cmd_comment_span(s + p, len - p);
            if (n == 0)
                return false;
            p += n - 1;
        } else if (c == '<') {
            if (open != len)
                return false;
            open = p;
        } else if (c == '@' && open == len && memchr(s + p, '<', len - p)) {
            /* "a@b <c@d>": two addresses to Postfix, which refuses them. */
            return false;
        } else if (c == '>') {
            if (open == len || close != len)
                return false;
            close = p;
        }
    }
    if (open == len) {
        if (close != len)
            return false;
        *start = 0;
        *end = len;
        return true;
    }
    if (close == len)
        return false;
    size_t after = close + 1;
    if (!cmd_skip_cfws(s, len, &after) || after != len)
        return false;
    *start = open + 1;
    *end = close;
    return true;
}

/* Where the canonical form is written; buf NULL only measures. */
struct cmd_sink {
    char *buf;
    size_t len;
};

static void cmd_put(struct cmd_sink *k, char c)
{
    if (k->buf)
        k->buf[k->len] = c;
    k->len++;
}

/* What a walk over the local part found. */
struct cmd_local {
    size_t end;    /* where the local part stopped: at '@' or the end */
    bool dot_atom; /* its value can be sent without quotes */
    size_t octets; /* length of its value */
};

/*
 * Walk the local part: words (atoms, in which a backslash quotes the next
 * octet as Postfix allows, or quoted strings) separated by dots, comments and
 * blanks dropped.  Emits the value (unquoted) through emit, each octet escaped
 * for a quoted string when quote is set.  False on malformed input.
 */
static bool cmd_local_walk(const char *s, size_t len, bool quote, struct cmd_sink *k,
                           struct cmd_local *out)
{
    size_t p = 0;
    bool dot_atom = true, word_before = false, dot_last = false;
    size_t octets = 0;
    for (;;) {
        if (!cmd_skip_cfws(s, len, &p))
            return false;
        if (p >= len || s[p] == '@')
            break;
        char c = s[p];
        if (c == '.') {
            if (!word_before || dot_last)
                dot_atom = false;
            dot_last = true;
            cmd_put(k, '.');
            octets++;
            p++;
            continue;
        }
        if (word_before && !dot_last)
            return false; /* two words with no dot between them */
        if (c == '"') {
            size_t n = cmd_quoted_span(s + p, len - p);
            if (n == 0)
                return false;
            dot_atom = false;
            for (size_t i = p + 1; i < p + n - 1; i++) {
                if (s[i] == '\\')
                    i++;
                if (quote && (s[i] == '"' || s[i] == '\\'))
                    cmd_put(k, '\\');
                cmd_put(k, s[i]);
                octets++;
            }
            p += n;
        } else {
            size_t start = p;
            while (p < len) {
                unsigned char a = (unsigned char)s[p];
                if (a == '\\') {
                    if (p + 1 >= len || (unsigned char)s[p + 1] < 32 ||
                        (unsigned char)s[p + 1] == 127)
                        return false;
                    dot_atom = false;
                    p++;
                    a = (unsigned char)s[p];
                } else if (!cmd_is_atext(a)) {
                    break;
                }
                if (quote && (a == '"' || a == '\\'))
                    cmd_put(k, '\\');
                cmd_put(k, (char)a);
                octets++;
                p++;
            }
            if (p == start)
                return false;
        }
        word_before = true;
        dot_last = false;
    }
    if (!word_before || dot_last)
        dot_atom = false;
    out->end = p;
    out->dot_atom = dot_atom;
    out->octets = octets;
    return true;
}

/* Copy the domain without comments and blanks; false unless it is one
 * domain name or address literal. */
static bool cmd_domain_copy(const char *s, size_t len, struct cmd_sink *k)
{
    size_t p = 0, first = k->len;
    bool dot_last = true;
    for (;;) {
        if (!cmd_skip_cfws(s, len, &p))
            return false;
        if (p >= len)
            break;
        /* "exa mple.com", "exa(c)mple.com": two words, not one name. */
        if (!dot_last && s[p] != '.')
            return false;
        if (s[p] == '[') {
            size_t n = cmd_domain_span(s + p, len - p, "");
            for (size_t i = 0; i < n; i++)
                cmd_put(k, s[p + i]);
            p += n;
            dot_last = false;
            continue;
        }
        size_t start = p;
        while (p < len && (cmd_is_atext((unsigned char)s[p]) || s[p] == '.'))
            cmd_put(k, s[p++]);
        if (p == start)
            return false;
        dot_last = s[p - 1] == '.';
    }
    size_t n = k->len - first;
    if (n > SMTP_DOMAIN_MAX || k->buf == NULL)
        return n <= SMTP_DOMAIN_MAX;
    /* An IPv4 address outside brackets is no domain to Postfix either. */
    return cmd_domain_valid(k->buf + first, n) && !cmd_ipv4_valid(k->buf + first, n);
}

enum smtp_cmd_status smtp_path_parse_lenient(const char *arg, size_t len, bool is_mail, char *canon,
                                             size_t canon_size, struct smtp_path *out)
{
    const enum smtp_cmd_status bad = is_mail ? SMTP_CMD_BAD_SENDER : SMTP_CMD_BAD_RECIPIENT;
    size_t kw_len;

    memset(out, 0, sizeof(*out));
    if (arg == NULL)
        len = 0;
    enum smtp_cmd_status first = path_prologue(arg, len, is_mail, &kw_len);
    if (first != SMTP_CMD_OK)
        return first;
    if (canon == NULL || canon_size < 2 * len + 3)
        return bad;

    size_t p = kw_len;
    while (p < len && cmd_is_blank((unsigned char)arg[p]))
        p++;
    const char *word = arg + p;
    size_t word_len = cmd_word_span(word, len - p);
    if (word_len == 0)
        return bad;
    p += word_len;
    while (p < len && cmd_is_blank((unsigned char)arg[p]))
        p++;
    if (p < len) {
        size_t end = len;
        while (end > p && cmd_is_blank((unsigned char)arg[end - 1]))
            end--;
        out->params = arg + p;
        out->params_len = end - p;
    }

    size_t a_start, a_end;
    if (!cmd_angle_addr(word, word_len, &a_start, &a_end))
        return bad;
    const char *addr = word + a_start;
    size_t addr_len = a_end - a_start;
    size_t lead = 0;
    if (!cmd_skip_cfws(addr, addr_len, &lead))
        return bad;
    if (lead < addr_len && addr[lead] == '@') {
        size_t route = cmd_source_route(addr + lead, addr_len - lead);
        if (route == 0)
            return bad;
        lead += route;
    }
    addr += lead;
    addr_len -= lead;

    struct cmd_local local;
    struct cmd_sink measure = {NULL, 0};
    if (!cmd_local_walk(addr, addr_len, false, &measure, &local))
        return bad;
    bool has_domain = local.end < addr_len;
    if (!has_domain && local.octets == 0) {
        if (!is_mail)
            return bad;
        out->mailbox = "";
        out->null_path = true;
        return SMTP_CMD_OK;
    }

    struct cmd_sink k = {canon, 0};
    bool quote = !local.dot_atom;
    if (quote)
        cmd_put(&k, '"');
    if (!cmd_local_walk(addr, addr_len, quote, &k, &local))
        return bad;
    if (quote)
        cmd_put(&k, '"');
    size_t local_len = k.len;
    if (has_domain) {
        cmd_put(&k, '@');
        if (!cmd_domain_copy(addr + local.end + 1, addr_len - local.end - 1, &k))
            return bad;
    } else if (!is_mail) {
        /* RCPT without a domain: only Postmaster is defined (RFC 5321 4.5.1);
         * Postfix completes any other with its own domain, so it passes. */
        out->postmaster = cmd_equal_nocase(canon, local_len, "postmaster", 10);
    }
    for (size_t i = 0; i < k.len; i++) {
        if ((unsigned char)canon[i] >= 0x80) {
            out->utf8 = true;
            break;
        }
    }
    if (out->utf8 && !cmd_utf8_valid((const unsigned char *)canon, k.len))
        return bad;
    out->mailbox = canon;
    out->mailbox_len = k.len;
    return SMTP_CMD_OK;
}

enum smtp_cmd_status smtp_bdat_parse(const char *arg, size_t len, uint64_t *size, bool *last)
{
    *size = 0;
    *last = false;
    if (arg == NULL)
        return SMTP_CMD_BAD_SYNTAX;

    size_t p = 0;
    while (p < len && cmd_is_blank((unsigned char)arg[p]))
        p++;
    size_t digits = 0;
    uint64_t value = 0;
    while (p < len && cmd_is_digit((unsigned char)arg[p])) {
        /* 18 digits always fit in 64 bits, so no overflow check is needed. */
        if (++digits > SMTP_BDAT_DIGITS)
            return SMTP_CMD_BAD_SYNTAX;
        value = value * 10 + (uint64_t)(arg[p] - '0');
        p++;
    }
    if (digits == 0)
        return SMTP_CMD_BAD_SYNTAX;
    if (p < len && !cmd_is_blank((unsigned char)arg[p]))
        return SMTP_CMD_BAD_SYNTAX;
    while (p < len && cmd_is_blank((unsigned char)arg[p]))
        p++;
    bool is_last = false;
    if (p < len) {
        if (len - p < 4 || strncasecmp(arg + p, "LAST", 4) != 0)
            return SMTP_CMD_BAD_SYNTAX;
        p += 4;
        while (p < len && cmd_is_blank((unsigned char)arg[p]))
            p++;
        if (p < len)
            return SMTP_CMD_BAD_SYNTAX;
        is_last = true;
    }
    *size = value;
    *last = is_last;
    return SMTP_CMD_OK;
}

enum smtp_cmd_status smtp_helo_parse(const char *arg, size_t len, const char **name,
                                     size_t *name_len)
{
    *name = NULL;
    *name_len = 0;
    if (arg == NULL)
        return SMTP_CMD_ARG_REQUIRED;
    size_t p = 0, end = len;
    while (p < end && cmd_is_blank((unsigned char)arg[p]))
        p++;
    while (end > p && cmd_is_blank((unsigned char)arg[end - 1]))
        end--;
    if (p == end)
        return SMTP_CMD_ARG_REQUIRED;
    /* One word: a blank inside would make the name ambiguous in logs and in
     * Received: headers. */
    for (size_t i = p; i < end; i++) {
        unsigned char c = (unsigned char)arg[i];
        if (cmd_is_ctrl(c) || cmd_is_blank(c))
            return SMTP_CMD_BAD_DOMAIN;
    }
    *name = arg + p;
    *name_len = end - p;
    return SMTP_CMD_OK;
}

const char *smtp_cmd_status_reply(enum smtp_cmd_status st)
{
    switch (st) {
    case SMTP_CMD_OK:
        return "250 2.0.0 Ok";
    case SMTP_CMD_EMPTY:
        return "500 5.5.2 Error: bad syntax";
    case SMTP_CMD_BAD_CHAR:
        return "500 5.5.2 Error: control character in command";
    case SMTP_CMD_UNKNOWN_VERB:
        return "500 5.5.1 Error: command not recognized";
    case SMTP_CMD_ARG_REQUIRED:
        return "501 5.5.4 Syntax error: argument required";
    case SMTP_CMD_ARG_FORBIDDEN:
        return "501 5.5.4 Syntax error: no argument allowed";
    case SMTP_CMD_BAD_SYNTAX:
        return "501 5.5.4 Syntax error in parameters or arguments";
    case SMTP_CMD_BAD_SENDER:
        return "501 5.1.7 Bad sender address syntax";
    case SMTP_CMD_BAD_RECIPIENT:
        return "501 5.1.3 Bad recipient address syntax";
    case SMTP_CMD_BAD_DOMAIN:
        return "501 5.5.4 Syntax error: bad HELO/EHLO domain";
    case SMTP_CMD_PATH_TOO_LONG:
        return "501 5.5.4 Error: path too long";
    }
    return "501 5.5.4 Syntax error";
}

const char *smtp_verb_name(enum smtp_verb verb)
{
    if ((int)verb < 0 || verb >= SMTP_VERB__COUNT)
        return cmd_verbs[SMTP_VERB_UNKNOWN].name;
    return cmd_verbs[verb].name;
}
