/*
 * spf_dns - the DNS under SPF checks: c-ares as a libspf2 DNS layer, with
 * libspf2's cache layer in front.
 *
 * One look-up is one ares_query() on a channel taken from the layer's pool
 * (a c-ares 1.18 channel is not to be shared between threads; a channel is
 * used by one thread at a time and put back), driven by poll() until its
 * callback runs or the budget - the layer's timeout, cut to the calling
 * thread's deadline - is spent, when ares_cancel() ends it.  c-ares sends
 * the query (fresh id, EDNS0 offering 1232 octets, a new UDP socket and so
 * a new source port each time), accepts an answer only from the server
 * asked with our id and our question, asks again over TCP when the answer
 * is truncated, moves to the next server on a timeout, SERVFAIL, REFUSED or
 * an unreachable port, and goes round the servers twice: each try waits
 * its share, the second round twice as long as the first.  The reply is
 * made into libspf2's records by spf_dns_reply_rr().
 *
 * A check waiting on an event loop (spf_async) does not block here: it
 * reads the cache through spf_dns_cached(), asks c-ares itself on a
 * channel from spf_dns_channel_for(), set up as this layer's, and hands
 * the answer to the cache with spf_dns_cache_put().  Both go through the
 * cache layer, which calls this layer on a miss; for that one call, on the
 * calling thread, this layer answers without the network (a miss, or the
 * answer handed over), which libspf2's cache has no other way to offer.
 */
#include "spf_dns.h"

#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <spf2/spf_dns_cache.h>

#include "spf_dns_reply.h"

#define DNS_UDP_SIZE 1232
#define DNS_TRIES    2
/* Idle channels kept for reuse: more than the worker threads that check at once. */
#define DNS_POOL_MAX 64

struct dns_layer {
    struct ares_addr_port_node server; /* the nameserver option, when given */
    bool have_server;
    long timeout_ms;
    int try_ms; /* c-ares's timeout for the first round of tries */
    pthread_mutex_t lock;
    ares_channel idle[DNS_POOL_MAX];
    size_t nidle;
};

/* One look-up in flight: the callback's result. */
struct dns_query {
    SPF_dns_server_t *srv;
    const char *domain;
    ns_type type;
    bool done;
    SPF_dns_rr_t *rr; /* NULL when done: out of memory */
};

/* spf_dns_cached() and spf_dns_cache_put() go through the stack's cache
 * layer, which asks this layer on a miss: for the calling thread, during
 * that one call, it answers without the network. */
static _Thread_local bool dns_probe_on, dns_probe_missed;
static _Thread_local SPF_dns_rr_t *dns_inject;

static _Thread_local struct timespec dns_deadline;
static _Thread_local int dns_deadline_on;

void spf_dns_deadline_set(const struct timespec *abs)
{
    if (abs == NULL || (abs->tv_sec == 0 && abs->tv_nsec == 0)) {
        dns_deadline_on = 0;
        return;
    }
    dns_deadline = *abs;
    dns_deadline_on = 1;
}

static long dns_ms_until(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    /* Whole milliseconds left, rounded down: less than one is none. */
    long long ns = (long long)(t->tv_sec - now.tv_sec) * 1000000000LL + (t->tv_nsec - now.tv_nsec);
    return ns <= 0 ? 0 : (long)(ns / 1000000);
}

long spf_dns_deadline_left(void)
{
    return dns_deadline_on ? dns_ms_until(&dns_deadline) : -1;
}

int spf_dns_parse_nameserver(const char *s, struct sockaddr_storage *ss, socklen_t *sslen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port = NULL;
    size_t hl;
    if (s == NULL || *s == '\0')
        return -1;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL)
            return -1;
        hl = (size_t)(close - s - 1);
        if (hl >= sizeof host)
            return -1;
        memcpy(host, s + 1, hl);
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] != '\0')
            return -1;
    } else {
        const char *colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            hl = (size_t)(colon - s);
            port = colon + 1;
        } else {
            hl = strlen(s);
        }
        if (hl >= sizeof host)
            return -1;
        memcpy(host, s, hl);
    }
    host[hl] = '\0';
    unsigned long p = 53;
    if (port != NULL) {
        char *end;
        if (*port < '0' || *port > '9')
            return -1;
        p = strtoul(port, &end, 10);
        if (*end != '\0' || p == 0 || p > 65535)
            return -1;
    }
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        *sslen = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        *sslen = sizeof *v6;
        return 0;
    }
    return -1;
}

