/*
 * plugin_section - the "plugin NAME { key = value ... }" sections of the
 * configuration, read as plain data: the configuration does not know which
 * options a plugin has (only its shared object, loaded later by chain/, says),
 * so each section is kept as key/values pairs with the line each was written
 * on, for the chain to check and to name in its errors.
 *
 * The syntax is libconfuse's, as for every other setting: a value is a word,
 * a "double-quoted" string (with its backslash escapes and ${VAR}
 * expansion) or a 'single-quoted' one; a list is {a, b, ...}; "key += {...}"
 * appends to a list.  A later value of a key replaces the earlier one; a later
 * section with the same name replaces the earlier one whole and keeps its
 * place (the chain runs in the order of the sections).
 *
 * plugin_sections_take() finds the top-level sections in text (comments
 * already blanked out, see config.c), parses them into ps and blanks them out
 * of text, newlines kept, so the rest parses with unchanged line numbers.
 * plugin_section_parse_body() parses only "key = value ..." (a plugin's
 * built-in defaults).  Both return 0, or -1 with the line of the first
 * mistake in *err_line and the reason in err (libconfuse's words: "unexpected
 * token '='", "premature end of file", "unterminated string constant").
 *
 * Pure: no I/O, no globals.  Its fuzz harness is tests/fuzz/fuzz_plugin_section.c.
 */
#ifndef SMTPGATE_PLUGIN_SECTION_H
#define SMTPGATE_PLUGIN_SECTION_H

#include <stdbool.h>
#include <stddef.h>

struct plugin_value {
    char *key;
    char **items; /* one for a plain value, any number for a list */
    size_t nitems;
    bool list; /* written as {...} or appended to with += */
    int line;
};

struct plugin_section {
    char *name;   /* the section's title */
    char *source; /* the file, or "-o #N" for an override */
    int line;     /* of "plugin NAME {" */
    struct plugin_value *values;
    size_t nvalues;
};

struct plugin_sections {
    struct plugin_section *v;
    size_t n;
};

int plugin_sections_take(char *text, const char *source, struct plugin_sections *ps, int *err_line,
                         char *err, size_t err_size);
int plugin_section_parse_body(const char *text, const char *source, struct plugin_section *out,
                              int *err_line, char *err, size_t err_size);

/* The value of key in s, or NULL. */
const struct plugin_value *plugin_section_get(const struct plugin_section *s, const char *key);

void plugin_section_clear(struct plugin_section *s);
void plugin_sections_clear(struct plugin_sections *ps);

#endif
