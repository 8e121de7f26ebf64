/*
 * lex - the rule file's lexical level and the checks of values (see lex.h).
 *
 * Diagnostics: cur_error_at() reports at the cursor's file and line, with
 * the column of the octet at (1-based, in octets), the first error of a
 * statement only.
 */
#include "rules/lex.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/build.h"
#include "util/alloc.h"

unsigned cur_col(const struct cur *c, const char *at)
{
    return (unsigned)(at - c->line_start) + 1;
}

void cur_error_at(struct cur *c, const char *at, const char *fmt, ...)
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

bool cur_nomem(struct cur *c)
{
    c->failed = true;
    return rules_build_nomem(c->b);
}

/* CR is a blank: only LF ends a line, as in the admin's editor, so CRLF
 * files work and line numbers agree with what the editor shows. */
bool lex_is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

bool lex_is_eol(char ch)
{
    return ch == '\n';
}

/* Steps past the line end at c->p. */
void cur_newline(struct cur *c)
{
    if (c->p < c->end && *c->p == '\n')
        c->p++;
    c->line++;
    c->line_start = c->p;
}

/* True when the line at s holds nothing but blanks and maybe a comment. */
bool lex_line_is_empty(const char *s, const char *end)
{
    while (s < end && lex_is_blank(*s))
        s++;
    return s == end || lex_is_eol(*s) || *s == '#';
}

void lex_skip_to_eol(struct cur *c)
{
    while (c->p < c->end && !lex_is_eol(*c->p))
        c->p++;
}

/* Skips blanks and comments, and line ends when the statement continues on
 * the next line (it starts with a blank); stops at a line end otherwise. */
void lex_skip_ws(struct cur *c)
{
    for (;;) {
        while (c->p < c->end && lex_is_blank(*c->p))
            c->p++;
        if (c->p < c->end && *c->p == '#')
            lex_skip_to_eol(c);
        if (c->p >= c->end || !lex_is_eol(*c->p))
            return;
        /* Look past the line end: blank or comment lines are skipped, an
         * indented line continues, anything else ends the statement. */
        const char *save_p = c->p, *save_ls = c->line_start;
        unsigned save_line = c->line;
        for (;;) {
            cur_newline(c);
            if (c->p >= c->end)
                break;
            if (lex_line_is_empty(c->p, c->end)) {
                lex_skip_to_eol(c);
                if (c->p >= c->end)
                    break;
                continue;
            }
            if (lex_is_blank(*c->p))
                break;     /* continuation */
            c->p = c->end; /* marker: statement ended */
            break;
        }
        if (c->p >= c->end || !lex_is_blank(*c->p)) {
            c->p = save_p;
            c->line_start = save_ls;
            c->line = save_line;
            return;
        }
    }
}

bool lex_at_eos(struct cur *c)
{
    lex_skip_ws(c);
    return c->p >= c->end || lex_is_eol(*c->p);
}

/* Skips what is left of the statement: to the next line that starts in the
 * first column with something. */
void lex_skip_statement(struct cur *c)
{
    for (;;) {
        lex_skip_to_eol(c);
        if (c->p >= c->end)
            return;
        cur_newline(c);
        if (c->p >= c->end)
            return;
        if (!lex_is_blank(*c->p) && !lex_line_is_empty(c->p, c->end))
            return;
    }
}

/* A word: a run of octets up to a blank, a line end, a quote or a comment. */
bool cur_word(struct cur *c, const char **w, size_t *n)
{
    lex_skip_ws(c);
    const char *s = c->p;
    while (c->p < c->end && !lex_is_blank(*c->p) && !lex_is_eol(*c->p) && *c->p != '"' &&
           *c->p != '#')
        c->p++;
    *w = s;
    *n = (size_t)(c->p - s);
    return *n > 0;
}

