/*
 * sa_dns_resolve - answers for the message's blocklist queries
 * (sa_dnsbl.h): every query sent at once through c-ares, A and TXT, and
 * waited for together, for at most the timeout.
 *
 * What it promises:
 *   - It blocks the calling thread for at most timeout seconds (it runs
 *     where blocking is allowed: smtpgate-rules, the rules plugin's
 *     end-of-message callback on the work pool).
 *   - An answer not come by then, an error (SERVFAIL, NXDOMAIN, refused)
 *     leaves that query without answers: a miss, as in SpamAssassin.
 *   - servers NULL or "": the system's resolver configuration; else
 *     c-ares' "host[:port],..." form (tests name a loopback server).
 *
 * What it assumes: nothing else uses the queries meanwhile.
 */
#ifndef SMTPGATE_RULES_SA_DNS_RESOLVE_H
#define SMTPGATE_RULES_SA_DNS_RESOLVE_H

#include "rules/sa_dnsbl.h"

/* 0, or -1 when the resolver could not start (why says so): no answers. */
int sa_dns_resolve(struct sa_dns_queries *qs, const char *servers, double timeout, char *why,
                   size_t wn);

#endif
