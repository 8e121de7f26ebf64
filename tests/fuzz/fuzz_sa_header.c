// fuzz-sources: rules/sa_header.c rules/sa_hdrconf.c rules/html.c util/alloc.c
/*
 * SpamAssassin's header settings and templates come from .cf files, the
 * tests' names and descriptions from rule files: any octets must give a
 * field, never a crash or a hang.  Every line but the last is a setting
 * ("add_header all Foo _TESTS(x)_ ..."); the last is a description.  Each
 * piece is copied to a buffer of exactly its size, so any read past its
 * end is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_hdrconf.h"
#include "rules/sa_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sa_hdrconf *c = sa_hdrconf_new();
    if (c == NULL)
        return 0;
    const char *p = (const char *)data, *end = p + size, *last = p;
    size_t lastn = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        last = p;
        lastn = n;
        const char *sp = memchr(p, ' ', n);
        size_t kn = sp ? (size_t)(sp - p) : n;
        char key[40];
        if (kn < sizeof(key)) {
            memcpy(key, p, kn);
            key[kn] = '\0';
            size_t vn = sp ? n - kn - 1 : 0;
            char *val = malloc(vn ? vn : 1);
            if (val != NULL) {
                memcpy(val, sp ? sp + 1 : p, vn);
                char why[160];
                sa_hdrconf_setting(c, key, val, vn, why, sizeof(why));
                free(val);
            }
        }
        p += n + (nl != NULL);
    }
    char *desc = malloc(lastn + 1);
    if (desc != NULL) {
        memcpy(desc, last, lastn);
        desc[lastn] = '\0';
        struct sa_test t[2] = {{"A_RULE", 2.5, "BODY: ", desc}, {"B", -12, "", NULL}};
        const char *subs[] = {"__X", "__X"};
        struct sa_tags v = {.spam = size % 2, .score = (double)size / 3, .required = 5,
                            .tests = t, .ntests = 2, .subtests = subs, .nsubtests = 2,
                            .version = SA_VERSION, .subversion = SA_SUBVERSION,
                            .hostname = "h", .contact = c->contact, .autolearn = "disabled",
                            .wrap_width = c->wrap_width};
        for (int s = 0; s < 2; s++) {
            const struct sa_hdr_tmpl *h = s ? c->spam : c->ham;
            size_t nh = s ? c->nspam : c->nham;
            for (size_t i = 0; i < nh; i++)
                free(sa_header_value(&v, h[i].name, h[i].template, c->fold));
        }
        free(sa_tags_expand(&v, desc, lastn));
        free(sa_header_value(&v, "Status", desc, true));
        free(desc);
    }
    sa_hdrconf_free(c);
    return 0;
}
