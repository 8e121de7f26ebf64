/*
 * spf_net - client networks (CIDR, IPv4 and IPv6) for SPF exemptions, pure.
 */
#include "spf_net.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static bool net_addr(const char *s, int *family, unsigned char out[16])
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, s, buf) == 1) {
        *family = AF_INET;
        memcpy(out, buf, 4);
        return true;
    }
    if (inet_pton(AF_INET6, s, buf) != 1)
        return false;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(buf, mapped, 12) == 0) {
        *family = AF_INET;
        memcpy(out, buf + 12, 4);
    } else {
        *family = AF_INET6;
        memcpy(out, buf, 16);
    }
    return true;
}

int spf_net_parse(const char *s, struct spf_net *out, const char **err)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    memset(out, 0, sizeof *out);
    if (alen == 0 || alen >= sizeof buf) {
        *err = "not an IPv4 or IPv6 address";
        return -1;
    }
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    unsigned char a[16];
    int family;
    if (inet_pton(AF_INET, buf, a) == 1)
        family = AF_INET;
    else if (inet_pton(AF_INET6, buf, a) == 1)
        family = AF_INET6;
    else {
        *err = "not an IPv4 or IPv6 address";
        return -1;
    }
    unsigned max = family == AF_INET ? 32 : 128;
    unsigned prefix = max;
    if (slash != NULL) {
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3) {
            *err = "invalid prefix length";
            return -1;
        }
        prefix = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9') {
                *err = "invalid prefix length";
                return -1;
            }
            prefix = prefix * 10 + (unsigned)(*p - '0');
        }
        if (prefix > max) {
            *err = family == AF_INET ? "prefix length over 32" : "prefix length over 128";
            return -1;
        }
    }
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET6 && prefix >= 96 && memcmp(a, mapped, 12) == 0) {
        /* Clients in IPv4-mapped form are matched as IPv4: so are such networks. */
        family = AF_INET;
        prefix -= 96;
        memmove(a, a + 12, 4);
    }
    out->family = family;
    out->prefix = prefix;
    memcpy(out->addr, a, family == AF_INET ? 4 : 16);
    return 0;
}

static bool net_in(const struct spf_net *n, int family, const unsigned char *a)
{
    if (n->family != family)
        return false;
    size_t bytes = n->prefix / 8;
    unsigned bits = n->prefix % 8;
    if (memcmp(a, n->addr, bytes) != 0)
        return false;
    if (bits == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - bits));
    return (a[bytes] & mask) == (n->addr[bytes] & mask);
}

bool spf_net_match(const struct spf_net *nets, size_t n, const char *ip)
{
    unsigned char a[16];
    int family;
    if (ip == NULL || !net_addr(ip, &family, a))
        return false;
    for (size_t i = 0; i < n; i++)
        if (net_in(&nets[i], family, a))
            return true;
    return false;
}
