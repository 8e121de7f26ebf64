/*
 * Unit tests for the rule file parser and compiler: every diagnostic with its
 * line and column, recovery after an error (every statement's first error is
 * reported), continuation lines and comments, pattern delimiters and flags,
 * strings and escapes, includes (relative, loops, depth), file-level shadow,
 * name uniqueness across files, meta resolution (unknown names, loops,
 * shadow operands, stages) and the rules' own examples.
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

static struct rules *load_ok(const char *src)
{
    struct rules_errors errs = {0};
    struct rules *r = NULL;
    int rc = rules_load_buffer("t.rules", src, strlen(src), NULL, &r, &errs);
    for (size_t i = 0; i < errs.n; i++) {
        char *s = rules_error_format(&errs.v[i]);
        print_message("unexpected: %s\n", s);
        free(s);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(errs.n, 0);
    rules_errors_free(&errs);
    return r;
}

/* The source must be refused with an error at line:col whose text has want. */
static void expect_error(const char *src, unsigned line, unsigned col, const char *want)
{
    struct rules_errors errs = {0};
    struct rules *r = (struct rules *)1;
    int rc = rules_load_buffer("t.rules", src, strlen(src), NULL, &r, &errs);
    bool found = false;
    for (size_t i = 0; i < errs.n; i++) {
        const struct rules_error *e = &errs.v[i];
        if (e->line == line && e->col == col && strstr(e->msg, want) != NULL)
            found = true;
    }
    if (!found) {
        print_message("source: %s\nwanted %u:%u: %s\n", src, line, col, want);
        for (size_t i = 0; i < errs.n; i++) {
            char *s = rules_error_format(&errs.v[i]);
            print_message("  got %s\n", s);
            free(s);
        }
    }
    assert_int_equal(rc, -1);
    assert_null(r);
    assert_true(found);
    assert_string_equal(errs.v[0].file, "t.rules");
    rules_errors_free(&errs);
}

struct case_ {
    const char *src;
    unsigned line, col;
    const char *msg;
};

