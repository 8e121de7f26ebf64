/*
 * match - one rule against one value (see match.h), and the rules' own
 * examples: rules_check_examples() runs every must-hit and must-not-hit
 * example through the same matcher the evaluator uses, so an example says
 * what the rule does at run time.
 *
 * Diagnostics: each failing example is an error at its own position; out
 * of memory is one more failure, with errs->nomem set.
 */
#include "rules/match.h"

#include <stdio.h>
#include <string.h>

#include "rules/build.h"
#include "util/net.h"

bool rules_size_cmp(enum size_op op, uint64_t have, uint64_t want)
{
    switch (op) {
    case SZ_LT:
        return have < want;
    case SZ_LE:
        return have <= want;
    case SZ_GT:
        return have > want;
    case SZ_GE:
        return have >= want;
    case SZ_EQ:
        return have == want;
    }
    return false;
}

int rules_match_one(const struct rules *r, const struct rule *rule, const char *s, size_t len,
                    pcre2_match_data *md, size_t *ms, size_t *ml)
{
    switch (rule->match) {
    case M_REGEX: {
        int rc = pcre2_match(rule->re, (PCRE2_SPTR)s, len, 0, 0, md, r->mctx);
        if (rc == PCRE2_ERROR_NOMATCH)
            return 0;
        if (rc == PCRE2_ERROR_NOMEMORY)
            return RULES_MATCH_NOMEM;
        if (rc < 0)
            return RULES_MATCH_LIMIT;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ms != NULL && ov[0] <= ov[1] && ov[1] <= len) {
            *ms = ov[0];
            *ml = ov[1] - ov[0];
        }
        return 1;
    }
    case M_CIDR: {
        struct net_addr a;
        if (!net_addr_parse(s, len, &a) || !net_ranges_match(rule->cidrs, rule->ncidr, &a))
            return 0;
        if (ms != NULL) {
            *ms = 0;
            *ml = len;
        }
        return 1;
    }
    case M_SIZE: {
        uint64_t v = 0;
        size_t i;
        for (i = 0; i < len && i < 20 && s[i] >= '0' && s[i] <= '9'; i++)
            v = v * 10 + (uint64_t)(s[i] - '0');
        if (i == 0 || i != len)
            return 0;
        return rules_size_cmp(rule->size_op, v, rule->size_val) ? 1 : 0;
    }
    case M_EXISTS:
    case M_META:
    case M_EVAL: /* evaluated over the message, not a value (sa_eval.h) */
        break;
    }
    return 0;
}

size_t rules_check_examples(const struct rules *r, struct rules_errors *errs)
{
    size_t failures = 0;
    pcre2_match_data *md = pcre2_match_data_create(1, r->gctx);
    if (md == NULL) {
        if (errs != NULL)
            errs->nomem = true;
        rules_errors_add(errs, r->nfiles > 0 ? r->files[0] : "rules", 0, 0, "out of memory");
        return 1;
    }
    for (size_t i = 0; i < r->n; i++) {
        const struct rule *rule = &r->v[i];
        for (size_t k = 0; k < rule->nexamples; k++) {
            const struct rule_example *ex = &rule->examples[k];
            const char *why = NULL;
            bool hit = false;
            int rc = rules_match_one(r, rule, ex->text, ex->len, md, NULL, NULL);
            if (rc == RULES_MATCH_NOMEM && errs != NULL)
                errs->nomem = true;
            if (rc == RULES_MATCH_NOMEM)
                why = "cannot be checked: out of memory";
            else if (rc < 0)
                why = "exceeds the match limits";
            else
                hit = rule->negate ? rc == 0 : rc == 1;
            if (why == NULL && hit != ex->must_hit)
                why = ex->must_hit ? "does not hit" : "hits";
            if (why == NULL)
                continue;
            failures++;
            char msg[300];
            snprintf(msg, sizeof(msg), "%s example of %s %s",
                     ex->must_hit ? "must-hit" : "must-not-hit", rule->name, why);
            rules_errors_add(errs, ex->pos.file, ex->pos.line, ex->pos.col, msg);
        }
    }
    pcre2_match_data_free(md);
    return failures;
}
