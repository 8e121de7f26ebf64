/*
 * Unit tests for SpamAssassin's rules in the engine (rules_load_sa): .cf
 * snippets written for these tests, in a folder of their own, loaded beside
 * native rules and run over small messages: header fields joined as
 * SpamAssassin joins them (two Received fields, ToCc, an absent field and
 * [if-unset:], :addr, :raw, exists:, !~), metas with Perl's arithmetic and
 * && / || values, hit counts of `tflags multiple` and maxhits, rules that
 * are absent counted as 0; every reason a rule is skipped, with its count
 * (unknown eval, mimeheader, score 0, network test, pseudo-header, regex
 * modifier, PCRE2 error, a native rule of the same name, a meta left with
 * nothing); score sets; and the report's files and warnings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rules/rules.h"

static char dir[] = "/tmp/test_sa_eval.XXXXXX";
#include "tests/unit/sa_rules_fixture.h"

static const char *msg1 = "Received: from one.example\r\n"
                          "\tby mx.example\r\n"
                          "Received: from two.example\r\n"
                          "From: \"Alice\" <alice@example.org>\r\n"
                          "To: bob@example.net\r\n"
                          "Cc: carol@example.com\r\n"
                          "Subject: Cheap offer\r\n"
                          "\r\n"
                          /* paragraphs: SpamAssassin's body has one element each */
                          "line one\r\n\r\n"
                          "line two\r\n\r\n"
                          "line three\r\n\r\n"
                          "line four\r\n";

static void test_headers(void **state)
{
    (void)state;
    write_file("10_h.cf",
               "header JOINED Received =~ /one\\.example\\s+by mx\\.example\\nfrom two/\n"
               "header ANCHOR Received =~ /^from two/\n"
               "header ANCHOR_M Received =~ /^from two/m\n"
               "header RAW_FOLD Received:raw =~ /example by mx/\n"
               "header TOCC ToCc =~ /bob\\@example\\.net\\ncarol\\@/\n"
               "header ABSENT X-Nothing =~ /^$/\n"
               "header UNSET X-Nothing =~ /^nothing here$/ [if-unset: nothing here]\n"
               "header NOT_SUBJ Subject !~ /cheap/i\n"
               "header NOT_ABSENT X-Nothing !~ /x/\n"
               "header FROM_ADDR From:addr =~ /^alice\\@example\\.org$/\n"
               "header FROM_NAME From:name =~ /^Alice$/\n"
               "header HAS_SUBJ exists:Subject\n"
               "header HAS_NONE exists:X-Nothing\n"
               "header ALL_H ALL =~ /^Subject: Cheap/m\n"
               "header LAST Received:last =~ /^from two/\n"
               "header FIRST Received:first =~ /two/\n"
               "score JOINED 1.5\n");
    struct loaded l = load(NULL, false);
    double score = 0;
    char *h = hits(l.r, msg1, &score);
    const char *want[] = {"JOINED",     "ANCHOR_M",  "RAW_FOLD",  "TOCC",     "ABSENT", "UNSET",
                          "NOT_ABSENT", "FROM_ADDR", "FROM_NAME", "HAS_SUBJ", "ALL_H",  "LAST"};
    const char *miss[] = {"ANCHOR", "NOT_SUBJ", "HAS_NONE", "FIRST"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!has(h, want[i]))
            fail_msg("%s did not hit:%s", want[i], h);
    for (size_t i = 0; i < sizeof(miss) / sizeof(miss[0]); i++)
        if (has(h, miss[i]))
            fail_msg("%s hit:%s", miss[i], h);
    /* the default score is 1.0, JOINED's own 1.5 */
    assert_true(score == 1.5 + 11.0);
    assert_int_equal(l.rep.loaded, 16);
    assert_int_equal(l.rep.defined, 16);
    assert_int_equal(l.rep.nskipped, 0);
    unload(&l);
    unlink(write_file("10_h.cf", ""));
}

