/*
 * compile - loads rule files and turns what the parser read into an
 * immutable, shareable rule set.
 *
 * rules_load_files() reads every file (and what they include), parses them,
 * and compiles: rule names must be unique across all files; every name a
 * meta rule uses must exist, meta rules must not form a loop, and an
 * enforcing meta rule must not use a shadow rule (it would let the shadow
 * rule decide); each meta rule runs at the latest stage of the rules it uses;
 * patterns are compiled with PCRE2 and JIT-compiled when the JIT is there;
 * thresholds must be in order (tag <= quarantine <= reject).  Any error in
 * any file: nothing is returned but the errors, each naming file, line and
 * column.  rules_load_buffer() does the same over one buffer, without
 * include.
 *
 * Out of memory is one more error: the load returns -1, errs->nomem is set
 * and the list ends with "out of memory" when that could still be stored.
 * PCRE2 allocates through util/alloc (a general context), so its failures
 * come back the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rules/build.h"
#include "rules/parse.h"
#include "rules/ruleset.h"
#include "rules/sa_capture.h"
#include "rules/sa_bigre.h"
#include "rules/sa_capture_cache.h"
#include "rules/sa_load.h"
#include "rules/sa_tally.h"
#include "util/alloc.h"

#define RULE_FILE_MAX (16u * 1024 * 1024)

static const char *target_word(enum rule_target t)
{
    switch (t) {
    case T_CLIENT_ADDR:
        return "client_addr";
    case T_CLIENT_NAME:
        return "client_name";
    case T_HELO:
        return "helo";
    case T_MAIL_FROM:
        return "mail_from";
    case T_RCPT_TO:
        return "rcpt_to";
    case T_HEADER:
        return "header";
    case T_HEADERS:
        return "headers";
    case T_BODY:
        return "body";
    case T_RAWBODY:
        return "rawbody";
    case T_URI:
        return "uri";
    case T_FULL:
        return "full";
    case T_SIZE:
        return "size";
    case T_ATTACH_NAME:
        return "attachment_name";
    case T_ATTACH_TYPE:
        return "attachment_type";
    case T_META:
        return "meta";
    case T_SA_HEADER:
    case T_SA_ENVFROM:
    case T_SA_RELAYS:
        return "header";
    case T_SA_BODY:
        return "body";
    case T_SA_RAWBODY:
        return "rawbody";
    case T_SA_URI:
        return "uri";
    case T_SA_MIMEHEADER:
        return "mimeheader";
    case T_SA_EVAL:
        return "eval";
    }
    return "?";
}

static bool describe_target(struct rule *rule)
{
    static const char *modes[] = {"", ":raw", ":addr", ":name"};
    int rc;
    if (rule->target == T_HEADER)
        rc = util_asprintf(&rule->target_desc, "header %s%s", rule->header, modes[rule->hmode]);
    else if (rule->target == T_SA_EVAL)
        rc = util_asprintf(&rule->target_desc, "eval %s", rule->header);
    else if (rule->target == T_SA_HEADER || rule->target == T_SA_ENVFROM ||
             rule->target == T_SA_RELAYS)
        rc = util_asprintf(&rule->target_desc, "header %s", rule->header);
    else if (rule->target == T_SA_MIMEHEADER)
        rc = util_asprintf(&rule->target_desc, "mimeheader %s", rule->header);
    else
        rc = util_asprintf(&rule->target_desc, "%s%s", target_word(rule->target),
                           rule->target == T_HEADERS ? modes[rule->hmode] : "");
    return rc >= 0;
}

static void compile_pattern(struct rules_build *b, struct rule *rule)
{
    int errcode;
    PCRE2_SIZE off;
    uint32_t opts = rule->pflags;
    if (opts & PCRE2_UTF)
        opts |= PCRE2_MATCH_INVALID_UTF;
    rule->re = pcre2_compile((PCRE2_SPTR)rule->pattern, rule->pattern_len, opts, &errcode, &off,
                             b->r->cctx);
    if (rule->re == NULL && errcode == PCRE2_ERROR_PATTERN_TOO_LARGE && rule->sa &&
        rule->nsa_tmpl == 0) {
        /* Perl keeps one copy of a repeated group where PCRE2 writes each:
         * the same pattern with calls instead (sa_bigre.h).  The rule's own
         * text stays the original, for the prefilter's literals (the same
         * matches, so the same literals hold) and for what is reported. */
        char *big;
        size_t bign;
        int rc = sa_bigre_rewrite(rule->pattern, rule->pattern_len, opts, &big, &bign);
        if (rc < 0) {
            rules_build_nomem(b);
            return;
        }
        if (rc == 1) {
            int e2;
            PCRE2_SIZE off2;
            rule->re = pcre2_compile((PCRE2_SPTR)big, bign, opts, &e2, &off2, b->r->cctx);
            free(big);
            if (rule->re == NULL && e2 == PCRE2_ERROR_HEAP_FAILED) {
                rules_build_nomem(b);
                return;
            }
        }
    }
    if (rule->re == NULL && errcode == PCRE2_ERROR_HEAP_FAILED) {
        rules_build_nomem(b);
        return;
    }
    if (rule->re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        if (rule->sa) {
            /* SpamAssassin's (Perl's) regex that PCRE2 refuses: skipped, counted */
            char what[300];
            snprintf(what, sizeof(what), "pattern error: %s", (char *)msg);
            rule->sa_skip = true;
            if (sa_tally_add(b->sa_skipped, what, rule->name) != 0)
                rules_build_nomem(b);
            return;
        }
        rules_build_error(b, rule->pat_pos.file, rule->pat_pos.line,
                          rule->pat_pos.col + (unsigned)off, "bad pattern: %s", (char *)msg);
        return;
    }
    /* Without a JIT (some architectures) the interpreter runs, slower, with
     * the same limits; so does it when the JIT has no memory. */
    (void)pcre2_jit_compile(rule->re, PCRE2_JIT_COMPLETE);
}

