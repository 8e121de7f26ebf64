// fuzz-sources: rules/parse.c rules/compile.c rules/eval.c rules/message.c rules/html.c
// fuzz-pkgs: libpcre2-8 gmime-3.0
/*
 * A rule file from an admin (or an attacker with write access to one): the
 * parser and compiler must refuse it with errors that each name the file and
 * a line inside it, or accept it; an accepted set must run its examples and
 * evaluate every stage over a small message within the match limits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char message[] = "From: Alice <alice@example.org>\r\n"
                              "Subject: =?utf-8?q?hello?= world\r\n"
                              "Content-Type: text/html\r\n"
                              "\r\n"
                              "<p>Body <a href=\"http://192.0.2.1/x\">link</a></p>\r\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rules_limits lim = {10000, 1000, 1000, 100000};
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

    struct rules_facts f = {"192.0.2.1", "host.example", "helo.example", "a@example.org",
                            "b@example.org"};
    struct rules_tx *conn = rules_tx_new(r);
    rules_tx_eval(conn, RULES_STAGE_CONNECT, &f, NULL);
    rules_tx_eval(conn, RULES_STAGE_HELO, &f, NULL);
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
