// fuzz-sources: config/plugin_section.c
/*
 * Config text from anywhere must give plugin sections or an error with a
 * line, never a crash; the text handed back keeps its length and every
 * newline (libconfuse parses it next with the same line numbers), and every
 * value lies in a section that names it.  The input is copied to a buffer of
 * exactly its size plus the NUL the parser reads as the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/plugin_section.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memchr(data, '\0', size))
        return 0; /* config text is a C string */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    struct plugin_sections ps = {0};
    char err[256];
    int line = 0;
    int rc = plugin_sections_take(text, "fuzz", &ps, &line, err, sizeof(err));
    if (strlen(text) != size)
        abort();
    for (size_t i = 0; i < size; i++)
        if ((text[i] == '\n') != (data[i] == '\n'))
            abort();
    if (rc < 0 && (line < 1 || !memchr(err, '\0', sizeof(err))))
        abort();
    for (size_t i = 0; i < ps.n; i++) {
        const struct plugin_section *s = &ps.v[i];
        if (!s->name || !s->source || s->line < 1)
            abort();
        for (size_t k = 0; k < s->nvalues; k++)
            if (!s->values[k].key || s->values[k].line < s->line ||
                plugin_section_get(s, s->values[k].key) != &s->values[k])
                abort();
    }
    plugin_sections_clear(&ps);

    /* The same text as a section body (a plugin's defaults). */
    struct plugin_section body = {0};
    memcpy(text, data, size);
    (void)plugin_section_parse_body(text, "fuzz", &body, &line, err, sizeof(err));
    plugin_section_clear(&body);
    free(text);
    return 0;
}
