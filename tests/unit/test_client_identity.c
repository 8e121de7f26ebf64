/*
 * Unit tests for client_identity: XCLIENT lines (announced attributes only,
 * xtext, [UNAVAILABLE], IPv6, value and line limits, which attributes share
 * the last line) and PROXY v2 headers byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "codec/client_identity.h"

#define ALL_ATTRS "NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT"

static struct client_facts facts4(void)
{
    struct client_facts f = {
        .addr = "192.0.2.1",
        .family = AF_INET,
        .port = 40000,
        .name = "client.example.com",
        .helo = "helo.example.com",
        .proto = "ESMTP",
        .login = NULL,
    };
    return f;
}

/* Every line ends with CRLF, is at most 512 octets and starts with XCLIENT;
 * returns the number of lines. */
static unsigned check_lines(const char *out, size_t len)
{
    unsigned n = 0;
    size_t p = 0;
    assert_int_equal(strlen(out), len);
    while (p < len) {
        const char *crlf = strstr(out + p, "\r\n");
        assert_non_null(crlf);
        size_t line = (size_t)(crlf - (out + p)) + 2;
        assert_true(line <= 512);
        assert_memory_equal(out + p, "XCLIENT ", 8);
        assert_null(memchr(out + p, '\n', line - 1));
        p += line;
        n++;
    }
    return n;
}

static void test_xclient_ipv4(void **state)
{
    (void)state;
    struct client_facts f = facts4();
    char *out;
    unsigned n;
    size_t len = xclient_build(&f, "NAME ADDR PORT PROTO HELO LOGIN", &out, &n);
    assert_int_equal(n, 1);
    assert_string_equal(out, "XCLIENT HELO=helo.example.com PROTO=ESMTP LOGIN=[UNAVAILABLE] "
                             "NAME=client.example.com ADDR=192.0.2.1 PORT=40000\r\n");
    assert_int_equal(check_lines(out, len), 1);
    free(out);
}

static void test_xclient_name_tempunavail(void **state)
{
    (void)state;
    struct client_facts f = facts4();
    f.name = NULL;
    f.name_tempfail = 1;
    char *out;
    unsigned n;
    xclient_build(&f, "NAME ADDR", &out, &n);
    assert_string_equal(out, "XCLIENT NAME=[TEMPUNAVAIL] ADDR=192.0.2.1\r\n");
    free(out);
    f.name_tempfail = 0;
    xclient_build(&f, "NAME ADDR", &out, &n);
    assert_string_equal(out, "XCLIENT NAME=[UNAVAILABLE] ADDR=192.0.2.1\r\n");
    free(out);
}

static void test_xclient_ipv6(void **state)
{
    (void)state;
    struct client_facts f = facts4();
    f.addr = "2001:db8::1";
    f.family = AF_INET6;
    f.login = "user@example.com";
    char *out;
    unsigned n;
    size_t len = xclient_build(&f, ALL_ATTRS, &out, &n);
    assert_int_equal(n, 1);
    assert_string_equal(out, "XCLIENT HELO=helo.example.com PROTO=ESMTP LOGIN=user@example.com "
                             "NAME=client.example.com ADDR=IPV6:2001:db8::1 PORT=40000\r\n");
    assert_int_equal(check_lines(out, len), 1);
    free(out);

    /* Written in canonical form. */
    f.addr = "2001:DB8:0:0:0:0:0:1";
    xclient_build(&f, "ADDR", &out, &n);
    assert_string_equal(out, "XCLIENT ADDR=IPV6:2001:db8::1\r\n");
    free(out);

    /* IPv4-mapped addresses are IPv4 to the upstream. */
    f.addr = "::ffff:192.0.2.7";
    xclient_build(&f, "ADDR", &out, &n);
    assert_string_equal(out, "XCLIENT ADDR=192.0.2.7\r\n");
    free(out);
}

static void test_xclient_only_announced(void **state)
{
    (void)state;
    struct client_facts f = facts4();
    char *out;
    unsigned n;
    size_t len = xclient_build(&f, "NAME ADDR", &out, &n);
    assert_int_equal(n, 1);
    assert_string_equal(out, "XCLIENT NAME=client.example.com ADDR=192.0.2.1\r\n");
    assert_int_equal(len, strlen(out));
    free(out);

    /* Case-insensitive, any blanks. */
    xclient_build(&f, "  addr\tPort  ", &out, &n);
    assert_string_equal(out, "XCLIENT ADDR=192.0.2.1 PORT=40000\r\n");
    free(out);

    /* Attributes we have no facts for are not sent; words must match whole. */
    xclient_build(&f, "REVERSE_NAME DESTADDR ADDRESS HELO", &out, &n);
    assert_string_equal(out, "XCLIENT HELO=helo.example.com\r\n");
    free(out);
}

