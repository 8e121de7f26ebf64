/*
 * rules_plugin - smtpgate's "rules" filter plugin: the rule language of
 * rules/ applied to every connection and transaction.
 *
 * Configuration (see rules/README.md):
 *
 *   plugin rules {
 *       path  = "/usr/local/lib/smtpgate/plugins/rules.so"
 *       files = {"/usr/local/etc/smtpgate/default.rules"}
 *       report_headers = true        X-Spam-Status, X-Spam-Score, X-Spam-Level; with
 *                                    spamassassin, the fields of its add_header lines
 *       strip_report_headers = true  remove those (and X-Spam-Flag) the client sent
 *       max_scan_size = 2097152      larger messages: header and size rules only
 *       budget_ms = 500              content matching per message
 *       match_limit = 1000000        PCRE2 match limit per match
 *       depth_limit = 10000          PCRE2 depth limit per match
 *       spamassassin = false         also SpamAssassin's own rule files
 *       spamassassin_dirs = {...}    their folders (default: SpamAssassin's own)
 *       spamassassin_local = {...}   the admin's own .cf files, read last
 *       spamassassin_network = false score set of network tests on
 *       spamassassin_dns_servers = "h:p" check_rbl* queries' servers (unset: system's)
 *       spamassassin_dns_timeout = 5 seconds their answers are waited for
 *   }
 *
 * With spamassassin, `files` may be empty.  The load logs how many of
 * SpamAssassin's rules loaded and each reason rules were skipped, with its
 * count (rules.h, rules_load_sa): none is dropped without a word.
 *
 * init and reload load and compile the files (errors, and failing rule
 * examples, go to host->config_error one by one: the configuration is
 * refused and the running one, with its rules, stays).  Each instance owns
 * one compiled rule set; every connection takes a reference to it at its
 * first callback and each transaction another, so a session keeps its rules
 * until it ends whatever reload happens meanwhile.
 *
 * Stages: connect (client_addr, client_name), helo, mail and rcpt (each
 * recipient alone) act at once with accept, reject and tempfail; end of
 * message evaluates the content rules, the thresholds and the report, and
 * edits the message.  eom is a blocking stage: matching may take up to the
 * budget, so it runs on the host's worker pool, not on an event loop.
 *
 * Logging: one line per refusing envelope stage, one line per message with
 * the score, the verdict and the rules that hit (shadow hits apart); a
 * warning for each match that hit a PCRE2 limit and for a spent budget.
 * Counters: messages, hits, shadow_hits, rule_<name>, verdict_<verdict>,
 * tagged, limit_events, budget_exceeded, scan_skipped_size, out_of_memory.
 *
 * Out of memory (rules.h, util/alloc.h): a stage whose evaluation fails
 * answers tempfail with "451 4.3.0 Error: out of memory", logged; a load
 * that fails refuses the configuration.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/rules.h"
#include "rules/sa_dns_resolve.h"
#include "rules/sa_dnsbl.h"
#include "smtpgate/plugin.h"

#define DEFAULT_MAX_SCAN  "2097152"
#define LOG_TEXT_MAX      60
#define CONFIG_ERRORS_MAX 50

struct rp_instance {
    const struct sg_host *host;
    char *name; /* the instance's: its own symbols are not the others' */
    struct rules *rules;
    bool report_headers;
    bool strip_report_headers;
    uint64_t max_scan_size;
    /* SpamAssassin's relay blocklists (network tests on): where to ask,
     * for how long; NULL servers: the network tests are off */
    char *dns_servers;
    double dns_timeout;
};

struct rp_conn {
    struct rules_tx *tx;
};

/* Out of memory anywhere in the rules: the message or recipient is
 * refused for now, as the core does, and the client keeps its copy. */
#define RP_NOMEM_REPLY "451 4.3.0 Error: out of memory"

static enum sg_verdict rp_nomem(struct sg_ctx *ctx, const struct sg_host *h, const char *where)
{
    h->log(ctx, SG_LOG_ERR, "rules: out of memory at %s", where);
    h->set_reply(ctx, RP_NOMEM_REPLY);
    h->counter_add(ctx, "out_of_memory", 1);
    return SG_TEMPFAIL;
}