static int pf_slot_of(const struct rule *rule)
{
    switch (rule->target) {
    case T_BODY:
        return 0;
    case T_RAWBODY:
        return 1;
    case T_FULL:
        return 2;
    case T_HEADERS:
        return rule->hmode == HM_RAW ? 4 : 3;
    case T_SA_BODY:
        return 5;
    case T_SA_RAWBODY:
        return 6;
    default:
        return -1;
    }
}

/* One automaton per long text, over the literals of the rules reading it,
 * and one over the skeleton of SpamAssassin's body for its body rules left without a
 * literal (obfuscated words such as "v[_\W]?i[_\W]?agra").
 * Below PF_MIN_RULES rules PCRE2's own start-of-match search (memchr for a
 * first character) is faster than a pass of the automaton. */
#define PF_MIN_RULES 8

static bool build_prefilters(struct rules *r)
{
    bool nomem = false;
    enum { ALTS = 128 };
    for (int slot = 0; slot < RULES_PF_SLOTS; slot++) {
        size_t n = 0, cap = 0, nclause = 0;
        char **lits = NULL;
        size_t *lens = NULL;
        uint32_t *owners = NULL;
        char found[ALTS][RULES_LITERAL_MAX];
        size_t flen[ALTS];
        unsigned fclause[ALTS];
        for (size_t i = 0; i < r->n; i++) {
            struct rule *rule = &r->v[i];
            /* a template's pattern is built per message: its literals are not known */
            if (rule->match != M_REGEX || rule->re == NULL || rule->nsa_tmpl > 0)
                continue;
            size_t k;
            if (slot == RULES_PF_SKELETON) {
                /* SpamAssassin body rules left without a literal: their skeleton's */
                if (rule->target != T_SA_BODY || rule->pf_slot >= 0)
                    continue;
                k = rules_literals_skeleton(rule->pattern, rule->pattern_len, rule->pflags, found,
                                            flen, fclause, ALTS);
            } else {
                if (pf_slot_of(rule) != slot)
                    continue;
                k = rules_literals(rule->pattern, rule->pattern_len, rule->pflags, found, flen,
                                   fclause, ALTS);
            }
            if (k == 0)
                continue;
            size_t c1 = cap, c2 = cap, c3 = cap;
            if (util_grow(&lits, &c1, n + k, sizeof(*lits)) != 0 ||
                util_grow(&lens, &c2, n + k, sizeof(*lens)) != 0 ||
                util_grow(&owners, &c3, n + k, sizeof(*owners)) != 0) {
                nomem = true;
                break;
            }
            cap = c1 < c2 ? (c1 < c3 ? c1 : c3) : (c2 < c3 ? c2 : c3);
            unsigned clauses = 0;
            for (size_t a = 0; a < k; a++, n++) {
                if ((lits[n] = util_memdup(found[a], flen[a])) == NULL) {
                    nomem = true;
                    break;
                }
                lens[n] = flen[a];
                owners[n] = (uint32_t)(nclause + fclause[a]);
                if (fclause[a] + 1 > clauses)
                    clauses = fclause[a] + 1;
            }
            if (nomem)
                break;
            rule->pf_slot = slot;
            rule->pf_first = (uint32_t)nclause;
            rule->pf_nclause = clauses;
            nclause += clauses;
        }
        size_t nrules = 0;
        for (size_t i = 0; i < r->n; i++)
            nrules += r->v[i].pf_slot == slot;
        if (nrules >= PF_MIN_RULES && !nomem)
            r->pf[slot] = rules_prefilter_build((const char *const *)lits, lens, owners, n, &nomem);
        r->pf_nclause[slot] = r->pf[slot] != NULL ? nclause : 0;
        if (r->pf[slot] == NULL)
            for (size_t i = 0; i < r->n; i++)
                if (r->v[i].pf_slot == slot)
                    r->v[i].pf_slot = -1;
        for (size_t i = 0; i < n; i++)
            free(lits[i]);
        free(lits);
        free(lens);
        free(owners);
        if (nomem)
            return false;
    }
    return true;
}

/* The index of tag name in r's tags, added when new; -1 when out of memory. */
static long tag_index(struct rules *r, const char *name, size_t n)
{
    for (size_t i = 0; i < r->nsa_tags; i++)
        if (strlen(r->sa_tags[i]) == n && memcmp(r->sa_tags[i], name, n) == 0)
            return (long)i;
    char **v = util_reallocarray(r->sa_tags, r->nsa_tags + 1, sizeof(*v));
    if (v == NULL)
        return -1;
    r->sa_tags = v;
    if ((v[r->nsa_tags] = util_memdup(name, n)) == NULL)
        return -1;
    return (long)r->nsa_tags++;
}

