/*
 * spf_plugin - the smtpgate SPF plugin: checks the sender with RFC 7208 at
 * MAIL (and HELO), acts on the result by policy, records it in headers.
 *
 * Contract (plugins/smtpgate/plugin.h): one instance per "plugin spf { }"
 * section.  The helo and mail checks wait on the connection's event loop
 * (host->event_loop, a loop that outlives the connection): spf_async asks
 * c-ares there and the verdict comes through resolve(); no stage goes to
 * the work pool.  Where there is no such loop (smtpgate-milter's, which
 * ends with its connection, or an older host) the check blocks the calling
 * thread instead, through spf_dns.  Either way it is bounded by dns_timeout
 * and answered first by libspf2's DNS cache, which the instances of one
 * configuration share and a reload with the same DNS settings carries
 * over.
 *
 *   helo  with helo_check, checks the HELO identity and keeps the result
 *         for the connection (re-checked when the name changes)
 *   mail  skips exempt clients and senders; checks MAIL FROM, or the HELO
 *         identity for the null sender (RFC 7208 2.4); with decide_at=mail
 *         refuses by the result's action (the HELO result's too when it
 *         was checked: the stronger action wins)
 *   rcpt  with decide_at=rcpt, refuses each recipient not listed in
 *         exempt_recipients (postmaster@ gets through)
 *   eom   deletes Authentication-Results fields that claim our authserv-id
 *         (RFC 8601 5), then with decide_at=eom refuses, or inserts
 *         Received-SPF (one per identity checked) and Authentication-Results
 *         at the top
 *
 * Diagnostics: one log line per check (identity, sender, client, result,
 * mechanism or problem, DNS terms used), per exemption and per refusal;
 * counters result_<result>, exempt, rejected, tempfailed, forged_ar_removed.
 * Configuration errors name the key through host->config_error().
 */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "smtpgate/plugin.h"
#include "util/net.h"

#include "spf_async.h"
#include "spf_check.h"
#include "spf_dns.h"
#include "spf_header.h"
#include "spf_policy.h"

#define SPF_AR_NAME   "Authentication-Results"
#define SPF_REPLY_MAX 512

enum spf_decide { DECIDE_MAIL = 0, DECIDE_RCPT, DECIDE_EOM };

struct spf_dns_ref {
    SPF_dns_server_t *dns;
    atomic_int refs;
    char *nameserver;
    long timeout_ms;
    int cache_bits;
};

struct spf_inst {
    const struct sg_host *host;
    struct spf_dns_ref *dns;
    long timeout_ms;
    char *authserv_id; /* NULL: the host's host_name */
    struct spf_policy policy;
    enum spf_decide decide;
    bool helo_check;
    bool exempt_authenticated;
    bool headers;
    double score[SPFC__COUNT]; /* of the symbol each result adds */
    struct net_range *exempt_nets;
    size_t n_exempt_nets;
    struct net_range *fwd_nets;
    size_t n_fwd_nets;
    char **fwd_names;
    size_t n_fwd_names;
    char **exempt_domains;
    size_t n_exempt_domains;
    char **exempt_rcpts;
    size_t n_exempt_rcpts;
};

struct spf_conn {
    char *helo;
    bool checked;
    unsigned gen; /* which HELO check a late answer belongs to */
    struct spf_check_result res;
};

struct spf_tx {
    const char *exempt; /* the reason, or NULL */
    bool checked;
    struct spf_check_result res; /* MAIL FROM, or HELO for the null sender */
    bool helo_checked;           /* the HELO identity besides, with helo_check */
    struct spf_check_result helo;
    enum spf_action action;
    enum spf_result acted; /* the result the action comes from */
    const struct spf_check_result *acted_res;
    char *envelope_from;
};

/* ---- options ---- */

static const char *opt_check_nameserver(const char *v)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (v == NULL || *v == '\0')
        return NULL;
    return spf_dns_parse_nameserver(v, &ss, &len) == 0
               ? NULL
               : "want ADDR, ADDR:PORT or [IPV6]:PORT (numeric)";
}

static const char *opt_check_action(const char *v)
{
    return spf_action_parse(v) >= 0 ? NULL : "want tag, reject or tempfail";
}

static const char *opt_check_decide(const char *v)
{
    if (v != NULL &&
        (strcasecmp(v, "mail") == 0 || strcasecmp(v, "rcpt") == 0 || strcasecmp(v, "eom") == 0))
        return NULL;
    return "want mail, rcpt or eom";
}

static const char *opt_check_net(const char *v)
{
    struct net_range n;
    const char *err;
    return net_range_parse_text(v, strlen(v), 0, &n, &err) == 0 ? NULL : err;
}