static const struct sg_option rp_options[] = {
    {"files", SG_OPT_LIST, NULL, NULL, 0, 0},
    {"report_headers", SG_OPT_BOOL, "true", NULL, 0, 0},
    {"strip_report_headers", SG_OPT_BOOL, "true", NULL, 0, 0},
    {"max_scan_size", SG_OPT_INT, DEFAULT_MAX_SCAN, NULL, 1, INFINITY},
    {"budget_ms", SG_OPT_INT, "500", NULL, 0, 600000}, /* 0: no budget */
    {"match_limit", SG_OPT_INT, "1000000", NULL, 1, INFINITY},
    {"depth_limit", SG_OPT_INT, "10000", NULL, 1, INFINITY},
    {"spamassassin", SG_OPT_BOOL, "false", NULL, 0, 0},
    {"spamassassin_dirs", SG_OPT_LIST, NULL, NULL, 0, 0},
    {"spamassassin_local", SG_OPT_LIST, NULL, NULL, 0, 0},
    {"spamassassin_network", SG_OPT_BOOL, "false", NULL, 0, 0},
    {"spamassassin_dns_servers", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"spamassassin_dns_timeout", SG_OPT_INT, "5", NULL, 1, 15},
    {NULL, 0, NULL, NULL, 0, 0},
};

static uint32_t clamp_u32(long long v)
{
    return v <= 0 ? 1 : v > 0xffffffffll ? 0xffffffffu : (uint32_t)v;
}

/* A list option's items, calloc'ed (NULL when empty or out of memory: *bad). */
static const char **list_items(const struct sg_host *host, const struct sg_section *sec,
                               const char *key, size_t *n, bool *bad)
{
    *n = host->opt_list_size(sec, key);
    if (*n == 0)
        return NULL;
    const char **v = calloc(*n, sizeof(*v));
    if (v == NULL) {
        *bad = true;
        return NULL;
    }
    for (size_t i = 0; i < *n; i++)
        v[i] = host->opt_list_item(sec, key, i);
    return v;
}

/* The eval functions the rules name, on one line: NAME (count), ... */
static void log_evals(const struct sg_host *host, const struct sg_section *sec, const char *which,
                      const struct rules_sa_count *v, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(v[i].what) + 32;
    char *line = n > 0 ? malloc(len) : NULL;
    if (line == NULL)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k +=
            (size_t)snprintf(line + k, len - k, "%s%s (%zu)", i ? ", " : "", v[i].what, v[i].count);
    host->log(NULL, SG_LOG_INFO, "plugin %s: spamassassin eval functions %s: %s",
              host->section_name(sec), which, line);
    free(line);
}

/* What was made of SpamAssassin's files, in the log: the counts, then each
 * reason of the rules skipped, and the files' warnings. */
static void log_sa_report(const struct sg_host *host, const struct sg_section *sec,
                          const struct rules_sa_report *rep)
{
    size_t skipped = 0;
    for (size_t i = 0; i < rep->nskipped; i++)
        skipped += rep->skipped[i].count;
    host->log(NULL, SG_LOG_INFO,
              "plugin %s: spamassassin %s (score set %d): %zu files, %zu rules defined, "
              "%zu loaded, %zu skipped",
              host->section_name(sec), rep->version ? rep->version : "?", rep->score_set,
              rep->nfiles, rep->defined, rep->loaded, skipped);
    for (size_t i = 0; i < rep->nskipped; i++)
        host->log(NULL, SG_LOG_INFO, "plugin %s: spamassassin skipped %zu: %s (%s%s)",
                  host->section_name(sec), rep->skipped[i].count, rep->skipped[i].what,
                  rep->skipped[i].first ? rep->skipped[i].first : "",
                  rep->skipped[i].count > 1 ? ", ..." : "");
    log_evals(host, sec, "implemented", rep->evals_done, rep->nevals_done);
    log_evals(host, sec, "not implemented", rep->evals, rep->nevals);
    for (size_t i = 0; i < rep->warnings.n; i++) {
        char *w = rules_error_format(&rep->warnings.v[i]);
        host->log(NULL, SG_LOG_WARNING, "plugin %s: spamassassin: %s", host->section_name(sec),
                  w ? w : "out of memory");
        free(w);
    }
}

