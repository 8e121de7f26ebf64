// fuzz-sources: rules/sa_received.c util/alloc.c
// fuzz-pkgs: libpcre2-8
/*
 * A Received field from the network gives a relay, "ignored" or
 * "unparseable", never a crash; a relay's strings carry none of the octets
 * SpamAssassin's clean-up turns into '!', and its text form is built.  The
 * input is copied to a buffer of exactly its size, so any read past its
 * end is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_received.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_clean(const char *s)
{
    for (; *s; s++)
        if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || strchr("#[]()<>|", *s))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct sa_relay r;
    struct sa_rcvd_extra x;
    enum sa_rcvd_rc rc = sa_received_parse(buf, size, &r, &x);
    if (rc == SA_RCVD_PARSED) {
        fuzz_clean(r.ip);
        fuzz_clean(r.rdns);
        fuzz_clean(r.helo);
        fuzz_clean(r.by);
        fuzz_clean(r.ident);
        if (r.envfrom != NULL)
            fuzz_clean(r.envfrom);
        char *s = NULL;
        if (sa_relay_string(&r, &s) == 0 && (s == NULL || strncmp(s, "[ ip=", 5) != 0))
            abort();
        free(s);
        sa_relay_clear(&r);
    } else if (rc != SA_RCVD_IGNORED && rc != SA_RCVD_UNPARSEABLE && rc != SA_RCVD_NOMEM) {
        abort();
    }
    if (rc != SA_RCVD_NOMEM)
        sa_rcvd_extra_clear(&x);
    free(buf);
    return 0;
}
