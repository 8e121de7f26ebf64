/*
 * spf_result - the seven results of RFC 7208 2.6 and their names, pure.
 *
 * spf_result_name() gives the lower-case name ("pass" ... "permerror");
 * spf_result_parse() reads one back in any case, -1 when none matches.
 */
#ifndef SMTPGATE_SPF_RESULT_H
#define SMTPGATE_SPF_RESULT_H

enum spf_result {
    SPFC_NONE = 0,
    SPFC_NEUTRAL,
    SPFC_PASS,
    SPFC_FAIL,
    SPFC_SOFTFAIL,
    SPFC_TEMPERROR,
    SPFC_PERMERROR,
};
#define SPFC__COUNT 7

const char *spf_result_name(enum spf_result r);
int spf_result_parse(const char *name);

#endif
