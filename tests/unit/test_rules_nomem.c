/*
 * Unit tests for the rules library's out-of-memory policy (rules.h,
 * util/alloc.h): with util_alloc_fail_after(n) making the allocations fail
 * from the nth on, for every n until a whole run needs no failure, loading
 * a rule set (parser, compiler, PCRE2 through its general context,
 * prefilters), checking its examples, and evaluating every stage of a
 * session over a MIME message must either succeed with the reference
 * result or return the documented error value: never abort, crash or
 * leak (the test runs under ASan's leak checker).  After a failed content
 * evaluation the tx is still usable: with memory back, the same stage on a
 * fresh message gives the reference result.  Also: a load that fails for
 * memory says so in errs (nomem, "out of memory").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rules/rules.h"
#include "util/alloc.h"

static const char rules_src[] =
    "rule B1 body /cheap\\s+viagra/i score 1\n"
    "rule B2 body /lottery winner/i score 1\n"
    "rule B3 body /click here now/ score 1\n"
    "rule B4 body /unsubscribe/ score 0.5\n"
    "rule B5 body /free money/i score 1\n"
    "rule B6 body /dear friend/i score 1 describe \"greeting\"\n"
    "rule B7 body /limited offer/i score 1\n"
    "rule B8 body /act now/i score 1 must-hit \"act now\" must-not-hit \"later\"\n"
    "rule SUBJ header Subject /money/i score 2\n"
    "rule FROMA header From:addr /@example\\.net$/ score 0.5\n"
    "rule URI1 uri /example\\.org/ score 1\n"
    "rule ATT attachment_type /^text\\/html$/ score 0.1\n"
    "rule NET client_addr 192.0.2.0/24,2001:db8::/32 score 0.5 must-hit \"192.0.2.7\"\n"
    "rule HELO1 helo /^bad/ score 1 add-header \"X-Bad-Helo: yes\"\n"
    "rule MF mail_from /@spam\\.example$/ score 1\n"
    "rule RC rcpt_to /^cfo@/ reject \"550 5.7.1 not for the CFO\"\n"
    "rule SIZE1 size > 100 score 0.1\n"
    "rule RAW rawbody /winner/ score 0.1\n"
    "rule HD headers /X-Mailer: bulk/ score 0.2\n"
    "rule __A body /friend/\n"
    "rule M meta __A && (B5 || B6) score 1\n"
    "rule SH body /money/ shadow\n"
    "threshold tag 3 add-header \"X-Spam-Flag: YES\" subject-prefix \"[SPAM] \"\n"
    "threshold reject 50\n";

static const char message[] =
    "From: Sender <s@example.net>\r\n"
    "To: bob@example.com\r\n"
    "Subject: =?UTF-8?Q?free_money?=\r\n"
    "X-Mailer: bulk\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/alternative; boundary=\"b\"\r\n"
    "\r\n"
    "--b\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Dear friend, you are a lottery winner: free money, act now =E9\r\n"
    "--b\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<p>Click <a href=\"http://example.org/x\">here</a> &amp; unsubscribe</p>\r\n"
    "--b--\r\n";

struct result {
    double score;
    enum rules_verdict verdict;
    size_t nhits;
    char status[512];
    enum rules_verdict rcpt_verdict[2];
};

/* One session over the rule set: 0 and *res, or -1 when an allocation
 * failed on the way (then a failure must have been injected). */
