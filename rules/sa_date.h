/*
 * sa_date - dates in mail headers read as SpamAssassin reads them
 * (Mail::SpamAssassin::Util::parse_rfc822_date): a pure parser over bytes.
 *
 * What it promises, step by step as SpamAssassin does it on the text with
 * commas and runs of blanks made single spaces:
 *   - the date: the first "D Mon YYYY", else "Mon D h:m:s YYYY", else
 *     "D Mon YY" or "D Mon YYY" (blank separated words; the month in any
 *     case); none of them: no date.  Two-digit years below 50 are 20YY,
 *     other short years 19YY;
 *   - the first "h:mm" or "h:mm:ss" word is the time (else midnight);
 *   - the first "+hhmm"/"-hhmm" word is the zone, else the first
 *     all-capital word of 2 to 4 letters (and "-DST") names it when it is
 *     in SpamAssassin's table, else the zone is -0000;
 *   - fudged as SpamAssassin fudges: seconds, minutes, hours beyond their
 *     range become 59, 59, 23; a day beyond its month is the first of the
 *     next one; years are kept within 1970..2037; day 0 is no date (Perl's
 *     timegm croaks on it); a '+' zone before the epoch gives 0.
 * The result is seconds since the epoch, UTC.
 *
 * sa_date_in_received finds the date in one Received line as SpamAssassin's
 * /(\s.?\d+ \S\S\S \d+ \d+:\d+:\d+ \S+)/ does and parses it.
 *
 * What it assumes: nothing of the text.
 */
#ifndef SMTPGATE_RULES_SA_DATE_H
#define SMTPGATE_RULES_SA_DATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* false when SpamAssassin finds no date in s[0..n) */
bool sa_date_parse(const char *s, size_t n, int64_t *t);
/* false when the line has no date SpamAssassin would find */
bool sa_date_in_received(const char *s, size_t n, int64_t *t);

#endif