/* The tags of SpamAssassin's capture rules: each named group whose name
 * is a tag name (Perl's %- holds them all; set_captures keeps those), and
 * each template's.  False when out of memory. */
static bool resolve_captures(struct rules *r)
{
    for (size_t i = 0; i < r->n; i++) {
        struct rule *rule = &r->v[i];
        if (!rule->sa_capture || rule->re == NULL)
            continue;
        uint32_t count = 0, size = 0, groups = 0;
        PCRE2_SPTR table = NULL;
        (void)pcre2_pattern_info(rule->re, PCRE2_INFO_NAMECOUNT, &count);
        (void)pcre2_pattern_info(rule->re, PCRE2_INFO_NAMEENTRYSIZE, &size);
        (void)pcre2_pattern_info(rule->re, PCRE2_INFO_NAMETABLE, &table);
        (void)pcre2_pattern_info(rule->re, PCRE2_INFO_CAPTURECOUNT, &groups);
        for (uint32_t k = 0; k < count && table != NULL; k++) {
            PCRE2_SPTR e = table + (size_t)k * size;
            const char *name = (const char *)e + 2;
            size_t n = strnlen(name, size - 2);
            if (!sa_capture_valid_name(name, n))
                continue;
            long t = tag_index(r, name, n);
            struct rule_capture *c =
                t >= 0 ? util_reallocarray(rule->sa_caps, rule->nsa_caps + 1, sizeof(*c)) : NULL;
            if (c == NULL)
                return false;
            rule->sa_caps = c;
            /* the table is sorted by name, a name's groups in their order */
            c[rule->nsa_caps++] = (struct rule_capture){(uint32_t)t, (uint32_t)(e[0] << 8 | e[1])};
        }
        rule->sa_ngroups = groups;
        if (rule->nsa_caps > 0) {
            rule->sa_tagged = true;
            if (groups > r->sa_max_groups)
                r->sa_max_groups = groups;
        }
        if (rule->nsa_tmpl > 0) {
            if (r->sa_tcache == NULL && (r->sa_tcache = sa_capture_cache_new()) == NULL)
                return false;
            if ((rule->sa_tmpl_tag = util_mallocarray(rule->nsa_tmpl, sizeof(uint32_t))) == NULL)
                return false;
            for (size_t k = 0; k < rule->nsa_tmpl; k++) {
                long t = tag_index(r, rule->sa_tmpl[k].tag, rule->sa_tmpl[k].tag_len);
                if (t < 0)
                    return false;
                rule->sa_tmpl_tag[k] = (uint32_t)t;
            }
        }
    }
    return true;
}

/* SpamAssassin's order of the rules that set or read tags: by priority,
 * then by where their type runs, then as read (SpamAssassin's order within
 * a type is Perl's hash order, which no file can rely on). */
