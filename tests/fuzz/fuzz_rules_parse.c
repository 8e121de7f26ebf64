// fuzz-sources: rules/*.c !rules/smtpgate-rules.c util/alloc.c util/net.c
// fuzz-pkgs: libpcre2-8 gmime-3.0 libcares
/*
 * A rule file from an admin (or an attacker with write access to one): the
 * parser and compiler must refuse it with errors that each name the file and
 * a line inside it, or accept it; an accepted set must run its examples and
 * evaluate every stage over a small message within the match limits, with
 * symbols of other plugins from MAIL on.  The
 * same set without the literal prefilter must hit exactly the same rules,
 * over that message and over the input itself taken as a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char message[] = "From: Alice <alice@example.org>\r\n"
                              "Subject: =?utf-8?q?hello?= world\r\n"
                              "Content-Type: text/html\r\n"
                              "\r\n"
                              "<p>Body <a href=\"http://192.0.2.1/x\">link</a></p>\r\n";

/* The content hits of r over msg, as one string of rule names. */
static char *content_hits(struct rules *r, const char *msg, size_t len)
{
    struct rules_msg *m = rules_msg_parse(msg, len);
    struct rules_tx *tx = rules_tx_new(r);
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
    size_t cap = 1, n = 0;
    for (size_t i = 0; i < o->nhits; i++)
        cap += strlen(o->hits[i].rule) + 1;
    char *s = malloc(cap);
    if (s == NULL)
        abort();
    for (size_t i = 0; i < o->nhits; i++) {
        size_t l = strlen(o->hits[i].rule);
        memcpy(s + n, o->hits[i].rule, l);
        n += l;
        s[n++] = ' ';
    }
    s[n] = '\0';
    /* a budget or limit event makes the two runs incomparable */
    if (o->nevents > 0)
        s[0] = '\0';
    rules_tx_free(tx);
    rules_msg_free(m);
    return s;
}

/* Eight rules on every long text, so that each gets its prefilter and the
 * input's own rules on those texts go through it. */
static const char prefix[] =
    "rule ZB1 body /zqa1/\nrule ZB2 body /zqa2/\nrule ZB3 body /zqa3/\nrule ZB4 body /zqa4/\n"
    "rule ZB5 body /zqa5/\nrule ZB6 body /zqa6/\nrule ZB7 body /zqa7/\nrule ZB8 body /zqa8/\n"
    "rule ZR1 rawbody /zqa1/\nrule ZR2 rawbody /zqa2/\nrule ZR3 rawbody /zqa3/\n"
    "rule ZR4 rawbody /zqa4/\nrule ZR5 rawbody /zqa5/\nrule ZR6 rawbody /zqa6/\n"
    "rule ZR7 rawbody /zqa7/\nrule ZR8 rawbody /zqa8/\n"
    "rule ZF1 full /zqa1/\nrule ZF2 full /zqa2/\nrule ZF3 full /zqa3/\nrule ZF4 full /zqa4/\n"
    "rule ZF5 full /zqa5/\nrule ZF6 full /zqa6/\nrule ZF7 full /zqa7/\nrule ZF8 full /zqa8/\n"
    "rule ZH1 headers /zqa1/\nrule ZH2 headers /zqa2/\nrule ZH3 headers /zqa3/\n"
    "rule ZH4 headers /zqa4/\nrule ZH5 headers /zqa5/\nrule ZH6 headers /zqa6/\n"
    "rule ZH7 headers /zqa7/\nrule ZH8 headers /zqa8/\n"
    "rule ZW1 headers:raw /zqa1/\nrule ZW2 headers:raw /zqa2/\nrule ZW3 headers:raw /zqa3/\n"
    "rule ZW4 headers:raw /zqa4/\nrule ZW5 headers:raw /zqa5/\nrule ZW6 headers:raw /zqa6/\n"
    "rule ZW7 headers:raw /zqa7/\nrule ZW8 headers:raw /zqa8/\n";

static void compare_prefilter(const char *text, size_t size, const struct rules_limits *lim)
{
    size_t n = sizeof(prefix) - 1 + size;
    char *src = malloc(n);
    if (src == NULL)
        abort();
    memcpy(src, prefix, sizeof(prefix) - 1);
    memcpy(src + sizeof(prefix) - 1, text, size);
    struct rules_limits plain = *lim;
    plain.no_prefilter = true;
    struct rules *r = NULL, *q = NULL;
    /* the input may name a prefix rule again: then there is nothing to compare */
    if (rules_load_buffer("fuzz.rules", src, n, lim, &r, NULL) == 0) {
        if (rules_load_buffer("fuzz.rules", src, n, &plain, &q, NULL) != 0)
            abort();
        const char *msgs[] = {message, text};
        size_t lens[] = {sizeof(message) - 1, size};
        for (int k = 0; k < 2; k++) {
            char *a = content_hits(r, msgs[k], lens[k]), *b = content_hits(q, msgs[k], lens[k]);
            if (a[0] != '\0' && b[0] != '\0' && strcmp(a, b) != 0)
                abort();
            free(a);
            free(b);
        }
        rules_unref(q);
        rules_unref(r);
    }
    free(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rules_limits lim = {
        .match_limit = 10000, .depth_limit = 1000, .heap_limit_kib = 1000, .budget_us = 0};
    struct rules_errors errs = {0};
    struct rules *r = NULL;
    const char *text = (const char *)data;
    int rc = rules_load_buffer("fuzz.rules", text, size, &lim, &r, &errs);
    unsigned lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    for (size_t i = 0; i < errs.n; i++) {
        if (strcmp(errs.v[i].file, "fuzz.rules") != 0 || errs.v[i].line > lines)
            abort();
        char *s = rules_error_format(&errs.v[i]);
        free(s);
    }
    if ((rc == 0) != (r != NULL) || (rc != 0 && errs.n == 0) || (rc == 0 && errs.n != 0))
        abort();
    rules_errors_free(&errs);
    if (r == NULL)
        return 0;
    rules_check_examples(r, &errs);
    rules_errors_free(&errs);
    compare_prefilter(text, size, &lim);

    struct rules_facts f = {"192.0.2.1", "host.example", "helo.example", "a@example.org",
                            "b@example.org"};
    struct rules_tx *conn = rules_tx_new(r);
    rules_tx_eval(conn, RULES_STAGE_CONNECT, &f, NULL);
    rules_tx_eval(conn, RULES_STAGE_HELO, &f, NULL);
    /* other plugins' symbols from MAIL on: symbol(NAME) metas run again there */
    static const struct rules_symbol syms[] = {{"SPF_FAIL", 2}, {"X", -1}, {"a_b", 0}};
    f.symbols = syms;
    f.nsymbols = sizeof(syms) / sizeof(syms[0]);
    struct rules_tx *tx = rules_tx_fork(conn);
    rules_tx_eval(tx, RULES_STAGE_MAIL, &f, NULL);
    rules_tx_eval(tx, RULES_STAGE_RCPT, &f, NULL);
    struct rules_msg *m = rules_msg_parse(message, sizeof(message) - 1);
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, &f, m);
    if (o == NULL || o->report_status == NULL || o->report_score == NULL)
        abort();
    for (size_t i = 0; i < o->nhits; i++)
        if (o->hits[i].text_len > RULES_HIT_TEXT_MAX)
            abort();
    rules_msg_free(m);
    rules_tx_free(tx);
    rules_tx_free(conn);
    rules_unref(r);
    return 0;
}
