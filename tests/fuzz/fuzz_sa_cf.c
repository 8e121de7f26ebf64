// fuzz-sources: rules/sa_cf.c rules/sa_cond.c rules/sa_tally.c rules/sa_tmpl.c rules/build.c rules/sa_hdrconf.c
// fuzz-sources: rules/sa_netset.c util/net.c rules/sa_dnsbl.c rules/sa_received.c
// fuzz-sources: rules/sa_meta.c rules/sa_lists.c util/alloc.c rules/sa_redir.c
// fuzz-pkgs: libpcre2-8
/*
 * A SpamAssassin .cf file, the input, read as one file that includes
 * itself under any name (the include depth and loop checks must stop it):
 * the parser must not crash, leak or read beyond the input; every warning
 * names a file read and a line inside the input (or 0, the whole file);
 * every rule it keeps is complete for its kind (a pattern with modifiers a-z,
 * an eval name, a meta text, a field); the templates stay within bounds.
 * Each meta text, and the input itself, goes through the meta expression
 * parser: it refuses with a reason or gives nodes in post order (every
 * operand before its operator, the root last).
 * The input is also read first as a .pre file (its loadplugin lines).
 * The input is an exact-size copy, so a read past its end is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_cf.h"
#include "rules/sa_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
    const uint8_t *data;
    size_t size;
};

static int read_self(void *arg, const char *path, char **out, size_t *len, char **why)
{
    const struct input *in = arg;
    (void)path;
    (void)why;
    *out = malloc(in->size ? in->size : 1);
    if (*out == NULL)
        abort();
    memcpy(*out, in->data, in->size);
    *len = in->size;
    return 0;
}

static void check_meta(const char *text, size_t len)
{
    struct rule rule = {.name = "FUZZ"};
    const char *why = NULL;
    int root = sa_meta_parse(text, len, &rule, &why);
    if (root == -2)
        abort(); /* no allocation fails here */
    if (root < 0 && why == NULL)
        abort();
    if (root >= 0 && (size_t)root + 1 != rule.nmeta)
        abort();
    for (size_t k = 0; root >= 0 && k < rule.nmeta; k++) {
        const struct meta_node *nd = &rule.meta[k];
        if (nd->a >= (int)k || nd->b >= (int)k)
            abort();
        if (nd->op == MN_REF && (nd->name == NULL || nd->name[0] == '\0'))
            abort();
    }
    for (size_t k = 0; k < rule.nmeta; k++)
        free(rule.meta[k].name);
    free(rule.meta);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    struct input in = {data, size};
    struct sa_env env = sa_env_default;
    env.lang = "de";
    struct sa_conf *c = sa_conf_new(&env, read_self, &in);
    if (c == NULL)
        abort();
    if (sa_cf_preload(c, copy, size) != 0)
        abort();
    if (sa_cf_parse(c, "/fuzz/a.cf", copy, size) != 0 || sa_conf_finish(c) != 0)
        abort(); /* no allocation fails here: -1 means a bug */
    unsigned lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    for (size_t i = 0; i < c->warnings.n; i++) {
        bool known = false;
        for (size_t f = 0; f < c->nfiles; f++)
            known = known || strcmp(c->files[f], c->warnings.v[i].file) == 0;
        if (!known || c->warnings.v[i].line > lines)
            abort();
    }
    for (size_t i = 0; i < c->nrules; i++) {
        const struct sa_rule *r = &c->rules[i];
        if (r->name == NULL || sa_conf_rule(c, r->name) != r)
            abort();
        for (const char *m = r->mods; *m; m++)
            if (*m < 'a' || *m > 'z' || *m == 'e')
                abort();
        switch (r->kind) {
        case SA_NONE:
            break;
        case SA_META:
            if (r->meta == NULL)
                abort();
            check_meta(r->meta, strlen(r->meta));
            break;
        case SA_HEADER:
        case SA_MIMEHEADER:
            if (r->eval == NULL && (r->field == NULL || (!r->exists && r->re == NULL)))
                abort();
            break;
        default:
            if (r->eval == NULL && r->re == NULL)
                abort();
            if (r->re != NULL && strlen(r->re) > r->re_len)
                abort();
            break;
        }
        sa_tflag(r, "multiple");
        sa_maxhits(r);
    }
    sa_conf_free(c);
    check_meta(copy, size);
    free(copy);
    return 0;
}
