/*
 * spf_record - RFC 7208 record grammar and static limits: parser and validator, pure.
 *
 * spf_record_is_spf1() says whether a TXT string is an SPF record at all
 * ("v=spf1" in any case, then SP or the end: RFC 7208 4.5).
 *
 * spf_record_parse() reads a whole record (section 12's ABNF) into terms,
 * checking what libspf2's compiler lets through: every domain-spec is a
 * macro-string ending in a macro or in "." toplabel; CIDR lengths are
 * decimal without leading zeros within 0..32 / 0..128 ("/0" included);
 * ip4/ip6 networks are well formed; modifier names follow the grammar;
 * redirect= and exp= appear at most once; only visible ASCII and SP occur.
 * It returns 0, or -1 with err filled (offset of the offending term and a
 * message for the permerror's problem text).  The record text is copied;
 * terms point into the copy.  spf_record_free() releases it all.
 *
 * Nothing here touches DNS: evaluation (spf_check) expands the domain-specs.
 */
#ifndef SMTPGATE_SPF_RECORD_H
#define SMTPGATE_SPF_RECORD_H

#include <stdbool.h>
#include <stddef.h>

/* A record longer than this is refused: a TXT RRset is at most 64 KiB. */
#define SPF_RECORD_MAX 65536

enum spf_mech {
    SPF_MECH_ALL = 0,
    SPF_MECH_INCLUDE,
    SPF_MECH_A,
    SPF_MECH_MX,
    SPF_MECH_PTR,
    SPF_MECH_IP4,
    SPF_MECH_IP6,
    SPF_MECH_EXISTS,
};

struct spf_term {
    enum spf_mech mech;
    char qualifier;     /* '+', '-', '~' or '?' */
    const char *domain; /* domain-spec, unexpanded; NULL: none given */
    size_t domain_len;
    unsigned cidr4; /* a, mx, ip4: prefix length (default 32) */
    unsigned cidr6; /* a, mx, ip6: prefix length (default 128) */
    unsigned char addr[16];
    const char *text; /* the whole term as written, for Received-SPF */
    size_t text_len;
};

struct spf_record {
    char *text;
    struct spf_term *terms;
    size_t nterms;
    const char *redirect; /* domain-spec or NULL */
    size_t redirect_len;
    const char *exp;
    size_t exp_len;
};

struct spf_record_error {
    size_t offset;
    char message[160];
};

bool spf_record_is_spf1(const char *txt, size_t len);
int spf_record_parse(const char *txt, size_t len, struct spf_record *rec,
                     struct spf_record_error *err);
void spf_record_free(struct spf_record *rec);
const char *spf_mech_name(enum spf_mech mech);
/* Whether the mechanism costs a DNS-querying term (RFC 7208 4.6.4). */
bool spf_mech_queries_dns(enum spf_mech mech);
/* RFC 7208 4.3/7.3 domain-spec end: "." toplabel ["."] or a macro-expand. */
bool spf_record_domain_end_ok(const char *s, size_t len);

#endif
