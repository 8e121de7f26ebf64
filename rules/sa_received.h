/*
 * sa_received - one Received field read as SpamAssassin reads it
 * (Mail::SpamAssassin::Message::Metadata::Received, parse_received_line):
 * the relay it describes (the client's address, its reverse name, its HELO,
 * the receiving host, ident, envelope sender, queue id, the authentication
 * it names), or that the field is to be ignored, or that it cannot be read.
 *
 * What it promises:
 *   - sa_received_parse is a pure function of its input: the same octets
 *     give the same relay, and the strings of the relay are its own copies
 *     (free them with sa_relay_clear), with SpamAssassin's clean-up applied
 *     (blanks, NUL, # [ ] ( ) < > | made '!', "IPv6:" and "::ffff:"
 *     taken off addresses, trailing dots off the reverse name).
 *   - SA_RCVD_IGNORED is SpamAssassin's "return 0": a local handover, a
 *     mail fetcher, a format known to carry no address; SA_RCVD_UNPARSEABLE
 *     its "return undef", which its check_relays_unparseable counts.
 *   - The patterns are SpamAssassin's, as PCRE2 runs them on octets; each
 *     is compiled once per process, the first time a field needs it.
 *
 * What it assumes: line is one field's value, its folding may still be in
 * it (blanks of any kind are made one space first, as there).
 */
#ifndef SMTPGATE_RULES_SA_RECEIVED_H
#define SMTPGATE_RULES_SA_RECEIVED_H

#include <stdbool.h>
#include <stddef.h>

struct sa_relay {
    char *ip, *rdns, *helo, *by, *ident, *id, *auth;
    char *envfrom;          /* NULL: none named */
    bool ip_private;        /* SpamAssassin's IP_PRIVATE: not on the public internet */
    bool no_reverse_dns;    /* the MTA looks names up, and found none */
    bool rdns_not_in_headers; /* no name, and this MTA would not have written one */
    /* set by the chain (sa_relays), not by the parser */
    bool trusted, internal, msa;
};

enum sa_rcvd_rc {
    SA_RCVD_NOMEM = -1,
    SA_RCVD_IGNORED = 0,
    SA_RCVD_PARSED = 1,
    SA_RCVD_UNPARSEABLE = 2,
};

/* What parsing one field gave besides the relay: a mail fetcher's handover
 * (SpamAssassin restarts the chain there), or a qmail-scanner line's
 * envelope sender, which belongs to the next field read. */
struct sa_rcvd_extra {
    bool pop_fetcher;
    char *qmail_scanner_envfrom; /* malloc'ed, or NULL */
};

/* r is filled (and must be cleared) only when SA_RCVD_PARSED comes back;
 * extra may be NULL, else it must be cleared with sa_rcvd_extra_clear. */
enum sa_rcvd_rc sa_received_parse(const char *line, size_t n, struct sa_relay *r,
                                  struct sa_rcvd_extra *extra);
void sa_relay_clear(struct sa_relay *r);
void sa_rcvd_extra_clear(struct sa_rcvd_extra *x);

/* SpamAssassin's text of a relay, "[ ip=... rdns=... ... msa=0 ]", into
 * out (malloc'ed); -1 when out of memory. */
int sa_relay_string(const struct sa_relay *r, char **out);

/* 1 when the address is in SpamAssassin's IP_PRIVATE ranges (as the
 * parser marks it), 0 not, -1 out of memory. */
int sa_ip_is_private(const char *ip);

/* The first address (SpamAssassin's IP_ADDRESS) in s[0..n), malloc'ed into
 * *ip: 1 found, 0 none, -1 out of memory.  For the X-Originating-IP fields
 * SpamAssassin reads as relays. */
int sa_received_find_ip(const char *s, size_t n, char **ip);

/* Patterns that PCRE2 refused (a defect; tests see 0). */
unsigned sa_received_bad_patterns(void);

#endif
