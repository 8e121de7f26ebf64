// fuzz-sources: plugins/dnsbl/dnsbl_site.c
/*
 * A site list (an admin's text, and in RHSBL names a client's HELO and
 * sender) must parse or fail with a reason and an offset inside the input,
 * never crash; every parsed site must hold a valid domain, and the query
 * names built from it must fit.  The input is copied to a buffer of exactly
 * its size, so any read past len is caught.  Its first line also serves as
 * a HELO name for dnsbl_rhs_name, and as an address for dnsbl_ip_name.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/dnsbl/dnsbl_site.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    struct dnsbl_sites s;
    const char *why = NULL;
    size_t at = 0;
    if (dnsbl_sites_parse(buf, size, &s, &why, &at) == 0) {
        if (s.n == 0 || s.n > DNSBL_MAX_SITES)
            abort();
        uint8_t probe[4] = {127, 0, 0, 2};
        for (size_t i = 0; i < s.n; i++) {
            size_t dl = strlen(s.v[i].domain);
            if (dl == 0 || dl > DNSBL_DOMAIN_MAX)
                abort();
            char name[DNSBL_NAME_MAX];
            if (!dnsbl_ip_name("2001:db8::1", s.v[i].domain, name) ||
                !dnsbl_ip_name("192.0.2.1", s.v[i].domain, name))
                abort(); /* the bound on domains promises these fit */
            (void)dnsbl_site_match(&s.v[i], probe);
            char sym[160];
            dnsbl_symbol_name("DNSBL_", s.v[i].domain, sym, sizeof sym);
        }
        dnsbl_sites_free(&s);
    } else if (why == NULL || at > size) {
        abort();
    }
    /* the first line as a client's HELO name or address */
    size_t nl = 0;
    while (nl < size && buf[nl] != '\n')
        nl++;
    char *line = malloc(nl + 1);
    if (line) {
        memcpy(line, buf, nl);
        line[nl] = '\0';
        char name[DNSBL_NAME_MAX];
        if (dnsbl_rhs_name(line, "dbl.example", name) && strlen(name) > 253)
            abort();
        (void)dnsbl_ip_name(line, "bl.example", name);
        char zone[DNSBL_DOMAIN_MAX + 1], server[64];
        (void)dnsbl_route_parse(line, zone, sizeof zone, server, sizeof server, &why);
        free(line);
    }
    free(buf);
    return 0;
}
