/*
 * sa_cf - SpamAssassin .cf files to rules as written (see sa_cf.h).
 *
 * One line at a time, as Conf::Parser does: SpamAssassin has no
 * continuation lines.  Rules are found by name through an open-addressing
 * index, because score, describe and tflags lines of one rule are spread
 * over several files (50_scores.cf scores the rules of every 20_*.cf).
 * The if stack belongs to the file being read: an include starts its own,
 * and an unclosed block ends with its file (SpamAssassin's "file end").
 */
#include "rules/sa_cf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/build.h"
#include "rules/sa_dnsbl.h"
#include "rules/sa_netset.h"
#include "util/alloc.h"

#define SA_NAME_MAX 128

struct sa_frame {
    bool skip;       /* skipping before this block opened */
    bool this_false; /* the block's own condition is false */
    char *why;       /* reason for skipping inside it */
};

struct sa_file {
    struct sa_conf *c;
    const char *name;
    unsigned line;
    struct sa_frame stack[SA_IF_MAX_DEPTH];
    unsigned depth;
    bool skip;
    const char *why; /* reason of the innermost false block */
    bool version_skip;
};

static bool nomem(struct sa_conf *c)
{
    c->nomem = true;
    return false;
}

static void warn(struct sa_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct sa_file *f, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (rules_errors_add(&f->c->warnings, f->name, f->line, 0, msg) != 0)
        f->c->nomem = true;
}

/* trusted_networks and its kin (sa_netset.h): false when k is not one */
static bool relay_setting(struct sa_file *f, const char *k, const char *val, size_t vn)
{
    struct sa_conf *c = f->c;
    if (c->relay_conf == NULL && (c->relay_conf = sa_relay_conf_new()) == NULL) {
        c->nomem = true;
        return true;
    }
    char why[160];
    int rc = sa_netset_line(c->relay_conf, k, val, vn, why, sizeof(why));
    if (rc < 0)
        c->nomem = true;
    else if (rc == 2)
        warn(f, "%s", why);
    return rc != 1;
}

/* redirector_pattern: compiled now, once for the rule set */
static void redirector_setting(struct sa_file *f, const char *val, size_t vn)
{
    struct sa_conf *c = f->c;
    if (c->redirs == NULL && (c->redirs = sa_redirs_new()) == NULL) {
        c->nomem = true;
        return;
    }
    char why[256];
    enum sa_redir_rc rc = sa_redirs_add(c->redirs, val, vn, why, sizeof(why));
    if (rc == SA_REDIR_NOMEM)
        c->nomem = true;
    else if (rc == SA_REDIR_BAD)
        warn(f, "%s", why);
}

/* DNSEval's skip_rbl_checks, num_check_received, rbl_timeout (sa_dnsbl.h) */
static bool dnsbl_setting(struct sa_file *f, const char *k, const char *val, size_t vn)
{
    struct sa_conf *c = f->c;
    if (c->relay_conf == NULL && (c->relay_conf = sa_relay_conf_new()) == NULL) {
        c->nomem = true;
        return true;
    }
    char why[160];
    if (sa_dnsbl_setting(c->relay_conf, k, val, vn, why, sizeof(why)) != 0)
        warn(f, "%s", why);
    return true;
}

/* ---- the rule index ---- */

static size_t hash_name(const char *s, size_t n)
{
    size_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static bool index_grow(struct sa_conf *c)
{
    size_t cap = c->index_cap ? c->index_cap * 2 : 1024;
    size_t *v = util_calloc(cap, sizeof(*v));
    if (v == NULL)
        return nomem(c);
    for (size_t i = 0; i < c->nrules; i++) {
        size_t h = hash_name(c->rules[i].name, strlen(c->rules[i].name)) & (cap - 1);
        while (v[h] != 0)
            h = (h + 1) & (cap - 1);
        v[h] = i + 1;
    }
    free(c->index);
    c->index = v;
    c->index_cap = cap;
    return true;
}

static struct sa_rule *find(const struct sa_conf *c, const char *name, size_t n)
{
    if (c->index_cap == 0)
        return NULL;
    size_t h = hash_name(name, n) & (c->index_cap - 1);
    while (c->index[h] != 0) {
        struct sa_rule *r = &c->rules[c->index[h] - 1];
        if (strlen(r->name) == n && memcmp(r->name, name, n) == 0)
            return r;
        h = (h + 1) & (c->index_cap - 1);
    }
    return NULL;
}

struct sa_rule *sa_conf_rule(const struct sa_conf *c, const char *name)
{
    return find(c, name, strlen(name));
}

/* The rule named name, made when new. */
static struct sa_rule *get_rule(struct sa_conf *c, const char *name, size_t n)
{
    struct sa_rule *r = find(c, name, n);
    if (r != NULL)
        return r;
    if ((c->nrules + 1) * 2 > c->index_cap && !index_grow(c))
        return NULL;
    if (util_grow(&c->rules, &c->cap, c->nrules + 1, sizeof(*c->rules)) != 0) {
        nomem(c);
        return NULL;
    }
    r = &c->rules[c->nrules];
    *r = (struct sa_rule){0};
    if ((r->name = util_memdup(name, n)) == NULL) {
        nomem(c);
        return NULL;
    }
    size_t h = hash_name(name, n) & (c->index_cap - 1);
    while (c->index[h] != 0)
        h = (h + 1) & (c->index_cap - 1);
    c->index[h] = ++c->nrules;
    return r;
}

/* ---- small helpers over a (pointer, length) text ---- */

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' || ch == '\v';
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_space(**s))
        (*s)++, (*n)--;
    while (*n > 0 && is_space((*s)[*n - 1]))
        (*n)--;
}