bool lex_word_is(const char *w, size_t n, const char *kw)
{
    return strlen(kw) == n && memcmp(w, kw, n) == 0;
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
char *cur_string(struct cur *c, size_t *len_out, const char *what)
{
    lex_skip_ws(c);
    if (c->p >= c->end || *c->p != '"') {
        cur_error_at(c, c->p, "expected a quoted string (%s)", what);
        return NULL;
    }
    const char *open = c->p++;
    char *out = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (c->p >= c->end || lex_is_eol(*c->p)) {
            cur_error_at(c, open, "unterminated string");
            free(out);
            return NULL;
        }
        char ch = *c->p++;
        if (ch == '"')
            break;
        if (ch == '\\') {
            if (c->p >= c->end || lex_is_eol(*c->p)) {
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
        if (len + 2 > cap && util_grow(&out, &cap, len + 2, 1) != 0) {
            free(out);
            cur_nomem(c);
            return NULL;
        }
        if (len >= STRING_MAX_LEN) {
            cur_error_at(c, open, "string longer than %d octets", STRING_MAX_LEN);
            free(out);
            return NULL;
        }
        out[len++] = ch;
    }
    if (out == NULL && (out = util_malloc(1)) == NULL) {
        cur_nomem(c);
        return NULL;
    }
    out[len] = '\0';
    if (len_out != NULL)
        *len_out = len;
    return out;
}

/* A string without line ends, for replies, reasons and headers. */
char *cur_line_string(struct cur *c, const char *what)
{
    const char *at;
    lex_skip_ws(c);
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

bool lex_next_is_string(struct cur *c)
{
    return !lex_at_eos(c) && *c->p == '"';
}

/* /regex/flags or m{regex}flags (any punctuation pair). */
bool cur_pattern(struct cur *c, struct rule *rule)
{
    lex_skip_ws(c);
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
        if (c->p >= c->end || lex_is_eol(*c->p)) {
            cur_error_at(c, start, "unterminated pattern (no closing %c)", close);
            return false;
        }
        char ch = *c->p;
        if (ch == '\\') {
            c->p++;
            if (c->p < c->end && !lex_is_eol(*c->p))
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
    rule->pattern = util_memdup(body, (size_t)(c->p - body));
    if (rule->pattern == NULL)
        return cur_nomem(c);
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
    if (c->p < c->end && !lex_is_blank(*c->p) && !lex_is_eol(*c->p) && *c->p != '#') {
        cur_error_at(c, c->p, "unexpected text after the pattern");
        return false;
    }
    return true;
}

/* "-1.5", "3", "10.25": decimal, no exponent, finite. */
bool lex_number_parse(const char *w, size_t n, double *out)
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

bool cur_number(struct cur *c, double *out, const char *what)
{
    const char *w;
    size_t n;
    lex_skip_ws(c);
    const char *at = c->p;
    if (!cur_word(c, &w, &n) || !lex_number_parse(w, n, out)) {
        cur_error_at(c, at, "expected a number (%s)", what);
        return false;
    }
    return true;
}

/* 1024, 10k, 5M, 1G (binary multiples). */
bool lex_size_parse(const char *w, size_t n, uint64_t *out)
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

bool lex_valid_name(const char *w, size_t n)
{
    if (n == 0 || n > NAME_MAX_LEN || !(isalpha((unsigned char)w[0]) || w[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)w[i]) && w[i] != '_')
            return false;
    return true;
}

bool lex_valid_field_name(const char *w, size_t n)
{
    if (n == 0 || n > 200)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)w[i] < 33 || (unsigned char)w[i] > 126 || w[i] == ':')
            return false;
    return true;
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
    if (!lex_valid_field_name(text, (size_t)(colon - text)))
        return "bad field name (printable octets, no blank or colon)";
    const char *v = colon + 1;
    while (lex_is_blank(*v))
        v++;
    if (*v == '\0')
        return "empty value";
    for (const unsigned char *q = (const unsigned char *)v; *q; q++)
        if ((*q < 32 && *q != '\t') || *q == 127)
            return "value must be printable";
    if (strlen(text) > 900)
        return "longer than 900 octets";
    *name = util_memdup(text, (size_t)(colon - text));
    *value = util_strdup(v);
    if (*name == NULL || *value == NULL) {
        free(*name);
        free(*value);
        *name = *value = NULL;
    }
    return NULL;
}
