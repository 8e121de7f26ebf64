/*
 * rules_eval - evaluates a compiled rule set along an SMTP session (see
 * rules.h for the stages, precedence and cost contract).
 *
 * A tx keeps, per rule, whether it hit for the message (hit[]) and, during a
 * recipient's evaluation, whether it hit for that recipient (cur[]); the
 * list of hits with their matched text; and whether an accept rule let the
 * connection or the message through.  Meta expressions are stored in post
 * order by the parser (operands before operators), so one loop over the
 * nodes evaluates them without recursion.
 *
 * The matching of one rule against one value is match.c, the report's
 * fields report.c.
 *
 * Diagnostics: none here; limits and budget show up as events in the
 * outcome, for the caller to log and count.  Out of memory: every
 * allocation is checked and marks the evaluation (tx->nomem), which then
 * returns NULL; the tx stays consistent for its next stage.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rules/match.h"
#include "rules/report.h"
#include "rules/ruleset.h"
#include "rules/sa_capture.h"
#include "rules/sa_capture_cache.h"
#include "rules/sa_eval.h"
#include "rules/sa_hdrconf.h"
#include "rules/sa_relays.h"
#include "util/alloc.h"

struct rules_tx {
    struct rules *r;
    unsigned char *hit;
    unsigned char *cur;
    double *scratch;
    uint32_t *count; /* hits of rules with maxhits, this message */
    char *join;      /* T_SA_HEADER's joined value */
    size_t join_cap;
    size_t scratch_n;
    struct rules_hit *hits;
    size_t *hidx; /* rule index of each hit */
    size_t nhits;
    size_t hits_cap;
    int accepted_stage; /* -1: none */
    const char *accepted_by;
    pcre2_match_data *md;
    uint64_t *prof;
    bool all_values; /* rules_tx_set_all_values */
    struct rules_outcome out;
    struct rules_event *events;
    size_t nevents;
    size_t events_cap;
    struct rules_header *headers;
    size_t nheaders;
    char *status;
    char *score;
    char *level;
    struct rules_header *report; /* names and values owned */
    size_t nreport;
    struct timespec started;
    bool budget_spent;
    bool nomem; /* an allocation failed in this evaluation: it returns NULL */
    unsigned char *seen[RULES_PF_SLOTS]; /* clauses whose literal the prefilter found */
    bool pf_done[RULES_PF_SLOTS];
    /* SpamAssassin's tags of this message (struct rules' sa_tags), what the
     * rule running captured for them, and its match data with their groups */
    struct tag_values *tags;
    struct tag_values *pending;
    pcre2_match_data *md_cap;
};

/* A tag's values (set_tag's scalar or list), in the order captured. */
struct tag_values {
    char **v;
    size_t *len;
    size_t n, cap;
    bool set;
};


struct rules_tx *rules_tx_new(struct rules *r)
{
    struct rules_tx *tx = util_calloc(1, sizeof(*tx));
    if (tx == NULL)
        return NULL;
    tx->r = rules_ref(r);
    tx->accepted_stage = -1;
    bool ok = (tx->hit = util_calloc(r->n, 1)) != NULL && (tx->cur = util_calloc(r->n, 1)) != NULL;
    for (int k = 0; k < RULES_PF_SLOTS && ok; k++)
        ok = (tx->seen[k] = util_calloc(r->pf_nclause[k], 1)) != NULL;
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].nmeta > tx->scratch_n)
            tx->scratch_n = r->v[i].nmeta;
    ok = ok &&
         (tx->scratch = util_calloc(tx->scratch_n ? tx->scratch_n : 1, sizeof(double))) != NULL;
    ok = ok && (tx->count = util_calloc(r->n ? r->n : 1, sizeof(uint32_t))) != NULL;
    ok = ok && (tx->md = pcre2_match_data_create(1, r->gctx)) != NULL;
    if (ok && r->nsa_tags > 0) {
        ok = (tx->tags = util_calloc(r->nsa_tags, sizeof(*tx->tags))) != NULL &&
             (tx->pending = util_calloc(r->nsa_tags, sizeof(*tx->pending))) != NULL &&
             (tx->md_cap = pcre2_match_data_create(r->sa_max_groups + 1, r->gctx)) != NULL;
    }
    if (!ok) {
        rules_tx_free(tx);
        return NULL;
    }
    return tx;
}

static void tag_clear(struct tag_values *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i]);
    t->n = 0;
    t->set = false;
}

static void tag_free(struct tag_values *t)
{
    tag_clear(t);
    free(t->v);
    free(t->len);
}

static void values_free(struct rules_value *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((char *)v[i].text);
    free(v);
}

static void hit_free(struct rules_hit *h)
{
    free((char *)h->text);
    free((char *)h->rcpt);
    values_free((struct rules_value *)h->more, h->nmore);
}

static void outcome_clear(struct rules_tx *tx)
{
    tx->nevents = 0;
    for (size_t i = 0; i < tx->nheaders; i++)
        free((char *)tx->headers[i].value);
    free(tx->headers);
    tx->headers = NULL;
    tx->nheaders = 0;
    free(tx->status);
    free(tx->score);
    free(tx->level);
    tx->status = tx->score = tx->level = NULL;
    for (size_t i = 0; i < tx->nreport; i++) {
        free((char *)tx->report[i].name);
        free((char *)tx->report[i].value);
    }
    free(tx->report);
    tx->report = NULL;
    tx->nreport = 0;
    tx->out = (struct rules_outcome){0};
}

/* Room for one more hit; false (and tx->nomem) when out of memory. */
static bool hits_grow(struct rules_tx *tx)
{
    if (tx->nhits < tx->hits_cap)
        return true;
    size_t cap = tx->hits_cap ? tx->hits_cap * 2 : 16;
    struct rules_hit *h = util_reallocarray(tx->hits, cap, sizeof(*tx->hits));
    if (h != NULL)
        tx->hits = h;
    size_t *x = h ? util_reallocarray(tx->hidx, cap, sizeof(*tx->hidx)) : NULL;
    if (x == NULL) {
        tx->nomem = true;
        return false;
    }
    tx->hidx = x;
    tx->hits_cap = cap;
    return true;
}