/* Splits the first word off: w/wn the word, rest/rn what follows, trimmed. */
static void split_word(const char *s, size_t n, const char **w, size_t *wn, const char **rest,
                       size_t *rn)
{
    size_t i = 0;
    while (i < n && !is_space(s[i]))
        i++;
    *w = s;
    *wn = i;
    *rest = s + i;
    *rn = n - i;
    trim(rest, rn);
}

static bool word_is(const char *w, size_t n, const char *kw)
{
    return strlen(kw) == n && memcmp(w, kw, n) == 0;
}

static bool valid_name(const char *w, size_t n)
{
    if (n == 0 || n > SA_NAME_MAX || !(isalpha((unsigned char)w[0]) || w[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)w[i]) || w[i] == '_'))
            return false;
    return true;
}

static bool set_str(struct sa_conf *c, char **dst, const char *s, size_t n)
{
    char *v = util_memdup(s, n);
    if (v == NULL)
        return nomem(c);
    free(*dst);
    *dst = v;
    return true;
}

/* ---- rule definitions ---- */

/* Forgets what a rule's previous definition said (not its score, text or flags). */
static void clear_definition(struct sa_rule *r)
{
    free(r->field);
    free(r->unset);
    free(r->re);
    free(r->eval);
    free(r->eval_args);
    free(r->meta);
    r->field = r->unset = r->re = r->eval = r->eval_args = r->meta = NULL;
    r->re_len = 0;
    r->exists = r->negate = false;
    r->mods[0] = '\0';
    r->kind = SA_NONE;
}

/* "/re/mods" or "m{re}mods", as Util::compile_regexp takes it apart. */
static bool parse_pattern(struct sa_file *f, struct sa_rule *r, const char *s, size_t n)
{
    char close;
    size_t start;
    if (n >= 1 && s[0] == '/') {
        close = '/';
        start = 1;
    } else if (n >= 2 && s[0] == 'm' && !isalnum((unsigned char)s[1]) && s[1] != '_' &&
               !is_space(s[1])) {
        static const char open[] = "{(<[", shut[] = "})>]";
        const char *o = strchr(open, s[1]);
        close = o != NULL ? shut[o - open] : s[1];
        if (s[1] == '\\') {
            warn(f, "rule %s: backslash delimiter not allowed", r->name);
            return false;
        }
        start = 2;
    } else {
        warn(f, "rule %s: missing regexp delimiters", r->name);
        return false;
    }
    /* the end delimiter is the last one, followed only by modifiers a-z but e */
    size_t m = n;
    while (m > start && islower((unsigned char)s[m - 1]) && s[m - 1] != 'e')
        m--;
    if (m <= start || s[m - 1] != close || m - 1 < start) {
        warn(f, "rule %s: invalid end delimiter/mods", r->name);
        return false;
    }
    size_t nmods = n - m;
    if (nmods >= sizeof(r->mods)) {
        warn(f, "rule %s: too many regexp modifiers", r->name);
        return false;
    }
    const char *re = s + start;
    size_t re_len = m - 1 - start;
    if (memmem(re, re_len, "(?{", 3) != NULL || memmem(re, re_len, "(??{", 4) != NULL) {
        warn(f, "rule %s: eval (?{}) found", r->name);
        return false;
    }
    /* an unescaped end delimiter inside, unless it closes a bracket pair
     * (Util::compile_regexp: "unquoted delimiter found") */
    if (close != '}' && close != ')' && close != ']') {
        for (size_t i = 0; i < re_len; i++) {
            if (re[i] == '\\') {
                i++;
                continue;
            }
            if (re[i] == close) {
                warn(f, "rule %s: unquoted delimiter '%c' found", r->name, close);
                return false;
            }
        }
    }
    if ((r->re = util_memdup(re, re_len)) == NULL)
        return nomem(f->c);
    r->re_len = re_len;
    memcpy(r->mods, s + m, nmods);
    r->mods[nmods] = '\0';
    return true;
}

/* "eval:NAME(ARGS)" */
static bool parse_eval(struct sa_file *f, struct sa_rule *r, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_'))
        i++;
    if (i == 0) {
        warn(f, "rule %s: eval: needs a function name", r->name);
        return false;
    }
    const char *args = s + i;
    size_t an = n - i;
    trim(&args, &an);
    if (an >= 2 && args[0] == '(' && args[an - 1] == ')') {
        args++;
        an -= 2;
    } else if (an != 0) {
        warn(f, "rule %s: eval:%.*s needs (arguments)", r->name, (int)i, s);
        return false;
    }
    if (!set_str(f->c, &r->eval, s, i) || !set_str(f->c, &r->eval_args, args, an))
        return false;
    return true;
}

