/*
 * spf_dns - the DNS under SPF checks: a bounded stub resolver written as a
 * libspf2 DNS layer, with libspf2's cache layer in front.
 *
 * One query: a fresh random id, the question, an EDNS0 OPT record offering
 * 1232 octets.  Each nameserver gets the query in turn, in two rounds, each
 * try waiting its share of what is left of the budget; an answer counts
 * only from the server asked (connected UDP socket), with our id and our
 * question.  Truncated UDP answers are asked again over TCP within the same
 * budget.  Nothing here blocks without a poll() bound.
 */
#include "spf_dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <spf2/spf_dns_cache.h>

#define DNS_MAX_SERVERS 3
#define DNS_UDP_SIZE    1232
#define DNS_NEG_TTL     60
/* An answer's TTL is cut to this before libspf2's cache sees it: the cache
 * drops entries only once they expire, and a sender choosing domain names
 * and TTLs must not make it grow for days. */
#define DNS_MAX_TTL 900

struct dns_layer {
    struct sockaddr_storage ns[DNS_MAX_SERVERS];
    socklen_t nslen[DNS_MAX_SERVERS];
    size_t nns;
    long timeout_ms;
};

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
    long long ms =
        (long long)(t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
    return ms < 0 ? 0 : (long)ms;
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

static void dns_read_resolv_conf(struct dns_layer *l)
{
    FILE *f = fopen("/etc/resolv.conf", "re");
    char line[512];
    if (f != NULL) {
        while (l->nns < DNS_MAX_SERVERS && fgets(line, sizeof line, f) != NULL) {
            char addr[INET6_ADDRSTRLEN + 1];
            if (sscanf(line, " nameserver %46s", addr) != 1)
                continue;
            char *pct = strchr(addr, '%'); /* scoped link-local: not supported */
            if (pct != NULL)
                continue;
            char spec[INET6_ADDRSTRLEN + 4];
            snprintf(spec, sizeof spec, strchr(addr, ':') ? "[%s]" : "%s", addr);
            if (spf_dns_parse_nameserver(spec, &l->ns[l->nns], &l->nslen[l->nns]) == 0)
                l->nns++;
        }
        fclose(f);
    }
    if (l->nns == 0 && spf_dns_parse_nameserver("127.0.0.1", &l->ns[0], &l->nslen[0]) == 0)
        l->nns = 1;
}

/* Query message; returns its length or 0 when the name cannot be asked. */
static size_t dns_build_query(unsigned char *q, size_t cap, uint16_t id, const char *name,
                              ns_type type)
{
    size_t n = 12;
    memset(q, 0, 12);
    q[0] = (unsigned char)(id >> 8);
    q[1] = (unsigned char)id;
    q[2] = 0x01; /* RD */
    q[5] = 1;    /* QDCOUNT */
    q[11] = 1;   /* ARCOUNT: OPT */
    const char *p = name;
    while (*p != '\0') {
        const char *dot = strchr(p, '.');
        size_t ll = dot ? (size_t)(dot - p) : strlen(p);
        if (ll == 0 || ll > 63 || n + ll + 2 > cap || n + ll > 255 + 12)
            return 0;
        q[n++] = (unsigned char)ll;
        memcpy(q + n, p, ll);
        n += ll;
        p += ll;
        if (*p == '.')
            p++;
    }
    if (n + 1 + 4 + 11 > cap)
        return 0;
    q[n++] = 0;
    q[n++] = (unsigned char)(type >> 8);
    q[n++] = (unsigned char)type;
    q[n++] = 0;
    q[n++] = ns_c_in;
    /* OPT: root owner, type 41, class = payload size, ttl 0, no rdata */
    const unsigned char opt[11] = {0, 0, 41, DNS_UDP_SIZE >> 8, DNS_UDP_SIZE & 0xff, 0, 0, 0,
                                   0, 0, 0};
    memcpy(q + n, opt, sizeof opt);
    return n + sizeof opt;
}

static bool dns_matches(const unsigned char *a, size_t alen, uint16_t id, const char *name,
                        ns_type type, ns_msg *msg)
{
    if (ns_initparse(a, (int)alen, msg) < 0 || ns_msg_id(*msg) != id ||
        !ns_msg_getflag(*msg, ns_f_qr) || ns_msg_count(*msg, ns_s_qd) != 1)
        return false;
    ns_rr rr;
    if (ns_parserr(msg, ns_s_qd, 0, &rr) < 0)
        return false;
    const char *qn = ns_rr_name(rr);
    size_t l1 = strlen(qn), l2 = strlen(name);
    if (l1 > 0 && qn[l1 - 1] == '.')
        l1--;
    if (l2 > 0 && name[l2 - 1] == '.')
        l2--;
    return ns_rr_type(rr) == type && ns_rr_class(rr) == ns_c_in && l1 == l2 &&
           strncasecmp(qn, name, l1) == 0;
}

static bool dns_wait(int fd, short ev, long ms)
{
    struct pollfd pfd = {.fd = fd, .events = ev};
    for (;;) {
        int r = poll(&pfd, 1, (int)ms);
        if (r > 0)
            return true;
        if (r == 0 || errno != EINTR)
            return false;
    }
}

/* One UDP try.  1: answer in a[] (*alen), 0: nothing in time, -1: error. */
static int dns_try_udp(const struct sockaddr_storage *ns, socklen_t nslen, const unsigned char *q,
                       size_t qlen, uint16_t id, const char *name, ns_type type, long ms,
                       unsigned char *a, size_t *alen)
{
    int fd = socket(ns->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = -1;
    if (connect(fd, (const struct sockaddr *)ns, nslen) < 0 || send(fd, q, qlen, 0) < 0)
        goto out;
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += ms / 1000;
    end.tv_nsec += (ms % 1000) * 1000000;
    if (end.tv_nsec >= 1000000000) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000;
    }
    rc = 0;
    /* Stray datagrams cannot keep us here: every wait is bounded by end. */
    for (;;) {
        long left = dns_ms_until(&end);
        if (left <= 0 || !dns_wait(fd, POLLIN, left))
            break;
        ssize_t n = recv(fd, a, 65535, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            rc = -1; /* ICMP port unreachable: server down */
            break;
        }
        ns_msg msg;
        if (dns_matches(a, (size_t)n, id, name, type, &msg)) {
            *alen = (size_t)n;
            rc = 1;
            break;
        }
    }
out:
    close(fd);
    return rc;
}

static bool dns_io(int fd, unsigned char *buf, size_t len, bool wr, const struct timespec *end)
{
    size_t done = 0;
    while (done < len) {
        long left = dns_ms_until(end);
        if (left <= 0 || !dns_wait(fd, wr ? POLLOUT : POLLIN, left))
            return false;
        ssize_t n = wr ? send(fd, buf + done, len - done, MSG_NOSIGNAL)
                       : recv(fd, buf + done, len - done, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            return false;
        done += (size_t)n;
    }
    return true;
}

static int dns_try_tcp(const struct sockaddr_storage *ns, socklen_t nslen, const unsigned char *q,
                       size_t qlen, uint16_t id, const char *name, ns_type type, long ms,
                       unsigned char *a, size_t *alen)
{
    int fd = socket(ns->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += ms / 1000;
    end.tv_nsec += (ms % 1000) * 1000000;
    if (end.tv_nsec >= 1000000000) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000;
    }
    int rc = -1;
    if (connect(fd, (const struct sockaddr *)ns, nslen) < 0) {
        if (errno != EINPROGRESS)
            goto out;
        long left = dns_ms_until(&end);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (left <= 0 || !dns_wait(fd, POLLOUT, left) ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0)
            goto out;
    }
    unsigned char hdr[2] = {(unsigned char)(qlen >> 8), (unsigned char)qlen};
    unsigned char *qq = (unsigned char *)q;
    if (!dns_io(fd, hdr, 2, true, &end) || !dns_io(fd, qq, qlen, true, &end) ||
        !dns_io(fd, hdr, 2, false, &end))
        goto out;
    size_t n = ((size_t)hdr[0] << 8) | hdr[1];
    if (n == 0 || !dns_io(fd, a, n, false, &end))
        goto out;
    ns_msg msg;
    if (dns_matches(a, n, id, name, type, &msg)) {
        *alen = n;
        rc = 1;
    }
out:
    close(fd);
    return rc;
}

static SPF_dns_rr_t *dns_answer(SPF_dns_server_t *srv, const char *domain, ns_type type,
                                const unsigned char *a, size_t alen)
{
    ns_msg msg;
    if (ns_initparse(a, (int)alen, &msg) < 0)
        return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
    int rcode = ns_msg_getflag(msg, ns_f_rcode);
    if (rcode == ns_r_nxdomain)
        return SPF_dns_rr_new_init(srv, domain, type, DNS_NEG_TTL, HOST_NOT_FOUND);
    if (rcode != ns_r_noerror)
        return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
    SPF_dns_rr_t *rr = SPF_dns_rr_new_init(srv, domain, type, DNS_NEG_TTL, NO_DATA);
    if (rr == NULL)
        return NULL;
    int count = ns_msg_count(msg, ns_s_an);
    long ttl = -1;
    for (int i = 0; i < count; i++) {
        ns_rr r;
        if (ns_parserr(&msg, ns_s_an, i, &r) < 0)
            break;
        if (ns_rr_type(r) != type || ns_rr_class(r) != ns_c_in)
            continue;
        const unsigned char *rd = ns_rr_rdata(r);
        size_t rdlen = ns_rr_rdlen(r);
        int idx = rr->num_rr;
        char name[NS_MAXDNAME];
        switch (type) {
        case ns_t_a:
            if (rdlen != 4 || SPF_dns_rr_buf_realloc(rr, idx, sizeof(struct in_addr)) != 0)
                continue;
            memcpy(&rr->rr[idx]->a, rd, 4);
            break;
        case ns_t_aaaa:
            if (rdlen != 16 || SPF_dns_rr_buf_realloc(rr, idx, sizeof(struct in6_addr)) != 0)
                continue;
            memcpy(&rr->rr[idx]->aaaa, rd, 16);
            break;
        case ns_t_mx:
        case ns_t_ptr: {
            const unsigned char *np = type == ns_t_mx ? rd + 2 : rd;
            if ((type == ns_t_mx && rdlen < 3) ||
                ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), np, name, sizeof name) < 0)
                continue;
            size_t nl = strlen(name);
            if (SPF_dns_rr_buf_realloc(rr, idx, nl + 1) != 0)
                continue;
            memcpy(rr->rr[idx]->ptr, name, nl + 1);
            break;
        }
        case ns_t_txt: {
            if (SPF_dns_rr_buf_realloc(rr, idx, rdlen + 1) != 0)
                continue;
            char *out = rr->rr[idx]->txt;
            size_t o = 0;
            for (size_t p = 0; p < rdlen;) {
                size_t sl = rd[p++];
                if (sl > rdlen - p)
                    sl = rdlen - p;
                for (size_t k = 0; k < sl; k++)
                    out[o++] = rd[p + k] ? (char)rd[p + k] : 0x7f;
                p += sl;
            }
            out[o] = '\0';
            break;
        }
        default:
            continue;
        }
        rr->num_rr = idx + 1;
        if (ttl < 0 || (long)ns_rr_ttl(r) < ttl)
            ttl = (long)ns_rr_ttl(r);
    }
    if (rr->num_rr > 0) {
        rr->herrno = NETDB_SUCCESS;
        rr->ttl = ttl < DNS_MAX_TTL ? ttl : DNS_MAX_TTL;
    }
    return rr;
}