static pthread_once_t dns_lib_once = PTHREAD_ONCE_INIT;
static int dns_lib_status = ARES_ENOTINITIALIZED;

static void dns_lib_init(void)
{
    dns_lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

/* A channel set up as the layer says; ARES_SUCCESS or c-ares's error.
 * sock_cb (may be NULL) is told of every socket c-ares opens, wants to
 * read or write, or closes. */
static int dns_channel_new(const struct dns_layer *l, int try_ms, ares_sock_state_cb sock_cb,
                           void *sock_data, ares_channel *out)
{
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.flags = ARES_FLAG_EDNS | ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    o.timeout = try_ms;
    o.tries = DNS_TRIES;
    o.ednspsz = DNS_UDP_SIZE;
    int mask =
        ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_EDNSPSZ | ARES_OPT_NOROTATE;
    if (sock_cb != NULL) {
        o.sock_state_cb = sock_cb;
        o.sock_state_cb_data = sock_data;
        mask |= ARES_OPT_SOCK_STATE_CB;
    }
    int st = ares_init_options(out, &o, mask);
    if (st != ARES_SUCCESS)
        return st;
    if (l->have_server) {
        struct ares_addr_port_node node = l->server;
        node.next = NULL;
        st = ares_set_servers_ports(*out, &node);
        if (st != ARES_SUCCESS)
            ares_destroy(*out);
    }
    return st;
}

static ares_channel dns_channel_get(struct dns_layer *l)
{
    ares_channel ch = NULL;
    pthread_mutex_lock(&l->lock);
    if (l->nidle > 0)
        ch = l->idle[--l->nidle];
    pthread_mutex_unlock(&l->lock);
    if (ch == NULL && dns_channel_new(l, l->try_ms, NULL, NULL, &ch) != ARES_SUCCESS)
        ch = NULL;
    return ch;
}

static void dns_channel_put(struct dns_layer *l, ares_channel ch)
{
    pthread_mutex_lock(&l->lock);
    if (l->nidle < DNS_POOL_MAX) {
        l->idle[l->nidle++] = ch;
        ch = NULL;
    }
    pthread_mutex_unlock(&l->lock);
    if (ch != NULL)
        ares_destroy(ch);
}

static void dns_on_reply(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct dns_query *q = arg;
    if (q->done)
        return;
    q->done = true;
    q->rr = spf_dns_reply_rr(q->srv, q->domain, q->type, status, abuf, alen);
}

/* Runs ch until q is done, cancelling it at end (CLOCK_MONOTONIC). */
static void dns_run(ares_channel ch, struct dns_query *q, const struct timespec *end)
{
    while (!q->done) {
        long left = dns_ms_until(end);
        if (left <= 0) {
            ares_cancel(ch); /* the callback runs with ARES_ECANCELLED */
            break;
        }
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        nfds_t n = 0;
        /* Bit i: socks[i] to read, bit 16 + i: to write (ARES_GETSOCK_WRITABLE
         * itself shifts a signed 1 into the sign bit). */
        unsigned bits = (unsigned)ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = (short)((((bits >> i) & 1u) ? POLLIN : 0) |
                               (((bits >> (i + ARES_GETSOCK_MAXNUM)) & 1u) ? POLLOUT : 0));
            if (ev != 0)
                pfd[n++] = (struct pollfd){.fd = socks[i], .events = ev};
        }
        struct timeval max = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000}, tv;
        struct timeval *t = ares_timeout(ch, &max, &tv);
        long wait = (long)t->tv_sec * 1000 + (t->tv_usec + 999) / 1000;
        int r = poll(pfd, n, (int)(wait < left ? wait : left));
        if (r < 0 && errno != EINTR) {
            ares_cancel(ch);
            break;
        }
        if (r <= 0) {
            /* Tries whose time is up move on to the next server. */
            ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
            continue;
        }
        for (nfds_t i = 0; i < n && !q->done; i++) {
            short re = pfd[i].revents;
            if (re == 0)
                continue;
            ares_process_fd(ch, (re & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd : ARES_SOCKET_BAD,
                            (re & (POLLOUT | POLLERR | POLLHUP)) ? pfd[i].fd : ARES_SOCKET_BAD);
        }
    }
}

