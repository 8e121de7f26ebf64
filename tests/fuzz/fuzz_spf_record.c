// fuzz-sources: plugins/spf/spf_record.c plugins/spf/spf_macro.c plugins/spf/spf_explain.c util/alloc.c
/*
 * SPF records come from any domain's DNS.  The input is parsed as a record;
 * when it parses, every domain-spec is expanded with fixed facts (IPv4 and
 * IPv6), must pass the macro check it was accepted by, and the expansion
 * cut to 253 octets must stay within them.  The input is also expanded as
 * an explanation: its result must be visible ASCII within the limit.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "spf/spf_explain.h"
#include "spf/spf_macro.h"
#include "spf/spf_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fuzz_validated(void *arg)
{
    (void)arg;
    return "mx.example.org";
}

static void fuzz_expand(const char *s, size_t n, struct spf_macro_ctx *ctx)
{
    size_t pos;
    if (!spf_macro_check(s, n, 0, &pos))
        abort();
    char *out = NULL;
    enum spf_macro_status st = spf_macro_expand(s, n, 0, ctx, 8192, &out);
    if (st == SPF_MACRO_SYNTAX)
        abort();
    if (st == SPF_MACRO_OK) {
        if (out == NULL || strlen(out) > 8192)
            abort();
        spf_macro_truncate_domain(out);
        if (strlen(out) > 253)
            abort();
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct spf_macro_ctx ctx = {
        .sender = "strong-bad@email.example.com",
        .local = "strong-bad",
        .sender_domain = "email.example.com",
        .domain = "email.example.com",
        .family = AF_INET,
        .helo = "mx.example.net",
        .receiver = "mx.example.org",
        .timestamp = 1234567890,
        .validated = fuzz_validated,
    };
    inet_pton(AF_INET, "192.0.2.3", ctx.ip);

    struct spf_record rec;
    struct spf_record_error err;
    if (spf_record_parse(s, size, &rec, &err) == 0) {
        for (int fam = 0; fam < 2; fam++) {
            if (fam == 1) {
                ctx.family = AF_INET6;
                inet_pton(AF_INET6, "2001:db8::cb01", ctx.ip);
            }
            for (size_t i = 0; i < rec.nterms; i++) {
                const struct spf_term *t = &rec.terms[i];
                if (t->domain != NULL)
                    fuzz_expand(t->domain, t->domain_len, &ctx);
                if ((t->mech == SPF_MECH_IP4 && t->cidr4 > 32) || t->cidr6 > 128)
                    abort();
            }
            if (rec.redirect != NULL)
                fuzz_expand(rec.redirect, rec.redirect_len, &ctx);
            if (rec.exp != NULL)
                fuzz_expand(rec.exp, rec.exp_len, &ctx);
        }
        spf_record_free(&rec);
    } else if (err.message[0] == '\0' || err.offset > size) {
        abort();
    }

    char *exp = NULL;
    if (spf_explain_expand(s, size, &ctx, &exp) == 0) {
        size_t n = strlen(exp);
        if (n > SPF_EXPLAIN_MAX)
            abort();
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)exp[i] < 0x20 || (unsigned char)exp[i] > 0x7e)
                abort();
        free(exp);
    }

    return 0;
}
