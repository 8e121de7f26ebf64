/*
 * sa_capture - the text side of SpamAssassin 4's capture templates
 * (feature_capture_rules), pure: what Conf::Parser::parse_captures finds
 * in a pattern when the rule is read, and what Plugin::Check's
 * capture_rules_replace makes of it per message.
 *
 * A pattern's template is %{NAME} or %{NAME(ARGS)} with NAME
 * [A-Z][A-Z0-9]*(_[A-Z0-9]+)* and ARGS without ) or }, not right after a
 * backslash (\%{NAME} is the literal text).  When the rule is read each
 * is written %\{NAME\} (so that Perl compiles the pattern, which matches
 * the literal text until a message gives it a value); a message's value
 * then replaces every %\{NAME\} not right after a backslash, as
 * (?:V1|V2|...) with each value quotemeta'd (every octet but A-Z a-z 0-9
 * _ after a backslash).  The tag looked up is NAME without its (ARGS).
 *
 * A capture is a named group; SpamAssassin moves a rule whose pattern has
 * (?<X, (?P<X or (?'X with X in A-Z to priority -10000, and keeps only
 * the groups whose name is a valid tag name.
 *
 * Assumes nothing of the octets (NUL included).  Results are malloc'ed
 * and NUL-terminated; lengths count without the NUL.
 */
#ifndef SMTPGATE_RULES_SA_CAPTURE_H
#define SMTPGATE_RULES_SA_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>

/* Beyond this a per-message pattern is not built (the rule does not run). */
#define SA_CAPTURE_MAX_PATTERN (1024u * 1024)

/* NAME is a tag name SpamAssassin keeps ([A-Z][A-Z0-9]*(_[A-Z0-9]+)*). */
bool sa_capture_valid_name(const char *s, size_t n);

/* The pattern has a group that makes SpamAssassin call it a capture rule. */
bool sa_capture_has_group(const char *re, size_t len);

/* The pattern has a template after a backslash (\%{NAME}, the escape
 * Conf.pm documents): its brace is then a literal "{" that is no
 * quantifier, which Perl warns of ("Unescaped left brace in regex is
 * passed through") and SpamAssassin's compile_regexp refuses the rule for. */
bool sa_capture_escaped(const char *re, size_t len);

/* One template as written in the marked pattern: the text between
 * "%\{" and "\}" (NAME or NAME(ARGS)), and the tag it looks up (NAME). */
struct sa_capture_tmpl {
    char *text;
    size_t text_len;
    char *tag;
    size_t tag_len;
};

/* The pattern with each template marked as %\{...\}, in *out (*out_len),
 * and its distinct templates in *tmpl (*ntmpl, in order of first use);
 * NULL *tmpl and 0 when it has none (then *out is NULL too).  -1 when out
 * of memory (nothing to free). */
int sa_capture_mark(const char *re, size_t len, char **out, size_t *out_len,
                    struct sa_capture_tmpl **tmpl, size_t *ntmpl);
void sa_capture_tmpl_free(struct sa_capture_tmpl *tmpl, size_t n);

/* One template's values into a marked pattern: every %\{TEXT\} not after a
 * backslash becomes (?:V1|...), each value quotemeta'd.  NULL when out of
 * memory or when the result would pass SA_CAPTURE_MAX_PATTERN (*too_big). */
char *sa_capture_subst(const char *marked, size_t len, const char *text, size_t text_len,
                       const char *const *vals, const size_t *vlens, size_t nvals,
                       size_t *out_len, bool *too_big);

#endif
