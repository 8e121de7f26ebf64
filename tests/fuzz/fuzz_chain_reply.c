// fuzz-sources: chain/reply.c
/*
 * A plugin's reply text, validated before any client sees it: whatever the
 * plugin hands over, what comes out is NULL or lines that each start with a
 * code of the asked class, a space or dash in the right places, an enhanced
 * code of the same class, and no control octet but the CRLF between lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chain/reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(const char *wire, char cls)
{
    if (!wire)
        return;
    const char *p = wire;
    for (;;) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len < 9 || p[0] != cls || (p[3] != ' ' && p[3] != '-') || p[4] != cls)
            abort();
        if ((p[3] == '-') != (eol != NULL))
            abort();
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)p[i] < 32 && p[i] != '\t')
                abort();
        if (!eol)
            break;
        if (memcmp(eol + 2, wire, 3) != 0)
            abort();
        p = eol + 2;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (int k = 0; k < 2; k++) {
        char cls = k ? '5' : '4';
        char *wire = chain_reply_wire(text, cls);
        fuzz_check(wire, cls);
        free(wire);
    }
    free(text);
    return 0;
}
