/*
 * sa_dnsbl - the pure parts of SpamAssassin's DNS blocklist tests on the
 * relays (Plugin::DNSEval check_rbl, check_rbl_txt, check_rbl_sub and
 * Dns.pm's process_dnsbl_result): which relay addresses a set queries,
 * the query names, the subtests; and the list of queries a message needs
 * with their answers, which the resolver (sa_dns_resolve.h) fills in and
 * the evals (sa_eval_dnsbl.c) read.
 *
 * What it promises:
 *   - sa_dnsbl_name builds SpamAssassin's reverse_ip_address name (IPv4
 *     octets reversed, IPv6 as 32 reversed nibbles) under the zone, its
 *     trailing dots dropped; false for anything else (no query).
 *   - sa_dnsbl_select picks the addresses _check_rbl_backend queries for a
 *     set name (-notfirsthop, -lastexternal, -firsttrusted, -untrusted, or
 *     none), private ones dropped, at most num_check_received (9), the
 *     trusted ones at the front dropped unless the rule is "nice".
 *   - sa_dnsbl_subtest_kind and sa_dnsbl_subtest_match are check_subtest:
 *     "N" a bitmask over a 127.x.y.z answer, "a.b.c.d" equality, anything
 *     else a regular expression (the caller matches those).
 *   - Nothing here touches the network.
 *
 * What it assumes: addresses are numeric text as the relay parser gives.
 */
#ifndef SMTPGATE_RULES_SA_DNSBL_H
#define SMTPGATE_RULES_SA_DNSBL_H

#include <stdbool.h>
#include <stddef.h>

#include "rules/sa_netset.h"

#define SA_DNSBL_NAME_MAX       256
#define SA_DNSBL_CHECK_RECEIVED 9 /* SpamAssassin's num_check_received */
#define SA_DNSBL_IPS_MAX        64

enum sa_dns_type { SA_DNS_A = 1, SA_DNS_TXT = 16 };

/* skip_rbl_checks (a Perl boolean), num_check_received (a count) and
 * rbl_timeout (seconds; SpamAssassin's optional second, minimum, number is
 * not kept) into c: 0, or 2 with why when the value is bad (then unchanged). */
struct sa_relay_conf;
int sa_dnsbl_setting(struct sa_relay_conf *c, const char *key, const char *val, size_t vn,
                     char *why, size_t wn);
/* rbl_timeout as set (15 s by default) */
double sa_dnsbl_rbl_timeout(const struct sa_relay_conf *c);

/* zone without its trailing dots; false when ip is not an address or the
 * name does not fit out[0..n). */
bool sa_dnsbl_name(const char *ip, const char *zone, char *out, size_t n);

/* What parsed_metadata gathers: untrusted relays' addresses (newest
 * first), the external ones (trusted but not internal, then untrusted),
 * the originating_ip_headers' addresses; trusted may be NULL (none). */
struct sa_dnsbl_input {
    const char *const *untrusted;
    size_t nuntrusted;
    const char *const *external;
    size_t nexternal;
    const char *const *originating;
    size_t noriginating;
    const struct sa_netset *trusted;
    unsigned checklast; /* num_check_received; 0: 9 */
};
/* Nothing is queried for any set when this is false (no public untrusted
 * address and no originating one): DNSEval's missing dnseval_ips. */
bool sa_dnsbl_any(const struct sa_dnsbl_input *in);
/* The addresses the set queries, into out[0..max) (pointers into in);
 * their number. */
size_t sa_dnsbl_select(const struct sa_dnsbl_input *in, const char *set, bool nice,
                       const char **out, size_t max);

enum sa_dnsbl_subtest { SA_SUB_NONE, SA_SUB_MASK, SA_SUB_IP, SA_SUB_RE };
enum sa_dnsbl_subtest sa_dnsbl_subtest_kind(const char *subtest);
/* For SA_SUB_MASK and SA_SUB_IP subtests: does the answer pass. */
bool sa_dnsbl_subtest_match(const char *subtest, const char *answer);
/* An A answer outside 127.0.0.0/8 is ignored, as there. */
bool sa_dnsbl_a_counts(const char *answer);

/* ---- the queries a message needs, and their answers ---- */
struct sa_dns_query {
    char *name;
    int type;   /* enum sa_dns_type */
    char **ans; /* A: dotted quad; TXT: the strings joined */
    size_t nans;
};
struct sa_dns_ref { /* a set's query (check_rbl_sub reads the set's answers) */
    char *set;
    size_t q;
};
struct sa_dns_queries {
    struct sa_dns_query *q;
    size_t n, cap;
    struct sa_dns_ref *ref;
    size_t nref, refcap;
};
/* The query (name, type) is in the list, for set: its index, -1 out of memory. */
long sa_dns_queries_add(struct sa_dns_queries *qs, const char *set, const char *name, int type);
/* The query's index, or -1 when not there. */
long sa_dns_queries_find(const struct sa_dns_queries *qs, const char *name, int type);
int sa_dns_query_answer(struct sa_dns_query *q, const char *s, size_t n);
void sa_dns_queries_clear(struct sa_dns_queries *qs);

/* Every query the set's check_rbl and check_rbl_txt rules need for the
 * message (sa_eval_dnsbl.c), added to qs: 0, or -1 out of memory.  Sets
 * the message's relay context (rules_msg_set_relay_ctx) from r and f as
 * the evaluator does, so the chain is built once. */
struct rules;
struct rules_msg;
struct rules_facts;
int sa_dnsbl_gather(const struct rules *r, struct rules_msg *m, const struct rules_facts *f,
                    struct sa_dns_queries *qs);
/* How long to wait for the answers: the set's rbl_timeout, at most cap. */
double sa_dnsbl_timeout(const struct rules *r, double cap);

#endif
