/*
 * client_name - PTR then A/AAAA, on evdns.
 *
 * A lookup has at most one evdns request out at a time.  Cancelling marks the
 * lookup and cancels that request; evdns then calls back with
 * DNS_ERR_CANCEL, and that callback frees the lookup.  So the lookup is freed
 * in exactly one place, the callback of its last request.
 */
#include "daemon/client_name.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

struct client_name_lookup {
    struct evdns_base *dns;
    struct evdns_request *req;
    struct sockaddr_storage addr;
    client_name_done done;
    void *arg;
    bool cancelled;
    char name[256];
};

static void client_name_finish(struct client_name_lookup *l, enum client_name_status st)
{
    if (!l->cancelled)
        l->done(l->arg, st, st == NAME_OK ? l->name : NULL);
    free(l);
}

static bool client_name_transient(int result)
{
    /* NXDOMAIN and a name without records of the type are answers: the name
     * is unknown for good, as Postfix has it; the rest may pass. */
    return result != DNS_ERR_NONE && result != DNS_ERR_NOTEXIST && result != DNS_ERR_NODATA &&
           result != DNS_ERR_FORMAT && result != DNS_ERR_NOTIMPL && result != DNS_ERR_REFUSED;
}

/* A request came back: true when that ends the lookup (cancelled or failed),
 * and l is gone. */
static bool client_name_ended(struct client_name_lookup *l, int result, bool answered)
{
    l->req = NULL;
    if (l->cancelled || result == DNS_ERR_CANCEL) {
        l->cancelled = true;
        client_name_finish(l, NAME_TEMPUNAVAIL);
        return true;
    }
    if (result != DNS_ERR_NONE || !answered) {
        client_name_finish(l, client_name_transient(result) ? NAME_TEMPUNAVAIL : NAME_UNAVAILABLE);
        return true;
    }
    return false;
}

static void client_name_forward_cb(int result, char type, int count, int ttl, void *addresses,
                                   void *arg)
{
    (void)ttl;
    struct client_name_lookup *l = arg;
    if (client_name_ended(l, result, true))
        return;
    bool match = false;
    for (int i = 0; i < count && !match; i++) {
        if (type == DNS_IPv4_A && l->addr.ss_family == AF_INET)
            match = memcmp(&((struct in_addr *)addresses)[i],
                           &((struct sockaddr_in *)&l->addr)->sin_addr, 4) == 0;
        else if (type == DNS_IPv6_AAAA && l->addr.ss_family == AF_INET6)
            match = memcmp(&((struct in6_addr *)addresses)[i],
                           &((struct sockaddr_in6 *)&l->addr)->sin6_addr, 16) == 0;
    }
    client_name_finish(l, match ? NAME_OK : NAME_UNAVAILABLE);
}

/* Host names only: a PTR that says anything else names no host. */
static bool client_name_valid(const char *name)
{
    size_t n = strlen(name), label = 0;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_') ||
            ++label > 63)
            return false;
    }
    return true;
}

static void client_name_ptr_cb(int result, char type, int count, int ttl, void *addresses,
                               void *arg)
{
    (void)ttl;
    struct client_name_lookup *l = arg;
    if (client_name_ended(l, result, type == DNS_PTR && count >= 1))
        return;
    const char *name = ((const char *const *)addresses)[0];
    if (!name || strlen(name) >= sizeof(l->name) || !client_name_valid(name)) {
        client_name_finish(l, NAME_UNAVAILABLE);
        return;
    }
    strcpy(l->name, name);
    size_t n = strlen(l->name);
    if (n > 0 && l->name[n - 1] == '.')
        l->name[n - 1] = '\0';
    if (l->addr.ss_family == AF_INET6)
        l->req = evdns_base_resolve_ipv6(l->dns, l->name, DNS_QUERY_NO_SEARCH,
                                         client_name_forward_cb, l);
    else
        l->req = evdns_base_resolve_ipv4(l->dns, l->name, DNS_QUERY_NO_SEARCH,
                                         client_name_forward_cb, l);
    if (!l->req)
        client_name_finish(l, NAME_TEMPUNAVAIL);
}

struct client_name_lookup *client_name_start(struct evdns_base *dns, const struct sockaddr *sa,
                                             client_name_done done, void *arg)
{
    struct client_name_lookup *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->dns = dns;
    l->done = done;
    l->arg = arg;
    if (sa->sa_family == AF_INET6) {
        memcpy(&l->addr, sa, sizeof(struct sockaddr_in6));
        l->req = evdns_base_resolve_reverse_ipv6(dns, &((const struct sockaddr_in6 *)sa)->sin6_addr,
                                                 DNS_QUERY_NO_SEARCH, client_name_ptr_cb, l);
    } else {
        memcpy(&l->addr, sa, sizeof(struct sockaddr_in));
        l->req = evdns_base_resolve_reverse(dns, &((const struct sockaddr_in *)sa)->sin_addr,
                                            DNS_QUERY_NO_SEARCH, client_name_ptr_cb, l);
    }
    if (!l->req) {
        free(l);
        return NULL;
    }
    return l;
}

void client_name_cancel(struct client_name_lookup *l)
{
    if (!l || l->cancelled)
        return;
    l->cancelled = true;
    if (l->req)
        evdns_cancel_request(l->dns, l->req);
}

struct evdns_base *client_name_dns_new(struct event_base *base, const char *nameserver,
                                       unsigned timeout)
{
    bool own = nameserver && *nameserver;
    struct evdns_base *dns = evdns_base_new(base, (own ? 0 : EVDNS_BASE_INITIALIZE_NAMESERVERS) |
                                                      EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!dns) {
        log_err("cannot set up the DNS resolver for client names");
        return NULL;
    }
    if (own && evdns_base_nameserver_ip_add(dns, nameserver) != 0) {
        log_err("dns_nameserver %s: not an address[:port]", nameserver);
        evdns_base_free(dns, 0);
        return NULL;
    }
    char t[16];
    snprintf(t, sizeof(t), "%u", timeout ? timeout : 5);
    evdns_base_set_option(dns, "timeout:", t);
    evdns_base_set_option(dns, "attempts:", "2");
    evdns_base_set_option(dns, "randomize-case:", "0");
    return dns;
}
