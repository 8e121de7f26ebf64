/*
 * sa_addrs - the addresses SpamAssassin's list tests ask about, as
 * PerMsgStatus gives them: a field's :addr values (all its fields, or the
 * first one's: ":first"), the EnvelopeFrom pseudo-header, all_from_addrs()
 * and all_to_addrs().
 *
 * What it promises: the addresses in SpamAssassin's order, each a copy;
 * 0, or -1 when out of memory (what was gathered stays, for _free).
 *
 * What it assumes: the evaluator has set the message's EnvelopeFrom
 * (rules_msg_set_envelope_from) before the eval test runs.
 */
#ifndef SMTPGATE_RULES_SA_ADDRS_H
#define SMTPGATE_RULES_SA_ADDRS_H

#include <stdbool.h>
#include <stddef.h>

#include "rules/rules_int.h"
#include "rules/sa_lists.h" /* sa_fqdn_valid, which the callers use too */

struct sa_addrs {
    char **v;
    size_t n, cap;
};

/* Appends the :addr values of the fields named name (the pseudo-header
 * EnvelopeFrom included); first: those of the first such field only;
 * lower: lower-cased (ASCII), as FreeMail's map(lc, ...). */
int sa_addrs_field(struct rules_msg *m, const char *name, bool first, bool lower,
                   struct sa_addrs *a);
/* PerMsgStatus::all_from_addrs: Resent-From's first field, or From,
 * Envelope-Sender, Resent-Sender, X-Envelope-From, EnvelopeFrom; runs of
 * dots squeezed; empty ones and duplicates dropped. */
int sa_addrs_all_from(struct rules_msg *m, struct sa_addrs *a);
/* PerMsgStatus::all_to_addrs: Resent-To and Resent-Cc (first fields), or
 * the " for <addr>;" of the first three Received fields whose domain is a
 * valid name, To, Apparently-To, Delivered-To, ... Cc; duplicates dropped. */
int sa_addrs_all_to(struct rules_msg *m, const pcre2_code *for_re, struct sa_addrs *a);
/* the pattern for_re compiles (flags 0): a recipient in a Received field */
#define SA_ADDRS_FOR_RE " for <?(\\S+\\@(\\S+?))>?;"
bool sa_addrs_has(const struct sa_addrs *a, const char *s);
int sa_addrs_add(struct sa_addrs *a, const char *s, size_t n);
void sa_addrs_free(struct sa_addrs *a);

#endif
