/*
 * spf-query - one SPF check through spf_check and the plugin's DNS stack,
 * for tests against a real DNS server on loopback.
 *
 *   spf-query [-t SECONDS] [-c CACHE_BITS] [-r N] [-H] [-a] FROM HELO IP NAMESERVER[:PORT]
 *   spf-query -b [-t SECONDS] [-a] [-R RECEIVER] [-N TIME] NAMESERVER[:PORT]
 *
 * FROM "" (or "<>") is the null sender: the HELO identity is checked.  -H
 * checks the HELO identity on its own.  Prints "result=RESULT" on the first
 * line, then "identity=", "mechanism=", "problem=", "explanation=" and
 * "elapsed_ms=" lines and an empty line; exits 0 when a result was
 * produced, 2 on usage errors.  -r N checks N times through the same DNS
 * stack (with -c, the same libspf2 cache), reading one line from stdin
 * before each check after the first, so that a test can change the DNS
 * server in between.  -a runs each check as the plugin does on a
 * connection's loop (spf_async on a libevent loop of its own) instead of
 * blocking in spf_check_host.
 *
 * -b (batch, for test suites): one check per line of stdin, "FROM HELO IP"
 * with each field percent-encoded as tests/spf/rfc7208_to_data.py writes
 * them ("%" alone is the empty string), answered by the same block, with
 * problem= and explanation= percent-encoded, when the check is done.  -R
 * gives %{r} (default "spf-query.test"), -N fixes %{t} (seconds).  No
 * cache: each line is checked against the server as it is now.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "spf/spf_async.h"
#include "spf/spf_check.h"
#include "spf/spf_dns.h"

struct async_wait {
    bool done;
    int rc;
    struct spf_check_result res;
};

static void async_done(void *arg, struct spf_check_result *res, int rc)
{
    struct async_wait *w = arg;
    w->res = *res;
    w->rc = rc;
    w->done = true;
}

/* The check on a loop: the loop ends when nothing of it is left there. */
static int check_on_loop(SPF_dns_server_t *dns, const struct spf_check_request *req,
                         struct spf_check_result *res)
{
    struct event_base *base = event_base_new();
    struct async_wait w = {.done = false};
    if (base == NULL || spf_async_start(base, dns, req, async_done, &w) == NULL) {
        fprintf(stderr, "spf-query: cannot start the check on a loop\n");
        exit(2);
    }
    event_base_dispatch(base);
    event_base_free(base);
    if (!w.done) {
        fprintf(stderr, "spf-query: the loop ended before the check\n");
        exit(2);
    }
    *res = w.res;
    return w.rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: spf-query [-t SECONDS] [-c CACHE_BITS] [-r N] [-H] [-a] FROM HELO IP "
                    "NAMESERVER[:PORT]\n"
                    "       spf-query -b [-t SECONDS] [-a] [-R RECEIVER] [-N TIME] "
                    "NAMESERVER[:PORT]\n");
    exit(2);
}