static void rp_fini(void *instance);

static int rp_load(const struct sg_host *host, const struct sg_section *sec, void **instance,
                   const char *how)
{
    bool sa = host->opt_bool(sec, "spamassassin"), bad = false;
    size_t n, ndirs, nlocal;
    const char **paths = list_items(host, sec, "files", &n, &bad);
    const char **dirs = list_items(host, sec, "spamassassin_dirs", &ndirs, &bad);
    const char **local = list_items(host, sec, "spamassassin_local", &nlocal, &bad);
    if (!bad && n == 0 && !sa) {
        host->config_error(sec, "files", "at least one rule file is needed (or spamassassin)");
        free(dirs);
        free(local);
        return -1;
    }
    if (!bad && !sa && (ndirs > 0 || nlocal > 0)) {
        host->config_error(sec, ndirs > 0 ? "spamassassin_dirs" : "spamassassin_local",
                           "needs spamassassin = true");
        free(paths);
        free(dirs);
        free(local);
        return -1;
    }
    struct rp_instance *in = calloc(1, sizeof(*in));
    if (bad || in == NULL) {
        free(paths);
        free(dirs);
        free(local);
        free(in);
        host->config_error(sec, NULL, "out of memory");
        return -1;
    }
    struct rules_sa_opts sa_opts = {.dirs = dirs,
                                    .ndirs = ndirs,
                                    .local = local,
                                    .nlocal = nlocal,
                                    .network = host->opt_bool(sec, "spamassassin_network")};
    struct rules_sa_report rep = {0};
    struct rules_limits lim = {
        .match_limit = clamp_u32(host->opt_int(sec, "match_limit")),
        .depth_limit = clamp_u32(host->opt_int(sec, "depth_limit")),
        .heap_limit_kib = RULES_DEFAULT_HEAP_LIMIT_KIB,
        .budget_us = (uint64_t)host->opt_int(sec, "budget_ms") * 1000,
    };
    struct rules_errors errs = {0};
    int rc = rules_load_sa(paths, n, sa ? &sa_opts : NULL, &lim, &in->rules, &errs, &rep);
    free(paths);
    free(dirs);
    free(local);
    if (rc == 0 && sa)
        log_sa_report(host, sec, &rep);
    rules_sa_report_free(&rep);
    if (rc == 0)
        rules_check_examples(in->rules, &errs);
    if (rc != 0 || errs.n > 0 || errs.nomem) {
        for (size_t i = 0; i < errs.n && i < CONFIG_ERRORS_MAX; i++) {
            char *s = rules_error_format(&errs.v[i]);
            host->config_error(sec, "files", "%s", s ? s : "out of memory");
            free(s);
        }
        if (errs.n > CONFIG_ERRORS_MAX)
            host->config_error(sec, "files", "and %zu more errors", errs.n - CONFIG_ERRORS_MAX);
        if (errs.n == 0)
            host->config_error(sec, "files", "out of memory");
        rules_errors_free(&errs);
        rules_unref(in->rules);
        free(in);
        return -1;
    }
    in->host = host;
    if ((in->name = strdup(host->section_name(sec))) == NULL) {
        host->config_error(sec, NULL, "out of memory");
        rules_unref(in->rules);
        free(in);
        return -1;
    }
    in->report_headers = host->opt_bool(sec, "report_headers");
    in->strip_report_headers = host->opt_bool(sec, "strip_report_headers");
    in->max_scan_size = (uint64_t)host->opt_int(sec, "max_scan_size");
    in->dns_timeout = (double)host->opt_int(sec, "spamassassin_dns_timeout");
    if (sa && host->opt_bool(sec, "spamassassin_network")) {
        const char *ds = host->opt_string(sec, "spamassassin_dns_servers");
        /* the queries are part of the end-of-message call: they must end first */
        if (SG_HAS(host, verdict_timeout) && SG_HAS(host, config_warning) &&
            in->dns_timeout >= host->verdict_timeout(sec))
            host->config_warning(sec, "spamassassin_dns_timeout",
                                 "%.0f s is not below the plugin's timeout (%.0f s): a message "
                                 "whose queries go unanswered gets the failure verdict",
                                 in->dns_timeout, host->verdict_timeout(sec));
        if ((in->dns_servers = strdup(ds != NULL ? ds : "")) == NULL) {
            host->config_error(sec, NULL, "out of memory");
            rp_fini(in);
            return -1;
        }
    }
    host->log(NULL, SG_LOG_INFO, "plugin %s: %s %zu rules from %zu files", host->section_name(sec),
              how, rules_count(in->rules), rules_file_count(in->rules));
    *instance = in;
    return 0;
}

