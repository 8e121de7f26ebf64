/*
 * proxy_accept - reading the PROXY header off a fresh connection.
 *
 * The header is followed on the same connection by the client's own bytes,
 * which belong to the session; so octets are first looked at with MSG_PEEK
 * and only those the header is made of are taken off the socket.  Everything
 * the parser still calls a prefix is header, so it can be taken at once; that
 * keeps a partial header from making the socket readable forever.
 */
#include "daemon/proxy_accept.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "config/listener.h"
#include "util/log.h"
#include "codec/proxy_header.h"
#include "daemon/session.h"

struct proxy_pending {
    struct proxy_pending *next, *prev;
    const struct session_host *host;
    struct proxy_pending **list;
    struct sg_runtime *rt;
    const struct sg_listener *listener;
    evutil_socket_t fd;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    char addr[64];
    struct event *ev;
    struct timespec deadline;
    uint8_t *buf;
    size_t have, cap;
};

static void proxy_addr_text(const struct sockaddr *sa, char *out, size_t n)
{
    snprintf(out, n, "?");
    if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
    else if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
}

static void proxy_pending_free(struct proxy_pending *p, bool close_fd)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        *p->list = p->next;
    if (p->next)
        p->next->prev = p->prev;
    if (p->ev)
        event_free(p->ev);
    if (close_fd)
        evutil_closesocket(p->fd);
    runtime_unref(p->rt);
    free(p->buf);
    free(p);
}

static void proxy_refuse(struct proxy_pending *p, const char *why)
{
    log_info("refused: disconnect from unknown[%s]: PROXY protocol: %s", p->addr, why);
    proxy_pending_free(p, true);
}

static double proxy_remaining(const struct proxy_pending *p)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(p->deadline.tv_sec - now.tv_sec) +
           (double)(p->deadline.tv_nsec - now.tv_nsec) / 1e9;
}

static void proxy_rearm(struct proxy_pending *p)
{
    double left = proxy_remaining(p);
    if (left < 0.001)
        left = 0.001;
    struct timeval tv = {.tv_sec = (time_t)left,
                         .tv_usec = (suseconds_t)((left - (double)(time_t)left) * 1e6)};
    event_add(p->ev, &tv);
}

static void proxy_done(struct proxy_pending *p, const struct proxy_header *h)
{
    struct sockaddr_storage client;
    socklen_t len;
    if (h->local) {
        /* The proxy speaks for itself (a health check): its own address. */
        client = p->peer;
        len = p->peer_len;
    } else {
        client = h->src;
        len = h->addr_len;
    }
    const struct session_host *host = p->host;
    evutil_socket_t fd = p->fd;
    struct sg_runtime *rt = p->rt;
    p->rt = NULL;
    char src[64];
    proxy_addr_text((struct sockaddr *)&client, src, sizeof(src));
    log_debug("PROXY v%d header from %s: client %s%s", h->version, p->addr, src,
              h->local ? " (local)" : "");
    proxy_pending_free(p, false);
    session_start(host, fd, (struct sockaddr *)&client, len, rt);
}

static void proxy_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_pending *p = arg;
    if (what & EV_TIMEOUT) {
        proxy_refuse(p, "no complete header in time");
        return;
    }
    ssize_t n = recv(fd, p->buf + p->have, p->cap - p->have, MSG_PEEK);
    if (n == 0) {
        proxy_refuse(p, p->have ? "connection closed inside the header" : "no header");
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            proxy_rearm(p);
            return;
        }
        proxy_refuse(p, strerror(errno));
        return;
    }
    size_t seen = p->have + (size_t)n;
    struct proxy_header h;
    size_t used = 0;
    enum proxy_hdr_status st =
        proxy_header_parse(p->buf, seen, p->listener->proxy_protocol, &h, &used);
    if (st == PROXY_HDR_INVALID) {
        proxy_refuse(p, "missing or malformed header");
        return;
    }
    size_t take = st == PROXY_HDR_OK ? used - p->have : (size_t)n;
    ssize_t got = recv(fd, p->buf + p->have, take, 0);
    if (got != (ssize_t)take) {
        proxy_refuse(p, "read error");
        return;
    }
    p->have += take;
    if (st == PROXY_HDR_OK) {
        proxy_done(p, &h);
        return;
    }
    if (p->have == p->cap) {
        /* A v2 header longer than the buffer: its length is known by now. */
        size_t want = p->have >= 16 && p->buf[0] == 0x0D
                          ? 16 + ((size_t)p->buf[14] << 8 | p->buf[15])
                          : PROXY_HDR_V1_MAX;
        uint8_t *nb = want > p->cap ? realloc(p->buf, want) : NULL;
        if (!nb) {
            proxy_refuse(p, "header too long");
            return;
        }
        p->buf = nb;
        p->cap = want;
    }
    if (proxy_remaining(p) <= 0) {
        proxy_refuse(p, "no complete header in time");
        return;
    }
    proxy_rearm(p);
}

bool proxy_accept_start(const struct session_host *host, struct proxy_pending **pending,
                        evutil_socket_t fd, const struct sockaddr *peer, socklen_t peer_len,
                        struct sg_runtime *rt)
{
    struct sockaddr_storage local;
    socklen_t llen = sizeof(local);
    if (getsockname(fd, (struct sockaddr *)&local, &llen) != 0)
        return false;
    const struct sg_listener *l = listener_find(rt->cfg, (struct sockaddr *)&local);
    if (!l->proxy_protocol)
        return false;

    char addr[64];
    proxy_addr_text(peer, addr, sizeof(addr));
    if (!net_range_contains(l->trusted, l->ntrusted, peer)) {
        log_info("refused: disconnect from unknown[%s]: not in proxy_trusted of listener %s", addr,
                 l->name ? l->name : "-");
        evutil_closesocket(fd);
        runtime_unref(rt);
        return true;
    }
    struct proxy_pending *p = calloc(1, sizeof(*p));
    if (p) {
        p->cap = 232; /* v1, and v2 with IPv6 and a few TLVs, without a realloc */
        p->buf = malloc(p->cap);
    }
    if (!p || !p->buf) {
        free(p);
        evutil_closesocket(fd);
        runtime_unref(rt);
        return true;
    }
    p->host = host;
    p->list = pending;
    p->rt = rt;
    p->listener = l;
    p->fd = fd;
    memcpy(&p->peer, peer, peer_len < sizeof(p->peer) ? peer_len : sizeof(p->peer));
    p->peer_len = peer_len;
    memcpy(p->addr, addr, sizeof(addr));
    clock_gettime(CLOCK_MONOTONIC, &p->deadline);
    p->deadline.tv_sec += l->proxy_timeout;
    p->next = *pending;
    if (*pending)
        (*pending)->prev = p;
    *pending = p;
    evutil_make_socket_nonblocking(fd);
    p->ev = event_new(host->base, fd, EV_READ, proxy_read_cb, p);
    if (!p->ev) {
        proxy_refuse(p, "out of memory");
        return true;
    }
    proxy_rearm(p);
    return true;
}

void proxy_accept_discard(struct proxy_pending **pending)
{
    while (*pending)
        proxy_pending_free(*pending, true);
}
