/*
 * rules_parse - the rule file parser: text in, rules and thresholds out.
 *
 * rules_parse(b, file, data, len) reads one file's text and appends what it
 * declares to b->r: rules exactly as written (names of meta operands not
 * resolved, patterns not compiled) and thresholds.  It is pure apart from
 * include, which reads through b->read_file and parses the included text in
 * place.  See rules/README.md for the language; in short:
 *
 *   rule NAME TARGET [!]MATCH CLAUSE...      a rule
 *   threshold tag|quarantine|reject SCORE ...
 *   include "file"                           relative to this file
 *   shadow                                   every rule of this file is shadow
 *
 * A statement starts at the first column; a line starting with a blank
 * continues the statement above.  "#" starts a comment where a token could
 * start; blank and comment lines are skipped anywhere.
 *
 * Diagnostics: every error goes to rules_build_error with file, line and
 * column (1-based, in octets) and a reason; after an error the rest of that
 * statement is skipped, so one pass reports the first error of every
 * statement.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules_int.h"

#define NAME_MAX_LEN      128
#define META_MAX_DEPTH    64
#define META_MAX_NODES    4096
#define INCLUDE_MAX_DEPTH 8
#define STRING_MAX_LEN    65536

struct cur {
    struct rules_build *b;
    const char *file; /* interned */
    const char *p;
    const char *end;
    const char *line_start;
    unsigned line;
    bool failed; /* this statement has an error already */
};

static unsigned cur_col(const struct cur *c, const char *at)
{
    return (unsigned)(at - c->line_start) + 1;
}

static void cur_error_at(struct cur *c, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void cur_error_at(struct cur *c, const char *at, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rules_build_error(c->b, c->file, c->line, cur_col(c, at), "%s", msg);
}

/* CR is a blank: only LF ends a line, as in the admin's editor, so CRLF
 * files work and line numbers agree with what the editor shows. */
static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

static bool is_eol(char ch)
{
    return ch == '\n';
}

/* Steps past the line end at c->p. */
static void cur_newline(struct cur *c)
{
    if (c->p < c->end && *c->p == '\n')
        c->p++;
    c->line++;
    c->line_start = c->p;
}

/* True when the line at s holds nothing but blanks and maybe a comment. */
static bool line_is_empty(const char *s, const char *end)
{
    while (s < end && is_blank(*s))
        s++;
    return s == end || is_eol(*s) || *s == '#';
}

static void skip_to_eol(struct cur *c)
{
    while (c->p < c->end && !is_eol(*c->p))
        c->p++;
}

/* Skips blanks and comments, and line ends when the statement continues on
 * the next line (it starts with a blank); stops at a line end otherwise. */
static void skip_ws(struct cur *c)
{
    for (;;) {
        while (c->p < c->end && is_blank(*c->p))
            c->p++;
        if (c->p < c->end && *c->p == '#')
            skip_to_eol(c);
        if (c->p >= c->end || !is_eol(*c->p))
            return;
        /* Look past the line end: blank or comment lines are skipped, an
         * indented line continues, anything else ends the statement. */
        const char *save_p = c->p, *save_ls = c->line_start;
        unsigned save_line = c->line;
        for (;;) {
            cur_newline(c);
            if (c->p >= c->end)
                break;
            if (line_is_empty(c->p, c->end)) {
                skip_to_eol(c);
                if (c->p >= c->end)
                    break;
                continue;
            }
            if (is_blank(*c->p))
                break;     /* continuation */
            c->p = c->end; /* marker: statement ended */
            break;
        }
        if (c->p >= c->end || !is_blank(*c->p)) {
            c->p = save_p;
            c->line_start = save_ls;
            c->line = save_line;
            return;
        }
    }
}

static bool at_eos(struct cur *c)
{
    skip_ws(c);
    return c->p >= c->end || is_eol(*c->p);
}

/* Skips what is left of the statement: to the next line that starts in the
 * first column with something. */
static void skip_statement(struct cur *c)
{
    for (;;) {
        skip_to_eol(c);
        if (c->p >= c->end)
            return;
        cur_newline(c);
        if (c->p >= c->end)
            return;
        if (!is_blank(*c->p) && !line_is_empty(c->p, c->end))
            return;
    }
}

/* A word: a run of octets up to a blank, a line end, a quote or a comment. */
static bool cur_word(struct cur *c, const char **w, size_t *n)
{
    skip_ws(c);
    const char *s = c->p;
    while (c->p < c->end && !is_blank(*c->p) && !is_eol(*c->p) && *c->p != '"' && *c->p != '#')
        c->p++;
    *w = s;
    *n = (size_t)(c->p - s);
    return *n > 0;
}

static bool word_is(const char *w, size_t n, const char *kw)
{
    return strlen(kw) == n && memcmp(w, kw, n) == 0;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d == NULL)
        abort();
    if (n > 0)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        abort();
    return q;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* A "quoted string" with \" \\ \n \r \t \xHH; NUL octets refused. */
static char *cur_string(struct cur *c, size_t *len_out, const char *what)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p != '"') {
        cur_error_at(c, c->p, "expected a quoted string (%s)", what);
        return NULL;
    }
    const char *open = c->p++;
    char *out = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (c->p >= c->end || is_eol(*c->p)) {
            cur_error_at(c, open, "unterminated string");
            free(out);
            return NULL;
        }
        char ch = *c->p++;
        if (ch == '"')
            break;
        if (ch == '\\') {
            if (c->p >= c->end || is_eol(*c->p)) {
                cur_error_at(c, open, "unterminated string");
                free(out);
                return NULL;
            }
            const char *esc = c->p - 1;
            char e = *c->p++;
            switch (e) {
            case 'n':
                ch = '\n';
                break;
            case 'r':
                ch = '\r';
                break;
            case 't':
                ch = '\t';
                break;
            case '"':
            case '\\':
                ch = e;
                break;
            case 'x': {
                int hi = c->p < c->end ? hexval(c->p[0]) : -1;
                int lo = c->p + 1 < c->end ? hexval(c->p[1]) : -1;
                if (hi < 0 || lo < 0) {
                    cur_error_at(c, esc, "\\x needs two hex digits");
                    free(out);
                    return NULL;
                }
                c->p += 2;
                ch = (char)(hi * 16 + lo);
                break;
            }
            default:
                cur_error_at(c, esc, "unknown escape \\%c in string (\\n \\r \\t \\\" \\\\ \\xHH)",
                             isprint((unsigned char)e) ? e : '?');
                free(out);
                return NULL;
            }
            if (ch == '\0') {
                cur_error_at(c, esc, "NUL octet in string");
                free(out);
                return NULL;
            }
        }
        if (len + 2 > cap) {
            cap = cap ? cap * 2 : 64;
            out = xrealloc(out, cap);
        }
        if (len >= STRING_MAX_LEN) {
            cur_error_at(c, open, "string longer than %d octets", STRING_MAX_LEN);
            free(out);
            return NULL;
        }
        out[len++] = ch;
    }
    if (out == NULL)
        out = xrealloc(NULL, 1);
    out[len] = '\0';
    if (len_out != NULL)
        *len_out = len;
    return out;
}