static SPF_dns_rr_t *dns_layer_lookup(SPF_dns_server_t *srv, const char *domain, ns_type type,
                                      int should_cache)
{
    (void)should_cache;
    struct dns_layer *l = srv->hook;
    if (dns_inject != NULL && dns_inject->rr_type == type &&
        strcasecmp(dns_inject->domain, domain) == 0) {
        SPF_dns_rr_t *dup = NULL;
        if (SPF_dns_rr_dup(&dup, dns_inject) == SPF_E_SUCCESS)
            return dup;
        if (dup != NULL)
            SPF_dns_rr_free(dup);
        return NULL;
    }
    if (dns_probe_on) {
        dns_probe_missed = true;
        return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
    }
    /* The end: the layer's timeout from now, or the thread's deadline. */
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += l->timeout_ms / 1000;
    end.tv_nsec += (l->timeout_ms % 1000) * 1000000;
    if (end.tv_nsec >= 1000000000) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000;
    }
    if (dns_deadline_on &&
        (dns_deadline.tv_sec < end.tv_sec ||
         (dns_deadline.tv_sec == end.tv_sec && dns_deadline.tv_nsec < end.tv_nsec)))
        end = dns_deadline;
    if (dns_ms_until(&end) <= 0)
        return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
    ares_channel ch = dns_channel_get(l);
    if (ch == NULL)
        return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
    struct dns_query q = {.srv = srv, .domain = domain, .type = type};
    ares_query(ch, domain, ns_c_in, type, dns_on_reply, &q);
    dns_run(ch, &q, &end);
    if (q.done) {
        dns_channel_put(l, ch);
        return q.rr;
    }
    /* Not seen to end (ares_cancel always ends it): not used again. */
    ares_destroy(ch);
    return q.done ? q.rr : SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
}

static void dns_layer_destroy(SPF_dns_server_t *srv)
{
    if (srv == NULL)
        return;
    struct dns_layer *l = srv->hook;
    if (l != NULL) {
        for (size_t i = 0; i < l->nidle; i++)
            ares_destroy(l->idle[i]);
        pthread_mutex_destroy(&l->lock);
        free(l);
    }
    free(srv);
}

/* How many servers the channel asks (resolv.conf's, or the one given). */
static int dns_count_servers(ares_channel ch)
{
    struct ares_addr_port_node *list = NULL;
    int n = 0;
    if (ares_get_servers_ports(ch, &list) != ARES_SUCCESS)
        return 0;
    for (struct ares_addr_port_node *p = list; p != NULL; p = p->next)
        n++;
    ares_free_data(list);
    return n;
}

SPF_dns_server_t *spf_dns_resolver_new(const char *nameserver, long timeout_ms, char *err,
                                       size_t errlen)
{
    pthread_once(&dns_lib_once, dns_lib_init);
    if (dns_lib_status != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(dns_lib_status));
        return NULL;
    }
    struct dns_layer *l = calloc(1, sizeof *l);
    SPF_dns_server_t *srv = calloc(1, sizeof *srv);
    if (l == NULL || srv == NULL) {
        free(l);
        free(srv);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    if (nameserver != NULL && *nameserver != '\0') {
        struct sockaddr_storage ss;
        socklen_t sslen;
        if (spf_dns_parse_nameserver(nameserver, &ss, &sslen) < 0) {
            snprintf(err, errlen, "invalid nameserver '%s' (want ADDR, ADDR:PORT or [ADDR6]:PORT)",
                     nameserver);
            free(l);
            free(srv);
            return NULL;
        }
        struct ares_addr_port_node *n = &l->server;
        n->family = ss.ss_family;
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
            n->addr.addr4 = v4->sin_addr;
            n->udp_port = n->tcp_port = ntohs(v4->sin_port);
        } else {
            const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
            memcpy(&n->addr.addr6, &v6->sin6_addr, sizeof v6->sin6_addr);
            n->udp_port = n->tcp_port = ntohs(v6->sin6_port);
        }
        l->have_server = true;
    }
    /* A first channel tells how many servers there are; each try of the
     * first round gets a third of the timeout shared among them, each of
     * the second round twice that, so that both rounds fit the timeout. */
    ares_channel ch;
    int st = dns_channel_new(l, (int)l->timeout_ms, NULL, NULL, &ch);
    if (st != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(st));
        free(l);
        free(srv);
        return NULL;
    }
    int nservers = dns_count_servers(ch);
    ares_destroy(ch);
    long try_ms = l->timeout_ms / (3L * (nservers > 0 ? nservers : 1));
    l->try_ms = try_ms > 0 ? (int)try_ms : 1;
    pthread_mutex_init(&l->lock, NULL);
    srv->destroy = dns_layer_destroy;
    srv->lookup = dns_layer_lookup;
    srv->name = "smtpgate-c-ares";
    srv->hook = l;
    return srv;
}

