/*
 * meta - the meta rule expression parser (see meta.h): recursive descent,
 * one function per precedence level, the depth counted on the way down.
 */
#include "rules/meta.h"

#include <ctype.h>
#include <string.h>

#include "util/alloc.h"

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
    struct meta_node *v = util_reallocarray(r->meta, r->nmeta + 1, sizeof(*r->meta));
    if (v == NULL)
        return (void)cur_nomem(mp->c), -1;
    r->meta = v;
    r->meta[r->nmeta] = (struct meta_node){.op = op, .a = a, .b = b};
    r->meta[r->nmeta].pos = (struct rule_pos){mp->c->file, mp->c->line, cur_col(mp->c, at)};
    return (int)r->nmeta++;
}

static bool peek_op(struct cur *c, const char *op)
{
    lex_skip_ws(c);
    size_t n = strlen(op);
    return (size_t)(c->end - c->p) >= n && memcmp(c->p, op, n) == 0;
}

static int meta_or(struct meta_parse *mp);

/* symbol(NAME), the cursor at its '(': a symbol a plugin added. */
static int meta_symbol(struct meta_parse *mp, const char *at)
{
    struct cur *c = mp->c;
    c->p++; /* ( */
    lex_skip_ws(c);
    const char *name = c->p;
    while (c->p < c->end && (isalnum((unsigned char)*c->p) || *c->p == '_'))
        c->p++;
    size_t n = (size_t)(c->p - name);
    if (n == 0 || isdigit((unsigned char)*name)) {
        cur_error_at(c, name, "expected a symbol name in symbol( )");
        return -1;
    }
    if (n > NAME_MAX_LEN) {
        cur_error_at(c, name, "symbol name longer than %d", NAME_MAX_LEN);
        return -1;
    }
    lex_skip_ws(c);
    if (c->p >= c->end || *c->p != ')') {
        cur_error_at(c, c->p, "expected ')' to close symbol( at column %u", cur_col(c, at));
        return -1;
    }
    c->p++;
    int k = meta_node(mp, MN_SYM, -1, -1, at);
    if (k >= 0 && (mp->rule->meta[k].name = util_memdup(name, n)) == NULL) {
        cur_nomem(c);
        return -1;
    }
    return k;
}

static int meta_primary(struct meta_parse *mp)
{
    struct cur *c = mp->c;
    lex_skip_ws(c);
    const char *at = c->p;
    if (lex_at_eos(c)) {
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
        lex_skip_ws(c);
        if (c->p >= c->end || *c->p != ')') {
            cur_error_at(c, c->p, "expected ')' to close the '(' at column %u", cur_col(c, at));
            return -1;
        }
        c->p++;
        return e;
    }
    if (*c->p == '-') {
        c->p++;
        if (++mp->depth > META_MAX_DEPTH) {
            cur_error_at(c, at, "meta expression nested too deeply");
            return -1;
        }
        int a = meta_primary(mp);
        mp->depth--;
        return a < 0 ? -1 : meta_node(mp, MN_NEG, a, -1, at);
    }
    if (isdigit((unsigned char)*c->p)) {
        double v = 0, scale = 0;
        while (c->p < c->end && (isdigit((unsigned char)*c->p) || (*c->p == '.' && scale == 0))) {
            if (*c->p == '.') {
                scale = 1;
                c->p++;
                if (c->p >= c->end || !isdigit((unsigned char)*c->p)) {
                    cur_error_at(c, at, "a decimal needs digits after the point");
                    return -1;
                }
                continue;
            }
            if (v > 1000000) {
                cur_error_at(c, at, "number too large in meta expression");
                return -1;
            }
            if (scale > 0)
                v += (*c->p++ - '0') / (scale *= 10);
            else
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
        if (n == 6 && memcmp(at, "symbol", 6) == 0 && peek_op(c, "("))
            return meta_symbol(mp, at);
        if (n > NAME_MAX_LEN) {
            cur_error_at(c, at, "rule name longer than %d", NAME_MAX_LEN);
            return -1;
        }
        int k = meta_node(mp, MN_REF, -1, -1, at);
        if (k >= 0 && (mp->rule->meta[k].name = util_memdup(at, n)) == NULL) {
            cur_nomem(c);
            return -1;
        }
        return k;
    }
    cur_error_at(c, at,
                 "expected a rule name, a number, symbol(NAME), '!', '-' or '(' in meta expression");
    return -1;
}

static int meta_product(struct meta_parse *mp)
{
    int a = meta_primary(mp);
    while (a >= 0 && (peek_op(mp->c, "*") || peek_op(mp->c, "/"))) {
        const char *at = mp->c->p++;
        int b = meta_primary(mp);
        if (b < 0)
            return -1;
        a = meta_node(mp, *at == '*' ? MN_MUL : MN_DIV, a, b, at);
    }
    return a;
}

static int meta_sum(struct meta_parse *mp)
{
    int a = meta_product(mp);
    while (a >= 0 && (peek_op(mp->c, "+") || peek_op(mp->c, "-"))) {
        const char *at = mp->c->p++;
        int b = meta_product(mp);
        if (b < 0)
            return -1;
        a = meta_node(mp, *at == '+' ? MN_ADD : MN_SUB, a, b, at);
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

int rules_meta_parse(struct cur *c, struct rule *rule)
{
    struct meta_parse mp = {.c = c, .rule = rule};
    return meta_or(&mp);
}
