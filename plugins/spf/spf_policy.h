/*
 * spf_policy - what the SPF plugin does with a result, pure.
 *
 * Every result has an action: tag (record it in the headers only), reject
 * (5xx) or tempfail (4xx).  spf_policy_defaults() sets RFC 7208 8 / RFC 7372
 * practice: fail rejects, temperror tempfails, all else tags.
 * spf_policy_reply() writes the SMTP reply for a reject or tempfail:
 * "550 5.7.23" for fail (with the domain's explanation when it gave one),
 * "550 5.7.24" for permerror, "451 4.7.24" for temperror, 5.7.23 / 4.7.23
 * for results an admin chose to refuse otherwise.  Texts from DNS are cut
 * and limited to visible ASCII.  spf_policy_stronger() orders actions
 * (reject > tempfail > tag) to combine the HELO and MAIL FROM verdicts.
 *
 * spf_domain_listed(): "example.org" matches that domain only,
 * ".example.org" its subdomains only; case-insensitive, trailing dots
 * ignored.  spf_rcpt_listed(): an entry with "@" matches that address, an
 * entry without matches that local part at any domain.
 */
#ifndef SMTPGATE_SPF_POLICY_H
#define SMTPGATE_SPF_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "spf_check.h"

enum spf_action { SPF_ACT_TAG = 0, SPF_ACT_TEMPFAIL, SPF_ACT_REJECT };

struct spf_policy {
    enum spf_action action[SPFC__COUNT];
};

void spf_policy_defaults(struct spf_policy *p);
int spf_action_parse(const char *s); /* -1 when not "tag", "reject" or "tempfail" */
const char *spf_action_name(enum spf_action a);
enum spf_action spf_policy_stronger(enum spf_action a, enum spf_action b);
/* Writes a NUL-terminated reply line into buf (cap >= 64); returns its length. */
size_t spf_policy_reply(enum spf_action a, const struct spf_check_result *res,
                        const char *client_ip, char *buf, size_t cap);
bool spf_domain_listed(char *const *list, size_t n, const char *domain);
bool spf_rcpt_listed(char *const *list, size_t n, const char *rcpt);

#endif
