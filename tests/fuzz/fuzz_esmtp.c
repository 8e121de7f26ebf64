// fuzz-sources: codec/esmtp.c
/*
 * MAIL/RCPT parameters from the network, checked with every extension
 * advertised and with none: a status, never a crash, and values inside the
 * input.  The same bytes must survive an xtext encode that is always valid
 * xtext and decodes back to them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/esmtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ALL_CAPS 0xfffu

static void fuzz_check_span(const char *buf, size_t size, const char *p, size_t len)
{
    if (p == NULL)
        return;
    if (p < buf || len > size || (size_t)(p - buf) > size - len)
        abort();
}

static int fuzz_hex(char c)
{
    return c <= '9' ? c - '0' : c - 'A' + 10;
}

static void fuzz_xtext_round_trip(const char *buf, size_t size)
{
    size_t cap = size * 3 + 1;
    char *enc = malloc(cap);
    char *dec = malloc(size ? size : 1);
    if (enc == NULL || dec == NULL)
        goto out;
    size_t n = esmtp_xtext_encode(buf, size, enc, cap);
    if (n == (size_t)-1 || n != strlen(enc) || !esmtp_xtext_valid(enc, n))
        abort();
    size_t d = 0;
    for (size_t i = 0; i < n; i++) {
        if (enc[i] == '+') {
            dec[d++] = (char)(fuzz_hex(enc[i + 1]) * 16 + fuzz_hex(enc[i + 2]));
            i += 2;
        } else {
            dec[d++] = enc[i];
        }
    }
    if (d != size || memcmp(dec, buf, size) != 0)
        abort();
    /* One octet short of room must fail cleanly. */
    if (n > 0 && esmtp_xtext_encode(buf, size, enc, n) != (size_t)-1)
        abort();
out:
    free(enc);
    free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);

    struct esmtp_param params[ESMTP_MAX_PARAMS];
    size_t n;
    if (esmtp_params_split(buf, size, params, ESMTP_MAX_PARAMS, &n) == ESMTP_OK) {
        if (n > ESMTP_MAX_PARAMS)
            abort();
        for (size_t i = 0; i < n; i++) {
            fuzz_check_span(buf, size, params[i].key, params[i].key_len);
            fuzz_check_span(buf, size, params[i].value, params[i].value_len);
        }
    }

    static const unsigned caps[] = {0, FUZZ_ALL_CAPS, ESMTP_CAP_DSN | ESMTP_CAP_SIZE,
                                    ESMTP_CAP_8BITMIME};
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
        struct esmtp_mail m;
        enum esmtp_status st = esmtp_mail_params(buf, size, caps[c], &m);
        if (esmtp_status_reply(st) == NULL)
            abort();
        if (st == ESMTP_OK) {
            fuzz_check_span(buf, size, m.envid, m.envid_len);
            fuzz_check_span(buf, size, m.auth, m.auth_len);
            if (caps[c] == 0 && (m.has_size || m.body || m.smtputf8 || m.ret))
                abort();
        }
        struct esmtp_rcpt r;
        st = esmtp_rcpt_params(buf, size, caps[c], &r);
        if (esmtp_status_reply(st) == NULL)
            abort();
        if (st == ESMTP_OK) {
            fuzz_check_span(buf, size, r.orcpt, r.orcpt_len);
            if ((r.notify & ESMTP_NOTIFY_NEVER) && r.notify != ESMTP_NOTIFY_NEVER)
                abort();
        }
    }

    (void)esmtp_xtext_valid(buf, size);
    fuzz_xtext_round_trip(buf, size);
    free(buf);
    return 0;
}
