/*
 * sa_rcvdwl - the relay part of SpamAssassin's welcomelist_from_rcvd and
 * def_welcomelist_from_rcvd entries (WLBLEval's _check_welcomelist_rcvd):
 * whether one relay of the chain is the one an entry names.
 *
 * What it promises: SpamAssassin's answer for the entry's second word as
 * written (lower-cased) against the relay's IP address text and its rDNS
 * (compared without regard to ASCII case, as /i does):
 *   - a name: the rDNS is it, or ends with "." and it;
 *   - [a.b.c.d]: the relay's address is that text exactly;
 *   - [a.b.c] and shorter (digits and dots): the address begins with it
 *     and a dot (the classful subnets);
 *   - any other [ADDR/LEN], [ADDR]/LEN, [IPv6]: NetAddr::IP's contains,
 *     where an IPv4 address is the IPv4-compatible ::a.b.c.d, so an IPv4
 *     entry holds such an IPv6 relay and ::/96 every IPv4 one; LEN is
 *     decimal or, for IPv4, a dotted netmask; an IPv4 ADDR may have fewer
 *     than four parts (zeros fill the rest).  Other notations NetAddr::IP
 *     reads (octal parts, hostnames) match nothing here, as a warning.
 *
 * What it assumes: nothing; pure, no allocation.
 */
#ifndef SMTPGATE_RULES_SA_RCVDWL_H
#define SMTPGATE_RULES_SA_RCVDWL_H

#include <stdbool.h>

/* entry: the relay word of the entry; ip: the relay's address (NULL or
 * "": none); rdns: its name (NULL: none). */
bool sa_rcvdwl_relay_matches(const char *entry, const char *ip, const char *rdns);

#endif
