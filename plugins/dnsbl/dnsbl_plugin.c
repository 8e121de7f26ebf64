/*
 * dnsbl_plugin - smtpgate's "dnsbl" plugin: weighted DNS block and allow
 * lists with Postfix postscreen's semantics, and RHSBL checks of the HELO
 * name and the sender's domain.
 *
 *   connect  queries every site of `sites` for the client's address (IPv4
 *            reversed, IPv6 in nibble form), all at once, and adds the
 *            weights of the sites whose answer passes their filter:
 *            score <= allowlist_threshold (when negative): the client is
 *            allowlisted (symbol DNSBL_ALLOWLISTED, the RHSBL checks
 *            skipped); score >= threshold: listed, refused with `reply`
 *            when action is "reject", otherwise only scored
 *   helo     `rhsbl_helo_sites` for the HELO name
 *   mail     `rhsbl_sender_sites` for the sender's domain
 *
 * Every listed site adds a symbol (DNSBL_<DOMAIN>, RHSBL_HELO_<DOMAIN>,
 * RHSBL_SENDER_<DOMAIN>: the domain in upper case, '.' and '-' as '_') with
 * its weight, so the rules plugin's total decides when action is "score".
 * The score a stage compares is the connection's so far: the client's
 * sites', then the HELO name's, then the sender domain's.
 *
 * Waiting: every query of a stage runs at once on the connection's event
 * loop (host->event_loop) through an evdns_base of the lookup's own, one
 * per nameserver set (`nameservers`, or a zone's route in `site_nameservers`),
 * under one deadline, `dns_timeout`, for the lot; a site that has not
 * answered by then counts as not listed, and is logged and counted.  The
 * lookup frees its evdns bases on the loop, after the last request came
 * back, and only then resolves the verdict, so nothing of it is left on the
 * loop when the host lets the connection go (in smtpgate-milter the loop
 * is the connection's own).  Answers are cached for their TTL (a negative
 * answer for negative_ttl when it has none) in a cache of cache_size
 * entries shared by every connection, and carried over a reload.
 *
 * Counters: queries (sent), cache_hits, listed, allowlisted, timeouts,
 * errors (a server failure or a refusal: not listed), exempt.
 */
#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dnsbl_cache.h"
#include "dnsbl_site.h"
#include "smtpgate/plugin.h"
#include "util/net.h"

#define DNSBL_DEFAULT_REPLY "554 5.7.1 Service unavailable; $rbl_what blocked using $rbl_domain"
#define MAX_ROUTES          16
#define MAX_SERVERS         4 /* of `nameservers` */

enum list_kind { LIST_CLIENT, LIST_HELO, LIST_SENDER, LIST__COUNT };

static const char *const kind_prefix[LIST__COUNT] = {"DNSBL_", "RHSBL_HELO_", "RHSBL_SENDER_"};

struct route {
    char zone[DNSBL_DOMAIN_MAX + 1];
    char server[64];
};

struct dnsbl_inst {
    const struct sg_host *host;
    struct dnsbl_sites lists[LIST__COUNT];
    double threshold, allowlist_threshold;
    bool reject;
    char *reply;
    double timeout;
    double negative_ttl;
    char servers[MAX_SERVERS][64];
    size_t nservers;
    struct route routes[MAX_ROUTES];
    size_t nroutes;
    struct net_range *exempt;
    size_t nexempt;
    struct dnsbl_cache *cache;
    size_t cache_size;
};

/* What a connection learned: the scores so far, and whether it is allowlisted. */
struct dnsbl_conn {
    double score[LIST__COUNT];
    bool allowlisted;
    bool exempt;
};

struct query {
    struct lookup *lk;
    size_t site;
    long dup_of; /* the query of the same name this one shares, or -1 */
    struct evdns_base *dns;
    struct evdns_request *req;
    bool answered, timed_out, failed;
    struct dnsbl_answer ans;
    char name[DNSBL_NAME_MAX];
};

