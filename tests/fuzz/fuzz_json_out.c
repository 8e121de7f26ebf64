// fuzz-sources: util/json_out.c
/*
 * Any octets as keys and values, any buffer size: the object must stay
 * inside its buffer, end in "}\n" and hold no raw control octet (json_out's
 * contract: what it writes parses, even when cut).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_out.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cap =
        42 + data[0] * 4u; /* the least json_out_init takes: room for "{}\n" and its reserve */
    char *buf = malloc(cap);
    /* An exact-size copy, so reading past the input is caught by ASan. */
    char *in = malloc(size - 1 ? size - 1 : 1);
    if (!buf || !in)
        abort();
    memcpy(in, data + 1, size - 1);
    struct json_out j;
    json_out_init(&j, buf, cap);
    size_t start = 0;
    for (size_t i = 0; i <= size - 1; i++) {
        if (i < size - 1 && in[i] != '\0')
            continue;
        size_t n = i - start;
        switch (n % 4) {
        case 0:
            json_out_key(&j, "k");
            json_out_str(&j, in + start, n);
            break;
        case 1:
            json_out_open(&j, (n & 4) ? '[' : '{');
            break;
        case 2:
            json_out_close(&j);
            break;
        default:
            json_out_str(&j, in + start, n);
        }
        start = i + 1;
    }
    size_t len = json_out_finish(&j);
    if (len + 1 > cap || len < 2 || buf[len - 1] != '\n' || buf[len - 2] != '}' || buf[len])
        abort();
    for (size_t i = 0; i + 1 < len; i++)
        if ((unsigned char)buf[i] < 0x20)
            abort();
    free(in);
    free(buf);
    return 0;
}
