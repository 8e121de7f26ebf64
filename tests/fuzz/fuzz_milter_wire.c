// fuzz-sources: codec/milter_wire.c
/*
 * What a milter sends is read as packets, replies and a negotiation answer:
 * any bytes give a kind or a refusal, never a crash, and every string or
 * body handed back lies inside the packet and ends there with its NUL.  The
 * input is copied to a buffer of exactly its size, so a read past it is
 * caught.  Each packet found is also built again with the encoders, and
 * framing what they wrote gives back the same command and data.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/milter_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_inside(const uint8_t *d, size_t len, const char *s)
{
    if (!s)
        return;
    const uint8_t *p = (const uint8_t *)s;
    if (p < d || p >= d + len)
        abort();
    if (!memchr(p, '\0', (size_t)(d + len - p)))
        abort();
}

static void fuzz_reply(char cmd, const uint8_t *d, size_t len)
{
    struct milter_reply r;
    enum milter_reply_kind k = milter_wire_reply(cmd, d, len, &r);
    if (k != r.kind)
        abort();
    if (k == MILTER_R_INVALID) {
        if (!r.why)
            abort();
        return;
    }
    fuzz_inside(d, len, r.text);
    fuzz_inside(d, len, r.name);
    fuzz_inside(d, len, r.value);
    fuzz_inside(d, len, r.addr);
    fuzz_inside(d, len, r.args);
    if (k == MILTER_R_REPLYCODE && (r.code < 400 || r.code > 599))
        abort();
    if (r.name &&
        (strlen(r.name) == 0 || strlen(r.name) > MILTER_WIRE_NAME_MAX || strchr(r.name, ':')))
        abort();
    if (k == MILTER_R_REPLBODY && (r.body != d || r.body_len != len))
        abort();
    if (milter_wire_is_edit(k) != (k >= MILTER_R_ADDHEADER))
        abort();
}

/* Builds the packet again and frames it: the same command and data. */
static void fuzz_roundtrip(char cmd, const uint8_t *d, size_t len)
{
    if (len > MILTER_CHUNK_SIZE)
        return;
    struct milter_out o;
    milter_out_init(&o);
    if (milter_out_body(&o, d, len) < 0 || milter_out_failed(&o))
        abort();
    o.buf[4] = (uint8_t)cmd;
    char c;
    const uint8_t *p;
    size_t n;
    if (milter_wire_frame(o.buf, o.len, MILTER_CHUNK_SIZE, &c, &p, &n) != (long)o.len || c != cmd ||
        n != len || (len && memcmp(p, d, len) != 0))
        abort();
    milter_out_free(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    /* The first packet may be the negotiation answer, as on a real socket. */
    size_t pos = 0;
    bool first = true;
    while (pos < size) {
        char cmd;
        const uint8_t *d;
        size_t len;
        long n = milter_wire_frame(buf + pos, size - pos, MILTER_MAX_DATA_SIZE, &cmd, &d, &len);
        if (n <= 0)
            break;
        if ((size_t)n > size - pos || d + len != buf + pos + (size_t)n)
            abort();
        /* An exact-size copy of the data alone, so the parsers cannot read on. */
        uint8_t *own = malloc(len ? len : 1);
        if (!own)
            break;
        memcpy(own, d, len);
        if (first && cmd == SMFIC_OPTNEG) {
            struct milter_optneg got, agreed;
            const char *why = NULL;
            if (milter_wire_optneg(own, len, &got, &why) == 0) {
                for (size_t i = 0; i < MILTER_WIRE_STAGES; i++)
                    fuzz_inside(own, len, got.macros[i]);
                struct milter_optneg offer = {.version = MILTER_WIRE_VERSION,
                                              .actions = SMFI_CURR_ACTS,
                                              .protocol = 0x001fffff};
                if (milter_wire_negotiate(&offer, &got, &agreed, &why) == 0 &&
                    ((agreed.actions & ~offer.actions) || (agreed.protocol & ~offer.protocol) ||
                     agreed.version < MILTER_WIRE_MIN_VERSION ||
                     agreed.version > MILTER_WIRE_VERSION))
                    abort();
            } else if (!why) {
                abort();
            }
        } else {
            fuzz_reply(cmd, own, len);
        }
        fuzz_roundtrip(cmd, own, len);
        free(own);
        first = false;
        pos += (size_t)n;
    }
    free(buf);
    return 0;
}
