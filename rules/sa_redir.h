/*
 * sa_redir - SpamAssassin's redirector_pattern setting: the redirector
 * services whose target URI (the pattern's first group) uri_list_canonicalize
 * adds to the URI list; read from the .cf files, compiled once per rule set,
 * asked per URI by sa_uri (pure once built).
 *
 * What it promises:
 *   - sa_redirs_add takes the value as Conf.pm does (Util::compile_regexp
 *     with delimiters): "/re/mods", "m{re}mods" (and (), <>, []), "mX...Xmods"
 *     for any other non-word X but backslash, qr likewise; modifiers i m s x
 *     (e refused as SpamAssassin does, others not understood by PCRE2); an
 *     unescaped delimiter inside, "(?{", a missing value or a pattern PCRE2
 *     refuses is SA_REDIR_BAD with why (the caller adds file and line).
 *   - sa_redirs_target tries the patterns in the order they were read and
 *     gives the first group of the first one that matches and whose group is
 *     set and holds a '.' (Util.pm: "next unless defined $1 && index($1,
 *     '.') != -1"); false when none does.
 *   - Read-only once built: messages may share it across threads (each
 *     call has its own match data).
 *
 * What it assumes: PCRE2 stands for Perl; patterns using Perl-only syntax
 * are refused with PCRE2's reason.
 */
#ifndef SMTPGATE_RULES_SA_REDIR_H
#define SMTPGATE_RULES_SA_REDIR_H

#include <stdbool.h>
#include <stddef.h>

struct sa_redirs;

enum sa_redir_rc { SA_REDIR_OK = 0, SA_REDIR_BAD = 1, SA_REDIR_NOMEM = -1 };

struct sa_redirs *sa_redirs_new(void);
void sa_redirs_free(struct sa_redirs *rd);
enum sa_redir_rc sa_redirs_add(struct sa_redirs *rd, const char *val, size_t vn, char *why,
                               size_t wn);
size_t sa_redirs_count(const struct sa_redirs *rd);
/* The target in s (offset and length), or false. */
bool sa_redirs_target(const struct sa_redirs *rd, const char *s, size_t n, size_t *off,
                      size_t *len);

#endif
