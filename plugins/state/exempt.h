/*
 * exempt - the clients a reputation check leaves alone, read and matched
 * the same way by every plugin of the state layer:
 *
 *   exempt_networks       list of CIDR ranges ("192.0.2.0/24", "::1")
 *   exempt_authenticated  clients that logged in with AUTH
 *
 * exempt_read() reads the list from the plugin's section (the host already
 * ran exempt_check_network on each item) and reports a bad item through
 * host->config_error; exempt_client() says whether a client is exempt, and
 * why (a static word for the log), or NULL.
 */
#ifndef SMTPGATE_STATE_EXEMPT_H
#define SMTPGATE_STATE_EXEMPT_H

#include <stdbool.h>
#include <stddef.h>

#include "smtpgate/plugin.h"
#include "util/net.h"

struct exempt {
    struct net_range *nets;
    size_t nnets;
    bool authenticated;
};

const char *exempt_check_network(const char *v);
int exempt_read(const struct sg_host *h, const struct sg_section *sec, struct exempt *ex);
void exempt_free(struct exempt *ex);
/* login: NULL when the client did not authenticate (yet). */
const char *exempt_client(const struct exempt *ex, const char *addr, const char *login);

#endif