struct rules_tx *rules_tx_fork(const struct rules_tx *conn)
{
    struct rules_tx *tx = rules_tx_new(conn->r);
    if (tx == NULL)
        return NULL;
    for (size_t i = 0; i < conn->nhits; i++) {
        const struct rules_hit *h = &conn->hits[i];
        if (h->stage > RULES_STAGE_HELO)
            continue;
        struct rules_hit c = *h;
        c.text = h->text ? util_memdup(h->text, h->text_len) : NULL;
        c.rcpt = NULL;
        c.more = NULL; /* shown at its own stage; the transaction needs the first only */
        c.nmore = 0;
        if (!hits_grow(tx) || (h->text != NULL && c.text == NULL)) {
            free((char *)c.text);
            rules_tx_free(tx);
            return NULL;
        }
        tx->hidx[tx->nhits] = conn->hidx[i];
        tx->hits[tx->nhits++] = c;
    }
    for (size_t i = 0; i < conn->r->n; i++)
        if (conn->r->v[i].stage <= RULES_STAGE_HELO)
            tx->hit[i] = conn->hit[i];
    if (conn->accepted_stage >= 0 && conn->accepted_stage <= RULES_STAGE_HELO) {
        tx->accepted_stage = conn->accepted_stage;
        tx->accepted_by = conn->accepted_by;
    }
    tx->prof = conn->prof;
    tx->all_values = conn->all_values;
    return tx;
}

void rules_tx_free(struct rules_tx *tx)
{
    if (tx == NULL)
        return;
    outcome_clear(tx);
    for (size_t i = 0; i < tx->nhits; i++)
        hit_free(&tx->hits[i]);
    free(tx->hits);
    free(tx->hidx);
    free(tx->events);
    free(tx->hit);
    free(tx->cur);
    for (int k = 0; k < RULES_PF_SLOTS; k++)
        free(tx->seen[k]);
    free(tx->scratch);
    free(tx->count);
    free(tx->join);
    pcre2_match_data_free(tx->md);
    for (size_t i = 0; tx->tags != NULL && i < tx->r->nsa_tags; i++)
        tag_free(&tx->tags[i]);
    for (size_t i = 0; tx->pending != NULL && i < tx->r->nsa_tags; i++)
        tag_free(&tx->pending[i]);
    free(tx->tags);
    free(tx->pending);
    pcre2_match_data_free(tx->md_cap);
    rules_unref(tx->r);
    free(tx);
}

const struct rules *rules_tx_rules(const struct rules_tx *tx)
{
    return tx->r;
}

void rules_tx_set_all_values(struct rules_tx *tx, bool on)
{
    tx->all_values = on;
}

void rules_tx_set_profile(struct rules_tx *tx, uint64_t *prof)
{
    tx->prof = prof;
}

size_t rules_tx_hit_count(const struct rules_tx *tx)
{
    return tx->nhits;
}

const struct rules_hit *rules_tx_hit(const struct rules_tx *tx, size_t i)
{
    return i < tx->nhits ? &tx->hits[i] : NULL;
}

/* ---- matching ---- */

static void add_event(struct rules_tx *tx, const char *rule, const char *what)
{
    if (util_grow(&tx->events, &tx->events_cap, tx->nevents + 1, sizeof(*tx->events)) != 0) {
        tx->nomem = true;
        return;
    }
    tx->events[tx->nevents++] = (struct rules_event){rule, what};
}

/* What one value did: 1 matched (text recorded), 0 not, -1 limit. */
struct matcher {
    struct rules_tx *tx;
    const struct rule *rule;
    pcre2_match_data *md; /* with room for the capture groups of a capture rule */
    uint32_t count; /* rules with maxhits: matches counted */
    bool matched;
    bool failed;
    const char *text;
    size_t text_len;
    struct rules_value *more; /* all_values: the matches after the first */
    size_t nmore;
    bool captured; /* a capture rule's pattern matched: its tags are set */
};

static bool tag_add(struct tag_values *t, const char *s, size_t len)
{
    size_t c1 = t->cap, c2 = t->cap;
    if (util_grow(&t->v, &c1, t->n + 1, sizeof(*t->v)) != 0 ||
        util_grow(&t->len, &c2, t->n + 1, sizeof(*t->len)) != 0)
        return false;
    t->cap = c1 < c2 ? c1 : c2;
    if ((t->v[t->n] = util_memdup(s, len)) == NULL)
        return false;
    t->len[t->n++] = len;
    return true;
}

/* Plugin::Check's capture_plugin_code after a match the rule counts: the
 * non-empty values of its named groups, kept until the rule is done. */
static void capture(struct matcher *mt, const char *s)
{
    const struct rule *rule = mt->rule;
    if (rule->nsa_caps == 0 || rule->negate)
        return;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(mt->md);
    uint32_t pairs = pcre2_get_ovector_count(mt->md);
    for (size_t k = 0; k < rule->nsa_caps; k++) {
        uint32_t g = rule->sa_caps[k].group;
        if (g >= pairs || ov[2 * g] == PCRE2_UNSET || ov[2 * g + 1] <= ov[2 * g])
            continue;
        if (!tag_add(&mt->tx->pending[rule->sa_caps[k].tag], s + ov[2 * g],
                     ov[2 * g + 1] - ov[2 * g]))
            mt->tx->nomem = true;
    }
    mt->captured = true;
}

/* set_captures once the rule ran: each tag of its named groups becomes what
 * it captured, duplicates out (the first kept), even none, replacing what
 * an earlier rule captured. */
static void capture_commit(struct rules_tx *tx, const struct rule *rule, bool captured)
{
    for (size_t k = 0; k < rule->nsa_caps; k++) {
        struct tag_values *p = &tx->pending[rule->sa_caps[k].tag];
        struct tag_values *t = &tx->tags[rule->sa_caps[k].tag];
        if (!captured) {
            tag_clear(p);
            continue;
        }
        if (p->set)
            continue; /* another group of the same name: done with the first */
        tag_clear(t);
        t->set = true;
        for (size_t i = 0; i < p->n && !tx->nomem; i++) {
            bool seen = false;
            for (size_t j = 0; j < t->n && !seen; j++)
                seen = t->len[j] == p->len[i] && memcmp(t->v[j], p->v[i], p->len[i]) == 0;
            if (!seen && !tag_add(t, p->v[i], p->len[i]))
                tx->nomem = true;
        }
        tag_clear(p);
        p->set = true;
    }
    for (size_t k = 0; k < rule->nsa_caps; k++)
        tx->pending[rule->sa_caps[k].tag].set = false;
}