/* A string without line ends, for replies, reasons and headers. */
static char *cur_line_string(struct cur *c, const char *what)
{
    const char *at;
    skip_ws(c);
    at = c->p;
    size_t len;
    char *s = cur_string(c, &len, what);
    if (s != NULL && (strchr(s, '\n') != NULL || strchr(s, '\r') != NULL)) {
        cur_error_at(c, at, "%s must be one line", what);
        free(s);
        return NULL;
    }
    return s;
}

static bool next_is_string(struct cur *c)
{
    return !at_eos(c) && *c->p == '"';
}

/* /regex/flags or m{regex}flags (any punctuation pair). */
static bool cur_pattern(struct cur *c, struct rule *rule)
{
    skip_ws(c);
    const char *start = c->p;
    char open, close;
    if (c->p < c->end && *c->p == '/') {
        open = close = '/';
        c->p++;
    } else if (c->p + 1 < c->end && *c->p == 'm' && ispunct((unsigned char)c->p[1])) {
        open = c->p[1];
        c->p += 2;
        switch (open) {
        case '{':
            close = '}';
            break;
        case '(':
            close = ')';
            break;
        case '[':
            close = ']';
            break;
        case '<':
            close = '>';
            break;
        default:
            close = open;
        }
    } else {
        cur_error_at(c, start, "expected a pattern /.../");
        return false;
    }
    const char *body = c->p;
    int nest = 0;
    for (;;) {
        if (c->p >= c->end || is_eol(*c->p)) {
            cur_error_at(c, start, "unterminated pattern (no closing %c)", close);
            return false;
        }
        char ch = *c->p;
        if (ch == '\\') {
            c->p++;
            if (c->p < c->end && !is_eol(*c->p))
                c->p++;
            continue;
        }
        if (ch == close && nest == 0)
            break;
        if (open != close) {
            if (ch == open)
                nest++;
            else if (ch == close)
                nest--;
        }
        c->p++;
    }
    if (c->p == body) {
        cur_error_at(c, start, "empty pattern");
        return false;
    }
    rule->pattern = xstrndup(body, (size_t)(c->p - body));
    rule->pattern_len = (size_t)(c->p - body);
    rule->pat_pos = (struct rule_pos){c->file, c->line, cur_col(c, body)};
    c->p++;
    rule->pflags = 0;
    while (c->p < c->end && isalpha((unsigned char)*c->p)) {
        switch (*c->p) {
        case 'i':
            rule->pflags |= PCRE2_CASELESS;
            break;
        case 'm':
            rule->pflags |= PCRE2_MULTILINE;
            break;
        case 's':
            rule->pflags |= PCRE2_DOTALL;
            break;
        case 'x':
            rule->pflags |= PCRE2_EXTENDED;
            break;
        case 'u':
            rule->pflags |= PCRE2_UTF | PCRE2_UCP;
            break;
        default:
            cur_error_at(c, c->p, "unknown pattern flag '%c' (flags: i m s x u)", *c->p);
            return false;
        }
        c->p++;
    }
    if (c->p < c->end && !is_blank(*c->p) && !is_eol(*c->p) && *c->p != '#') {
        cur_error_at(c, c->p, "unexpected text after the pattern");
        return false;
    }
    return true;
}

