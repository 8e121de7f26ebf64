/*
 * Unit tests for plugins/state/client_key: one key for every spelling of an
 * address, networks at and between byte boundaries for both families,
 * v4-mapped IPv6, senders with and without their +extension, domains, and
 * every refusal (bad input, a key that does not fit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "state/client_key.h"

static const char *addr(const char *a)
{
    static char out[64];
    return client_key_address(a, out, sizeof(out)) >= 0 ? out : "-";
}

static const char *net(const char *a, unsigned v4, unsigned v6)
{
    static char out[64];
    return client_key_network(a, v4, v6, out, sizeof(out)) >= 0 ? out : "-";
}

static const char *sender(const char *m, bool strip)
{
    static char out[128];
    return client_key_sender(m, strip, out, sizeof(out)) >= 0 ? out : "-";
}

static const char *domain(const char *m)
{
    static char out[128];
    return client_key_domain(m, out, sizeof(out)) >= 0 ? out : "-";
}

static void test_address(void **state)
{
    (void)state;
    assert_string_equal(addr("192.0.2.7"), "192.0.2.7");
    assert_string_equal(addr("::ffff:192.0.2.7"), "192.0.2.7");
    assert_string_equal(addr("2001:DB8:0:0::1"), "2001:db8::1");
    assert_string_equal(addr("2001:0db8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
    assert_string_equal(addr("not an address"), "-");
    assert_string_equal(addr("192.0.2.256"), "-");
    assert_string_equal(addr(""), "-");
    assert_string_equal(addr(NULL), "-");
    char small[9];
    assert_int_equal(client_key_address("192.0.2.7", small, sizeof(small)), -1);
    char fits[10];
    assert_int_equal(client_key_address("192.0.2.7", fits, sizeof(fits)), 9);
    assert_string_equal(fits, "192.0.2.7");
}

static void test_network(void **state)
{
    (void)state;
    assert_string_equal(net("192.0.2.7", 24, 64), "192.0.2.0/24");
    assert_string_equal(net("::ffff:192.0.2.7", 24, 64), "192.0.2.0/24");
    assert_string_equal(net("192.0.2.7", 32, 64), "192.0.2.7/32");
    assert_string_equal(net("192.0.2.7", 8, 64), "192.0.0.0/8");
    assert_string_equal(net("192.0.2.255", 25, 64), "192.0.2.128/25");
    assert_string_equal(net("192.0.2.255", 0, 64), "0.0.0.0/0");
    assert_string_equal(net("2001:db8:1:2:3:4:5:6", 24, 64), "2001:db8:1:2::/64");
    assert_string_equal(net("2001:db8:1:2:3:4:5:6", 24, 48), "2001:db8:1::/48");
    assert_string_equal(net("2001:db8:1:2:3:4:5:6", 24, 128), "2001:db8:1:2:3:4:5:6/128");
    assert_string_equal(net("2001:db8:1:2:3:4:5:ffff", 24, 127), "2001:db8:1:2:3:4:5:fffe/127");
    assert_string_equal(net("2001:db8:ffff::", 24, 36), "2001:db8:f000::/36");
    assert_string_equal(net("192.0.2.7", 33, 64), "-");
    assert_string_equal(net("::1", 24, 129), "-");
    assert_string_equal(net("x", 24, 64), "-");
    char small[12];
    assert_int_equal(client_key_network("192.0.2.7", 24, 64, small, sizeof(small)), -1);
}

static void test_sender(void **state)
{
    (void)state;
    assert_string_equal(sender("User@Example.ORG", false), "user@example.org");
    assert_string_equal(sender("user+list@example.org", false), "user+list@example.org");
    assert_string_equal(sender("user+list@example.org", true), "user@example.org");
    assert_string_equal(sender("user+a+b@example.org", true), "user@example.org");
    /* A local part that starts with + has no extension to strip. */
    assert_string_equal(sender("+user@example.org", true), "+user@example.org");
    /* The domain keeps a + (not that one is valid): only the local part has extensions. */
    assert_string_equal(sender("u@ex+ample.org", true), "u@ex+ample.org");
    assert_string_equal(sender("postmaster", true), "postmaster");
    assert_string_equal(sender("", true), "<>");
    assert_string_equal(sender("a\rb@example.org", true), "-");
    assert_string_equal(sender(NULL, true), "-");
    char small[5];
    assert_int_equal(client_key_sender("a@b.cd", false, small, sizeof(small)), -1);
    assert_int_equal(client_key_sender("ab+cdefgh@x", true, small, sizeof(small)), 4);
    assert_string_equal(small, "ab@x");
}

static void test_domain(void **state)
{
    (void)state;
    assert_string_equal(domain("user@Example.ORG"), "example.org");
    assert_string_equal(domain("user@example.org."), "example.org");
    assert_string_equal(domain("\"a@b\"@example.org"), "example.org");
    assert_string_equal(domain("user@"), "-");
    assert_string_equal(domain("user@example.org.."), "-");
    assert_string_equal(domain("user@."), "-");
    assert_string_equal(domain("user"), "-");
    assert_string_equal(domain(""), "-");
    assert_string_equal(domain("u@ex ample.org"), "-");
    assert_string_equal(domain(NULL), "-");
    char small[4];
    assert_int_equal(client_key_domain("u@abcd", small, sizeof(small)), -1);
    assert_int_equal(client_key_domain("u@abc", small, sizeof(small)), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address),
        cmocka_unit_test(test_network),
        cmocka_unit_test(test_sender),
        cmocka_unit_test(test_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