static int cmp_tagged(const void *a, const void *b, void *arg)
{
    const struct rules *r = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    const struct rule *p = &r->v[x], *q = &r->v[y];
    if (p->sa_priority != q->sa_priority)
        return p->sa_priority < q->sa_priority ? -1 : 1;
    if (p->sa_type_rank != q->sa_type_rank)
        return p->sa_type_rank < q->sa_type_rank ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int cmp_priority(const void *a, const void *b, void *arg)
{
    const struct rules *r = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int p = r->v[x].sa_priority, q = r->v[y].sa_priority;
    return p != q ? (p < q ? -1 : 1) : (x < y ? -1 : x > y);
}

/* Conf::Parser::fix_priorities: a SpamAssassin meta brings each rule it
 * names down to its own priority, the metas taken lowest priority first
 * (the priority of a rule that sets or reads tags decides when it runs). */
static bool sa_fix_priorities(struct rules *r)
{
    size_t *by = util_mallocarray(r->n ? r->n : 1, sizeof(size_t));
    if (by == NULL)
        return false;
    for (size_t i = 0; i < r->n; i++)
        by[i] = i;
    qsort_r(by, r->n, sizeof(size_t), cmp_priority, r);
    for (size_t k = 0; k < r->n; k++) {
        const struct rule *meta = &r->v[by[k]];
        if (!meta->sa || meta->match != M_META)
            continue;
        for (size_t i = 0; i < meta->nmeta; i++) {
            if (meta->meta[i].op != MN_REF || meta->meta[i].ref >= r->n)
                continue;
            struct rule *dep = &r->v[meta->meta[i].ref];
            if (dep->sa && dep->sa_priority > meta->sa_priority)
                dep->sa_priority = meta->sa_priority;
        }
    }
    free(by);
    return true;
}

static int cmp_names(const void *a, const void *b, void *arg)
{
    const struct rules *r = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(r->v[x].name, r->v[y].name);
    if (c != 0)
        return c;
    return x < y ? -1 : x > y;
}

struct resolve {
    struct rules_build *b;
    struct rules *r;
    size_t *sorted;
    unsigned char *color; /* 0 white, 1 on the path, 2 done */
    size_t **order;       /* per stage, metas in dependency order */
    size_t *norder;
    size_t *multi; /* multi-stage metas, in dependency order */
    size_t nmulti;
};

static long find_rule(const struct resolve *rs, const char *name)
{
    size_t lo = 0, hi = rs->r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(rs->r->v[rs->sorted[mid]].name, name);
        if (c == 0)
            return (long)rs->sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void sa_skip_rule(struct rules_build *b, struct rule *rule, const char *why)
{
    rule->sa_skip = true;
    if (sa_tally_add(b->sa_skipped, why, rule->name) != 0)
        rules_build_nomem(b);
}

static bool parse_failed(const struct rules_build *b, const char *name)
{
    for (size_t i = 0; i < b->nfailed; i++)
        if (strcmp(b->failed[i], name) == 0)
            return true;
    return false;
}

/* The score statements, in the order read: the last one of a rule wins; 0
 * turns the rule off (never evaluated, so it neither scores, acts nor feeds
 * a meta).  A rule of SpamAssassin's that is not loaded takes its score
 * silently, as SpamAssassin takes a score for a rule it does not have. */
static void apply_scores(struct resolve *rs)
{
    struct rules_build *b = rs->b;
    for (size_t i = 0; i < b->nscores; i++) {
        const struct score_override *o = &b->scores[i];
        long j = find_rule(rs, o->name);
        if (j < 0) {
            bool pruned = b->nsa_pruned > 0 && bsearch(&o->name, b->sa_pruned, b->nsa_pruned,
                                                       sizeof(char *), cmp_str_ptr) != NULL;
            if (!pruned && !parse_failed(b, o->name))
                rules_build_error(b, o->pos.file, o->pos.line, o->pos.col,
                                  "score for unknown rule %s", o->name);
            continue;
        }
        struct rule *rule = &rs->r->v[j];
        if (rule->hidden) {
            rules_build_error(b, o->pos.file, o->pos.line, o->pos.col,
                              "%s only feeds meta rules: no score", o->name);
            continue;
        }
        rule->score = o->score;
        rule->has_score = true;
        rule->disabled = o->score == 0;
    }
}

/* Depth-first over meta references: resolves names, finds loops, sets each
 * meta's stage, and appends metas after the rules they use. */
static bool resolve_meta(struct resolve *rs, size_t i, unsigned depth)
{
    struct rule *rule = &rs->r->v[i];
    if (rule->match != M_META || rs->color[i] == 2)
        return true;
    if (rs->color[i] == 1)
        return false;
    if (depth > 10000)
        return false;
    rs->color[i] = 1;
    bool ok = true, any = false;
    enum rules_stage stage = RULES_STAGE_CONNECT;
    for (size_t k = 0; k < rule->nmeta; k++) {
        struct meta_node *nd = &rule->meta[k];
        if (nd->op == MN_SYM) {
            any = true;
            rule->multi_stage = true;
            continue;
        }
        if (nd->op != MN_REF)
            continue;
        any = true;
        long j = find_rule(rs, nd->name);
        bool known_bad = false;
        for (size_t f = 0; j < 0 && f < rs->b->nfailed; f++)
            known_bad = known_bad || strcmp(rs->b->failed[f], nd->name) == 0;
        if (j < 0 && rule->sa) {
            /* SpamAssassin: a rule that is not there (its plugin absent,
             * skipped here) counts 0 */
            free(nd->name);
            nd->name = NULL;
            nd->op = MN_NUM;
            nd->num = 0;
            continue;
        }
        if (j < 0 && known_bad) {
            ok = false;
            continue;
        }
        if (j < 0 && rs->b->nsa_pruned > 0 &&
            bsearch(&nd->name, rs->b->sa_pruned, rs->b->nsa_pruned, sizeof(char *), cmp_str_ptr) !=
                NULL) {
            rules_build_error(rs->b, nd->pos.file, nd->pos.line, nd->pos.col,
                              "meta %s uses SpamAssassin's %s, which cannot run here (see "
                              "smtpgate-rules lint --sa)",
                              rule->name, nd->name);
            ok = false;
            continue;
        }
        if (j < 0) {
            rules_build_error(rs->b, nd->pos.file, nd->pos.line, nd->pos.col,
                              "meta %s uses unknown rule %s", rule->name, nd->name);
            ok = false;
            continue;
        }
        nd->ref = (size_t)j;
        struct rule *dep = &rs->r->v[j];
        if (dep->match == M_META && !resolve_meta(rs, (size_t)j, depth + 1)) {
            /* SpamAssassin leaves out a meta it cannot solve (a loop, or a
             * meta left out before), with a warning: here skipped, counted */
            if (rule->sa && !rule->sa_skip)
                sa_skip_rule(rs->b, rule,
                             rs->color[j] == 1 ? "meta: circular dependency"
                                               : "meta: uses a meta that cannot run");
            else if (!rule->sa && rs->color[j] == 1)
                rules_build_error(rs->b, nd->pos.file, nd->pos.line, nd->pos.col,
                                  "meta rules form a loop: %s uses %s", rule->name, dep->name);
            else if (!rule->sa && dep->sa_skip)
                rules_build_error(rs->b, nd->pos.file, nd->pos.line, nd->pos.col,
                                  "meta %s uses SpamAssassin's %s, which cannot run here",
                                  rule->name, dep->name);
            ok = false;
            continue;
        }
        if (dep->sa_skip) {
            if (rule->sa && !rule->sa_skip)
                sa_skip_rule(rs->b, rule, "meta: uses a meta that cannot run");
            else if (!rule->sa)
                rules_build_error(rs->b, nd->pos.file, nd->pos.line, nd->pos.col,
                                  "meta %s uses SpamAssassin's %s, which cannot run here",
                                  rule->name, dep->name);
            ok = false;
            continue;
        }
        if (dep->shadow && !rule->shadow) {
            rules_build_error(rs->b, nd->pos.file, nd->pos.line, nd->pos.col,
                              "meta %s enforces but uses shadow rule %s: make %s shadow too",
                              rule->name, dep->name, rule->name);
            ok = false;
        }
        if (dep->stage > stage)
            stage = dep->stage;
        if (dep->multi_stage)
            rule->multi_stage = true;
    }
    if (!any && !rule->sa) {
        rules_build_error(rs->b, rule->pos.file, rule->pos.line, rule->pos.col,
                          "meta %s uses no rule and no symbol", rule->name);
        ok = false;
    }
    rule->stage = stage;
    rs->color[i] = 2;
    if (ok)
        rs->order[stage][rs->norder[stage]++] = i;
    if (ok && rule->multi_stage)
        rs->multi[rs->nmulti++] = i;
    return ok;
}

/* SpamAssassin's rules before the set is made: a native rule of the same
 * name wins, patterns PCRE2 refuses are skipped, and then the metas left
 * using no rule at all (they could never fire), until none is left; what
 * is skipped is taken out of the set. */
static void sa_prune(struct rules_build *b)
{
    struct rules *r = b->r;
    size_t nsa = 0;
    for (size_t i = 0; i < r->n; i++)
        nsa += r->v[i].sa;
    if (nsa == 0)
        return;
    const char **names = util_mallocarray(r->n, sizeof(*names));
    size_t *sorted = util_mallocarray(r->n, sizeof(*sorted));
    if (names == NULL || sorted == NULL) {
        free(names);
        free(sorted);
        rules_build_nomem(b);
        return;
    }
    size_t nn = 0;
    for (size_t i = 0; i < r->n; i++)
        if (!r->v[i].sa)
            names[nn++] = r->v[i].name;
    qsort(names, nn, sizeof(*names), cmp_str_ptr);
    for (size_t i = 0; i < r->n && !b->nomem; i++) {
        struct rule *rule = &r->v[i];
        if (!rule->sa)
            continue;
        if (bsearch(&rule->name, names, nn, sizeof(*names), cmp_str_ptr) != NULL)
            sa_skip_rule(b, rule, "a native rule has the same name");
        else if (rule->match == M_REGEX)
            compile_pattern(b, rule);
    }
    for (size_t i = 0; i < r->n; i++)
        sorted[i] = i;
    qsort_r(sorted, r->n, sizeof(size_t), cmp_names, r);
    struct resolve rs = {.b = b, .r = r, .sorted = sorted};
    for (bool changed = true; changed && !b->nomem;) {
        changed = false;
        for (size_t i = 0; i < r->n; i++) {
            struct rule *rule = &r->v[i];
            if (!rule->sa || rule->sa_skip || rule->match != M_META)
                continue;
            bool live = false, lacking = false;
            for (size_t k = 0; k < rule->nmeta && !lacking; k++) {
                if (rule->meta[k].op != MN_REF)
                    continue;
                long j = find_rule(&rs, rule->meta[k].name);
                live = live || (j >= 0 && !r->v[j].sa_skip);
                for (size_t q = 0; q < b->nsa_lacking && !lacking; q++)
                    lacking = strcmp(b->sa_lacking[q], rule->meta[k].name) == 0;
            }
            if (lacking) {
                /* SpamAssassin runs that operand: without it the meta's value is unknown */
                sa_skip_rule(b, rule, "meta: uses an eval test smtpgate lacks");
                rules_build_sa_lacking(b, rule->name);
                changed = true;
            } else if (!live) {
                sa_skip_rule(b, rule, "meta: every rule it uses is absent or skipped");
                changed = true;
            }
        }
    }
    free(names);
    free(sorted);
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].sa_skip) {
            rules_build_sa_pruned(b, r->v[i].name);
            rules_rule_free(&r->v[i]);
        } else {
            r->v[k++] = r->v[i];
        }
    }
    r->n = k;
}

