/*
 * spf_header - the header fields the SPF plugin writes and reads, pure.
 *
 * spf_header_received() returns the value of a Received-SPF field (RFC
 * 7208 9.1): result, comment, then client-ip, envelope-from, helo,
 * receiver, identity and mechanism or problem as key=value pairs, folded
 * with CRLF HTAB before 78 columns.  spf_header_auth_results() returns the
 * value of an Authentication-Results field (RFC 8601): authserv-id, then
 * one "spf=RESULT smtp.mailfrom=..." or "smtp.helo=..." per check given.
 * Everything taken from the network (sender, HELO, problem texts) is
 * written as a quoted-string with '"' and '\' escaped and octets outside
 * visible ASCII as '?'.  Both return malloc'ed strings, NULL when out of
 * memory.
 *
 * spf_header_authserv_id() reads the authserv-id of a received
 * Authentication-Results value (after CFWS; a token or quoted-string) into
 * buf and returns true, or false when there is none or it does not fit.
 */
#ifndef SMTPGATE_SPF_HEADER_H
#define SMTPGATE_SPF_HEADER_H

#include <stdbool.h>
#include <stddef.h>

#include "spf_check.h"

char *spf_header_received(const struct spf_check_result *res, const char *client_ip,
                          const char *helo, const char *envelope_from, const char *receiver);
char *spf_header_auth_results(const char *authserv_id, const struct spf_check_result *const *res,
                              size_t n);
bool spf_header_authserv_id(const char *value, size_t len, char *buf, size_t cap);

#endif