static void test_meta_and_counts(void **state)
{
    (void)state;
    write_file("10_m.cf", "body __LINE /^line/m\n"
                          "tflags __LINE multiple\n"
                          "body __LINE2 /^line/m\n"
                          "tflags __LINE2 multiple maxhits=2\n"
                          "body __ONE /one/\n"
                          "body __NONE /absent text/\n"
                          "meta FEW __LINE < 2\n"
                          "meta FOUR __LINE == 4\n"
                          "meta CAPPED __LINE2 == 2\n"
                          "meta ARITH (__LINE * 3 - 2) / 5 == 2\n"
                          "meta DECIMAL __LINE / 8 >= 0.5 && __LINE / 8 < 0.51\n"
                          "meta PERL_AND (__ONE && __LINE) == 4\n"
                          "meta PERL_OR (__NONE || __LINE) + 1 == 5\n"
                          "meta UNDEF_ZERO !__NOT_DEFINED_ANYWHERE && __ONE\n"
                          "meta NEG -__ONE + 2 == 1\n"
                          "meta PREC __ONE + __ONE * 2 == 3 && !__NONE\n"
                          "meta META_OF_META FOUR && ARITH\n"
                          "score FOUR 2\n");
    struct loaded l = load(NULL, false);
    char *h = hits(l.r, msg1, NULL);
    const char *want[] = {"FOUR",    "CAPPED",     "ARITH", "DECIMAL", "PERL_AND",
                          "PERL_OR", "UNDEF_ZERO", "NEG",   "PREC",    "META_OF_META"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!has(h, want[i]))
            fail_msg("%s did not hit:%s", want[i], h);
    assert_false(has(h, "FEW"));
    assert_false(has(h, "__NONE"));
    unload(&l);
    unlink(write_file("10_m.cf", ""));
}