/* header NAME FIELD =~ /re/ [if-unset: X] (the part after the name) */
static bool parse_header_test(struct sa_file *f, struct sa_rule *r, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && !is_space(s[i]) &&
           !(i + 1 < n && (s[i] == '=' || s[i] == '!') && s[i + 1] == '~'))
        i++;
    if (i == 0) {
        warn(f, "rule %s: invalid head test", r->name);
        return false;
    }
    size_t fn = i;
    if (fn > 0 && s[fn - 1] == ':')
        fn--;
    if (fn == 0) {
        warn(f, "rule %s: invalid head test", r->name);
        return false;
    }
    if (!set_str(f->c, &r->field, s, fn))
        return false;
    while (i < n && is_space(s[i]))
        i++;
    if (i + 2 > n || !((s[i] == '=' || s[i] == '!') && s[i + 1] == '~')) {
        warn(f, "rule %s: invalid head test: expected =~ or !~", r->name);
        return false;
    }
    r->negate = s[i] == '!';
    i += 2;
    const char *pat = s + i;
    size_t pn = n - i;
    trim(&pat, &pn);
    /* [if-unset: X] at the end */
    if (pn > 0 && pat[pn - 1] == ']') {
        const char *u = NULL;
        for (size_t k = 0; k + 11 <= pn; k++)
            if (memcmp(pat + k, "[if-unset:", 10) == 0 && k > 0 && is_space(pat[k - 1]))
                u = pat + k;
        if (u != NULL) {
            const char *v = u + 10;
            size_t vn = (size_t)(pat + pn - 1 - v);
            if (vn > 0 && is_space(*v)) {
                trim(&v, &vn);
                if (!set_str(f->c, &r->unset, v, vn))
                    return false;
                pn = (size_t)(u - pat);
                trim(&pat, &pn);
            }
        }
    }
    return parse_pattern(f, r, pat, pn);
}

static void define_rule(struct sa_file *f, enum sa_kind kind, const char *v, size_t n)
{
    const char *name, *rest;
    size_t nn, rn;
    split_word(v, n, &name, &nn, &rest, &rn);
    if (!valid_name(name, nn)) {
        warn(f, "invalid rule name \"%.*s\"", (int)(nn > 60 ? 60 : nn), name);
        return;
    }
    if (rn == 0) {
        warn(f, "rule %.*s: missing definition", (int)nn, name);
        return;
    }
    struct sa_rule tmp = {0};
    if ((tmp.name = util_memdup(name, nn)) == NULL) {
        nomem(f->c);
        return;
    }
    bool ok;
    if (kind == SA_META) {
        ok = set_str(f->c, &tmp.meta, rest, rn);
    } else if (rn > 5 && memcmp(rest, "eval:", 5) == 0 && kind != SA_MIMEHEADER) {
        ok = parse_eval(f, &tmp, rest + 5, rn - 5);
    } else if (rn > 8 && memcmp(rest, "rbleval:", 8) == 0 && kind == SA_HEADER) {
        ok = parse_eval(f, &tmp, rest + 8, rn - 8);
    } else if (kind == SA_HEADER && rn > 7 && memcmp(rest, "exists:", 7) == 0) {
        const char *h = rest + 7;
        size_t hn = rn - 7;
        ok = hn > 0;
        for (size_t i = 0; ok && i < hn; i++)
            ok = h[i] >= '!' && h[i] <= '~' && h[i] != ':';
        if (!ok)
            warn(f, "rule %s: invalid header field name in exists:", tmp.name);
        ok = ok && set_str(f->c, &tmp.field, h, hn);
        tmp.exists = true;
    } else if (kind == SA_HEADER || kind == SA_MIMEHEADER) {
        ok = parse_header_test(f, &tmp, rest, rn);
    } else {
        ok = parse_pattern(f, &tmp, rest, rn);
    }
    struct sa_rule *r = ok ? get_rule(f->c, name, nn) : NULL;
    if (r != NULL) {
        clear_definition(r);
        r->kind = kind;
        r->file = f->name;
        r->line = f->line;
        r->field = tmp.field;
        r->unset = tmp.unset;
        r->exists = tmp.exists;
        r->negate = tmp.negate;
        r->re = tmp.re;
        r->re_len = tmp.re_len;
        memcpy(r->mods, tmp.mods, sizeof(r->mods));
        r->eval = tmp.eval;
        r->eval_args = tmp.eval_args;
        r->meta = tmp.meta;
        r->def_seq = ++f->c->seq;
        tmp = (struct sa_rule){.name = tmp.name};
    }
    free(tmp.name);
    clear_definition(&tmp);
}

/* ---- per-rule settings ---- */

static bool parse_score_value(const char *s, size_t n, double *v, bool *relative)
{
    char buf[64];
    *relative = false;
    if (n >= 2 && s[0] == '(' && s[n - 1] == ')') {
        s++;
        n -= 2;
        *relative = true;
    }
    if (n == 0 || n >= sizeof(buf))
        return false;
    /* ^-?\d+(?:\.\d+)?$ */
    size_t i = s[0] == '-' ? 1 : 0, d = 0;
    while (i < n && isdigit((unsigned char)s[i]))
        i++, d++;
    if (d == 0)
        return false;
    if (i < n && s[i] == '.') {
        size_t e = ++i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i == e)
            return false;
    }
    if (i != n)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    *v = strtod(buf, NULL);
    return true;
}

