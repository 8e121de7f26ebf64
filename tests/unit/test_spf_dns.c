/*
 * Unit tests for the resolver layer (spf_dns) over c-ares, against a small
 * DNS server thread on 127.0.0.1 that answers every TXT question with a
 * record naming the question, and one that never answers: eight threads
 * looking up at once through one layer each get their own answers (the
 * channel pool), no socket is left open afterwards, a silent server is
 * TRY_AGAIN at the layer's timeout and at the thread's deadline when that
 * comes first, NXDOMAIN is HOST_NOT_FOUND, an unaskable name is refused
 * without a query, and the nameserver forms are read as documented.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "spf/spf_dns.h"

/* ---- DNS server thread: TXT "v=spf1 name=<qname>", NXDOMAIN for nx.* ---- */

static int srv_fd = -1, silent_fd = -1;
static char srv_addr[32], silent_addr[32];
static atomic_int srv_stop, srv_queries;
static pthread_t srv_thread;

static size_t answer(const unsigned char *q, size_t qlen, unsigned char *a)
{
    char name[256];
    size_t i = 12, o = 0;
    while (i < qlen && q[i] != 0 && o < 200) {
        size_t l = q[i++];
        if (i + l > qlen)
            return 0;
        if (o)
            name[o++] = '.';
        memcpy(name + o, q + i, l);
        o += l;
        i += l;
    }
    name[o] = '\0';
    if (i + 5 > qlen)
        return 0;
    size_t qend = i + 5;
    memcpy(a, q, qend);
    a[2] = 0x81;
    a[3] = 0x80;
    memset(a + 6, 0, 6);
    if (strncmp(name, "nx.", 3) == 0) {
        a[3] = 0x83;
        return qend;
    }
    char txt[240];
    int tl = snprintf(txt, sizeof txt, "v=spf1 name=%s", name);
    const unsigned char hdr[12] = {0xc0, 0x0c, 0, 16, 0, 1,
                                   0,    0,    0, 30, 0, (unsigned char)(tl + 1)};
    memcpy(a + qend, hdr, 12);
    a[qend + 12] = (unsigned char)tl;
    memcpy(a + qend + 13, txt, (size_t)tl);
    a[7] = 1;
    return qend + 13 + (size_t)tl;
}