/* PCRE2 allocates through util/alloc, so that its failures are ours. */
static bool compile_contexts(struct rules_build *b, const struct rules_limits *lim)
{
    struct rules *r = b->r;
    r->lim = lim ? *lim
                 : (struct rules_limits){.match_limit = RULES_DEFAULT_MATCH_LIMIT,
                                         .depth_limit = RULES_DEFAULT_DEPTH_LIMIT,
                                         .heap_limit_kib = RULES_DEFAULT_HEAP_LIMIT_KIB,
                                         .budget_us = RULES_DEFAULT_BUDGET_US};
    r->gctx = pcre2_general_context_create(util_alloc_hook_malloc, util_alloc_hook_free, NULL);
    if (r->gctx != NULL)
        r->cctx = pcre2_compile_context_create(r->gctx);
    if (r->cctx != NULL)
        r->mctx = pcre2_match_context_create(r->gctx);
    if (r->mctx == NULL)
        return rules_build_nomem(b);
    pcre2_set_match_limit(r->mctx, r->lim.match_limit);
    pcre2_set_depth_limit(r->mctx, r->lim.depth_limit);
    pcre2_set_heap_limit(r->mctx, r->lim.heap_limit_kib);
    return true;
}

static void compile(struct rules_build *b, const struct rules_limits *lim)
{
    struct rules *r = b->r;
    if (!compile_contexts(b, lim))
        return;
    sa_prune(b);
    if (b->nomem)
        return;
    if (b->nsa_pruned > 1)
        qsort(b->sa_pruned, b->nsa_pruned, sizeof(char *), cmp_str_ptr);
    struct resolve rs = {.b = b, .r = r};
    size_t *meta_order[RULES_STAGE__COUNT] = {0};
    size_t nmeta[RULES_STAGE__COUNT] = {0};
    rs.sorted = util_mallocarray(r->n, sizeof(size_t));
    rs.color = util_calloc(r->n, 1);
    rs.multi = util_mallocarray(r->n + 1, sizeof(size_t));
    bool ok = rs.sorted != NULL && rs.color != NULL && rs.multi != NULL;
    for (int s = 0; s < RULES_STAGE__COUNT && ok; s++) {
        meta_order[s] = util_mallocarray(r->n, sizeof(size_t));
        r->order[s] = util_mallocarray(r->n + 1, sizeof(size_t));
        ok = meta_order[s] != NULL && r->order[s] != NULL;
    }
    if (!ok) {
        rules_build_nomem(b);
        goto out;
    }
    for (size_t i = 0; i < r->n; i++)
        rs.sorted[i] = i;
    qsort_r(rs.sorted, r->n, sizeof(size_t), cmp_names, r);
    for (size_t i = 1; i < r->n; i++) {
        const struct rule *a = &r->v[rs.sorted[i - 1]], *c = &r->v[rs.sorted[i]];
        if (strcmp(a->name, c->name) == 0)
            rules_build_error(b, c->pos.file, c->pos.line, c->pos.col,
                              "rule %s already defined at %s:%u", c->name, a->pos.file,
                              a->pos.line);
    }
    apply_scores(&rs);

    for (size_t i = 0; i < r->n && !b->nomem; i++) {
        struct rule *rule = &r->v[i];
        rule->pf_slot = -1;
        if (!describe_target(rule))
            rules_build_nomem(b);
        else if (rule->match == M_REGEX && rule->re == NULL)
            compile_pattern(b, rule);
    }
    if (!b->nomem && !resolve_captures(r))
        rules_build_nomem(b);
    if (b->nerrs == 0 && !r->lim.no_prefilter && !build_prefilters(r))
        rules_build_nomem(b);
    if (b->nomem)
        goto out;

    rs.order = meta_order;
    rs.norder = nmeta;
    for (size_t i = 0; i < r->n; i++)
        resolve_meta(&rs, i, 0);
    if (b->nerrs == 0 && r->nsa_tags > 0 && !sa_fix_priorities(r)) {
        rules_build_nomem(b);
        goto out;
    }

    for (int s = 0; s < RULES_STAGE__COUNT; s++) {
        r->norder[s] = 0;
        for (size_t i = 0; i < r->n; i++)
            if (r->v[i].match != M_META && r->v[i].stage == (enum rules_stage)s &&
                !r->v[i].sa_tagged)
                r->order[s][r->norder[s]++] = i;
        /* then those that set or read tags, as SpamAssassin runs them */
        size_t tagged = r->norder[s];
        for (size_t i = 0; i < r->n; i++)
            if (r->v[i].match != M_META && r->v[i].stage == (enum rules_stage)s &&
                r->v[i].sa_tagged)
                r->order[s][r->norder[s]++] = i;
        if (r->norder[s] - tagged > 1)
            qsort_r(r->order[s] + tagged, r->norder[s] - tagged, sizeof(size_t), cmp_tagged, r);
        /* metas on symbols from earlier stages first: this stage's metas
         * may use them, never the other way round */
        for (size_t k = 0; k < rs.nmulti; k++)
            if (r->v[rs.multi[k]].stage < (enum rules_stage)s)
                r->order[s][r->norder[s]++] = rs.multi[k];
        for (size_t k = 0; k < nmeta[s]; k++)
            r->order[s][r->norder[s]++] = meta_order[s][k];
        if (r->norder[s] > 0)
            r->stages |= 1u << s;
    }
    for (size_t i = 0; i < r->n; i++) {
        const struct rule *rule = &r->v[i];
        if (rule->stage != RULES_STAGE_CONTENT || rule->match == M_META)
            continue;
        if (rule->target == T_HEADER || rule->target == T_HEADERS ||
            rule->target == T_SA_HEADER || rule->target == T_SA_ENVFROM ||
            rule->target == T_SA_RELAYS)
            r->need_headers = true;
        else if (rule->target != T_SIZE)
            r->need_raw = true;
        if (rule->target == T_SA_BODY || rule->target == T_SA_RAWBODY ||
            rule->target == T_SA_URI || rule->target == T_SA_MIMEHEADER)
            r->need_sa = true;
    }
    /* thresholds beyond the content stage's rules still need it for the report */
    r->stages |= 1u << RULES_STAGE_CONTENT;

    static const char *names[TH__COUNT] = {"tag", "quarantine", "reject"};
    for (int k = 0; k < TH__COUNT; k++) {
        for (int m = k + 1; m < TH__COUNT; m++) {
            const struct threshold *lo = &r->th[k], *hi = &r->th[m];
            if (lo->set && hi->set && lo->score > hi->score)
                rules_build_error(b, lo->pos.file, lo->pos.line, lo->pos.col,
                                  "threshold %s (%g) is above threshold %s (%g) at %s:%u", names[k],
                                  lo->score, names[m], hi->score, hi->pos.file, hi->pos.line);
        }
    }
out:
    for (int s = 0; s < RULES_STAGE__COUNT; s++)
        free(meta_order[s]);
    free(rs.color);
    free(rs.sorted);
    free(rs.multi);
}