/* In place: %XX to the octet, a lone "%" to the empty string. */
static void pct_decode(char *s)
{
    if (strcmp(s, "%") == 0) {
        s[0] = '\0';
        return;
    }
    char *o = s;
    for (char *p = s; *p != '\0'; p++) {
        if (p[0] == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            char hex[3] = {p[1], p[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

static void print_field(const char *name, const char *v, bool encode)
{
    printf("%s=", name);
    for (const unsigned char *p = (const unsigned char *)(v ? v : ""); *p; p++) {
        if (encode && (*p < 0x21 || *p > 0x7e || *p == '%'))
            printf("%%%02X", *p);
        else
            putchar(*p);
    }
    putchar('\n');
}

static struct timespec deadline_in(long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    return t;
}

static void print_result(const struct spf_check_result *res, bool encode, long elapsed)
{
    printf("result=%s\n", spf_result_name(res->result));
    printf("identity=%s\n", res->identity == SPF_ID_HELO ? "helo" : "mailfrom");
    printf("mechanism=%s\n", res->mechanism ? res->mechanism : "");
    print_field("problem", res->problem, encode);
    print_field("explanation", res->explanation, encode);
    printf("elapsed_ms=%ld\n", elapsed);
    printf("\n");
    fflush(stdout);
}

static int batch(SPF_dns_server_t *dns, long ms, bool on_loop, const char *receiver,
                 long long now)
{
    char line[4096];
    while (fgets(line, sizeof line, stdin) != NULL) {
        char *f[3], *save = NULL;
        size_t n = 0;
        for (char *t = strtok_r(line, " \n", &save); t != NULL && n < 3;
             t = strtok_r(NULL, " \n", &save))
            f[n++] = t;
        if (n != 3) {
            fprintf(stderr, "spf-query: want FROM HELO IP on each line\n");
            return 2;
        }
        for (size_t i = 0; i < n; i++)
            pct_decode(f[i]);
        struct timespec start, end;
        clock_gettime(CLOCK_MONOTONIC, &start);
        struct spf_check_request req = {
            .ip = f[2],
            .sender = f[0],
            .helo = f[1],
            .receiver = receiver,
            .identity = SPF_ID_MAILFROM,
            .now = now,
            .deadline = deadline_in(ms),
        };
        struct spf_check_result res;
        if (on_loop)
            check_on_loop(dns, &req, &res);
        else
            spf_check_host(dns, &req, &res);
        clock_gettime(CLOCK_MONOTONIC, &end);
        print_result(&res, true,
                     (long)((end.tv_sec - start.tv_sec) * 1000 +
                            (end.tv_nsec - start.tv_nsec) / 1000000));
        spf_check_result_free(&res);
    }
    return 0;
}

int main(int argc, char **argv)
{
    double timeout = 5;
    int bits = 0, repeat = 1, opt;
    bool helo_only = false, on_loop = false, batch_mode = false;
    const char *receiver = "spf-query.test";
    long long now = 0;
    while ((opt = getopt(argc, argv, "t:c:r:HabR:N:")) != -1) {
        switch (opt) {
        case 't':
            timeout = strtod(optarg, NULL);
            break;
        case 'c':
            bits = atoi(optarg);
            break;
        case 'r':
            repeat = atoi(optarg);
            break;
        case 'H':
            helo_only = true;
            break;
        case 'a':
            on_loop = true;
            break;
        case 'b':
            batch_mode = true;
            break;
        case 'R':
            receiver = optarg;
            break;
        case 'N':
            now = atoll(optarg);
            break;
        default:
            usage();
        }
    }
    if (timeout <= 0 || repeat < 1 || repeat > 100)
        usage();
    char err[200];
    long ms = (long)(timeout * 1000);
    if (batch_mode) {
        if (argc - optind != 1)
            usage();
        SPF_dns_server_t *dns = spf_dns_stack_new(argv[optind], ms, 0, err, sizeof err);
        if (dns == NULL) {
            fprintf(stderr, "spf-query: %s\n", err);
            return 2;
        }
        int rc = batch(dns, ms, on_loop, receiver, now);
        SPF_dns_free(dns);
        return rc;
    }
    if (argc - optind != 4)
        usage();
    const char *from = argv[optind];
    if (strcmp(from, "<>") == 0)
        from = "";
    SPF_dns_server_t *dns = spf_dns_stack_new(argv[optind + 3], ms, bits, err, sizeof err);
    if (dns == NULL) {
        fprintf(stderr, "spf-query: %s\n", err);
        return 2;
    }
    for (int i = 0; i < repeat; i++) {
        if (i > 0) {
            char line[64];
            if (fgets(line, sizeof line, stdin) == NULL)
                break;
        }
        struct timespec start, end;
        clock_gettime(CLOCK_MONOTONIC, &start);
        struct spf_check_request req = {
            .ip = argv[optind + 2],
            .sender = from,
            .helo = argv[optind + 1],
            .receiver = receiver,
            .identity = helo_only ? SPF_ID_HELO : SPF_ID_MAILFROM,
            .now = now,
            .deadline = deadline_in(ms),
        };
        struct spf_check_result res;
        if (on_loop)
            check_on_loop(dns, &req, &res);
        else
            spf_check_host(dns, &req, &res);
        clock_gettime(CLOCK_MONOTONIC, &end);
        print_result(&res, false,
                     (long)((end.tv_sec - start.tv_sec) * 1000 +
                            (end.tv_nsec - start.tv_nsec) / 1000000));
        spf_check_result_free(&res);
    }
    SPF_dns_free(dns);
    return 0;
}