/* "-1.5", "3", "10.25": decimal, no exponent, finite. */
static bool parse_number(const char *w, size_t n, double *out)
{
    size_t i = 0;
    if (i < n && (w[i] == '-' || w[i] == '+'))
        i++;
    size_t digits = 0;
    while (i < n && isdigit((unsigned char)w[i]))
        i++, digits++;
    if (i < n && w[i] == '.') {
        i++;
        size_t frac = 0;
        while (i < n && isdigit((unsigned char)w[i]))
            i++, frac++;
        if (frac == 0)
            return false;
    }
    if (digits == 0 || i != n || n > 32)
        return false;
    char buf[40];
    memcpy(buf, w, n);
    buf[n] = '\0';
    double v = strtod(buf, NULL);
    if (!isfinite(v) || fabs(v) > 1e9)
        return false;
    *out = v;
    return true;
}

static bool cur_number(struct cur *c, double *out, const char *what)
{
    const char *w;
    size_t n;
    skip_ws(c);
    const char *at = c->p;
    if (!cur_word(c, &w, &n) || !parse_number(w, n, out)) {
        cur_error_at(c, at, "expected a number (%s)", what);
        return false;
    }
    return true;
}

/* 1024, 10k, 5M, 1G (binary multiples). */
static bool parse_size(const char *w, size_t n, uint64_t *out)
{
    uint64_t v = 0, mul = 1;
    size_t i = 0;
    if (n == 0)
        return false;
    for (; i < n && isdigit((unsigned char)w[i]); i++) {
        if (v > UINT64_MAX / 10 - 10)
            return false;
        v = v * 10 + (uint64_t)(w[i] - '0');
    }
    if (i == 0)
        return false;
    if (i + 1 == n) {
        switch (w[i]) {
        case 'k':
        case 'K':
            mul = 1024;
            break;
        case 'm':
        case 'M':
            mul = 1024 * 1024;
            break;
        case 'g':
        case 'G':
            mul = 1024ull * 1024 * 1024;
            break;
        default:
            return false;
        }
    } else if (i != n) {
        return false;
    }
    if (v > UINT64_MAX / mul)
        return false;
    *out = v * mul;
    return true;
}

static bool valid_name(const char *w, size_t n)
{
    if (n == 0 || n > NAME_MAX_LEN || !(isalpha((unsigned char)w[0]) || w[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)w[i]) && w[i] != '_')
            return false;
    return true;
}

/* ---- meta expressions ---- */

struct meta_parse {
    struct cur *c;
    struct rule *rule;
    unsigned depth;
};

static int meta_node(struct meta_parse *mp, enum meta_op op, int a, int b, const char *at)
{
    struct rule *r = mp->rule;
    if (r->nmeta >= META_MAX_NODES) {
        cur_error_at(mp->c, at, "meta expression longer than %d terms", META_MAX_NODES);
        return -1;
    }
    r->meta = xrealloc(r->meta, (r->nmeta + 1) * sizeof(*r->meta));
    r->meta[r->nmeta] = (struct meta_node){.op = op, .a = a, .b = b};
    r->meta[r->nmeta].pos = (struct rule_pos){mp->c->file, mp->c->line, cur_col(mp->c, at)};
    return (int)r->nmeta++;
}

static bool peek_op(struct cur *c, const char *op)
{
    skip_ws(c);
    size_t n = strlen(op);
    return (size_t)(c->end - c->p) >= n && memcmp(c->p, op, n) == 0;
}

static int meta_or(struct meta_parse *mp);

static int meta_primary(struct meta_parse *mp)
{
    struct cur *c = mp->c;
    skip_ws(c);
    const char *at = c->p;
    if (at_eos(c)) {
        cur_error_at(c, at, "meta expression ends too early");
        return -1;
    }
    if (*c->p == '!' && !(c->p + 1 < c->end && c->p[1] == '=')) {
        c->p++;
        if (++mp->depth > META_MAX_DEPTH) {
            cur_error_at(c, at, "meta expression nested too deeply");
            return -1;
        }
        int a = meta_primary(mp);
        mp->depth--;
        return a < 0 ? -1 : meta_node(mp, MN_NOT, a, -1, at);
    }
    if (*c->p == '(') {
        c->p++;
        if (++mp->depth > META_MAX_DEPTH) {
            cur_error_at(c, at, "meta expression nested too deeply");
            return -1;
        }
        int e = meta_or(mp);
        mp->depth--;
        if (e < 0)
            return -1;
        skip_ws(c);
        if (c->p >= c->end || *c->p != ')') {
            cur_error_at(c, c->p, "expected ')' to close the '(' at column %u", cur_col(c, at));
            return -1;
        }
        c->p++;
        return e;
    }
    if (isdigit((unsigned char)*c->p)) {
        long v = 0;
        while (c->p < c->end && isdigit((unsigned char)*c->p)) {
            if (v > 1000000) {
                cur_error_at(c, at, "number too large in meta expression");
                return -1;
            }
            v = v * 10 + (*c->p++ - '0');
        }
        int n = meta_node(mp, MN_NUM, -1, -1, at);
        if (n >= 0)
            mp->rule->meta[n].num = v;
        return n;
    }
    if (isalpha((unsigned char)*c->p) || *c->p == '_') {
        while (c->p < c->end && (isalnum((unsigned char)*c->p) || *c->p == '_'))
            c->p++;
        size_t n = (size_t)(c->p - at);
        if (n > NAME_MAX_LEN) {
            cur_error_at(c, at, "rule name longer than %d", NAME_MAX_LEN);
            return -1;
        }
        int k = meta_node(mp, MN_REF, -1, -1, at);
        if (k >= 0)
            mp->rule->meta[k].name = xstrndup(at, n);
        return k;
    }
    cur_error_at(c, at, "expected a rule name, a number, '!' or '(' in meta expression");
    return -1;
}

