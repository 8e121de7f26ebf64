/*
 * Unit tests for milter_socket: every accepted form of a libmilter socket
 * specification, and each mistake refused with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "codec/milter_socket.h"

static void test_accepted(void **state)
{
    (void)state;
    assert_null(milter_socket_check("inet:8890@127.0.0.1"));
    assert_null(milter_socket_check("inet:8890"));
    assert_null(milter_socket_check("inet:1@0.0.0.0"));
    assert_null(milter_socket_check("inet:65535@10.1.2.3"));
    assert_null(milter_socket_check("inet6:8890@::1"));
    assert_null(milter_socket_check("inet6:8890"));
    assert_null(milter_socket_check("unix:/run/smtpgate/milter.sock"));
    assert_null(milter_socket_check("local:/var/spool/postfix/smtpgate"));
}

static void test_refused(void **state)
{
    (void)state;
    assert_non_null(milter_socket_check(""));
    assert_non_null(milter_socket_check("8890@127.0.0.1"));
    assert_non_null(milter_socket_check("tcp:8890@127.0.0.1"));
    assert_non_null(milter_socket_check("inet:"));
    assert_non_null(milter_socket_check("inet:0@127.0.0.1"));
    assert_non_null(milter_socket_check("inet:65536@127.0.0.1"));
    assert_non_null(milter_socket_check("inet:123456@127.0.0.1"));
    assert_non_null(milter_socket_check("inet:8890@"));
    assert_non_null(milter_socket_check("inet:8890@localhost"));
    assert_non_null(milter_socket_check("inet:8890@::1"));
    assert_non_null(milter_socket_check("inet:8890x"));
    assert_non_null(milter_socket_check("inet6:8890@127.0.0.1"));
    assert_non_null(milter_socket_check("inet6:8890@[::1]"));
    assert_non_null(milter_socket_check("unix:relative.sock"));
    assert_non_null(milter_socket_check("unix:"));
}

static void test_path_length_bound(void **state)
{
    (void)state;
    char spec[256] = "unix:/";
    /* sun_path is 108 octets with its NUL: a 107-octet path fits, 108 does not. */
    memset(spec + 6, 'a', 106);
    spec[112] = '\0';
    assert_null(milter_socket_check(spec));
    spec[112] = 'a';
    spec[113] = '\0';
    assert_string_equal(milter_socket_check(spec), "the socket path is too long");
}

static void test_long_address(void **state)
{
    (void)state;
    char spec[256] = "inet6:25@";
    memset(spec + 9, '1', 200);
    spec[209] = '\0';
    assert_string_equal(milter_socket_check(spec), "address too long");
}

static void test_address(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    char text[INET6_ADDRSTRLEN];

    assert_int_equal(milter_socket_address("inet:8890@127.0.0.2", &ss, &len), 0);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 8890);
    assert_string_equal(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)), "127.0.0.2");
    assert_int_equal(len, sizeof(struct sockaddr_in));

    /* A wildcard listener is reached on loopback. */
    assert_int_equal(milter_socket_address("inet:25", &ss, &len), 0);
    assert_string_equal(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)), "127.0.0.1");
    assert_int_equal(milter_socket_address("inet:25@0.0.0.0", &ss, &len), 0);
    assert_string_equal(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)), "127.0.0.1");

    assert_int_equal(milter_socket_address("inet6:9@::", &ss, &len), 0);
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6->sin6_port), 9);
    assert_string_equal(inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text)), "::1");
    assert_int_equal(milter_socket_address("inet6:9@fe80::1", &ss, &len), 0);
    assert_string_equal(inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text)), "fe80::1");

    assert_int_equal(milter_socket_address("local:/run/m.sock", &ss, &len), 0);
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&ss;
    assert_int_equal(sun->sun_family, AF_UNIX);
    assert_string_equal(sun->sun_path, "/run/m.sock");

    assert_int_equal(milter_socket_address("inet:0", &ss, &len), -1);
    assert_int_equal(milter_socket_address("bogus", &ss, &len), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),          cmocka_unit_test(test_refused),
        cmocka_unit_test(test_path_length_bound), cmocka_unit_test(test_long_address),
        cmocka_unit_test(test_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