struct lookup {
    struct dnsbl_inst *in;
    struct sg_ctx *ctx;
    enum list_kind kind;
    char what[300]; /* "client [192.0.2.1]" ... for the reply */
    struct event_base *base;
    struct evdns_base *dns[MAX_ROUTES + 1];
    const char *dns_server[MAX_ROUTES + 1]; /* route server, or NULL: `nameservers` */
    size_t ndns;
    struct event *deadline;
    size_t nq, outstanding;
    bool expired;
    struct query q[];
};

/* ---- options ---- */

static const char *check_sites(const char *v)
{
    struct dnsbl_sites s;
    const char *why;
    size_t at;
    if (v == NULL || *v == '\0')
        return NULL;
    if (dnsbl_sites_parse(v, strlen(v), &s, &why, &at) != 0)
        return why;
    dnsbl_sites_free(&s);
    return NULL;
}

static const char *check_action(const char *v)
{
    return v && (strcmp(v, "reject") == 0 || strcmp(v, "score") == 0) ? NULL
                                                                      : "want reject or score";
}

static const char *check_route(const char *v)
{
    char z[DNSBL_DOMAIN_MAX + 1], s[64];
    const char *why = NULL;
    return dnsbl_route_parse(v, z, sizeof z, s, sizeof s, &why) == 0 ? NULL : why;
}

static const char *check_server(const char *v)
{
    char z[DNSBL_DOMAIN_MAX + 1], s[64], buf[128];
    const char *why = NULL;
    snprintf(buf, sizeof buf, "x=%s", v ? v : "");
    return dnsbl_route_parse(buf, z, sizeof z, s, sizeof s, &why) == 0 ? NULL : why;
}

static const char *check_net(const char *v)
{
    struct net_range r;
    return net_range_parse(v, &r) ? NULL : "want an address or a network (192.0.2.0/24)";
}

static const char *check_reply(const char *v)
{
    if (v == NULL || strlen(v) < 10 || v[0] != '5' || v[3] != ' ')
        return "want a 5xx reply with an enhanced status code (554 5.7.1 text)";
    return NULL;
}

static const struct sg_option dnsbl_options[] = {
    {"sites", SG_OPT_STRING, NULL, check_sites, 0, 0},
    {"rhsbl_helo_sites", SG_OPT_STRING, NULL, check_sites, 0, 0},
    {"rhsbl_sender_sites", SG_OPT_STRING, NULL, check_sites, 0, 0},
    {"threshold", SG_OPT_FLOAT, "1", NULL, -1000, 1000},
    {"allowlist_threshold", SG_OPT_FLOAT, "0", NULL, -1000, 0}, /* 0: off */
    {"action", SG_OPT_STRING, "\"reject\"", check_action, 0, 0},
    {"reply", SG_OPT_STRING, "\"" DNSBL_DEFAULT_REPLY "\"", check_reply, 0, 0},
    {"dns_timeout", SG_OPT_FLOAT, "2", NULL, 0.01, 60},
    {"nameservers", SG_OPT_LIST, NULL, check_server, 0, 0},
    {"site_nameservers", SG_OPT_LIST, NULL, check_route, 0, 0},
    {"cache_size", SG_OPT_INT, "10000", NULL, 0, 10000000},
    {"negative_ttl", SG_OPT_FLOAT, "60", NULL, 0, 86400},
    {"exempt_networks", SG_OPT_LIST, NULL, check_net, 0, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

static void inst_free(struct dnsbl_inst *in)
{
    if (!in)
        return;
    for (int k = 0; k < LIST__COUNT; k++)
        dnsbl_sites_free(&in->lists[k]);
    free(in->reply);
    free(in->exempt);
    dnsbl_cache_unref(in->cache);
    free(in);
}

static int load_list(const struct sg_host *h, const struct sg_section *sec, const char *key,
                     struct dnsbl_sites *out)
{
    const char *v = h->opt_string(sec, key);
    const char *why;
    size_t at;
    if (v == NULL || *v == '\0')
        return 0;
    if (dnsbl_sites_parse(v, strlen(v), out, &why, &at) != 0) {
        h->config_error(sec, key, "%s at octet %zu", why, at + 1);
        return -1;
    }
    return 0;
}

/* Without `nameservers`: the system's, read from /etc/resolv.conf once
 * here, so that no lookup reads a file on an event loop.  The number found
 * (at most MAX_SERVERS). */
static size_t system_nameservers(struct dnsbl_inst *in)
{
    struct event_base *base = event_base_new();
    struct evdns_base *dns = base ? evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS) : NULL;
    int n = dns ? evdns_base_count_nameservers(dns) : 0;
    for (int i = 0; i < n && in->nservers < MAX_SERVERS; i++) {
        struct sockaddr_storage ss;
        char addr[INET6_ADDRSTRLEN];
        int len = evdns_base_get_nameserver_addr(dns, i, (struct sockaddr *)&ss, sizeof ss);
        if (len <= 0)
            continue;
        char *out = in->servers[in->nservers];
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, addr, sizeof addr);
            snprintf(out, sizeof in->servers[0], "%s:%u", addr, ntohs(a->sin_port));
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof addr);
            snprintf(out, sizeof in->servers[0], "[%s]:%u", addr, ntohs(a->sin6_port));
        } else {
            continue;
        }
        in->nservers++;
    }
    if (dns)
        evdns_base_free(dns, 0);
    if (base)
        event_base_free(base);
    return in->nservers;
}

