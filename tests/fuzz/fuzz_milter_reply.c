// fuzz-sources: codec/milter_reply.c codec/smtp_reply.c util/alloc.c
/*
 * A chain reply comes from a plugin (set_reply is validated, but the reply
 * may also be a relayed one): milter_reply_parse must take any bytes.  A
 * parsed reply must keep libmilter's rules: a 4xx/5xx rcode, an xcode of the
 * same class or none, 1..32 lines of printable text no longer than the
 * limit, with every '%' doubled.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/milter_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct milter_reply r;
    if (milter_reply_parse((const char *)data, size, &r) < 0) {
        if (r.nlines != 0 || r.buf)
            abort();
        return 0;
    }
    if (strlen(r.rcode) != 3 || (r.rcode[0] != '4' && r.rcode[0] != '5'))
        abort();
    if (r.xcode[0] && r.xcode[0] != r.rcode[0])
        abort();
    if (r.nlines == 0 || r.nlines > MILTER_REPLY_MAX_LINES)
        abort();
    for (size_t i = 0; i < r.nlines; i++) {
        const char *l = r.lines[i];
        size_t n = strlen(l);
        if (n > MILTER_REPLY_MAX_TEXT)
            abort();
        for (size_t k = 0; k < n; k++) {
            if ((unsigned char)l[k] < 0x20 || (unsigned char)l[k] >= 0x7f)
                abort();
            if (l[k] == '%') {
                if (l[k + 1] != '%')
                    abort();
                k++;
            }
        }
    }
    milter_reply_free(&r);
    return 0;
}