static int meta_sum(struct meta_parse *mp)
{
    int a = meta_primary(mp);
    while (a >= 0 && peek_op(mp->c, "+")) {
        const char *at = mp->c->p++;
        int b = meta_primary(mp);
        if (b < 0)
            return -1;
        a = meta_node(mp, MN_ADD, a, b, at);
    }
    return a;
}

static int meta_cmp(struct meta_parse *mp)
{
    static const struct {
        const char *s;
        enum meta_op op;
    } ops[] = {{"<=", MN_LE}, {">=", MN_GE}, {"==", MN_EQ},
               {"!=", MN_NE}, {"<", MN_LT},  {">", MN_GT}};
    int a = meta_sum(mp);
    if (a < 0)
        return -1;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (peek_op(mp->c, ops[i].s)) {
            const char *at = mp->c->p;
            mp->c->p += strlen(ops[i].s);
            int b = meta_sum(mp);
            if (b < 0)
                return -1;
            return meta_node(mp, ops[i].op, a, b, at);
        }
    }
    return a;
}

static int meta_and(struct meta_parse *mp)
{
    int a = meta_cmp(mp);
    while (a >= 0 && peek_op(mp->c, "&&")) {
        const char *at = mp->c->p;
        mp->c->p += 2;
        int b = meta_cmp(mp);
        if (b < 0)
            return -1;
        a = meta_node(mp, MN_AND, a, b, at);
    }
    return a;
}

static int meta_or(struct meta_parse *mp)
{
    int a = meta_and(mp);
    while (a >= 0 && peek_op(mp->c, "||")) {
        const char *at = mp->c->p;
        mp->c->p += 2;
        int b = meta_and(mp);
        if (b < 0)
            return -1;
        a = meta_node(mp, MN_OR, a, b, at);
    }
    return a;
}

/* ---- rules ---- */

static const struct {
    const char *word;
    enum rule_target target;
    enum rules_stage stage;
} targets[] = {
    {"client_addr", T_CLIENT_ADDR, RULES_STAGE_CONNECT},
    {"client_name", T_CLIENT_NAME, RULES_STAGE_CONNECT},
    {"helo", T_HELO, RULES_STAGE_HELO},
    {"mail_from", T_MAIL_FROM, RULES_STAGE_MAIL},
    {"rcpt_to", T_RCPT_TO, RULES_STAGE_RCPT},
    {"header", T_HEADER, RULES_STAGE_CONTENT},
    {"headers", T_HEADERS, RULES_STAGE_CONTENT},
    {"body", T_BODY, RULES_STAGE_CONTENT},
    {"rawbody", T_RAWBODY, RULES_STAGE_CONTENT},
    {"uri", T_URI, RULES_STAGE_CONTENT},
    {"full", T_FULL, RULES_STAGE_CONTENT},
    {"size", T_SIZE, RULES_STAGE_CONTENT},
    {"attachment_name", T_ATTACH_NAME, RULES_STAGE_CONTENT},
    {"attachment_type", T_ATTACH_TYPE, RULES_STAGE_CONTENT},
    {"meta", T_META, RULES_STAGE_CONNECT},
};

static bool valid_field_name(const char *w, size_t n)
{
    if (n == 0 || n > 200)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)w[i] < 33 || (unsigned char)w[i] > 126 || w[i] == ':')
            return false;
    return true;
}