SPF_dns_server_t *spf_dns_stack_new(const char *nameserver, long timeout_ms, int cache_bits,
                                    char *err, size_t errlen)
{
    SPF_dns_server_t *res = spf_dns_resolver_new(nameserver, timeout_ms, err, errlen);
    if (res == NULL || cache_bits <= 0)
        return res;
    if (cache_bits > 16)
        cache_bits = 16;
    SPF_dns_server_t *cache = SPF_dns_cache_new(res, "smtpgate-cache", 0, cache_bits);
    if (cache == NULL) {
        SPF_dns_free(res);
        snprintf(err, errlen, "cannot create the DNS cache");
        return NULL;
    }
    /* Follow the records' own TTLs: libspf2's defaults keep errors (and so
     * timeouts) for 30 minutes, and every answer at least 30 s. */
    SPF_dns_cache_set_ttl(cache, 0, 0, 0, 0);
    /* With conserve_cache the layer keeps only look-ups asked with
     * should_cache: spf_check clears it for names made by macros. */
    SPF_dns_set_conserve_cache(cache, 1);
    return cache;
}

/* The c-ares layer at the bottom of stack, or NULL when it is another kind
 * (a test's zone). */
static struct dns_layer *dns_find_layer(SPF_dns_server_t *stack)
{
    for (SPF_dns_server_t *s = stack; s != NULL; s = s->layer_below)
        if (s->lookup == dns_layer_lookup)
            return s->hook;
    return NULL;
}

SPF_dns_rr_t *spf_dns_cached(SPF_dns_server_t *stack, const char *domain, ns_type type)
{
    if (stack == NULL || stack->lookup == dns_layer_lookup)
        return NULL; /* no cache in front of the resolver */
    dns_probe_on = true;
    dns_probe_missed = false;
    /* should_cache 0: with conserve_cache the cache keeps nothing of this. */
    SPF_dns_rr_t *rr = SPF_dns_lookup(stack, domain, type, 0);
    dns_probe_on = false;
    if (dns_probe_missed && rr != NULL) {
        SPF_dns_rr_free(rr);
        rr = NULL;
    }
    dns_probe_missed = false;
    return rr;
}

void spf_dns_cache_put(SPF_dns_server_t *stack, SPF_dns_rr_t *rr, bool should_cache)
{
    if (stack == NULL || rr == NULL || rr->domain == NULL || !should_cache ||
        stack->lookup == dns_layer_lookup)
        return;
    dns_inject = rr;
    SPF_dns_rr_t *r = SPF_dns_lookup(stack, rr->domain, rr->rr_type, 1);
    dns_inject = NULL;
    if (r != NULL)
        SPF_dns_rr_free(r);
}

int spf_dns_channel_for(SPF_dns_server_t *stack, ares_sock_state_cb sock_cb, void *sock_data,
                        ares_channel *out, long *timeout_ms)
{
    struct dns_layer *l = dns_find_layer(stack);
    if (l == NULL)
        return ARES_ENOTINITIALIZED;
    if (timeout_ms != NULL)
        *timeout_ms = l->timeout_ms;
    return dns_channel_new(l, l->try_ms, sock_cb, sock_data, out);
}