static int rp_init(const struct sg_host *host, const struct sg_section *sec, void **instance)
{
    return rp_load(host, sec, instance, "loaded");
}

/* The previous instance keeps its own rules for the sessions still using
 * it; the files are read and compiled anew. */
static int rp_reload(const struct sg_host *host, const struct sg_section *sec, void *previous,
                     void **instance)
{
    (void)previous;
    return rp_load(host, sec, instance, "reloaded");
}

static void rp_fini(void *instance)
{
    struct rp_instance *in = instance;
    if (in == NULL)
        return;
    rules_unref(in->rules);
    free(in->name);
    free(in->dns_servers);
    free(in);
}

static void conn_free(void *p)
{
    struct rp_conn *c = p;
    if (c == NULL)
        return;
    rules_tx_free(c->tx);
    free(c);
}

static void tx_free(void *p)
{
    rules_tx_free(p);
}

static struct rp_conn *conn_state(struct sg_ctx *ctx, struct rp_instance *in)
{
    const struct sg_host *h = in->host;
    struct rp_conn *c = h->conn_data(ctx);
    if (c != NULL)
        return c;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->tx = rules_tx_new(in->rules);
    if (c->tx == NULL) {
        free(c);
        return NULL;
    }
    h->set_conn_data(ctx, c, conn_free);
    return c;
}

static struct rules_tx *msg_state(struct sg_ctx *ctx, struct rp_instance *in)
{
    const struct sg_host *h = in->host;
    struct rules_tx *tx = h->msg_data(ctx);
    if (tx != NULL)
        return tx;
    struct rp_conn *c = conn_state(ctx, in);
    if (c == NULL)
        return NULL;
    tx = rules_tx_fork(c->tx);
    if (tx == NULL)
        return NULL;
    h->set_msg_data(ctx, tx, tx_free);
    return tx;
}

/* The symbols the other plugins added so far, for symbol(NAME) and the
 * score (a host without symbols: none).  The array is the caller's to free;
 * names are the host's, valid during the callback. */
static struct rules_symbol *symbols_of(struct sg_ctx *ctx, const struct rp_instance *in, size_t *n)
{
    const struct sg_host *h = in->host;
    *n = 0;
    if (!SG_HAS(h, symbol_get))
        return NULL;
    size_t count = h->symbol_count(ctx);
    struct rules_symbol *v = count ? calloc(count, sizeof(*v)) : NULL;
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        const struct sg_symbol *sym = h->symbol_get(ctx, i);
        if (sym == NULL || (sym->plugin != NULL && strcmp(sym->plugin, in->name) == 0))
            continue;
        v[(*n)++] = (struct rules_symbol){sym->name, sym->score};
    }
    return v;
}

static void facts_of(struct sg_ctx *ctx, const struct sg_host *h, struct rules_facts *f)
{
    const struct sg_conn_info *ci = h->conn(ctx);
    const struct sg_envelope *env = h->envelope(ctx);
    *f = (struct rules_facts){0};
    if (ci != NULL) {
        f->client_addr = ci->client_addr;
        f->client_name = ci->client_name;
        f->helo = ci->helo;
        /* SpamAssassin's relay chain: this session is its newest relay */
        if (SG_HAS(ci, login))
            f->auth_login = ci->login;
        if (SG_HAS(ci, tls))
            f->tls = ci->tls;
        if (SG_HAS(ci, host_name))
            f->local_name = ci->host_name;
    }
    if (env != NULL)
        f->mail_from = env->mail_from;
}