static const struct case_ syntax_cases[] = {
    {"rule A eval:check_for_missing_to_header()\n", 1, 8,
     "\"eval:\" is SpamAssassin's syntax: load the file as SpamAssassin's"},
    {"rule B header exists:Date\n", 1, 15,
     "\"exists:Date\" is SpamAssassin's syntax: load the file as SpamAssassin's "
     "(spamassassin_local), or write: header Date exists"},
    {"rule C header From:first /x/\n", 1, 19, "\":first\" is SpamAssassin's syntax"},
    {"rule D header Subject /x/ [if-unset: x]\n", 1, 27,
     "\"[if-unset: ...]\" is SpamAssassin's syntax"},
    {"rule E body /x/ score 1 tflags multiple\n", 1, 25,
     "\"tflags\" is SpamAssassin's syntax: load the file as SpamAssassin's (spamassassin_local), "
     "or write tflags multiple maxhits=N as the clause multiple N"},
    {"rule M helo /x/ multiple\n", 1, 17, "multiple counts the matches of a pattern"},
    {"rule M body !/x/ multiple\n", 1, 18, "multiple counts the matches of a pattern"},
    {"rule M header To:addr /x/ multiple\n", 1, 27, "multiple counts the matches of a pattern"},
    {"rule M body /x/ multiple 0\n", 1, 26, "multiple takes a whole number of matches, 1 to 10000"},
    {"rule M body /x/ multiple 2.5\n", 1, 26, "multiple takes a whole number"},
    {"rule M body /x/ multiple multiple\n", 1, 26, "multiple given twice"},
    {"rule A body /x/ score 1\nscore A\n", 2, 8, "expected a number (score)"},
    {"rule A body /x/ score 1\nscore\n", 2, 6, "score takes a rule name and a number"},
    {"rule A body /x/ score 1\nscore A 1 2 3 4\n", 2, 11,
     "one score here: SpamAssassin's four score sets"},
    {"rule A body /x/ score 1\nscore A 1 more\n", 2, 11, "score takes a rule name and one number"},
    {"rule __A body /x/\nscore __A 1\n", 2, 7, "only feeds meta rules: no score"},
    {"score NOPE 1\n", 1, 1, "score for unknown rule NOPE"},
    {"bogus x\n", 1, 1, "unknown statement \"bogus\""},
    {"  rule A body /x/\n", 1, 3, "indented line without a statement"},
    {"rule\n", 1, 5, "expected a rule name after rule"},
    {"rule 9A body /x/\n", 1, 6, "bad rule name \"9A\""},
    {"rule A-B body /x/\n", 1, 6, "bad rule name"},
    {"rule A\n", 1, 7, "expected a target after the rule name"},
    {"rule A hedaer /x/\n", 1, 8, "unknown target \"hedaer\""},
    {"rule A body:raw /x/\n", 1, 12, "only a header field"},
    {"rule A headers:addr /x/\n", 1, 15, "headers takes only the :raw mode"},
    {"rule A header\n", 1, 14, "expected a header field name after header"},
    {"rule A header Sub\x01ject /x/\n", 1, 15, "bad header field name"},
    {"rule A header Subject:bogus /x/\n", 1, 22, "unknown header mode \":bogus\""},
    {"rule A header ALL:addr /x/\n", 1, 18, "header ALL takes only the :raw mode"},
    {"rule A body\n", 1, 12, "expected a pattern after the target"},
    {"rule A body x\n", 1, 13, "expected a pattern /.../"},
    {"rule A body /abc\n", 1, 13, "unterminated pattern (no closing /)"},
    {"rule A body m{abc\n", 1, 13, "unterminated pattern (no closing })"},
    {"rule A body //\n", 1, 13, "empty pattern"},
    {"rule A body /x/q\n", 1, 16, "unknown pattern flag 'q'"},
    {"rule A body /x/i,\n", 1, 17, "unexpected text after the pattern"},
    {"rule A body ! /x/\n", 1, 13, "'!' must stand right before the pattern"},
    {"rule A body /(/\n", 1, 15, "bad pattern: missing closing parenthesis"},
    {"rule A client_addr 192.0.2.0/33\n", 1, 20, "bad address or network"},
    {"rule A client_addr 192.0.2.0/24,,10.0.0.1\n", 1, 33, "bad address or network"},
    {"rule A size 100\n", 1, 13, "size needs a comparison"},
    {"rule A size > lots\n", 1, 15, "expected a size in octets"},
    {"rule A body /x/ score\n", 1, 22, "expected a number (score)"},
    {"rule A body /x/ score 1e5\n", 1, 23, "expected a number (score)"},
    {"rule A body /x/ score 1 score 2\n", 1, 25, "score given twice"},
    {"rule A body /x/ describe \"a\" describe \"b\"\n", 1, 30, "describe given twice"},
    {"rule A body /x/ describe x\n", 1, 26, "expected a quoted string (describe)"},
    {"rule A body /x/ describe \"abc\n", 1, 26, "unterminated string"},
    {"rule A body /x/ describe \"a\\qb\"\n", 1, 28, "unknown escape \\q"},
    {"rule A body /x/ describe \"a\\x4\"\n", 1, 28, "\\x needs two hex digits"},
    {"rule A body /x/ describe \"a\\x00\"\n", 1, 28, "NUL octet in string"},
    {"rule A body /x/ describe \"a\\nb\"\n", 1, 26, "describe must be one line"},
    {"rule A body /x/ frobnicate\n", 1, 17, "unknown clause \"frobnicate\""},
    {"rule A body /x/ \"text\"\n", 1, 17, "a string here needs a clause before it"},
    {"rule A body /x/ reject accept\n", 1, 24, "a rule takes one of accept, reject"},
    {"rule A body /x/ reject \"450 4.7.1 no\"\n", 1, 24, "must start with a 5xx code"},
    {"rule A body /x/ tempfail \"550 5.7.1 no\"\n", 1, 26, "must start with a 4xx code"},
    {"rule A body /x/ reject \"550 5.7.1\"\n", 1, 24, "followed by a space and a text"},
    {"rule A body /x/ reject \"550 4.7.1 no\"\n", 1, 24, "of the code's class"},
    {"rule A body /x/ reject \"550 5.7 no\"\n", 1, 24, "bad enhanced code"},
    {"rule A body /x/ reject \"550 5.7.1234 no\"\n", 1, 24, "bad enhanced code"},
    {"rule A body /x/ reject \"550-5.7.1 no\"\n", 1, 24, "followed by a space and an enhanced"},
    {"rule A body /x/ reject \"550 5.7.1 a\\tb\"\n", 1, 24, "text must be printable"},
    {"rule A body /x/ add-header \"NoColon\"\n", 1, 28, "add-header: expected \"Name: value\""},
    {"rule A body /x/ add-header \"Bad Name: v\"\n", 1, 28, "add-header: bad field name"},
    {"rule A body /x/ add-header \"X-A:  \"\n", 1, 28, "add-header: empty value"},
    {"rule A body /x/ add-header \"X-A: a\\x01\"\n", 1, 28, "value must be printable"},
    {"rule A header X exists must-hit \"a\"\n", 1, 24, "examples need a pattern"},
    {"rule __A body /x/ score 1\n", 1, 1, "only feeds meta rules"},
    {"rule A meta\n", 1, 12, "expected a pattern after the target"},
    {"rule A meta B &&\n", 1, 17, "meta expression ends too early"},
    {"rule A meta (B\n", 1, 15, "expected ')' to close the '(' at column 13"},
    {"rule A meta B && *\n", 1, 18, "expected a rule name, a number"},
    {"rule A meta 99999999 > B\n", 1, 13, "number too large"},
    {"rule A meta 1. > B\n", 1, 13, "a decimal needs digits after the point"},
    {"threshold\n", 1, 10, "threshold is tag, quarantine or reject"},
    {"threshold spam 5\n", 1, 11, "threshold is tag, quarantine or reject"},
    {"threshold tag\n", 1, 14, "expected a number (threshold score)"},
    {"threshold tag 5 reject\n", 1, 17, "threshold tag takes add-header"},
    {"threshold reject 5 \"550 5.7.1 a\" \"550 5.7.1 b\"\n", 1, 34, "takes one reply"},
    {"threshold quarantine 5 \"a\" \"b\"\n", 1, 28, "takes one reason"},
    {"threshold reject 5 \"450 4.7.1 a\"\n", 1, 20, "threshold reject reply: must start"},
    {"threshold tag 5\nthreshold tag 6\n", 2, 1, "threshold tag already set at t.rules:1"},
    {"include \"x.rules\"\n", 1, 1, "include is not available here"},
    {"include x\n", 1, 9, "expected a quoted string (include file name)"},
    {"shadow now\n", 1, 8, "shadow stands alone"},
    {"rule A body /x/\x00\n", 1, 16, "NUL octet in rule file"},
    /* continuation: the error is on the line where it is */
    {"rule A body /x/\n    score 1\n    bogus 2\n", 3, 5, "unknown clause \"bogus\""},
};