static void set_score(struct sa_file *f, const char *v, size_t n)
{
    const char *name, *rest;
    size_t nn, rn;
    split_word(v, n, &name, &nn, &rest, &rn);
    double vals[SA_SCORE_SETS];
    size_t k = 0;
    bool relative = false;
    while (rn > 0) {
        const char *w;
        size_t wn;
        split_word(rest, rn, &w, &wn, &rest, &rn);
        bool rel;
        if (k == SA_SCORE_SETS || !parse_score_value(w, wn, &vals[k], &rel)) {
            warn(f, "score: requires a rule name and 1 or 4 numeric scores");
            return;
        }
        relative = relative || rel;
        k++;
    }
    if (!valid_name(name, nn) || (k != 1 && k != SA_SCORE_SETS)) {
        warn(f, "score: requires a rule name and 1 or 4 numeric scores");
        return;
    }
    struct sa_rule *r = find(f->c, name, nn);
    if (relative && (r == NULL || !r->has_score)) {
        warn(f, "score: relative score without previous setting in configuration");
        return;
    }
    if (r == NULL && (r = get_rule(f->c, name, nn)) == NULL)
        return;
    for (int s = 0; s < SA_SCORE_SETS; s++) {
        double x = vals[k == 1 ? 0 : s];
        r->score[s] = relative ? r->score[s] + x : x;
    }
    r->has_score = true;
}

enum rule_setting { RS_DESCRIBE, RS_TFLAGS, RS_PRIORITY };

static void rule_setting(struct sa_file *f, enum rule_setting what, const char *v, size_t n)
{
    const char *name, *rest;
    size_t nn, rn;
    split_word(v, n, &name, &nn, &rest, &rn);
    if (!valid_name(name, nn)) {
        warn(f, "invalid rule name \"%.*s\"", (int)(nn > 60 ? 60 : nn), name);
        return;
    }
    int prio = 0;
    if (what == RS_PRIORITY) {
        char buf[24];
        char *e;
        if (rn == 0 || rn >= sizeof(buf)) {
            warn(f, "priority: requires a rule name and a number");
            return;
        }
        memcpy(buf, rest, rn);
        buf[rn] = '\0';
        long p = strtol(buf, &e, 10);
        if (*e != '\0' || p < -1000000 || p > 1000000) {
            warn(f, "priority: requires a rule name and a number");
            return;
        }
        prio = (int)p;
    }
    struct sa_rule *r = get_rule(f->c, name, nn);
    if (r == NULL)
        return;
    if (what == RS_PRIORITY) {
        r->priority = prio;
        r->prio_seq = ++f->c->seq;
    } else
        set_str(f->c, what == RS_DESCRIBE ? &r->describe : &r->tflags, rest, rn);
}

/* replace_tag NAME VALUE and its kin: the last definition wins. */
static void set_template(struct sa_file *f, enum sa_tmpl kind, const char *v, size_t n)
{
    struct sa_conf *c = f->c;
    const char *name, *rest;
    size_t nn, rn;
    split_word(v, n, &name, &nn, &rest, &rn);
    if (nn == 0 || rn == 0) {
        warn(f, "replace_%s: requires a name and a value",
             kind == SA_TAG    ? "tag"
             : kind == SA_PRE  ? "pre"
             : kind == SA_POST ? "post"
                               : "inter");
        return;
    }
    for (size_t i = 0; i < c->ntmpl[kind]; i++)
        if (word_is(name, nn, c->tmpl[kind][i].name)) {
            set_str(c, &c->tmpl[kind][i].value, rest, rn);
            return;
        }
    struct sa_kv *t = util_reallocarray(c->tmpl[kind], c->ntmpl[kind] + 1, sizeof(*t));
    if (t == NULL) {
        nomem(c);
        return;
    }
    c->tmpl[kind] = t;
    struct sa_kv kv = {util_memdup(name, nn), util_memdup(rest, rn)};
    if (kv.name == NULL || kv.value == NULL) {
        free(kv.name);
        free(kv.value);
        nomem(c);
        return;
    }
    t[c->ntmpl[kind]++] = kv;
}

static void replace_rules(struct sa_file *f, const char *v, size_t n)
{
    while (n > 0) {
        const char *w;
        size_t wn;
        split_word(v, n, &w, &wn, &v, &n);
        if (!valid_name(w, wn)) {
            warn(f, "replace_rules: invalid rule name \"%.*s\"", (int)(wn > 60 ? 60 : wn), w);
            continue;
        }
        struct sa_rule *r = get_rule(f->c, w, wn);
        if (r == NULL)
            return;
        r->replace = true;
    }
}

/* ---- conditionals ---- */