static void test_xclient_nothing_to_send(void **state)
{
    (void)state;
    struct client_facts f = facts4();
    char *out = (char *)1;
    unsigned n = 99;
    assert_int_equal(xclient_build(&f, "", &out, &n), (size_t)-1);
    assert_null(out);
    assert_int_equal(n, 0);
    assert_int_equal(xclient_build(&f, NULL, &out, &n), (size_t)-1);
    assert_int_equal(xclient_build(&f, "DESTADDR DESTPORT", &out, &n), (size_t)-1);
    assert_int_equal(xclient_build(NULL, "ADDR", &out, &n), (size_t)-1);
    /* PROTO alone but no HELO/EHLO yet: nothing can be sent. */
    f.proto = NULL;
    assert_int_equal(xclient_build(&f, "PROTO", &out, &n), (size_t)-1);
    assert_null(out);
}

static void test_xclient_unavailable(void **state)
{
    (void)state;
    struct client_facts f = {.addr = NULL, .family = 0, .port = 0};
    char *out;
    unsigned n;
    xclient_build(&f, ALL_ATTRS, &out, &n);
    /* PROTO has no [UNAVAILABLE] in Postfix: left out. */
    assert_string_equal(out, "XCLIENT HELO=[UNAVAILABLE] LOGIN=[UNAVAILABLE] NAME=[UNAVAILABLE] "
                             "ADDR=[UNAVAILABLE] PORT=[UNAVAILABLE]\r\n");
    free(out);

    /* Empty strings and values Postfix would refuse count as unavailable. */
    struct client_facts g = facts4();
    g.name = "";
    g.helo = "";
    g.login = "";
    g.addr = "not-an-address";
    g.port = 70000;
    g.proto = "LMTP";
    xclient_build(&g, ALL_ATTRS, &out, &n);
    assert_string_equal(out, "XCLIENT HELO=[UNAVAILABLE] LOGIN=[UNAVAILABLE] NAME=[UNAVAILABLE] "
                             "ADDR=[UNAVAILABLE] PORT=[UNAVAILABLE]\r\n");
    free(out);

    g.name = "192.0.2.1";
    g.addr = "[192.0.2.1]";
    xclient_build(&g, "NAME ADDR", &out, &n);
    assert_string_equal(out, "XCLIENT NAME=[UNAVAILABLE] ADDR=[UNAVAILABLE]\r\n");
    free(out);
    g.name = "bad name.example";
    xclient_build(&g, "NAME", &out, &n);
    assert_string_equal(out, "XCLIENT NAME=[UNAVAILABLE]\r\n");
    free(out);
    g.name = "a..example";
    xclient_build(&g, "NAME", &out, &n);
    assert_string_equal(out, "XCLIENT NAME=[UNAVAILABLE]\r\n");
    free(out);
}

static void test_xclient_proto(void **state)
{
    (void)state;
    struct client_facts f = facts4();
    char *out;
    unsigned n;
    f.proto = "smtp";
    xclient_build(&f, "PROTO", &out, &n);
    assert_string_equal(out, "XCLIENT PROTO=SMTP\r\n");
    free(out);
    f.proto = "Esmtp";
    xclient_build(&f, "PROTO", &out, &n);
    assert_string_equal(out, "XCLIENT PROTO=ESMTP\r\n");
    free(out);
}

