#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/json_out.h"

static const char *one(char *buf, size_t cap, const char *key, const char *value, size_t len)
{
    struct json_out j;
    json_out_init(&j, buf, cap);
    json_out_key(&j, key);
    json_out_str(&j, value, len);
    json_out_finish(&j);
    return buf;
}

static void test_escapes(void **state)
{
    (void)state;
    char buf[256];
    const char v[] = "a\"b\\c\r\n\x01\x7f";
    assert_string_equal(one(buf, sizeof(buf), "k", v, sizeof(v) - 1),
                        "{\"k\":\"a\\\"b\\\\c\\u000d\\u000a\\u0001\\u007f\"}\n");
}

static void test_utf8_kept_and_bad_octets_replaced(void **state)
{
    (void)state;
    char buf[256];
    /* é kept; a lone continuation, an overlong NUL and a surrogate each become U+FFFD */
    const char v[] = "\xc3\xa9|\x80|\xc0\x80|\xed\xa0\x80";
    assert_string_equal(one(buf, sizeof(buf), "k", v, sizeof(v) - 1),
                        "{\"k\":\"\xc3\xa9|\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|"
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}\n");
}

static void test_nesting_and_numbers(void **state)
{
    (void)state;
    char buf[256];
    struct json_out j;
    json_out_init(&j, buf, sizeof(buf));
    json_out_key(&j, "n");
    json_out_int(&j, -42);
    json_out_key(&j, "rcpts");
    json_out_open(&j, '[');
    json_out_open(&j, '{');
    json_out_key(&j, "to");
    json_out_cstr(&j, "a@b");
    json_out_close(&j);
    json_out_cstr(&j, NULL);
    json_out_close(&j);
    json_out_key(&j, "ok");
    json_out_bool(&j, true);
    json_out_key(&j, "ms");
    json_out_num(&j, 1.5);
    size_t n = json_out_finish(&j);
    assert_string_equal(buf,
                        "{\"n\":-42,\"rcpts\":[{\"to\":\"a@b\"},null],\"ok\":true,\"ms\":1.5}\n");
    assert_int_equal(n, strlen(buf));
}

static void test_truncation_stays_valid(void **state)
{
    (void)state;
    char big[300];
    memset(big, 'x', sizeof(big));
    char buf[80];
    struct json_out j;
    json_out_init(&j, buf, sizeof(buf));
    json_out_key(&j, "a");
    json_out_open(&j, '[');
    json_out_str(&j, big, sizeof(big));
    json_out_str(&j, "more", 4);
    size_t n = json_out_finish(&j);
    assert_true(n <= sizeof(buf));
    assert_int_equal(buf[n - 1], '\n');
    assert_non_null(strstr(buf, "\"],\"truncated\":true}\n"));
    assert_null(strstr(buf, "more"));
}

static void test_key_without_room_gets_null(void **state)
{
    (void)state;
    char big[60];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char buf[72];
    struct json_out j;
    json_out_init(&j, buf, sizeof(buf));
    json_out_key(&j, "a");
    json_out_int(&j, 1);
    json_out_key(&j, big);
    json_out_int(&j, 2);
    json_out_finish(&j);
    assert_string_equal(buf, "{\"a\":1,\"truncated\":true}\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_utf8_kept_and_bad_octets_replaced),
        cmocka_unit_test(test_nesting_and_numbers),
        cmocka_unit_test(test_truncation_stays_valid),
        cmocka_unit_test(test_key_without_room_gets_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
