/*
 * Unit tests for util/sockaddr: "host:port" as admins write it, the
 * normalised text, the passive "*" form, and numeric-only parsing that never
 * resolves a name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <string.h>

#include "util/sockaddr.h"

static void test_numeric_forms(void **state)
{
    (void)state;
    struct sg_sockaddr sa;
    assert_null(sockaddr_parse("127.0.0.1:25", 0, &sa));
    assert_string_equal(sa.text, "127.0.0.1:25");
    assert_int_equal(sa.sa.ss_family, AF_INET);
    assert_int_equal(sa.len, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(((struct sockaddr_in *)&sa.sa)->sin_port), 25);

    assert_null(sockaddr_parse("[::1]:2525", SOCKADDR_NUMERIC, &sa));
    assert_string_equal(sa.text, "[::1]:2525");
    assert_int_equal(sa.sa.ss_family, AF_INET6);

    /* Normalised: the text is the address as inet_ntop writes it. */
    assert_null(sockaddr_parse("[2001:DB8:0::1]:65535", SOCKADDR_NUMERIC, &sa));
    assert_string_equal(sa.text, "[2001:db8::1]:65535");
}

static void test_passive_wildcard(void **state)
{
    (void)state;
    struct sg_sockaddr sa;
    assert_null(sockaddr_parse("*:2525", SOCKADDR_PASSIVE, &sa));
    assert_string_equal(sa.text, "0.0.0.0:2525");
    assert_null(sockaddr_parse("*:2525", SOCKADDR_PASSIVE | SOCKADDR_NUMERIC, &sa));
    assert_string_equal(sa.text, "0.0.0.0:2525");
    assert_string_equal(sockaddr_parse("*:2525", 0, &sa), "\"*\" is only for listen addresses");
}

static void test_mistakes(void **state)
{
    (void)state;
    struct sg_sockaddr sa;
    assert_string_equal(sockaddr_parse("127.0.0.1", 0, &sa), "expected host:port");
    assert_string_equal(sockaddr_parse("::1:25", 0, &sa),
                        "IPv6 addresses need brackets: [address]:port");
    assert_string_equal(sockaddr_parse("[::1]25", 0, &sa), "expected [IPv6-address]:port");
    assert_string_equal(sockaddr_parse("[]:25", 0, &sa), "bad IPv6 address");
    assert_string_equal(sockaddr_parse(":25", 0, &sa), "missing or too long host");
    const char *port = "port must be a number from 1 to 65535";
    assert_string_equal(sockaddr_parse("127.0.0.1:0", 0, &sa), port);
    assert_string_equal(sockaddr_parse("127.0.0.1:65536", 0, &sa), port);
    assert_string_equal(sockaddr_parse("127.0.0.1:x", 0, &sa), port);
    assert_string_equal(sockaddr_parse("127.0.0.1:", 0, &sa), port);
    assert_string_equal(sockaddr_parse("127.0.0.1:25x", 0, &sa), port);
    /* A failure leaves nothing behind. */
    assert_int_equal(sa.len, 0);
    assert_string_equal(sa.text, "");
}

static void test_host_too_long(void **state)
{
    (void)state;
    struct sg_sockaddr sa;
    char text[300];
    memset(text, 'a', 256);
    memcpy(text + 256, ":25", 4);
    assert_string_equal(sockaddr_parse(text, SOCKADDR_NUMERIC, &sa), "missing or too long host");
    char v6[300] = "[";
    memset(v6 + 1, '1', 256);
    memcpy(v6 + 257, "]:25", 5);
    assert_string_equal(sockaddr_parse(v6, SOCKADDR_NUMERIC, &sa), "bad IPv6 address");
}

static void test_numeric_refuses_names(void **state)
{
    (void)state;
    struct sg_sockaddr sa;
    /* Never resolved: no query leaves the machine. */
    assert_non_null(sockaddr_parse("mx.example.test:25", SOCKADDR_NUMERIC, &sa));
    assert_non_null(sockaddr_parse("localhost:25", SOCKADDR_NUMERIC, &sa));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numeric_forms),
        cmocka_unit_test(test_passive_wildcard),
        cmocka_unit_test(test_mistakes),
        cmocka_unit_test(test_host_too_long),
        cmocka_unit_test(test_numeric_refuses_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
