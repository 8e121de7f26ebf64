/*
 * Unit tests for milter_text: header lines rebuilt as received (with and
 * without the MTA's leading blank, LF and CRLF folding), edit values for
 * libmilter, mailbox brackets, and ESMTP parameter joining.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "codec/milter_text.h"

static void test_header_line(void **state)
{
    (void)state;
    size_t len;
    char *l = milter_text_header_line("Subject", " hello", true, &len);
    assert_string_equal(l, "Subject: hello\r\n");
    assert_int_equal(len, strlen(l));
    free(l);

    l = milter_text_header_line("Subject", "hello", false, &len);
    assert_string_equal(l, "Subject: hello\r\n");
    free(l);

    /* Postfix folds with bare LF; a CRLF fold stays one CRLF. */
    l = milter_text_header_line("To", " a,\n\tb,\r\n c", true, &len);
    assert_string_equal(l, "To: a,\r\n\tb,\r\n c\r\n");
    free(l);

    l = milter_text_header_line("X-Empty", "", true, NULL);
    assert_string_equal(l, "X-Empty:\r\n");
    free(l);

    l = milter_text_header_line("X-Lf", "\n", true, NULL);
    assert_string_equal(l, "X-Lf:\r\n\r\n");
    free(l);
}

static void test_edit_value(void **state)
{
    (void)state;
    char *v = milter_text_edit_value("YES", true);
    assert_string_equal(v, " YES");
    free(v);
    v = milter_text_edit_value("YES", false);
    assert_string_equal(v, "YES");
    free(v);
    v = milter_text_edit_value("\tindented", true);
    assert_string_equal(v, "\tindented");
    free(v);
    v = milter_text_edit_value("a\r\n b\r\n\tc", true);
    assert_string_equal(v, " a\n b\n\tc");
    free(v);
    v = milter_text_edit_value("", true);
    assert_string_equal(v, " ");
    free(v);
    v = milter_text_edit_value("a\r\r\n b", false);
    assert_string_equal(v, "a\n b");
    free(v);
    v = milter_text_edit_value("lone\rcr", false);
    assert_string_equal(v, "lone\rcr");
    free(v);
}

static void test_mailbox(void **state)
{
    (void)state;
    char *m = milter_text_mailbox("<user@example.test>");
    assert_string_equal(m, "user@example.test");
    free(m);
    m = milter_text_mailbox("<>");
    assert_string_equal(m, "");
    free(m);
    m = milter_text_mailbox("bare@example.test");
    assert_string_equal(m, "bare@example.test");
    free(m);
    m = milter_text_mailbox("<");
    assert_string_equal(m, "<");
    free(m);
    m = milter_text_mailbox("");
    assert_string_equal(m, "");
    free(m);
}

static void test_bracket(void **state)
{
    (void)state;
    char *b = milter_text_bracket("a@b");
    assert_string_equal(b, "<a@b>");
    free(b);
    b = milter_text_bracket("");
    assert_string_equal(b, "<>");
    free(b);
}

static void test_params(void **state)
{
    (void)state;
    char *none[] = {"<a@b>", NULL};
    assert_null(milter_text_params(none));
    assert_null(milter_text_params(NULL));
    char *empty[] = {NULL};
    assert_null(milter_text_params(empty));
    char *two[] = {"<a@b>", "SIZE=100", "BODY=8BITMIME", NULL};
    char *p = milter_text_params(two);
    assert_string_equal(p, "SIZE=100 BODY=8BITMIME");
    free(p);
    char *one[] = {"<a@b>", "NOTIFY=NEVER", NULL};
    p = milter_text_params(one);
    assert_string_equal(p, "NOTIFY=NEVER");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_line), cmocka_unit_test(test_edit_value),
        cmocka_unit_test(test_mailbox),     cmocka_unit_test(test_bracket),
        cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
