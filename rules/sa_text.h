/*
 * sa_text - SpamAssassin's shaping of a message's text for its body and
 * rawbody rules; pure functions over bytes (see sa_text.c).
 *
 * sa_text_paragraphs(text, n, out) appends text with SpamAssassin's
 * whitespace rule (Message.pm, get_body_text_array_common): a run of
 * whitespace holding two or more line ends becomes one line end (a
 * paragraph break, with a blank kept on either side when the run had other
 * whitespace there), any other run one blank.  So "Bad\nCredit" reads
 * "Bad Credit" and "CLICK\n\nHERE" stays two paragraphs.
 *
 * sa_text_line_end(s, n) is the length of the first element SpamAssassin's
 * split_into_array_of_short_lines makes of s: to the first line end
 * (included), a line longer than SA_TEXT_LINE_MAX cut after its last blank
 * within the limit (or at the limit).  Body rules match each element alone.
 *
 * sa_text_chunk_end(s, n) is the same for rawbody's
 * split_into_array_of_short_paragraphs: a part text of at most
 * SA_TEXT_LINE_MAX octets is one element; a longer one is cut into pieces
 * of SA_TEXT_LINE_MAX to 2 * SA_TEXT_LINE_MAX octets at a line end, a ">"
 * or a blank.
 *
 * Whitespace is Perl's \s on characters: blank, tab, the line ends, form
 * feed, vertical tab, and in UTF-8 U+0085, U+00A0, U+1680, U+2000-U+200A,
 * U+2028, U+2029, U+202F, U+205F and U+3000.
 */
#ifndef SMTPGATE_SA_TEXT_H
#define SMTPGATE_SA_TEXT_H

#include <stddef.h>

#include "rules/rules_html.h"

#define SA_TEXT_LINE_MAX 2048

void sa_text_paragraphs(const char *text, size_t n, struct rules_buf *out);
size_t sa_text_line_end(const char *s, size_t n);
size_t sa_text_chunk_end(const char *s, size_t n);
/* Octets of the whitespace character at s[0..n), or 0 when it is none. */
size_t sa_text_space(const char *s, size_t n);

#endif
