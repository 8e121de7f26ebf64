/*
 * Unit tests for plugins/state/kv_options: the Redis address forms (IPv4,
 * bracketed IPv6, unix socket paths) and every refusal with its reason, and
 * the checks of the other common option values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "state/kv_options.h"

static const char *parse(const char *s, bool *is_unix, int *port)
{
    static char host[128];
    const char *why = NULL;
    if (kv_parse_redis_address(s, is_unix, host, sizeof(host), port, &why) < 0) {
        assert_non_null(why);
        return why;
    }
    return host;
}

static void test_addresses(void **state)
{
    (void)state;
    bool u;
    int port;
    assert_string_equal(parse("127.0.0.1:6379", &u, &port), "127.0.0.1");
    assert_false(u);
    assert_int_equal(port, 6379);
    assert_string_equal(parse("[::1]:7000", &u, &port), "::1");
    assert_int_equal(port, 7000);
    assert_string_equal(parse("[2001:db8::5]:1", &u, &port), "2001:db8::5");
    assert_int_equal(port, 1);
    assert_string_equal(parse("unix:/run/redis/redis.sock", &u, &port), "/run/redis/redis.sock");
    assert_true(u);
    assert_int_equal(port, 0);
}

static void test_refusals(void **state)
{
    (void)state;
    bool u;
    int port;
    const char *numeric = "want a numeric IPv4 or IPv6 address (a name would need a blocking "
                          "lookup)";
    assert_string_equal(parse("localhost:6379", &u, &port), numeric);
    assert_string_equal(parse("redis.example.org:6379", &u, &port), numeric);
    assert_string_equal(parse("127.0.0.1", &u, &port),
                        "want ADDRESS:PORT (numeric), [IPV6]:PORT or unix:/path");
    assert_string_equal(parse("::1:6379", &u, &port),
                        "want ADDRESS:PORT (numeric), [IPV6]:PORT or unix:/path");
    assert_string_equal(parse("[::1]6379", &u, &port), "want [IPV6]:PORT");
    assert_string_equal(parse("[::1:6379", &u, &port), "want [IPV6]:PORT");
    assert_string_equal(parse(":6379", &u, &port), "want a numeric address before the port");
    assert_string_equal(parse("[]:6379", &u, &port), "want a numeric address before the port");
    assert_string_equal(parse("127.0.0.1:0", &u, &port), "want a port from 1 to 65535");
    assert_string_equal(parse("127.0.0.1:65536", &u, &port), "want a port from 1 to 65535");
    assert_string_equal(parse("127.0.0.1:", &u, &port), "want a port from 1 to 65535");
    assert_string_equal(parse("127.0.0.1:+5", &u, &port), "want a port from 1 to 65535");
    assert_string_equal(parse("127.0.0.1:63 ", &u, &port), "want a port from 1 to 65535");
    assert_string_equal(parse("unix:relative.sock", &u, &port),
                        "want unix:/absolute/path (at most 107 characters)");
    char longpath[200] = "unix:/";
    memset(longpath + 6, 'p', 150);
    assert_string_equal(parse(longpath, &u, &port),
                        "want unix:/absolute/path (at most 107 characters)");
    assert_null(kv_check_redis("127.0.0.1:6379"));
    assert_string_equal(kv_check_redis("x"),
                        "want ADDRESS:PORT (numeric), [IPV6]:PORT or unix:/path");
}

static void test_other_checks(void **state)
{
    (void)state;
    assert_null(kv_check_backend("local"));
    assert_null(kv_check_backend("Redis"));
    assert_string_equal(kv_check_backend("memcached"), "must be \"local\" or \"redis\"");
    assert_null(kv_check_failure("open"));
    assert_null(kv_check_failure("closed"));
    assert_string_equal(kv_check_failure("tempfail"), "must be \"open\" or \"closed\"");
    assert_null(kv_check_prefix("fleet1"));
    assert_null(kv_check_prefix(""));
    assert_string_equal(kv_check_prefix("a b"), "must not contain blanks or control characters");
    char longp[80];
    memset(longp, 'x', 65);
    longp[65] = '\0';
    assert_string_equal(kv_check_prefix(longp), "must be at most 64 characters");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_other_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
