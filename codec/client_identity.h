/*
 * client_identity - how the upstream learns the real client: XCLIENT command
 * lines (Postfix XCLIENT_README) and the PROXY protocol v2 header (HAProxy
 * proxy-protocol.txt section 2.2), built as bytes, pure.
 *
 * xclient_build() writes one or more "XCLIENT attr=value ...\r\n" lines, each at
 * most 512 octets including CRLF, values xtext-encoded, only the attributes the
 * upstream announced (attrs: the XCLIENT line of its EHLO reply, e.g.
 * "NAME ADDR PORT PROTO HELO LOGIN"), NAME/ADDR/PORT last as XCLIENT_README
 * advises (once ADDR is sent the proxy is usually no longer authorised).
 * Missing values are sent as "[UNAVAILABLE]"; IPv6 addresses as "IPV6:...".
 *
 * proxy_v2_build() writes the 16-octet signature+header and the address block
 * (TCP over IPv4 or IPv6; LOCAL if the family is not known).
 */
#ifndef SMTPGATE_CLIENT_IDENTITY_H
#define SMTPGATE_CLIENT_IDENTITY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct client_facts {
    const char *addr; /* numeric, without brackets: "192.0.2.1", "2001:db8::1" */
    int family;       /* AF_INET / AF_INET6 */
    unsigned port;
    const char *name;  /* verified reverse name, or NULL (-> [UNAVAILABLE]) */
    int name_tempfail; /* with name NULL: the lookup failed for now (-> [TEMPUNAVAIL]) */
    const char *helo;  /* NULL if none yet */
    const char *proto; /* "SMTP" or "ESMTP", NULL if no HELO/EHLO yet */
    const char *login; /* SASL login, NULL if none */
};

/*
 * Build the XCLIENT command lines into out (malloc'd, NUL-terminated); *ncmds is
 * the number of lines (each answered separately by the upstream).  Returns the
 * total length, or (size_t)-1 on allocation failure or if no announced
 * attribute could be sent.
 */
size_t xclient_build(const struct client_facts *f, const char *attrs, char **out, unsigned *ncmds);

/* PROXY v2 header for a TCP connection from src to dst.  out must hold 232 octets
 * (16 + 216 for AF_UNIX, the largest block).  Returns the header length. */
size_t proxy_v2_build(const struct sockaddr *src, const struct sockaddr *dst, uint8_t *out);

#endif
