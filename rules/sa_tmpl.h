/*
 * sa_tmpl - SpamAssassin's ReplaceTags templates: a pattern of a rule named
 * by replace_rules with its <TAG>s replaced, exactly as the plugin does it
 * (Mail::SpamAssassin::Plugin::ReplaceTags::finish_parsing_end): the first
 * <pre NAME>, <post NAME> and <inter NAME> are taken out, the pattern is
 * split at each <...>, the pre text goes before each tag, the post text
 * after it, the inter text into the empty pieces between tags (not before
 * the first: SpamAssassin's pattern then starts with its modifiers), each known
 * tag is replaced by its value, and all that again (at most five passes in
 * all) while a value brought in a new tag.  Unknown tags stay as written.
 * Pure.
 */
#ifndef SMTPGATE_RULES_SA_TMPL_H
#define SMTPGATE_RULES_SA_TMPL_H

#include <stddef.h>

struct sa_kv {
    char *name;
    char *value;
};

enum sa_tmpl { SA_TAG, SA_PRE, SA_POST, SA_INTER, SA_TMPL__COUNT };

/* What replace_tag / replace_pre / replace_post / replace_inter and
 * replace_start / replace_end set, as the configuration holds it: a view
 * of its tables, so that expanding needs nothing else of the parser. */
struct sa_templates {
    const struct sa_kv *tmpl[SA_TMPL__COUNT];
    size_t ntmpl[SA_TMPL__COUNT];
    const char *rstart;
    const char *rend;
};

/* The expanded pattern (malloc'ed, *out_len octets, NUL-terminated), or
 * NULL: *out_len SIZE_MAX when it grew beyond 4 MiB, else out of memory. */
char *sa_tmpl_expand(const struct sa_templates *c, const char *re, size_t len, size_t *out_len);

#endif
