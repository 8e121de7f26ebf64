/*
 * dnsbl_site - the dnsbl plugin's pure parts: the site list in Postfix
 * postscreen's syntax, the reply filters, and the names to query.
 *
 * A site list is what postscreen_dnsbl_sites takes, separated by commas
 * and/or blanks:
 *
 *   zen.spamhaus.org=127.0.0.[2..11]*3, list.dnswl.org=127.0.[0..255].[1..3]*-2
 *
 *   DOMAIN                 listed when any A record comes back, weight 1
 *   DOMAIN=FILTER          listed when an A record matches FILTER
 *   DOMAIN*WEIGHT          the weight it adds to the score (may be negative,
 *                          may have a fraction: -0.5)
 *
 * FILTER is four octet patterns joined by dots; each is a number (0..255)
 * or a bracketed list of numbers and ranges separated by ';'
 * ("[2;4..11]").  The same domain may appear several times with different
 * filters and weights, and each entry counts on its own, as in postscreen.
 *
 * Promises: dnsbl_sites_parse() is a pure function over (text, len): no
 * I/O, no global state; on success every domain is a valid DNS name of
 * LDH labels (lower-cased) short enough that the longest query under it
 * (an IPv6 address in nibble form, or a 253-octet RHSBL name cut by
 * dnsbl_rhs_name) fits; on failure nothing is allocated and why says what
 * is wrong and at which octet.  At most DNSBL_MAX_SITES entries.
 */
#ifndef SMTPGATE_DNSBL_SITE_H
#define SMTPGATE_DNSBL_SITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNSBL_MAX_SITES  64
#define DNSBL_DOMAIN_MAX 180 /* 253 less 73 for 32 nibbles and their dots */
#define DNSBL_NAME_MAX   254 /* a query name and its NUL */

struct dnsbl_site {
    char domain[DNSBL_DOMAIN_MAX + 1];
    bool has_filter;
    uint8_t filter[4][32]; /* a bit per value of each octet */
    double weight;
};

struct dnsbl_sites {
    struct dnsbl_site *v;
    size_t n;
};

/* 0 and *out (free with dnsbl_sites_free), or -1 and why (a static text
 * with the offset in *at). */
int dnsbl_sites_parse(const char *text, size_t len, struct dnsbl_sites *out, const char **why,
                      size_t *at);
void dnsbl_sites_free(struct dnsbl_sites *s);

/* Does the A record addr (network order octets) satisfy the site's filter
 * (always, without one)? */
bool dnsbl_site_match(const struct dnsbl_site *site, const uint8_t addr[4]);

/* "4.3.2.1.DOMAIN" for an IPv4 address, the 32 nibbles reversed for IPv6
 * (RFC 5782 2.4); an IPv4-mapped IPv6 address is queried as IPv4.  false
 * when addr is not a numeric address. */
bool dnsbl_ip_name(const char *addr, const char *domain, char out[DNSBL_NAME_MAX]);
/* "NAME.DOMAIN" for an RHSBL query of a host or domain name (a trailing dot
 * dropped, lower-cased); false when name is not a domain name of at least
 * two LDH labels, or too long for the domain. */
bool dnsbl_rhs_name(const char *name, const char *domain, char out[DNSBL_NAME_MAX]);

/* "DNSBL_ZEN_SPAMHAUS_ORG" from "zen.spamhaus.org" and prefix "DNSBL_": the
 * symbol a site's listing adds (upper case, '.' and '-' as '_'). */
void dnsbl_symbol_name(const char *prefix, const char *domain, char *out, size_t out_size);

/* Zone-to-nameserver routes ("zone=ADDR[:PORT]"): the zone is a domain,
 * the rest what evdns takes ("127.0.0.1:5353", "[::1]:53").  0, or -1 and
 * why. */
int dnsbl_route_parse(const char *text, char *zone, size_t zone_size, char *server,
                      size_t server_size, const char **why);

#endif
