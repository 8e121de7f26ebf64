/*
 * sa_lists - SpamAssassin's address and domain lists, read from the rule
 * files' settings once per rule set and asked by the eval tests of FreeMail
 * and WLBLEval per message:
 *
 *   welcomelist_from, blocklist_from, welcomelist_to, more_spam_to,
 *   all_spam_to, blocklist_to, welcomelist_auth, def_welcomelist_auth (and
 *   their whitelist/blacklist aliases), VBounce's welcomelist_bounce_relays
 *   (alias whitelist_bounce_relays), enlist_addrlist (NAME): named lists
 *   of glob patterns; unwelcomelist_from, unblocklist_from,
 *   unwelcomelist_auth remove an entry written the same way.
 *   welcomelist_from_rcvd, def_welcomelist_from_rcvd (and whitelist
 *   aliases): an address pattern with the relay it must come through;
 *   unwelcomelist_from_rcvd removes the address from both, every relay
 *   with it; welcomelist_allows_relays: a list like the ones above.
 *   welcomelist_subject, blocklist_subject (and whitelist / blacklist
 *   aliases): one string a line, blanks within it kept.
 *   enlist_uri_host (NAME), delist_uri_host [(NAME)], blocklist_uri_host,
 *   welcomelist_uri_host: named lists of hosts, each true or false ('!').
 *   freemail_domains (wildcards * and ? within a label), freemail_welcomelist,
 *   the freemail_* numbers, and RegistryBoundaries' util_rb_tld (the TLDs
 *   a body address may end with), util_rb_2tld and util_rb_3tld.
 *   FromNameSpoof's fns_add_addrlist (NAME) / fns_remove_addrlist (NAME)
 *   (the owner lists FNS_name), fns_extrachars, fns_check,
 *   fns_ignore_headers and fns_ignore_dkim (read, never used: no DKIM here).
 *
 * What it promises:
 *   - A pattern matches an address as SpamAssassin's compiled ^glob$ does:
 *     both lower-cased (ASCII), `*` any run of octets, `?` any one, NUL,
 *     backslash and '(' in the pattern stand for '_', neither wildcard
 *     crosses a line end; the pattern written exactly is a match too.
 *   - Entries without wildcards, and those of the form *@DOMAIN, sit in
 *     hash tables: a lookup costs the same with 5 entries or 5000; only the
 *     other wildcard entries are tried one by one.  The _rcvd entries are
 *     tried one by one, as SpamAssassin does (they are few).
 *   - sa_lists_setting knows its settings only; a malformed value is
 *     SA_LISTS_BAD with why (the caller warns with file and line).
 *   - Out of memory: SA_LISTS_NOMEM / -1, the lists stay usable.
 *
 * What it assumes: settings arrive in the files' order (a later unwelcomelist
 * removes only what came before); the lists are read-only once the rule set
 * is built, so a message's tests may share them across threads.
 */
#ifndef SMTPGATE_RULES_SA_LISTS_H
#define SMTPGATE_RULES_SA_LISTS_H

#include <stdbool.h>
#include <stddef.h>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

struct sa_lists;

/* welcomelist_from_rcvd (and whitelist_from_rcvd), def_welcomelist_from_rcvd */
enum sa_rcvd_list { SA_RCVD_USER, SA_RCVD_DEFAULT, SA_RCVD__COUNT };

struct sa_freemail_opts {
    double max_body_emails;             /* 5 */
    double max_body_freemails;          /* 3 */
    double skip_when_over_max;          /* 1 */
    double skip_bulk_envfrom;           /* 1 */
    double add_describe_email;          /* 1 */
    double import_welcomelist_auth;     /* 0 */
    double import_def_welcomelist_auth; /* 0 */
};

struct sa_fns_opts {
    double extrachars;     /* fns_extrachars, 50 */
    int check;             /* fns_check, 1 */
    char **owners;         /* the lists fns_add_addrlist made, "FNS_name", in order */
    size_t nowners;
    char **ignore_headers; /* fns_ignore_headers, as written */
    size_t nignore;
    bool ignore_dkim;      /* some fns_ignore_dkim was read */
};

enum sa_lists_rc {
    SA_LISTS_NOMEM = -1,
    SA_LISTS_NOT_MINE = 0, /* not a list setting */
    SA_LISTS_OK = 1,
    SA_LISTS_BAD = 2, /* why says what is wrong */
};

struct sa_lists *sa_lists_new(void);
struct sa_lists *sa_lists_ref(struct sa_lists *l);
void sa_lists_unref(struct sa_lists *l);

/* key: the setting's name lower-cased, '-' as '_' (as sa_cf reads it);
 * val[0..vn): its value, blanks around it dropped. */
enum sa_lists_rc sa_lists_setting(struct sa_lists *l, const char *key, const char *val, size_t vn,
                                  char *why, size_t wn);
/* After the last file: the patterns FreeMail needs compiled.  -1 out of
 * memory (or a pattern PCRE2 refuses: FreeMail stays unavailable). */
int sa_lists_finish(struct sa_lists *l);

/* SpamAssassin's glob over s[0..sn); dots_bound: a wildcard stays within
 * one label (freemail_domains' reading). */