static const char *opt_check_domain(const char *v)
{
    if (v == NULL || *v == '\0')
        return "empty domain";
    const char *d = v[0] == '.' ? v + 1 : v;
    return spf_check_domain_ok(d) ? NULL : "not a domain name";
}

static const char *opt_check_forwarder(const char *v)
{
    if (opt_check_net(v) == NULL)
        return NULL;
    return opt_check_domain(v) == NULL ? NULL : "want a network (CIDR) or a host name";
}

static const char *opt_check_rcpt(const char *v)
{
    if (v == NULL || *v == '\0' || strchr(v, ' ') != NULL || strchr(v, '<') != NULL)
        return "want a local part (postmaster) or an address";
    return NULL;
}

static const char *opt_check_authserv(const char *v)
{
    if (v == NULL || *v == '\0')
        return NULL;
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c >= 0x7f || strchr("()<>@,;:\\\"/[]?=", c) != NULL)
            return "want a token (a host name)";
    }
    return NULL;
}

static const struct sg_option spf_options[] = {
    {"nameserver", SG_OPT_STRING, NULL, opt_check_nameserver, 0, 0},
    {"dns_timeout", SG_OPT_FLOAT, "5", NULL, 0.1, 120}, /* seconds */
    {"dns_cache_bits", SG_OPT_INT, "12", NULL, 0, 16},  /* 0: no cache; 16: 65536 slots */
    {"authserv_id", SG_OPT_STRING, NULL, opt_check_authserv, 0, 0},
    {"on_none", SG_OPT_STRING, "\"tag\"", opt_check_action, 0, 0},
    {"on_neutral", SG_OPT_STRING, "\"tag\"", opt_check_action, 0, 0},
    {"on_pass", SG_OPT_STRING, "\"tag\"", opt_check_action, 0, 0},
    {"on_fail", SG_OPT_STRING, "\"reject\"", opt_check_action, 0, 0},
    {"on_softfail", SG_OPT_STRING, "\"tag\"", opt_check_action, 0, 0},
    {"on_temperror", SG_OPT_STRING, "\"tempfail\"", opt_check_action, 0, 0},
    {"on_permerror", SG_OPT_STRING, "\"tag\"", opt_check_action, 0, 0},
    {"decide_at", SG_OPT_STRING, "\"mail\"", opt_check_decide, 0, 0},
    {"helo_check", SG_OPT_BOOL, "false", NULL, 0, 0},
    {"exempt_authenticated", SG_OPT_BOOL, "true", NULL, 0, 0},
    {"exempt_networks", SG_OPT_LIST, "{\"127.0.0.0/8\",\"::1\"}", opt_check_net, 0, 0},
    {"exempt_domains", SG_OPT_LIST, NULL, opt_check_domain, 0, 0},
    {"trusted_forwarders", SG_OPT_LIST, NULL, opt_check_forwarder, 0, 0},
    {"exempt_recipients", SG_OPT_LIST, "{\"postmaster\"}", opt_check_rcpt, 0, 0},
    {"headers", SG_OPT_BOOL, "true", NULL, 0, 0},
    /* the symbol each result adds (SPF_PASS ...), for the message's score */
    {"score_none", SG_OPT_FLOAT, "0", NULL, -1000, 1000},
    {"score_neutral", SG_OPT_FLOAT, "0", NULL, -1000, 1000},
    {"score_pass", SG_OPT_FLOAT, "0", NULL, -1000, 1000},
    {"score_fail", SG_OPT_FLOAT, "2", NULL, -1000, 1000},
    {"score_softfail", SG_OPT_FLOAT, "1", NULL, -1000, 1000},
    {"score_temperror", SG_OPT_FLOAT, "0", NULL, -1000, 1000},
    {"score_permerror", SG_OPT_FLOAT, "0", NULL, -1000, 1000},
    {NULL, 0, NULL, NULL, 0, 0},
};

static const char *const result_keys[SPFC__COUNT] = {
    [SPFC_NONE] = "on_none",           [SPFC_NEUTRAL] = "on_neutral",
    [SPFC_PASS] = "on_pass",           [SPFC_FAIL] = "on_fail",
    [SPFC_SOFTFAIL] = "on_softfail",   [SPFC_TEMPERROR] = "on_temperror",
    [SPFC_PERMERROR] = "on_permerror",
};

static const char *const score_keys[SPFC__COUNT] = {
    [SPFC_NONE] = "score_none",           [SPFC_NEUTRAL] = "score_neutral",
    [SPFC_PASS] = "score_pass",           [SPFC_FAIL] = "score_fail",
    [SPFC_SOFTFAIL] = "score_softfail",   [SPFC_TEMPERROR] = "score_temperror",
    [SPFC_PERMERROR] = "score_permerror",
};

