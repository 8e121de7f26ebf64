#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "codec/control_request.h"

static const char *parse(const char *line, struct control_request *rq)
{
    return control_request_parse(line, strlen(line), rq);
}

static void test_each_command(void **state)
{
    (void)state;
    struct control_request rq;
    assert_null(parse("status", &rq));
    assert_int_equal(rq.cmd, CONTROL_STATUS);
    assert_null(parse("reload\n", &rq));
    assert_int_equal(rq.cmd, CONTROL_RELOAD);
    assert_null(parse("sessions\r\n", &rq));
    assert_int_equal(rq.cmd, CONTROL_SESSIONS);
    assert_null(parse("  QUARANTINE\tList  ", &rq));
    assert_int_equal(rq.cmd, CONTROL_QUARANTINE_LIST);
    assert_null(parse("quarantine show 6B125F5F00000.1", &rq));
    assert_int_equal(rq.cmd, CONTROL_QUARANTINE_SHOW);
    assert_string_equal(rq.id, "6B125F5F00000.1");
    assert_null(parse("quarantine release a_b-c.2\n", &rq));
    assert_int_equal(rq.cmd, CONTROL_QUARANTINE_RELEASE);
    assert_string_equal(rq.id, "a_b-c.2");
    assert_null(parse("quarantine delete X", &rq));
    assert_int_equal(rq.cmd, CONTROL_QUARANTINE_DELETE);
    assert_string_equal(control_cmd_name(CONTROL_QUARANTINE_DELETE), "quarantine delete");
    assert_string_equal(control_cmd_name(CONTROL_STATUS), "status");
}

static void test_drain_grace(void **state)
{
    (void)state;
    struct control_request rq;
    assert_null(parse("drain", &rq));
    assert_int_equal(rq.cmd, CONTROL_DRAIN);
    assert_false(rq.has_grace);
    assert_null(parse("drain 0", &rq));
    assert_true(rq.has_grace);
    assert_int_equal(rq.grace, 0);
    assert_null(parse("drain 86400", &rq));
    assert_int_equal(rq.grace, 86400);
    assert_non_null(parse("drain 86401", &rq));
    assert_non_null(parse("drain -1", &rq));
    assert_non_null(parse("drain +5", &rq));
    assert_non_null(parse("drain 5s", &rq));
    assert_non_null(parse("drain 9999999999", &rq));
    assert_non_null(parse("drain 5 6", &rq));
}

static void test_refusals(void **state)
{
    (void)state;
    struct control_request rq;
    assert_string_equal(parse("", &rq), "empty request");
    assert_string_equal(parse(" \t\r\n", &rq), "empty request");
    assert_string_equal(parse("shutdown", &rq), "unknown command");
    assert_non_null(parse("status now", &rq));
    assert_non_null(parse("quarantine", &rq));
    assert_non_null(parse("quarantine list all", &rq));
    assert_non_null(parse("quarantine show", &rq));
    assert_non_null(parse("quarantine show a b", &rq));
    assert_non_null(parse("quarantine purge X", &rq));
    assert_string_equal(parse("status\rx", &rq), "control characters in the request");
    assert_non_null(parse("a b c d e", &rq));
    /* A NUL inside the line is a control character, whatever follows. */
    assert_non_null(control_request_parse("status\0 x", 9, &rq));
    char longline[CONTROL_LINE_MAX + 10];
    memset(longline, ' ', sizeof(longline));
    memcpy(longline, "status", 6);
    assert_string_equal(control_request_parse(longline, sizeof(longline), &rq),
                        "request line too long");
}

static void test_ids_stay_inside_the_folder(void **state)
{
    (void)state;
    struct control_request rq;
    const char *bad[] = {"../etc/passwd", "..", ".", ".hidden", "a/b",     "a..b",
                         "/etc/passwd",   "a\\b", "-rf",     "_x",      "a b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(control_id_valid(bad[i], strlen(bad[i])));
        char line[64];
        snprintf(line, sizeof(line), "quarantine delete %s", bad[i]);
        assert_non_null(parse(line, &rq));
    }
    char id[CONTROL_ID_MAX + 2];
    memset(id, 'a', sizeof(id));
    assert_true(control_id_valid(id, CONTROL_ID_MAX));
    assert_false(control_id_valid(id, CONTROL_ID_MAX + 1));
    assert_false(control_id_valid(id, 0));
    assert_true(control_id_valid("6B125F5F00000.1", 15));
    /* Octets past len are not the ID's. */
    assert_true(control_id_valid("ab/../x", 2));
}

static void test_reads_exactly_len(void **state)
{
    (void)state;
    struct control_request rq;
    /* "status" followed by octets that are not the line's. */
    assert_null(control_request_parse("statusXYZ", 6, &rq));
    assert_int_equal(rq.cmd, CONTROL_STATUS);
    assert_null(control_request_parse("quarantine show abc/../", 19, &rq));
    assert_string_equal(rq.id, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_command),
        cmocka_unit_test(test_drain_grace),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_ids_stay_inside_the_folder),
        cmocka_unit_test(test_reads_exactly_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