/* capture_rules_replace: the template rule's pattern with its tags'
 * values, compiled (or found compiled in the set's cache, as the same
 * values come again), a reference the caller releases; NULL when a tag has
 * no value (the rule does not run), or when the pattern cannot be made: too
 * large, or refused by PCRE2 (a "template limit" event, a miss as for the
 * match limit; tx->nomem when out of memory). */
static struct sa_capture_code *template_re(struct rules_tx *tx, size_t idx)
{
    const struct rule *rule = &tx->r->v[idx];
    char *pat = NULL;
    const char *cur = rule->pattern;
    size_t len = rule->pattern_len;
    for (size_t k = 0; k < rule->nsa_tmpl; k++) {
        const struct tag_values *t = &tx->tags[rule->sa_tmpl_tag[k]];
        if (!t->set || t->n == 0) {
            free(pat);
            return NULL;
        }
        bool big;
        size_t nl = 0;
        char *next = sa_capture_subst(cur, len, rule->sa_tmpl[k].text, rule->sa_tmpl[k].text_len,
                                      (const char *const *)t->v, t->len, t->n, &nl, &big);
        free(pat);
        if (next == NULL) {
            if (big)
                add_event(tx, rule->name, "template limit");
            else
                tx->nomem = true;
            return NULL;
        }
        pat = next;
        cur = next;
        len = nl;
    }
    struct sa_capture_code *k = sa_capture_cache_get(tx->r->sa_tcache, idx, pat, len);
    if (k != NULL) {
        free(pat);
        return k;
    }
    int err;
    PCRE2_SIZE off;
    uint32_t opts = rule->pflags;
    if (opts & PCRE2_UTF)
        opts |= PCRE2_MATCH_INVALID_UTF;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, opts, &err, &off, tx->r->cctx);
    if (re == NULL) {
        if (err == PCRE2_ERROR_HEAP_FAILED)
            tx->nomem = true;
        else
            add_event(tx, rule->name, "template limit");
        free(pat);
        return NULL;
    }
    k = sa_capture_cache_put(tx->r->sa_tcache, idx, pat, len, re);
    free(pat);
    if (k == NULL)
        tx->nomem = true;
    return k;
}

/* all_values: one more match, copied (the message may go before the hit). */
static void keep_value(struct matcher *mt, const char *s, size_t len)
{
    if (mt->nmore >= RULES_HIT_VALUES_MAX)
        return;
    if (len > RULES_HIT_TEXT_MAX)
        len = RULES_HIT_TEXT_MAX;
    char *copy = util_memdup(s, len);
    struct rules_value *v =
        copy ? util_reallocarray(mt->more, mt->nmore + 1, sizeof(*mt->more)) : NULL;
    if (v == NULL) {
        free(copy);
        mt->tx->nomem = true;
        return;
    }
    mt->more = v;
    mt->more[mt->nmore++] = (struct rules_value){copy, len};
}

/* all_values: every match of the pattern in s after the first one found
 * at first_end, as Perl's //g goes on (an empty match moves on by one
 * octet, so the loop ends within len + 1 rounds). */
static void more_matches(struct matcher *mt, const char *s, size_t len, size_t off)
{
    const struct rules *r = mt->tx->r;
    while (off <= len && mt->nmore < RULES_HIT_VALUES_MAX && !mt->tx->nomem) {
        int rc = pcre2_match(mt->rule->re, (PCRE2_SPTR)s, len, off, 0, mt->md, r->mctx);
        if (rc < 0)
            return; /* no more, or a limit: what was found stands */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(mt->md);
        if (ov[1] < ov[0] || ov[1] > len)
            return;
        keep_value(mt, s + ov[0], ov[1] - ov[0]);
        off = ov[1] > off ? ov[1] : off + 1;
    }
}

static bool try_value(struct matcher *mt, const char *s, size_t len)
{
    size_t ms = 0, ml = 0;
    int rc = rules_match_one(mt->tx->r, mt->rule, s, len, mt->md, &ms, &ml);
    if (rc == RULES_MATCH_NOMEM) {
        mt->tx->nomem = true;
        return true;
    }
    if (rc < 0 && mt->tx->all_values && mt->matched)
        return false; /* the verdict was the first match's: a later value does not undo it */
    if (rc < 0) {
        mt->failed = true;
        return true;
    }
    if (rc == 1) {
        if (!mt->tx->all_values) {
            mt->matched = true;
            mt->text = s + ms;
            mt->text_len = ml;
            capture(mt, s);
            return true;
        }
        if (!mt->matched) {
            mt->matched = true;
            mt->text = s + ms;
            mt->text_len = ml;
            capture(mt, s);
        } else {
            keep_value(mt, s + ms, ml);
        }
        if (mt->rule->match == M_REGEX)
            more_matches(mt, s, len, ms + ml > ms ? ms + ml : ms + 1);
        return false; /* on to the next value */
    }
    return false;
}

static bool field_is(const struct rules_msg_field *f, const char *name)
{
    return strcasecmp(f->name, name) == 0;
}

/* tflags multiple: every match of the pattern in s, one after the other as
 * Perl's //g finds them, up to the rule's maxhits.  An empty match moves on
 * by one octet, so the loop ends within len + 1 rounds. */
static bool count_value(struct matcher *mt, const char *s, size_t len)
{
    const struct rules *r = mt->tx->r;
    size_t off = 0;
    while (mt->count < mt->rule->maxhits && off <= len) {
        int rc = pcre2_match(mt->rule->re, (PCRE2_SPTR)s, len, off, 0, mt->md, r->mctx);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc == PCRE2_ERROR_NOMEMORY) {
            mt->tx->nomem = true;
            return true;
        }
        if (rc < 0) {
            mt->failed = true;
            return true;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(mt->md);
        capture(mt, s);
        if (mt->count++ == 0) {
            mt->matched = true;
            mt->text = s + ov[0];
            mt->text_len = ov[1] > ov[0] ? ov[1] - ov[0] : 0;
        }
        off = ov[1] > off ? ov[1] : off + 1;
    }
    return mt->count >= mt->rule->maxhits;
}

/* One value of the rule's target: counted, or matched once. */
static bool value(struct matcher *mt, const char *s, size_t len)
{
    if (mt->rule->maxhits > 0 && mt->rule->match == M_REGEX)
        return count_value(mt, s, len);
    return try_value(mt, s, len);
}

