// fuzz-sources: rules/*.c !rules/smtpgate-rules.c util/alloc.c util/net.c
// fuzz-pkgs: libpcre2-8 gmime-3.0 libcares
/*
 * A message from the network through the content rules: header splitting
 * and RFC 2047 decoding, GMime's MIME parse, transfer decoding, charset
 * conversion, HTML stripping and URI extraction, and SpamAssassin's views
 * of the same message (its rendered body, rawbody pieces, URI forms, MIME
 * part fields).  Whatever the input, the decoded body, raw body, header
 * values, URIs and part names are valid UTF-8 without NUL octets, the
 * element ends of SpamAssassin's body and rawbody ascend to their length,
 * and evaluation ends with a verdict.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "rules/rules_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char rules_src[] = "rule H header Subject /a/i score 1\n"
                                "rule HA header From:addr /@/ score 1\n"
                                "rule HN header From:name /./ score 1\n"
                                "rule HR header Subject:raw /=\\?/ score 1\n"
                                "rule AH headers /x/ score 1\n"
                                "rule B body /b/u score 1\n"
                                "rule RB rawbody /</ score 1\n"
                                "rule U uri /^http/ score 1\n"
                                "rule F full /\\r\\n\\r\\n/ score 1\n"
                                "rule AN attachment_name /\\./ score 1\n"
                                "rule AT attachment_type m{/} score 1\n"
                                "rule M meta (H + B + U >= 2) || !F score 1\n"
                                "threshold tag 3 subject-prefix \"[S] \"\n";

static struct rules *rules;

static void utf8_clean(const char *s, size_t len)
{
    if (s == NULL)
        return;
    if (strlen(s) != len || !g_utf8_validate(s, (gssize)len, NULL))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (rules == NULL) {
        struct rules_limits lim = {
            .match_limit = 100000, .depth_limit = 1000, .heap_limit_kib = 1000};
        if (rules_load_buffer("m.rules", rules_src, sizeof(rules_src) - 1, &lim, &rules, NULL) != 0)
            abort();
    }
    struct rules_msg *m = rules_msg_parse((const char *)data, size);
    struct rules_tx *tx = rules_tx_new(rules);
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
    if (o == NULL)
        abort();
    size_t len;
    const char *s = rules_msg_body(m, &len);
    utf8_clean(s, len);
    s = rules_msg_rawbody(m, &len);
    utf8_clean(s, len);
    for (size_t i = 0; i < rules_msg_uri_count(m); i++)
        utf8_clean(rules_msg_uri(m, i), strlen(rules_msg_uri(m, i)));
    for (size_t i = 0; i < rules_msg_part_count(m); i++) {
        const char *n = rules_msg_part_name(m, i);
        utf8_clean(n, n ? strlen(n) : 0);
        utf8_clean(rules_msg_part_type(m, i), strlen(rules_msg_part_type(m, i)));
    }
    const size_t *ends;
    size_t nends;
    for (int k = 0; k < 2; k++) {
        s = k == 0 ? rules_msg_sa_body(m, &len, &ends, &nends)
                   : rules_msg_sa_rawbody(m, &len, &ends, &nends);
        utf8_clean(s, len);
        for (size_t i = 0; i < nends; i++)
            if (ends[i] > len || (i > 0 && ends[i] <= ends[i - 1]))
                abort();
        if (nends > 0 && ends[nends - 1] != len)
            abort();
    }
    for (size_t i = 0; i < rules_msg_sa_uri_count(m); i++)
        utf8_clean(rules_msg_sa_uri(m, i), strlen(rules_msg_sa_uri(m, i)));
    for (size_t i = 0; i < rules_msg_mime_field_count(m); i++) {
        const char *v;
        rules_msg_mime_field(m, i, i % 2 == 0, &v, &len);
        utf8_clean(v, len);
    }
    for (size_t i = 0; i < 4; i++) {
        const char *h = rules_msg_header(m, "Subject", i);
        utf8_clean(h, h ? strlen(h) : 0);
    }
    rules_tx_free(tx);
    rules_msg_free(m);
    return 0;
}
