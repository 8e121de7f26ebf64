/*
 * Unit tests for SpamAssassin 4's capture templates: the pure text side
 * (rules/sa_capture.c: tag names, capture groups, marking %{NAME} as
 * Conf::Parser does, the per-message substitution with quotemeta'd values)
 * and the engine's use of it over .cf snippets written for these tests:
 * a named group sets its tag, a %{NAME} rule runs after it with the value
 * quoted, never when the tag has no value (negated or not), several values
 * as alternatives without duplicates, the last rule to capture wins (an
 * empty capture too), priority lines, mimeheader's literal templates, and
 * tags that do not outlive their message.
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
#include "rules/sa_capture.h"
#include "util/alloc.h"

static char dir[] = "/tmp/test_sa_capture.XXXXXX";
#include "tests/unit/sa_rules_fixture.h"

#define S(x) x, sizeof(x) - 1

static void test_names(void **state)
{
    (void)state;
    assert_true(sa_capture_valid_name(S("A")));
    assert_true(sa_capture_valid_name(S("GB_TO_ADDR")));
    assert_true(sa_capture_valid_name(S("X1_2")));
    assert_false(sa_capture_valid_name(S("")));
    assert_false(sa_capture_valid_name(S("a")));
    assert_false(sa_capture_valid_name(S("Ab")));
    assert_false(sa_capture_valid_name(S("_A")));
    assert_false(sa_capture_valid_name(S("1A")));
    assert_false(sa_capture_valid_name(S("A__B")));
    assert_false(sa_capture_valid_name(S("A_")));

    assert_true(sa_capture_escaped(S("a\\%{B}")));
    assert_true(sa_capture_escaped(S("a\\\\%{B(x)}")));
    assert_false(sa_capture_escaped(S("%{B}")));
    assert_false(sa_capture_escaped(S("\\%{b}")));
    assert_false(sa_capture_escaped(S("\\%\\{B\\}")));
    assert_false(sa_capture_escaped(S("\\%{B")));

    assert_true(sa_capture_has_group(S("x(?<A>y)")));
    assert_true(sa_capture_has_group(S("(?P<Q>y)")));
    assert_true(sa_capture_has_group(S("(?'Z'y)")));
    assert_true(sa_capture_has_group(S("(?<Foo>y)"))); /* priority moves; the tag is not kept */
    assert_false(sa_capture_has_group(S("(?<foo>y)")));
    assert_false(sa_capture_has_group(S("(?<=a)(?<!b)")));
    assert_false(sa_capture_has_group(S("(?<")));
    assert_false(sa_capture_has_group(S("")));
}

static void test_mark(void **state)
{
    (void)state;
    char *out;
    size_t n, nt;
    struct sa_capture_tmpl *t;
    assert_int_equal(sa_capture_mark(S("a%{B_C}d%{E(x y)}%{B_C}"), &out, &n, &t, &nt), 0);
    assert_string_equal(out, "a%\\{B_C\\}d%\\{E(x y)\\}%\\{B_C\\}");
    assert_int_equal(n, strlen(out));
    assert_int_equal(nt, 2);
    assert_string_equal(t[0].text, "B_C");
    assert_string_equal(t[0].tag, "B_C");
    assert_string_equal(t[1].text, "E(x y)");
    assert_int_equal(t[1].text_len, 6);
    assert_string_equal(t[1].tag, "E");
    assert_int_equal(t[1].tag_len, 1);
    free(out);
    sa_capture_tmpl_free(t, nt);

    /* escaped, lower case, bad names, unclosed, ) or } inside the args: as written */
    static const char *const none[] = {"\\%{A}", "%{a}",     "%{A__B}", "%{A_}", "%{A",
                                       "%{A(x}", "%{A(x)y}", "%{}",     "%A}",   "plain"};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        assert_int_equal(sa_capture_mark(none[i], strlen(none[i]), &out, &n, &t, &nt), 0);
        assert_null(out);
        assert_null(t);
        assert_int_equal(nt, 0);
    }
    /* the backslash looked at is the input's: \\%{A} has one before it */
    assert_int_equal(sa_capture_mark(S("x\\\\%{A}%{B}"), &out, &n, &t, &nt), 0);
    assert_string_equal(out, "x\\\\%{A}%\\{B\\}");
    assert_int_equal(nt, 1);
    free(out);
    sa_capture_tmpl_free(t, nt);
    /* a NUL octet is an octet */
    static const char nul[] = "a\0%{N}";
    assert_int_equal(sa_capture_mark(nul, sizeof(nul) - 1, &out, &n, &t, &nt), 0);
    assert_int_equal(n, 8);
    assert_memory_equal(out, "a\0%\\{N\\}", 8);
    free(out);
    sa_capture_tmpl_free(t, nt);
}