static void open_block(struct sa_file *f, const char *kind, const char *expr, size_t n, bool plugin)
{
    if (f->depth == SA_IF_MAX_DEPTH) {
        /* read as true, and its endif closes the block above: said, not silent */
        warn(f, "%s nested deeper than %d", kind, SA_IF_MAX_DEPTH);
        return;
    }
    bool val = false;
    char *why = NULL;
    if (plugin) {
        char buf[300];
        int k = snprintf(buf, sizeof(buf), "plugin(%.*s)", (int)(n > 250 ? 250 : n), expr);
        if (sa_cond_eval(buf, (size_t)k, &f->c->env, &val) != 0) {
            warn(f, "ifplugin: bad plugin name \"%.*s\"", (int)(n > 60 ? 60 : n), expr);
            val = false;
        }
        const char *how = sa_env_is_optional(expr, n) ? "is not loaded: no .pre file loads it"
                                                      : "is not emulated";
        if (!val && util_asprintf(&why, "plugin %.*s %s", (int)n, expr, how) < 0)
            why = NULL;
    } else {
        if (sa_cond_eval(expr, n, &f->c->env, &val) != 0) {
            warn(f, "if: condition not understood: %.*s", (int)(n > 80 ? 80 : n), expr);
            val = false;
        }
        if (!val && util_asprintf(&why, "condition false: if %.*s", (int)n, expr) < 0)
            why = NULL;
    }
    if (!val && why == NULL)
        nomem(f->c);
    struct sa_frame *fr = &f->stack[f->depth++];
    fr->skip = f->skip;
    fr->this_false = !val;
    fr->why = why;
    if (!f->skip && !val) {
        f->skip = true;
        f->why = why;
    }
}

/* The reason of the innermost block that makes the file skip. */
static void update_why(struct sa_file *f)
{
    f->why = NULL;
    if (f->version_skip)
        f->why = "require_version of another SpamAssassin";
    for (unsigned i = 0; i < f->depth; i++)
        if (f->stack[i].this_false && f->why == NULL)
            f->why = f->stack[i].why;
}

static void close_block(struct sa_file *f)
{
    if (f->depth == 0) {
        warn(f, "endif: missing starting if");
        return;
    }
    struct sa_frame *fr = &f->stack[--f->depth];
    f->skip = fr->skip;
    free(fr->why);
    fr->why = NULL;
    update_why(f);
}

static void else_block(struct sa_file *f)
{
    if (f->depth == 0) {
        warn(f, "else: missing starting if");
        return;
    }
    struct sa_frame *fr = &f->stack[f->depth - 1];
    fr->this_false = !fr->this_false;
    if (fr->this_false && fr->why == NULL &&
        util_asprintf(&fr->why, "the else of a true condition") < 0)
        nomem(f->c);
    /* blocked anywhere above: stays skipped (SpamAssassin bug 7848) */
    bool above = f->version_skip;
    for (unsigned i = 0; i + 1 < f->depth; i++)
        above = above || f->stack[i].this_false;
    f->skip = above || fr->this_false;
    update_why(f);
}

/* ---- files ---- */

static const char *intern_file(struct sa_conf *c, const char *name)
{
    char *n = util_strdup(name);
    char **v = n ? util_reallocarray(c->files, c->nfiles + 1, sizeof(*c->files)) : NULL;
    if (v == NULL) {
        free(n);
        nomem(c);
        return NULL;
    }
    c->files = v;
    c->files[c->nfiles++] = n;
    return n;
}

static char *relative_path(const char *base, const char *rel, size_t n)
{
    char *out = NULL;
    const char *slash = strrchr(base, '/');
    if (n > 0 && rel[0] == '/')
        return util_memdup(rel, n);
    if (slash == NULL)
        return util_memdup(rel, n);
    if (util_asprintf(&out, "%.*s/%.*s", (int)(slash - base), base, (int)n, rel) < 0)
        return NULL;
    return out;
}

static void include_file(struct sa_file *f, const char *v, size_t n)
{
    struct sa_conf *c = f->c;
    if (n == 0) {
        warn(f, "include: missing file name");
        return;
    }
    if (c->read_file == NULL) {
        warn(f, "include is not available here");
        return;
    }
    if (c->depth >= SA_INCLUDE_MAX_DEPTH) {
        warn(f, "includes nested deeper than %d", SA_INCLUDE_MAX_DEPTH);
        return;
    }
    if (c->nfiles >= SA_FILES_MAX) {
        warn(f, "more than %d files read: include ignored", SA_FILES_MAX);
        return;
    }
    char *path = relative_path(f->name, v, n);
    if (path == NULL) {
        nomem(c);
        return;
    }
    for (size_t i = 0; i < c->nfiles; i++)
        if (strcmp(c->files[i], path) == 0) {
            warn(f, "include: %s is read already (an include loop?)", path);
            free(path);
            return;
        }
    char *data = NULL, *why = NULL;
    size_t len = 0;
    if (c->read_file(c->read_arg, path, &data, &len, &why) != 0) {
        warn(f, "include: cannot read %s: %s", path, why ? why : "error");
        free(why);
        free(path);
        return;
    }
    c->depth++;
    sa_cf_parse(c, path, data, len);
    c->depth--;
    free(data);
    free(path);
}

/* ---- lines ---- */