/* TARGET, with header's field name and :raw / :addr / :name. */
static bool parse_target(struct cur *c, struct rule *rule)
{
    const char *w, *at;
    size_t n;
    skip_ws(c);
    at = c->p;
    if (!cur_word(c, &w, &n)) {
        cur_error_at(c, at, "expected a target after the rule name");
        return false;
    }
    const char *mode = memchr(w, ':', n);
    size_t base = mode ? (size_t)(mode - w) : n;
    size_t i;
    for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
        if (word_is(w, base, targets[i].word))
            break;
    if (i == sizeof(targets) / sizeof(targets[0])) {
        cur_error_at(c, at,
                     "unknown target \"%.*s\" (client_addr, client_name, helo, mail_from, "
                     "rcpt_to, header, headers, body, rawbody, uri, full, size, "
                     "attachment_name, attachment_type, meta)",
                     (int)(n > 60 ? 60 : n), w);
        return false;
    }
    rule->target = targets[i].target;
    rule->stage = targets[i].stage;
    if (mode != NULL && rule->target != T_HEADERS) {
        cur_error_at(c, mode, "only a header field (header NAME:raw) or headers takes a mode");
        return false;
    }
    if (rule->target == T_HEADERS && mode != NULL) {
        if (!word_is(mode, (size_t)(w + n - mode), ":raw")) {
            cur_error_at(c, mode, "headers takes only the :raw mode");
            return false;
        }
        rule->hmode = HM_RAW;
    }
    if (rule->target != T_HEADER)
        return true;

    skip_ws(c);
    at = c->p;
    if (!cur_word(c, &w, &n)) {
        cur_error_at(c, at, "expected a header field name after header");
        return false;
    }
    mode = memchr(w, ':', n);
    base = mode ? (size_t)(mode - w) : n;
    if (!valid_field_name(w, base)) {
        cur_error_at(c, at, "bad header field name \"%.*s\"", (int)(n > 60 ? 60 : n), w);
        return false;
    }
    rule->hmode = HM_DECODED;
    if (mode != NULL) {
        size_t ml = (size_t)(w + n - mode);
        if (word_is(mode, ml, ":raw"))
            rule->hmode = HM_RAW;
        else if (word_is(mode, ml, ":addr"))
            rule->hmode = HM_ADDR;
        else if (word_is(mode, ml, ":name"))
            rule->hmode = HM_NAME;
        else {
            cur_error_at(c, mode, "unknown header mode \"%.*s\" (:raw, :addr, :name)",
                         (int)(ml > 30 ? 30 : ml), mode);
            return false;
        }
    }
    if (word_is(w, base, "ALL")) {
        /* SpamAssassin's name for every header field */
        rule->target = T_HEADERS;
        if (rule->hmode == HM_ADDR || rule->hmode == HM_NAME) {
            cur_error_at(c, mode, "header ALL takes only the :raw mode");
            return false;
        }
        return true;
    }
    rule->header = xstrndup(w, base);
    return true;
}

static bool parse_cidrs(struct cur *c, struct rule *rule)
{
    const char *w, *at;
    size_t n;
    skip_ws(c);
    at = c->p;
    if (!cur_word(c, &w, &n)) {
        cur_error_at(c, at, "expected a pattern or an address list");
        return false;
    }
    rule->match = M_CIDR;
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && w[j] != ',')
            j++;
        struct cidr cd;
        if (j == i || !rules_cidr_parse(w + i, j - i, &cd)) {
            cur_error_at(c, w + i, "bad address or network \"%.*s\" (192.0.2.0/24, 2001:db8::/32)",
                         (int)(j - i > 60 ? 60 : j - i), w + i);
            return false;
        }
        rule->cidrs = xrealloc(rule->cidrs, (rule->ncidr + 1) * sizeof(*rule->cidrs));
        rule->cidrs[rule->ncidr++] = cd;
        i = j + 1;
    }
    return true;
}

static bool parse_match(struct cur *c, struct rule *rule)
{
    skip_ws(c);
    const char *at = c->p;
    if (at_eos(c)) {
        cur_error_at(c, at, "expected a pattern after the target");
        return false;
    }
    if (rule->target == T_META) {
        struct meta_parse mp = {.c = c, .rule = rule};
        rule->match = M_META;
        rule->meta_root = meta_or(&mp);
        return rule->meta_root >= 0;
    }
    if (rule->target == T_SIZE) {
        static const struct {
            const char *s;
            enum size_op op;
        } ops[] = {{"<", SZ_LT}, {"<=", SZ_LE}, {">", SZ_GT}, {">=", SZ_GE}, {"==", SZ_EQ}};
        const char *w;
        size_t n, i;
        cur_word(c, &w, &n);
        for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
            if (word_is(w, n, ops[i].s))
                break;
        if (i == sizeof(ops) / sizeof(ops[0])) {
            cur_error_at(c, at, "size needs a comparison: < <= > >= ==");
            return false;
        }
        rule->match = M_SIZE;
        rule->size_op = ops[i].op;
        skip_ws(c);
        at = c->p;
        if (!cur_word(c, &w, &n) || !parse_size(w, n, &rule->size_val)) {
            cur_error_at(c, at, "expected a size in octets (1000, 64k, 10M, 1G)");
            return false;
        }
        return true;
    }
    if (*c->p == '!') {
        rule->negate = true;
        c->p++;
        if (c->p < c->end && (is_blank(*c->p) || is_eol(*c->p))) {
            cur_error_at(c, at, "'!' must stand right before the pattern");
            return false;
        }
    }
    if (rule->target == T_HEADER && (size_t)(c->end - c->p) >= 6 &&
        memcmp(c->p, "exists", 6) == 0 &&
        (c->p + 6 == c->end || is_blank(c->p[6]) || is_eol(c->p[6]) || c->p[6] == '#')) {
        rule->match = M_EXISTS;
        c->p += 6;
        return true;
    }
    if (rule->target == T_CLIENT_ADDR && *c->p != '/' &&
        !(c->p + 1 < c->end && *c->p == 'm' && ispunct((unsigned char)c->p[1])))
        return parse_cidrs(c, rule);
    rule->match = M_REGEX;
    return cur_pattern(c, rule);
}