static void test_subst(void **state)
{
    (void)state;
    const char *vals[] = {"a.b*c(d)", "x y", "\xe9_\n"};
    size_t lens[] = {8, 3, 3};
    size_t n;
    bool big;
    char *s = sa_capture_subst(S("^%\\{T\\}$|%\\{T\\}"), S("T"), vals, lens, 3, &n, &big);
    assert_non_null(s);
    assert_string_equal(s, "^(?:a\\.b\\*c\\(d\\)|x\\ y|\\\xe9_\\\n)$|(?:a\\.b\\*c\\(d\\)|x\\ y|"
                           "\\\xe9_\\\n)");
    assert_int_equal(n, strlen(s));
    free(s);
    /* another template, one after a backslash, and the unmarked text stay */
    s = sa_capture_subst(S("%\\{U\\}\\%\\{T\\}%{T}%\\{T(a)\\}"), S("T"), vals, lens, 1, &n, &big);
    assert_string_equal(s, "%\\{U\\}\\%\\{T\\}%{T}%\\{T(a)\\}");
    free(s);
    s = sa_capture_subst(S("%\\{T(a)\\}"), S("T(a)"), vals + 1, lens + 1, 1, &n, &big);
    assert_string_equal(s, "(?:x\\ y)");
    free(s);
    /* no values: an empty alternative (the engine never asks so) */
    s = sa_capture_subst(S("%\\{T\\}"), S("T"), NULL, NULL, 0, &n, &big);
    assert_string_equal(s, "(?:)");
    free(s);
    /* a pattern beyond the cap is not built */
    size_t vl = SA_CAPTURE_MAX_PATTERN / 2 + 1;
    char *v = malloc(vl);
    assert_non_null(v);
    memset(v, '.', vl);
    const char *vv[] = {v};
    assert_null(sa_capture_subst(S("%\\{T\\}"), S("T"), vv, &vl, 1, &n, &big));
    assert_true(big);
    free(v);
}

static const char *msg1 = "From: Alice <alice@example.org>\r\n"
                          "To: Bob <bob@example.net>\r\n"
                          "Subject: ref a.b*c(d) and apple\r\n"
                          "X-Win: first\r\n"
                          "X-Check: second\r\n"
                          "\r\n"
                          "please confirm a.b*c(d) now\r\n"
                          "\r\n"
                          "item pear item apple item pear\r\n"
                          "\r\n"
                          "winner second\r\n";

/* the same but the value unquoted would match, and no winner line */
static const char *msg2 = "From: Alice <alice@example.org>\r\n"
                          "Subject: ref a.b*c(d)\r\n"
                          "X-Win: first\r\n"
                          "X-Check: first\r\n"
                          "\r\n"
                          "please confirm aXbbbcd now\r\n";

/* nothing captured */
static const char *msg3 = "From: Alice <alice@example.org>\r\n"
                          "Subject: hello\r\n"
                          "X-Check: first\r\n"
                          "\r\n"
                          "please confirm a.b*c(d) now\r\n"
                          "\r\n"
                          "confirm %{REF} now\r\n";