static const char *const symbol_names[SPFC__COUNT] = {
    [SPFC_NONE] = "SPF_NONE",           [SPFC_NEUTRAL] = "SPF_NEUTRAL",
    [SPFC_PASS] = "SPF_PASS",           [SPFC_FAIL] = "SPF_FAIL",
    [SPFC_SOFTFAIL] = "SPF_SOFTFAIL",   [SPFC_TEMPERROR] = "SPF_TEMPERROR",
    [SPFC_PERMERROR] = "SPF_PERMERROR",
};

/* ---- instance ---- */

static void dns_ref_put(struct spf_dns_ref *r)
{
    if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    if (r->dns != NULL)
        SPF_dns_free(r->dns);
    free(r->nameserver);
    free(r);
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void inst_free(struct spf_inst *in)
{
    if (in == NULL)
        return;
    dns_ref_put(in->dns);
    free(in->authserv_id);
    free(in->exempt_nets);
    free(in->fwd_nets);
    strv_free(in->fwd_names, in->n_fwd_names);
    strv_free(in->exempt_domains, in->n_exempt_domains);
    strv_free(in->exempt_rcpts, in->n_exempt_rcpts);
    free(in);
}

static int inst_list(const struct sg_host *h, const struct sg_section *sec, const char *key,
                     const char *(*check)(const char *), char ***out, size_t *n)
{
    size_t cnt = h->opt_list_size(sec, key);
    *out = calloc(cnt + 1, sizeof **out);
    *n = 0;
    if (*out == NULL)
        return -1;
    for (size_t i = 0; i < cnt; i++) {
        const char *v = h->opt_list_item(sec, key, i);
        const char *why = v ? check(v) : "missing value";
        if (why != NULL) {
            h->config_error(sec, key, "'%s': %s", v ? v : "", why);
            return -1;
        }
        if (((*out)[(*n)++] = strdup(v)) == NULL)
            return -1;
    }
    return 0;
}

static int inst_nets(const struct sg_host *h, const struct sg_section *sec, const char *key,
                     struct net_range **nets, size_t *n, char ***names, size_t *nnames)
{
    size_t cnt = h->opt_list_size(sec, key);
    *nets = calloc(cnt + 1, sizeof **nets);
    *n = 0;
    if (names != NULL) {
        *names = calloc(cnt + 1, sizeof **names);
        *nnames = 0;
        if (*names == NULL)
            return -1;
    }
    if (*nets == NULL)
        return -1;
    for (size_t i = 0; i < cnt; i++) {
        const char *v = h->opt_list_item(sec, key, i);
        const char *err = "missing value";
        if (v != NULL && net_range_parse_text(v, strlen(v), 0, &(*nets)[*n], &err) == 0) {
            (*n)++;
            continue;
        }
        if (v != NULL && names != NULL && opt_check_domain(v) == NULL) {
            if (((*names)[(*nnames)++] = strdup(v)) == NULL)
                return -1;
            continue;
        }
        h->config_error(sec, key, "'%s': %s", v ? v : "",
                        names ? "want a network (CIDR) or a host name" : err);
        return -1;
    }
    return 0;
}

static int inst_read(const struct sg_host *h, const struct sg_section *sec, struct spf_inst *in,
                     const char **nameserver, int *cache_bits)
{
    in->host = h;
    *nameserver = h->opt_string(sec, "nameserver");
    if (*nameserver != NULL && **nameserver == '\0')
        *nameserver = NULL;
    const char *why = opt_check_nameserver(*nameserver);
    if (why != NULL) {
        h->config_error(sec, "nameserver", "'%s': %s", *nameserver, why);
        return -1;
    }
    /* dns_timeout and dns_cache_bits are within their declared ranges: the
     * host checked them */
    in->timeout_ms = (long)(h->opt_float(sec, "dns_timeout") * 1000);
    *cache_bits = (int)h->opt_int(sec, "dns_cache_bits");
    const char *as = h->opt_string(sec, "authserv_id");
    if (as != NULL && *as != '\0') {
        if ((why = opt_check_authserv(as)) != NULL) {
            h->config_error(sec, "authserv_id", "'%s': %s", as, why);
            return -1;
        }
        if ((in->authserv_id = strdup(as)) == NULL)
            return -1;
    }
    spf_policy_defaults(&in->policy);
    for (int r = 0; r < SPFC__COUNT; r++) {
        const char *v = h->opt_string(sec, result_keys[r]);
        if (v == NULL)
            continue;
        int a = spf_action_parse(v);
        if (a < 0) {
            h->config_error(sec, result_keys[r], "'%s': want tag, reject or tempfail", v);
            return -1;
        }
        in->policy.action[r] = (enum spf_action)a;
    }
    const char *d = h->opt_string(sec, "decide_at");
    if (d == NULL || strcasecmp(d, "mail") == 0)
        in->decide = DECIDE_MAIL;
    else if (strcasecmp(d, "rcpt") == 0)
        in->decide = DECIDE_RCPT;
    else if (strcasecmp(d, "eom") == 0)
        in->decide = DECIDE_EOM;
    else {
        h->config_error(sec, "decide_at", "'%s': want mail, rcpt or eom", d);
        return -1;
    }
    for (int r = 0; r < SPFC__COUNT; r++)
        in->score[r] = h->opt_float(sec, score_keys[r]);
    in->helo_check = h->opt_bool(sec, "helo_check");
    in->exempt_authenticated = h->opt_bool(sec, "exempt_authenticated");
    in->headers = h->opt_bool(sec, "headers");
    if (inst_nets(h, sec, "exempt_networks", &in->exempt_nets, &in->n_exempt_nets, NULL, NULL) <
            0 ||
        inst_nets(h, sec, "trusted_forwarders", &in->fwd_nets, &in->n_fwd_nets, &in->fwd_names,
                  &in->n_fwd_names) < 0 ||
        inst_list(h, sec, "exempt_domains", opt_check_domain, &in->exempt_domains,
                  &in->n_exempt_domains) < 0 ||
        inst_list(h, sec, "exempt_recipients", opt_check_rcpt, &in->exempt_rcpts,
                  &in->n_exempt_rcpts) < 0)
        return -1;
    return 0;
}

static struct spf_dns_ref *dns_ref_new(const char *nameserver, long timeout_ms, int cache_bits,
                                       char *err, size_t errlen)
{
    struct spf_dns_ref *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&r->refs, 1);
    r->timeout_ms = timeout_ms;
    r->cache_bits = cache_bits;
    if (nameserver != NULL && (r->nameserver = strdup(nameserver)) == NULL) {
        free(r);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->dns = spf_dns_stack_new(nameserver, timeout_ms, cache_bits, err, errlen);
    if (r->dns == NULL) {
        free(r->nameserver);
        free(r);
        return NULL;
    }
    return r;
}

static int spf_setup(const struct sg_host *h, const struct sg_section *sec,
                     const struct spf_inst *prev, void **instance)
{
    struct spf_inst *in = calloc(1, sizeof *in);
    const char *ns = NULL;
    int bits = 0;
    if (in == NULL) {
        h->config_error(sec, NULL, "out of memory");
        return -1;
    }
    if (inst_read(h, sec, in, &ns, &bits) < 0) {
        inst_free(in);
        return -1;
    }
    if (SG_HAS(h, set_stages)) {
        /* HELO is called only when it is checked; RCPT only when the
         * decision is made there. */
        unsigned stages = SG_STAGE_BIT(SG_STAGE_MAIL) | SG_STAGE_BIT(SG_STAGE_EOM);
        if (in->helo_check)
            stages |= SG_STAGE_BIT(SG_STAGE_HELO);
        if (in->decide == DECIDE_RCPT)
            stages |= SG_STAGE_BIT(SG_STAGE_RCPT);
        h->set_stages(sec, stages);
    }
    if (SG_HAS(h, verdict_timeout) && SG_HAS(h, config_warning)) {
        /* A check may use all of dns_timeout (and HELO and MAIL one each):
         * a host timeout within it answers the client with the failure
         * verdict before the SPF result is known. */
        double host_s = h->verdict_timeout(sec), dns_s = in->timeout_ms / 1000.0;
        if (host_s <= dns_s)
            h->config_warning(sec, "dns_timeout",
                              "%.3gs is not below the plugin's timeout of %.3gs: a check "
                              "that takes its whole DNS time gets the failure verdict "
                              "instead of its SPF result",
                              dns_s, host_s);
    }
    const struct spf_dns_ref *p = prev ? prev->dns : NULL;
    if (p != NULL && p->timeout_ms == in->timeout_ms && p->cache_bits == bits &&
        ((p->nameserver == NULL && ns == NULL) ||
         (p->nameserver != NULL && ns != NULL && strcmp(p->nameserver, ns) == 0))) {
        /* Same DNS settings: keep the warm cache. */
        in->dns = prev->dns;
        atomic_fetch_add(&in->dns->refs, 1);
    } else {
        char err[200];
        in->dns = dns_ref_new(ns, in->timeout_ms, bits, err, sizeof err);
        if (in->dns == NULL) {
            h->config_error(sec, ns ? "nameserver" : NULL, "%s", err);
            inst_free(in);
            return -1;
        }
    }
    *instance = in;
    return 0;
}

static int spf_init(const struct sg_host *h, const struct sg_section *sec, void **instance)
{
    return spf_setup(h, sec, NULL, instance);
}

static int spf_reload(const struct sg_host *h, const struct sg_section *sec, void *previous,
                      void **instance)
{
    return spf_setup(h, sec, previous, instance);
}

static void spf_fini(void *instance)
{
    inst_free(instance);
}

/* ---- checks ---- */

static void conn_free(void *p)
{
    struct spf_conn *c = p;
    if (c == NULL)
        return;
    free(c->helo);
    spf_check_result_free(&c->res);
    free(c);
}

static void tx_free(void *p)
{
    struct spf_tx *t = p;
    if (t == NULL)
        return;
    spf_check_result_free(&t->res);
    spf_check_result_free(&t->helo);
    free(t->envelope_from);
    free(t);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int result_copy(struct spf_check_result *dst, const struct spf_check_result *src)
{
    *dst = *src;
    dst->sender = dup_or_null(src->sender);
    dst->domain = dup_or_null(src->domain);
    dst->mechanism = dup_or_null(src->mechanism);
    dst->explanation = dup_or_null(src->explanation);
    dst->problem = dup_or_null(src->problem);
    if ((src->sender && !dst->sender) || (src->domain && !dst->domain) ||
        (src->mechanism && !dst->mechanism) || (src->explanation && !dst->explanation) ||
        (src->problem && !dst->problem)) {
        spf_check_result_free(dst);
        return -1;
    }
    return 0;
}

static const char *inst_receiver(const struct spf_inst *in, const struct sg_conn_info *ci)
{
    if (in->authserv_id != NULL)
        return in->authserv_id;
    return ci->host_name && *ci->host_name ? ci->host_name : "unknown";
}

static void check_request(const struct spf_inst *in, struct sg_ctx *ctx, enum spf_identity id,
                          const char *sender, struct spf_check_request *req)
{
    const struct sg_conn_info *ci = in->host->conn(ctx);
    *req = (struct spf_check_request){
        .ip = ci->client_addr,
        .sender = sender,
        .helo = ci->helo ? ci->helo : "",
        .receiver = inst_receiver(in, ci),
        .identity = id,
    };
    clock_gettime(CLOCK_MONOTONIC, &req->deadline);
    req->deadline.tv_sec += in->timeout_ms / 1000;
    req->deadline.tv_nsec += (in->timeout_ms % 1000) * 1000000;
    if (req->deadline.tv_nsec >= 1000000000) {
        req->deadline.tv_sec++;
        req->deadline.tv_nsec -= 1000000000;
    }
}

static void check_log(const struct spf_inst *in, struct sg_ctx *ctx, const char *client,
                      const struct spf_check_result *res, int rc)
{
    const struct sg_host *h = in->host;
    if (rc < 0)
        h->log(ctx, SG_LOG_WARNING, "spf: out of memory during the check of %s",
               res->sender ? res->sender : "?");
    h->log(ctx, SG_LOG_INFO,
           "spf: identity=%s sender=<%s> client=%s result=%s %s=%s dns_terms=%u void=%u",
           res->identity == SPF_ID_HELO ? "helo" : "mailfrom", res->sender ? res->sender : "",
           client ? client : "?", spf_result_name(res->result),
           res->mechanism ? "mechanism" : "problem",
           res->mechanism ? res->mechanism
           : res->problem ? res->problem
                          : "-",
           res->dns_terms, res->void_lookups);
    char counter[32];
    snprintf(counter, sizeof counter, "result_%s", spf_result_name(res->result));
    h->counter_add(ctx, counter, 1);
}

/* The check, blocking the calling thread for up to dns_timeout. */
static void run_check(const struct spf_inst *in, struct sg_ctx *ctx, enum spf_identity id,
                      const char *sender, struct spf_check_result *res)
{
    struct spf_check_request req;
    check_request(in, ctx, id, sender, &req);
    int rc = spf_check_host(in->dns->dns, &req, res);
    check_log(in, ctx, req.ip, res, rc);
}

static const char *client_exempt(const struct spf_inst *in, const struct sg_conn_info *ci)
{
    if (in->exempt_authenticated && ci->login != NULL)
        return "authenticated client";
    if (net_ranges_match_text(in->exempt_nets, in->n_exempt_nets, ci->client_addr))
        return "exempt network";
    if (net_ranges_match_text(in->fwd_nets, in->n_fwd_nets, ci->client_addr))
        return "trusted forwarder";
    if (ci->client_name != NULL &&
        spf_domain_listed(in->fwd_names, in->n_fwd_names, ci->client_name))
        return "trusted forwarder";
    return NULL;
}

/* ---- checks on the connection's event loop ---- */

/* One check waiting on the loop: where its result goes when it comes. */
struct spf_pending {
    struct spf_inst *in;
    struct spf_dns_ref *dns; /* held: a reload may drop the instance's */
    struct sg_ctx *ctx;
    char *client;
    struct spf_tx *tx;     /* a MAIL check, or NULL */
    struct spf_conn *conn; /* a HELO check, or NULL */
    unsigned gen;
};

static enum sg_verdict mail_verdict(const struct spf_inst *in, struct sg_ctx *ctx,
                                    struct spf_tx *t, char *reply, size_t reply_len);

/* The host keeps a transaction's and a connection's data until every call
 * out on them is resolved (plugin.h): tx and conn are still there here,
 * even when the host gave up waiting and the transaction has ended. */
static void pending_done(void *arg, struct spf_check_result *res, int rc)
{
    struct spf_pending *p = arg;
    const struct sg_host *h = p->in->host;
    struct sg_ctx *ctx = p->ctx;
    char reply[SPF_REPLY_MAX] = "";
    enum sg_verdict v = SG_CONTINUE;
    check_log(p->in, ctx, p->client, res, rc);
    if (p->tx != NULL) {
        spf_check_result_free(&p->tx->res);
        p->tx->res = *res;
        v = mail_verdict(p->in, ctx, p->tx, reply, sizeof reply);
    } else if (p->conn->gen == p->gen) {
        spf_check_result_free(&p->conn->res);
        p->conn->res = *res;
        p->conn->checked = true;
    } else {
        spf_check_result_free(res);
    }
    dns_ref_put(p->dns);
    free(p->client);
    free(p);
    h->resolve(ctx, v, reply[0] ? reply : NULL);
}

/* Starts the check on the connection's loop; false when it cannot wait
 * there, and the caller checks on its own thread. */
static bool check_on_loop(struct spf_inst *in, struct sg_ctx *ctx, enum spf_identity id,
                          const char *sender, struct spf_tx *t, struct spf_conn *c)
{
    const struct sg_host *h = in->host;
    if (!SG_HAS(h, event_loop) || h->event_loop == NULL)
        return false;
    bool outlives = false;
    struct event_base *base = h->event_loop(ctx, &outlives);
    /* A loop that ends with its connection (smtpgate-milter's) could be
     * freed under a check still waiting: there, the connection's own thread
     * waits instead, as libmilter's model has it. */
    if (base == NULL || !outlives)
        return false;
    struct spf_pending *p = calloc(1, sizeof *p);
    if (p == NULL)
        return false;
    struct spf_check_request req;
    check_request(in, ctx, id, sender, &req);
    p->in = in;
    p->dns = in->dns;
    p->ctx = ctx;
    p->tx = t;
    p->conn = c;
    p->gen = c != NULL ? c->gen : 0;
    if ((p->client = strdup(req.ip ? req.ip : "?")) == NULL) {
        free(p);
        return false;
    }
    atomic_fetch_add(&p->dns->refs, 1);
    if (spf_async_start(base, p->dns->dns, &req, pending_done, p) == NULL) {
        dns_ref_put(p->dns);
        free(p->client);
        free(p);
        return false;
    }
    return true;
}

/* ---- stages ---- */

static enum sg_verdict spf_helo(struct sg_ctx *ctx, void *instance)
{
    struct spf_inst *in = instance;
    const struct sg_host *h = in->host;
    const struct sg_conn_info *ci = h->conn(ctx);
    if (!in->helo_check || ci->helo == NULL)
        return SG_CONTINUE;
    const char *why = client_exempt(in, ci);
    if (why != NULL)
        return SG_CONTINUE;
    struct spf_conn *c = h->conn_data(ctx);
    if (c == NULL) {
        if ((c = calloc(1, sizeof *c)) == NULL)
            return SG_CONTINUE;
        h->set_conn_data(ctx, c, conn_free);
    }
    if (c->checked && c->helo != NULL && strcasecmp(c->helo, ci->helo) == 0)
        return SG_CONTINUE;
    spf_check_result_free(&c->res);
    free(c->helo);
    c->checked = false;
    c->gen++;
    if ((c->helo = strdup(ci->helo)) == NULL)
        return SG_CONTINUE;
    if (check_on_loop(in, ctx, SPF_ID_HELO, "", NULL, c))
        return SG_PENDING;
    run_check(in, ctx, SPF_ID_HELO, "", &c->res);
    c->checked = true;
    return SG_CONTINUE;
}

/* The refusal by t's action: reply NULL sets it with set_reply (a verdict
 * returned), else it is written there (a verdict given to resolve). */
static enum sg_verdict tx_refuse(const struct spf_inst *in, struct sg_ctx *ctx,
                                 const struct spf_tx *t, const char *where, char *reply_out,
                                 size_t reply_len)
{
    const struct sg_host *h = in->host;
    const struct sg_conn_info *ci = h->conn(ctx);
    char reply[SPF_REPLY_MAX];
    spf_policy_reply(t->action, t->acted_res, ci->client_addr, reply, sizeof reply);
    if (reply_out != NULL)
        snprintf(reply_out, reply_len, "%s", reply);
    else if (h->set_reply(ctx, reply) < 0)
        h->log(ctx, SG_LOG_WARNING, "spf: reply refused by the host: %s", reply);
    h->log(ctx, SG_LOG_INFO, "spf: %s at %s: %s", spf_action_name(t->action), where, reply);
    if (t->action == SPF_ACT_REJECT) {
        h->counter_add(ctx, "rejected", 1);
        return SG_REJECT;
    }
    h->counter_add(ctx, "tempfailed", 1);
    return SG_TEMPFAIL;
}

/* t->res (and t->helo, when helo_checked) known: the action, and at MAIL
 * the verdict. */
static enum sg_verdict mail_verdict(const struct spf_inst *in, struct sg_ctx *ctx,
                                    struct spf_tx *t, char *reply, size_t reply_len)
{
    t->checked = true;
    t->action = in->policy.action[t->res.result];
    t->acted_res = &t->res;
    if (t->helo_checked) {
        enum spf_action ha = in->policy.action[t->helo.result];
        if (spf_policy_stronger(ha, t->action) != t->action) {
            t->action = ha;
            t->acted_res = &t->helo;
        }
    }
    t->acted = t->acted_res->result;
    /* the result as a symbol: the rules plugin's thresholds see it in the
     * message's score, and rules test it with symbol(SPF_FAIL) */
    const struct sg_host *h = in->host;
    if (SG_HAS(h, add_symbol) && (unsigned)t->res.result < SPFC__COUNT)
        h->add_symbol(ctx, SG_SYMBOL_TRANSACTION, symbol_names[t->res.result],
                      in->score[t->res.result], t->res.domain);
    if (in->decide == DECIDE_MAIL && t->action != SPF_ACT_TAG)
        return tx_refuse(in, ctx, t, "MAIL", reply, reply_len);
    return SG_CONTINUE;
}

static enum sg_verdict spf_mail(struct sg_ctx *ctx, void *instance, const char *arg,
                                const char *params)
{
    (void)params;
    struct spf_inst *in = instance;
    const struct sg_host *h = in->host;
    const struct sg_conn_info *ci = h->conn(ctx);
    struct spf_tx *t = calloc(1, sizeof *t);
    if (t == NULL)
        return SG_CONTINUE;
    h->set_msg_data(ctx, t, tx_free);
    const char *sender = arg ? arg : "";
    t->envelope_from = strdup(sender);

    t->exempt = client_exempt(in, ci);
    if (t->exempt == NULL && sender[0] != '\0') {
        const char *at = strrchr(sender, '@');
        if (spf_domain_listed(in->exempt_domains, in->n_exempt_domains, at ? at + 1 : sender))
            t->exempt = "exempt sender domain";
    }
    if (t->exempt != NULL) {
        h->log(ctx, SG_LOG_INFO, "spf: not checked: %s (client %s, sender <%s>)", t->exempt,
               ci->client_addr ? ci->client_addr : "?", sender);
        h->counter_add(ctx, "exempt", 1);
        return SG_CONTINUE;
    }

    struct spf_conn *c = h->conn_data(ctx);
    bool have_helo = in->helo_check && c != NULL && c->checked && ci->helo != NULL &&
                     c->helo != NULL && strcasecmp(c->helo, ci->helo) == 0;
    if (sender[0] == '\0' && have_helo) {
        if (result_copy(&t->res, &c->res) < 0)
            return SG_CONTINUE;
        return mail_verdict(in, ctx, t, NULL, 0);
    }
    if (sender[0] != '\0' && have_helo && result_copy(&t->helo, &c->res) == 0)
        t->helo_checked = true;
    enum spf_identity id = sender[0] ? SPF_ID_MAILFROM : SPF_ID_HELO;
    if (check_on_loop(in, ctx, id, sender, t, NULL))
        return SG_PENDING;
    run_check(in, ctx, id, sender, &t->res);
    return mail_verdict(in, ctx, t, NULL, 0);
}

static enum sg_verdict spf_rcpt(struct sg_ctx *ctx, void *instance, const char *arg,
                                const char *params)
{
    (void)params;
    struct spf_inst *in = instance;
    const struct sg_host *h = in->host;
    struct spf_tx *t = h->msg_data(ctx);
    if (in->decide != DECIDE_RCPT || t == NULL || !t->checked || t->action == SPF_ACT_TAG)
        return SG_CONTINUE;
    if (spf_rcpt_listed(in->exempt_rcpts, in->n_exempt_rcpts, arg)) {
        h->log(ctx, SG_LOG_INFO, "spf: %s let through to <%s> (exempt recipient)",
               spf_result_name(t->acted), arg ? arg : "");
        return SG_CONTINUE;
    }
    return tx_refuse(in, ctx, t, "RCPT", NULL, 0);
}

/* RFC 8601 5: fields claiming our authserv-id that we did not write go.
 * Deleted from the last to the first so that each nth names the field it
 * named when the message arrived. */
static void remove_forged(const struct spf_inst *in, struct sg_ctx *ctx, const char *authserv)
{
    const struct sg_host *h = in->host;
    size_t n = h->header_count(ctx);
    size_t *nth = calloc(n + 1, sizeof *nth);
    size_t nforged = 0, seen = 0;
    if (nth == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        const struct sg_header *hd = h->header_get(ctx, i);
        if (hd == NULL || hd->name == NULL || strcasecmp(hd->name, SPF_AR_NAME) != 0)
            continue;
        seen++;
        char id[256];
        if (spf_header_authserv_id(hd->value, hd->value_len, id, sizeof id) &&
            strcasecmp(id, authserv) == 0)
            nth[nforged++] = seen;
    }
    for (size_t k = nforged; k > 0; k--) {
        if (h->change_header(ctx, SPF_AR_NAME, nth[k - 1], NULL) == 0)
            h->counter_add(ctx, "forged_ar_removed", 1);
    }
    if (nforged > 0)
        h->log(ctx, SG_LOG_INFO, "spf: removed %zu Authentication-Results field(s) claiming %s",
               nforged, authserv);
    free(nth);
}

static void add_headers(const struct spf_inst *in, struct sg_ctx *ctx, const struct spf_tx *t,
                        const char *authserv)
{
    const struct sg_host *h = in->host;
    const struct sg_conn_info *ci = h->conn(ctx);
    const struct spf_check_result *list[2];
    size_t n = 0;
    if (t->helo_checked)
        list[n++] = &t->helo;
    list[n++] = &t->res;
    /* Inserted at the top one after the other: the last ends up first. */
    for (size_t i = 0; i < n; i++) {
        char *v = spf_header_received(list[i], ci->client_addr, ci->helo, t->envelope_from,
                                      inst_receiver(in, ci));
        if (v == NULL || h->insert_header(ctx, 0, "Received-SPF", v) < 0)
            h->log(ctx, SG_LOG_WARNING, "spf: could not add Received-SPF");
        free(v);
    }
    /* The identity that decided first; RFC 8601 allows several results. */
    const struct spf_check_result *ar[2];
    size_t m = 0;
    ar[m++] = &t->res;
    if (t->helo_checked)
        ar[m++] = &t->helo;
    char *v = spf_header_auth_results(authserv, ar, m);
    if (v == NULL || h->insert_header(ctx, 0, SPF_AR_NAME, v) < 0)
        h->log(ctx, SG_LOG_WARNING, "spf: could not add Authentication-Results");
    free(v);
}

static enum sg_verdict spf_eom(struct sg_ctx *ctx, void *instance)
{
    struct spf_inst *in = instance;
    const struct sg_host *h = in->host;
    const struct sg_conn_info *ci = h->conn(ctx);
    struct spf_tx *t = h->msg_data(ctx);
    const char *authserv = inst_receiver(in, ci);
    if (t != NULL && t->checked && in->decide == DECIDE_EOM && t->action != SPF_ACT_TAG)
        return tx_refuse(in, ctx, t, "end of data", NULL, 0);
    remove_forged(in, ctx, authserv);
    if (t != NULL && t->checked && in->headers)
        add_headers(in, ctx, t, authserv);
    return SG_CONTINUE;
}

SG_PLUGIN_EXPORT const struct sg_plugin smtpgate_plugin = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "spf",
    .version = "1.0",
    .description = "RFC 7208 SPF check of MAIL FROM and HELO (libspf2 DNS), policy per result, "
                   "Received-SPF and Authentication-Results",
    .options = spf_options,
    /* No stage on the work pool: checks wait on the connection's loop
     * (check_on_loop), or block a thread of their own (smtpgate-milter). */
    .blocking_stages = 0,
    .init = spf_init,
    .reload = spf_reload,
    .fini = spf_fini,
    .helo = spf_helo,
    .mail = spf_mail,
    .rcpt = spf_rcpt,
    .eom = spf_eom,
};
