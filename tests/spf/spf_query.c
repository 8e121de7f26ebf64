/*
 * spf-query - one SPF check through spf_check and the plugin's DNS stack,
 * for tests against a real DNS server on loopback.
 *
 *   spf-query [-t SECONDS] [-c CACHE_BITS] [-r N] [-H] [-a] FROM HELO IP NAMESERVER[:PORT]
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
 */
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
                    "NAMESERVER[:PORT]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    double timeout = 5;
    int bits = 0, repeat = 1, opt;
    bool helo_only = false, on_loop = false;
    while ((opt = getopt(argc, argv, "t:c:r:Ha")) != -1) {
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
        default:
            usage();
        }
    }
    if (argc - optind != 4 || timeout <= 0 || repeat < 1 || repeat > 100)
        usage();
    const char *from = argv[optind];
    if (strcmp(from, "<>") == 0)
        from = "";
    char err[200];
    long ms = (long)(timeout * 1000);
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
            .receiver = "spf-query.test",
            .identity = helo_only ? SPF_ID_HELO : SPF_ID_MAILFROM,
            .deadline = start,
        };
        req.deadline.tv_sec += ms / 1000;
        req.deadline.tv_nsec += (ms % 1000) * 1000000;
        if (req.deadline.tv_nsec >= 1000000000) {
            req.deadline.tv_sec++;
            req.deadline.tv_nsec -= 1000000000;
        }
        struct spf_check_result res;
        if (on_loop)
            check_on_loop(dns, &req, &res);
        else
            spf_check_host(dns, &req, &res);
        clock_gettime(CLOCK_MONOTONIC, &end);
        long elapsed =
            (long)((end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000);
        printf("result=%s\n", spf_result_name(res.result));
        printf("identity=%s\n", res.identity == SPF_ID_HELO ? "helo" : "mailfrom");
        printf("mechanism=%s\n", res.mechanism ? res.mechanism : "");
        printf("problem=%s\n", res.problem ? res.problem : "");
        printf("explanation=%s\n", res.explanation ? res.explanation : "");
        printf("elapsed_ms=%ld\n", elapsed);
        spf_check_result_free(&res);
        printf("\n");
        fflush(stdout);
    }
    SPF_dns_free(dns);
    return 0;
}