static bool is_rule_setting(const char *k, size_t n)
{
    return word_is(k, n, "header") || word_is(k, n, "body") || word_is(k, n, "rawbody") ||
           word_is(k, n, "full") || word_is(k, n, "uri") || word_is(k, n, "mimeheader") ||
           word_is(k, n, "meta");
}

/* Settings smtpgate reads and deliberately does not act on: the name the
 * report counts them under says why. */
static const char *never_acted_on(const char *k)
{
    static const char *const v[][2] = {
        {"report_safe", "report_safe (smtpgate adds fields, it never rewrites the message)"},
        {"unsafe_report", "unsafe_report (report_safe's, which smtpgate does not do)"},
        {"clear_unsafe_report_template",
         "clear_unsafe_report_template (report_safe's, which smtpgate does not do)"},
        {"report_safe_copy_headers",
         "report_safe_copy_headers (report_safe's, which smtpgate does not do)"},
        {"ok_locales", "ok_locales (only its default, all, is emulated)"},
        {"bayes_auto_learn", "bayes_auto_learn (smtpgate has no Bayes: _AUTOLEARN_ is disabled)"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        if (strcmp(k, v[i][0]) == 0)
            return v[i][1];
    return NULL;
}

static void one_line(struct sa_file *f, const char *s, size_t n)
{
    struct sa_conf *c = f->c;
    /* comment: from the first # not after a backslash; \# is # */
    char *buf = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '#' && (i == 0 || s[i - 1] != '\\')) {
            n = i;
            break;
        }
    if (memmem(s, n, "\\#", 2) != NULL) {
        if ((buf = util_malloc(n + 1)) == NULL) {
            nomem(c);
            return;
        }
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] == '\\' && i + 1 < n && s[i + 1] == '#')
                continue;
            buf[k++] = s[i];
        }
        s = buf;
        n = k;
    }
    trim(&s, &n);
    if (n == 0)
        goto out;
    const char *key, *val;
    size_t kn, vn;
    split_word(s, n, &key, &kn, &val, &vn);
    if (word_is(key, kn, "lang")) {
        const char *lang;
        size_t ln;
        split_word(val, vn, &lang, &ln, &val, &vn);
        if (c->env.lang == NULL || strncasecmp(c->env.lang, lang, ln) != 0 || vn == 0)
            goto out;
        split_word(val, vn, &key, &kn, &val, &vn);
    }
    char k[40];
    if (kn >= sizeof(k)) {
        if (!f->skip)
            sa_tally_add(&c->ignored, "(an over-long setting name)", NULL);
        goto out;
    }
    for (size_t i = 0; i < kn; i++)
        k[i] = key[i] == '-' ? '_' : (char)tolower((unsigned char)key[i]);
    k[kn] = '\0';

    char hwhy[160];
    enum sa_hdrconf_rc hrc;
    const char *never;
    if (strcmp(k, "endif") == 0) {
        if (vn != 0)
            warn(f, "endif must be standalone");
        close_block(f);
    } else if (strcmp(k, "ifplugin") == 0 || strcmp(k, "if") == 0) {
        if (vn == 0)
            warn(f, "missing %s condition", k);
        open_block(f, k, val, vn, k[2] == 'p');
    } else if (strcmp(k, "else") == 0) {
        if (vn != 0)
            warn(f, "else must be standalone");
        else_block(f);
    } else if (strcmp(k, "include") == 0) {
        if (!f->skip)
            include_file(f, val, vn);
    } else if (strcmp(k, "loadplugin") == 0 || strcmp(k, "tryplugin") == 0) {
        /* an optional plugin smtpgate emulates is present from here on; any
         * other stays as it was (emulated or not) */
        const char *name, *rest;
        size_t nn, rn;
        split_word(val, vn, &name, &nn, &rest, &rn);
        if (!f->skip)
            sa_env_load_plugin(&c->env, name, nn);
    } else if (f->skip) {
        if (is_rule_setting(k, kn)) {
            const char *name, *rest;
            size_t nn, rn;
            split_word(val, vn, &name, &nn, &rest, &rn);
            char nm[SA_NAME_MAX + 1];
            snprintf(nm, sizeof(nm), "%.*s", (int)(nn > SA_NAME_MAX ? SA_NAME_MAX : nn), name);
            const char *why = f->why ? f->why : "skipped";
            if (sa_tally_add(&c->skipped, why, nm) != 0)
                c->nomem = true;
            struct sa_kv *v =
                util_reallocarray(c->skipped_rules, c->nskipped_rules + 1, sizeof(*v));
            if (v != NULL) {
                c->skipped_rules = v;
                v[c->nskipped_rules] = (struct sa_kv){util_strdup(nm), util_strdup(why)};
                if (v[c->nskipped_rules].name == NULL || v[c->nskipped_rules].value == NULL) {
                    free(v[c->nskipped_rules].name);
                    free(v[c->nskipped_rules].value);
                    c->nomem = true;
                } else {
                    c->nskipped_rules++;
                }
            } else {
                c->nomem = true;
            }
            /* the eval functions such rules need, for the report */
            if ((rn > 5 && memcmp(rest, "eval:", 5) == 0) ||
                (rn > 8 && memcmp(rest, "rbleval:", 8) == 0)) {
                const char *e = memchr(rest, ':', rn) + 1;
                size_t en = 0;
                while (e + en < rest + rn && (isalnum((unsigned char)e[en]) || e[en] == '_'))
                    en++;
                char fn[SA_NAME_MAX + 1];
                snprintf(fn, sizeof(fn), "%.*s", (int)(en > SA_NAME_MAX ? SA_NAME_MAX : en), e);
                if (en > 0 && sa_tally_add(&c->evals, fn, nm) != 0)
                    c->nomem = true;
            }
        }
    } else if (strcmp(k, "require_version") == 0) {
        if (!word_is(val, vn, "@@VERSION@@") && !word_is(val, vn, c->env.version)) {
            warn(f,
                 "requires version %.*s of SpamAssassin, smtpgate emulates %s: skipping "
                 "the rest of this file",
                 (int)(vn > 40 ? 40 : vn), val, c->env.version);
            f->version_skip = true;
            f->skip = true;
            update_why(f);
        }
    } else if (strcmp(k, "header") == 0) {
        define_rule(f, SA_HEADER, val, vn);
    } else if (strcmp(k, "body") == 0) {
        define_rule(f, SA_BODY, val, vn);
    } else if (strcmp(k, "rawbody") == 0) {
        define_rule(f, SA_RAWBODY, val, vn);
    } else if (strcmp(k, "full") == 0) {
        define_rule(f, SA_FULL, val, vn);
    } else if (strcmp(k, "uri") == 0) {
        define_rule(f, SA_URI, val, vn);
    } else if (strcmp(k, "mimeheader") == 0) {
        define_rule(f, SA_MIMEHEADER, val, vn);
    } else if (strcmp(k, "meta") == 0) {
        define_rule(f, SA_META, val, vn);
    } else if (strcmp(k, "score") == 0) {
        set_score(f, val, vn);
    } else if (strcmp(k, "describe") == 0) {
        rule_setting(f, RS_DESCRIBE, val, vn);
    } else if (strcmp(k, "tflags") == 0) {
        rule_setting(f, RS_TFLAGS, val, vn);
    } else if (strcmp(k, "priority") == 0) {
        rule_setting(f, RS_PRIORITY, val, vn);
    } else if (strcmp(k, "replace_tag") == 0) {
        set_template(f, SA_TAG, val, vn);
    } else if (strcmp(k, "replace_pre") == 0) {
        set_template(f, SA_PRE, val, vn);
    } else if (strcmp(k, "replace_post") == 0) {
        set_template(f, SA_POST, val, vn);
    } else if (strcmp(k, "replace_inter") == 0) {
        set_template(f, SA_INTER, val, vn);
    } else if (strcmp(k, "replace_rules") == 0) {
        replace_rules(f, val, vn);
    } else if (strcmp(k, "replace_start") == 0 || strcmp(k, "replace_end") == 0) {
        if (vn == 0)
            warn(f, "%s: requires a value", k);
        else
            set_str(c, k[8] == 's' ? &c->rstart : &c->rend, val, vn);
    } else if (strcmp(k, "redirector_pattern") == 0) {
        redirector_setting(f, val, vn);
    } else if (strstr(k, "_networks") != NULL && relay_setting(f, k, val, vn)) {
        /* read into c->relay_conf */
    } else if ((strcmp(k, "skip_rbl_checks") == 0 || strcmp(k, "num_check_received") == 0 ||
                strcmp(k, "rbl_timeout") == 0) &&
               dnsbl_setting(f, k, val, vn)) {
        /* read into c->relay_conf too */
    } else if ((hrc = sa_hdrconf_setting(c->hdr, k, val, vn, hwhy, sizeof(hwhy))) !=
               SA_HDRCONF_NOT_MINE) {
        if (hrc == SA_HDRCONF_BAD)
            warn(f, "%s", hwhy);
        if (hrc == SA_HDRCONF_NOMEM)
            c->nomem = true;
    } else if ((never = never_acted_on(k)) != NULL) {
        if (sa_tally_add(&c->ignored, never, NULL) != 0)
            c->nomem = true;
    } else {
        char lwhy[160];
        enum sa_lists_rc lrc = sa_lists_setting(c->lists, k, val, vn, lwhy, sizeof(lwhy));
        if (lrc == SA_LISTS_BAD)
            warn(f, "%s", lwhy);
        if (lrc == SA_LISTS_NOMEM ||
            (lrc == SA_LISTS_NOT_MINE && sa_tally_add(&c->ignored, k, NULL) != 0))
            c->nomem = true;
    }
