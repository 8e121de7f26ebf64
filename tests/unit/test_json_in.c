#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/json_in.h"
#include "util/json_out.h"

static struct json_value *parse(const char *s)
{
    const char *err;
    size_t at;
    return json_parse(s, strlen(s), &err, &at);
}

static void test_values(void **state)
{
    (void)state;
    struct json_value *v =
        parse(" {\"ok\":true,\"n\":-12.5e1,\"z\":0,\"s\":\"a\\\"b\\\\\\/\\n\",\"nil\":null,"
              "\"arr\":[1,[],{}],\"f\":false} ");
    assert_non_null(v);
    assert_int_equal(v->type, JSON_OBJECT);
    assert_int_equal(v->n, 7);
    assert_true(json_get(v, "ok")->boolean);
    assert_true(json_get(v, "n")->number == -125.0);
    assert_true(json_get(v, "z")->number == 0);
    assert_string_equal(json_get(v, "s")->str, "a\"b\\/\n");
    assert_int_equal(json_get(v, "nil")->type, JSON_NULL);
    const struct json_value *arr = json_get(v, "arr");
    assert_int_equal(arr->type, JSON_ARRAY);
    assert_int_equal(arr->n, 3);
    assert_int_equal(arr->items[1].type, JSON_ARRAY);
    assert_int_equal(arr->items[2].type, JSON_OBJECT);
    assert_false(json_get(v, "f")->boolean);
    assert_null(json_get(v, "missing"));
    assert_null(json_get(arr, "x"));
    json_free(v);
}

static void test_unicode_escapes(void **state)
{
    (void)state;
    struct json_value *v = parse("\"\\u00e9\\u20ac\\ud83d\\ude00\\u0000x\"");
    assert_non_null(v);
    assert_int_equal(v->str_len, 2 + 3 + 4 + 1 + 1);
    assert_memory_equal(v->str, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\0x", 11);
    json_free(v);
    v = parse("\"caf\xc3\xa9\"");
    assert_non_null(v);
    assert_string_equal(v->str, "caf\xc3\xa9");
    json_free(v);
}

static void test_refusals(void **state)
{
    (void)state;
    const char *bad[] = {"",        "{",           "{\"a\"}",     "{\"a\":1,}", "[1,]",
                         "01",      "1.",          ".5",          "-",          "1e",
                         "tru",     "nul",         "\"abc",       "\"a\x01\"",  "\"\\x\"",
                         "\"\\ud83d\"", "\"\\ude00\"", "\"\xff\"",  "\"\xc0\xaf\"", "1 2",
                         "{1:2}",   "\"\\u12\"",   "[\"\xed\xa0\x80\"]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *err = NULL;
        size_t at;
        assert_null(json_parse(bad[i], strlen(bad[i]), &err, &at));
        assert_non_null(err);
    }
}

static void test_depth_bounded(void **state)
{
    (void)state;
    char deep[2 * JSON_IN_MAX_DEPTH + 4];
    size_t n = JSON_IN_MAX_DEPTH + 1;
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    const char *err;
    size_t at;
    assert_null(json_parse(deep, 2 * n, &err, &at));
    assert_string_equal(err, "nested too deep");
    struct json_value *v = json_parse(deep + 1, 2 * (n - 1), &err, &at);
    assert_non_null(v);
    json_free(v);
}

/* What json_out writes, json_in reads: the control socket's two ends. */
static void test_reads_json_out(void **state)
{
    (void)state;
    char buf[512];
    struct json_out j;
    json_out_init(&j, buf, sizeof(buf));
    json_out_key(&j, "t");
    json_out_str(&j, "a\r\n\x01\"\xff", 6);
    json_out_key(&j, "l");
    json_out_open(&j, '[');
    json_out_int(&j, -3);
    json_out_num(&j, 1.5);
    json_out_cstr(&j, NULL);
    json_out_close(&j);
    size_t len = json_out_finish(&j);
    const char *err;
    size_t at;
    struct json_value *v = json_parse(buf, len, &err, &at);
    assert_non_null(v);
    assert_string_equal(json_get(v, "t")->str, "a\r\n\x01\"\xef\xbf\xbd");
    const struct json_value *l = json_get(v, "l");
    assert_int_equal(l->n, 3);
    assert_true(l->items[0].number == -3);
    assert_true(l->items[1].number == 1.5);
    assert_int_equal(l->items[2].type, JSON_NULL);
    json_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_unicode_escapes),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_depth_bounded),
        cmocka_unit_test(test_reads_json_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