static SPF_dns_rr_t *dns_layer_lookup(SPF_dns_server_t *srv, const char *domain, ns_type type,
                                      int should_cache)
{
    (void)should_cache;
    struct dns_layer *l = srv->hook;
    long budget = l->timeout_ms;
    long left = spf_dns_deadline_left();
    if (left >= 0 && left < budget)
        budget = left;
    unsigned char q[512];
    uint16_t id;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
        id = (uint16_t)(clock() ^ (uintptr_t)&id);
    size_t qlen = dns_build_query(q, sizeof q, id, domain, type);
    if (qlen == 0)
        return SPF_dns_rr_new_init(srv, domain, type, DNS_NEG_TTL, HOST_NOT_FOUND);
    if (budget <= 0)
        return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);

    unsigned char *a = malloc(65536);
    if (a == NULL)
        return NULL;
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += budget / 1000;
    end.tv_nsec += (budget % 1000) * 1000000;
    if (end.tv_nsec >= 1000000000) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000;
    }
    SPF_dns_rr_t *rr = NULL;
    size_t tries = 2 * l->nns;
    for (size_t t = 0; t < tries && rr == NULL; t++) {
        long rem = dns_ms_until(&end);
        if (rem <= 0)
            break;
        long slice = rem / (long)(tries - t);
        if (slice < 1)
            slice = rem;
        size_t s = t % l->nns;
        size_t alen = 0;
        int got = dns_try_udp(&l->ns[s], l->nslen[s], q, qlen, id, domain, type, slice, a, &alen);
        if (got == 1) {
            ns_msg msg;
            if (ns_initparse(a, (int)alen, &msg) == 0 && ns_msg_getflag(msg, ns_f_tc)) {
                rem = dns_ms_until(&end);
                got = rem > 0 ? dns_try_tcp(&l->ns[s], l->nslen[s], q, qlen, id, domain, type, rem,
                                            a, &alen)
                              : 0;
                if (got != 1)
                    continue;
            }
            rr = dns_answer(srv, domain, type, a, alen);
            if (rr != NULL && rr->herrno == TRY_AGAIN && t + 1 < tries) {
                /* SERVFAIL from one server: another may know better. */
                SPF_dns_rr_free(rr);
                rr = NULL;
                if (l->nns == 1)
                    break;
            }
        }
    }
    free(a);
    if (rr == NULL)
        rr = SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
    return rr;
}

static void dns_layer_destroy(SPF_dns_server_t *srv)
{
    if (srv == NULL)
        return;
    free(srv->hook);
    free(srv);
}

SPF_dns_server_t *spf_dns_resolver_new(const char *nameserver, long timeout_ms, char *err,
                                       size_t errlen)
{
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
        if (spf_dns_parse_nameserver(nameserver, &l->ns[0], &l->nslen[0]) < 0) {
            snprintf(err, errlen, "invalid nameserver '%s' (want ADDR, ADDR:PORT or [ADDR6]:PORT)",
                     nameserver);
            free(l);
            free(srv);
            return NULL;
        }
        l->nns = 1;
    } else {
        dns_read_resolv_conf(l);
    }
    srv->destroy = dns_layer_destroy;
    srv->lookup = dns_layer_lookup;
    srv->name = "smtpgate-resolver";
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