static void test_xclient_xtext(void **state)
{
    (void)state;
    struct client_facts f = facts4();
    f.helo = "a+b=c d\x01\xc3\xa9";
    f.login = "joe+tag=1";
    char *out;
    unsigned n;
    xclient_build(&f, "HELO LOGIN", &out, &n);
    assert_string_equal(out, "XCLIENT HELO=a+2Bb+3Dc+20d+01+C3+A9 LOGIN=joe+2Btag+3D1\r\n");
    free(out);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* A 255-octet host name of 63-octet labels. */
static char *long_name(char c)
{
    char *s = repeat(c, 255);
    for (size_t i = 63; i < 255; i += 64)
        s[i] = '.';
    return s;
}

static void test_xclient_split(void **state)
{
    (void)state;
    struct client_facts f = facts4();
    char *name = long_name('n');
    char *helo = long_name('h');
    f.name = name;
    f.helo = helo;
    f.addr = "2001:db8::1";
    f.family = AF_INET6;
    f.login = "user";
    char *out;
    unsigned n;
    size_t len = xclient_build(&f, ALL_ATTRS, &out, &n);
    assert_int_equal(n, 2);
    assert_int_equal(check_lines(out, len), 2);

    /* HELO alone first; NAME, ADDR, PORT and what else fits last. */
    char want[1200];
    strcpy(want, "XCLIENT HELO=");
    strcat(want, helo);
    strcat(want, "\r\nXCLIENT PROTO=ESMTP LOGIN=user NAME=");
    strcat(want, name);
    strcat(want, " ADDR=IPV6:2001:db8::1 PORT=40000\r\n");
    assert_string_equal(out, want);
    free(out);
    free(name);
    free(helo);
}

static void test_xclient_long_values(void **state)
{
    (void)state;
    struct client_facts f = facts4();
    char *out;
    unsigned n;

    /* Exactly 255 octets after encoding is sent; 256 is not (Postfix limit). */
    char *helo = repeat('h', 255);
    f.helo = helo;
    xclient_build(&f, "HELO", &out, &n);
    assert_int_equal(strlen(out), 8 + 5 + 255 + 2);
    free(out);
    helo[254] = '+'; /* becomes "+2B": 257 octets */
    xclient_build(&f, "HELO", &out, &n);
    assert_string_equal(out, "XCLIENT HELO=[UNAVAILABLE]\r\n");
    free(out);
    free(helo);

    char *big = repeat('x', 5000);
    f.helo = big;
    f.login = big;
    f.name = big;
    size_t len = xclient_build(&f, ALL_ATTRS, &out, &n);
    assert_int_equal(n, 1);
    check_lines(out, len);
    free(out);
    free(big);

    /* Long values: lines still fit, NAME/ADDR/PORT last, LOGIN joins the last
     * line before HELO does. */
    char *name = long_name('n');
    char *h = long_name('h');
    char *login = repeat('l', 100);
    f.name = name;
    f.helo = h;
    f.login = login;
    f.addr = "2001:db8:1234:5678:9abc:def0:1234:5678";
    len = xclient_build(&f, ALL_ATTRS, &out, &n);
    assert_int_equal(check_lines(out, len), n);
    assert_int_equal(n, 2);
    const char *last = strstr(out, "\r\n") + 2;
    assert_non_null(strstr(last, " NAME="));
    assert_non_null(strstr(last, " ADDR=IPV6:2001:db8:1234:5678:9abc:def0:1234:5678"));
    assert_non_null(strstr(last, " PORT=40000\r\n"));
    assert_non_null(strstr(last, " LOGIN="));
    assert_non_null(strstr(last, " PROTO=ESMTP"));
    assert_null(strstr(last, " HELO="));
    free(out);
    free(login);

    /* Every value as long as allowed: three lines. */
    login = repeat('l', 255);
    f.login = login;
    len = xclient_build(&f, ALL_ATTRS, &out, &n);
    assert_int_equal(check_lines(out, len), n);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "XCLIENT HELO=", 13);
    const char *second = strstr(out, "\r\n") + 2;
    assert_memory_equal(second, "XCLIENT LOGIN=", 14);
    last = strstr(second, "\r\n") + 2;
    assert_memory_equal(last, "XCLIENT PROTO=ESMTP NAME=", 25);
    free(out);
    free(name);
    free(h);
    free(login);
}

/* ---- PROXY v2 ---- */

static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static struct sockaddr_in sin4(const char *a, uint16_t port)
{
    struct sockaddr_in s;
    memset(&s, 0, sizeof(s));
    s.sin_family = AF_INET;
    s.sin_port = htons(port);
    inet_pton(AF_INET, a, &s.sin_addr);
    return s;
}

static struct sockaddr_in6 sin6(const char *a, uint16_t port)
{
    struct sockaddr_in6 s;
    memset(&s, 0, sizeof(s));
    s.sin6_family = AF_INET6;
    s.sin6_port = htons(port);
    inet_pton(AF_INET6, a, &s.sin6_addr);
    return s;
}

static void test_proxy_v2_ipv4(void **state)
{
    (void)state;
    struct sockaddr_in src = sin4("192.0.2.1", 40000);
    struct sockaddr_in dst = sin4("198.51.100.25", 25);
    uint8_t out[232];
    memset(out, 0xAA, sizeof(out));
    size_t n = proxy_v2_build((struct sockaddr *)&src, (struct sockaddr *)&dst, out);
    static const uint8_t want[28] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, /* sig */
        0x21, 0x11, 0x00, 0x0C,                                                 /* hdr */
        192,  0,    2,    1,                                                    /* src */
        198,  51,   100,  25,                                                   /* dst */
        0x9C, 0x40,                                                             /* 40000 */
        0x00, 0x19,                                                             /* 25 */
    };
    assert_int_equal(n, 28);
    assert_memory_equal(out, want, 28);
    assert_int_equal(out[28], 0xAA);
}