/* "RULE(target)" list of this evaluation's hits, shadow or not. */
static char *hit_list(const struct rules_outcome *o, bool shadow)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    if (f == NULL)
        return NULL;
    bool first = true;
    for (size_t i = 0; i < o->nhits; i++) {
        const struct rules_hit *hit = &o->hits[i];
        if (hit->shadow != shadow)
            continue;
        fprintf(f, "%s%s(%s)", first ? "" : ",", hit->rule, hit->target);
        first = false;
    }
    fclose(f);
    if (first) {
        free(s);
        return NULL;
    }
    return s;
}

static void count_hits(struct sg_ctx *ctx, const struct sg_host *h, const struct rules_outcome *o)
{
    for (size_t i = 0; i < o->nhits; i++) {
        const struct rules_hit *hit = &o->hits[i];
        char name[160];
        size_t k = 0;
        k += (size_t)snprintf(name, sizeof(name), "rule_");
        for (const char *p = hit->rule; *p && k + 1 < sizeof(name); p++)
            name[k++] = (char)tolower((unsigned char)*p);
        name[k] = '\0';
        h->counter_add(ctx, name, 1);
        h->counter_add(ctx, hit->shadow ? "shadow_hits" : "hits", 1);
    }
    for (size_t i = 0; i < o->nevents; i++) {
        const struct rules_event *ev = &o->events[i];
        bool budget = strcmp(ev->what, "budget") == 0;
        h->counter_add(ctx, budget ? "budget_exceeded" : "limit_events", 1);
        if (budget)
            h->log(ctx, SG_LOG_WARNING,
                   "rules: budget spent at rule %s, the rules after it were not evaluated",
                   ev->rule);
        else
            h->log(ctx, SG_LOG_WARNING, "rules: rule %s exceeded the %s, counted as a miss",
                   ev->rule, ev->what);
    }
}

/* The plugin verdict of an outcome, with its reply or reason handed over. */
static enum sg_verdict verdict_of(struct sg_ctx *ctx, const struct sg_host *h,
                                  const struct rules_outcome *o)
{
    switch (o->verdict) {
    case RULES_CONTINUE:
        return SG_CONTINUE;
    case RULES_ACCEPT:
        return SG_ACCEPT;
    case RULES_REJECT:
        if (o->reply != NULL)
            h->set_reply(ctx, o->reply);
        return SG_REJECT;
    case RULES_TEMPFAIL:
        if (o->reply != NULL)
            h->set_reply(ctx, o->reply);
        return SG_TEMPFAIL;
    case RULES_DISCARD:
        return SG_DISCARD;
    case RULES_QUARANTINE:
        if (o->reason != NULL)
            h->set_quarantine_reason(ctx, o->reason);
        return SG_QUARANTINE;
    }
    return SG_CONTINUE;
}

static enum sg_verdict envelope_stage(struct sg_ctx *ctx, struct rp_instance *in,
                                      struct rules_tx *tx, enum rules_stage stage,
                                      const struct rules_facts *f)
{
    const struct sg_host *h = in->host;
    if (tx == NULL)
        return rp_nomem(ctx, h, rules_stage_name(stage));
    struct rules_facts fs = *f;
    struct rules_symbol *syms = symbols_of(ctx, in, &fs.nsymbols);
    fs.symbols = syms;
    const struct rules_outcome *o = rules_tx_eval(tx, stage, &fs, NULL);
    free(syms);
    if (o == NULL)
        return rp_nomem(ctx, h, rules_stage_name(stage));
    count_hits(ctx, h, o);
    if (o->nhits > 0 || o->verdict != RULES_CONTINUE) {
        char *hits = hit_list(o, false), *shadow = hit_list(o, true);
        h->log(ctx, o->verdict == RULES_CONTINUE ? SG_LOG_DEBUG : SG_LOG_INFO,
               "rules: %s%s%s: verdict=%s%s%s hits=%s%s%s", rules_stage_name(stage),
               f->rcpt ? " " : "", f->rcpt ? f->rcpt : "", rules_verdict_name(o->verdict),
               o->decided_by ? " by=" : "", o->decided_by ? o->decided_by : "",
               hits ? hits : "none", shadow ? " shadow=" : "", shadow ? shadow : "");
        free(hits);
        free(shadow);
    }
    return verdict_of(ctx, h, o);
}

