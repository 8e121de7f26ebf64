/*
 * sa_hdrconf - the settings of SpamAssassin's .cf files that shape the
 * fields it adds and its report, read as Mail::SpamAssassin::Conf reads
 * them: add_header, remove_header, clear_headers, report,
 * clear_report_template, report_contact, report_hostname, required_score
 * (required_hits), fold_headers, report_wrap_width.  Later lines win;
 * add_header replaces a field of the same name (case-insensitive) and
 * goes last; clear_headers keeps Checker-Version, which remove_header
 * cannot remove either.  Pure.
 *
 * What it assumes: lines come as sa_cf splits them (setting lower-cased,
 * the value trimmed).  Out of memory: SA_HDRCONF_NOMEM, nothing changed.
 */
#ifndef SMTPGATE_RULES_SA_HDRCONF_H
#define SMTPGATE_RULES_SA_HDRCONF_H

#include <stdbool.h>
#include <stddef.h>

struct sa_hdr_tmpl {
    char *name;     /* "Status": the field is X-Spam-Status */
    char *template; /* \n, \t and \\ already expanded */
};

struct sa_hdrconf {
    struct sa_hdr_tmpl *spam, *ham; /* in the order the fields are added */
    size_t nspam, nham;
    char *report;         /* the report template, each line ending "\n" */
    char *contact;        /* report_contact */
    char *hostname;       /* report_hostname; NULL: the host's name */
    double required;      /* required_score */
    bool required_set;    /* a file set it */
    bool fields_set;      /* an add_header, remove_header or clear_headers line was read */
    bool fold;            /* fold_headers */
    unsigned wrap_width;  /* report_wrap_width */
};

enum sa_hdrconf_rc { SA_HDRCONF_OK, SA_HDRCONF_NOT_MINE, SA_HDRCONF_BAD, SA_HDRCONF_NOMEM };

/* SpamAssassin's defaults before any file (Conf.pm): no field, no
 * report, required_score 5.  NULL when out of memory. */
struct sa_hdrconf *sa_hdrconf_new(void);
void sa_hdrconf_free(struct sa_hdrconf *c);

/* Setting key (lower-case) with value val[0..n): applied, not one of
 * these, or malformed (why gets the reason). */
enum sa_hdrconf_rc sa_hdrconf_setting(struct sa_hdrconf *c, const char *key, const char *val,
                                      size_t n, char *why, size_t wn);

#endif
