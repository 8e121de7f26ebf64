/*
 * Unit tests for proxy_header: v1 TCP4/TCP6/UNKNOWN, every syntax defect the
 * specification rules out, v2 PROXY/LOCAL over IPv4 and IPv6, TLVs (authority,
 * SSL, overruns), prefixes that must ask for more at every length, and the
 * version restrictions of a listener.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "codec/proxy_header.h"

#define BOTH (PROXY_HDR_ALLOW_V1 | PROXY_HDR_ALLOW_V2)

static enum proxy_hdr_status parse_text(const char *s, unsigned allow, struct proxy_header *h,
                                        size_t *used)
{
    return proxy_header_parse((const uint8_t *)s, strlen(s), allow, h, used);
}

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t n, unsigned *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)n);
        *port = ntohs(a->sin_port);
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, out, (socklen_t)n);
        *port = ntohs(a->sin6_port);
    }
}

static void test_v1_tcp4(void **state)
{
    (void)state;
    struct proxy_header h;
    size_t used;
    const char *s = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO x\r\n";
    assert_int_equal(parse_text(s, BOTH, &h, &used), PROXY_HDR_OK);
    assert_int_equal(used, strlen("PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n"));
    assert_int_equal(h.version, 1);
    assert_false(h.local);
    char a[64];
    unsigned port;
    addr_text(&h.src, a, sizeof(a), &port);
    assert_string_equal(a, "192.0.2.7");
    assert_int_equal(port, 56324);
    addr_text(&h.dst, a, sizeof(a), &port);
    assert_string_equal(a, "198.51.100.1");
    assert_int_equal(port, 25);
    assert_int_equal(h.addr_len, sizeof(struct sockaddr_in));
}

static void test_v1_tcp6(void **state)
{
    (void)state;
    struct proxy_header h;
    size_t used;
    assert_int_equal(parse_text("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", BOTH, &h, &used),
                     PROXY_HDR_OK);
    char a[64];
    unsigned port;
    addr_text(&h.src, a, sizeof(a), &port);
    assert_string_equal(a, "2001:db8::1");
    assert_int_equal(port, 1);
    addr_text(&h.dst, a, sizeof(a), &port);
    assert_int_equal(port, 65535);
}

static void test_v1_unknown(void **state)
{
    (void)state;
    struct proxy_header h;
    size_t used;
    assert_int_equal(parse_text("PROXY UNKNOWN\r\n", BOTH, &h, &used), PROXY_HDR_OK);
    assert_true(h.local);
    assert_int_equal(used, 15);
    assert_int_equal(parse_text("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", BOTH, &h, &used),
                     PROXY_HDR_OK);
    assert_true(h.local);
}

static void test_v1_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\n",     /* no CR */
        "PROXY TCP4 192.0.2.7  198.51.100.1 56324 25\r\n",  /* double space */
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",      /* missing port */
        "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25 9\r\n", /* extra field */
        "PROXY TCP4 192.0.2.700 198.51.100.1 1 25\r\n",     /* bad address */
        "PROXY TCP4 2001:db8::1 198.51.100.1 1 25\r\n",     /* family mismatch */
        "PROXY TCP6 192.0.2.7 198.51.100.1 1 25\r\n",       /* family mismatch */
        "PROXY TCP4 192.0.2.7 198.51.100.1 65536 25\r\n",   /* port range */
        "PROXY TCP4 192.0.2.7 198.51.100.1 025 25\r\n",     /* leading zero */
        "PROXY TCP4 192.0.2.7 198.51.100.1 -1 25\r\n",      /* sign */
        "PROXY UDP4 192.0.2.7 198.51.100.1 1 25\r\n",       /* protocol */
        "PROXY TCP4 192.0.2.7 198.51.100.1 1 25 \r\n",      /* trailing space */
        "PROXY\tTCP4 192.0.2.7 198.51.100.1 1 25\r\n",      /* tab */
        "PROXY \r\n",
        "proxy TCP4 192.0.2.7 198.51.100.1 1 25\r\n", /* case */
        "EHLO client.example\r\n",
        "GET / HTTP/1.0\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct proxy_header h;
        size_t used;
        if (parse_text(bad[i], BOTH, &h, &used) != PROXY_HDR_INVALID)
            fail_msg("accepted: %s", bad[i]);
    }
}