static bool join_add(struct rules_tx *tx, size_t *n, const char *s, size_t len)
{
    if (util_grow(&tx->join, &tx->join_cap, *n + len + 2, 1) != 0) {
        tx->nomem = true;
        return false;
    }
    memcpy(tx->join + *n, s, len);
    *n += len;
    tx->join[*n] = '\0';
    return true;
}

/* SpamAssassin's get(): each value of the fields (or of their addresses or
 * names) ends with a line end and they are joined, raw values unfolded;
 * :first and :last keep one.  NULL when none is there. */
static const char *sa_header_value(struct rules_tx *tx, const struct rule *rule,
                                   struct rules_msg *m, size_t *out)
{
    size_t n = 0, nvals = 0, n_last = 0;
    size_t nf = rules_msg_field_count(m);
    bool addrs = rule->hmode == HM_ADDR || rule->hmode == HM_NAME;
    if (!join_add(tx, &n, "", 0))
        return NULL;
    for (size_t k = 0; k < rule->nsa_fields; k++) {
        for (size_t i = 0; i < nf; i++) {
            struct rules_msg_field *f = rules_msg_field(m, i);
            if (!field_is(f, rule->sa_fields[k]))
                continue;
            if (rule->sa_first && nvals > 0)
                break;
            size_t start = n;
            if (rule->hmode == HM_RAW) {
                const char *v = f->raw;
                size_t len = f->raw_len;
                while (len > 0 && (*v == ' ' || *v == '\t'))
                    v++, len--;
                /* s/\r?\n\s+/ /g, as SpamAssassin unfolds raw values */
                for (size_t j = 0; j < len; j++) {
                    size_t e = j;
                    if (v[e] == '\r' && e + 1 < len && v[e + 1] == '\n')
                        e++;
                    if (v[e] == '\n' && e + 1 < len && (v[e + 1] == ' ' || v[e + 1] == '\t')) {
                        while (e + 1 < len && (v[e + 1] == ' ' || v[e + 1] == '\t' ||
                                               v[e + 1] == '\r' || v[e + 1] == '\n'))
                            e++;
                        if (!join_add(tx, &n, " ", 1))
                            return NULL;
                        j = e;
                        continue;
                    }
                    if (!join_add(tx, &n, v + j, 1))
                        return NULL;
                }
                if (!join_add(tx, &n, "\n", 1))
                    return NULL;
            } else if (addrs) {
                rules_msg_field_addrs(m, i);
                char **v = rule->hmode == HM_ADDR ? f->addrs : f->names;
                size_t nv = rule->hmode == HM_ADDR ? f->naddrs : f->nnames;
                for (size_t a = 0; a < nv; a++)
                    if (!join_add(tx, &n, v[a], strlen(v[a])) || !join_add(tx, &n, "\n", 1))
                        return NULL;
            } else {
                const char *v = rules_msg_field_decoded(m, i);
                if (!join_add(tx, &n, v, strlen(v)) || !join_add(tx, &n, "\n", 1))
                    return NULL;
            }
            if (n > start) {
                nvals++;
                n_last = start;
            }
        }
    }
    if (nvals == 0)
        return NULL;
    const char *s = tx->join;
    if (rule->sa_last && nvals > 1) {
        s += n_last;
        n -= n_last;
    }
    /* addresses and names are joined by line ends, without one at the end */
    if (addrs && n > 0)
        n--;
    *out = n;
    return s;
}

/* SpamAssassin's body and rawbody: each element alone, as its rules see
 * them (so ^ and $ anchor at a paragraph's ends, and no match spans two). */
static void elements(struct matcher *mt, const char *s, const size_t *ends, size_t n, size_t first)
{
    size_t from = first > 0 && first <= n ? ends[first - 1] : 0;
    for (size_t i = first; i < n; i++) {
        if (value(mt, s + from, ends[i] - from))
            return;
        from = ends[i];
    }
}

/* SpamAssassin's EnvelopeFrom: smtpgate's own MAIL FROM, which needs no
 * guessing from the fields; without it (a saved message), the address of
 * the first Return-Path, SpamAssassin's guess when no MTA marked it up. */
static const char *envelope_from(struct rules_msg *m, const struct rules_facts *f, size_t *len)
{
    if (f != NULL && f->mail_from != NULL) {
        *len = strlen(f->mail_from);
        return f->mail_from;
    }
    size_t nf = rules_msg_field_count(m);
    for (size_t i = 0; i < nf; i++) {
        struct rules_msg_field *fl = rules_msg_field(m, i);
        if (!field_is(fl, "Return-Path"))
            continue;
        rules_msg_field_addrs(m, i);
        if (fl->naddrs > 0) {
            *len = strlen(fl->addrs[0]);
            return fl->addrs[0];
        }
        return NULL;
    }
    return NULL;
}

/* SpamAssassin's relay chain, built on the first rule that reads it. */
static const struct sa_relays *relays_of(struct rules_tx *tx, struct rules_msg *m,
                                         const struct rules_facts *facts)
{
    rules_msg_set_relay_ctx(m, tx->r->sa_relay_conf, facts, sa_relays_free);
    const struct sa_relays *rl = sa_relays_of(m);
    if (rl == NULL)
        tx->nomem = true;
    return rl;
}

