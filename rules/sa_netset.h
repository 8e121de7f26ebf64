/*
 * sa_netset - SpamAssassin's trusted_networks, internal_networks and
 * msa_networks (Conf.pm, NetSet.pm): the lists the .cf files give, read as
 * SpamAssassin reads them, and the test of an address against one.
 *
 * What it promises:
 *   - An entry is ADDR, ADDR/LEN, [ADDR]/LEN, an IPv4 prefix of one to three
 *     octets ("10.1." is 10.1.0.0/16), each optionally after '!' (an
 *     exclusion); a zone (%eth0) is dropped.  sa_netset_line reads a whole
 *     setting's value (entries split at blanks) and names the first entry
 *     it cannot read in why, adding the others, as SpamAssassin warns and
 *     goes on.
 *   - trusted_networks and internal_networks hold 127.0.0.0/8 and ::1 from
 *     the start and after clear_*, as there; msa_networks holds nothing.
 *   - sa_netset_contains is NetSet's sequential lookup: the first entry
 *     that holds the address decides (an exclusion says no); an address that
 *     is not numeric is in no set.
 *   - "configured" is SpamAssassin's *_configured: a value line was read
 *     since the start or the last clear_* line.
 *
 * What it assumes: nothing; pure, no allocation but the entry arrays.
 */
#ifndef SMTPGATE_RULES_SA_NETSET_H
#define SMTPGATE_RULES_SA_NETSET_H

#include <stdbool.h>
#include <stddef.h>

#include "util/net.h"

enum sa_netset_kind { SA_NET_TRUSTED, SA_NET_INTERNAL, SA_NET_MSA, SA_NET__COUNT };

struct sa_net {
    struct net_range range;
    bool exclude;
};

struct sa_netset {
    struct sa_net *v;
    size_t n, cap;
    bool configured;
};

struct sa_relay_conf {
    struct sa_netset set[SA_NET__COUNT];
    /* DNSEval's settings on the relays it queries (sa_dnsbl.h); 0: the
     * default (num_check_received 9, rbl_timeout 15 s) */
    bool skip_rbl_checks;
    unsigned num_check_received;
    double rbl_timeout;
};

/* A new configuration with SpamAssassin's defaults; NULL out of memory. */
struct sa_relay_conf *sa_relay_conf_new(void);
void sa_relay_conf_free(struct sa_relay_conf *c);

/* The setting named key (lower case, "trusted_networks", "clear_msa_networks",
 * ...) with its value: 1 not one of these settings, 0 read, 2 read but
 * with a bad entry or value (why says which), -1 out of memory. */
int sa_netset_line(struct sa_relay_conf *c, const char *key, const char *val, size_t vn, char *why,
                   size_t wn);

/* The address (numeric text) is in the set. */
bool sa_netset_contains(const struct sa_netset *s, const char *ip);

#endif