static void test_v1_too_long(void **state)
{
    (void)state;
    char buf[200];
    memset(buf, 'A', sizeof(buf));
    memcpy(buf, "PROXY UNKNOWN ", 14);
    struct proxy_header h;
    size_t used;
    /* 107 octets without a line end: no header can be that long. */
    assert_int_equal(proxy_header_parse((uint8_t *)buf, PROXY_HDR_V1_MAX - 1, BOTH, &h, &used),
                     PROXY_HDR_MORE);
    assert_int_equal(proxy_header_parse((uint8_t *)buf, PROXY_HDR_V1_MAX, BOTH, &h, &used),
                     PROXY_HDR_INVALID);
    /* The longest legal one fits exactly. */
    memcpy(buf + PROXY_HDR_V1_MAX - 2, "\r\n", 2);
    assert_int_equal(proxy_header_parse((uint8_t *)buf, PROXY_HDR_V1_MAX, BOTH, &h, &used),
                     PROXY_HDR_OK);
    assert_int_equal(used, PROXY_HDR_V1_MAX);
}

static size_t v2_build(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body,
                       size_t body_len)
{
    static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    memcpy(out, sig, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(body_len >> 8);
    out[15] = (uint8_t)body_len;
    memcpy(out + 16, body, body_len);
    return 16 + body_len;
}

static void test_v2_inet(void **state)
{
    (void)state;
    uint8_t body[64] = {192, 0, 2, 9, 127, 0, 0, 1, 0xC0, 0x01, 0x00, 0x19};
    /* authority "mx.example" and an SSL TLV with a version sub-TLV */
    size_t n = 12;
    body[n++] = 0x02;
    body[n++] = 0;
    body[n++] = 10;
    memcpy(body + n, "mx.example", 10);
    n += 10;
    body[n++] = 0x20;
    body[n++] = 0;
    body[n++] = 5 + 3 + 7;
    body[n++] = 0x01;
    memset(body + n, 0, 4);
    n += 4;
    body[n++] = 0x21;
    body[n++] = 0;
    body[n++] = 7;
    memcpy(body + n, "TLSv1.3", 7);
    n += 7;
    uint8_t buf[128];
    size_t total = v2_build(buf, 0x21, 0x11, body, n);
    buf[total] = 'E'; /* the client's bytes follow and must not be consumed */
    struct proxy_header h;
    size_t used;
    assert_int_equal(proxy_header_parse(buf, total + 1, BOTH, &h, &used), PROXY_HDR_OK);
    assert_int_equal(used, total);
    assert_int_equal(h.version, 2);
    assert_false(h.local);
    char a[64];
    unsigned port;
    addr_text(&h.src, a, sizeof(a), &port);
    assert_string_equal(a, "192.0.2.9");
    assert_int_equal(port, 0xC001);
    addr_text(&h.dst, a, sizeof(a), &port);
    assert_int_equal(port, 25);
    assert_string_equal(h.authority, "mx.example");
    assert_true(h.ssl);

    /* Every shorter prefix asks for more. */
    for (size_t i = 0; i < total; i++)
        assert_int_equal(proxy_header_parse(buf, i, BOTH, &h, &used), PROXY_HDR_MORE);
}

static void test_v2_inet6_local(void **state)
{
    (void)state;
    uint8_t body[36];
    memset(body, 0, sizeof(body));
    body[0] = 0x20;
    body[1] = 0x01;
    body[15] = 0x05;
    body[33] = 77;
    uint8_t buf[64];
    size_t total = v2_build(buf, 0x21, 0x21, body, 36);
    struct proxy_header h;
    size_t used;
    assert_int_equal(proxy_header_parse(buf, total, PROXY_HDR_ALLOW_V2, &h, &used), PROXY_HDR_OK);
    char a[64];
    unsigned port;
    addr_text(&h.src, a, sizeof(a), &port);
    assert_string_equal(a, "2001::5");
    assert_int_equal(port, 77);

    total = v2_build(buf, 0x20, 0x00, body, 0); /* LOCAL, health check */
    assert_int_equal(proxy_header_parse(buf, total, BOTH, &h, &used), PROXY_HDR_OK);
    assert_true(h.local);
    assert_int_equal(used, 16);
}

static void test_v2_invalid(void **state)
{
    (void)state;
    uint8_t body[64];
    memset(body, 0, sizeof(body));
    uint8_t buf[128];
    struct proxy_header h;
    size_t used;
    size_t total;

    total = v2_build(buf, 0x11, 0x11, body, 12); /* version 1 in the v2 frame */
    assert_int_equal(proxy_header_parse(buf, total, BOTH, &h, &used), PROXY_HDR_INVALID);
    total = v2_build(buf, 0x22, 0x11, body, 12); /* command 2 */
    assert_int_equal(proxy_header_parse(buf, total, BOTH, &h, &used), PROXY_HDR_INVALID);
    total = v2_build(buf, 0x21, 0x11, body, 11); /* block too short for IPv4 */
    assert_int_equal(proxy_header_parse(buf, total, BOTH, &h, &used), PROXY_HDR_INVALID);
    total = v2_build(buf, 0x21, 0x21, body, 20); /* too short for IPv6 */
    assert_int_equal(proxy_header_parse(buf, total, BOTH, &h, &used), PROXY_HDR_INVALID);
    total = v2_build(buf, 0x21, 0x12, body, 12); /* UDP */
    assert_int_equal(proxy_header_parse(buf, total, BOTH, &h, &used), PROXY_HDR_INVALID);
    total = v2_build(buf, 0x21, 0x41, body, 12); /* family 4 */
    assert_int_equal(proxy_header_parse(buf, total, BOTH, &h, &used), PROXY_HDR_INVALID);
    /* TLV whose length runs past the header */
    body[12] = 0x02;
    body[13] = 0;
    body[14] = 9;
    total = v2_build(buf, 0x21, 0x11, body, 12 + 3 + 4);
    assert_int_equal(proxy_header_parse(buf, total, BOTH, &h, &used), PROXY_HDR_INVALID);
    /* TLV header cut short */
    total = v2_build(buf, 0x21, 0x11, body, 12 + 2);
    assert_int_equal(proxy_header_parse(buf, total, BOTH, &h, &used), PROXY_HDR_INVALID);
    /* SSL TLV too short for client+verify */
    body[12] = 0x20;
    body[13] = 0;
    body[14] = 2;
    total = v2_build(buf, 0x21, 0x11, body, 12 + 3 + 2);
    assert_int_equal(proxy_header_parse(buf, total, BOTH, &h, &used), PROXY_HDR_INVALID);
    /* unknown TLVs are skipped */
    body[12] = 0xE0;
    body[13] = 0;
    body[14] = 2;
    total = v2_build(buf, 0x21, 0x11, body, 12 + 3 + 2);
    assert_int_equal(proxy_header_parse(buf, total, BOTH, &h, &used), PROXY_HDR_OK);
}

static void test_versions_allowed(void **state)
{
    (void)state;
    struct proxy_header h;
    size_t used;
    assert_int_equal(parse_text("PROXY UNKNOWN\r\n", PROXY_HDR_ALLOW_V2, &h, &used),
                     PROXY_HDR_INVALID);
    uint8_t buf[32];
    uint8_t body[1];
    size_t total = v2_build(buf, 0x20, 0x00, body, 0);
    assert_int_equal(proxy_header_parse(buf, total, PROXY_HDR_ALLOW_V1, &h, &used),
                     PROXY_HDR_INVALID);
    /* A prefix tells at once when it cannot become a header. */
    assert_int_equal(parse_text("PRO", BOTH, &h, &used), PROXY_HDR_MORE);
    assert_int_equal(parse_text("PRX", BOTH, &h, &used), PROXY_HDR_INVALID);
    assert_int_equal(parse_text("", BOTH, &h, &used), PROXY_HDR_MORE);
    assert_int_equal(proxy_header_parse(buf, 5, BOTH, &h, &used), PROXY_HDR_MORE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),          cmocka_unit_test(test_v1_tcp6),
        cmocka_unit_test(test_v1_unknown),       cmocka_unit_test(test_v1_invalid),
        cmocka_unit_test(test_v1_too_long),      cmocka_unit_test(test_v2_inet),
        cmocka_unit_test(test_v2_inet6_local),   cmocka_unit_test(test_v2_invalid),
        cmocka_unit_test(test_versions_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
