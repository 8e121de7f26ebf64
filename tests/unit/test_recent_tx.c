/*
 * recent_tx: the status page's ring keeps the last n objects, newest first,
 * drops a trailing newline, and keeps nothing while off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "daemon/recent_tx.h"

static void assert_json(const char *want)
{
    size_t len;
    char *got = recent_tx_json(&len);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(got);
}

static void test_off_keeps_nothing(void **state)
{
    (void)state;
    recent_tx_enable(0);
    assert_false(recent_tx_enabled());
    recent_tx_add("{\"a\":1}\n", 8);
    assert_json("[]");
}

static void test_newest_first_and_wraps(void **state)
{
    (void)state;
    recent_tx_enable(2);
    assert_true(recent_tx_enabled());
    assert_json("[]");
    recent_tx_add("{\"n\":1}\n", 8);
    assert_json("[\n{\"n\":1}]");
    recent_tx_add("{\"n\":2}", 7);
    recent_tx_add("{\"n\":3}\n", 8);
    assert_json("[\n{\"n\":3},\n{\"n\":2}]");
    /* Enabling again starts an empty ring of the new size. */
    recent_tx_enable(3);
    assert_json("[]");
    recent_tx_enable(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off_keeps_nothing),
        cmocka_unit_test(test_newest_first_and_wraps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