static void test_engine(void **state)
{
    (void)state;
    write_file("10_cap.cf", "header   __REF        Subject =~ /\\bref (?<REF>\\S+)/\n"
                            "body     REF_BODY     /confirm %{REF} now/\n"
                            "header   REF_NOT_FROM From !~ /%{REF}/\n"
                            /* the documented escape: Perl refuses its brace */
                            "body     REF_LITERAL  /confirm \\%{REF} now/\n"
                            "body     REF_ESCAPED  /confirm \\%\\{REF\\} now/\n"
                            "body     __ITEM       /\\bitem (?<ITEM>[a-z]+)/\n"
                            "tflags   __ITEM       multiple\n"
                            "header   ITEM_SUBJ    Subject =~ /\\b%{ITEM}\\b/\n"
                            "header   __WIN_H      X-Win =~ /(?<WIN>\\w+)/\n"
                            "body     __WIN_B      /\\bwinner (?<WIN>\\w+)/\n"
                            "header   WIN_CHECK    X-Check =~ /^%{WIN}$/\n"
                            "header   EARLY        X-Check =~ /%{WIN}/\n"
                            "priority EARLY        -20000\n"
                            /* a priority line before the definition loses to -10000 */
                            "priority __LATE_CAP   5\n"
                            "header   __LATE_CAP   X-Check =~ /(?<LATE>\\w+)/\n"
                            "header   LATE_USE     X-Win =~ /%{LATE}/i\n"
                            "priority LATE_USE     -10001\n"
                            "meta     BOTH         REF_BODY && WIN_CHECK\n"
                            /* a meta brings the rules it names down to its priority */
                            "header   EARLY2       X-Check =~ /%{WIN}/\n"
                            "meta     EARLY_META   EARLY2 || __REF\n"
                            "priority EARLY_META   -20000\n"
                            "mimeheader MH_LIT     X-Check =~ /%{WIN}/\n"
                            "header   LOWER        Subject =~ /(?<lower>ref)/\n"
                            "header   NEVER        Subject =~ /%{NOT_CAPTURED}/\n"
                            "header   OWN          From =~ /%{SENDERDOMAIN}/\n");
    struct loaded l = load(NULL, false);
    assert_int_equal(skipped(&l.rep, "condition false: if can(Mail::SpamAssassin::Conf::"
                                     "feature_capture_rules)"),
                     0);
    assert_int_equal(
        skipped(&l.rep, "pattern error: unescaped left brace in \\%{NAME} (Perl refuses it)"), 1);
    assert_int_equal(
        skipped(&l.rep, "template %{SENDERDOMAIN}: a tag of SpamAssassin's own, smtpgate has none"),
        1);
    double score;
    const char *h = hits(l.r, msg1, &score);
    assert_true(has(h, "__REF"));
    assert_true(has(h, "REF_BODY"));
    assert_true(has(h, "REF_NOT_FROM")); /* captured, From lacks it: the negation hits */
    assert_false(has(h, "REF_LITERAL"));
    assert_true(has(h, "ITEM_SUBJ")); /* apple, the second of the values */
    assert_true(has(h, "WIN_CHECK")); /* the body rule ran after the header rule: second */
    assert_false(has(h, "EARLY"));    /* ran before any capture */
    assert_false(has(h, "EARLY2"));   /* so did this one, for its meta */
    assert_true(has(h, "EARLY_META"));
    assert_false(has(h, "LATE_USE")); /* -10001 runs before __LATE_CAP at -10000 */
    assert_true(has(h, "BOTH"));
    assert_false(has(h, "MH_LIT"));
    assert_true(has(h, "LOWER"));
    assert_false(has(h, "NEVER"));

    h = hits(l.r, msg2, NULL);
    assert_true(has(h, "__REF"));
    assert_false(has(h, "REF_BODY")); /* the value is quoted */
    assert_true(has(h, "WIN_CHECK")); /* only the header captured: first */
    assert_false(has(h, "BOTH"));

    h = hits(l.r, msg3, NULL);
    assert_false(has(h, "__REF"));
    assert_false(has(h, "REF_BODY"));
    assert_false(has(h, "REF_NOT_FROM")); /* not run: no hit though negated */
    assert_true(has(h, "REF_ESCAPED"));   /* the literal text */
    assert_false(has(h, "ITEM_SUBJ"));
    assert_false(has(h, "WIN_CHECK"));
    unload(&l);
}

/* The same tx over two messages: the second does not see the first's tags,
 * and a value that comes again finds its pattern compiled. */
