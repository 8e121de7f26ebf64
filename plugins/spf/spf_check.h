/*
 * spf_check - RFC 7208 check_host(): evaluates one identity against its
 * domain's SPF policy, with DNS through a libspf2 DNS layer stack.
 *
 * spf_check_host(dns, req, res) fills res with the result, the matched term
 * (or "default"), the problem behind a temperror/permerror, and for a fail
 * the domain's own explanation (exp=, expanded here by spf_explain) when it
 * has a usable one.  Records are parsed by spf_record before anything of
 * them is used; the section 4.6.4 limits are enforced (10 DNS-querying
 * terms, 2 void look-ups, 10 MX names, 10 PTR names considered); a look-up
 * started at or after req->deadline, or failing with SERVFAIL or a timeout,
 * is a temperror.  dns is any SPF_dns_server_t (resolver, cache, zone);
 * look-ups are made with SPF_dns_lookup() and their answers freed here.
 *
 * The identity: SPF_ID_MAILFROM with a non-empty sender checks the sender's
 * domain; with the null sender, or SPF_ID_HELO, "postmaster@" + helo is
 * checked (RFC 7208 2.3, 2.4).  A malformed domain gives none (4.3).
 *
 * Returns 0, or -1 only when memory runs out (res->result is temperror).
 */
#ifndef SMTPGATE_SPF_CHECK_H
#define SMTPGATE_SPF_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <netinet/in.h>
#include <arpa/nameser.h>
#include <spf2/spf.h>

#include "spf_result.h"

enum spf_identity { SPF_ID_MAILFROM = 0, SPF_ID_HELO };

struct spf_check_request {
    const char *ip;     /* the client, numeric IPv4 or IPv6 */
    const char *sender; /* MAIL FROM mailbox, "" for the null sender */
    const char *helo;
    const char *receiver; /* %{r}; NULL: "unknown" */
    enum spf_identity identity;
    long long now;            /* %{t}; 0: the clock */
    struct timespec deadline; /* CLOCK_MONOTONIC; {0,0}: none */
};

struct spf_check_result {
    enum spf_result result;
    enum spf_identity identity; /* HELO also when the null sender was checked */
    char *sender;               /* the mailbox checked ("postmaster@helo" for HELO) */
    char *domain;               /* its domain */
    char *mechanism;            /* matched term as written, "default", or NULL */
    char *explanation;          /* fail with exp= only, else NULL */
    char *problem;              /* temperror / permerror / none reason, or NULL */
    unsigned dns_terms;
    unsigned void_lookups;
};

#define SPF_MAX_DNS_TERMS    10
#define SPF_MAX_VOID_LOOKUPS 2
#define SPF_MAX_MX_NAMES     10
#define SPF_MAX_PTR_NAMES    10

int spf_check_host(SPF_dns_server_t *dns, const struct spf_check_request *req,
                   struct spf_check_result *res);
void spf_check_result_free(struct spf_check_result *res);
/* RFC 7208 4.3: labels of 1..63 octets, 253 in all, at least two labels,
 * LDH (and '_') octets, a top label that is not all digits. */
bool spf_check_domain_ok(const char *domain);

#endif
