// fuzz-sources: rules/sa_html.c util/alloc.c
// fuzz-pkgs: libpcre2-8
/*
 * A text/html part comes from the network: any octets must give the facts
 * or an out-of-memory return, never a crash or a hang, and the facts must
 * hold together (balances never below 0, ratios within 0..1, lists inside
 * their buffers).  The input is copied to a buffer of exactly its size, so
 * any read past len is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_html.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_strs(const struct sa_html_strs *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->start[i] > l->len || (i > 0 && l->start[i] < l->start[i - 1]))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct sa_html_part p;
    if (sa_html_parse(buf, size, &p) == 0) {
        for (size_t i = 0; i < p.tags_cap; i++)
            if (p.tags[i].name != NULL && p.tags[i].inside < 0)
                abort();
        static const char *const ratios[] = {"closed_extra_ratio", "bad_tag_ratio",
                                             "non_element_ratio"};
        for (size_t i = 0; i < 3; i++) {
            double v;
            if (sa_html_number(&p, ratios[i], &v) && (v < 0 || v > 1))
                abort();
        }
        if (p.non_space_len > p.html_length || p.length > (double)size)
            abort();
        check_strs(&p.title);
        check_strs(&p.comment);
        check_strs(&p.anchor);
        check_strs(&p.script);
        sa_html_part_free(&p);
    }
    free(buf);
    return 0;
}