static void test_tags_per_message(void **state)
{
    (void)state;
    write_file("10_cap.cf", "header __A Subject =~ /id=(?<A>\\d+)/\n"
                            "body   A_BODY /number %{A}\\b/\n"
                            /* the last capture wins, even an empty one */
                            "header __E1 X-One =~ /(?<E>\\w+)/\n"
                            "body   __E2 /empty(?<E>\\d*)!/\n"
                            "header E_USE X-One =~ /%{E}/\n");
    struct loaded l = load(NULL, false);
    const char *m1 = "Subject: id=42\r\nX-One: abc\r\n\r\nnumber 42 here\r\n";
    const char *m2 = "Subject: nothing\r\nX-One: abc\r\n\r\nnumber 42 here empty!\r\n";
    const char *m3 = "Subject: id=7\r\nX-One: abc\r\n\r\nnumber 42 here\r\n";
    struct rules_tx *tx = rules_tx_new(l.r);
    assert_non_null(tx);
    const char *msgs[] = {m1, m2, m1, m3};
    const bool want_a[] = {true, false, true, false};
    const bool want_e[] = {true, false, true, true};
    for (size_t k = 0; k < 4; k++) {
        struct rules_msg *m = rules_msg_parse(msgs[k], strlen(msgs[k]));
        const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
        assert_non_null(o);
        bool a = false, e = false;
        for (size_t i = 0; i < o->nhits; i++) {
            a |= strcmp(o->hits[i].rule, "A_BODY") == 0;
            e |= strcmp(o->hits[i].rule, "E_USE") == 0;
        }
        assert_int_equal(a, want_a[k]);
        assert_int_equal(e, want_e[k]);
        rules_msg_free(m);
    }
    rules_tx_free(tx);
    unload(&l);
}

/* Out of memory anywhere in loading or evaluating: the documented error
 * (a failed load, a NULL outcome), never a crash or a leak; with memory
 * back the tx gives the same hits. */
static void test_nomem(void **state)
{
    (void)state;
    write_file("10_cap.cf", "header __A Subject =~ /id=(?<A>\\d+)(?<B>x)?/\n"
                            "body   A_BODY /number %{A}\\b/\n"
                            "header A_NEG  From !~ /%{A}/\n");
    const char *dirs[] = {sadir};
    struct rules_sa_opts o = {.dirs = dirs, .ndirs = 1};
    const char *m1 = "From: a@example.org\r\nSubject: id=42\r\n\r\nnumber 42 here\r\n";
    bool loaded = false;
    for (long n = 0; !loaded && n < 200000; n++) {
        struct rules *r = NULL;
        struct rules_errors errs = {0};
        struct rules_sa_report rep = {0};
        util_alloc_fail_after(n);
        int rc = rules_load_sa(NULL, 0, &o, NULL, &r, &errs, &rep);
        util_alloc_fail_after(-1);
        loaded = rc == 0;
        rules_errors_free(&errs);
        rules_sa_report_free(&rep);
        rules_unref(r);
    }
    assert_true(loaded);
    struct loaded l = load(NULL, false);
    bool done = false;
    for (long n = 0; !done && n < 100000; n++) {
        struct rules_msg *m = rules_msg_parse(m1, strlen(m1));
        struct rules_tx *tx = rules_tx_new(l.r);
        assert_non_null(m);
        assert_non_null(tx);
        util_alloc_fail_after(n);
        const struct rules_outcome *out = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
        util_alloc_fail_after(-1);
        done = out != NULL;
        if (out == NULL) { /* the tx is still usable, on a fresh message */
            rules_msg_free(m);
            m = rules_msg_parse(m1, strlen(m1));
            out = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
        }
        assert_non_null(out);
        bool a = false, neg = false;
        for (size_t i = 0; i < out->nhits; i++) {
            a |= strcmp(out->hits[i].rule, "A_BODY") == 0;
            neg |= strcmp(out->hits[i].rule, "A_NEG") == 0;
        }
        assert_true(a);
        assert_true(neg);
        rules_tx_free(tx);
        rules_msg_free(m);
    }
    assert_true(done);
    unload(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_mark),
        cmocka_unit_test(test_subst),
        cmocka_unit_test(test_engine),
        cmocka_unit_test(test_tags_per_message),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