static void test_syntax_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(syntax_cases) / sizeof(syntax_cases[0]); i++) {
        const struct case_ *c = &syntax_cases[i];
        struct rules_errors errs = {0};
        struct rules *r = NULL;
        /* NUL case: strlen would stop early */
        size_t len = strlen(c->src);
        if (strstr(c->msg, "NUL octet in rule") != NULL)
            len = 17;
        int rc = rules_load_buffer("t.rules", c->src, len, NULL, &r, &errs);
        bool found = false;
        for (size_t k = 0; k < errs.n; k++)
            if (errs.v[k].line == c->line && errs.v[k].col == c->col &&
                strstr(errs.v[k].msg, c->msg) != NULL)
                found = true;
        if (!found || rc != -1) {
            print_message("case %zu: %s wanted %u:%u %s\n", i, c->src, c->line, c->col, c->msg);
            for (size_t k = 0; k < errs.n; k++) {
                char *s = rules_error_format(&errs.v[k]);
                print_message("  got %s\n", s);
                free(s);
            }
        }
        assert_int_equal(rc, -1);
        assert_null(r);
        assert_true(found);
        rules_errors_free(&errs);
    }
}

static void test_compile_errors(void **state)
{
    (void)state;
    expect_error("rule A body /x/\nrule A helo /y/\n", 2, 1, "rule A already defined at t.rules:1");
    expect_error("rule A meta B || C\nrule B body /x/\n", 1, 18, "meta A uses unknown rule C");
    expect_error("rule A meta symbol() score 1\n", 1, 20, "expected a symbol name in symbol( )");
    expect_error("rule A meta symbol(9X) score 1\n", 1, 20, "expected a symbol name");
    expect_error("rule A meta symbol(SPF_FAIL score 1\n", 1, 29,
                 "expected ')' to close symbol( at column 13");
    expect_error("rule A meta B\nrule B meta A\n", 2, 13, "meta rules form a loop: B uses A");
    expect_error("rule A meta A\n", 1, 13, "meta rules form a loop");
    expect_error("rule A meta 1 > 0\n", 1, 1, "meta A uses no rule");
    expect_error("rule S body /x/ shadow\nrule M meta S score 1\n", 2, 13,
                 "meta M enforces but uses shadow rule S");
    expect_error("threshold tag 10\nthreshold reject 5\n", 1, 1,
                 "threshold tag (10) is above threshold reject (5)");
    expect_error("rule A body /a{2,1}/\n", 1, 19, "bad pattern");
}