static void *serve(void *arg)
{
    (void)arg;
    unsigned char q[512], a[1024];
    while (!atomic_load(&srv_stop)) {
        struct pollfd p = {.fd = srv_fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(srv_fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
        if (n <= 0)
            continue;
        atomic_fetch_add(&srv_queries, 1);
        size_t al = answer(q, (size_t)n, a);
        if (al > 0)
            sendto(srv_fd, a, al, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

static int bind_loopback(char *addr, size_t addrlen)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof sin;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &l) < 0)
        return -1;
    snprintf(addr, addrlen, "127.0.0.1:%d", ntohs(sin.sin_port));
    return fd;
}

static int setup(void **state)
{
    (void)state;
    srv_fd = bind_loopback(srv_addr, sizeof srv_addr);
    silent_fd = bind_loopback(silent_addr, sizeof silent_addr);
    if (srv_fd < 0 || silent_fd < 0)
        return -1;
    atomic_store(&srv_stop, 0);
    return pthread_create(&srv_thread, NULL, serve, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    atomic_store(&srv_stop, 1);
    pthread_join(srv_thread, NULL);
    close(srv_fd);
    close(silent_fd);
    return 0;
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (long)((t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000);
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (d == NULL)
        return -1;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* ---- tests ---- */

#define THREADS    8
#define PER_THREAD 40

static SPF_dns_server_t *shared_layer;
static atomic_int wrong;

static void *look_up_many(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char name[64], want[96];
        snprintf(name, sizeof name, "t%d-%d.example.test", id, i);
        snprintf(want, sizeof want, "v=spf1 name=%s", name);
        SPF_dns_rr_t *rr = SPF_dns_lookup(shared_layer, name, ns_t_txt, 0);
        if (rr == NULL || rr->herrno != NETDB_SUCCESS || rr->num_rr != 1 ||
            strcmp(rr->rr[0]->txt, want) != 0 || rr->ttl != 30)
            atomic_fetch_add(&wrong, 1);
        SPF_dns_rr_free(rr);
    }
    return NULL;
}

static void test_threads_get_their_own_answers(void **state)
{
    (void)state;
    char err[200];
    int fds0 = open_fds();
    shared_layer = spf_dns_resolver_new(srv_addr, 2000, err, sizeof err);
    assert_non_null(shared_layer);
    atomic_store(&wrong, 0);
    atomic_store(&srv_queries, 0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, look_up_many, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&wrong), 0);
    assert_int_equal(atomic_load(&srv_queries), THREADS * PER_THREAD);
    /* Idle channels hold no socket; the pool does not grow past the threads. */
    assert_int_equal(open_fds(), fds0);
    SPF_dns_free(shared_layer);
    assert_int_equal(open_fds(), fds0);
}

static void test_nxdomain_and_unaskable_names(void **state)
{
    (void)state;
    char err[200];
    SPF_dns_server_t *l = spf_dns_resolver_new(srv_addr, 2000, err, sizeof err);
    assert_non_null(l);
    SPF_dns_rr_t *rr = SPF_dns_lookup(l, "nx.example.test", ns_t_txt, 0);
    assert_int_equal(rr->herrno, HOST_NOT_FOUND);
    SPF_dns_rr_free(rr);
    atomic_store(&srv_queries, 0);
    char label[80];
    memset(label, 'a', 64);
    strcpy(label + 64, ".example.test");
    static const char *const bad[] = {"a..example.test", ".example.test", NULL};
    for (size_t i = 0; i < 3; i++) {
        rr = SPF_dns_lookup(l, bad[i] ? bad[i] : label, ns_t_txt, 0);
        assert_int_equal(rr->herrno, HOST_NOT_FOUND);
        SPF_dns_rr_free(rr);
    }
    assert_int_equal(atomic_load(&srv_queries), 0);
    SPF_dns_free(l);
}

static void test_silent_server_at_the_timeout_and_the_deadline(void **state)
{
    (void)state;
    char err[200];
    SPF_dns_server_t *l = spf_dns_resolver_new(silent_addr, 600, err, sizeof err);
    assert_non_null(l);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    SPF_dns_rr_t *rr = SPF_dns_lookup(l, "pass.example.test", ns_t_txt, 0);
    long ms = ms_since(&t0);
    assert_int_equal(rr->herrno, TRY_AGAIN);
    assert_int_equal(rr->ttl, 0);
    assert_true(ms >= 550 && ms < 1500);
    SPF_dns_rr_free(rr);

    /* The thread's deadline, 150 ms away, comes before the timeout. */
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dl = t0;
    dl.tv_nsec += 150 * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    spf_dns_deadline_set(&dl);
    rr = SPF_dns_lookup(l, "pass.example.test", ns_t_txt, 0);
    ms = ms_since(&t0);
    assert_int_equal(rr->herrno, TRY_AGAIN);
    assert_true(ms >= 120 && ms < 1000);
    SPF_dns_rr_free(rr);
    /* Once it has passed, nothing is asked at all. */
    unsigned char drain[512];
    while (recv(silent_fd, drain, sizeof drain, MSG_DONTWAIT) > 0)
        ;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rr = SPF_dns_lookup(l, "pass.example.test", ns_t_txt, 0);
    assert_int_equal(rr->herrno, TRY_AGAIN);
    assert_true(ms_since(&t0) < 500);
    SPF_dns_rr_free(rr);
    assert_true(recv(silent_fd, drain, sizeof drain, MSG_DONTWAIT) < 0);
    spf_dns_deadline_set(NULL);
    assert_int_equal(spf_dns_deadline_left(), -1);
    SPF_dns_free(l);
}

static void test_nameserver_forms(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(spf_dns_parse_nameserver("192.0.2.53", &ss, &len), 0);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 53);
    assert_int_equal(spf_dns_parse_nameserver("127.0.0.1:5353", &ss, &len), 0);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 5353);
    assert_int_equal(spf_dns_parse_nameserver("[2001:db8::53]:5300", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 5300);
    assert_int_equal(spf_dns_parse_nameserver("2001:db8::53", &ss, &len), 0);
    static const char *const bad[] = {
        "",       "dns.example", "127.0.0.1:0", "127.0.0.1:65536", "[2001:db8::53",
        "[::1]x", "127.0.0.1:x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(spf_dns_parse_nameserver(bad[i], &ss, &len), -1);
    char err[200];
    assert_null(spf_dns_resolver_new("dns.example", 1000, err, sizeof err));
    assert_non_null(strstr(err, "invalid nameserver"));
    /* An IPv6 server is handed to c-ares with its port. */
    SPF_dns_server_t *l = spf_dns_stack_new("[::1]:5300", 1000, 4, err, sizeof err);
    assert_non_null(l);
    SPF_dns_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_get_their_own_answers),
        cmocka_unit_test(test_nxdomain_and_unaskable_names),
        cmocka_unit_test(test_silent_server_at_the_timeout_and_the_deadline),
        cmocka_unit_test(test_nameserver_forms),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