/* Runs the rule over every value of its content target until one matches. */
static void match_content(struct matcher *mt, struct rules_msg *m, const struct rules_facts *facts)
{
    const struct rule *rule = mt->rule;
    size_t len, n;
    const char *s;
    const size_t *ends;
    switch (rule->target) {
    case T_SA_BODY:
        s = rules_msg_sa_body(m, &len, &ends, &n);
        /* the first element is the Subject line */
        elements(mt, s, ends, n, rule->sa_nosubject ? 1 : 0);
        return;
    case T_SA_RAWBODY:
        s = rules_msg_sa_rawbody(m, &len, &ends, &n);
        elements(mt, s, ends, n, 0);
        return;
    case T_SA_URI:
        n = rules_msg_sa_uri_count(m);
        for (size_t i = 0; i < n; i++) {
            s = rules_msg_sa_uri(m, i);
            if (value(mt, s, strlen(s)))
                return;
        }
        return;
    case T_SA_ENVFROM:
        s = envelope_from(m, facts, &len);
        if (rule->match == M_EXISTS) {
            mt->matched = s != NULL;
            return;
        }
        if (s == NULL) {
            s = rule->sa_unset ? rule->sa_unset : "";
            len = strlen(s);
        }
        value(mt, s, len);
        return;
    case T_SA_MIMEHEADER:
        n = rules_msg_mime_field_count(m);
        for (size_t i = 0; i < n; i++) {
            const char *name = rules_msg_mime_field(m, i, rule->hmode == HM_RAW, &s, &len);
            if (strcasecmp(name, rule->header) != 0)
                continue;
            if (rule->match == M_EXISTS) {
                mt->matched = true;
                return;
            }
            if (value(mt, s, len))
                return;
        }
        return;
    case T_HEADER:
        n = rules_msg_field_count(m);
        for (size_t i = 0; i < n; i++) {
            struct rules_msg_field *f = rules_msg_field(m, i);
            if (!field_is(f, rule->header))
                continue;
            if (rule->match == M_EXISTS) {
                mt->matched = true;
                return;
            }
            if (rule->hmode == HM_DECODED) {
                s = rules_msg_field_decoded(m, i);
                if (value(mt, s, strlen(s)))
                    return;
            } else if (rule->hmode == HM_RAW) {
                s = f->raw;
                len = f->raw_len;
                while (len > 0 && (*s == ' ' || *s == '\t'))
                    s++, len--;
                if (try_value(mt, s, len))
                    return;
            } else {
                rules_msg_field_addrs(m, i);
                char **v = rule->hmode == HM_ADDR ? f->addrs : f->names;
                size_t nv = rule->hmode == HM_ADDR ? f->naddrs : f->nnames;
                for (size_t k = 0; k < nv; k++)
                    if (try_value(mt, v[k], strlen(v[k])))
                        return;
            }
        }
        return;
    case T_SA_HEADER:
        s = sa_header_value(mt->tx, rule, m, &len);
        if (s == NULL && mt->tx->nomem)
            return;
        if (s == NULL) {
            if (rule->match == M_EXISTS)
                return;
            s = rule->sa_unset ? rule->sa_unset : "";
            len = strlen(s);
        } else if (rule->match == M_EXISTS) {
            mt->matched = true;
            return;
        }
        value(mt, s, len);
        return;
    case T_HEADERS:
        s = rules_msg_all_headers(m, rule->hmode == HM_RAW, &len);
        value(mt, s, len);
        return;
    case T_BODY:
        s = rules_msg_body(m, &len);
        value(mt, s, len);
        return;
    case T_RAWBODY:
        s = rules_msg_rawbody(m, &len);
        value(mt, s, len);
        return;
    case T_FULL:
        s = rules_msg_full(m, &len);
        value(mt, s, len);
        return;
    case T_URI:
        n = rules_msg_uri_count(m);
        for (size_t i = 0; i < n; i++) {
            s = rules_msg_uri(m, i);
            if (value(mt, s, strlen(s)))
                return;
        }
        return;
    case T_ATTACH_NAME:
    case T_ATTACH_TYPE:
        n = rules_msg_part_count(m);
        for (size_t i = 0; i < n; i++) {
            s = rule->target == T_ATTACH_NAME ? rules_msg_part_name(m, i)
                                              : rules_msg_part_type(m, i);
            if (s != NULL && try_value(mt, s, strlen(s)))
                return;
        }
        return;
    case T_SA_RELAYS: {
        const struct sa_relays *rl = relays_of(mt->tx, m, facts);
        if (rl == NULL)
            return;
        if (rule->match == M_EXISTS) {
            mt->matched = true;
            return;
        }
        if (rule->sa_relays_list >= SA_RL__COUNT) {
            /* ALL-TRUSTED and its kin: built for the rule, rarely used */
            char *all = sa_relays_all(m, rl, rule->sa_relays_list - SA_RL__COUNT, &len);
            if (all == NULL) {
                mt->tx->nomem = true;
                return;
            }
            /* a hit's text points into what was matched: the tx keeps it */
            size_t kept = 0;
            bool ok = join_add(mt->tx, &kept, all, len);
            free(all);
            if (ok)
                value(mt, mt->tx->join, kept);
            return;
        }
        s = rl->str[rule->sa_relays_list];
        value(mt, s, strlen(s));
        return;
    }
    case T_SA_EVAL: {
        rules_msg_set_envelope_from(m, envelope_from(m, facts, &len));
        rules_msg_set_relay_ctx(m, mt->tx->r->sa_relay_conf, facts, sa_relays_free);
        int rc = sa_eval_run(rule->sa_call, m);
        if (rc < 0)
            mt->tx->nomem = true;
        mt->matched = rc == 1;
        return;
    }
    case T_SIZE:
        mt->matched = rules_size_cmp(rule->size_op, rules_msg_size(m), rule->size_val);
        return;
    default:
        return;
    }
}

static const char *envelope_value(const struct rule *rule, const struct rules_facts *f)
{
    const char *v = NULL;
    switch (rule->target) {
    case T_CLIENT_ADDR:
        v = f->client_addr;
        break;
    case T_CLIENT_NAME:
        v = f->client_name ? f->client_name : "unknown";
        break;
    case T_HELO:
        v = f->helo;
        break;
    case T_MAIL_FROM:
        v = f->mail_from;
        break;
    case T_RCPT_TO:
        v = f->rcpt;
        break;
    default:
        break;
    }
    return v ? v : "";
}

static bool symbol_present(const struct rules_facts *f, const char *name)
{
    for (size_t i = 0; i < f->nsymbols; i++)
        if (f->symbols[i].name != NULL && strcmp(f->symbols[i].name, name) == 0)
            return true;
    return false;
}

static double symbols_score(const struct rules_facts *f)
{
    double s = 0;
    for (size_t i = 0; i < f->nsymbols; i++)
        s += f->symbols[i].score;
    return s;
}

