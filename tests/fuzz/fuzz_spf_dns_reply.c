// fuzz-sources: plugins/spf/spf_dns_reply.c
// fuzz-pkgs: libcares -lspf2 -lresolv
/*
 * A DNS reply comes from the network, through the configured resolver.  The
 * first octet picks the type asked (A, AAAA, MX, PTR, TXT) and whether the
 * reply reached the callback as a success or as NXDOMAIN; the rest is the
 * message, copied to a buffer of exactly its size, so any read past it is
 * caught.  The result must be a record set libspf2 can use: records only
 * with NETDB_SUCCESS, a TTL within the cut, names and TXT strings
 * NUL-terminated and no longer than the message could hold.
 */
#include <ares.h>
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spf/spf_dns_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const ns_type types[] = {ns_t_a, ns_t_aaaa, ns_t_mx, ns_t_ptr, ns_t_txt};
    if (size < 1 || size > 65536)
        return 0;
    ns_type type = types[(data[0] & 0x7f) % 5];
    int status = (data[0] & 0x80) ? ARES_ENOTFOUND : ARES_SUCCESS;
    size_t len = size - 1;
    unsigned char *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data + 1, len);
    SPF_dns_rr_t *rr = spf_dns_reply_rr(NULL, "example.org", type, status, buf, (int)len);
    if (rr == NULL)
        abort(); /* only when memory runs out */
    if (rr->herrno != NETDB_SUCCESS && rr->num_rr != 0)
        abort();
    if (rr->herrno == NETDB_SUCCESS && rr->num_rr == 0)
        abort();
    if (rr->ttl < 0 || rr->ttl > SPF_DNS_MAX_TTL || rr->rr_type != type)
        abort();
    for (int i = 0; i < rr->num_rr; i++) {
        if (type == ns_t_a || type == ns_t_aaaa)
            continue;
        /* A TXT record holds fewer octets than its message; a name, at most 1024. */
        size_t max = type == ns_t_txt ? len : 1024;
        if (strnlen(rr->rr[i]->txt, max + 1) > max)
            abort();
    }
    SPF_dns_rr_free(rr);
    free(buf);
    return 0;
}