/* One run reports the first error of every statement, and compile errors of
 * the rules that did parse. */
static void test_every_error_reported(void **state)
{
    (void)state;
    const char *src = "rule A body /x/ score 1\n"
                      "rule A helo /(/\n"
                      "rule B meta A && C\n"
                      "threshold tag x\n"
                      "   still part of the threshold\n"
                      "rule C header Subject /x/ reject \"450 4.7.1 no\"\n"
                      "rule D meta A && C\n";
    struct rules_errors errs = {0};
    struct rules *r = NULL;
    assert_int_equal(rules_load_buffer("t.rules", src, strlen(src), NULL, &r, &errs), -1);
    /* 4: threshold; 6: reply; 2: duplicate and pattern.  C failed to parse, so
     * the metas using it are not told "unknown". */
    assert_int_equal(errs.n, 4);
    for (size_t i = 0; i < errs.n; i++)
        assert_null(strstr(errs.v[i].msg, "unknown rule"));
    /* in the order of the file, whichever pass found them */
    unsigned want[][2] = {{2, 1}, {2, 15}, {4, 15}, {6, 34}};
    for (size_t i = 0; i < errs.n; i++) {
        assert_int_equal(errs.v[i].line, want[i][0]);
        assert_int_equal(errs.v[i].col, want[i][1]);
    }
    rules_errors_free(&errs);
}