static bool meta_value(struct rules_tx *tx, const struct rule *rule, enum rules_stage stage,
                       const struct rules_facts *f)
{
    double *v = tx->scratch;
    for (size_t k = 0; k < rule->nmeta; k++) {
        const struct meta_node *nd = &rule->meta[k];
        double a = nd->a >= 0 ? v[nd->a] : 0, b = nd->b >= 0 ? v[nd->b] : 0;
        switch (nd->op) {
        case MN_REF: {
            const struct rule *dep = &tx->r->v[nd->ref];
            bool per_rcpt = stage == RULES_STAGE_RCPT && dep->stage == RULES_STAGE_RCPT;
            if (dep->maxhits > 0 && !per_rcpt)
                v[k] = tx->count[nd->ref];
            else
                v[k] = per_rcpt ? tx->cur[nd->ref] : tx->hit[nd->ref];
            break;
        }
        case MN_SYM:
            v[k] = symbol_present(f, nd->name);
            break;
        case MN_NUM:
            v[k] = nd->num;
            break;
        case MN_NOT:
            v[k] = a == 0;
            break;
        case MN_AND:
            v[k] = a != 0 && b != 0;
            break;
        case MN_OR:
            v[k] = a != 0 || b != 0;
            break;
        case MN_PAND: /* Perl: the first false operand, else the last */
            v[k] = a == 0 ? a : b;
            break;
        case MN_POR: /* Perl: the first true operand, else the last */
            v[k] = a != 0 ? a : b;
            break;
        case MN_ADD:
            v[k] = a + b;
            break;
        case MN_SUB:
            v[k] = a - b;
            break;
        case MN_MUL:
            v[k] = a * b;
            break;
        case MN_DIV: /* Perl dies on a division by zero: SpamAssassin's meta is then false */
            v[k] = b != 0 ? a / b : 0;
            break;
        case MN_NEG:
            v[k] = -a;
            break;
        case MN_LT:
            v[k] = a < b;
            break;
        case MN_LE:
            v[k] = a <= b;
            break;
        case MN_GT:
            v[k] = a > b;
            break;
        case MN_GE:
            v[k] = a >= b;
            break;
        case MN_EQ:
            v[k] = a == b;
            break;
        case MN_NE:
            v[k] = a != b;
            break;
        }
    }
    return rule->meta_root >= 0 && v[rule->meta_root] != 0;
}

static uint64_t elapsed_us(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t us =
        (int64_t)(now.tv_sec - since->tv_sec) * 1000000 + (now.tv_nsec - since->tv_nsec) / 1000;
    return us > 0 ? (uint64_t)us : 0;
}

static void record_hit(struct rules_tx *tx, size_t idx, const char *text, size_t len,
                       const struct rules_facts *f, enum rules_stage stage)
{
    const struct rule *rule = &tx->r->v[idx];
    if (!hits_grow(tx))
        return;
    struct rules_hit h = {.rule = rule->name,
                          .target = rule->target_desc,
                          .stage = stage,
                          .score = rule->score,
                          .shadow = rule->shadow,
                          .counted = true};
    if (text != NULL) {
        if (len > RULES_HIT_TEXT_MAX)
            len = RULES_HIT_TEXT_MAX;
        h.text = util_memdup(text, len);
        h.text_len = len;
    }
    if (stage == RULES_STAGE_RCPT && f->rcpt != NULL)
        h.rcpt = util_strdup(f->rcpt);
    if ((text != NULL && h.text == NULL) ||
        (stage == RULES_STAGE_RCPT && f->rcpt != NULL && h.rcpt == NULL)) {
        hit_free(&h);
        tx->nomem = true;
        return;
    }
    tx->hidx[tx->nhits] = idx;
    tx->hits[tx->nhits++] = h;
}

/* False when the prefilter shows the rule's text lacks its literal(s): the
 * pattern cannot match.  The text is scanned once per message. */
static bool prefilter_pass(struct rules_tx *tx, const struct rule *rule, struct rules_msg *m)
{
    int slot = rule->pf_slot;
    if (!tx->pf_done[slot]) {
        size_t len;
        const char *s;
        switch (slot) {
        case 0:
            s = rules_msg_body(m, &len);
            break;
        case 1:
            s = rules_msg_rawbody(m, &len);
            break;
        case 2:
            s = rules_msg_full(m, &len);
            break;
        case 5:
        case 6:
        case RULES_PF_SKELETON: {
            const size_t *ends;
            size_t nends;
            s = slot == 6 ? rules_msg_sa_rawbody(m, &len, &ends, &nends)
                          : rules_msg_sa_body(m, &len, &ends, &nends);
            break;
        }
        default:
            s = rules_msg_all_headers(m, slot == 4, &len);
            break;
        }
        if (slot == RULES_PF_SKELETON)
            rules_prefilter_scan_skeleton(tx->r->pf[slot], s, len, tx->seen[slot]);
        else
            rules_prefilter_scan(tx->r->pf[slot], s, len, tx->seen[slot]);
        tx->pf_done[slot] = true;
    }
    for (uint32_t c = 0; c < rule->pf_nclause; c++)
        if (!tx->seen[slot][rule->pf_first + c])
            return false;
    return true;
}

/* Evaluates rule idx at stage; true on a hit (recorded). */
static bool eval_rule(struct rules_tx *tx, size_t idx, enum rules_stage stage,
                      const struct rules_facts *f, struct rules_msg *m)
{
    const struct rule *rule = &tx->r->v[idx];
    if (rule->disabled) /* score NAME 0 */
        return false;
    if (rule->match == M_META) {
        if (!meta_value(tx, rule, stage, f))
            return false;
        record_hit(tx, idx, NULL, 0, f, stage);
        return true;
    }
    if (stage == RULES_STAGE_CONTENT && tx->r->lim.budget_us > 0) {
        if (!tx->budget_spent && elapsed_us(&tx->started) > tx->r->lim.budget_us) {
            tx->budget_spent = true;
            add_event(tx, rule->name, "budget");
        }
        if (tx->budget_spent)
            return false;
    }
    struct timespec t0;
    if (tx->prof != NULL)
        clock_gettime(CLOCK_MONOTONIC, &t0);
    struct matcher mt = {.tx = tx, .rule = rule, .md = rule->nsa_caps ? tx->md_cap : tx->md};
    struct rule filled;
    struct sa_capture_code *code = NULL;
    if (rule->nsa_tmpl > 0) {
        /* a tag it reads has no value: SpamAssassin does not run it (no
         * hit, negated or not) */
        if ((code = template_re(tx, idx)) == NULL)
            return false;
        filled = *rule;
        filled.re = (pcre2_code *)sa_capture_code_re(code);
        mt.rule = &filled;
    }
    if (stage == RULES_STAGE_CONTENT && rule->pf_slot >= 0 && !prefilter_pass(tx, rule, m)) {
        /* cannot match: a miss (a hit when negated) without PCRE2 */
    } else if (stage == RULES_STAGE_CONTENT) {
        match_content(&mt, m, f);
    } else {
        const char *v = envelope_value(rule, f);
        try_value(&mt, v, strlen(v));
    }
    if (tx->prof != NULL) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        tx->prof[idx] +=
            (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec));
    }
    sa_capture_code_release(code);
    if (rule->nsa_caps > 0)
        capture_commit(tx, rule, mt.captured && !mt.failed);
    if (mt.failed) {
        values_free(mt.more, mt.nmore);
        add_event(tx, rule->name, "match limit");
        return false;
    }
    bool hit = rule->negate ? !mt.matched : mt.matched;
    if (rule->maxhits > 0)
        tx->count[idx] = rule->negate ? hit : mt.count;
    if (!hit) {
        values_free(mt.more, mt.nmore);
        return false;
    }
    size_t before = tx->nhits;
    record_hit(tx, idx, rule->negate ? NULL : mt.text, mt.text_len, f, stage);
    if (tx->nhits > before && !rule->negate) {
        tx->hits[before].more = mt.more;
        tx->hits[before].nmore = mt.nmore;
    } else {
        values_free(mt.more, mt.nmore);
    }
    return true;
}

