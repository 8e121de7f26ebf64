/*
 * sa_cond - SpamAssassin's `if` conditions (see sa_cond.h): a recursive
 * descent over the text, values as doubles as Perl computes them, the depth
 * bounded so a hostile line cannot exhaust the stack.
 */
#include "rules/sa_cond.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define COND_MAX_DEPTH 32

/* What smtpgate emulates: ReplaceTags (the templates) is done by the loader,
 * MIMEHeader by the mimeheader target;
 * the features are the syntax and behaviour changes of SpamAssassin 4.0 that
 * the loader follows.  Everything else is absent, so its rules are skipped. */
static const char *const emulated_plugins[] = {
    "Mail::SpamAssassin::Plugin::ReplaceTags",
    "Mail::SpamAssassin::Plugin::MIMEHeader",
    /* the eval tests of these run natively (sa_eval.h); an eval of theirs
     * smtpgate lacks is skipped by name */
    "Mail::SpamAssassin::Plugin::HeaderEval",
    "Mail::SpamAssassin::Plugin::BodyEval",
    "Mail::SpamAssassin::Plugin::RelayEval",
    "Mail::SpamAssassin::Plugin::FreeMail",
    "Mail::SpamAssassin::Plugin::WLBLEval",
    "Mail::SpamAssassin::Plugin::WelcomeListSubject",
    /* MIME and image tests over SpamAssassin's own MIME tree (sa_mime.h) */
    "Mail::SpamAssassin::Plugin::MIMEEval",
    "Mail::SpamAssassin::Plugin::ImageInfo",
    "Mail::SpamAssassin::Plugin::HTMLEval",
    "Mail::SpamAssassin::Plugin::URIEval",
    "Mail::SpamAssassin::Plugin::HTTPSMismatch",
    /* its bounce relays are a list of sa_lists */
    "Mail::SpamAssassin::Plugin::VBounce",
    /* check_rbl, check_rbl_txt, check_rbl_sub (sa_eval_dnsbl.c): their
     * rules are network tests, skipped with network tests off; its other
     * functions are skipped by name */
    "Mail::SpamAssassin::Plugin::DNSEval",
};
/* Emulated too, but Debian's .pre files have their loadplugin lines
 * commented out: present only once a .pre (or .cf) file loads them, so a
 * stock site runs their rules in neither SpamAssassin nor smtpgate. */
const char *const sa_env_optional[] = {
    "Mail::SpamAssassin::Plugin::AntiVirus",
    "Mail::SpamAssassin::Plugin::FromNameSpoof",
    NULL,
};

bool sa_env_load_plugin(struct sa_env *env, const char *name, size_t n)
{
    for (unsigned i = 0; sa_env_optional[i] != NULL; i++)
        if (strlen(sa_env_optional[i]) == n && memcmp(sa_env_optional[i], name, n) == 0) {
            env->optional_loaded |= 1u << i;
            return true;
        }
    return false;
}

bool sa_env_is_optional(const char *name, size_t n)
{
    for (unsigned i = 0; sa_env_optional[i] != NULL; i++)
        if (strlen(sa_env_optional[i]) == n && memcmp(sa_env_optional[i], name, n) == 0)
            return true;
    return false;
}

static bool optional_loaded(const struct sa_env *env, const char *w, size_t n)
{
    for (unsigned i = 0; sa_env_optional[i] != NULL; i++)
        if ((env->optional_loaded & (1u << i)) && strlen(sa_env_optional[i]) == n &&
            memcmp(sa_env_optional[i], w, n) == 0)
            return true;
    return false;
}

static const char *const emulated_features[] = {
    "Mail::SpamAssassin::Conf::feature_bug6558_free",
    "Mail::SpamAssassin::Conf::feature_welcomelist_blocklist",
    "Mail::SpamAssassin::Conf::feature_blocklist_welcomelist",
    "Mail::SpamAssassin::Conf::feature_yesno_takes_args",
    "Mail::SpamAssassin::Conf::feature_compile_regexp",
    "Mail::SpamAssassin::Conf::feature_local_tests_only",
    "Mail::SpamAssassin::Conf::feature_capture_rules",
    "Mail::SpamAssassin::Conf::perl_min_version_5010000",
    "Mail::SpamAssassin::Plugin::BodyEval::has_check_body_length",
    "Mail::SpamAssassin::Plugin::MIMEEval::has_check_for_ascii_text_illegal",
    "Mail::SpamAssassin::Plugin::MIMEEval::has_check_abundant_unicode_ratio",
    "Mail::SpamAssassin::Plugin::MIMEEval::has_check_qp_ratio",
    /* init.pre's "enable_compat welcomelist_blocklist", as shipped: smtpgate
     * reads no .pre file, and without it the old list names' metas
     * (USER_IN_BLACKLIST, ...) would load where SpamAssassin has none */
    "Mail::SpamAssassin::Conf::compat_welcomelist_blocklist",
};

const struct sa_env sa_env_default = {
    .version = "4.000001",
    .plugins = emulated_plugins,
    .nplugins = sizeof(emulated_plugins) / sizeof(emulated_plugins[0]),
    .features = emulated_features,
    .nfeatures = sizeof(emulated_features) / sizeof(emulated_features[0]),
    .network = false,
    .lang = NULL,
};

struct cond {
    const char *p, *end;
    const struct sa_env *env;
    unsigned depth;
    bool bad;
};

