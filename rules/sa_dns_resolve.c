/*
 * sa_dns_resolve - the blocklist queries through c-ares, all at once,
 * waited for with poll() up to one deadline.  See sa_dns_resolve.h.
 *
 * Why c-ares and not evdns: TXT answers (check_rbl_txt), which evdns does
 * not resolve; and a channel of its own per message, so that nothing is
 * shared between threads.
 */
#include "rules/sa_dns_resolve.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct pending {
    struct sa_dns_query *q;
    int failed;
};

static void answer_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct pending *p = arg;
    if (status != ARES_SUCCESS || abuf == NULL)
        return;
    if (p->q->type == SA_DNS_A) {
        struct hostent *he = NULL;
        if (ares_parse_a_reply(abuf, alen, &he, NULL, NULL) != ARES_SUCCESS || he == NULL)
            return;
        for (char **a = he->h_addr_list; a != NULL && *a != NULL; a++) {
            char s[INET_ADDRSTRLEN];
            if (inet_ntop(AF_INET, *a, s, sizeof s) != NULL &&
                sa_dns_query_answer(p->q, s, strlen(s)) != 0)
                p->failed = 1;
        }
        ares_free_hostent(he);
    } else {
        struct ares_txt_ext *txt = NULL;
        if (ares_parse_txt_reply_ext(abuf, alen, &txt) != ARES_SUCCESS)
            return;
        /* one record's strings joined, as txtdata gives them */
        char buf[4096];
        size_t bl = 0;
        for (struct ares_txt_ext *t = txt; t != NULL; t = t->next) {
            if (t->record_start && bl > 0) {
                if (sa_dns_query_answer(p->q, buf, bl) != 0)
                    p->failed = 1;
                bl = 0;
            }
            size_t n = t->length < sizeof buf - bl ? t->length : sizeof buf - bl;
            memcpy(buf + bl, t->txt, n);
            bl += n;
        }
        if (txt != NULL && sa_dns_query_answer(p->q, buf, bl) != 0)
            p->failed = 1;
        ares_free_data(txt);
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int sa_dns_resolve(struct sa_dns_queries *qs, const char *servers, double timeout, char *why,
                   size_t wn)
{
    if (qs->n == 0)
        return 0;
    static int inited;
    if (!__atomic_load_n(&inited, __ATOMIC_ACQUIRE)) {
        /* idempotent, reference counted in c-ares: racing threads are fine */
        if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
            snprintf(why, wn, "c-ares did not start");
            return -1;
        }
        __atomic_store_n(&inited, 1, __ATOMIC_RELEASE);
    }
    struct ares_options o = {.timeout = (int)(timeout * 1000 / 2 > 0 ? timeout * 1000 / 2 : 1),
                             .tries = 2,
                             .flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES};
    ares_channel ch;
    if (ares_init_options(&ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS) !=
        ARES_SUCCESS) {
        snprintf(why, wn, "c-ares did not start");
        return -1;
    }
    if (servers != NULL && *servers && ares_set_servers_ports_csv(ch, servers) != ARES_SUCCESS) {
        ares_destroy(ch);
        snprintf(why, wn, "bad DNS server \"%s\"", servers);
        return -1;
    }
    struct pending *p = calloc(qs->n, sizeof(*p));
    if (p == NULL) {
        ares_destroy(ch);
        snprintf(why, wn, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < qs->n; i++) {
        p[i].q = &qs->q[i];
        ares_query(ch, qs->q[i].name, ns_c_in, qs->q[i].type == SA_DNS_A ? ns_t_a : ns_t_txt,
                   answer_cb, &p[i]);
    }
    double deadline = now() + timeout;
    /* bounded: each round waits until the deadline at most */
    for (int round = 0; round < 100000; round++) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
        struct pollfd pf[ARES_GETSOCK_MAXNUM];
        nfds_t nf = 0;
        for (int k = 0; k < ARES_GETSOCK_MAXNUM; k++) {
            /* c-ares' own macros shift an int into its sign bit for the last socket */
            unsigned ub = (unsigned)bits;
            short ev = (short)((ub & (1u << k) ? POLLIN : 0) |
                               (ub & (1u << (k + ARES_GETSOCK_MAXNUM)) ? POLLOUT : 0));
            if (ev)
                pf[nf++] = (struct pollfd){.fd = socks[k], .events = ev};
        }
        if (nf == 0)
            break; /* every query answered or failed */
        double left = deadline - now();
        if (left <= 0)
            break;
        struct timeval tv, *t = ares_timeout(ch, NULL, &tv);
        double wait = t ? t->tv_sec + t->tv_usec / 1e6 : left;
        if (wait > left)
            wait = left;
        int r = poll(pf, nf, (int)(wait * 1000) + 1);
        if (r < 0)
            continue;
        for (nfds_t k = 0; k < nf; k++)
            ares_process_fd(
                ch, pf[k].revents & (POLLIN | POLLERR | POLLHUP) ? pf[k].fd : ARES_SOCKET_BAD,
                pf[k].revents & POLLOUT ? pf[k].fd : ARES_SOCKET_BAD);
        if (r == 0)
            ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts, retries */
    }
    /* cancels what is left: its callbacks come now, with ARES_ECANCELLED */
    ares_destroy(ch);
    int failed = 0;
    for (size_t i = 0; i < qs->n; i++)
        failed |= p[i].failed;
    free(p);
    if (failed) {
        snprintf(why, wn, "out of memory");
        return -1;
    }
    return 0;
}