static bool set_action(struct cur *c, struct rule *rule, enum rule_action a, const char *at)
{
    if (rule->action != A_NONE) {
        cur_error_at(c, at,
                     "a rule takes one of accept, reject, tempfail, discard, quarantine "
                     "(already one at column %u)",
                     rule->action_pos.col);
        return false;
    }
    rule->action = a;
    rule->action_pos = (struct rule_pos){c->file, c->line, cur_col(c, at)};
    return true;
}

static bool parse_add_header(struct cur *c, struct rules_header **adds, size_t *nadd)
{
    skip_ws(c);
    const char *at = c->p;
    char *text = cur_line_string(c, "add-header");
    if (text == NULL)
        return false;
    char *name, *value;
    const char *why = rules_header_check(text, &name, &value);
    free(text);
    if (why != NULL) {
        cur_error_at(c, at, "add-header: %s", why);
        return false;
    }
    *adds = xrealloc(*adds, (*nadd + 1) * sizeof(**adds));
    (*adds)[(*nadd)++] = (struct rules_header){name, value};
    return true;
}

static bool parse_reply(struct cur *c, char **dst, char want, const char *what)
{
    skip_ws(c);
    const char *at = c->p;
    char *s = cur_line_string(c, what);
    if (s == NULL)
        return false;
    const char *why = rules_reply_check(s, want);
    if (why != NULL) {
        cur_error_at(c, at, "%s reply: %s", what, why);
        free(s);
        return false;
    }
    *dst = s;
    return true;
}

static bool parse_clause(struct cur *c, struct rule *rule)
{
    const char *w;
    size_t n;
    skip_ws(c);
    const char *at = c->p;
    if (*c->p == '"') {
        cur_error_at(c, at, "a string here needs a clause before it (describe, reject, ...)");
        return false;
    }
    cur_word(c, &w, &n);
    if (word_is(w, n, "score")) {
        if (rule->has_score) {
            cur_error_at(c, at, "score given twice");
            return false;
        }
        rule->has_score = true;
        return cur_number(c, &rule->score, "score");
    }
    if (word_is(w, n, "describe")) {
        if (rule->describe != NULL) {
            cur_error_at(c, at, "describe given twice");
            return false;
        }
        rule->describe = cur_line_string(c, "describe");
        return rule->describe != NULL;
    }
    if (word_is(w, n, "shadow")) {
        rule->shadow = true;
        return true;
    }
    if (word_is(w, n, "accept"))
        return set_action(c, rule, A_ACCEPT, at);
    if (word_is(w, n, "discard"))
        return set_action(c, rule, A_DISCARD, at);
    if (word_is(w, n, "reject")) {
        if (!set_action(c, rule, A_REJECT, at))
            return false;
        return !next_is_string(c) || parse_reply(c, &rule->reply, '5', "reject");
    }
    if (word_is(w, n, "tempfail")) {
        if (!set_action(c, rule, A_TEMPFAIL, at))
            return false;
        return !next_is_string(c) || parse_reply(c, &rule->reply, '4', "tempfail");
    }
    if (word_is(w, n, "quarantine")) {
        if (!set_action(c, rule, A_QUARANTINE, at))
            return false;
        if (!next_is_string(c))
            return true;
        rule->reason = cur_line_string(c, "quarantine reason");
        return rule->reason != NULL;
    }
    if (word_is(w, n, "add-header"))
        return parse_add_header(c, &rule->adds, &rule->nadd);
    if (word_is(w, n, "must-hit") || word_is(w, n, "must-not-hit")) {
        bool hit = word_is(w, n, "must-hit");
        if (rule->match == M_META || rule->match == M_EXISTS) {
            cur_error_at(c, at, "examples need a pattern, an address list or a size to test");
            return false;
        }
        skip_ws(c);
        struct rule_pos pos = {c->file, c->line, cur_col(c, c->p)};
        size_t len;
        char *text = cur_string(c, &len, hit ? "must-hit" : "must-not-hit");
        if (text == NULL)
            return false;
        rule->examples = xrealloc(rule->examples, (rule->nexamples + 1) * sizeof(*rule->examples));
        rule->examples[rule->nexamples++] = (struct rule_example){text, len, hit, pos};
        return true;
    }
    cur_error_at(c, at,
                 "unknown clause \"%.*s\" (score, describe, shadow, accept, reject, tempfail, "
                 "discard, quarantine, add-header, must-hit, must-not-hit)",
                 (int)(n > 60 ? 60 : n), w);
    return false;
}