/* Forgets what stage and the stages after it found (a new HELO, a new MAIL). */
static void forget_from(struct rules_tx *tx, enum rules_stage stage)
{
    size_t k = 0;
    for (size_t i = 0; i < tx->nhits; i++) {
        if (tx->hits[i].stage >= stage) {
            /* a multi-stage meta may have hit at a stage after its own */
            tx->hit[tx->hidx[i]] = 0;
            hit_free(&tx->hits[i]);
        } else {
            tx->hidx[k] = tx->hidx[i];
            tx->hits[k++] = tx->hits[i];
        }
    }
    tx->nhits = k;
    for (size_t i = 0; i < tx->r->n; i++)
        if (tx->r->v[i].stage >= stage)
            tx->hit[i] = 0;
    if (tx->accepted_stage >= (int)stage)
        tx->accepted_stage = -1;
}

static void set_action(struct rules_outcome *out, const struct rule *rule)
{
    switch (rule->action) {
    case A_ACCEPT:
        out->verdict = RULES_ACCEPT;
        break;
    case A_REJECT:
        out->verdict = RULES_REJECT;
        out->reply = rule->reply ? rule->reply : "550 5.7.1 Rejected by policy";
        break;
    case A_TEMPFAIL:
        out->verdict = RULES_TEMPFAIL;
        out->reply = rule->reply ? rule->reply : "451 4.7.1 Try again later";
        break;
    case A_DISCARD:
        out->verdict = RULES_DISCARD;
        break;
    case A_QUARANTINE:
        out->verdict = RULES_QUARANTINE;
        out->reason = rule->reason ? rule->reason : rule->name;
        break;
    case A_NONE:
        return;
    }
    out->decided_by = rule->name;
}

/* The strongest action among hits[from..) that may act at stage. */
static const struct rule *strongest(const struct rules_tx *tx, size_t from, bool envelope)
{
    const struct rule *best = NULL;
    for (size_t i = from; i < tx->nhits; i++) {
        const struct rules_hit *h = &tx->hits[i];
        if (h->shadow || !h->counted)
            continue;
        const struct rule *rule = &tx->r->v[tx->hidx[i]];
        if (rule->action == A_NONE)
            continue;
        if (envelope && rule->action != A_ACCEPT && rule->action != A_REJECT &&
            rule->action != A_TEMPFAIL)
            continue;
        if (best == NULL || rule->action > best->action)
            best = rule;
    }
    return best;
}

static double total_score(const struct rules_tx *tx)
{
    double s = 0;
    for (size_t i = 0; i < tx->r->n; i++)
        if (tx->hit[i] && !tx->r->v[i].shadow)
            s += tx->r->v[i].score;
    return s;
}

static void add_header_out(struct rules_tx *tx, const char *name, const char *value)
{
    for (size_t i = 0; i < tx->nheaders; i++)
        if (strcasecmp(tx->headers[i].name, name) == 0 && strcmp(tx->headers[i].value, value) == 0)
            return;
    char *v = util_strdup(value);
    struct rules_header *hs =
        v ? util_reallocarray(tx->headers, tx->nheaders + 1, sizeof(*tx->headers)) : NULL;
    if (hs == NULL) {
        free(v);
        tx->nomem = true;
        return;
    }
    tx->headers = hs;
    tx->headers[tx->nheaders++] = (struct rules_header){name, v};
}