static int dnsbl_load(const struct sg_host *h, const struct sg_section *sec, void *previous,
                      void **instance)
{
    struct dnsbl_inst *in = calloc(1, sizeof(*in));
    if (!in) {
        h->config_error(sec, NULL, "out of memory");
        return -1;
    }
    in->host = h;
    static const char *const keys[LIST__COUNT] = {"sites", "rhsbl_helo_sites",
                                                  "rhsbl_sender_sites"};
    for (int k = 0; k < LIST__COUNT; k++)
        if (load_list(h, sec, keys[k], &in->lists[k]) != 0)
            goto fail;
    if (in->lists[0].n + in->lists[1].n + in->lists[2].n == 0) {
        h->config_error(sec, "sites",
                        "no site to query (sites, rhsbl_helo_sites, "
                        "rhsbl_sender_sites)");
        goto fail;
    }
    in->threshold = h->opt_float(sec, "threshold");
    in->allowlist_threshold = h->opt_float(sec, "allowlist_threshold");
    in->reject = strcmp(h->opt_string(sec, "action"), "reject") == 0;
    in->reply = strdup(h->opt_string(sec, "reply"));
    in->timeout = h->opt_float(sec, "dns_timeout");
    in->negative_ttl = h->opt_float(sec, "negative_ttl");
    if (!in->reply)
        goto nomem;
    if (SG_HAS(h, verdict_timeout) && in->timeout >= h->verdict_timeout(sec))
        h->config_warning(sec, "dns_timeout",
                          "%.3fs is not below the plugin's timeout (%.3fs): the host's "
                          "failure_verdict would come first",
                          in->timeout, h->verdict_timeout(sec));
    size_t n = h->opt_list_size(sec, "nameservers");
    if (n > MAX_SERVERS) {
        h->config_error(sec, "nameservers", "at most %d nameservers", MAX_SERVERS);
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        snprintf(in->servers[in->nservers++], sizeof in->servers[0], "%s",
                 h->opt_list_item(sec, "nameservers", i));
    if (in->nservers == 0 && system_nameservers(in) == 0) {
        h->config_error(sec, "nameservers", "none given, and none in /etc/resolv.conf");
        goto fail;
    }
    n = h->opt_list_size(sec, "site_nameservers");
    if (n > MAX_ROUTES) {
        h->config_error(sec, "site_nameservers", "at most %d routes", MAX_ROUTES);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const char *why;
        struct route *r = &in->routes[in->nroutes++];
        if (dnsbl_route_parse(h->opt_list_item(sec, "site_nameservers", i), r->zone, sizeof r->zone,
                              r->server, sizeof r->server, &why) != 0) {
            h->config_error(sec, "site_nameservers", "%s", why);
            goto fail;
        }
    }
    n = h->opt_list_size(sec, "exempt_networks");
    if (n > 0 && !(in->exempt = calloc(n, sizeof(*in->exempt))))
        goto nomem;
    for (size_t i = 0; i < n; i++)
        if (net_range_parse(h->opt_list_item(sec, "exempt_networks", i), &in->exempt[i]))
            in->nexempt++;
    /* the answers stay good across a reload: the new instance shares them,
     * unless the admin resized the cache */
    const struct dnsbl_inst *prev = previous;
    in->cache_size = (size_t)h->opt_int(sec, "cache_size");
    if (prev && prev->cache && prev->cache_size == in->cache_size)
        in->cache = dnsbl_cache_ref(prev->cache);
    else if (!(in->cache = dnsbl_cache_new(in->cache_size)))
        goto nomem;
    unsigned stages = 0;
    if (in->lists[LIST_CLIENT].n)
        stages |= SG_STAGE_BIT(SG_STAGE_CONNECT);
    if (in->lists[LIST_HELO].n)
        stages |= SG_STAGE_BIT(SG_STAGE_HELO);
    if (in->lists[LIST_SENDER].n)
        stages |= SG_STAGE_BIT(SG_STAGE_MAIL);
    if (SG_HAS(h, set_stages))
        h->set_stages(sec, stages);
    if (!SG_HAS(h, event_loop) || !SG_HAS(h, add_symbol)) {
        h->config_error(sec, NULL,
                        "this smtpgate lacks the event loop or symbols of the "
                        "plugin API: upgrade it");
        goto fail;
    }
    *instance = in;
    return 0;
nomem:
    h->config_error(sec, NULL, "out of memory");
fail:
    inst_free(in);
    return -1;
}

static int dnsbl_init(const struct sg_host *h, const struct sg_section *sec, void **instance)
{
    return dnsbl_load(h, sec, NULL, instance);
}

static int dnsbl_reload(const struct sg_host *h, const struct sg_section *sec, void *previous,
                        void **instance)
{
    return dnsbl_load(h, sec, previous, instance);
}

static void dnsbl_fini(void *instance)
{
    inst_free(instance);
}

/* ---- lookups ---- */

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct dnsbl_conn *conn_state(struct sg_ctx *ctx, const struct sg_host *h)
{
    struct dnsbl_conn *c = h->conn_data(ctx);
    if (c)
        return c;
    if ((c = calloc(1, sizeof(*c))) != NULL)
        h->set_conn_data(ctx, c, free);
    return c;
}

/* The route's server for a site, or NULL for `nameservers`. */
static const char *route_of(const struct dnsbl_inst *in, const char *domain)
{
    for (size_t i = 0; i < in->nroutes; i++)
        if (strcmp(in->routes[i].zone, domain) == 0)
            return in->routes[i].server;
    return NULL;
}

static struct evdns_base *dns_for(struct lookup *lk, const char *server)
{
    for (size_t i = 0; i < lk->ndns; i++)
        if ((server == NULL) == (lk->dns_server[i] == NULL) &&
            (server == NULL || strcmp(server, lk->dns_server[i]) == 0))
            return lk->dns[i];
    const struct dnsbl_inst *in = lk->in;
    struct evdns_base *dns = evdns_base_new(lk->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!dns)
        return NULL;
    bool ok = true;
    if (server)
        ok = evdns_base_nameserver_ip_add(dns, server) == 0;
    for (size_t i = 0; !server && i < in->nservers && ok; i++)
        ok = evdns_base_nameserver_ip_add(dns, in->servers[i]) == 0;
    if (!ok || evdns_base_count_nameservers(dns) == 0) {
        evdns_base_free(dns, 0);
        return NULL;
    }
    /* evdns retries within our deadline; the deadline itself is ours */
    char t[32];
    snprintf(t, sizeof t, "%.3f", in->timeout / 2 > 0.01 ? in->timeout / 2 : 0.01);
    evdns_base_set_option(dns, "timeout:", t);
    evdns_base_set_option(dns, "attempts:", "2");
    evdns_base_set_option(dns, "randomize-case:", "0");
    lk->dns[lk->ndns] = dns;
    lk->dns_server[lk->ndns++] = server;
    return dns;
}

/* One symbol per listed domain: its entries that took an answer add up
 * (hit[i] per query), each domain once, at its first listed entry. */
static void add_symbols(struct lookup *lk, const bool *hit)
{
    const struct sg_host *h = lk->in->host;
    const struct dnsbl_sites *sites = &lk->in->lists[lk->kind];
    for (size_t i = 0; i < lk->nq; i++) {
        if (!hit[i])
            continue;
        const char *domain = sites->v[lk->q[i].site].domain;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = hit[k] && strcmp(sites->v[lk->q[k].site].domain, domain) == 0;
        if (seen)
            continue;
        double weight = 0;
        for (size_t k = i; k < lk->nq; k++)
            if (hit[k] && strcmp(sites->v[lk->q[k].site].domain, domain) == 0)
                weight += sites->v[lk->q[k].site].weight;
        char name[160];
        dnsbl_symbol_name(kind_prefix[lk->kind], domain, name, sizeof name);
        h->add_symbol(lk->ctx,
                      lk->kind == LIST_SENDER ? SG_SYMBOL_TRANSACTION : SG_SYMBOL_CONNECTION, name,
                      weight, domain);
    }
}

/* "$client_address" "$rbl_domain" "$rbl_what" in the reply template. */
static void format_reply(const struct lookup *lk, const char *domain, char *out, size_t size)
{
    const char *client = lk->in->host->conn(lk->ctx)->client_addr;
    const char *t = lk->in->reply;
    size_t k = 0;
    while (*t && k + 1 < size) {
        const char *val = NULL;
        size_t skip = 0;
        if (strncmp(t, "$client_address", 15) == 0)
            val = client ? client : "unknown", skip = 15;
        else if (strncmp(t, "$rbl_domain", 11) == 0)
            val = domain, skip = 11;
        else if (strncmp(t, "$rbl_what", 9) == 0)
            val = lk->what, skip = 9;
        if (val) {
            k += (size_t)snprintf(out + k, size - k, "%s", val);
            if (k >= size)
                k = size - 1;
            t += skip;
        } else {
            out[k++] = *t++;
        }
    }
    out[k] = '\0';
}

/* Every answer is in (or the deadline passed): the stage's verdict. */
static enum sg_verdict decide(struct lookup *lk)
{
    struct dnsbl_inst *in = lk->in;
    const struct sg_host *h = in->host;
    struct sg_ctx *ctx = lk->ctx;
    const struct dnsbl_sites *sites = &in->lists[lk->kind];
    double score = 0, best = 0;
    const char *best_domain = NULL;
    char listed[512] = "";
    size_t ll = 0;
    bool hits[DNSBL_MAX_SITES] = {false};
    for (size_t i = 0; i < lk->nq; i++) {
        const struct dnsbl_site *site = &sites->v[lk->q[i].site];
        const struct query *q = lk->q[i].dup_of >= 0 ? &lk->q[lk->q[i].dup_of] : &lk->q[i];
        if (q->timed_out) {
            if (lk->q[i].dup_of >= 0)
                continue; /* logged and counted once */
            h->log(ctx, SG_LOG_WARNING,
                   "dnsbl: %s did not answer for %s within %.3fs: counted as not listed",
                   site->domain, q->name, in->timeout);
            h->counter_add(ctx, "timeouts", 1);
            continue;
        }
        bool hit = false;
        for (unsigned a = 0; a < q->ans.n && !hit; a++)
            hit = dnsbl_site_match(site, q->ans.addr[a]);
        if (!hit)
            continue;
        hits[i] = true;
        score += site->weight;
        int n = snprintf(listed + ll, sizeof listed - ll, "%s%s(%g)", ll ? "," : "", site->domain,
                         site->weight);
        if (n > 0 && (size_t)n < sizeof listed - ll)
            ll += (size_t)n;
        if (best_domain == NULL || site->weight > best) {
            best = site->weight;
            best_domain = site->domain;
        }
    }
    add_symbols(lk, hits);
    struct dnsbl_conn *c = conn_state(ctx, h);
    double total = score;
    if (c) {
        c->score[lk->kind] = score;
        total = c->score[LIST_CLIENT] + c->score[LIST_HELO] + c->score[LIST_SENDER];
    }
    if (lk->kind == LIST_CLIENT && in->allowlist_threshold < 0 &&
        total <= in->allowlist_threshold) {
        if (c)
            c->allowlisted = true;
        h->add_symbol(ctx, SG_SYMBOL_CONNECTION, "DNSBL_ALLOWLISTED", 0, NULL);
        h->counter_add(ctx, "allowlisted", 1);
        h->log(ctx, SG_LOG_INFO, "dnsbl: %s allowlisted: score=%g listed=%s", lk->what, total,
               ll ? listed : "none");
        return SG_CONTINUE;
    }
    if (ll == 0 || total < in->threshold || best_domain == NULL) {
        if (ll)
            h->log(ctx, SG_LOG_INFO, "dnsbl: %s score=%g below threshold %g: listed=%s", lk->what,
                   total, in->threshold, listed);
        return SG_CONTINUE;
    }
    h->counter_add(ctx, "listed", 1);
    h->log(ctx, SG_LOG_INFO, "dnsbl: %s listed: score=%g threshold=%g listed=%s%s", lk->what, total,
           in->threshold, listed, in->reject ? "" : " (scored only)");
    if (!in->reject)
        return SG_CONTINUE;
    char reply[1024];
    format_reply(lk, best_domain, reply, sizeof reply);
    if (h->set_reply(ctx, reply) != 0)
        h->log(ctx, SG_LOG_WARNING, "dnsbl: the host refused the reply \"%s\"", reply);
    return SG_REJECT;
}

static void lookup_free(struct lookup *lk)
{
    if (lk->deadline)
        event_free(lk->deadline);
    for (size_t i = 0; i < lk->ndns; i++)
        evdns_base_free(lk->dns[i], 0);
    free(lk);
}

/* On the loop, outside any evdns callback: the bases can go, then the verdict. */
static void finish_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lookup *lk = arg;
    const struct sg_host *h = lk->in->host;
    struct sg_ctx *ctx = lk->ctx;
    enum sg_verdict v = decide(lk);
    lookup_free(lk);
    h->resolve(ctx, v, NULL);
}

