// fuzz-sources: rules/sa_rcvdwl.c
/*
 * The relay word of a welcomelist_from_rcvd entry comes from a rule file,
 * the relay's address and name from a message's Received fields: any
 * octets must give an answer, never a crash or a read past the end.  The
 * input is three NUL-separated parts (entry, IP, rDNS), each copied to a
 * buffer of exactly its size with its terminator.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_rcvdwl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *part(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *z = memchr(*p, '\0', (size_t)(end - *p));
    size_t n = z ? (size_t)(z - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    if (s != NULL) {
        memcpy(s, *p, n);
        s[n] = '\0';
    }
    *p = z ? z + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *entry = part(&p, end), *ip = part(&p, end), *rdns = part(&p, end);
    if (entry != NULL && ip != NULL && rdns != NULL) {
        bool m = sa_rcvdwl_relay_matches(entry, ip, rdns);
        /* without an address, an [IP] form never matches */
        if (m && entry[0] == '[' && ip[0] == '\0' && rdns[0] == '\0')
            abort();
        (void)sa_rcvdwl_relay_matches(entry, NULL, NULL);
    }
    free(entry);
    free(ip);
    free(rdns);
    return 0;
}