static int run(struct result *res)
{
    struct rules_errors errs = {0};
    struct rules *r = NULL;
    int rc = rules_load_buffer("t.rules", rules_src, strlen(rules_src), NULL, &r, &errs);
    if (rc != 0) {
        assert_null(r);
        assert_true(errs.nomem);
        assert_true(util_alloc_failed() > 0);
        for (size_t i = 0; i < errs.n; i++)
            assert_string_equal(errs.v[i].msg, "out of memory"); /* nothing else is wrong */
        rules_errors_free(&errs);
        return -1;
    }
    assert_false(errs.nomem);
    size_t bad = rules_check_examples(r, &errs);
    if (bad != 0) {
        assert_true(errs.nomem);
        assert_true(util_alloc_failed() > 0);
    }
    rules_errors_free(&errs);

    static const char *rcpts[] = {"cfo@example.com", "bob@example.com"};
    struct rules_facts f = {.client_addr = "192.0.2.7",
                            .client_name = "mx.example.net",
                            .helo = "badhost",
                            .mail_from = "x@spam.example"};
    struct rules_tx *conn = rules_tx_new(r), *tx = NULL;
    struct rules_msg *m = NULL;
    const struct rules_outcome *o = NULL;
    rc = -1;
    if (conn == NULL)
        goto out;
    if (rules_tx_eval(conn, RULES_STAGE_CONNECT, &f, NULL) == NULL ||
        rules_tx_eval(conn, RULES_STAGE_HELO, &f, NULL) == NULL)
        goto out;
    if ((tx = rules_tx_fork(conn)) == NULL || rules_tx_eval(tx, RULES_STAGE_MAIL, &f, NULL) == NULL)
        goto out;
    for (int i = 0; i < 2; i++) {
        f.rcpt = rcpts[i];
        if ((o = rules_tx_eval(tx, RULES_STAGE_RCPT, &f, NULL)) == NULL)
            goto out;
        res->rcpt_verdict[i] = o->verdict;
    }
    if ((m = rules_msg_parse(message, strlen(message))) == NULL)
        goto out;
    o = rules_tx_eval(tx, RULES_STAGE_CONTENT, &f, m);
    if (o == NULL) {
        /* the tx is still usable: memory back, a fresh message, the same stage */
        assert_true(util_alloc_failed() > 0);
        util_alloc_fail_after(-1);
        rules_msg_free(m);
        m = rules_msg_parse(message, strlen(message));
        assert_non_null(m);
        o = rules_tx_eval(tx, RULES_STAGE_CONTENT, &f, m);
        assert_non_null(o);
        res->score = o->score;
        res->verdict = o->verdict;
        res->nhits = rules_tx_hit_count(tx);
        snprintf(res->status, sizeof(res->status), "%s", o->report_status);
        rc = 1; /* a retried content stage */
        goto out;
    }
    res->score = o->score;
    res->verdict = o->verdict;
    res->nhits = rules_tx_hit_count(tx);
    snprintf(res->status, sizeof(res->status), "%s", o->report_status);
    rc = 0;
out:
    if (rc < 0)
        assert_true(util_alloc_failed() > 0);
    rules_msg_free(m);
    rules_tx_free(tx);
    rules_tx_free(conn);
    rules_unref(r);
    return rc;
}

static void test_every_failure(void **state)
{
    (void)state;
    struct result ref = {0};
    util_alloc_fail_after(-1);
    assert_int_equal(run(&ref), 0);
    /* the scenario means something: each stage hit, the content scored */
    assert_int_equal(ref.rcpt_verdict[0], RULES_REJECT);
    assert_int_equal(ref.rcpt_verdict[1], RULES_CONTINUE);
    assert_true(ref.score > 10);
    assert_non_null(strstr(ref.status, "B8"));
    assert_non_null(strstr(ref.status, "URI1"));
    assert_non_null(strstr(ref.status, "NET"));

    size_t failed_runs = 0, retried = 0;
    long n;
    for (n = 0; n < 200000; n++) {
        struct result res = {0};
        util_alloc_fail_after(n);
        int rc = run(&res);
        bool injected = util_alloc_failed() > 0;
        util_alloc_fail_after(-1);
        if (rc < 0) {
            failed_runs++;
            continue;
        }
        if (rc == 1) {
            retried++;
            /* what the envelope stages found still counts: same result */
            assert_true(fabs(res.score - ref.score) < 1e-9);
            assert_int_equal(res.verdict, ref.verdict);
            assert_string_equal(res.status, ref.status);
            continue;
        }
        assert_true(fabs(res.score - ref.score) < 1e-9);
        assert_int_equal(res.verdict, ref.verdict);
        assert_int_equal(res.nhits, ref.nhits);
        assert_string_equal(res.status, ref.status);
        if (!injected)
            break; /* a whole run within n allocations: every point was tried */
    }
    assert_true(n < 200000);
    assert_true(failed_runs > 100); /* the load and every stage allocate */
    assert_true(retried > 0);
    print_message("%ld allocation points, %zu failed runs, %zu retried content stages\n", n,
                  failed_runs, retried);
}

