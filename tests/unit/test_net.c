/*
 * Unit tests for util/net and util/alloc: range syntax and its reasons, host
 * bits with and without NET_RANGE_EXACT, prefix comparison at every bit
 * boundary, IPv4-mapped addresses and ranges, socket addresses; and the
 * checked allocation helpers with their failure hook.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/net.h"

static int parse(const char *s, unsigned flags, struct net_range *r, const char **why)
{
    return net_range_parse_text(s, strlen(s), flags, r, why);
}

static const char *why_of(const char *s, unsigned flags)
{
    struct net_range r;
    const char *why = NULL;
    if (parse(s, flags, &r, &why) == 0)
        return NULL;
    assert_non_null(why);
    return why;
}

static void test_syntax(void **state)
{
    (void)state;
    struct net_range r;
    assert_int_equal(parse("192.0.2.0/24", 0, &r, NULL), 0);
    assert_int_equal(r.family, AF_INET);
    assert_int_equal(r.prefix, 24);
    assert_int_equal(parse("198.51.100.7", 0, &r, NULL), 0);
    assert_int_equal(r.prefix, 32);
    assert_int_equal(parse("2001:db8::/32", 0, &r, NULL), 0);
    assert_int_equal(r.family, AF_INET6);
    assert_int_equal(r.prefix, 32);
    assert_int_equal(parse("::1", 0, &r, NULL), 0);
    assert_int_equal(r.prefix, 128);
    assert_int_equal(parse("0.0.0.0/0", 0, &r, NULL), 0);
    assert_int_equal(parse("::/0", 0, &r, NULL), 0);
    assert_int_equal(parse("10.0.0.0/08", 0, &r, NULL), 0);
    assert_int_equal(r.prefix, 8);

    assert_string_equal(why_of("", 0), NET_WHY_ADDRESS);
    assert_string_equal(why_of("example.org", 0), NET_WHY_ADDRESS);
    assert_string_equal(why_of("/24", 0), NET_WHY_ADDRESS);
    assert_string_equal(why_of("192.0.2.0 /24", 0), NET_WHY_ADDRESS);
    assert_string_equal(why_of("192.0.2.0/", 0), NET_WHY_PREFIX);
    assert_string_equal(why_of("192.0.2.0/2x", 0), NET_WHY_PREFIX);
    assert_string_equal(why_of("192.0.2.0/-1", 0), NET_WHY_PREFIX);
    assert_string_equal(why_of("192.0.2.0/+8", 0), NET_WHY_PREFIX);
    assert_string_equal(why_of("192.0.2.0/ 8", 0), NET_WHY_PREFIX);
    assert_string_equal(why_of("192.0.2.0/0008", 0), NET_WHY_PREFIX);
    assert_string_equal(why_of("192.0.2.0/24/1", 0), NET_WHY_PREFIX);
    assert_string_equal(why_of("192.0.2.0/33", 0), NET_WHY_OVER_32);
    assert_string_equal(why_of("::/129", 0), NET_WHY_OVER_128);
    assert_string_equal(why_of("2001:db8::/999", 0), NET_WHY_OVER_128);
    /* longer than any address: refused before any copy */
    char lng[200];
    memset(lng, '1', sizeof(lng) - 1);
    lng[sizeof(lng) - 1] = '\0';
    assert_string_equal(why_of(lng, 0), NET_WHY_ADDRESS);
    /* an embedded NUL is no address */
    assert_int_equal(net_range_parse_text("10.0.0.1\0/8", 11, 0, &r, NULL), -1);
    /* only len octets are read */
    assert_int_equal(net_range_parse_text("10.0.0.0/8,11.0.0.0/8", 10, 0, &r, NULL), 0);
    assert_int_equal(r.prefix, 8);
    assert_int_equal(net_range_parse_text(NULL, 0, 0, &r, NULL), -1);
}

