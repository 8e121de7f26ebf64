/*
 * sa_load - reads SpamAssassin's files into a build (see rules.h,
 * rules_load_sa): the file list (sa_files), each file parsed (sa_cf) with
 * includes through the build's reader, the templates and default scores
 * (sa_conf_finish), the rules added (sa_compile), and the report's parse
 * side filled.  Not installed.
 */
#ifndef SMTPGATE_RULES_SA_LOAD_H
#define SMTPGATE_RULES_SA_LOAD_H

#include "rules/rules_int.h"

/* Adds SpamAssassin's rules to b; rep (may be NULL) gets the files, the
 * warnings and the settings ignored.  A missing rule set is an error of the
 * build. */
void sa_load(struct rules_build *b, const struct rules_sa_opts *o, struct rules_sa_report *rep);

#endif
