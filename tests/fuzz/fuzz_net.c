// fuzz-sources: util/net.c
/*
 * An address or range text from a config file or a rule file must parse or
 * be refused with a reason, never crash or read outside its octets; what
 * parses must be well formed, and matching must agree with the range's own
 * definition.  The input is copied to a buffer of exactly its size, so any
 * read past len is caught.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void fuzz_range(const char *buf, size_t size, unsigned flags)
{
    struct net_range r;
    const char *why = NULL;
    if (net_range_parse_text(buf, size, flags, &r, &why) != 0) {
        if (why == NULL)
            abort();
        return;
    }
    if (r.family != AF_INET && r.family != AF_INET6)
        abort();
    if (r.prefix > (r.family == AF_INET ? 32u : 128u))
        abort();
    /* the range's own address is inside it */
    struct net_addr a = {.family = r.family};
    memcpy(a.bytes, r.addr, 16);
    if (!net_range_match(&r, &a))
        abort();
    /* so is its text, unless that is a mapped address (then IPv4) in a
     * shorter IPv6 range */
    char text[INET6_ADDRSTRLEN];
    bool v4_text = r.family == AF_INET6 && memcmp(r.addr, mapped, 12) == 0;
    if (!v4_text && inet_ntop(r.family, r.addr, text, sizeof(text)) != NULL &&
        !net_ranges_match_text(&r, 1, text))
        abort();
    /* an exact range read again without the flag is the same range */
    if (flags & NET_RANGE_EXACT) {
        struct net_range again;
        if (net_range_parse_text(buf, size, 0, &again, &why) != 0 ||
            memcmp(&again, &r, sizeof(r)) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);

    fuzz_range(buf, size, 0);
    fuzz_range(buf, size, NET_RANGE_EXACT);

    struct net_addr a;
    if (net_addr_parse(buf, size, &a)) {
        if (a.family != AF_INET && a.family != AF_INET6)
            abort();
        if (a.family == AF_INET6 && memcmp(a.bytes, mapped, 12) == 0)
            abort(); /* mapped addresses are IPv4 */
    }
    free(buf);
    return 0;
}
