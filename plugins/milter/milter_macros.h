/*
 * milter_macros - the macros the milter plugin sends before each command:
 * which ones (per stage lists) and their values from smtpgate's facts, pure.
 *
 * A list is names separated by blanks or commas, as Postfix's milter_*_macros
 * settings and a milter's SMFIC_OPTNEG symbol lists write them: "j {daemon_name}
 * _".  milter_macros_split() turns one into a struct milter_macro_list (its
 * own copy; names keep their braces, as they go on the wire); at most
 * MILTER_MACROS_MAX names are kept, the rest are dropped.
 *
 * milter_macros_value() gives the value of one name ("{client_addr}" or
 * "client_addr"; single letters without braces) from struct milter_facts,
 * or NULL when smtpgate has no value for it: such a macro is not sent,
 * as Postfix leaves out what it does not know.  Values that must be built
 * ("_", ports, {mail_host}) are written into buf (at least 300 octets).
 *
 * The defaults per stage are Postfix's (milter_connect_macros and the
 * others), with the client's own facts added at connect:
 * milter_macros_default(stage) for SMFIM_CONNECT..SMFIM_EOH.
 */
#ifndef SMTPGATE_MILTER_MACROS_H
#define SMTPGATE_MILTER_MACROS_H

#include <stddef.h>

#define MILTER_MACROS_MAX 64

struct milter_macro_list {
    size_t n;
    char *names[MILTER_MACROS_MAX];
};

/* What smtpgate knows; NULL (or 0 for ports) where it knows nothing. */
struct milter_facts {
    const char *host_name;   /* j */
    const char *daemon_name; /* {daemon_name} */
    const char *daemon_addr;
    unsigned daemon_port;
    const char *version; /* v */
    const char *client_addr;
    unsigned client_port;
    const char *client_name; /* verified reverse name */
    const char *helo;        /* s */
    const char *tls_version;
    const char *cipher;
    const char *cert_subject;
    const char *cert_issuer;
    const char *tx_id;       /* i */
    const char *auth_authen; /* the SASL login */
    const char *mail_addr;
    const char *rcpt_addr;
};

int milter_macros_split(const char *list, struct milter_macro_list *out);
void milter_macros_free(struct milter_macro_list *l);
const char *milter_macros_value(const struct milter_facts *f, const char *name, char *buf,
                                size_t bufsz);
const char *milter_macros_default(int stage);

#endif
