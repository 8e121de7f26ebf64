// fuzz-sources: codec/auth_relay.c
/*
 * What a client sends in an AUTH exchange: the input is split at its first
 * newline into an AUTH argument and a response line.  Every parser and the
 * login extraction for every mechanism must stay in bounds; a login name is
 * always printable and short; base64 decoding never writes past its output.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/auth_relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t alen = nl ? (size_t)(nl - s) : size;
    const char *resp = nl ? nl + 1 : s;
    size_t rlen = nl ? size - alen - 1 : size;

    struct auth_cmd c;
    if (auth_cmd_parse(s, alen, &c) == AUTH_OK) {
        if (!c.mech || (c.initial && (c.initial < s || c.initial + c.initial_len > s + alen)))
            abort();
    }
    (void)auth_response_check(resp, rlen, 12288);
    (void)auth_mechs_parse(s, size);
    if (auth_loggable_len(s, size) > size)
        abort();

    unsigned char out[64];
    size_t n = auth_base64_decode(resp, rlen, out, sizeof(out));
    if (n != (size_t)-1 && n > sizeof(out))
        abort();
    for (unsigned bit = 1; bit <= AUTH_MECH_OAUTHBEARER; bit <<= 1) {
        for (unsigned step = 0; step < 3; step++) {
            char name[AUTH_LOGIN_MAX];
            if (auth_login_guess(bit, step, resp, rlen, name, sizeof(name))) {
                size_t l = strnlen(name, sizeof(name));
                if (l == 0 || l >= sizeof(name))
                    abort();
                for (size_t i = 0; i < l; i++)
                    if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] > 0x7E)
                        abort();
            }
        }
    }
    char fmt[40];
    if (auth_mechs_format(auth_mechs_parse(s, size), fmt, sizeof(fmt)) >= sizeof(fmt))
        abort();
    return 0;
}