/* A load out of memory from the start: the error list says so. */
static void test_load_nomem(void **state)
{
    (void)state;
    for (long n = 0; n < 3; n++) {
        struct rules_errors errs = {0};
        struct rules *r = (struct rules *)&errs; /* must be reset to NULL */
        util_alloc_fail_after(n);
        int rc = rules_load_buffer("t.rules", rules_src, strlen(rules_src), NULL, &r, &errs);
        util_alloc_fail_after(-1);
        assert_int_equal(rc, -1);
        assert_null(r);
        assert_true(errs.nomem);
        rules_errors_free(&errs);
    }
    /* an error list that still has room says "out of memory" at the file */
    struct rules_errors errs = {0};
    struct rules *r = NULL;
    assert_int_equal(rules_load_buffer("x.rules", "rule A helo /(/\n", 16, NULL, &r, &errs), -1);
    size_t before = errs.n;
    util_alloc_fail_after(0);
    assert_int_equal(rules_load_buffer("x.rules", rules_src, strlen(rules_src), NULL, &r, &errs),
                     -1);
    util_alloc_fail_after(-1);
    assert_int_equal(errs.n, before);
    assert_true(errs.nomem);
    rules_errors_free(&errs);
    /* and with memory, formatting errors works as before */
    struct rules_error e = {.file = "f", .line = 3, .col = 0, .msg = "m"};
    char *s = rules_error_format(&e);
    assert_string_equal(s, "f:3: m");
    free(s);
    util_alloc_fail_after(0);
    assert_null(rules_error_format(&e));
    util_alloc_fail_after(-1);
}

/* SpamAssassin's files, loaded with every allocation failing in turn: the
 * parser, the templates, the conversion and the report either give the
 * reference set or fail with "out of memory" only, never abort or leak. */
static const char sa_cf[] = "ifplugin Mail::SpamAssassin::Plugin::ReplaceTags\n"
                            "replace_tag A (?:a|4)\n"
                            "body SA_T /<A>b<A>/i\n"
                            "replace_rules SA_T\n"
                            "endif\n"
                            "ifplugin Mail::SpamAssassin::Plugin::URIDNSBL\n"
                            "header SA_RBL eval:check_uridnsbl('a', 'b.')\n"
                            "endif\n"
                            "header SA_SUBJ Subject =~ /money/i\n"
                            "header SA_TOCC ToCc =~ /bob/ [if-unset: x]\n"
                            "header SA_EV eval:check_for_missing_to_header()\n"
                            "body __SA_W /\\bfree\\b/i\n"
                            "tflags __SA_W multiple maxhits=5\n"
                            "meta SA_META (__SA_W * 2 + SA_SUBJ) / 2 >= 1.5 && !SA_RBL\n"
                            "score SA_META 2 2 2 2\n"
                            "describe SA_META meta of the test\n"
                            "body SA_BAD /(/\n"
                            "report_safe 0\n";

static int sa_run(const char *dir, size_t *loaded, double *score)
{
    const char *dirs[] = {dir};
    struct rules_sa_opts o = {.dirs = dirs, .ndirs = 1};
    struct rules_errors errs = {0};
    struct rules_sa_report rep = {0};
    struct rules *r = NULL;
    int rc = rules_load_sa(NULL, 0, &o, NULL, &r, &errs, &rep);
    if (rc != 0) {
        assert_null(r);
        assert_true(errs.nomem);
        for (size_t i = 0; i < errs.n; i++)
            assert_string_equal(errs.v[i].msg, "out of memory");
        rules_errors_free(&errs);
        rules_sa_report_free(&rep);
        return -1;
    }
    *loaded = rep.loaded;
    rules_sa_report_free(&rep);
    struct rules_msg *m = rules_msg_parse(message, strlen(message));
    struct rules_tx *tx = m ? rules_tx_new(r) : NULL;
    const struct rules_outcome *out = tx ? rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m) : NULL;
    rc = out ? 0 : -1;
    if (out != NULL)
        *score = out->score;
    rules_tx_free(tx);
    rules_msg_free(m);
    rules_unref(r);
    return rc;
}

static void test_sa_every_failure(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_rules_nomem.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[100];
    snprintf(path, sizeof(path), "%s/10_t.cf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(sa_cf, f);
    fclose(f);
    size_t ref_loaded = 0, loaded = 0;
    double ref_score = 0, score = 0;
    util_alloc_fail_after(-1);
    assert_int_equal(sa_run(dir, &ref_loaded, &ref_score), 0);
    /* SA_T, SA_SUBJ, SA_TOCC, SA_EV (run natively), __SA_W, SA_META: the
     * scenario means something */
    assert_int_equal(ref_loaded, 6);
    assert_true(ref_score > 3);
    long n;
    size_t failed = 0;
    for (n = 0; n < 100000; n++) {
        util_alloc_fail_after(n);
        int rc = sa_run(dir, &loaded, &score);
        bool injected = util_alloc_failed() > 0;
        util_alloc_fail_after(-1);
        if (rc < 0) {
            assert_true(injected);
            failed++;
            continue;
        }
        assert_int_equal(loaded, ref_loaded);
        assert_true(fabs(score - ref_score) < 1e-9);
        if (!injected)
            break;
    }
    assert_true(n < 100000 && failed > 50);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_failure),
        cmocka_unit_test(test_load_nomem),
        cmocka_unit_test(test_sa_every_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
