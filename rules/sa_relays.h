/*
 * sa_relays - SpamAssassin's relay chain (Message::Metadata::Received,
 * parse_received_headers): the Received fields read newest first, each
 * relay judged trusted or not, internal or not, against trusted_networks,
 * internal_networks and msa_networks (sa_netset) or, when neither is set,
 * by SpamAssassin's inference (a private address or an authenticated
 * handover extends trust; the first other relay ends it).
 *
 * smtpgate is the receiving MTA: the newest relay, which SpamAssassin
 * reads back from the Received field its MTA adds, is made here from the
 * session's own facts (the client's address, its verified name, its HELO,
 * TLS and SASL), as the field Postfix would write for them and read by the
 * same parser, so that it is judged exactly as SpamAssassin judges it.
 * Without facts (a saved message) the chain is the message's fields alone,
 * as SpamAssassin sees a message already received.
 *
 * What it promises:
 *   - str[] are SpamAssassin's X-Spam-Relays-Trusted, -Untrusted,
 *     -Internal and -External, relay texts joined by one space ("" when
 *     none), intl= and msa= set as there.
 *   - A mail fetcher's handover (POP3, IMAP) inside the trusted part
 *     restarts the trusted, internal and external lists, as there; the
 *     envelope sender of a qmail-scanner line goes to the relay below it.
 *   - unparseable counts the fields SpamAssassin could not read.
 *
 * What it assumes: lines are the Received values newest first (decoded),
 * then the synthetic "from X-Originating-IP: ADDR" lines SpamAssassin
 * appends for its originating_ip_headers.
 */
#ifndef SMTPGATE_RULES_SA_RELAYS_H
#define SMTPGATE_RULES_SA_RELAYS_H

#include <stdbool.h>
#include <stddef.h>

#include "rules/rules.h"
#include "rules/sa_netset.h"
#include "rules/sa_received.h"

/* The handover smtpgate received, as its session knows it. */
struct sa_relay_facts {
    const char *ip;   /* numeric; NULL: no facts */
    const char *rdns; /* verified reverse name; NULL: none ("unknown") */
    const char *helo; /* NULL: no HELO given */
    const char *by;   /* the receiving host's name; NULL: "localhost" */
    bool tls;
    const char *auth; /* SASL login; NULL: none */
};

enum sa_relay_list { SA_RL_TRUSTED, SA_RL_UNTRUSTED, SA_RL_INTERNAL, SA_RL_EXTERNAL, SA_RL__COUNT };

struct sa_relays {
    struct sa_relay *v; /* every relay parsed, newest first */
    size_t n;
    size_t *list[SA_RL__COUNT]; /* indices into v */
    size_t count[SA_RL__COUNT];
    char *str[SA_RL__COUNT];
    size_t unparseable;
    char *facts_line; /* the field made from the facts, or NULL */
    /* SpamAssassin's last_trusted_relay_index and last_internal_relay_index:
     * the Received fields (the facts' one first) the trusted and internal
     * part spans, counted from 0, -1 when none */
    int last_trusted, last_internal;
};

/* 0 and *out, or -1 out of memory.  c NULL: SpamAssassin's defaults. */
int sa_relays_build(const struct sa_relay_conf *c, const struct sa_relay_facts *f,
                    const char *const *lines, const size_t *lens, size_t n,
                    struct sa_relays **out);
void sa_relays_free(struct sa_relays *r);

/* The Received field Postfix writes for the facts (without its date, queue
 * id and recipient, which SpamAssassin's relays do not depend on but id=),
 * malloc'ed; NULL out of memory. */
char *sa_relays_facts_line(const struct sa_relay_facts *f);

struct rules_msg;
/* SpamAssassin's ALL-TRUSTED, ALL-UNTRUSTED, ALL-INTERNAL, ALL-EXTERNAL
 * (which: enum sa_relay_list): the header lines ("Name: value\n", values
 * decoded) that the trusted (...) relays could have added, the Received
 * field at the boundary included, the facts' Received field first, as it
 * is at the top of SpamAssassin's message.  malloc'ed (*len its length),
 * NULL out of memory. */
char *sa_relays_all(struct rules_msg *m, const struct sa_relays *r, int which, size_t *len);

/* The chain of the message, built on the first call from the context the
 * evaluator set (rules_msg_set_relay_ctx) and kept with the message; NULL
 * out of memory (the message's nomem flag is then the caller's to set). */
const struct sa_relays *sa_relays_of(struct rules_msg *m);

#endif