static void test_skip_reasons(void **state)
{
    (void)state;
    char *native =
        strdup(write_file("@native.rules", "rule SAME header Subject /Cheap/ score 3\n"));
    write_file("10_s.cf", "header EV1 eval:check_razor2()\n"
                          "header EV2 eval:check_razor2()\n"
                          "body EV3 eval:plaintext_body_sig_ratio('4')\n"
                          "mimeheader MH Content-Type =~ /pdf/\n"
                          "body ZERO /line/\n"
                          "score ZERO 0\n"
                          "body NETRULE /line/\n"
                          "tflags NETRULE net\n"
                          "header RELAYS ALL-EXTERNAL:raw =~ /x/\n"
                          "body GFLAG /line/g\n"
                          "body BADRE /(/\n"
                          "header SAME Subject =~ /never/\n"
                          "meta LOST ZERO || NETRULE\n"
                          "meta LOST2 LOST && !NETRULE\n"
                          "meta KEPT MH || __LIVE\n"
                          "meta LACKS __LIVE && !EV1\n"
                          "body __LIVE /line/\n"
                          "meta TERNARY __LIVE ? 1 : 0\n"
                          "ifplugin Mail::SpamAssassin::Plugin::Pyzor\n"
                          "body PYZOR_LIKE /x/\n"
                          "full PYZOR_CHECK eval:check_pyzor()\n"
                          "endif\n"
                          "bogus_setting 1\n"
                          "body BROKEN\n");
    struct loaded l = load(native, false);
    const struct rules_sa_report *rep = &l.rep;
    assert_int_equal(skipped(rep, "unknown eval function check_razor2"), 2);
    assert_int_equal(skipped(rep, "unknown eval function plaintext_body_sig_ratio"), 1);
    /* mimeheader rules load (MIMEHeader is emulated) */
    assert_int_equal(skipped(rep, "unsupported construct: mimeheader"), 0);
    assert_int_equal(skipped(rep, "disabled: score 0"), 1);
    assert_int_equal(skipped(rep, "network test, network tests off"), 1);
    assert_int_equal(skipped(rep, "unsupported construct: ALL-EXTERNAL with a modifier"),
                     1);
    assert_int_equal(skipped(rep, "unsupported construct: regex modifier g"), 1);
    assert_int_equal(skipped(rep, "pattern error: missing closing parenthesis"), 1);
    assert_int_equal(skipped(rep, "a native rule has the same name"), 1);
    assert_int_equal(skipped(rep, "meta: every rule it uses is absent or skipped"), 2);
    /* SpamAssassin would run EV1: without it LACKS's value is unknown */
    assert_int_equal(skipped(rep, "meta: uses an eval test smtpgate lacks"), 1);
    assert_int_equal(skipped(rep, "unsupported construct: the ? : operator in meta"), 1);
    assert_int_equal(skipped(rep, "plugin Mail::SpamAssassin::Plugin::Pyzor is not emulated"), 2);
    /* 22 rule definitions, BROKEN not one of them; KEPT, __LIVE and MH load */
    assert_int_equal(rep->defined, 18);
    assert_int_equal(rep->loaded, 3);
    size_t total = 0;
    for (size_t i = 0; i < rep->nskipped; i++)
        total += rep->skipped[i].count;
    assert_int_equal(total + rep->loaded, rep->defined);
    /* the first rule of a reason is named */
    for (size_t i = 0; i < rep->nskipped; i++)
        if (strcmp(rep->skipped[i].what, "disabled: score 0") == 0)
            assert_string_equal(rep->skipped[i].first, "ZERO");
    /* the eval functions, by name, also those of plugins not emulated */
    bool pyzor = false, missing = false;
    for (size_t i = 0; i < rep->nevals; i++) {
        pyzor = pyzor || strcmp(rep->evals[i].what, "check_pyzor") == 0;
        if (strcmp(rep->evals[i].what, "check_razor2") == 0)
            missing = rep->evals[i].count == 2;
    }
    assert_true(pyzor && missing);
    assert_int_equal(rep->nignored, 1);
    assert_string_equal(rep->ignored[0].what, "bogus_setting");
    assert_int_equal(rep->warnings.n, 1);
    assert_int_equal(rep->warnings.v[0].line, 24);
    assert_int_equal(rep->nfiles, 1);
    /* the native SAME wins, with its own score; KEPT hits through __LIVE */
    double score = 0;
    char *h = hits(l.r, msg1, &score);
    assert_true(has(h, "SAME") && has(h, "KEPT"));
    assert_true(score == 3 + 1);
    unload(&l);
    /* the tflags of a loaded rule smtpgate does not follow are said */
    write_file("10_s.cf", "body __LIVE /line/\ntflags __LIVE multiple nosubject domains_only\n"
                          "meta KEPT __LIVE > 1\ntflags KEPT net_but_not\n");
    l = load(native, false);
    rep = &l.rep;
    assert_int_equal(rep->loaded, 2);
    assert_int_equal(rep->nignored, 2);
    assert_string_equal(rep->ignored[0].what, "tflags domains_only");
    assert_string_equal(rep->ignored[0].first, "__LIVE");
    assert_string_equal(rep->ignored[1].what, "tflags net_but_not");
    assert_true(has(hits(l.r, msg1, NULL), "KEPT"));
    unload(&l);
    /* network tests on: the net rule runs, scored from set 1 */
    write_file("10_s.cf", "body NETRULE /line/\ntflags NETRULE net\nscore NETRULE 0 2.5 0 3\n"
                          "body LOCAL /line/\nscore LOCAL 1 0 1 0\n");
    l = load(NULL, true);
    assert_int_equal(l.rep.score_set, 1);
    h = hits(l.r, msg1, &score);
    assert_true(has(h, "NETRULE") && !has(h, "LOCAL"));
    assert_true(score == 2.5);
    unload(&l);
    unlink(write_file("10_s.cf", ""));
    free(native);
}

/* Metas SpamAssassin cannot solve (a loop) are left out, and so are the
 * metas that use them; the load goes on. */