static void schedule_finish(struct lookup *lk)
{
    struct timeval now = {0, 0};
    if (lk->deadline)
        event_del(lk->deadline);
    if (event_base_once(lk->base, -1, EV_TIMEOUT, finish_cb, lk, &now) != 0) {
        /* no memory for the event: the host's timeout gives the failure
         * verdict; the lookup stays, as a freed ctx could still be reached */
        lk->in->host->log(lk->ctx, SG_LOG_ERR, "dnsbl: cannot schedule the verdict");
    }
}

static void answer_cb(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    struct query *q = arg;
    struct lookup *lk = q->lk;
    struct dnsbl_inst *in = lk->in;
    q->req = NULL;
    if (result == DNS_ERR_CANCEL || lk->expired) {
        q->timed_out = !q->answered;
    } else if (result == DNS_ERR_NONE && type == DNS_IPv4_A) {
        q->answered = true;
        const uint8_t *a = addresses;
        for (int i = 0; i < count && q->ans.n < DNSBL_ANSWER_MAX; i++)
            memcpy(q->ans.addr[q->ans.n++], a + 4 * i, 4);
        dnsbl_cache_put(in->cache, q->name, &q->ans, ttl > 86400 ? 86400 : ttl, mono_now());
    } else if (result == DNS_ERR_NOTEXIST || result == DNS_ERR_NODATA ||
               (result == DNS_ERR_NONE && count == 0)) {
        q->answered = true; /* not listed, for good */
        dnsbl_cache_put(in->cache, q->name, &q->ans,
                        ttl > 0 ? (ttl > 86400 ? 86400 : ttl) : in->negative_ttl, mono_now());
    } else if (result == DNS_ERR_TIMEOUT) {
        q->timed_out = true;
    } else {
        q->answered = true;
        q->failed = true;
        in->host->log(lk->ctx, SG_LOG_INFO, "dnsbl: %s: %s, counted as not listed", q->name,
                      evdns_err_to_string(result));
        in->host->counter_add(lk->ctx, "errors", 1);
    }
    if (--lk->outstanding == 0)
        schedule_finish(lk);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lookup *lk = arg;
    lk->expired = true;
    /* each cancelled request still calls back (DNS_ERR_CANCEL); the last
     * one schedules the verdict */
    for (size_t i = 0; i < lk->nq; i++)
        if (lk->q[i].req)
            evdns_cancel_request(lk->q[i].dns, lk->q[i].req);
}