static void test_grammar(void **state)
{
    (void)state;
    struct rules *r =
        load_ok("# a comment line\n"
                "\n"
                "rule A body /x#y/i   # a comment after the pattern\n"
                "    score 1.5\n"
                "# a comment inside the statement\n"
                "\n"
                "    describe \"quote \\\" and backslash \\\\\"\n"
                "rule B header Subject:raw m{a/b}ms score -0.5\n"
                "rule C header From:addr m!x!x\n"
                "rule D client_addr 192.0.2.0/24,2001:db8::/32,198.51.100.7 accept\n"
                "rule E size >= 10k\n"
                "rule F meta (A + B + C >= 2) && !D || E score 2\n"
                "rule G header ALL /x/\n"
                "rule H headers:raw /x/ discard\n"
                "rule I rawbody /x/u quarantine \"why\"\n"
                "rule J uri /x/ tempfail \"421 4.7.0 later\"\n"
                "rule K full /x/ reject\n"
                "rule L attachment_type /x/ add-header \"X-A: b\" add-header \"X-B: c\"\n"
                "rule M attachment_name /x/ shadow\n"
                "rule __N helo /x/\n"
                "rule O mail_from /x/\n"
                "rule P rcpt_to !/x/\n"
                "rule Q client_name m(x(y))\n"
                "rule R header X-Y !exists\n"
                "threshold tag 5 add-header \"X-Spam-Flag: YES\" subject-prefix \"[S] \"\n"
                "threshold quarantine 8 \"score\"\n"
                "threshold reject 10 \"550 5.7.1 no\"\n");
    assert_int_equal(rules_count(r), 18);
    assert_string_equal(rules_rule_name(r, 0), "A");
    assert_true(rules_need_headers(r));
    assert_true(rules_need_raw(r));
    assert_true(rules_stages(r) & (1u << RULES_STAGE_CONNECT));
    assert_true(rules_stages(r) & (1u << RULES_STAGE_RCPT));
    assert_true(rules_required(r) == 5.0);
    rules_unref(r);

    /* CRLF files and a last line without its line end */
    r = load_ok("rule A body /x/\r\n  score 1\r\nrule B body /y/");
    assert_int_equal(rules_count(r), 2);
    rules_unref(r);

    /* an empty file is a valid, empty rule set */
    r = load_ok("");
    assert_int_equal(rules_count(r), 0);
    assert_false(rules_need_raw(r));
    assert_true(rules_required(r) == 5.0);
    rules_unref(r);
}

