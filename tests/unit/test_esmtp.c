/*
 * Unit tests for esmtp: splitting, every MAIL and RCPT parameter valid and
 * invalid, parameters of extensions that were not advertised, duplicates, the
 * parameter count limit, every reply, and xtext validation and encoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "codec/esmtp.h"

#define ALL_CAPS                                                                                   \
    (ESMTP_CAP_SIZE | ESMTP_CAP_8BITMIME | ESMTP_CAP_BINARYMIME | ESMTP_CAP_SMTPUTF8 |             \
     ESMTP_CAP_DSN | ESMTP_CAP_AUTH | ESMTP_CAP_CHUNKING | ESMTP_CAP_PIPELINING |                  \
     ESMTP_CAP_ENHANCEDSTATUSCODES)

static enum esmtp_status mailp(const char *s, unsigned caps, struct esmtp_mail *m)
{
    return esmtp_mail_params(s, strlen(s), caps, m);
}

static enum esmtp_status rcptp(const char *s, unsigned caps, struct esmtp_rcpt *r)
{
    return esmtp_rcpt_params(s, strlen(s), caps, r);
}

static void assert_span(const char *s, size_t len, const char *want)
{
    assert_non_null(s);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(s, want, len);
}

/* ---- esmtp_params_split ---- */

static void test_split_basic(void **state)
{
    (void)state;
    struct esmtp_param p[4];
    size_t n;
    const char *s = "SIZE=100  BODY=8BITMIME SMTPUTF8";
    assert_int_equal(esmtp_params_split(s, strlen(s), p, 4, &n), ESMTP_OK);
    assert_int_equal(n, 3);
    assert_span(p[0].key, p[0].key_len, "SIZE");
    assert_span(p[0].value, p[0].value_len, "100");
    assert_span(p[1].key, p[1].key_len, "BODY");
    assert_span(p[1].value, p[1].value_len, "8BITMIME");
    assert_span(p[2].key, p[2].key_len, "SMTPUTF8");
    assert_null(p[2].value);
    assert_int_equal(p[2].value_len, 0);
}

static void test_split_empty(void **state)
{
    (void)state;
    struct esmtp_param p[2];
    size_t n = 99;
    assert_int_equal(esmtp_params_split("", 0, p, 2, &n), ESMTP_OK);
    assert_int_equal(n, 0);
    n = 99;
    assert_int_equal(esmtp_params_split(NULL, 0, p, 2, &n), ESMTP_OK);
    assert_int_equal(n, 0);
    assert_int_equal(esmtp_params_split("   \t ", 5, p, 2, &n), ESMTP_OK);
    assert_int_equal(n, 0);
    assert_int_equal(esmtp_params_split(" X-Y-1 ", 7, p, 2, &n), ESMTP_OK);
    assert_int_equal(n, 1);
    assert_span(p[0].key, p[0].key_len, "X-Y-1");
}

