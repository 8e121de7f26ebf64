// fuzz-sources: codec/proxy_header.c
/*
 * The PROXY header is the first thing read from a connection: every prefix of
 * the input is parsed with each version set, and the results must agree with
 * each other (a header found in a prefix is found, with the same length, in
 * every longer input) and stay inside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/proxy_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned allows[] = {PROXY_HDR_ALLOW_V1, PROXY_HDR_ALLOW_V2,
                                      PROXY_HDR_ALLOW_V1 | PROXY_HDR_ALLOW_V2};
    for (size_t a = 0; a < 3; a++) {
        struct proxy_header h;
        size_t used = 0;
        enum proxy_hdr_status full = proxy_header_parse(data, size, allows[a], &h, &used);
        if (full == PROXY_HDR_OK && (used == 0 || used > size))
            abort();
        if (full == PROXY_HDR_OK && !h.local && h.src.ss_family != h.dst.ss_family)
            abort();
        if (memchr(h.authority, '\0', sizeof(h.authority)) == NULL)
            abort();
        if (full == PROXY_HDR_OK) {
            /* exactly the header: same answer */
            size_t again = 0;
            if (proxy_header_parse(data, used, allows[a], &h, &again) != PROXY_HDR_OK ||
                again != used)
                abort();
            /* one octet less: never OK with the same length */
            if (used > 0 &&
                proxy_header_parse(data, used - 1, allows[a], &h, &again) == PROXY_HDR_OK &&
                again == used)
                abort();
        }
    }
    return 0;
}