/* Starts the queries of list kind for subject (an address, a HELO name, a
 * domain).  The verdict now when every answer is cached or nothing can be
 * asked; SG_PENDING when it comes through resolve(). */
static enum sg_verdict lookup_start(struct sg_ctx *ctx, struct dnsbl_inst *in, enum list_kind kind,
                                    const char *subject, const char *what)
{
    const struct sg_host *h = in->host;
    const struct dnsbl_sites *sites = &in->lists[kind];
    struct lookup *lk = calloc(1, sizeof(*lk) + sites->n * sizeof(struct query));
    if (!lk)
        return SG_CONTINUE;
    lk->in = in;
    lk->ctx = ctx;
    lk->kind = kind;
    snprintf(lk->what, sizeof lk->what, "%s", what);
    double now = mono_now();
    size_t to_send = 0;
    for (size_t i = 0; i < sites->n; i++) {
        struct query *q = &lk->q[lk->nq];
        q->lk = lk;
        q->site = i;
        bool ok = kind == LIST_CLIENT ? dnsbl_ip_name(subject, sites->v[i].domain, q->name)
                                      : dnsbl_rhs_name(subject, sites->v[i].domain, q->name);
        if (!ok)
            continue;
        lk->nq++;
        /* the same name under one domain with several filters: one question */
        q->dup_of = -1;
        for (size_t k = 0; k + 1 < lk->nq && q->dup_of < 0; k++)
            if (strcmp(lk->q[k].name, q->name) == 0)
                q->dup_of = (long)k;
        if (q->dup_of >= 0)
            q->answered = true;
        else if (dnsbl_cache_get(in->cache, q->name, now, &q->ans)) {
            q->answered = true;
            h->counter_add(ctx, "cache_hits", 1);
        } else {
            to_send++;
        }
    }
    if (to_send == 0)
        goto now;
    lk->base = h->event_loop(ctx, NULL);
    if (!lk->base) {
        h->log(ctx, SG_LOG_ERR, "dnsbl: no event loop here: not checked");
        free(lk);
        return SG_CONTINUE;
    }
    lk->deadline = evtimer_new(lk->base, deadline_cb, lk);
    if (!lk->deadline)
        goto nothing;
    for (size_t i = 0; i < lk->nq; i++) {
        struct query *q = &lk->q[i];
        if (q->answered)
            continue;
        const char *route = route_of(in, sites->v[q->site].domain);
        q->dns = dns_for(lk, route);
        if (!q->dns) {
            h->log(ctx, SG_LOG_ERR, "dnsbl: cannot set up a resolver for %s: not checked",
                   route ? route : "the nameservers");
            q->answered = q->failed = true;
            continue;
        }
        lk->outstanding++;
        q->req = evdns_base_resolve_ipv4(q->dns, q->name, DNS_QUERY_NO_SEARCH, answer_cb, q);
        if (!q->req) {
            /* evdns says it did not start: no callback comes */
            lk->outstanding--;
            q->answered = q->failed = true;
            continue;
        }
        h->counter_add(ctx, "queries", 1);
    }
    if (lk->outstanding == 0)
        goto now;
    struct timeval tv = {(time_t)in->timeout,
                         (suseconds_t)((in->timeout - (double)(time_t)in->timeout) * 1e6)};
    evtimer_add(lk->deadline, &tv);
    return SG_PENDING;
now:;
    enum sg_verdict v = decide(lk);
    lookup_free(lk);
    return v;
nothing:
    lookup_free(lk);
    return SG_CONTINUE;
}

