/*
 * sa_meta - SpamAssassin meta expressions (see sa_meta.h): a tokenizer and
 * a recursive descent, one function per Perl precedence level, its depth
 * and its length bounded as the native parser's are.
 */
#include "rules/sa_meta.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "rules/meta.h"
#include "util/alloc.h"

struct sm {
    const char *p, *end;
    struct rule *rule;
    unsigned depth;
    const char *why;
    bool nomem;
};

static int fail(struct sm *m, const char *why)
{
    if (m->why == NULL)
        m->why = why;
    return -1;
}

static int node(struct sm *m, enum meta_op op, int a, int b)
{
    struct rule *r = m->rule;
    if (r->nmeta >= META_MAX_NODES)
        return fail(m, "meta expression too long");
    struct meta_node *v = util_reallocarray(r->meta, r->nmeta + 1, sizeof(*r->meta));
    if (v == NULL) {
        m->nomem = true;
        return fail(m, "out of memory");
    }
    r->meta = v;
    r->meta[r->nmeta] = (struct meta_node){.op = op, .a = a, .b = b, .pos = r->pos};
    return (int)r->nmeta++;
}

static void ws(struct sm *m)
{
    while (m->p < m->end && isspace((unsigned char)*m->p))
        m->p++;
}

static bool peek(struct sm *m, const char *op)
{
    ws(m);
    size_t n = strlen(op);
    return (size_t)(m->end - m->p) >= n && memcmp(m->p, op, n) == 0;
}

static int expr_or(struct sm *m);

static int primary(struct sm *m)
{
    ws(m);
    if (m->p >= m->end)
        return fail(m, "meta expression ends too early");
    char ch = *m->p;
    if (ch == '(') {
        m->p++;
        if (++m->depth > META_MAX_DEPTH)
            return fail(m, "meta expression nested too deeply");
        int e = expr_or(m);
        m->depth--;
        if (e < 0)
            return -1;
        if (!peek(m, ")"))
            return fail(m, "meta expression: ')' expected");
        m->p++;
        return e;
    }
    if (isdigit((unsigned char)ch) || ch == '.') {
        char buf[40];
        size_t n = 0;
        while (m->p < m->end && (isdigit((unsigned char)*m->p) || *m->p == '.') && n < 39)
            buf[n++] = *m->p++;
        buf[n] = '\0';
        char *e;
        double v = strtod(buf, &e);
        if (*e != '\0')
            return fail(m, "meta expression: bad number");
        int k = node(m, MN_NUM, -1, -1);
        if (k >= 0)
            m->rule->meta[k].num = v;
        return k;
    }
    if (isalpha((unsigned char)ch) || ch == '_') {
        const char *w = m->p;
        while (m->p < m->end && (isalnum((unsigned char)*m->p) || *m->p == '_'))
            m->p++;
        size_t n = (size_t)(m->p - w);
        if (n > NAME_MAX_LEN)
            return fail(m, "meta expression: rule name too long");
        if (n == 14 && memcmp(w, "rules_matching", 14) == 0)
            return fail(m, "rules_matching() in meta");
        if (n == 16 && memcmp(w, "local_tests_only", 16) == 0)
            return fail(m, "local_tests_only in meta");
        if (m->p < m->end && *m->p == ':')
            return fail(m, "meta expression: a class name");
        int k = node(m, MN_REF, -1, -1);
        if (k >= 0 && (m->rule->meta[k].name = util_memdup(w, n)) == NULL) {
            m->nomem = true;
            return fail(m, "out of memory");
        }
        return k;
    }
    if (ch == '?' || ch == ':')
        return fail(m, "the ? : operator in meta");
    if (ch == '^')
        return fail(m, "the ^ operator in meta");
    return fail(m, "meta expression: unexpected character");
}

static int unary(struct sm *m)
{
    ws(m);
    if (m->p < m->end && (*m->p == '!' || *m->p == '-' || *m->p == '+') &&
        !(m->p + 1 < m->end && *m->p == '!' && m->p[1] == '=')) {
        char op = *m->p++;
        if (++m->depth > META_MAX_DEPTH)
            return fail(m, "meta expression nested too deeply");
        int a = unary(m);
        m->depth--;
        if (a < 0 || op == '+')
            return a;
        return node(m, op == '!' ? MN_NOT : MN_NEG, a, -1);
    }
    return primary(m);
}

static int product(struct sm *m)
{
    int a = unary(m);
    while (a >= 0 && (peek(m, "*") || peek(m, "/"))) {
        enum meta_op op = *m->p++ == '*' ? MN_MUL : MN_DIV;
        int b = unary(m);
        if (b < 0)
            return -1;
        a = node(m, op, a, b);
    }
    return a;
}

static int sum(struct sm *m)
{
    int a = product(m);
    while (a >= 0 && (peek(m, "+") || peek(m, "-"))) {
        enum meta_op op = *m->p++ == '+' ? MN_ADD : MN_SUB;
        int b = product(m);
        if (b < 0)
            return -1;
        a = node(m, op, a, b);
    }
    return a;
}

static int relation(struct sm *m)
{
    int a = sum(m);
    for (;;) {
        enum meta_op op;
        if (a < 0)
            return -1;
        if (peek(m, "<="))
            op = MN_LE, m->p += 2;
        else if (peek(m, ">="))
            op = MN_GE, m->p += 2;
        else if (peek(m, "<"))
            op = MN_LT, m->p++;
        else if (peek(m, ">"))
            op = MN_GT, m->p++;
        else
            return a;
        int b = sum(m);
        if (b < 0)
            return -1;
        a = node(m, op, a, b);
    }
}

static int equality(struct sm *m)
{
    int a = relation(m);
    for (;;) {
        enum meta_op op;
        if (a < 0)
            return -1;
        if (peek(m, "=="))
            op = MN_EQ;
        else if (peek(m, "!="))
            op = MN_NE;
        else
            return a;
        m->p += 2;
        int b = relation(m);
        if (b < 0)
            return -1;
        a = node(m, op, a, b);
    }
}

static int expr_and(struct sm *m)
{
    int a = equality(m);
    while (a >= 0 && peek(m, "&&")) {
        m->p += 2;
        int b = equality(m);
        if (b < 0)
            return -1;
        a = node(m, MN_PAND, a, b);
    }
    return a;
}

static int expr_or(struct sm *m)
{
    int a = expr_and(m);
    while (a >= 0 && peek(m, "||")) {
        m->p += 2;
        int b = expr_and(m);
        if (b < 0)
            return -1;
        a = node(m, MN_POR, a, b);
    }
    return a;
}

int sa_meta_parse(const char *s, size_t n, struct rule *rule, const char **why)
{
    struct sm m = {.p = s, .end = s + n, .rule = rule};
    int root = expr_or(&m);
    ws(&m);
    if (root >= 0 && m.p != m.end)
        root = fail(&m, m.p < m.end && (*m.p == '?' || *m.p == ':') ? "the ? : operator in meta"
                        : m.p < m.end && *m.p == '^'                ? "the ^ operator in meta"
                                                     : "meta expression: unexpected text");
    if (m.nomem)
        return -2;
    *why = m.why;
    return root;
}
