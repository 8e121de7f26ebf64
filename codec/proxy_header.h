/*
 * proxy_header - the HAProxy PROXY protocol header (proxy-protocol.txt,
 * version 1 text and version 2 binary) that a load balancer puts in front of
 * the client's bytes, pure: bytes in, structure out, no socket.
 *
 * proxy_header_parse() looks at the first len octets of a connection.  It
 * returns PROXY_HDR_MORE while the octets so far are a valid beginning of a
 * header of the allowed versions (read more, up to PROXY_HDR_MAX), PROXY_HDR_OK
 * with *consumed set to the header's exact length, or PROXY_HDR_INVALID (not a
 * header, a version not allowed, bad syntax, bad addresses, a v2 length that
 * does not hold its address block, malformed TLVs).
 *
 * A header that says nothing about the client (v1 "UNKNOWN", v2 LOCAL, v2
 * UNSPEC or AF_UNIX) parses with local = true: the caller keeps the
 * connection's own addresses, as the specification says.  Otherwise src/dst
 * hold the client's and the proxy's addresses (AF_INET or AF_INET6, TCP).
 *
 * v2 TLVs are walked with bounds checks; each must fit the header exactly.
 * The authority TLV (the SNI the proxy saw) and whether the client used SSL to
 * the proxy are kept; others are ignored.
 */
#ifndef SMTPGATE_PROXY_HEADER_H
#define SMTPGATE_PROXY_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* v1 is at most 107 octets; v2 is 16 + a 16-bit length. */
#define PROXY_HDR_V1_MAX 107
#define PROXY_HDR_MAX    (16 + 65535)

enum proxy_hdr_versions {
    PROXY_HDR_ALLOW_V1 = 1u << 0,
    PROXY_HDR_ALLOW_V2 = 1u << 1,
};

enum proxy_hdr_status { PROXY_HDR_MORE, PROXY_HDR_OK, PROXY_HDR_INVALID };

struct proxy_header {
    int version; /* 1 or 2 */
    bool local;  /* no client information: use the connection's own */
    struct sockaddr_storage src;
    struct sockaddr_storage dst;
    socklen_t addr_len;
    char authority[256]; /* v2 PP2_TYPE_AUTHORITY, "" if absent or too long */
    bool ssl;            /* v2 PP2_TYPE_SSL with PP2_CLIENT_SSL */
};

enum proxy_hdr_status proxy_header_parse(const uint8_t *buf, size_t len, unsigned allow,
                                         struct proxy_header *out, size_t *consumed);

#endif