/* ---- callbacks ---- */

static bool exempt(const struct dnsbl_inst *in, const struct sg_conn_info *ci)
{
    return in->nexempt > 0 && ci->client_addr &&
           net_ranges_match_text(in->exempt, in->nexempt, ci->client_addr);
}

static enum sg_verdict dnsbl_connect(struct sg_ctx *ctx, void *instance)
{
    struct dnsbl_inst *in = instance;
    const struct sg_host *h = in->host;
    const struct sg_conn_info *ci = h->conn(ctx);
    struct dnsbl_conn *c = conn_state(ctx, h);
    if (exempt(in, ci)) {
        if (c)
            c->exempt = true;
        h->counter_add(ctx, "exempt", 1);
        return SG_CONTINUE;
    }
    if (in->lists[LIST_CLIENT].n == 0 || !ci->client_addr)
        return SG_CONTINUE;
    char what[128];
    snprintf(what, sizeof what, "client [%s]", ci->client_addr);
    return lookup_start(ctx, in, LIST_CLIENT, ci->client_addr, what);
}

/* An allowlisted or exempt client skips the later reputation checks. */
static bool skip_later(struct sg_ctx *ctx, const struct dnsbl_inst *in)
{
    const struct dnsbl_conn *c = in->host->conn_data(ctx);
    return c && (c->allowlisted || c->exempt);
}

