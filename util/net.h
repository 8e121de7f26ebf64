/*
 * net - IPv4 and IPv6 addresses and CIDR ranges as bytes; pure (no socket,
 * no allocation, no locale).  The one implementation used by the listener's
 * proxy_trusted, the rules' client_addr lists, the SPF plugin's exempt and
 * forwarder networks and its ip4/ip6 mechanisms and client address, and
 * XCLIENT's ADDR text.
 *
 * One model of IPv4 on IPv6 sockets: a v4-mapped IPv6 address
 * (::ffff:a.b.c.d) is its IPv4 address.  net_addr_parse() and
 * net_addr_from_sockaddr() hand such an address back as AF_INET, and
 * net_range_parse_text() turns a mapped range of /96 or longer
 * (::ffff:192.0.2.0/120) into the IPv4 range it denotes (192.0.2.0/24).  A
 * range matches only addresses of its own family.
 *
 * Range syntax: ADDR or ADDR/LEN, where ADDR is what inet_pton() reads for
 * AF_INET or AF_INET6 and LEN one to three decimal digits, at most 32 or 128;
 * no blanks anywhere.  ADDR alone is a host range (/32, /128).  With
 * NET_RANGE_EXACT a range whose address has bits set beyond LEN
 * ("10.1.2.3/8", nearly always a typo for another range) is refused;
 * without it those bits are ignored.
 *
 * Functions:
 *   net_range_parse_text(s, len, flags, out, why)  0, or -1 and a static reason
 *   net_range_parse(text, out)       NUL-terminated, NET_RANGE_EXACT (proxy_trusted)
 *   net_addr_parse(s, len, out)      a numeric address; false if it is none
 *   net_addr_from_sockaddr(sa, out)  AF_INET / AF_INET6 only
 *   net_prefix_equal(a, b, bits)     the first bits bits of a and b agree
 *   net_range_match(r, a)            a is inside r
 *   net_ranges_match(r, n, a)        a is inside any of r[0..n)
 *   net_ranges_match_text(r, n, s)   the same for a numeric address text (NULL: false)
 *   net_range_contains(r, n, sa)     the same for a socket address
 */
#ifndef SMTPGATE_UTIL_NET_H
#define SMTPGATE_UTIL_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct net_addr {
    int family; /* AF_INET (4 bytes used) or AF_INET6 */
    uint8_t bytes[16];
};

struct net_range {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix; /* 0..32 or 0..128 */
};

/* Refuse host bits set beyond the prefix length. */
#define NET_RANGE_EXACT 0x1u

/* Reasons handed back in *why (static strings). */
#define NET_WHY_ADDRESS   "not an IPv4 or IPv6 address"
#define NET_WHY_PREFIX    "invalid prefix length"
#define NET_WHY_OVER_32   "prefix length over 32"
#define NET_WHY_OVER_128  "prefix length over 128"
#define NET_WHY_HOST_BITS "host bits set beyond the prefix length"

int net_range_parse_text(const char *s, size_t len, unsigned flags, struct net_range *out,
                         const char **why);
bool net_range_parse(const char *text, struct net_range *out);

bool net_addr_parse(const char *s, size_t len, struct net_addr *out);
bool net_addr_from_sockaddr(const struct sockaddr *sa, struct net_addr *out);

bool net_prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits);
bool net_range_match(const struct net_range *r, const struct net_addr *a);
bool net_ranges_match(const struct net_range *r, size_t n, const struct net_addr *a);
bool net_ranges_match_text(const struct net_range *r, size_t n, const char *text);
bool net_range_contains(const struct net_range *r, size_t n, const struct sockaddr *sa);

#endif
