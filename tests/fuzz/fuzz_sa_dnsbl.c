// fuzz-sources: rules/sa_dnsbl.c rules/sa_received.c rules/sa_netset.c util/net.c util/alloc.c
// fuzz-pkgs: libpcre2-8
/*
 * The relay addresses, the zones and the subtests of SpamAssassin's
 * blocklist rules come from messages and rule files: any octets must give
 * a name that fits (or none), a subtest kind and a match result, never a
 * crash.  The input is "ADDR\nZONE\nSUBTEST\nANSWER", each part copied to a
 * buffer of exactly its size (plus its NUL), so any read past it is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_dnsbl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *part(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = (size_t)((nl ? nl : end) - *p);
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = nl ? nl + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *ip = part(&p, end), *zone = part(&p, end), *sub = part(&p, end), *ans = part(&p, end);
    char name[SA_DNSBL_NAME_MAX];
    if (sa_dnsbl_name(ip, zone, name, sizeof name) && strlen(name) >= sizeof name)
        abort();
    enum sa_dnsbl_subtest k = sa_dnsbl_subtest_kind(sub);
    bool hit = sa_dnsbl_subtest_match(sub, ans);
    if (k == SA_SUB_RE && hit)
        abort(); /* a regex is the caller's to match */
    if (k == SA_SUB_IP && hit != (strcmp(sub, ans) == 0))
        abort();
    const char *ips[] = {ip, ans};
    struct sa_dnsbl_input in = {ips, 2, ips, 2, ips, 1, NULL, (unsigned)size % 4};
    const char *out[SA_DNSBL_CHECK_RECEIVED];
    size_t n = sa_dnsbl_select(&in, zone, sub[0] == 'n', out, SA_DNSBL_CHECK_RECEIVED);
    for (size_t i = 0; i < n; i++)
        if (out[i] != ip && out[i] != ans)
            abort();
    struct sa_dns_queries q = {0};
    if (sa_dns_queries_add(&q, sub, ip, SA_DNS_A) != 0 ||
        sa_dns_queries_add(&q, zone, ip, SA_DNS_A) != 0 ||
        sa_dns_query_answer(&q.q[0], ans, strlen(ans)) != 0)
        abort();
    sa_dns_queries_clear(&q);
    free(ip);
    free(zone);
    free(sub);
    free(ans);
    return 0;
}
