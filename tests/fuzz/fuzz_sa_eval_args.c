// fuzz-sources: rules/sa_eval_args.c rules/sa_date.c util/alloc.c
/*
 * The arguments of a SpamAssassin eval test and a header date come from
 * rule files and from messages: any octets must give a result, never a
 * crash, and the values must read back as parts of the input.  The input is
 * copied to a buffer of exactly its size, so any read past len is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_date.h"
#include "rules/sa_eval_args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct sa_eval_args a;
    if (sa_eval_args_parse(buf, size, &a) == SA_EVAL_ARGS_OK) {
        if (a.n > SA_EVAL_ARGS_MAX)
            abort();
        for (size_t i = 0; i < a.n; i++)
            if (a.len[i] > size || memmem(buf, size, a.v[i], a.len[i]) == NULL ||
                a.v[i][a.len[i]] != '\0')
                abort();
        sa_eval_args_free(&a);
    } else if (a.n != 0) {
        abort();
    }
    int64_t t;
    if (sa_date_parse(buf, size, &t) && (t < 0 || t > INT64_C(2200000000)))
        abort();
    if (sa_date_in_received(buf, size, &t) && (t < 0 || t > INT64_C(2200000000)))
        abort();
    free(buf);
    return 0;
}