static enum sg_verdict rp_connect(struct sg_ctx *ctx, void *instance)
{
    struct rp_instance *in = instance;
    struct rp_conn *c = conn_state(ctx, in);
    struct rules_facts f;
    facts_of(ctx, in->host, &f);
    return envelope_stage(ctx, in, c ? c->tx : NULL, RULES_STAGE_CONNECT, &f);
}

static enum sg_verdict rp_helo(struct sg_ctx *ctx, void *instance)
{
    struct rp_instance *in = instance;
    struct rp_conn *c = conn_state(ctx, in);
    struct rules_facts f;
    facts_of(ctx, in->host, &f);
    return envelope_stage(ctx, in, c ? c->tx : NULL, RULES_STAGE_HELO, &f);
}

static enum sg_verdict rp_mail(struct sg_ctx *ctx, void *instance, const char *arg,
                               const char *params)
{
    (void)params;
    struct rp_instance *in = instance;
    struct rules_facts f;
    facts_of(ctx, in->host, &f);
    f.mail_from = arg ? arg : "";
    return envelope_stage(ctx, in, msg_state(ctx, in), RULES_STAGE_MAIL, &f);
}

static enum sg_verdict rp_rcpt(struct sg_ctx *ctx, void *instance, const char *arg,
                               const char *params)
{
    (void)params;
    struct rp_instance *in = instance;
    struct rules_facts f;
    facts_of(ctx, in->host, &f);
    f.rcpt = arg ? arg : "";
    return envelope_stage(ctx, in, msg_state(ctx, in), RULES_STAGE_RCPT, &f);
}

/* The message's octets, when the rules read them and the size allows;
 * -1 when out of memory. */
static int load_raw(struct sg_ctx *ctx, struct rp_instance *in, struct rules_msg *m, uint64_t size)
{
    const struct sg_host *h = in->host;
    if (size > in->max_scan_size) {
        h->log(ctx, SG_LOG_INFO,
               "rules: message of %llu octets is larger than max_scan_size (%llu): "
               "body rules skipped",
               (unsigned long long)size, (unsigned long long)in->max_scan_size);
        h->counter_add(ctx, "scan_skipped_size", 1);
        return 0;
    }
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return -1;
    uint64_t got = 0;
    while (got < size) {
        ssize_t n = h->message_read(ctx, got, buf + got, (size_t)(size - got));
        if (n < 0) {
            h->log(ctx, SG_LOG_ERR, "rules: cannot read the message: body rules skipped");
            free(buf);
            return 0;
        }
        if (n == 0)
            break;
        got += (uint64_t)n;
    }
    buf[got] = '\0';
    uint64_t body = h->body_offset(ctx);
    rules_msg_set_raw(m, buf, (size_t)got, (size_t)(body <= got ? body : got));
    return 0;
}

static void strip_field(struct sg_ctx *ctx, const struct sg_host *h, const char *name)
{
    size_t n = h->header_count(ctx), count = 0;
    for (size_t i = 0; i < n; i++) {
        const struct sg_header *hd = h->header_get(ctx, i);
        if (hd != NULL && strcasecmp(hd->name, name) == 0)
            count++;
    }
    /* from the last one, so the earlier indices stay what they were */
    for (size_t k = count; k > 0; k--)
        h->change_header(ctx, name, k, NULL);
}

