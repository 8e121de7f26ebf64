/*
 * spf_net - client networks (CIDR, IPv4 and IPv6) for SPF exemptions, pure.
 *
 * spf_net_parse() reads "ADDR" or "ADDR/LEN" (IPv4 or IPv6; LEN 0..32 or
 * 0..128, decimal); host bits beyond LEN are ignored.  It returns 0, or -1
 * with a reason in err.  spf_net_match() says whether a numeric client
 * address is in any of the networks; an IPv4-mapped IPv6 client counts as
 * its IPv4 address.  An address that does not parse matches nothing.
 */
#ifndef SMTPGATE_SPF_NET_H
#define SMTPGATE_SPF_NET_H

#include <stdbool.h>
#include <stddef.h>

struct spf_net {
    int family;
    unsigned char addr[16];
    unsigned prefix;
};

int spf_net_parse(const char *s, struct spf_net *out, const char **err);
bool spf_net_match(const struct spf_net *nets, size_t n, const char *ip);

#endif