static void test_shadow_file(void **state)
{
    (void)state;
    /* a file-level shadow makes an enforcing meta on its rules an error
     * only when the meta itself is outside the shadow */
    struct rules *r = load_ok("shadow\nrule S body /x/\nrule M meta S score 1\n");
    rules_unref(r);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_files_and_includes(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_rules_parse.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char a[256], b[256], c[256], sub[256], d[256], loop[256];
    snprintf(a, sizeof(a), "%s/a.rules", dir);
    snprintf(b, sizeof(b), "%s/b.rules", dir);
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    snprintf(c, sizeof(c), "%s/sub/c.rules", dir);
    snprintf(d, sizeof(d), "%s/d.rules", dir);
    snprintf(loop, sizeof(loop), "%s/loop.rules", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file(a, "include \"sub/c.rules\"\nrule A body /a/ score 1\n");
    write_file(c, "rule C body /c/ score 1\n");
    write_file(b, "rule B meta A && C score 1\n");
    write_file(d, "rule C helo /x/\n");
    write_file(loop, "include \"loop.rules\"\n");

    const char *two[] = {a, b};
    struct rules *r = NULL;
    struct rules_errors errs = {0};
    assert_int_equal(rules_load_files(two, 2, NULL, &r, &errs), 0);
    assert_int_equal(rules_count(r), 3);
    assert_int_equal(rules_file_count(r), 3);
    rules_unref(r);

    /* names unique across files: C of a's include and C of d */
    const char *dup[] = {a, d};
    assert_int_equal(rules_load_files(dup, 2, NULL, &r, &errs), -1);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.v[0].file, d);
    assert_int_equal(errs.v[0].line, 1);
    assert_non_null(strstr(errs.v[0].msg, "rule C already defined at"));
    rules_errors_free(&errs);

    const char *lp[] = {loop};
    assert_int_equal(rules_load_files(lp, 1, NULL, &r, &errs), -1);
    assert_int_equal(errs.v[0].line, 1);
    assert_int_equal(errs.v[0].col, 9);
    assert_non_null(strstr(errs.v[0].msg, "loaded already"));
    rules_errors_free(&errs);

    const char *same[] = {c, c};
    assert_int_equal(rules_load_files(same, 2, NULL, &r, &errs), -1);
    assert_non_null(strstr(errs.v[0].msg, "loaded already"));
    rules_errors_free(&errs);

    char missing[300];
    snprintf(missing, sizeof(missing), "%s/none.rules", dir);
    const char *ms[] = {missing};
    assert_int_equal(rules_load_files(ms, 1, NULL, &r, &errs), -1);
    assert_int_equal(errs.v[0].line, 0);
    assert_non_null(strstr(errs.v[0].msg, "cannot read"));
    char *s = rules_error_format(&errs.v[0]);
    assert_non_null(strstr(s, "none.rules: cannot read"));
    free(s);
    rules_errors_free(&errs);

    write_file(b, "include \"nothere.rules\"\n");
    const char *inc[] = {b};
    assert_int_equal(rules_load_files(inc, 1, NULL, &r, &errs), -1);
    assert_int_equal(errs.v[0].col, 9);
    assert_non_null(strstr(errs.v[0].msg, "cannot read"));
    rules_errors_free(&errs);

    /* a chain deeper than the bound */
    for (int i = 0; i < 10; i++) {
        char p[300], t[64];
        snprintf(p, sizeof(p), "%s/n%d.rules", dir, i);
        snprintf(t, sizeof(t), "include \"n%d.rules\"\n", i + 1);
        write_file(p, t);
    }
    char deep[300];
    snprintf(deep, sizeof(deep), "%s/n0.rules", dir);
    const char *dp[] = {deep};
    assert_int_equal(rules_load_files(dp, 1, NULL, &r, &errs), -1);
    bool nested = false;
    for (size_t i = 0; i < errs.n; i++)
        nested = nested || strstr(errs.v[i].msg, "includes nested deeper") != NULL;
    assert_true(nested);
    rules_errors_free(&errs);

    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_examples(void **state)
{
    (void)state;
    struct rules *r = load_ok("rule A helo /^x/ must-hit \"xy\" must-not-hit \"yx\"\n"
                              "rule B helo !/^x/ must-hit \"yx\" must-not-hit \"xy\"\n"
                              "rule C client_addr 10.0.0.0/8 must-hit \"10.1.2.3\"\n"
                              "    must-not-hit \"11.1.2.3\" must-hit \"::ffff:10.0.0.1\"\n"
                              "rule D size > 1k must-hit \"1025\" must-not-hit \"1024\"\n");
    struct rules_errors errs = {0};
    assert_int_equal(rules_check_examples(r, &errs), 0);
    rules_unref(r);

    r = load_ok("rule A helo /^x/\n"
                "    must-hit \"yx\"\n"
                "    must-not-hit \"xy\"\n");
    assert_int_equal(rules_check_examples(r, &errs), 2);
    assert_int_equal(errs.n, 2);
    assert_int_equal(errs.v[0].line, 2);
    assert_int_equal(errs.v[0].col, 14);
    assert_string_equal(errs.v[0].msg, "must-hit example of A does not hit");
    assert_int_equal(errs.v[1].line, 3);
    assert_int_equal(errs.v[1].col, 18);
    assert_string_equal(errs.v[1].msg, "must-not-hit example of A hits");
    rules_errors_free(&errs);
    rules_unref(r);
}

static void test_default_rules(void **state)
{
    (void)state;
    const char *path = "rules/default.rules";
    if (access(path, R_OK) != 0)
        path = "../../../rules/default.rules";
    const char *files[] = {path};
    struct rules *r = NULL;
    struct rules_errors errs = {0};
    assert_int_equal(rules_load_files(files, 1, NULL, &r, &errs), 0);
    assert_int_equal(rules_check_examples(r, &errs), 0);
    assert_true(rules_count(r) >= 15);
    rules_unref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_every_error_reported),
        cmocka_unit_test(test_grammar),
        cmocka_unit_test(test_shadow_file),
        cmocka_unit_test(test_files_and_includes),
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_default_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