static void test_split_syntax(void **state)
{
    (void)state;
    struct esmtp_param p[4];
    size_t n;
    static const char *const bad[] = {
        "=x",       "-SIZE=1",    "SI_ZE=1",     "SIZE=",  "SIZE==1",
        "SIZE=1=2", "SIZE=a\x01", "S\xc3\xa9=1", "A=\x7f", "X.Y",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(esmtp_params_split(bad[i], strlen(bad[i]), p, 4, &n), ESMTP_SYNTAX);
    assert_int_equal(esmtp_params_split("A=b\0c", 5, p, 4, &n), ESMTP_SYNTAX);
    /* UTF-8 is allowed in values (RFC 6531). */
    assert_int_equal(esmtp_params_split("X=\xc3\xa9", 4, p, 4, &n), ESMTP_OK);
    assert_int_equal(n, 1);
    /* Only len bytes are read. */
    assert_int_equal(esmtp_params_split("A=1 B=", 3, p, 4, &n), ESMTP_OK);
    assert_int_equal(n, 1);
    assert_span(p[0].value, p[0].value_len, "1");
}

static void test_split_too_many(void **state)
{
    (void)state;
    struct esmtp_param p[ESMTP_MAX_PARAMS];
    size_t n;
    char buf[256] = "";
    for (int i = 0; i < ESMTP_MAX_PARAMS; i++) {
        char one[16];
        snprintf(one, sizeof(one), "K%d=v ", i);
        strcat(buf, one);
    }
    assert_int_equal(esmtp_params_split(buf, strlen(buf), p, ESMTP_MAX_PARAMS, &n), ESMTP_OK);
    assert_int_equal(n, ESMTP_MAX_PARAMS);
    strcat(buf, "ONE-MORE");
    assert_int_equal(esmtp_params_split(buf, strlen(buf), p, ESMTP_MAX_PARAMS, &n), ESMTP_TOO_MANY);
    assert_int_equal(esmtp_params_split("A B", 3, p, 1, &n), ESMTP_TOO_MANY);
    assert_int_equal(esmtp_params_split("A", 1, p, 0, &n), ESMTP_TOO_MANY);

    struct esmtp_mail m;
    assert_int_equal(mailp(buf, ALL_CAPS, &m), ESMTP_TOO_MANY);
}

/* ---- MAIL parameters ---- */

static void test_mail_none(void **state)
{
    (void)state;
    struct esmtp_mail m;
    assert_int_equal(mailp("", 0, &m), ESMTP_OK);
    assert_false(m.has_size);
    assert_int_equal(m.body, ESMTP_BODY_UNSPEC);
    assert_false(m.smtputf8);
    assert_int_equal(m.ret, ESMTP_RET_UNSPEC);
    assert_null(m.envid);
    assert_null(m.auth);
    assert_int_equal(esmtp_mail_params(NULL, 0, ALL_CAPS, &m), ESMTP_OK);
}

static void test_mail_all(void **state)
{
    (void)state;
    struct esmtp_mail m;
    assert_int_equal(mailp("SIZE=12345 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B1 "
                           "AUTH=user+2Bx@example.com",
                           ALL_CAPS, &m),
                     ESMTP_OK);
    assert_true(m.has_size);
    assert_true(m.size == 12345);
    assert_int_equal(m.body, ESMTP_BODY_8BITMIME);
    assert_true(m.smtputf8);
    assert_int_equal(m.ret, ESMTP_RET_HDRS);
    assert_span(m.envid, m.envid_len, "QQ+2B1");
    assert_span(m.auth, m.auth_len, "user+2Bx@example.com");
}

static void test_mail_case(void **state)
{
    (void)state;
    struct esmtp_mail m;
    assert_int_equal(mailp("size=1 body=binarymime smtputf8 ret=full", ALL_CAPS, &m), ESMTP_OK);
    assert_true(m.size == 1);
    assert_int_equal(m.body, ESMTP_BODY_BINARYMIME);
    assert_true(m.smtputf8);
    assert_int_equal(m.ret, ESMTP_RET_FULL);
    assert_int_equal(mailp("Body=7bit", ALL_CAPS, &m), ESMTP_OK);
    assert_int_equal(m.body, ESMTP_BODY_7BIT);
}

static void test_mail_size(void **state)
{
    (void)state;
    struct esmtp_mail m;
    assert_int_equal(mailp("SIZE=0", ESMTP_CAP_SIZE, &m), ESMTP_OK);
    assert_true(m.has_size && m.size == 0);
    assert_int_equal(mailp("SIZE=18446744073709551615", ESMTP_CAP_SIZE, &m), ESMTP_OK);
    assert_true(m.size == UINT64_MAX);
    assert_int_equal(mailp("SIZE=18446744073709551614", ESMTP_CAP_SIZE, &m), ESMTP_OK);
    assert_true(m.size == UINT64_MAX - 1);
    /* Larger than 64 bits: saturates. */
    assert_int_equal(mailp("SIZE=18446744073709551616", ESMTP_CAP_SIZE, &m), ESMTP_OK);
    assert_true(m.size == UINT64_MAX);
    assert_int_equal(mailp("SIZE=99999999999999999999999999999999999", ESMTP_CAP_SIZE, &m),
                     ESMTP_OK);
    assert_true(m.size == UINT64_MAX);

    assert_int_equal(mailp("SIZE", ESMTP_CAP_SIZE, &m), ESMTP_BAD_SIZE);
    assert_int_equal(mailp("SIZE=abc", ESMTP_CAP_SIZE, &m), ESMTP_BAD_SIZE);
    assert_int_equal(mailp("SIZE=-1", ESMTP_CAP_SIZE, &m), ESMTP_BAD_SIZE);
    assert_int_equal(mailp("SIZE=1k", ESMTP_CAP_SIZE, &m), ESMTP_BAD_SIZE);
    assert_int_equal(mailp("SIZE=+1", ESMTP_CAP_SIZE, &m), ESMTP_BAD_SIZE);
    assert_int_equal(mailp("SIZE=1", 0, &m), ESMTP_UNKNOWN);
}

static void test_mail_body(void **state)
{
    (void)state;
    struct esmtp_mail m;
    assert_int_equal(mailp("BODY=7BIT", ESMTP_CAP_8BITMIME, &m), ESMTP_OK);
    assert_int_equal(m.body, ESMTP_BODY_7BIT);
    assert_int_equal(mailp("BODY=8BITMIME", ESMTP_CAP_8BITMIME, &m), ESMTP_OK);
    assert_int_equal(m.body, ESMTP_BODY_8BITMIME);
    assert_int_equal(mailp("BODY=BINARYMIME", ESMTP_CAP_BINARYMIME, &m), ESMTP_OK);
    assert_int_equal(m.body, ESMTP_BODY_BINARYMIME);

    assert_int_equal(mailp("BODY=8BITMIME", 0, &m), ESMTP_UNKNOWN);
    assert_int_equal(mailp("BODY=BINARYMIME", ESMTP_CAP_8BITMIME, &m), ESMTP_UNKNOWN);
    assert_int_equal(mailp("BODY=8BITMIME", ESMTP_CAP_BINARYMIME, &m), ESMTP_UNKNOWN);
    assert_int_equal(mailp("BODY=8BIT", ESMTP_CAP_8BITMIME, &m), ESMTP_BAD_BODY);
    assert_int_equal(mailp("BODY=", ESMTP_CAP_8BITMIME, &m), ESMTP_SYNTAX);
    assert_int_equal(mailp("BODY", ESMTP_CAP_8BITMIME, &m), ESMTP_BAD_BODY);
    assert_int_equal(mailp("BODY=8BITMIMEX", ESMTP_CAP_8BITMIME, &m), ESMTP_BAD_BODY);
}

static void test_mail_smtputf8(void **state)
{
    (void)state;
    struct esmtp_mail m;
    assert_int_equal(mailp("SMTPUTF8", ESMTP_CAP_SMTPUTF8, &m), ESMTP_OK);
    assert_true(m.smtputf8);
    assert_int_equal(mailp("SMTPUTF8=yes", ESMTP_CAP_SMTPUTF8, &m), ESMTP_SMTPUTF8_VALUE);
    assert_int_equal(mailp("SMTPUTF8", ESMTP_CAP_8BITMIME, &m), ESMTP_UNKNOWN);
}

static void test_mail_dsn(void **state)
{
    (void)state;
    struct esmtp_mail m;
    assert_int_equal(mailp("RET=FULL ENVID=abc", ESMTP_CAP_DSN, &m), ESMTP_OK);
    assert_int_equal(m.ret, ESMTP_RET_FULL);
    assert_span(m.envid, m.envid_len, "abc");
    assert_int_equal(mailp("RET=HEADERS", ESMTP_CAP_DSN, &m), ESMTP_BAD_RET);
    assert_int_equal(mailp("RET", ESMTP_CAP_DSN, &m), ESMTP_BAD_RET);
    assert_int_equal(mailp("ENVID", ESMTP_CAP_DSN, &m), ESMTP_BAD_XTEXT);
    assert_int_equal(mailp("ENVID=a+2", ESMTP_CAP_DSN, &m), ESMTP_BAD_XTEXT);
    assert_int_equal(mailp("ENVID=a+2b", ESMTP_CAP_DSN, &m), ESMTP_BAD_XTEXT);
    assert_int_equal(mailp("ENVID=\xc3\xa9", ESMTP_CAP_DSN, &m), ESMTP_BAD_XTEXT);
    assert_int_equal(mailp("RET=FULL", 0, &m), ESMTP_UNKNOWN);
    assert_int_equal(mailp("ENVID=abc", ESMTP_CAP_SIZE, &m), ESMTP_UNKNOWN);
    /* RCPT parameters are unknown on MAIL. */
    assert_int_equal(mailp("NOTIFY=NEVER", ALL_CAPS, &m), ESMTP_UNKNOWN);
    assert_int_equal(mailp("ORCPT=rfc822;a@b", ALL_CAPS, &m), ESMTP_UNKNOWN);
}

static void test_mail_auth(void **state)
{
    (void)state;
    struct esmtp_mail m;
    assert_int_equal(mailp("AUTH=<>", ESMTP_CAP_AUTH, &m), ESMTP_OK);
    assert_span(m.auth, m.auth_len, "<>");
    assert_int_equal(mailp("AUTH=e+3Dmc2@example.com", ESMTP_CAP_AUTH, &m), ESMTP_OK);
    assert_span(m.auth, m.auth_len, "e+3Dmc2@example.com");
    assert_int_equal(mailp("AUTH", ESMTP_CAP_AUTH, &m), ESMTP_BAD_XTEXT);
    assert_int_equal(mailp("AUTH=a+zz", ESMTP_CAP_AUTH, &m), ESMTP_BAD_XTEXT);
    assert_int_equal(mailp("AUTH=a+", ESMTP_CAP_AUTH, &m), ESMTP_BAD_XTEXT);
    assert_int_equal(mailp("AUTH=<x>", ESMTP_CAP_AUTH, &m), ESMTP_OK);
    assert_int_equal(mailp("AUTH=<>", 0, &m), ESMTP_UNKNOWN);
}

static void test_mail_unknown_and_duplicates(void **state)
{
    (void)state;
    struct esmtp_mail m;
    assert_int_equal(mailp("XFOO=1", ALL_CAPS, &m), ESMTP_UNKNOWN);
    assert_int_equal(mailp("SIZE=1 XFOO", ALL_CAPS, &m), ESMTP_UNKNOWN);
    assert_int_equal(mailp("SIZE=1 SIZE=2", ALL_CAPS, &m), ESMTP_DUPLICATE);
    assert_int_equal(mailp("SIZE=1 size=1", ALL_CAPS, &m), ESMTP_DUPLICATE);
    assert_int_equal(mailp("SMTPUTF8 SMTPUTF8", ALL_CAPS, &m), ESMTP_DUPLICATE);
    assert_int_equal(mailp("BODY=7BIT BODY=8BITMIME", ALL_CAPS, &m), ESMTP_DUPLICATE);
    assert_int_equal(mailp("AUTH=<> AUTH=<>", ALL_CAPS, &m), ESMTP_DUPLICATE);
    assert_int_equal(mailp("RET=FULL RET=HDRS", ALL_CAPS, &m), ESMTP_DUPLICATE);
    assert_int_equal(mailp("ENVID=a ENVID=b", ALL_CAPS, &m), ESMTP_DUPLICATE);
    /* Keywords (unknown, duplicate) are checked before any value. */
    assert_int_equal(mailp("SIZE=x XFOO", ALL_CAPS, &m), ESMTP_UNKNOWN);
    assert_int_equal(mailp("SIZE=x SIZE=1", ALL_CAPS, &m), ESMTP_DUPLICATE);
    assert_int_equal(mailp("SIZE=1 =", ALL_CAPS, &m), ESMTP_SYNTAX);
    /* A keyword that only starts like a known one. */
    assert_int_equal(mailp("SIZEX=1", ALL_CAPS, &m), ESMTP_UNKNOWN);
    assert_int_equal(mailp("SIZ=1", ALL_CAPS, &m), ESMTP_UNKNOWN);
}

/* ---- RCPT parameters ---- */

static void test_rcpt_none(void **state)
{
    (void)state;
    struct esmtp_rcpt r;
    assert_int_equal(rcptp("", 0, &r), ESMTP_OK);
    assert_int_equal(r.notify, 0);
    assert_null(r.orcpt);
    assert_int_equal(esmtp_rcpt_params(NULL, 0, 0, &r), ESMTP_OK);
}

static void test_rcpt_notify(void **state)
{
    (void)state;
    struct esmtp_rcpt r;
    assert_int_equal(rcptp("NOTIFY=NEVER", ESMTP_CAP_DSN, &r), ESMTP_OK);
    assert_int_equal(r.notify, ESMTP_NOTIFY_NEVER);
    assert_int_equal(rcptp("NOTIFY=SUCCESS,FAILURE,DELAY", ESMTP_CAP_DSN, &r), ESMTP_OK);
    assert_int_equal(r.notify, ESMTP_NOTIFY_SUCCESS | ESMTP_NOTIFY_FAILURE | ESMTP_NOTIFY_DELAY);
    assert_int_equal(rcptp("notify=delay,failure", ESMTP_CAP_DSN, &r), ESMTP_OK);
    assert_int_equal(r.notify, ESMTP_NOTIFY_FAILURE | ESMTP_NOTIFY_DELAY);
    assert_int_equal(rcptp("NOTIFY=FAILURE", ESMTP_CAP_DSN, &r), ESMTP_OK);
    assert_int_equal(r.notify, ESMTP_NOTIFY_FAILURE);

    assert_int_equal(rcptp("NOTIFY=NEVER,SUCCESS", ESMTP_CAP_DSN, &r), ESMTP_BAD_NOTIFY);
    assert_int_equal(rcptp("NOTIFY=SUCCESS,NEVER", ESMTP_CAP_DSN, &r), ESMTP_BAD_NOTIFY);
    assert_int_equal(rcptp("NOTIFY=SUCCESS,", ESMTP_CAP_DSN, &r), ESMTP_BAD_NOTIFY);
    assert_int_equal(rcptp("NOTIFY=,SUCCESS", ESMTP_CAP_DSN, &r), ESMTP_BAD_NOTIFY);
    assert_int_equal(rcptp("NOTIFY=SUCCESS,,DELAY", ESMTP_CAP_DSN, &r), ESMTP_BAD_NOTIFY);
    assert_int_equal(rcptp("NOTIFY=ALWAYS", ESMTP_CAP_DSN, &r), ESMTP_BAD_NOTIFY);
    assert_int_equal(rcptp("NOTIFY", ESMTP_CAP_DSN, &r), ESMTP_BAD_NOTIFY);
    assert_int_equal(rcptp("NOTIFY=NEVER", 0, &r), ESMTP_UNKNOWN);
    assert_int_equal(rcptp("NOTIFY=NEVER NOTIFY=NEVER", ESMTP_CAP_DSN, &r), ESMTP_DUPLICATE);
}

static void test_rcpt_orcpt(void **state)
{
    (void)state;
    struct esmtp_rcpt r;
    assert_int_equal(rcptp("ORCPT=rfc822;user+2Btag@example.com", ESMTP_CAP_DSN, &r), ESMTP_OK);
    assert_span(r.orcpt, r.orcpt_len, "rfc822;user+2Btag@example.com");
    assert_int_equal(rcptp("NOTIFY=NEVER ORCPT=RFC822;a@b", ESMTP_CAP_DSN, &r), ESMTP_OK);
    assert_int_equal(r.notify, ESMTP_NOTIFY_NEVER);
    assert_span(r.orcpt, r.orcpt_len, "RFC822;a@b");
    /* RFC 6533 utf-8 address type may carry UTF-8. */
    assert_int_equal(rcptp("ORCPT=utf-8;\xc3\xa9@example.com", ESMTP_CAP_DSN, &r), ESMTP_OK);
    assert_int_equal(rcptp("ORCPT=utf-8;a\\x{E9}@example.com", ESMTP_CAP_DSN, &r), ESMTP_OK);
    assert_int_equal(rcptp("ORCPT=utf-8;a+2", ESMTP_CAP_DSN, &r), ESMTP_BAD_XTEXT);

    assert_int_equal(rcptp("ORCPT=rfc822", ESMTP_CAP_DSN, &r), ESMTP_BAD_ORCPT);
    assert_int_equal(rcptp("ORCPT=;a@b", ESMTP_CAP_DSN, &r), ESMTP_BAD_ORCPT);
    assert_int_equal(rcptp("ORCPT=rfc822;", ESMTP_CAP_DSN, &r), ESMTP_BAD_ORCPT);
    assert_int_equal(rcptp("ORCPT=rf(c;a@b", ESMTP_CAP_DSN, &r), ESMTP_BAD_ORCPT);
    assert_int_equal(rcptp("ORCPT", ESMTP_CAP_DSN, &r), ESMTP_BAD_ORCPT);
    assert_int_equal(rcptp("ORCPT=rfc822;a+zz@b", ESMTP_CAP_DSN, &r), ESMTP_BAD_XTEXT);
    assert_int_equal(rcptp("ORCPT=rfc822;\xc3\xa9@b", ESMTP_CAP_DSN, &r), ESMTP_BAD_XTEXT);
    assert_int_equal(rcptp("ORCPT=rfc822;a@b", ESMTP_CAP_SIZE, &r), ESMTP_UNKNOWN);
    assert_int_equal(rcptp("ORCPT=rfc822;a ORCPT=rfc822;b", ESMTP_CAP_DSN, &r), ESMTP_DUPLICATE);
}

static void test_rcpt_unknown(void **state)
{
    (void)state;
    struct esmtp_rcpt r;
    /* MAIL parameters are unknown on RCPT. */
    assert_int_equal(rcptp("SIZE=1", ALL_CAPS, &r), ESMTP_UNKNOWN);
    assert_int_equal(rcptp("BODY=8BITMIME", ALL_CAPS, &r), ESMTP_UNKNOWN);
    assert_int_equal(rcptp("SMTPUTF8", ALL_CAPS, &r), ESMTP_UNKNOWN);
    assert_int_equal(rcptp("XRCPTFORWARD=1", ALL_CAPS, &r), ESMTP_UNKNOWN);
    assert_int_equal(rcptp("NOTIFY=NEVER =x", ALL_CAPS, &r), ESMTP_SYNTAX);
}

/* ---- xtext ---- */

static void test_xtext_valid(void **state)
{
    (void)state;
    assert_true(esmtp_xtext_valid("", 0));
    assert_true(esmtp_xtext_valid("abc", 3));
    assert_true(esmtp_xtext_valid("!~<>", 4));
    assert_true(esmtp_xtext_valid("+2B", 3));
    assert_true(esmtp_xtext_valid("a+3Db+00+FF", 11));
    assert_false(esmtp_xtext_valid("+", 1));
    assert_false(esmtp_xtext_valid("+2", 2));
    assert_false(esmtp_xtext_valid("+2b", 3));
    assert_false(esmtp_xtext_valid("+G0", 3));
    assert_false(esmtp_xtext_valid("a=b", 3));
    assert_false(esmtp_xtext_valid("a b", 3));
    assert_false(esmtp_xtext_valid("a\x7f", 2));
    assert_false(esmtp_xtext_valid("\xc3\xa9", 2));
    assert_false(esmtp_xtext_valid("+2\0", 3));
    assert_false(esmtp_xtext_valid("a\0", 2));
    /* Only len bytes count: a hexchar cut by len is invalid. */
    assert_false(esmtp_xtext_valid("a+2B", 3));
    assert_true(esmtp_xtext_valid("ab=", 2));
}

static void test_xtext_encode(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(esmtp_xtext_encode("abc", 3, out, sizeof(out)), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(esmtp_xtext_encode("a+b=c d", 7, out, sizeof(out)), 13);
    assert_string_equal(out, "a+2Bb+3Dc+20d");
    assert_int_equal(esmtp_xtext_encode("\0\x01\x7f\xff", 4, out, sizeof(out)), 12);
    assert_string_equal(out, "+00+01+7F+FF");
    assert_int_equal(esmtp_xtext_encode("", 0, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(esmtp_xtext_encode("[UNAVAILABLE]", 13, out, sizeof(out)), 13);
    assert_string_equal(out, "[UNAVAILABLE]");
    assert_int_equal(esmtp_xtext_encode("\xc3\xa9", 2, out, sizeof(out)), 6);
    assert_string_equal(out, "+C3+A9");
    assert_true(esmtp_xtext_valid(out, 6));
}

static void test_xtext_encode_bounds(void **state)
{
    (void)state;
    char out[8];
    /* Exactly fits: 3 chars + NUL in 4. */
    assert_int_equal(esmtp_xtext_encode("abc", 3, out, 4), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(esmtp_xtext_encode("abcd", 4, out, 4), (size_t)-1);
    assert_string_equal(out, "");
    /* An encoded octet needs 3 chars: "+2B" + NUL in 4 fits, in 3 not. */
    assert_int_equal(esmtp_xtext_encode("+", 1, out, 4), 3);
    assert_string_equal(out, "+2B");
    assert_int_equal(esmtp_xtext_encode("+", 1, out, 3), (size_t)-1);
    assert_int_equal(esmtp_xtext_encode("a+", 2, out, 4), (size_t)-1);
    assert_int_equal(esmtp_xtext_encode("", 0, out, 1), 0);
    assert_int_equal(esmtp_xtext_encode("", 0, out, 0), (size_t)-1);
    assert_int_equal(esmtp_xtext_encode("a", 1, out, 1), (size_t)-1);
}

static void test_xtext_round_trip(void **state)
{
    (void)state;
    char in[256];
    char out[256 * 3 + 1];
    for (int i = 0; i < 256; i++)
        in[i] = (char)i;
    size_t n = esmtp_xtext_encode(in, sizeof(in), out, sizeof(out));
    assert_int_not_equal(n, (size_t)-1);
    assert_int_equal(n, strlen(out));
    assert_true(esmtp_xtext_valid(out, n));
    /* 94 printable octets minus "+" and "=" stay literal, the rest take 3. */
    assert_int_equal(n, 92 + (256 - 92) * 3);
}

static void test_status_replies(void **state)
{
    (void)state;
    static const struct {
        enum esmtp_status st;
        const char *code;
    } cases[] = {
        {ESMTP_SYNTAX, "501 5.5.4 "},         {ESMTP_TOO_MANY, "501 5.5.4 "},
        {ESMTP_UNKNOWN, "555 5.5.4 "},        {ESMTP_DUPLICATE, "501 5.5.4 "},
        {ESMTP_BAD_SIZE, "501 5.5.4 "},       {ESMTP_BAD_BODY, "501 5.5.4 "},
        {ESMTP_BAD_XTEXT, "501 5.5.4 "},      {ESMTP_BAD_RET, "501 5.5.4 "},
        {ESMTP_BAD_NOTIFY, "501 5.5.4 "},     {ESMTP_BAD_ORCPT, "501 5.5.4 "},
        {ESMTP_SMTPUTF8_VALUE, "501 5.5.4 "},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *r = esmtp_status_reply(cases[i].st);
        assert_non_null(r);
        assert_memory_equal(r, cases[i].code, 10);
        assert_true(strlen(r) > 12);
        assert_null(strpbrk(r, "\r\n"));
    }
    assert_string_equal(esmtp_status_reply(ESMTP_UNKNOWN), "555 5.5.4 Unsupported option");
    assert_non_null(esmtp_status_reply(ESMTP_OK));
    assert_non_null(esmtp_status_reply((enum esmtp_status)999));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_basic),
        cmocka_unit_test(test_split_empty),
        cmocka_unit_test(test_split_syntax),
        cmocka_unit_test(test_split_too_many),
        cmocka_unit_test(test_mail_none),
        cmocka_unit_test(test_mail_all),
        cmocka_unit_test(test_mail_case),
        cmocka_unit_test(test_mail_size),
        cmocka_unit_test(test_mail_body),
        cmocka_unit_test(test_mail_smtputf8),
        cmocka_unit_test(test_mail_dsn),
        cmocka_unit_test(test_mail_auth),
        cmocka_unit_test(test_mail_unknown_and_duplicates),
        cmocka_unit_test(test_rcpt_none),
        cmocka_unit_test(test_rcpt_notify),
        cmocka_unit_test(test_rcpt_orcpt),
        cmocka_unit_test(test_rcpt_unknown),
        cmocka_unit_test(test_xtext_valid),
        cmocka_unit_test(test_xtext_encode),
        cmocka_unit_test(test_xtext_encode_bounds),
        cmocka_unit_test(test_xtext_round_trip),
        cmocka_unit_test(test_status_replies),
    };
    return cmocka_run_group_tests_name("esmtp", tests, NULL, NULL);
}