bool sa_glob_match(const char *pat, size_t pn, const char *s, size_t sn, bool dots_bound);

/* The named address list exists (it had an entry once). */
bool sa_lists_has_addrlist(const struct sa_lists *l, const char *list);
/* addr[0..n) is on the named list: 1, 0, -1 out of memory. */
int sa_lists_addr_listed(const struct sa_lists *l, const char *list, const char *addr, size_t n);

/* The same as SpamAssassin's loop over the list's patterns alone (no
 * lookup of the address as written), as welcomelist_allows_relays is read. */
int sa_lists_addr_glob_listed(const struct sa_lists *l, const char *list, const char *addr,
                              size_t n);

/* Whether one relay named by an entry (lower-cased, as written: a domain or
 * an "[IP]" form) is the one the message came through. */
typedef bool (*sa_lists_relay_fn)(const char *relay, void *ctx);
/* _check_welcomelist_rcvd's walk over a (def_)welcomelist_from_rcvd list
 * for addr[0..n) (lower-cased): 1 an entry's pattern matches it and one of
 * its relays is the one, -1 a pattern matches but none of its relays (a
 * forgery, unless welcomelist_allows_relays says otherwise: the caller's
 * part), 0 no pattern matches. */
int sa_lists_rcvd_match(const struct sa_lists *l, enum sa_rcvd_list which, const char *addr,
                        size_t n, sa_lists_relay_fn relay_ok, void *ctx);
bool sa_lists_rcvd_has(const struct sa_lists *l, enum sa_rcvd_list which);

/* WelcomeListSubject's _check_subject: one of the welcomelist_subject
 * (block: blocklist_subject) strings, a glob without anchors, is in the
 * subject s[0..n) (any case): 1, 0, -1 out of memory. */
int sa_lists_subject_listed(const struct sa_lists *l, bool block, const char *s, size_t n);

/* FreeMail has domains to go by (it disables itself otherwise). */
bool sa_lists_freemail_available(const struct sa_lists *l);
const struct sa_freemail_opts *sa_lists_freemail_opts(const struct sa_lists *l);
const struct sa_fns_opts *sa_lists_fns_opts(const struct sa_lists *l);
/* FreeMail's _is_freemail over a lower-cased address: 1, 0, -1 out of memory. */
int sa_lists_is_freemail(const struct sa_lists *l, const char *email, size_t n);
/* FreeMail's address pattern (with the valid TLDs) and its skip pattern of
 * bulk envelope senders; NULL before sa_lists_finish or without domains. */
const pcre2_code *sa_lists_email_re(const struct sa_lists *l);
const pcre2_code *sa_lists_bulk_envfrom_re(const struct sa_lists *l);
/* _parse_body's two substitutions before the addresses are taken: k 0 the
 * http URLs holding an '@', k 1 an address followed by a "word:" */
const pcre2_code *sa_lists_body_strip_re(const struct sa_lists *l, int k);

/* tld (any case) is one util_rb_tld names. */
bool sa_lists_tld_valid(const struct sa_lists *l, const char *tld, size_t n);

/* RegistryBoundaries::trim_domain: the registered domain of dom[0..n)
 * (util_rb_2tld, util_rb_3tld and the US states' rules), lower-cased, runs
 * of dots squeezed, into out (NUL-terminated, truncated to on - 1); its
 * length. */
size_t sa_lists_trim_domain(const struct sa_lists *l, const char *dom, size_t n, char *out,
                            size_t on);

/* Util::is_fqdn_valid over octets (an ASCII name): two labels or more, each
 * of [a-z0-9_-] not starting or ending with '-', no '_' in the last two. */
bool sa_fqdn_valid(const char *s, size_t n);
/* RegistryBoundaries::is_domain_valid: no blanks, a dot, a util_rb_tld
 * TLD after the last one. */
bool sa_lists_domain_valid(const struct sa_lists *l, const char *dom, size_t n);
/* RegistryBoundaries::uri_to_domain over uri[0..n): the registered domain
 * (an IP address as it is) of its host (of the address after "mailto:"),
 * lower-cased, into out (size on); false when it gives none (no valid name
 * or TLD, several '@' in a mailto:, a %-escaped printable, a name beyond
 * ASCII: its IDN form is not made). */
bool sa_lists_uri_to_domain(const struct sa_lists *l, const char *uri, size_t n, char *out,
                            size_t on);
/* Constants' IS_IP_ADDRESS: a dotted IPv4 address, or an IPv6 one of hex
 * digits, dots and two colons or more. */
bool sa_is_ip(const char *s, size_t n);

/* The URI host lists, in name order. */
size_t sa_lists_uri_list_count(const struct sa_lists *l);
const char *sa_lists_uri_list_name(const struct sa_lists *l, size_t i);
/* host (lower-case) on list i: 1 listed, 0 listed with '!', -1 not listed. */
int sa_lists_uri_host(const struct sa_lists *l, size_t i, const char *host, size_t n);
/* The URI host list named name, or (size_t)-1. */
size_t sa_lists_uri_list_find(const struct sa_lists *l, const char *name);

#endif