static void test_host_bits(void **state)
{
    (void)state;
    struct net_range r;
    assert_string_equal(why_of("10.1.2.3/8", NET_RANGE_EXACT), NET_WHY_HOST_BITS);
    assert_string_equal(why_of("10.64.0.0/9", NET_RANGE_EXACT), NET_WHY_HOST_BITS);
    assert_string_equal(why_of("2001:db8::1/64", NET_RANGE_EXACT), NET_WHY_HOST_BITS);
    assert_null(why_of("10.128.0.0/9", NET_RANGE_EXACT));
    assert_null(why_of("10.1.2.3", NET_RANGE_EXACT));
    assert_null(why_of("0.0.0.0/0", NET_RANGE_EXACT));
    /* without the flag the host bits are ignored when matching */
    assert_int_equal(parse("10.1.2.3/8", 0, &r, NULL), 0);
    assert_true(net_ranges_match_text(&r, 1, "10.200.0.1"));
    assert_false(net_ranges_match_text(&r, 1, "11.0.0.1"));
    /* net_range_parse is the exact, NUL-terminated form */
    assert_true(net_range_parse("192.0.2.0/24", &r));
    assert_false(net_range_parse("192.0.2.1/24", &r));
    assert_false(net_range_parse(NULL, &r));
}

static void test_prefix(void **state)
{
    (void)state;
    uint8_t a[16], b[16];
    memset(a, 0xa5, sizeof(a));
    for (unsigned bit = 0; bit < 128; bit++) {
        memcpy(b, a, sizeof(b));
        b[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
        assert_true(net_prefix_equal(a, b, bit));
        assert_false(net_prefix_equal(a, b, bit + 1));
    }
    assert_true(net_prefix_equal(a, a, 128));
}

static void test_match(void **state)
{
    (void)state;
    struct net_range r[3];
    assert_int_equal(parse("192.0.2.0/24", 0, &r[0], NULL), 0);
    assert_int_equal(parse("2001:db8::/32", 0, &r[1], NULL), 0);
    assert_int_equal(parse("10.0.0.0/7", 0, &r[2], NULL), 0);
    assert_true(net_ranges_match_text(r, 3, "192.0.2.255"));
    assert_false(net_ranges_match_text(r, 3, "192.0.3.0"));
    assert_true(net_ranges_match_text(r, 3, "2001:db8:ffff::1"));
    assert_false(net_ranges_match_text(r, 3, "2001:db9::1"));
    assert_true(net_ranges_match_text(r, 3, "11.255.255.255"));
    assert_false(net_ranges_match_text(r, 3, "12.0.0.0"));
    assert_false(net_ranges_match_text(r, 3, "bogus"));
    assert_false(net_ranges_match_text(r, 3, ""));
    assert_false(net_ranges_match_text(r, 3, NULL));
    assert_false(net_ranges_match_text(r, 0, "192.0.2.1"));

    /* a mapped client is its IPv4 address */
    assert_true(net_ranges_match_text(r, 3, "::ffff:192.0.2.9"));
    assert_false(net_ranges_match_text(&r[1], 1, "::ffff:192.0.2.9"));
    struct net_addr a;
    assert_true(net_addr_parse("::ffff:10.1.2.3", 15, &a));
    assert_int_equal(a.family, AF_INET);
    assert_memory_equal(a.bytes, "\x0a\x01\x02\x03", 4);
    assert_false(net_addr_parse("10.1.2.3", 0, &a));
    assert_false(net_addr_parse(NULL, 3, &a));

    /* a mapped range of /96 or longer is the IPv4 range */
    struct net_range m;
    assert_int_equal(parse("::ffff:203.0.113.0/120", NET_RANGE_EXACT, &m, NULL), 0);
    assert_int_equal(m.family, AF_INET);
    assert_int_equal(m.prefix, 24);
    assert_true(net_ranges_match_text(&m, 1, "203.0.113.44"));
    assert_true(net_ranges_match_text(&m, 1, "::ffff:203.0.113.44"));
    assert_false(net_ranges_match_text(&m, 1, "203.0.114.1"));
    assert_int_equal(parse("::ffff:0:0/96", 0, &m, NULL), 0);
    assert_int_equal(m.family, AF_INET);
    assert_int_equal(m.prefix, 0);
    /* shorter: an IPv6 range, which IPv4 clients are not in */
    assert_int_equal(parse("::/0", 0, &m, NULL), 0);
    assert_int_equal(m.family, AF_INET6);
    assert_false(net_ranges_match_text(&m, 1, "::ffff:192.0.2.1"));
    assert_false(net_ranges_match_text(&m, 1, "192.0.2.1"));
    assert_true(net_ranges_match_text(&m, 1, "::1"));
}

static void test_sockaddr(void **state)
{
    (void)state;
    struct net_range r[2];
    assert_true(net_range_parse("192.0.2.0/24", &r[0]));
    assert_true(net_range_parse("2001:db8::/32", &r[1]));
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.7", &s4.sin_addr);
    assert_true(net_range_contains(r, 2, (struct sockaddr *)&s4));
    inet_pton(AF_INET, "192.0.3.7", &s4.sin_addr);
    assert_false(net_range_contains(r, 2, (struct sockaddr *)&s4));
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &s6.sin6_addr);
    assert_true(net_range_contains(r, 2, (struct sockaddr *)&s6));
    assert_false(net_range_contains(&r[1], 1, (struct sockaddr *)&s6));
    inet_pton(AF_INET6, "2001:db8::25", &s6.sin6_addr);
    assert_true(net_range_contains(r, 2, (struct sockaddr *)&s6));
    struct sockaddr su = {.sa_family = AF_UNIX};
    assert_false(net_range_contains(r, 2, &su));
    assert_false(net_range_contains(r, 2, NULL));
}