static void skip_ws(struct cond *c)
{
    while (c->p < c->end && isspace((unsigned char)*c->p))
        c->p++;
}

static bool eat(struct cond *c, const char *tok)
{
    skip_ws(c);
    size_t n = strlen(tok);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, tok, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool is_word(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_';
}

static bool listed(const char *const *v, size_t n, const char *w, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i]) == len && memcmp(v[i], w, len) == 0)
            return true;
    return false;
}

/* plugin(NAME), can(NAME), has(NAME): the argument a class or method name. */
static double call(struct cond *c, bool plugin)
{
    if (!eat(c, "(")) {
        c->bad = true;
        return 0;
    }
    skip_ws(c);
    const char *w = c->p;
    while (c->p < c->end && (is_word(*c->p) || *c->p == ':'))
        c->p++;
    size_t n = (size_t)(c->p - w);
    if (n == 0 || !eat(c, ")")) {
        c->bad = true;
        return 0;
    }
    /* SpamAssassin's own renames of two plugins (Conf::Parser) */
    static const char dmarc[] = "Mail::SpamAssassin::Plugin::Dmarc";
    static const char wls[] = "Mail::SpamAssassin::Plugin::WhiteListSubject";
    static const char wel[] = "Mail::SpamAssassin::Plugin::WelcomeListSubject";
    if (plugin && n == sizeof(dmarc) - 1 && memcmp(w, dmarc, n) == 0)
        return listed(c->env->plugins, c->env->nplugins, "Mail::SpamAssassin::Plugin::DMARC", n);
    if (plugin && n == sizeof(wls) - 1 && memcmp(w, wls, n) == 0)
        return listed(c->env->plugins, c->env->nplugins, wel, sizeof(wel) - 1);
    return plugin ? listed(c->env->plugins, c->env->nplugins, w, n) || optional_loaded(c->env, w, n)
                  : listed(c->env->features, c->env->nfeatures, w, n);
}

static double expr_or(struct cond *c);

static double primary(struct cond *c)
{
    skip_ws(c);
    if (c->p >= c->end) {
        c->bad = true;
        return 0;
    }
    if (*c->p == '(') {
        c->p++;
        if (++c->depth > COND_MAX_DEPTH) {
            c->bad = true;
            return 0;
        }
        double v = expr_or(c);
        c->depth--;
        if (!eat(c, ")"))
            c->bad = true;
        return v;
    }
    if (isdigit((unsigned char)*c->p) || *c->p == '.' ||
        ((*c->p == '-' || *c->p == '+') && c->p + 1 < c->end &&
         (isdigit((unsigned char)c->p[1]) || c->p[1] == '.'))) {
        char buf[64];
        size_t n = 0;
        while (c->p < c->end && n < sizeof(buf) - 1 &&
               (isdigit((unsigned char)*c->p) || *c->p == '.' || *c->p == '-' || *c->p == '+'))
            buf[n++] = *c->p++;
        buf[n] = '\0';
        char *e;
        double v = strtod(buf, &e);
        if (*e != '\0')
            c->bad = true;
        return v;
    }
    const char *w = c->p;
    while (c->p < c->end && is_word(*c->p))
        c->p++;
    size_t n = (size_t)(c->p - w);
    if (n == 6 && memcmp(w, "plugin", 6) == 0)
        return call(c, true);
    if ((n == 3 && memcmp(w, "can", 3) == 0) || (n == 3 && memcmp(w, "has", 3) == 0))
        return call(c, false);
    if (n == 7 && memcmp(w, "version", 7) == 0)
        return strtod(c->env->version, NULL);
    if (n == 12 && memcmp(w, "perl_version", 12) == 0)
        return 5.036000; /* what the rules were written against: any modern Perl */
    if (n == 16 && memcmp(w, "local_tests_only", 16) == 0)
        return c->env->network ? 0 : 1;
    c->bad = true;
    return 0;
}

static double unary(struct cond *c)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == '!' && !(c->p + 1 < c->end && c->p[1] == '=')) {
        c->p++;
        if (++c->depth > COND_MAX_DEPTH) {
            c->bad = true;
            return 0;
        }
        double v = unary(c);
        c->depth--;
        return v == 0;
    }
    return primary(c);
}

static double compare(struct cond *c)
{
    double a = unary(c);
    if (eat(c, "<="))
        return a <= unary(c);
    if (eat(c, ">="))
        return a >= unary(c);
    if (eat(c, "=="))
        return a == unary(c);
    if (eat(c, "!="))
        return a != unary(c);
    if (eat(c, "<"))
        return a < unary(c);
    if (eat(c, ">"))
        return a > unary(c);
    return a;
}

static double expr_and(struct cond *c)
{
    double a = compare(c);
    while (!c->bad && eat(c, "&&")) {
        double b = compare(c);
        a = a != 0 && b != 0;
    }
    return a;
}

static double expr_or(struct cond *c)
{
    double a = expr_and(c);
    while (!c->bad && eat(c, "||")) {
        double b = expr_and(c);
        a = a != 0 || b != 0;
    }
    return a;
}

int sa_cond_eval(const char *expr, size_t len, const struct sa_env *env, bool *out)
{
    struct cond c = {.p = expr, .end = expr + len, .env = env};
    double v = expr_or(&c);
    skip_ws(&c);
    if (c.bad || c.p != c.end)
        return -1;
    *out = v != 0;
    return 0;
}