static void prefix_subject(struct sg_ctx *ctx, const struct sg_host *h, const char *prefix)
{
    size_t n = h->header_count(ctx);
    for (size_t i = 0; i < n; i++) {
        const struct sg_header *hd = h->header_get(ctx, i);
        if (hd == NULL || strcasecmp(hd->name, "Subject") != 0)
            continue;
        const char *v = hd->value;
        size_t len = hd->value_len;
        while (len > 0 && (*v == ' ' || *v == '\t'))
            v++, len--;
        size_t pl = strlen(prefix);
        if (len >= pl && memcmp(v, prefix, pl) == 0)
            return;
        char *nv = malloc(pl + len + 1);
        if (nv == NULL)
            return;
        memcpy(nv, prefix, pl);
        memcpy(nv + pl, v, len);
        nv[pl + len] = '\0';
        h->change_header(ctx, "Subject", 1, nv);
        free(nv);
        return;
    }
    char *p = strdup(prefix);
    if (p == NULL)
        return;
    size_t l = strlen(p);
    while (l > 0 && p[l - 1] == ' ')
        p[--l] = '\0';
    if (l > 0)
        h->add_header(ctx, "Subject", p);
    free(p);
}

static void edit_message(struct sg_ctx *ctx, struct rp_instance *in, const struct rules_outcome *o)
{
    const struct sg_host *h = in->host;
    static const char *report[] = {"X-Spam-Status", "X-Spam-Score", "X-Spam-Level", "X-Spam-Flag"};
    if (in->strip_report_headers) {
        for (size_t i = 0; i < sizeof(report) / sizeof(report[0]); i++)
            strip_field(ctx, h, report[i]);
        /* and any field the report writes, whatever its templates name */
        for (size_t i = 0; i < o->nreport; i++) {
            bool done = false;
            for (size_t k = 0; k < sizeof(report) / sizeof(report[0]) && !done; k++)
                done = strcasecmp(o->report[i].name, report[k]) == 0;
            if (!done)
                strip_field(ctx, h, o->report[i].name);
        }
    }
    if (o->subject_prefix != NULL)
        prefix_subject(ctx, h, o->subject_prefix);
    for (size_t i = 0; i < o->nheaders; i++)
        if (h->add_header(ctx, o->headers[i].name, o->headers[i].value) != 0)
            h->log(ctx, SG_LOG_WARNING, "rules: the host refused header %s", o->headers[i].name);
    if (in->report_headers)
        for (size_t i = 0; i < o->nreport; i++)
            if (h->add_header(ctx, o->report[i].name, o->report[i].value) != 0)
                h->log(ctx, SG_LOG_WARNING, "rules: the host refused header %s", o->report[i].name);
}

/* The rules that counted for the message become the transaction's symbols,
 * so that the log line's symbols and score are the message's whole score
 * (the other plugins' and the rules'). */
static void publish_hits(struct sg_ctx *ctx, const struct rp_instance *in,
                         const struct rules_tx *tx)
{
    const struct sg_host *h = in->host;
    if (!SG_HAS(h, add_symbol))
        return;
    for (size_t i = 0; i < rules_tx_hit_count(tx); i++) {
        const struct rules_hit *hit = rules_tx_hit(tx, i);
        if (!hit->counted || hit->shadow || strncmp(hit->rule, "__", 2) == 0)
            continue;
        h->add_symbol(ctx, SG_SYMBOL_TRANSACTION, hit->rule, hit->score, hit->target);
    }
}