static void parse_rule(struct cur *c, const char *stmt)
{
    const char *w;
    size_t n;
    skip_ws(c);
    const char *at = c->p;
    if (!cur_word(c, &w, &n)) {
        cur_error_at(c, at, "expected a rule name after rule");
        return;
    }
    if (!valid_name(w, n)) {
        cur_error_at(c, at,
                     "bad rule name \"%.*s\": letters, digits and _, starting with a letter "
                     "or _, at most %d",
                     (int)(n > 60 ? 60 : n), w, NAME_MAX_LEN);
        return;
    }
    struct rule rule = {0};
    rule.name = xstrndup(w, n);
    rule.pos = (struct rule_pos){c->file, c->line, cur_col(c, stmt)};
    rule.hidden = n > 2 && w[0] == '_' && w[1] == '_';
    rule.meta_root = -1;
    bool ok = parse_target(c, &rule) && parse_match(c, &rule);
    while (ok && !at_eos(c))
        ok = parse_clause(c, &rule);
    if (ok && rule.hidden && (rule.has_score || rule.action != A_NONE || rule.nadd > 0)) {
        cur_error_at(c, stmt, "a rule named __... only feeds meta rules: no score or action");
        ok = false;
    }
    if (!ok) {
        struct rules_build *b = c->b;
        b->failed = xrealloc(b->failed, (b->nfailed + 1) * sizeof(*b->failed));
        b->failed[b->nfailed++] = rule.name;
        rule.name = NULL;
        rules_rule_free(&rule);
        return;
    }
    struct rules *r = c->b->r;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
    }
    r->v[r->n++] = rule;
}

static void parse_threshold(struct cur *c, const char *stmt)
{
    static const char *kinds[TH__COUNT] = {"tag", "quarantine", "reject"};
    const char *w;
    size_t n;
    skip_ws(c);
    const char *at = c->p;
    cur_word(c, &w, &n);
    int k;
    for (k = 0; k < TH__COUNT; k++)
        if (word_is(w, n, kinds[k]))
            break;
    if (k == TH__COUNT) {
        cur_error_at(c, at, "threshold is tag, quarantine or reject");
        return;
    }
    struct threshold th = {.set = true};
    th.pos = (struct rule_pos){c->file, c->line, cur_col(c, stmt)};
    bool ok = cur_number(c, &th.score, "threshold score");
    while (ok && !at_eos(c)) {
        skip_ws(c);
        at = c->p;
        if (*c->p == '"' && k == TH_REJECT && th.reply == NULL) {
            ok = parse_reply(c, &th.reply, '5', "threshold reject");
            continue;
        }
        if (*c->p == '"' && k == TH_QUARANTINE && th.reason == NULL) {
            th.reason = cur_line_string(c, "quarantine reason");
            ok = th.reason != NULL;
            continue;
        }
        cur_word(c, &w, &n);
        if (k == TH_TAG && word_is(w, n, "add-header")) {
            ok = parse_add_header(c, &th.adds, &th.nadd);
        } else if (k == TH_TAG && word_is(w, n, "subject-prefix") && th.subject_prefix == NULL) {
            th.subject_prefix = cur_line_string(c, "subject-prefix");
            ok = th.subject_prefix != NULL;
        } else {
            cur_error_at(c, at,
                         k == TH_TAG      ? "threshold tag takes add-header \"Name: value\" and "
                                            "subject-prefix \"text\""
                         : k == TH_REJECT ? "threshold reject takes one reply \"550 5.7.1 text\""
                                          : "threshold quarantine takes one reason \"text\"");
            ok = false;
        }
    }
    struct threshold *old = &c->b->r->th[k];
    if (ok && old->set) {
        cur_error_at(c, stmt, "threshold %s already set at %s:%u", kinds[k], old->pos.file,
                     old->pos.line);
        ok = false;
    }
    if (ok) {
        *old = th;
        return;
    }
    free(th.reply);
    free(th.reason);
    free(th.subject_prefix);
    for (size_t i = 0; i < th.nadd; i++) {
        free((char *)th.adds[i].name);
        free((char *)th.adds[i].value);
    }
    free(th.adds);
}

static char *join_path(const char *base, const char *rel)
{
    if (rel[0] == '/')
        return xstrndup(rel, strlen(rel));
    const char *slash = strrchr(base, '/');
    size_t dl = slash ? (size_t)(slash - base) + 1 : 0;
    size_t rl = strlen(rel);
    char *p = xrealloc(NULL, dl + rl + 1);
    memcpy(p, base, dl);
    memcpy(p + dl, rel, rl + 1);
    return p;
}

static void parse_include(struct cur *c, const char *stmt)
{
    skip_ws(c);
    const char *at = c->p;
    char *rel = cur_line_string(c, "include file name");
    if (rel == NULL)
        return;
    if (!at_eos(c)) {
        cur_error_at(c, c->p, "include takes one file name");
        free(rel);
        return;
    }
    struct rules_build *b = c->b;
    if (b->read_file == NULL) {
        cur_error_at(c, stmt, "include is not available here");
        free(rel);
        return;
    }
    if (rel[0] == '\0') {
        cur_error_at(c, at, "empty include file name");
        free(rel);
        return;
    }
    if (b->depth >= INCLUDE_MAX_DEPTH) {
        cur_error_at(c, stmt, "includes nested deeper than %d", INCLUDE_MAX_DEPTH);
        free(rel);
        return;
    }
    char *path = join_path(c->file, rel);
    free(rel);
    char *canon = realpath(path, NULL);
    const char *name = canon ? canon : path;
    if (!rules_build_seen(b, name)) {
        cur_error_at(c, at, "%s is loaded already (included twice, or an include loop)", name);
        free(canon);
        free(path);
        return;
    }
    char *data = NULL, *why = NULL;
    size_t len = 0;
    if (b->read_file(name, &data, &len, &why) != 0) {
        cur_error_at(c, at, "cannot read %s: %s", name, why ? why : "error");
        free(why);
        free(canon);
        free(path);
        return;
    }
    const char *interned = rules_build_file(b, path);
    free(canon);
    free(path);
    b->depth++;
    rules_parse(b, interned, data, len);
    b->depth--;
    free(data);
}

