// fuzz-sources: rules/sa_lists.c rules/sa_rcvdwl.c util/alloc.c
// fuzz-pkgs: libpcre2-8
/*
 * The list settings come from rule files, the addresses they are asked
 * about from messages: any octets must give an answer, never a crash or a
 * hang (the _rcvd lists too, the address standing for the relay as well).  The input is lines of
 * "setting value"; the last line is the address asked about every list.  Each line is copied to a
 * buffer of exactly its size, so any read past its end is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_lists.h"
#include "rules/sa_rcvdwl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the address asked about is the relay's name and address too */
static bool relay_ok(const char *relay, void *ctx)
{
    return sa_rcvdwl_relay_matches(relay, ctx, ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sa_lists *l = sa_lists_new();
    if (l == NULL)
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
        char key[48];
        if (kn < sizeof(key) && nl != NULL) {
            memcpy(key, p, kn);
            key[kn] = '\0';
            size_t vn = sp ? n - kn - 1 : 0;
            char *v = malloc(vn ? vn : 1);
            if (v != NULL) {
                memcpy(v, sp ? sp + 1 : p, vn);
                char why[160];
                if (sa_lists_setting(l, key, v, vn, why, sizeof(why)) == SA_LISTS_BAD &&
                    memchr(why, '\0', sizeof(why)) == NULL)
                    abort();
                free(v);
            }
        }
        p = nl ? nl + 1 : end;
    }
    sa_lists_finish(l);
    char *a = malloc(lastn ? lastn : 1);
    if (a != NULL) {
        memcpy(a, last, lastn);
        static const char *const names[] = {"welcomelist_from", "blocklist_from", "welcomelist_to",
                                            "more_spam_to",     "all_spam_to",    "blocklist_to"};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (sa_lists_addr_listed(l, names[i], a, lastn) > 1)
                abort();
        if (sa_lists_is_freemail(l, a, lastn) > 1)
            abort();
        if (sa_lists_addr_glob_listed(l, "welcomelist_allows_relays", a, lastn) > 1)
            abort();
        if (sa_lists_subject_listed(l, false, a, lastn) > 1 ||
            sa_lists_subject_listed(l, true, a, lastn) > 1)
            abort();
        char *z = malloc(lastn + 1);
        if (z != NULL) {
            memcpy(z, a, lastn);
            z[lastn] = '\0';
            for (int k = 0; k < SA_RCVD__COUNT; k++) {
                int rc = sa_lists_rcvd_match(l, (enum sa_rcvd_list)k, a, lastn, relay_ok, z);
                if (rc < -1 || rc > 1 || (rc != 0 && !sa_lists_rcvd_has(l, (enum sa_rcvd_list)k)))
                    abort();
            }
            free(z);
        }
        for (size_t i = 0; i < sa_lists_uri_list_count(l); i++)
            if (sa_lists_uri_host(l, i, a, lastn) > 1)
                abort();
        if (lastn > 0 && sa_glob_match(a, lastn / 2, a + lastn / 2, lastn - lastn / 2, lastn & 1) &&
            lastn / 2 == 0 && lastn - lastn / 2 > 0)
            abort(); /* an empty pattern matches only the empty subject */
        free(a);
    }
    sa_lists_unref(l);
    return 0;
}
