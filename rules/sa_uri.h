/*
 * sa_uri - SpamAssassin's forms of one URI (Util.pm uri_list_canonicalize);
 * pure.
 *
 * sa_uri_forms(uri, len, redirs, fn, arg) hands fn each form a uri rule is matched
 * against: the URI itself (line ends and surrounding whitespace removed),
 * and, when they differ from it, the normalised URI (backslashes as
 * slashes, "http:/x" as "http://x", when a %XX is there Util::url_encode's
 * decoding of %21-%7f but %20, %7f and %80-%ff (kept) and encoding of
 * controls, spaces, 8-bit octets, '"', '%', '<' and '>', then a missing
 * scheme added: "ftp://" before
 * "ftp.", "http://" before anything else, so "www.x" is "http://www.x"; a
 * "/" before a "?" or "#" that follows the host; &#NN; references to
 * printable ASCII decoded), and the forms SpamAssassin builds from its
 * protocol, host and rest (so without a user part "user@"): the host
 * without trailing non-alphanumerics, the rest without the default port;
 * the target of a redirector, itself given every form: of the first of
 * redirs' redirector_pattern lines (sa_redir.h) that matches
 * "scheme://host rest" (no user part), else of the generic one
 * ("...?url=http://target": the first "https?:/{0,2}[^&#]+" of the rest
 * holding a '.').  redirs NULL: only the generic one.
 * A mailto: or user@host URI gives itself and the address before a "?".
 * What SpamAssassin skips ("#...", "?...", "&...", "/path", one octet) gives
 * nothing.  At most SA_URI_FORMS_MAX forms; a redirector nests at most
 * SA_URI_NEST_MAX deep.
 */
#ifndef SMTPGATE_SA_URI_H
#define SMTPGATE_SA_URI_H

#include <stddef.h>

struct sa_redirs;

#define SA_URI_FORMS_MAX 16
#define SA_URI_NEST_MAX  4

typedef void (*sa_uri_fn)(void *arg, const char *uri, size_t len);

void sa_uri_forms(const char *uri, size_t len, const struct sa_redirs *redirs, sa_uri_fn fn,
                  void *arg);

#endif