out:
    free(buf);
}

int sa_cf_preload(struct sa_conf *c, const char *data, size_t len)
{
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        const char *s = p;
        size_t n = (size_t)(e - s);
        const char *hash = memchr(s, '#', n);
        if (hash != NULL)
            n = (size_t)(hash - s);
        trim(&s, &n);
        const char *key, *val, *name, *rest;
        size_t kn, vn, nn, rn;
        split_word(s, n, &key, &kn, &val, &vn);
        if (word_is(key, kn, "loadplugin") || word_is(key, kn, "tryplugin")) {
            split_word(val, vn, &name, &nn, &rest, &rn);
            sa_env_load_plugin(&c->env, name, nn);
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

int sa_cf_parse(struct sa_conf *c, const char *file, const char *data, size_t len)
{
    struct sa_file f = {.c = c, .name = intern_file(c, file)};
    if (f.name == NULL)
        return -1;
    const char *p = data, *end = data + len;
    while (p < end && !c->nomem) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        f.line++;
        one_line(&f, p, (size_t)(e - p));
        p = nl ? nl + 1 : end;
    }
    for (unsigned i = 0; i < f.depth; i++) {
        f.line = 0;
        warn(&f, "unclosed if or ifplugin at the end of the file");
        free(f.stack[i].why);
    }
    return c->nomem ? -1 : 0;
}

/* ---- the whole configuration ---- */

struct sa_conf *sa_conf_new(const struct sa_env *env, sa_read_fn read_file, void *arg)
{
    struct sa_conf *c = util_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->env = *env;
    c->read_file = read_file;
    c->read_arg = arg;
    c->rstart = util_strdup("<");
    c->rend = util_strdup(">");
    c->lists = sa_lists_new();
    c->hdr = sa_hdrconf_new();
    if (c->rstart == NULL || c->rend == NULL || c->lists == NULL || c->hdr == NULL) {
        sa_conf_free(c);
        return NULL;
    }
    return c;
}

int sa_conf_finish(struct sa_conf *c)
{
    if (c->finished)
        return c->nomem ? -1 : 0;
    c->finished = true;
    if (sa_lists_finish(c->lists) != 0)
        return nomem(c), -1;
    struct sa_templates tv = {.rstart = c->rstart, .rend = c->rend};
    for (int k = 0; k < SA_TMPL__COUNT; k++) {
        tv.tmpl[k] = c->tmpl[k];
        tv.ntmpl[k] = c->ntmpl[k];
    }
    for (size_t i = 0; i < c->nrules && !c->nomem; i++) {
        struct sa_rule *r = &c->rules[i];
        if (r->kind == SA_NONE)
            continue;
        if (!r->has_score) {
            /* SpamAssassin's default: 1, T_ rules (in testing) 0.01, negative if nice */
            double s = strncmp(r->name, "T_", 2) == 0 ? 0.01 : 1.0;
            if (sa_tflag(r, "nice"))
                s = -s;
            for (int k = 0; k < SA_SCORE_SETS; k++)
                r->score[k] = s;
        }
        if (r->replace && r->re != NULL) {
            size_t n;
            char *re = sa_tmpl_expand(&tv, r->re, r->re_len, &n);
            if (re == NULL && n == SIZE_MAX) {
                r->too_large = true;
                continue;
            }
            if (re == NULL)
                return nomem(c), -1;
            free(r->re);
            r->re = re;
            r->re_len = n;
        }
    }
    return c->nomem ? -1 : 0;
}

void sa_conf_free(struct sa_conf *c)
{
    if (c == NULL)
        return;
    sa_relay_conf_free(c->relay_conf);
    sa_redirs_free(c->redirs);
    for (size_t i = 0; i < c->nrules; i++) {
        struct sa_rule *r = &c->rules[i];
        clear_definition(r);
        free(r->name);
        free(r->describe);
        free(r->tflags);
    }
    free(c->rules);
    free(c->index);
    for (int k = 0; k < SA_TMPL__COUNT; k++) {
        for (size_t i = 0; i < c->ntmpl[k]; i++) {
            free(c->tmpl[k][i].name);
            free(c->tmpl[k][i].value);
        }
        free(c->tmpl[k]);
    }
    free(c->rstart);
    free(c->rend);
    for (size_t i = 0; i < c->nfiles; i++)
        free(c->files[i]);
    free(c->files);
    sa_tally_free(&c->skipped);
    for (size_t i = 0; i < c->nskipped_rules; i++) {
        free(c->skipped_rules[i].name);
        free(c->skipped_rules[i].value);
    }
    free(c->skipped_rules);
    sa_tally_free(&c->ignored);
    sa_tally_free(&c->evals);
    sa_tally_free(&c->evals_done);
    rules_errors_free(&c->warnings);
    sa_lists_unref(c->lists);
    sa_hdrconf_free(c->hdr);
    free(c);
}

bool sa_tflag(const struct sa_rule *r, const char *flag)
{
    if (r->tflags == NULL)
        return false;
    size_t n = strlen(flag);
    for (const char *p = r->tflags; (p = strstr(p, flag)) != NULL; p++) {
        bool left = p == r->tflags || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        bool right = !(isalnum((unsigned char)p[n]) || p[n] == '_');
        if (left && right)
            return true;
    }
    return false;
}

unsigned sa_maxhits(const struct sa_rule *r)
{
    if (r->tflags == NULL)
        return 0;
    const char *p = strstr(r->tflags, "maxhits=");
    if (p == NULL)
        return 0;
    unsigned long v = strtoul(p + 8, NULL, 10);
    return v > 1000000 ? 1000000 : (unsigned)v;
}

int sa_score_set(const struct sa_env *env)
{
    return env->network ? 1 : 0;
}