static void test_proxy_v2_ipv6(void **state)
{
    (void)state;
    struct sockaddr_in6 src = sin6("2001:db8::1", 50123);
    struct sockaddr_in6 dst = sin6("2001:db8:1::25", 25);
    uint8_t out[232];
    size_t n = proxy_v2_build((struct sockaddr *)&src, (struct sockaddr *)&dst, out);
    static const uint8_t want[52] = {
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
        0x55, 0x49, 0x54, 0x0A, 0x21, 0x21, 0x00, 0x24, /* 36 */
        0x20, 0x01, 0x0d, 0xb8, 0,    0,    0,    0,
        0,    0,    0,    0,    0,    0,    0,    0x01, /* src */
        0x20, 0x01, 0x0d, 0xb8, 0,    0x01, 0,    0,
        0,    0,    0,    0,    0,    0,    0,    0x25, /* dst */
        0xC3, 0xCB,                                     /* 50123 */
        0x00, 0x19,                                     /* 25 */
    };
    assert_int_equal(n, 52);
    assert_memory_equal(out, want, 52);
}

static void test_proxy_v2_mapped_and_mixed(void **state)
{
    (void)state;
    uint8_t out[232];

    /* Both IPv4-mapped: sent as TCP4. */
    struct sockaddr_in6 src = sin6("::ffff:192.0.2.1", 1234);
    struct sockaddr_in6 dst = sin6("::ffff:192.0.2.2", 25);
    size_t n = proxy_v2_build((struct sockaddr *)&src, (struct sockaddr *)&dst, out);
    assert_int_equal(n, 28);
    assert_int_equal(out[13], 0x11);
    static const uint8_t block4[12] = {192, 0, 2, 1, 192, 0, 2, 2, 0x04, 0xD2, 0x00, 0x19};
    assert_memory_equal(out + 16, block4, 12);

    /* Mapped source with an IPv4 destination: TCP4 too. */
    struct sockaddr_in dst4 = sin4("192.0.2.2", 25);
    n = proxy_v2_build((struct sockaddr *)&src, (struct sockaddr *)&dst4, out);
    assert_int_equal(n, 28);
    assert_memory_equal(out + 16, block4, 12);

    /* IPv4 source with a real IPv6 destination: TCP6 with the source mapped. */
    struct sockaddr_in src4 = sin4("192.0.2.1", 1234);
    struct sockaddr_in6 dst6 = sin6("2001:db8::25", 25);
    n = proxy_v2_build((struct sockaddr *)&src4, (struct sockaddr *)&dst6, out);
    assert_int_equal(n, 52);
    assert_int_equal(out[12], 0x21);
    assert_int_equal(out[13], 0x21);
    assert_int_equal(out[14], 0);
    assert_int_equal(out[15], 36);
    static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
    assert_memory_equal(out + 16, mapped, 16);
    assert_memory_equal(out + 32, &dst6.sin6_addr, 16);
    assert_int_equal(out[48], 0x04);
    assert_int_equal(out[49], 0xD2);
}

static void test_proxy_v2_local(void **state)
{
    (void)state;
    uint8_t out[232];
    memset(out, 0xAA, sizeof(out));
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    strcpy(un.sun_path, "/run/smtpgate.sock");
    struct sockaddr_in dst = sin4("192.0.2.2", 25);

    size_t n = proxy_v2_build((struct sockaddr *)&un, (struct sockaddr *)&dst, out);
    assert_int_equal(n, 16);
    assert_memory_equal(out, sig, 12);
    assert_int_equal(out[12], 0x20);
    assert_int_equal(out[13], 0x00);
    assert_int_equal(out[14], 0);
    assert_int_equal(out[15], 0);
    assert_int_equal(out[16], 0xAA);

    n = proxy_v2_build(NULL, (struct sockaddr *)&dst, out);
    assert_int_equal(n, 16);
    assert_int_equal(out[12], 0x20);
    n = proxy_v2_build((struct sockaddr *)&dst, NULL, out);
    assert_int_equal(n, 16);

    struct sockaddr_storage unspec;
    memset(&unspec, 0, sizeof(unspec));
    unspec.ss_family = AF_UNSPEC;
    n = proxy_v2_build((struct sockaddr *)&unspec, (struct sockaddr *)&unspec, out);
    assert_int_equal(n, 16);
    assert_int_equal(out[13], 0x00);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xclient_ipv4),
        cmocka_unit_test(test_xclient_name_tempunavail),
        cmocka_unit_test(test_xclient_ipv6),
        cmocka_unit_test(test_xclient_only_announced),
        cmocka_unit_test(test_xclient_nothing_to_send),
        cmocka_unit_test(test_xclient_unavailable),
        cmocka_unit_test(test_xclient_proto),
        cmocka_unit_test(test_xclient_xtext),
        cmocka_unit_test(test_xclient_split),
        cmocka_unit_test(test_xclient_long_values),
        cmocka_unit_test(test_proxy_v2_ipv4),
        cmocka_unit_test(test_proxy_v2_ipv6),
        cmocka_unit_test(test_proxy_v2_mapped_and_mixed),
        cmocka_unit_test(test_proxy_v2_local),
    };
    return cmocka_run_group_tests_name("client_identity", tests, NULL, NULL);
}
