/*
 * sa_header - the X-Spam-* fields SpamAssassin writes from its add_header
 * templates, as Mail::SpamAssassin::PerMsgStatus writes them: the _TAG_s of
 * a template replaced (_replace_tags / get_tag_raw), the value folded
 * (_process_header with fold_headers, Util::wrap at 79 columns after ", "
 * and blanks, a template's own \n lines marked as continuations) and lines
 * with octets outside printable ASCII encoded (mime_encode_header).  Pure:
 * every value a tag needs comes in a struct sa_tags.
 *
 * Tags: YESNO(spam,ham), YESNOCAPS, SCORE(PAD) and HITS (a ham's score
 * shown below the required one, as get_tag_value_for_score does), REQD,
 * VERSION, SUBVERSION, HOSTNAME, REMOTEHOSTNAME, REMOTEHOSTADDR,
 * CONTACTADDRESS, BAYES (0.5: no Bayes), DATE, STARS(C), AUTOLEARN,
 * TESTS(SEP), SUBTESTS(SEP), SUBTESTSCOLLAPSED(SEP), TESTSSCORES(SEP),
 * REPORT and SUMMARY (the lines check_cleanup builds, one a test),
 * SUBJPREFIX, RELAYSTRUSTED/-UNTRUSTED/-INTERNAL/-EXTERNAL when given, and
 * the tags SpamAssassin declares with no value here (LANGUAGES, AWL, DCCB,
 * ...: empty).  A tag smtpgate does not know stays as written, as in
 * SpamAssassin for a tag nothing defines (PREVIEW, HEADER(...),
 * LASTEXTERNALIP, ... and ADDEDHEADER*, which SpamAssassin leaves too).
 *
 * What it assumes: the tests come sorted, as SpamAssassin sorts them for
 * the tags; REPORT and SUMMARY list them in that order (SpamAssassin's is
 * the order its rules ran, which is Perl's hash order).
 */
#ifndef SMTPGATE_RULES_SA_HEADER_H
#define SMTPGATE_RULES_SA_HEADER_H

#include <stdbool.h>
#include <stddef.h>

/* Mail::SpamAssassin::Version and $SUB_VERSION of the version emulated */
#define SA_VERSION    "4.0.1"
#define SA_SUBVERSION "2024-03-25"

struct sa_test {
    const char *name;
    double score;
    const char *area; /* "BODY: ", "RAW: ", "URI: ", "FULL: " or "" */
    const char *desc; /* NULL or "": "No description available." */
};

struct sa_tags {
    bool spam;
    double score;    /* the message's */
    double required; /* required_score */
    const struct sa_test *tests;
    size_t ntests;
    const char *const *subtests; /* the __ rules that hit, sorted */
    size_t nsubtests;
    const char *version;    /* "4.0.1" */
    const char *subversion; /* "2024-03-25" */
    const char *hostname;   /* report_hostname, else the host's name */
    const char *contact;    /* report_contact */
    const char *date;       /* RFC 2822 date of now; NULL: _DATE_ stays */
    const char *autolearn;  /* "disabled": smtpgate never learns */
    const char *relays[4];  /* trusted, untrusted, internal, external; NULL: stays */
    unsigned wrap_width;    /* report_wrap_width, for REPORT and SUMMARY */
};

/* The template t[0..n) with its tags replaced: malloc'ed, NULL when out of
 * memory. */
char *sa_tags_expand(const struct sa_tags *v, const char *t, size_t n);

/* The value of field X-Spam-<name> from template tmpl, as SpamAssassin
 * writes it after "X-Spam-<name>: ": with fold, continuation lines start
 * "\n\t"; without, the template's lines are joined with blanks.
 * malloc'ed, NULL when out of memory. */
char *sa_header_value(const struct sa_tags *v, const char *name, const char *tmpl, bool fold);

/* Util::wrap(s, prefix, first, width, overflow, break): break_after_comma
 * selects (?<=[\s,]) (the fields' wrapping), else (\s) (descriptions).
 * Lines joined with "\n".  malloc'ed, NULL when out of memory. */
char *sa_wrap(const char *s, size_t n, const char *prefix, const char *first, size_t width,
              bool overflow, bool break_after_comma);

#endif
