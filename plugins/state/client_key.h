/*
 * client_key - the texts that name whom a rate or a greylist entry is about:
 * a client's address, its network, a sender address or domain, a recipient
 * domain.  Pure functions (no socket, no allocation, no locale).
 *
 * Promises: each function writes a NUL-terminated key of at most outlen - 1
 * octets into out and returns its length, or returns -1 (nothing usable
 * written) when the input is not what it should be or the key does not fit.
 * Keys are canonical: two spellings of one address (IPv6 zero compression,
 * a v4-mapped IPv6 address, upper and lower case in a domain) give one key,
 * so that every instance of a fleet counts the same thing under one name.
 *
 *   client_key_address(addr, ...)        "192.0.2.7", "2001:db8::1"
 *   client_key_network(addr, v4, v6 ...) "192.0.2.0/24", "2001:db8::/64"
 *   client_key_sender(mailbox, strip ...) "user@example.org" lower-cased;
 *                                         strip: without "+extension"
 *                                         in the local part; the null
 *                                         sender is "<>"
 *   client_key_domain(mailbox, ...)      "example.org" (after the last @),
 *                                         -1 when there is no domain
 *
 * Assumes: addr is numeric text (what the host hands over as client_addr);
 * mailbox is what the host hands to mail/rcpt (no angle brackets).
 */
#ifndef SMTPGATE_STATE_CLIENT_KEY_H
#define SMTPGATE_STATE_CLIENT_KEY_H

#include <stdbool.h>
#include <stddef.h>

int client_key_address(const char *addr, char *out, size_t outlen);
int client_key_network(const char *addr, unsigned ipv4_prefix, unsigned ipv6_prefix, char *out,
                       size_t outlen);
int client_key_sender(const char *mailbox, bool strip_extension, char *out, size_t outlen);
int client_key_domain(const char *mailbox, char *out, size_t outlen);

#endif