static enum sg_verdict dnsbl_helo(struct sg_ctx *ctx, void *instance)
{
    struct dnsbl_inst *in = instance;
    const struct sg_host *h = in->host;
    const struct sg_conn_info *ci = h->conn(ctx);
    struct dnsbl_conn *c = h->conn_data(ctx);
    if (c)
        c->score[LIST_HELO] = 0; /* a new HELO: the old name's listing is gone */
    if (in->lists[LIST_HELO].n == 0 || !ci->helo || skip_later(ctx, in) || exempt(in, ci))
        return SG_CONTINUE;
    char what[300];
    snprintf(what, sizeof what, "helo name %s", ci->helo);
    return lookup_start(ctx, in, LIST_HELO, ci->helo, what);
}

static enum sg_verdict dnsbl_mail(struct sg_ctx *ctx, void *instance, const char *from,
                                  const char *params)
{
    (void)params;
    struct dnsbl_inst *in = instance;
    const struct sg_host *h = in->host;
    const char *at = from ? strrchr(from, '@') : NULL;
    struct dnsbl_conn *c = h->conn_data(ctx);
    if (c)
        c->score[LIST_SENDER] = 0; /* a new transaction: its own sender */
    if (in->lists[LIST_SENDER].n == 0 || !at || !at[1] || skip_later(ctx, in) ||
        exempt(in, h->conn(ctx)))
        return SG_CONTINUE;
    char what[300];
    snprintf(what, sizeof what, "sender domain %s", at + 1);
    return lookup_start(ctx, in, LIST_SENDER, at + 1, what);
}

SG_PLUGIN_EXPORT const struct sg_plugin smtpgate_plugin = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "dnsbl",
    .version = "1.0",
    .description = "weighted DNS block and allow lists (postscreen semantics) and RHSBL, "
                   "asynchronous on the session's event loop",
    .options = dnsbl_options,
    .init = dnsbl_init,
    .reload = dnsbl_reload,
    .fini = dnsbl_fini,
    .connect = dnsbl_connect,
    .helo = dnsbl_helo,
    .mail = dnsbl_mail,
};
