/*
 * spf_macro - RFC 7208 section 7 macro strings: syntax check and expansion, pure.
 *
 * spf_macro_check() says whether bytes are a macro-string (flags 0: a
 * domain-spec's or a modifier's; SPF_MACRO_EXP: an explain-string, where the
 * c, r and t letters and spaces are allowed as well).  On failure *errpos is
 * the offset of the first wrong octet.
 *
 * spf_macro_expand() expands a checked string with the facts of one check
 * into a NUL-terminated buffer it allocates (*out, free()).  It returns
 * SPF_MACRO_OK, SPF_MACRO_SYNTAX (not a macro-string for these flags),
 * SPF_MACRO_TOO_LONG (the expansion would pass max octets; hostile records
 * can multiply a 512-octet sender many times) or SPF_MACRO_NOMEM.  Each
 * %{p} asks ctx->validated(), which may do DNS look-ups (spf_check does
 * them once per check and keeps the names).
 *
 * spf_macro_truncate_domain() applies RFC 7208 4.8: a domain longer than 253
 * octets loses labels from the left until it fits.
 */
#ifndef SMTPGATE_SPF_MACRO_H
#define SMTPGATE_SPF_MACRO_H

#include <stdbool.h>
#include <stddef.h>

#define SPF_MACRO_EXP 1u

enum spf_macro_status {
    SPF_MACRO_OK = 0,
    SPF_MACRO_SYNTAX,
    SPF_MACRO_TOO_LONG,
    SPF_MACRO_NOMEM,
};

struct spf_macro_ctx {
    const char *sender;        /* s: local-part@domain */
    const char *local;         /* l */
    const char *sender_domain; /* o */
    const char *domain;        /* d: the domain being checked */
    int family;                /* AF_INET or AF_INET6 */
    unsigned char ip[16];      /* i, c, v (4 octets for AF_INET) */
    const char *helo;          /* h */
    const char *receiver;      /* r */
    long long timestamp;       /* t */
    /* p: a validated name of ip ("unknown" when none); may be NULL */
    const char *(*validated)(void *arg);
    void *arg;
};

bool spf_macro_check(const char *s, size_t len, unsigned flags, size_t *errpos);
enum spf_macro_status spf_macro_expand(const char *s, size_t len, unsigned flags,
                                       const struct spf_macro_ctx *ctx, size_t max, char **out);
void spf_macro_truncate_domain(char *domain);

#endif