static void test_meta_loop(void **state)
{
    (void)state;
    write_file("10_l.cf", "body __LIVE /line/\n"
                          "meta LOOP1 LOOP2 && __LIVE\n"
                          "meta LOOP2 LOOP1 || __LIVE\n"
                          "meta USES LOOP1 || __LIVE\n"
                          "meta FINE __LIVE\n");
    struct loaded l = load(NULL, false);
    assert_int_equal(skipped(&l.rep, "meta: circular dependency"), 1);
    assert_int_equal(skipped(&l.rep, "meta: uses a meta that cannot run"), 2);
    assert_int_equal(l.rep.defined, 5);
    assert_int_equal(l.rep.loaded, 2);
    char *h = hits(l.r, msg1, NULL);
    assert_true(has(h, "FINE"));
    assert_false(has(h, "LOOP1") || has(h, "LOOP2") || has(h, "USES"));
    unload(&l);
    /* a native meta may not use a SpamAssassin meta that cannot run */
    char *native = strdup(write_file("@n2.rules", "rule MINE meta USES && FINE score 1\n"));
    const char *dirs[] = {sadir};
    struct rules_sa_opts o = {.dirs = dirs, .ndirs = 1};
    struct rules_errors errs = {0};
    struct rules *r = NULL;
    const char *paths[] = {native};
    assert_int_equal(rules_load_sa(paths, 1, &o, NULL, &r, &errs, NULL), -1);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.v[0].msg, "meta MINE uses SpamAssassin's USES, which cannot run here");
    rules_errors_free(&errs);
    free(native);
    /* nor one of SpamAssassin's rules skipped before (here: by its eval) */
    write_file("10_l.cf", "header EVR eval:check_razor2()\nbody OKR /line/\n");
    native = strdup(write_file("@n2.rules", "rule MINE2 meta EVR || OKR score 1\n"));
    paths[0] = native;
    assert_int_equal(rules_load_sa(paths, 1, &o, NULL, &r, &errs, NULL), -1);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.v[0].msg, "meta MINE2 uses SpamAssassin's EVR, which cannot run "
                                       "here (see smtpgate-rules lint --sa)");
    rules_errors_free(&errs);
    free(native);
    unlink(write_file("10_l.cf", ""));
}

static void test_no_files(void **state)
{
    (void)state;
    const char *dirs[] = {sadir};
    struct rules_sa_opts o = {.dirs = dirs, .ndirs = 1};
    struct rules_errors errs = {0};
    struct rules *r = NULL;
    struct rules_sa_report rep = {0};
    assert_int_equal(rules_load_sa(NULL, 0, &o, NULL, &r, &errs, &rep), -1);
    assert_null(r);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.v[0].msg, "no SpamAssassin rule files"));
    rules_errors_free(&errs);
    rules_sa_report_free(&rep);
    const char *nodir[] = {"/nonexistent/sa"};
    o.dirs = nodir;
    assert_int_equal(rules_load_sa(NULL, 0, &o, NULL, &r, &errs, &rep), -1);
    assert_non_null(strstr(errs.v[0].msg, "cannot read the folder /nonexistent/sa"));
    rules_errors_free(&errs);
    rules_sa_report_free(&rep);
}

static void test_native_sa_syntax(void **state)
{
    (void)state;
    const char *src = "header SUBJ Subject =~ /x/\nrule R header Subject !~ /x/\n";
    struct rules_errors errs = {0};
    struct rules *r = NULL;
    assert_int_equal(rules_load_buffer("n.rules", src, strlen(src), NULL, &r, &errs), -1);
    assert_int_equal(errs.n, 2);
    assert_int_equal(errs.v[0].line, 1);
    assert_non_null(strstr(errs.v[0].msg, "\"header\" is SpamAssassin's syntax"));
    assert_int_equal(errs.v[1].line, 2);
    assert_int_equal(errs.v[1].col, 23);
    assert_non_null(strstr(errs.v[1].msg, "\"!~\" is SpamAssassin's syntax"));
    assert_non_null(strstr(errs.v[1].msg, "!/re/"));
    rules_errors_free(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),      cmocka_unit_test(test_meta_and_counts),
        cmocka_unit_test(test_skip_reasons), cmocka_unit_test(test_meta_loop),
        cmocka_unit_test(test_no_files),     cmocka_unit_test(test_native_sa_syntax),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