void rules_parse(struct rules_build *b, const char *file, const char *data, size_t len)
{
    struct cur c = {
        .b = b, .file = file, .p = data, .end = data + len, .line_start = data, .line = 1};
    size_t first_rule = b->r->n;
    bool file_shadow = false;

    const char *nul = memchr(data, '\0', len);
    if (nul != NULL) {
        unsigned line = 1;
        const char *ls = data;
        for (const char *q = data; q < nul; q++)
            if (*q == '\n')
                line++, ls = q + 1;
        rules_build_error(b, file, line, (unsigned)(nul - ls) + 1, "NUL octet in rule file");
        return;
    }
    while (c.p < c.end) {
        c.failed = false;
        if (line_is_empty(c.p, c.end)) {
            skip_to_eol(&c);
            if (c.p < c.end)
                cur_newline(&c);
            continue;
        }
        if (is_blank(*c.p)) {
            while (is_blank(*c.p))
                c.p++;
            cur_error_at(&c, c.p, "indented line without a statement above it");
            skip_statement(&c);
            continue;
        }
        const char *stmt = c.p;
        const char *w;
        size_t n;
        cur_word(&c, &w, &n);
        if (word_is(w, n, "rule"))
            parse_rule(&c, stmt);
        else if (word_is(w, n, "threshold"))
            parse_threshold(&c, stmt);
        else if (word_is(w, n, "include"))
            parse_include(&c, stmt);
        else if (word_is(w, n, "shadow")) {
            if (!at_eos(&c))
                cur_error_at(&c, c.p, "shadow stands alone on its line (for the whole file)");
            file_shadow = true;
        } else if (n == 0)
            cur_error_at(&c, stmt, "expected a statement (rule, threshold, include, shadow)");
        else
            cur_error_at(&c, stmt, "unknown statement \"%.*s\" (rule, threshold, include, shadow)",
                         (int)(n > 60 ? 60 : n), w);
        if (c.failed) {
            skip_statement(&c);
            continue;
        }
        if (!at_eos(&c)) {
            cur_error_at(&c, c.p, "unexpected text at the end of the statement");
            skip_statement(&c);
            continue;
        }
        if (c.p < c.end)
            cur_newline(&c);
    }
    if (file_shadow)
        for (size_t i = first_rule; i < b->r->n; i++)
            if (b->r->v[i].pos.file == file)
                b->r->v[i].shadow = true;
}

/* ---- values ---- */

const char *rules_reply_check(const char *reply, char want)
{
    const unsigned char *s = (const unsigned char *)reply;
    if (!(s[0] == (unsigned char)want && s[1] >= '0' && s[1] <= '5' && isdigit(s[2])))
        return want == '5' ? "must start with a 5xx code (550)"
                           : "must start with a 4xx code (451)";
    if (s[3] != ' ')
        return "code must be followed by a space and an enhanced code (550 5.7.1 text)";
    s += 4;
    if (s[0] != (unsigned char)want || s[1] != '.')
        return "enhanced code must be of the code's class (550 5.x.y, 451 4.x.y)";
    s += 2;
    int d = 0;
    while (isdigit(*s) && d < 4)
        s++, d++;
    if (d == 0 || d > 3 || *s != '.')
        return "bad enhanced code (class.subject.detail, 1-3 digits each)";
    s++;
    d = 0;
    while (isdigit(*s) && d < 4)
        s++, d++;
    if (d == 0 || d > 3)
        return "bad enhanced code (class.subject.detail, 1-3 digits each)";
    if (*s != ' ' || s[1] == '\0')
        return "enhanced code must be followed by a space and a text";
    for (s++; *s; s++)
        if (*s < 32 || *s == 127)
            return "text must be printable";
    if (strlen(reply) > 500)
        return "longer than 500 octets";
    return NULL;
}

const char *rules_header_check(const char *text, char **name, char **value)
{
    const char *colon = strchr(text, ':');
    if (colon == NULL)
        return "expected \"Name: value\"";
    if (!valid_field_name(text, (size_t)(colon - text)))
        return "bad field name (printable octets, no blank or colon)";
    const char *v = colon + 1;
    while (is_blank(*v))
        v++;
    if (*v == '\0')
        return "empty value";
    for (const unsigned char *q = (const unsigned char *)v; *q; q++)
        if ((*q < 32 && *q != '\t') || *q == 127)
            return "value must be printable";
    if (strlen(text) > 900)
        return "longer than 900 octets";
    *name = xstrndup(text, (size_t)(colon - text));
    *value = xstrndup(v, strlen(v));
    return NULL;
}