static void test_alloc(void **state)
{
    (void)state;
    char *s = util_strdup("abc");
    assert_string_equal(s, "abc");
    free(s);
    s = util_strndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
    s = util_strndup("ab", 10);
    assert_string_equal(s, "ab");
    free(s);
    s = util_memdup("a\0b", 3);
    assert_memory_equal(s, "a\0b\0", 4);
    free(s);
    assert_int_equal(util_asprintf(&s, "%d-%s", 7, "x"), 3);
    assert_string_equal(s, "7-x");
    free(s);
    int *z = util_calloc(4, sizeof(int));
    assert_non_null(z);
    assert_int_equal(z[0] | z[3], 0);
    free(z);
    free(util_malloc(0)); /* one octet, not NULL */

    errno = 0;
    assert_null(util_mallocarray(SIZE_MAX / 2, 3));
    assert_int_equal(errno, ENOMEM);
    void *p = util_malloc(8);
    assert_null(util_reallocarray(p, SIZE_MAX / 4, 8));
    free(p); /* untouched on failure */

    int *v = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < 100; i++) {
        assert_int_equal(util_grow(&v, &cap, i + 1, sizeof(*v)), 0);
        assert_true(cap > i);
        v[i] = (int)i;
    }
    assert_int_equal(v[99], 99);
    assert_int_equal(util_grow(&v, &cap, SIZE_MAX, sizeof(*v)), -1);
    assert_int_equal(v[99], 99);
    free(v);
}

static void test_alloc_hook(void **state)
{
    (void)state;
    util_alloc_fail_after(2);
    void *a = util_malloc(1), *b = util_calloc(1, 1);
    assert_non_null(a);
    assert_non_null(b);
    char *s = NULL;
    assert_null(util_strdup("x"));
    assert_null(util_reallocarray(a, 2, 2));
    assert_int_equal(util_asprintf(&s, "%s", "x"), -1);
    assert_null(s);
    assert_null(util_alloc_hook_malloc(4, NULL));
    assert_int_equal(util_alloc_failed(), 4);
    util_alloc_fail_after(-1);
    s = util_strdup("y");
    assert_non_null(s);
    assert_int_equal(util_alloc_failed(), 0);
    free(s);
    free(a);
    util_alloc_hook_free(b, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax),     cmocka_unit_test(test_host_bits),
        cmocka_unit_test(test_prefix),     cmocka_unit_test(test_match),
        cmocka_unit_test(test_sockaddr),   cmocka_unit_test(test_alloc),
        cmocka_unit_test(test_alloc_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
