/*
 * ruleset - a rule set's life and what the public API reads of it (see
 * rules.h and ruleset.h).
 *
 * The set is reference counted with an atomic counter; the last
 * rules_unref() frees it.  Nothing in it changes after loading, so threads
 * share it without locks; but for the cache of template patterns, which
 * has its own (sa_capture_cache.h).
 */
#include "rules/ruleset.h"
#include "rules/sa_capture.h"
#include "rules/sa_capture_cache.h"
#include "rules/sa_eval.h"
#include "rules/sa_hdrconf.h"
#include "rules/sa_netset.h"
#include "rules/sa_redir.h"

#include <stdlib.h>

#include "util/alloc.h"

struct rules *rules_set_new(void)
{
    struct rules *r = util_calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    atomic_init(&r->refs, 1);
    return r;
}

void rules_rule_free(struct rule *rule)
{
    free(rule->name);
    free(rule->header);
    free(rule->target_desc);
    free(rule->pattern);
    pcre2_code_free(rule->re);
    free(rule->cidrs);
    for (size_t i = 0; i < rule->nmeta; i++)
        free(rule->meta[i].name);
    free(rule->meta);
    free(rule->describe);
    free(rule->reply);
    free(rule->reason);
    for (size_t i = 0; i < rule->nadd; i++) {
        free((char *)rule->adds[i].name);
        free((char *)rule->adds[i].value);
    }
    free(rule->adds);
    for (size_t i = 0; i < rule->nexamples; i++)
        free(rule->examples[i].text);
    free(rule->examples);
    for (size_t i = 0; i < rule->nsa_fields; i++)
        free(rule->sa_fields[i]);
    free(rule->sa_fields);
    free(rule->sa_unset);
    sa_eval_call_free(rule->sa_call);
    free(rule->sa_caps);
    sa_capture_tmpl_free(rule->sa_tmpl, rule->nsa_tmpl);
    free(rule->sa_tmpl_tag);
}

void rules_threshold_free(struct threshold *t)
{
    free(t->reply);
    free(t->reason);
    free(t->subject_prefix);
    for (size_t i = 0; i < t->nadd; i++) {
        free((char *)t->adds[i].name);
        free((char *)t->adds[i].value);
    }
    free(t->adds);
}

void rules_set_free(struct rules *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        rules_rule_free(&r->v[i]);
    free(r->v);
    for (size_t i = 0; i < r->nfiles; i++)
        free(r->files[i]);
    free(r->files);
    for (int k = 0; k < TH__COUNT; k++)
        rules_threshold_free(&r->th[k]);
    for (int s = 0; s < RULES_STAGE__COUNT; s++)
        free(r->order[s]);
    for (int s = 0; s < RULES_PF_SLOTS; s++)
        rules_prefilter_free(r->pf[s]);
    pcre2_match_context_free(r->mctx);
    pcre2_compile_context_free(r->cctx);
    pcre2_general_context_free(r->gctx);
    sa_relay_conf_free(r->sa_relay_conf);
    sa_redirs_free(r->sa_redirs);
    for (size_t i = 0; i < r->nsa_tags; i++)
        free(r->sa_tags[i]);
    free(r->sa_tags);
    sa_capture_cache_free(r->sa_tcache);
    sa_hdrconf_free(r->sa_hdr);
    free(r);
}

struct rules *rules_ref(struct rules *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void rules_unref(struct rules *r)
{
    if (r != NULL && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        rules_set_free(r);
}

size_t rules_count(const struct rules *r)
{
    return r->n;
}

const char *rules_rule_name(const struct rules *r, size_t i)
{
    return i < r->n ? r->v[i].name : NULL;
}

const char *rules_rule_target(const struct rules *r, size_t i)
{
    return i < r->n ? r->v[i].target_desc : NULL;
}

double rules_rule_score(const struct rules *r, size_t i)
{
    return i < r->n ? r->v[i].score : 0;
}

bool rules_rule_unscored(const struct rules *r, size_t i)
{
    if (i >= r->n)
        return false;
    const struct rule *rule = &r->v[i];
    return !rule->sa && !rule->hidden && !rule->shadow && !rule->has_score &&
           rule->action == A_NONE && rule->nadd == 0;
}

const char *rules_rule_file(const struct rules *r, size_t i, unsigned *line, unsigned *col)
{
    if (i >= r->n)
        return NULL;
    *line = r->v[i].pos.line;
    *col = r->v[i].pos.col;
    return r->v[i].pos.file;
}

void rules_rule_flags(const struct rules *r, size_t i, char out[8])
{
    static const struct {
        uint32_t bit;
        char c;
    } flags[] = {{PCRE2_CASELESS, 'i'},
                 {PCRE2_MULTILINE, 'm'},
                 {PCRE2_DOTALL, 's'},
                 {PCRE2_EXTENDED, 'x'},
                 {PCRE2_UTF, 'u'}};
    size_t k = 0;
    for (size_t f = 0; i < r->n && f < sizeof(flags) / sizeof(flags[0]); f++)
        if (r->v[i].pflags & flags[f].bit)
            out[k++] = flags[f].c;
    out[k] = '\0';
}

const char *rules_rule_pattern(const struct rules *r, size_t i, size_t *len)
{
    if (i >= r->n || r->v[i].match != M_REGEX)
        return NULL;
    *len = r->v[i].pattern_len;
    return r->v[i].pattern;
}

size_t rules_file_count(const struct rules *r)
{
    return r->nfiles;
}

unsigned rules_stages(const struct rules *r)
{
    return r->stages;
}

bool rules_need_headers(const struct rules *r)
{
    return r->need_headers;
}

bool rules_need_raw(const struct rules *r)
{
    return r->need_raw;
}

double rules_required(const struct rules *r)
{
    if (r->th[TH_TAG].set)
        return r->th[TH_TAG].score;
    if (r->sa_hdr != NULL && r->sa_hdr->required_set)
        return r->sa_hdr->required; /* SpamAssassin's required_score */
    if (r->th[TH_QUARANTINE].set)
        return r->th[TH_QUARANTINE].score;
    if (r->th[TH_REJECT].set)
        return r->th[TH_REJECT].score;
    return 5.0;
}

const char *rules_stage_name(enum rules_stage s)
{
    static const char *names[] = {"connect", "helo", "mail", "rcpt", "content"};
    return (unsigned)s < RULES_STAGE__COUNT ? names[s] : "?";
}

const char *rules_verdict_name(enum rules_verdict v)
{
    static const char *names[] = {"continue", "accept",  "reject",
                                  "tempfail", "discard", "quarantine"};
    return (unsigned)v <= RULES_QUARANTINE ? names[v] : "?";
}
