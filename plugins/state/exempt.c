/*
 * exempt - exempt networks and authenticated clients (contract in
 * exempt.h).  Ranges are read without NET_RANGE_EXACT, as the SPF plugin's
 * exempt_networks are: "10.1.2.3/8" means 10.0.0.0/8.
 */
#include "exempt.h"

#include <stdlib.h>
#include <string.h>

const char *exempt_check_network(const char *v)
{
    struct net_range r;
    const char *why = "not a network";
    return v && net_range_parse_text(v, strlen(v), 0, &r, &why) == 0 ? NULL : why;
}

int exempt_read(const struct sg_host *h, const struct sg_section *sec, struct exempt *ex)
{
    memset(ex, 0, sizeof(*ex));
    ex->authenticated = h->opt_bool(sec, "exempt_authenticated");
    size_t n = h->opt_list_size(sec, "exempt_networks");
    ex->nets = calloc(n + 1, sizeof(*ex->nets));
    if (!ex->nets)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *v = h->opt_list_item(sec, "exempt_networks", i);
        const char *why = "missing value";
        if (!v || net_range_parse_text(v, strlen(v), 0, &ex->nets[ex->nnets], &why) < 0) {
            h->config_error(sec, "exempt_networks", "'%s': %s", v ? v : "", why);
            return -1;
        }
        ex->nnets++;
    }
    return 0;
}

void exempt_free(struct exempt *ex)
{
    free(ex->nets);
    ex->nets = NULL;
    ex->nnets = 0;
}

const char *exempt_client(const struct exempt *ex, const char *addr, const char *login)
{
    if (net_ranges_match_text(ex->nets, ex->nnets, addr))
        return "network";
    if (ex->authenticated && login && *login)
        return "authenticated";
    return NULL;
}