/* Content stage: actions of all counted hits, then thresholds, then the report. */
static void conclude(struct rules_tx *tx, const struct rules_facts *f, struct rules_msg *msg)
{
    struct rules_outcome *out = &tx->out;
    const struct rules *r = tx->r;
    out->score = total_score(tx) + symbols_score(f);
    out->required = rules_required(r);
    out->spam = out->score >= out->required;

    for (size_t i = 0; i < tx->nhits; i++) {
        const struct rules_hit *h = &tx->hits[i];
        if (h->shadow || !h->counted)
            continue;
        const struct rule *rule = &r->v[tx->hidx[i]];
        for (size_t k = 0; k < rule->nadd; k++)
            add_header_out(tx, rule->adds[k].name, rule->adds[k].value);
    }
    if (tx->accepted_stage >= 0) {
        out->verdict = RULES_ACCEPT;
        out->decided_by = tx->accepted_by;
    } else {
        const struct rule *best = strongest(tx, 0, false);
        if (best != NULL) {
            set_action(out, best);
        } else if (r->th[TH_REJECT].set && out->score >= r->th[TH_REJECT].score) {
            out->verdict = RULES_REJECT;
            out->reply = r->th[TH_REJECT].reply ? r->th[TH_REJECT].reply
                                                : "550 5.7.1 Message content rejected";
            out->decided_by = "threshold reject";
        } else if (r->th[TH_QUARANTINE].set && out->score >= r->th[TH_QUARANTINE].score) {
            out->verdict = RULES_QUARANTINE;
            out->reason = r->th[TH_QUARANTINE].reason ? r->th[TH_QUARANTINE].reason : "spam score";
            out->decided_by = "threshold quarantine";
        }
        const struct threshold *tag = &r->th[TH_TAG];
        if (tag->set && out->score >= tag->score && out->verdict != RULES_ACCEPT) {
            out->tagged = true;
            for (size_t k = 0; k < tag->nadd; k++)
                add_header_out(tx, tag->adds[k].name, tag->adds[k].value);
            out->subject_prefix = tag->subject_prefix;
            if (out->decided_by == NULL)
                out->decided_by = "threshold tag";
        }
    }
    out->headers = tx->headers;
    out->nheaders = tx->nheaders;
    if (rules_report_build(r, tx->hit, f->symbols, f->nsymbols, out, &tx->status, &tx->score,
                           &tx->level) != 0)
        tx->nomem = true;
    out->report_status = tx->status;
    out->report_score = tx->score;
    out->report_level = tx->level;
    /* SpamAssassin's files without any add_header line (a folder of rules
     * alone): today's fields rather than none at all */
    if (r->sa_hdr != NULL && r->sa_hdr->fields_set) {
        char date[64];
        time_t now = time(NULL);
        struct tm tm;
        /* Util::time_to_rfc822_date */
        if (localtime_r(&now, &tm) == NULL ||
            strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
            date[0] = '\0';
        /* _RELAYSTRUSTED_ ...: the chain the relay rules read */
        const char *relays[SA_RL__COUNT] = {0};
        const struct sa_relays *rl = msg != NULL ? relays_of(tx, msg, f) : NULL;
        for (int k = 0; rl != NULL && k < SA_RL__COUNT; k++)
            relays[k] = rl->str[k];
        if (rules_report_sa(r, tx->hit, f->symbols, f->nsymbols, out, relays,
                            f->host_name ? f->host_name : f->local_name ? f->local_name : "localhost", date, &tx->report,
                            &tx->nreport) != 0)
            tx->nomem = true;
    } else if (!tx->nomem) {
        const char *names[] = {"X-Spam-Status", "X-Spam-Score", "X-Spam-Level"};
        const char *vals[] = {tx->status, tx->score, tx->level};
        tx->report = util_calloc(3, sizeof(*tx->report));
        for (size_t i = 0; i < 3 && tx->report != NULL && !tx->nomem; i++) {
            if (vals[i] == NULL)
                continue;
            char *n = util_strdup(names[i]), *v = util_strdup(vals[i]);
            if (n == NULL || v == NULL) {
                free(n);
                free(v);
                tx->nomem = true;
                break;
            }
            tx->report[tx->nreport++] = (struct rules_header){n, v};
        }
        if (tx->report == NULL)
            tx->nomem = true;
    }
    out->report = tx->report;
    out->nreport = tx->nreport;
}

/* The outcome, or NULL when memory ran out on the way: a hit or a part of
 * the message may be missing, so no verdict can be trusted. */
static const struct rules_outcome *eval_result(struct rules_tx *tx, struct rules_msg *msg)
{
    if (tx->nomem || (msg != NULL && rules_msg_nomem(msg))) {
        outcome_clear(tx);
        return NULL;
    }
    return &tx->out;
}

const struct rules_outcome *rules_tx_eval(struct rules_tx *tx, enum rules_stage stage,
                                          const struct rules_facts *facts, struct rules_msg *msg)
{
    static const struct rules_facts none = {0};
    const struct rules *r = tx->r;
    if ((unsigned)stage >= RULES_STAGE__COUNT)
        return NULL;
    if (facts == NULL)
        facts = &none;
    outcome_clear(tx);
    tx->nomem = false;
    if (stage != RULES_STAGE_RCPT)
        forget_from(tx, stage);
    size_t first = tx->nhits;

    if (tx->accepted_stage >= 0) {
        tx->out.verdict = RULES_ACCEPT;
        tx->out.decided_by = tx->accepted_by;
        tx->out.score = total_score(tx) + symbols_score(facts);
        tx->out.required = rules_required(r);
        if (stage == RULES_STAGE_CONTENT)
            conclude(tx, facts, msg);
        return eval_result(tx, msg);
    }
    if (stage == RULES_STAGE_CONTENT && msg == NULL)
        return NULL;
    if (stage == RULES_STAGE_CONTENT && r->need_sa) {
        rules_msg_want_sa(msg); /* one MIME pass for both models */
        rules_msg_set_sa_redirs(msg, r->sa_redirs);
    }

    clock_gettime(CLOCK_MONOTONIC, &tx->started);
    tx->budget_spent = false;
    if (stage == RULES_STAGE_RCPT)
        memset(tx->cur, 0, r->n);
    if (stage == RULES_STAGE_CONTENT) {
        for (int k = 0; k < RULES_PF_SLOTS; k++)
            memset(tx->seen[k], 0, r->pf_nclause[k]);
        memset(tx->pf_done, 0, sizeof(tx->pf_done));
        memset(tx->count, 0, r->n * sizeof(*tx->count));
        for (size_t i = 0; tx->tags != NULL && i < r->nsa_tags; i++)
            tag_clear(&tx->tags[i]); /* a message's tags are its own */
    }
    for (size_t k = 0; k < r->norder[stage]; k++) {
        size_t idx = r->order[stage][k];
        if (r->v[idx].multi_stage && tx->hit[idx])
            continue; /* it hit at an earlier stage: once is enough */
        bool hit = eval_rule(tx, idx, stage, facts, msg);
        if (stage == RULES_STAGE_RCPT)
            tx->cur[idx] = hit;
        else if (hit)
            tx->hit[idx] = 1;
    }
    tx->out.budget_exceeded = tx->budget_spent;

    if (stage == RULES_STAGE_CONTENT) {
        conclude(tx, facts, msg);
    } else {
        const struct rule *best = strongest(tx, first, true);
        if (best != NULL) {
            set_action(&tx->out, best);
            if (best->action == A_ACCEPT) {
                tx->accepted_stage = (int)stage;
                tx->accepted_by = best->name;
            }
        }
        if (stage == RULES_STAGE_RCPT) {
            /* a recipient whose evaluation ran out of memory is refused too (451) */
            bool refused =
                tx->out.verdict == RULES_REJECT || tx->out.verdict == RULES_TEMPFAIL || tx->nomem;
            for (size_t i = first; i < tx->nhits; i++)
                tx->hits[i].counted = !refused;
            if (!refused)
                for (size_t i = 0; i < r->n; i++)
                    tx->hit[i] |= tx->cur[i];
        }
        tx->out.score = total_score(tx) + symbols_score(facts);
        tx->out.required = rules_required(r);
    }
    tx->out.hits = tx->hits != NULL ? tx->hits + first : NULL;
    tx->out.nhits = tx->nhits - first;
    tx->out.events = tx->events;
    tx->out.nevents = tx->nevents;
    return eval_result(tx, msg);
}
