/*
 * spf_dns_reply - one DNS reply, as c-ares hands it to a query's callback,
 * made into the libspf2 record set that the SPF check reads.
 *
 * spf_dns_reply_rr(srv, domain, type, status, abuf, alen) is a pure
 * function of its arguments (srv is only recorded as the record's source
 * and may be NULL).  The message is read by c-ares's own parsers
 * (ares_parse_a_reply, _aaaa_, _mx_, _ptr_, _txt_reply_ext), which check
 * that every record lies inside the message and, for A, AAAA and PTR, that
 * it belongs to the name asked (following CNAMEs); the TTLs, which c-ares
 * 1.18 gives only for addresses, are read with libresolv's ns_parserr().
 *
 *   status             result (herrno, ttl)
 *   ARES_SUCCESS       records of the type asked: NETDB_SUCCESS, the least
 *                      TTL of them cut to SPF_DNS_MAX_TTL; none: NO_DATA
 *   ARES_ENODATA       NO_DATA, SPF_DNS_NEG_TTL
 *   ARES_ENOTFOUND     HOST_NOT_FOUND, SPF_DNS_NEG_TTL (NXDOMAIN)
 *   ARES_EBADNAME      HOST_NOT_FOUND, SPF_DNS_NEG_TTL (a name that cannot
 *                      be asked: empty label, label over 63, over 255 in all)
 *   ARES_ENOMEM        NULL
 *   anything else      TRY_AGAIN, TTL 0 (timeout, SERVFAIL, REFUSED,
 *                      cancelled at the deadline): the SPF check's temperror
 *
 * A reply that c-ares's parser refuses is TRY_AGAIN too, and nothing of it
 * is kept: records running past the end, more counted than there are, a
 * bad compression pointer, or a PTR or CNAME target that is no host name
 * (c-ares checks targets against [A-Za-z0-9-._/]; for PTR, spf_check then
 * skips the client's names, as RFC 7208 5.5 says of DNS errors).
 *
 * TXT: the character-strings of one record are joined without separator
 * (RFC 7208 3.3); a NUL octet in one becomes DEL (0x7f) so that the record,
 * which libspf2 stores NUL-terminated, stays invalid instead of shortened.
 * MX and PTR: the target names as c-ares expands them, without the final
 * dot.  Records of other types are not kept, nor of classes other than IN,
 * except TXT of class CH, which c-ares's parser accepts beside IN (only the
 * configured resolver can put one there, and it could as well send IN).
 */
#ifndef SMTPGATE_SPF_DNS_REPLY_H
#define SMTPGATE_SPF_DNS_REPLY_H

#include <netinet/in.h>
#include <arpa/nameser.h>
#include <spf2/spf.h>

#define SPF_DNS_NEG_TTL 60
/* An answer's TTL is cut to this before libspf2's cache sees it: the cache
 * drops entries only once they expire, and a sender choosing domain names
 * and TTLs must not make it grow for days. */
#define SPF_DNS_MAX_TTL 900

SPF_dns_rr_t *spf_dns_reply_rr(SPF_dns_server_t *srv, const char *domain, ns_type type, int status,
                               const unsigned char *abuf, int alen);

#endif