static enum sg_verdict rp_eom(struct sg_ctx *ctx, void *instance)
{
    struct rp_instance *in = instance;
    const struct sg_host *h = in->host;
    struct rules_tx *tx = msg_state(ctx, in);
    struct rules_msg *m = rules_msg_new();
    if (tx == NULL || m == NULL) {
        rules_msg_free(m);
        return rp_nomem(ctx, h, "end of message");
    }
    const struct rules *r = rules_tx_rules(tx);
    uint64_t size = h->message_size(ctx);
    rules_msg_set_size(m, size);
    if (rules_need_headers(r)) {
        size_t n = h->header_count(ctx);
        for (size_t i = 0; i < n; i++) {
            const struct sg_header *hd = h->header_get(ctx, i);
            if (hd != NULL && rules_msg_add_header(m, hd->name, hd->value, hd->value_len) != 0) {
                rules_msg_free(m);
                return rp_nomem(ctx, h, "end of message");
            }
        }
    }
    if (rules_need_raw(r) && load_raw(ctx, in, m, size) != 0) {
        rules_msg_free(m);
        return rp_nomem(ctx, h, "end of message");
    }
    struct rules_facts f;
    facts_of(ctx, h, &f);
    struct rules_symbol *syms = symbols_of(ctx, in, &f.nsymbols);
    f.symbols = syms;
    /* the relay blocklists' answers, before the content stage reads them:
     * this callback runs on the work pool, where waiting is allowed */
    struct sa_dns_queries dq = {0};
    if (in->dns_servers != NULL) {
        char why[200] = "";
        if (sa_dnsbl_gather(r, m, &f, &dq) != 0) {
            sa_dns_queries_clear(&dq);
            free(syms);
            rules_msg_free(m);
            return rp_nomem(ctx, h, "end of message");
        }
        if (sa_dns_resolve(&dq, in->dns_servers, sa_dnsbl_timeout(r, in->dns_timeout), why,
                           sizeof why) != 0)
            h->log(ctx, SG_LOG_WARNING, "rules: blocklist queries: %s", why);
        rules_msg_set_dns(m, &dq);
    }
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, &f, m);
    free(syms);
    if (o == NULL) {
        rules_msg_free(m);
        sa_dns_queries_clear(&dq);
        return rp_nomem(ctx, h, "end of message");
    }
    publish_hits(ctx, in, tx);
    h->counter_add(ctx, "messages", 1);
    count_hits(ctx, h, o);

    /* the log line lists every rule that counted for this message */
    char *hits = NULL, *shadow = NULL;
    size_t hl = 0, sl = 0;
    FILE *fh = open_memstream(&hits, &hl), *fs = open_memstream(&shadow, &sl);
    size_t nh = 0, ns = 0;
    for (size_t i = 0; fh != NULL && fs != NULL && i < rules_tx_hit_count(tx); i++) {
        const struct rules_hit *hit = rules_tx_hit(tx, i);
        if (!hit->counted)
            continue;
        FILE *dst = hit->shadow ? fs : fh;
        size_t *k = hit->shadow ? &ns : &nh;
        fprintf(dst, "%s%s(%s)", (*k)++ ? "," : "", hit->rule, hit->target);
    }
    if (fh != NULL)
        fclose(fh);
    if (fs != NULL)
        fclose(fs);
    h->log(ctx, o->verdict == RULES_CONTINUE && nh == 0 ? SG_LOG_DEBUG : SG_LOG_INFO,
           "rules: score=%.1f required=%.1f verdict=%s%s%s%s hits=%s%s%s", o->score, o->required,
           rules_verdict_name(o->verdict), o->tagged ? " tagged" : "", o->decided_by ? " by=" : "",
           o->decided_by ? o->decided_by : "", nh ? hits : "none", ns ? " shadow=" : "",
           ns ? shadow : "");
    /* the transaction's own log line carries the score and the hits too */
    char note[600];
    snprintf(note, sizeof(note), "score=%.1f hits=%s", o->score, nh ? hits : "none");
    h->tx_note(ctx, note);
    free(hits);
    free(shadow);
    if (o->tagged)
        h->counter_add(ctx, "tagged", 1);
    if (o->verdict == RULES_CONTINUE || o->verdict == RULES_ACCEPT ||
        o->verdict == RULES_QUARANTINE)
        edit_message(ctx, in, o);
    enum sg_verdict v = verdict_of(ctx, h, o);
    rules_msg_free(m);
    sa_dns_queries_clear(&dq);
    return v;
}

SG_PLUGIN_EXPORT const struct sg_plugin smtpgate_plugin = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "rules",
    .version = "1.0",
    .description = "regex rules over envelope, headers and body: scores, thresholds, actions",
    .options = rp_options,
    .blocking_stages = SG_STAGE_BIT(SG_STAGE_EOM),
    .init = rp_init,
    .reload = rp_reload,
    .fini = rp_fini,
    .connect = rp_connect,
    .helo = rp_helo,
    .mail = rp_mail,
    .rcpt = rp_rcpt,
    .eom = rp_eom,
};
