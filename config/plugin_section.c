/*
 * plugin_section - a small lexer with libconfuse's token rules (lexer.l of
 * libconfuse 3.3: words, both kinds of quoted strings with their escapes,
 * ${VAR} expansion, "{ } ( ) = += ,"), and a parser for the body of a
 * plugin section over it.
 *
 * The top-level scan looks for "plugin TITLE {" where an option name may
 * stand (depth 0, not after "=" or inside a list) and leaves everything else
 * to libconfuse: a mistake outside a plugin section ends the scan quietly,
 * and libconfuse reports it with its line.
 */
#include "config/plugin_section.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tok { T_EOF, T_ERR, T_STR, T_LBRACE, T_RBRACE, T_LPAREN, T_RPAREN, T_EQ, T_PLUSEQ, T_COMMA };

struct lex {
    const char *text;
    size_t i;
    int line;
    /* The token just read. */
    enum tok t;
    char *s; /* T_STR: its value (malloc'd); else NULL */
    size_t start;
    int tline;
    /* The first error. */
    char *err;
    size_t err_size;
    int *err_line;
};

struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void sbuf_put(struct sbuf *b, char c)
{
    if (b->oom)
        return;
    if (b->n + 2 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    b->p[b->n++] = c;
    b->p[b->n] = '\0';
}

static void sbuf_puts(struct sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sbuf_put(b, s[i]);
}

static enum tok lex_fail(struct lex *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static enum tok lex_fail(struct lex *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->err, l->err_size, fmt, ap);
    va_end(ap);
    *l->err_line = l->line;
    return l->t = T_ERR;
}

/* "${NAME}" or "${NAME:-default}" at text + i (i at '$'); false when it is not one. */
static bool lex_env(struct lex *l, struct sbuf *b)
{
    const char *p = l->text + l->i;
    if (p[0] != '$' || p[1] != '{')
        return false;
    const char *end = strchr(p + 2, '}');
    if (!end)
        return false;
    size_t n = (size_t)(end - (p + 2));
    char *name = strndup(p + 2, n);
    if (!name) {
        b->oom = true;
        return true;
    }
    const char *def = NULL;
    char *colon = strchr(name, ':');
    if (colon && colon[1] == '-') {
        *colon = '\0';
        def = colon + 2;
    }
    const char *v = getenv(name);
    if (!v)
        v = def ? def : "";
    sbuf_puts(b, v, strlen(v));
    free(name);
    for (const char *q = p; q <= end; q++)
        if (*q == '\n')
            l->line++;
    l->i += (size_t)(end - p) + 1;
    return true;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c - 'A' + 10;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static enum tok lex_dquote(struct lex *l, struct sbuf *b)
{
    const char *t = l->text;
    for (;;) {
        char c = t[l->i];
        if (c == '\0')
            return lex_fail(l, "unterminated string constant");
        if (c == '"') {
            l->i++;
            return T_STR;
        }
        if (c == '$' && lex_env(l, b))
            continue;
        if (c == '\n') {
            l->line++;
            sbuf_put(b, c);
            l->i++;
            continue;
        }
        if (c != '\\') {
            sbuf_put(b, c);
            l->i++;
            continue;
        }
        char e = t[l->i + 1];
        l->i += 2;
        if (e == '\0') {
            l->i--;
            return lex_fail(l, "unterminated string constant");
        }
        if (e == '\n') {
            l->line++;
        } else if (e >= '0' && e <= '7') {
            unsigned v = (unsigned)(e - '0');
            for (int k = 0; k < 2 && t[l->i] >= '0' && t[l->i] <= '7'; k++)
                v = v * 8 + (unsigned)(t[l->i++] - '0');
            if (v > 0xFF)
                return lex_fail(l, "invalid octal number");
            sbuf_put(b, (char)v);
        } else if (e == '8' || e == '9') {
            return lex_fail(l, "bad escape sequence");
        } else if (e == 'x' && is_hex(t[l->i])) {
            int v = hexval(t[l->i++]);
            if (is_hex(t[l->i]))
                v = v * 16 + hexval(t[l->i++]);
            sbuf_put(b, (char)v);
        } else {
            static const char from[] = "nrbfaetv", to[] = "\n\r\b\f\a\033\t\v";
            const char *k = strchr(from, e);
            sbuf_put(b, k ? to[k - from] : e);
        }
    }
}

static enum tok lex_squote(struct lex *l, struct sbuf *b)
{
    const char *t = l->text;
    for (;;) {
        char c = t[l->i];
        if (c == '\0')
            return lex_fail(l, "unterminated string constant");
        if (c == '\'') {
            l->i++;
            return T_STR;
        }
        if (c == '\n')
            l->line++;
        if (c != '\\' || t[l->i + 1] == '\0') {
            sbuf_put(b, c);
            l->i++;
            continue;
        }
        char e = t[l->i + 1];
        l->i += 2;
        if (e == '\n') {
            l->line++;
        } else if (e == '\\' || e == '\'') {
            sbuf_put(b, e);
        } else {
            sbuf_put(b, '\\');
            sbuf_put(b, e);
        }
    }
}

static bool lex_word_char(char c)
{
    return c && !strchr(" #\"'\t\n\r={}()+,*", c);
}

static enum tok lex_next(struct lex *l)
{
    free(l->s);
    l->s = NULL;
    const char *t = l->text;
    for (;;) {
        char c = t[l->i];
        if (c == '\0') {
            l->start = l->i;
            l->tline = l->line;
            return l->t = T_EOF;
        }
        if (c == '\n') {
            l->line++;
            l->i++;
        } else if (c == '#' || (c == '/' && t[l->i + 1] == '/')) {
            while (t[l->i] && t[l->i] != '\n')
                l->i++;
        } else if (c == '/' && t[l->i + 1] == '*') {
            const char *end = strstr(t + l->i + 2, "*/");
            size_t stop = end ? (size_t)(end - t) + 2 : strlen(t);
            for (; l->i < stop; l->i++)
                if (t[l->i] == '\n')
                    l->line++;
        } else if (lex_word_char(c) || c == '"' || c == '\'' || strchr("{}()=,", c) ||
                   (c == '+' && t[l->i + 1] == '=')) {
            break;
        } else {
            l->i++; /* whitespace, and what libconfuse's lexer eats */
        }
    }
    l->start = l->i;
    l->tline = l->line;
    char c = t[l->i];
    static const char single[] = "{}()=,";
    static const enum tok single_tok[] = {T_LBRACE, T_RBRACE, T_LPAREN, T_RPAREN, T_EQ, T_COMMA};
    const char *k = strchr(single, c);
    if (k) {
        l->i++;
        return l->t = single_tok[k - single];
    }
    if (c == '+') {
        l->i += 2;
        return l->t = T_PLUSEQ;
    }
    struct sbuf b = {0};
    sbuf_put(&b, '\0'); /* an empty string is still a value */
    b.n = 0;
    enum tok r = T_STR;
    if (c == '"') {
        l->i++;
        r = lex_dquote(l, &b);
    } else if (c == '\'') {
        l->i++;
        r = lex_squote(l, &b);
    } else if (!lex_env(l, &b)) {
        while (lex_word_char(t[l->i]))
            sbuf_put(&b, t[l->i++]);
    }
    if (r == T_STR && b.oom)
        r = lex_fail(l, "out of memory");
    if (r != T_STR) {
        free(b.p);
        return l->t = T_ERR;
    }
    l->s = b.p;
    return l->t = T_STR;
}

static const char *tok_text(const struct lex *l)
{
    switch (l->t) {
    case T_STR:
        return l->s;
    case T_LBRACE:
        return "{";
    case T_RBRACE:
        return "}";
    case T_LPAREN:
        return "(";
    case T_RPAREN:
        return ")";
    case T_EQ:
        return "=";
    case T_PLUSEQ:
        return "+=";
    case T_COMMA:
        return ",";
    default:
        return "";
    }
}

static int parse_fail(struct lex *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int parse_fail(struct lex *l, const char *fmt, ...)
{
    if (l->t == T_ERR)
        return -1; /* the lexer said why */
    if (l->t == T_EOF) {
        snprintf(l->err, l->err_size, "premature end of file");
    } else {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(l->err, l->err_size, fmt, ap);
        va_end(ap);
    }
    *l->err_line = l->tline;
    return -1;
}

/* ---- values ---- */

static void value_clear(struct plugin_value *v)
{
    free(v->key);
    for (size_t i = 0; i < v->nitems; i++)
        free(v->items[i]);
    free(v->items);
    memset(v, 0, sizeof(*v));
}

void plugin_section_clear(struct plugin_section *s)
{
    for (size_t i = 0; i < s->nvalues; i++)
        value_clear(&s->values[i]);
    free(s->values);
    free(s->name);
    free(s->source);
    memset(s, 0, sizeof(*s));
}

void plugin_sections_clear(struct plugin_sections *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        plugin_section_clear(&ps->v[i]);
    free(ps->v);
    ps->v = NULL;
    ps->n = 0;
}

const struct plugin_value *plugin_section_get(const struct plugin_section *s, const char *key)
{
    for (size_t i = 0; i < s->nvalues; i++)
        if (strcmp(s->values[i].key, key) == 0)
            return &s->values[i];
    return NULL;
}

/* The value of key in s, made empty (or appended to); NULL when out of memory. */
static struct plugin_value *section_slot(struct plugin_section *s, const char *key, bool append)
{
    struct plugin_value *v = (struct plugin_value *)plugin_section_get(s, key);
    if (v) {
        if (!append) {
            for (size_t i = 0; i < v->nitems; i++)
                free(v->items[i]);
            v->nitems = 0;
        }
        return v;
    }
    struct plugin_value *n = realloc(s->values, (s->nvalues + 1) * sizeof(*n));
    if (!n)
        return NULL;
    s->values = n;
    v = &s->values[s->nvalues];
    memset(v, 0, sizeof(*v));
    if (!(v->key = strdup(key)))
        return NULL;
    s->nvalues++;
    return v;
}

static bool value_add(struct plugin_value *v, char *item)
{
    char **n = realloc(v->items, (v->nitems + 1) * sizeof(*n));
    if (!n)
        return false;
    v->items = n;
    v->items[v->nitems++] = item;
    return true;
}

/* "key = value", "key = {a, b}", "key += {...}" until "}" (in_section) or the end. */
static int parse_body(struct lex *l, struct plugin_section *s, bool in_section)
{
    for (;;) {
        lex_next(l);
        if (l->t == T_RBRACE && in_section)
            return 0;
        if (l->t == T_EOF && !in_section)
            return 0;
        if (l->t == T_RBRACE)
            return parse_fail(l, "unexpected closing brace");
        if (l->t != T_STR)
            return parse_fail(l, "unexpected token '%s'", tok_text(l));
        char *key = l->s;
        l->s = NULL;
        int key_line = l->tline;
        lex_next(l);
        if (l->t != T_EQ && l->t != T_PLUSEQ) {
            int rc = parse_fail(l, "missing equal sign after option '%s'", key);
            free(key);
            return rc;
        }
        bool append = l->t == T_PLUSEQ;
        struct plugin_value *v = section_slot(s, key, append);
        free(key);
        if (!v)
            return parse_fail(l, "out of memory");
        v->line = key_line;
        lex_next(l);
        if (l->t == T_STR) {
            v->list = append;
            v->line = l->tline;
            if (!value_add(v, l->s))
                return parse_fail(l, "out of memory");
            l->s = NULL;
            continue;
        }
        if (l->t != T_LBRACE)
            return parse_fail(l, "unexpected token '%s'", tok_text(l));
        v->list = true;
        for (bool first = true;; first = false) {
            lex_next(l);
            if (l->t == T_RBRACE && first)
                break;
            if (l->t != T_STR)
                return parse_fail(l, "unexpected token '%s'", tok_text(l));
            v->line = l->tline;
            if (!value_add(v, l->s))
                return parse_fail(l, "out of memory");
            l->s = NULL;
            lex_next(l);
            if (l->t == T_RBRACE)
                break;
            if (l->t != T_COMMA)
                return parse_fail(l, "unexpected token '%s'", tok_text(l));
        }
    }
}

int plugin_section_parse_body(const char *text, const char *source, struct plugin_section *out,
                              int *err_line, char *err, size_t err_size)
{
    struct lex l = {
        .text = text, .line = 1, .err = err, .err_size = err_size, .err_line = err_line};
    if (!out->source && !(out->source = strdup(source ? source : "(config)")))
        return -1;
    int rc = parse_body(&l, out, false);
    free(l.s);
    return rc;
}

/* ---- the top-level scan ---- */

/* Put s at the place of a section of the same name, or at the end. */
static int sections_put(struct plugin_sections *ps, struct plugin_section *s)
{
    for (size_t i = 0; i < ps->n; i++) {
        if (strcmp(ps->v[i].name, s->name) == 0) {
            plugin_section_clear(&ps->v[i]);
            ps->v[i] = *s;
            return 0;
        }
    }
    struct plugin_section *n = realloc(ps->v, (ps->n + 1) * sizeof(*n));
    if (!n)
        return -1;
    ps->v = n;
    ps->v[ps->n++] = *s;
    return 0;
}

static void blank(char *text, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (text[i] != '\n')
            text[i] = ' ';
}

int plugin_sections_take(char *text, const char *source, struct plugin_sections *ps, int *err_line,
                         char *err, size_t err_size)
{
    struct lex l = {
        .text = text, .line = 1, .err = err, .err_size = err_size, .err_line = err_line};
    enum { S_NAME, S_AFTER_NAME, S_VALUE } state = S_NAME;
    int depth = 0;
    int rc = 0;
    *err = '\0';
    for (;;) {
        lex_next(&l);
        if (l.t == T_EOF || l.t == T_ERR)
            break; /* a lexer error outside a plugin section is libconfuse's to report */
        if (l.t == T_LBRACE || l.t == T_LPAREN) {
            depth++;
            continue;
        }
        if (l.t == T_RBRACE || l.t == T_RPAREN) {
            if (depth > 0)
                depth--;
            state = S_NAME;
            continue;
        }
        if (depth > 0)
            continue;
        if (l.t == T_EQ || l.t == T_PLUSEQ) {
            state = S_VALUE;
            continue;
        }
        if (l.t != T_STR) {
            state = S_NAME;
            continue;
        }
        if (state != S_NAME || strcmp(l.s, "plugin") != 0) {
            /* a name; a section's title after it; a value */
            state = state == S_NAME ? S_AFTER_NAME : S_NAME;
            continue;
        }
        size_t start = l.start;
        int line = l.tline;
        lex_next(&l);
        if (l.t != T_STR) {
            rc = parse_fail(&l, "missing title for section '%s'", "plugin");
            break;
        }
        struct plugin_section s = {.name = l.s, .line = line, .source = strdup(source)};
        l.s = NULL;
        lex_next(&l);
        if (!s.source) {
            rc = parse_fail(&l, "out of memory");
        } else if (l.t != T_LBRACE) {
            rc = parse_fail(&l, "missing opening brace for section '%s'", "plugin");
        } else if (parse_body(&l, &s, true) < 0) {
            rc = -1;
        } else if (sections_put(ps, &s) < 0) {
            rc = parse_fail(&l, "out of memory");
        } else {
            blank(text, start, l.i);
            state = S_NAME;
            continue;
        }
        plugin_section_clear(&s);
        break;
    }
    free(l.s);
    return rc;
}