static int read_whole(const char *path, char **data, size_t *len, char **why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    *data = NULL;
    if (fd < 0 || fstat(fd, &st) != 0) {
        *why = util_strdup(strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > RULE_FILE_MAX) {
        *why = util_strdup(S_ISREG(st.st_mode) ? "larger than 16 MiB" : "not a regular file");
        close(fd);
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = util_malloc(cap);
    for (;;) {
        if (buf == NULL || (n == cap && cap > RULE_FILE_MAX)) {
            *why = util_strdup(buf == NULL ? "out of memory" : "larger than 16 MiB");
            free(buf);
            close(fd);
            return -1;
        }
        if (n == cap) {
            char *nb = util_reallocarray(buf, cap, 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                continue;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            *why = util_strdup(strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    *data = buf;
    *len = n;
    return 0;
}

struct error_key {
    size_t file; /* order in which the files were read */
    size_t seq;  /* order of report, to keep the sort stable */
    struct rules_error e;
};

static int cmp_errors(const void *a, const void *b)
{
    const struct error_key *x = a, *y = b;
    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    if (x->e.line != y->e.line)
        return x->e.line < y->e.line ? -1 : 1;
    if (x->e.col != y->e.col)
        return x->e.col < y->e.col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The errors of this load (from index from on) by file, line and column, so
 * the admin reads them top to bottom whichever check found them. */
static void sort_errors(const struct rules *r, struct rules_errors *errs, size_t from)
{
    if (errs == NULL || errs->n - from < 2)
        return;
    size_t n = errs->n - from;
    struct error_key *k = util_mallocarray(n, sizeof(*k));
    if (k == NULL)
        return; /* in the order found */
    for (size_t i = 0; i < n; i++) {
        k[i].e = errs->v[from + i];
        k[i].seq = i;
        k[i].file = r->nfiles;
        for (size_t f = 0; f < r->nfiles; f++)
            if (strcmp(r->files[f], k[i].e.file) == 0) {
                k[i].file = f;
                break;
            }
    }
    qsort(k, n, sizeof(*k), cmp_errors);
    for (size_t i = 0; i < n; i++)
        errs->v[from + i] = k[i].e;
    free(k);
}

/* lint after a failed load: the examples of every rule whose pattern did
 * compile, so the admin sees those failures in the same run (a rule whose
 * pattern failed has its error already; its examples wait for the fix). */
static void check_compiled_examples(struct rules_build *b)
{
    struct rules *r = b->r;
    if (r->mctx == NULL)
        return;
    size_t *kept = util_calloc(r->n ? r->n : 1, sizeof(*kept));
    if (kept == NULL) {
        rules_build_nomem(b);
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        kept[i] = r->v[i].nexamples;
        if (r->v[i].match == M_REGEX && r->v[i].re == NULL)
            r->v[i].nexamples = 0;
    }
    size_t failed = rules_check_examples(r, b->errs);
    b->nerrs += failed;
    for (size_t i = 0; i < r->n; i++)
        r->v[i].nexamples = kept[i];
    free(kept);
    if (b->errs != NULL && b->errs->nomem)
        b->nomem = true;
}

/* Ends a load: compiles what parsed, frees the build's bookkeeping, and
 * hands back the set or, after any error, the errors sorted. */
static int finish(struct rules_build *b, const struct rules_limits *lim, struct rules **out,
                  size_t first_error)
{
    /* Compiled even after syntax errors, so one run reports those of the
     * rules that did parse too (duplicate names, bad patterns, meta). */
    if (!b->nomem)
        compile(b, lim);
    for (size_t i = 0; i < b->nseen; i++)
        free(b->seen[i]);
    free(b->seen);
    for (size_t i = 0; i < b->nfailed; i++)
        free(b->failed[i]);
    free(b->failed);
    for (size_t i = 0; i < b->nscores; i++)
        free(b->scores[i].name);
    free(b->scores);
    for (size_t i = 0; i < b->nsa_pruned; i++)
        free(b->sa_pruned[i]);
    free(b->sa_pruned);
    for (size_t i = 0; i < b->nsa_lacking; i++)
        free(b->sa_lacking[i]);
    free(b->sa_lacking);
    *out = NULL;
    if (b->nomem && b->errs != NULL) {
        b->errs->nomem = true;
        /* said once, at the first file; when even that fails, errs->nomem says it */
        const char *file = b->r->nfiles > 0 ? b->r->files[0] : "rules";
        rules_errors_add(b->errs, file, 0, 0, "out of memory");
    }
    if (b->nerrs != 0) {
        if (b->lint && !b->nomem)
            check_compiled_examples(b);
        sort_errors(b->r, b->errs, first_error);
        rules_set_free(b->r);
        return -1;
    }
    *out = b->r;
    return 0;
}

/* A load that cannot even start. */
static int load_nomem(struct rules **out, struct rules_errors *errs, const char *file)
{
    *out = NULL;
    if (errs != NULL) {
        errs->nomem = true;
        rules_errors_add(errs, file, 0, 0, "out of memory");
    }
    return -1;
}

static void load_native(struct rules_build *b, const char *const *paths, size_t npaths)
{
    for (size_t i = 0; i < npaths && !b->nomem; i++) {
        char *canon = realpath(paths[i], NULL);
        const char *name = canon ? canon : paths[i];
        int seen = rules_build_seen(b, name);
        if (seen != 0) {
            if (seen > 0)
                rules_build_error(b, paths[i], 0, 0, "loaded already (given twice, or included)");
            free(canon);
            continue;
        }
        char *data, *why = NULL;
        size_t len;
        if (read_whole(name, &data, &len, &why) != 0) {
            rules_build_error(b, paths[i], 0, 0, "cannot read: %s", why ? why : "out of memory");
            free(why);
            free(canon);
            continue;
        }
        /* Errors name the file as the admin wrote it. */
        const char *interned = rules_build_file(b, paths[i]);
        free(canon);
        if (interned != NULL)
            rules_parse(b, interned, data, len);
        free(data);
    }
}

int rules_load_files(const char *const *paths, size_t npaths, const struct rules_limits *lim,
                     struct rules **out, struct rules_errors *errs)
{
    return rules_load_sa(paths, npaths, NULL, lim, out, errs, NULL);
}

static int load_all(const char *const *paths, size_t npaths, const struct rules_sa_opts *sa,
                    const struct rules_limits *lim, struct rules **out, struct rules_errors *errs,
                    struct rules_sa_report *rep, bool lint)
{
    struct sa_tally skipped = {0};
    struct rules_build b = {.r = rules_set_new(),
                            .errs = errs,
                            .read_file = read_whole,
                            .sa_skipped = &skipped,
                            .lint = lint};
    if (b.r == NULL)
        return load_nomem(out, errs, npaths > 0 ? paths[0] : "rules");
    size_t first_error = errs ? errs->n : 0;
    load_native(&b, paths, npaths);
    if (sa != NULL && !b.nomem)
        sa_load(&b, sa, rep);
    int rc = finish(&b, lim, out, first_error);
    if (skipped.nomem && rc == 0) {
        /* a reason could not be counted: the report would lie */
        rules_unref(*out);
        *out = NULL;
        rc = load_nomem(out, errs, npaths > 0 ? paths[0] : "rules");
    }
    if (rep != NULL) {
        sa_tally_sort(&skipped);
        rep->skipped = skipped.v;
        rep->nskipped = skipped.n;
        skipped = (struct sa_tally){0};
        if (rc == 0)
            for (size_t i = 0; i < (*out)->n; i++)
                rep->loaded += (*out)->v[i].sa && !(*out)->v[i].sa_skip;
    }
    sa_tally_free(&skipped);
    return rc;
}

int rules_load_sa(const char *const *paths, size_t npaths, const struct rules_sa_opts *sa,
                  const struct rules_limits *lim, struct rules **out, struct rules_errors *errs,
                  struct rules_sa_report *rep)
{
    return load_all(paths, npaths, sa, lim, out, errs, rep, false);
}

int rules_load_lint(const char *const *paths, size_t npaths, const struct rules_sa_opts *sa,
                    struct rules **out, struct rules_errors *errs, struct rules_sa_report *rep)
{
    return load_all(paths, npaths, sa, NULL, out, errs, rep, true);
}

void rules_sa_report_free(struct rules_sa_report *rep)
{
    for (size_t i = 0; i < rep->nfiles; i++)
        free(rep->files[i]);
    free(rep->files);
    struct sa_tally a = {rep->skipped, rep->nskipped, rep->nskipped, false};
    struct sa_tally c = {rep->ignored, rep->nignored, rep->nignored, false};
    struct sa_tally e = {rep->evals, rep->nevals, rep->nevals, false};
    sa_tally_free(&a);
    sa_tally_free(&c);
    sa_tally_free(&e);
    struct sa_tally d = {rep->evals_done, rep->nevals_done, rep->nevals_done, false};
    sa_tally_free(&d);
    rules_errors_free(&rep->warnings);
    *rep = (struct rules_sa_report){0};
}

int rules_load_buffer(const char *name, const char *data, size_t len,
                      const struct rules_limits *lim, struct rules **out, struct rules_errors *errs)
{
    struct sa_tally skipped = {0};
    struct rules_build b = {
        .r = rules_set_new(), .errs = errs, .read_file = NULL, .sa_skipped = &skipped};
    if (b.r == NULL)
        return load_nomem(out, errs, name);
    size_t first_error = errs ? errs->n : 0;
    const char *interned = rules_build_file(&b, name);
    if (interned != NULL)
        rules_parse(&b, interned, data, len);
    return finish(&b, lim, out, first_error);
}
