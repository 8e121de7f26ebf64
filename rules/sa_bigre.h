/*
 * sa_bigre - a SpamAssassin pattern PCRE2 refuses as too large, rewritten
 * so that it compiles and matches exactly what Perl's matches, pure.
 *
 * PCRE2 compiles a group under a counted quantifier, G{n,m}, as n copies of
 * G and m-n nested optional ones; ReplaceTags builds patterns that nest such
 * repeats of long alternations (FILL_THIS_FORM's), beyond the 64K code units
 * of a LINK_SIZE 2 build, where Perl's compiler keeps one copy.
 * sa_bigre_rewrite() gives each such group one definition and subroutine
 * calls instead:
 *   G{n}      ->  (?<_sgK>G)(?&_sgK){n-1}
 *   G{n,m}    ->  (?<_sgK>G)(?&_sgK){n-1,m-1}
 *   G{n,}     ->  (?<_sgK>G)(?&_sgK){n-1,}
 *   G{0,m}    ->  (?:(?<_sgK>G)(?&_sgK){0,m-1})?
 * a lazy ? kept on both, a possessive + made an atomic group around it; and
 * a group written again later, octet for octet, becomes a call of its first
 * copy when no inline option can differ between the two places.  Since
 * PCRE2 10.30 a subroutine call backtracks into the called group as the
 * group itself would, and takes the options of its definition, which are
 * those of every copy; what differs is only what the groups capture (a
 * call's captures are undone when it returns) and their numbers.
 *
 * So the rewrite is refused (0) whenever a capture or a group's number could
 * be read by the pattern or the rule: back references and relative or
 * numbered calls, conditionals, named groups (capture rules read them),
 * verbs such as (*ACCEPT) (they would end the call, not the match), \K,
 * callouts, branch reset, \Q, comments and extended mode (PCRE2_EXTENDED or
 * an inline x), where the scan of the text would not be the compiler's.
 * The names _sgK are not valid tag names (sa_capture_valid_name), so no
 * rule captures through them.
 *
 * Assumes nothing of the octets (NUL included); a pattern that is not valid
 * PCRE2 gives either 0 or a rewrite PCRE2 refuses too.  The result is
 * malloc'ed and NUL-terminated; its length counts without the NUL.
 */
#ifndef SMTPGATE_RULES_SA_BIGRE_H
#define SMTPGATE_RULES_SA_BIGRE_H

#include <stddef.h>
#include <stdint.h>

/* Groups a pattern may have for the rewrite; beyond, it is refused. */
#define SA_BIGRE_MAX_GROUPS 4096

/* 1 and *out, *outlen: the rewrite; 0: nothing to rewrite or refused;
 * -1: out of memory.  flags are the PCRE2 compile options. */
int sa_bigre_rewrite(const char *pat, size_t len, uint32_t flags, char **out, size_t *outlen);

#endif
