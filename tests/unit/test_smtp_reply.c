/*
 * Unit tests for smtp_reply: reply line syntax, enhanced status codes,
 * accumulation of multi-line replies (code changes, line and byte limits at
 * and over the bound), formatting back to wire lines, and EHLO capability
 * parsing of a real Postfix EHLO reply.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/esmtp.h"
#include "codec/smtp_reply.h"

static bool line_ok(const char *s, struct smtp_reply_line *l)
{
    return smtp_reply_line(s, strlen(s), l);
}

static enum smtp_reply_status feed(struct smtp_reply *r, const char *s)
{
    return smtp_reply_feed(r, s, strlen(s));
}

/* ---- smtp_reply_line ---- */

static void test_line_valid(void **state)
{
    (void)state;
    struct smtp_reply_line l;
    assert_true(line_ok("250 Ok", &l));
    assert_int_equal(l.code, 250);
    assert_true(l.last);
    assert_int_equal(l.text_len, 2);
    assert_memory_equal(l.text, "Ok", 2);

    assert_true(line_ok("250-mail.example.com", &l));
    assert_false(l.last);
    assert_int_equal(l.text_len, 16);

    assert_true(line_ok("354", &l));
    assert_int_equal(l.code, 354);
    assert_true(l.last);
    assert_int_equal(l.text_len, 0);

    assert_true(line_ok("250 ", &l));
    assert_true(l.last);
    assert_int_equal(l.text_len, 0);
    assert_true(line_ok("250-", &l));
    assert_false(l.last);

    assert_true(line_ok("200 x", &l));
    assert_int_equal(l.code, 200);
    assert_true(line_ok("599 x", &l));
    assert_int_equal(l.code, 599);
    assert_true(line_ok("421 4.3.2 Service shutting down", &l));
    assert_int_equal(l.code, 421);
    assert_true(line_ok("250 text  with\ttab and \xc3\xa9", &l));
}

static void test_line_invalid(void **state)
{
    (void)state;
    struct smtp_reply_line l;
    static const char *const bad[] = {
        "",       "2",     "25",     "25 Ok",   "2500 Ok",         "250Ok",
        "250_Ok", "199 x", "600 x",  "100 x",   "099 x",           "abc def",
        "2a0 x",  "25a x", " 250 x", "250\tOk", "HTTP/1.1 200 OK",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(line_ok(bad[i], &l));
    assert_false(smtp_reply_line("250 a\0b", 7, &l));
    assert_false(smtp_reply_line("250 a\rb", 7, &l));
    assert_false(smtp_reply_line("250 a\nb", 7, &l));
    assert_false(smtp_reply_line(NULL, 0, &l));
    /* Only len bytes are read. */
    assert_true(smtp_reply_line("250 Ok\r\n", 6, &l));
    assert_int_equal(l.text_len, 2);
    assert_false(smtp_reply_line("250 Ok", 2, &l));
}

/* ---- smtp_enhanced_parse ---- */

static void test_enhanced(void **state)
{
    (void)state;
    struct smtp_enhanced e;
    size_t used;
    const char *t = "5.1.1 User unknown";
    assert_true(smtp_enhanced_parse(t, strlen(t), &e, &used));
    assert_int_equal(e.klass, 5);
    assert_int_equal(e.subject, 1);
    assert_int_equal(e.detail, 1);
    assert_int_equal(used, 6);

    t = "2.0.0";
    assert_true(smtp_enhanced_parse(t, strlen(t), &e, &used));
    assert_int_equal(e.klass, 2);
    assert_int_equal(used, 5);

    t = "4.999.999   later";
    assert_true(smtp_enhanced_parse(t, strlen(t), &e, &used));
    assert_int_equal(e.klass, 4);
    assert_int_equal(e.subject, 999);
    assert_int_equal(e.detail, 999);
    assert_int_equal(used, 12);

    static const char *const bad[] = {
        "",          "5",          "5.1",      "5.1.",  "3.1.1 x", "1.0.0", "5..1 x", "5.1.1x",
        "5.1.1.1 x", "5.1000.1 x", "5.1.1000", "a.b.c", "5-1-1",   "Ok",    "5.1.x",  " 5.1.1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(smtp_enhanced_parse(bad[i], strlen(bad[i]), &e, &used));
    /* The length bounds the code. */
    assert_true(smtp_enhanced_parse("5.1.12", 5, &e, &used));
    assert_int_equal(e.detail, 1);
    assert_false(smtp_enhanced_parse("5.1.1", 4, &e, &used));
}

/* ---- accumulation ---- */

static void test_feed_single(void **state)
{
    (void)state;
    struct smtp_reply r;
    smtp_reply_init(&r);
    assert_int_equal(r.code, 0);
    assert_int_equal(feed(&r, "250 2.1.0 Ok"), SMTP_REPLY_DONE);
    assert_int_equal(r.code, 250);
    assert_int_equal(r.nlines, 1);
    assert_string_equal(r.text, "2.1.0 Ok");
    assert_int_equal(r.text_len, 8);
    smtp_reply_free(&r);
    assert_null(r.text);
}

static void test_feed_multi(void **state)
{
    (void)state;
    struct smtp_reply r;
    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "250-mail.example.com"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "250-PIPELINING"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "250-"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "250 8BITMIME"), SMTP_REPLY_DONE);
    assert_int_equal(r.nlines, 4);
    assert_string_equal(r.text, "mail.example.com\nPIPELINING\n\n8BITMIME");
    assert_int_equal(r.text_len, strlen(r.text));

    /* Reset keeps the memory and starts over. */
    char *mem = r.text;
    smtp_reply_reset(&r);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.nlines, 0);
    assert_int_equal(r.text_len, 0);
    assert_ptr_equal(r.text, mem);
    assert_string_equal(r.text, "");
    assert_int_equal(feed(&r, "550 5.1.1 No"), SMTP_REPLY_DONE);
    assert_int_equal(r.code, 550);
    assert_string_equal(r.text, "5.1.1 No");
    smtp_reply_free(&r);
}

static void test_feed_errors(void **state)
{
    (void)state;
    struct smtp_reply r;
    smtp_reply_init(&r);
    assert_int_equal(feed(&r, "250-first"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "251 second"), SMTP_REPLY_ERROR);
    smtp_reply_reset(&r);
    assert_int_equal(feed(&r, "250-first"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "550 second"), SMTP_REPLY_ERROR);
    smtp_reply_reset(&r);
    assert_int_equal(feed(&r, "garbage"), SMTP_REPLY_ERROR);
    smtp_reply_reset(&r);
    assert_int_equal(feed(&r, "250-first"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "250first"), SMTP_REPLY_ERROR);
    smtp_reply_reset(&r);
    assert_int_equal(smtp_reply_feed(&r, "250 a\0b", 7), SMTP_REPLY_ERROR);
    assert_int_equal(feed(&r, ""), SMTP_REPLY_ERROR);
    smtp_reply_free(&r);
}

static void test_feed_line_limit(void **state)
{
    (void)state;
    struct smtp_reply r;
    smtp_reply_init(&r);
    for (int i = 0; i < SMTP_REPLY_MAX_LINES - 1; i++)
        assert_int_equal(feed(&r, "250-x"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "250 x"), SMTP_REPLY_DONE);
    assert_int_equal(r.nlines, SMTP_REPLY_MAX_LINES);

    smtp_reply_reset(&r);
    for (int i = 0; i < SMTP_REPLY_MAX_LINES; i++)
        assert_int_equal(feed(&r, "250-x"), SMTP_REPLY_MORE);
    assert_int_equal(feed(&r, "250 x"), SMTP_REPLY_ERROR);
    smtp_reply_free(&r);
}

/* Feed lines of "250-" + text with a last line sized so the reply's wire size
 * (every line with its CRLF) is exactly total octets. */
static enum smtp_reply_status feed_wire_size(struct smtp_reply *r, size_t total)
{
    char line[1024];
    size_t used = 0;
    enum smtp_reply_status st = SMTP_REPLY_MORE;
    memset(line, 'a', sizeof(line));
    memcpy(line, "250-", 4);
    /* 16 lines of 1000 octets + CRLF. */
    for (int i = 0; i < 16; i++) {
        st = smtp_reply_feed(r, line, 1000);
        if (st != SMTP_REPLY_MORE)
            return st;
        used += 1002;
    }
    size_t rest = total - used - 2;
    line[3] = ' ';
    return smtp_reply_feed(r, line, rest);
}

static void test_feed_byte_limit(void **state)
{
    (void)state;
    struct smtp_reply r;
    smtp_reply_init(&r);
    assert_int_equal(feed_wire_size(&r, SMTP_REPLY_MAX_BYTES), SMTP_REPLY_DONE);
    char *wire;
    size_t n = smtp_reply_format(&r, &wire);
    assert_int_equal(n, SMTP_REPLY_MAX_BYTES);
    free(wire);

    smtp_reply_reset(&r);
    assert_int_equal(feed_wire_size(&r, SMTP_REPLY_MAX_BYTES + 1), SMTP_REPLY_ERROR);

    /* One huge line. */
    smtp_reply_reset(&r);
    char *big = malloc(SMTP_REPLY_MAX_BYTES + 10);
    memset(big, 'b', SMTP_REPLY_MAX_BYTES + 10);
    memcpy(big, "250 ", 4);
    assert_int_equal(smtp_reply_feed(&r, big, SMTP_REPLY_MAX_BYTES - 2), SMTP_REPLY_DONE);
    smtp_reply_reset(&r);
    assert_int_equal(smtp_reply_feed(&r, big, SMTP_REPLY_MAX_BYTES - 1), SMTP_REPLY_ERROR);
    free(big);
    smtp_reply_free(&r);
}

/* ---- formatting ---- */

static void test_format_round_trip(void **state)
{
    (void)state;
    static const char *const lines[] = {"250-mail.example.com", "250-PIPELINING", "250-",
                                        "250 8BITMIME"};
    struct smtp_reply r;
    smtp_reply_init(&r);
    for (size_t i = 0; i < 4; i++)
        feed(&r, lines[i]);
    char *wire;
    size_t n = smtp_reply_format(&r, &wire);
    const char *want = "250-mail.example.com\r\n250-PIPELINING\r\n250-\r\n250 8BITMIME\r\n";
    assert_int_equal(n, strlen(want));
    assert_string_equal(wire, want);
    free(wire);

    smtp_reply_reset(&r);
    feed(&r, "354");
    n = smtp_reply_format(&r, &wire);
    assert_string_equal(wire, "354\r\n");
    assert_int_equal(n, 5);
    free(wire);

    smtp_reply_reset(&r);
    feed(&r, "550 5.7.1 Rejected");
    n = smtp_reply_format(&r, &wire);
    assert_string_equal(wire, "550 5.7.1 Rejected\r\n");
    free(wire);

    /* Nothing fed: empty output. */
    smtp_reply_reset(&r);
    n = smtp_reply_format(&r, &wire);
    assert_int_equal(n, 0);
    assert_string_equal(wire, "");
    free(wire);
    smtp_reply_free(&r);

    struct smtp_reply never;
    smtp_reply_init(&never);
    n = smtp_reply_format(&never, &wire);
    assert_int_equal(n, 0);
    free(wire);
}

static void test_format_text(void **state)
{
    (void)state;
    char *wire;
    const char *t = "5.7.1 Message rejected";
    size_t n = smtp_reply_format_text(550, t, strlen(t), &wire);
    assert_string_equal(wire, "550 5.7.1 Message rejected\r\n");
    assert_int_equal(n, strlen(wire));
    free(wire);

    t = "first\nsecond\nthird";
    n = smtp_reply_format_text(451, t, strlen(t), &wire);
    assert_string_equal(wire, "451-first\r\n451-second\r\n451 third\r\n");
    free(wire);

    /* One trailing newline does not make an empty last line. */
    t = "a\nb\n";
    smtp_reply_format_text(250, t, strlen(t), &wire);
    assert_string_equal(wire, "250-a\r\n250 b\r\n");
    free(wire);

    n = smtp_reply_format_text(250, "", 0, &wire);
    assert_string_equal(wire, "250\r\n");
    assert_int_equal(n, 5);
    free(wire);
    smtp_reply_format_text(250, NULL, 0, &wire);
    assert_string_equal(wire, "250\r\n");
    free(wire);

    /* CR and NUL cannot end a line early. */
    n = smtp_reply_format_text(550, "a\r\nb\0c", 6, &wire);
    assert_string_equal(wire, "550-a\r\n550 bc\r\n");
    assert_int_equal(n, strlen(wire));
    free(wire);

    /* Only text_len octets are used. */
    smtp_reply_format_text(250, "Ok and more", 2, &wire);
    assert_string_equal(wire, "250 Ok\r\n");
    free(wire);

    /* An impossible code becomes a temporary failure. */
    smtp_reply_format_text(42, "x", 1, &wire);
    assert_string_equal(wire, "451 x\r\n");
    free(wire);
    smtp_reply_format_text(600, "x", 1, &wire);
    assert_string_equal(wire, "451 x\r\n");
    free(wire);
}

static void test_format_reparses(void **state)
{
    (void)state;
    /* What format writes, feed reads back unchanged. */
    const char *t = "one\n\ntwo three\nfour";
    char *wire;
    size_t n = smtp_reply_format_text(421, t, strlen(t), &wire);
    struct smtp_reply r;
    smtp_reply_init(&r);
    enum smtp_reply_status st = SMTP_REPLY_MORE;
    size_t p = 0;
    while (p < n) {
        const char *crlf = strstr(wire + p, "\r\n");
        assert_non_null(crlf);
        st = smtp_reply_feed(&r, wire + p, (size_t)(crlf - (wire + p)));
        assert_int_not_equal(st, SMTP_REPLY_ERROR);
        p = (size_t)(crlf - wire) + 2;
    }
    assert_int_equal(st, SMTP_REPLY_DONE);
    assert_int_equal(r.code, 421);
    assert_string_equal(r.text, t);
    free(wire);
    smtp_reply_free(&r);
}

/* ---- EHLO capabilities ---- */

static void ehlo_from_lines(const char *const *lines, size_t n, struct smtp_reply *r)
{
    smtp_reply_init(r);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(feed(r, lines[i]), i + 1 < n ? SMTP_REPLY_MORE : SMTP_REPLY_DONE);
}

static void test_ehlo_postfix(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "250-mx.example.com",
        "250-PIPELINING",
        "250-SIZE 10240000",
        "250-VRFY",
        "250-ETRN",
        "250-STARTTLS",
        "250-AUTH PLAIN LOGIN",
        "250-AUTH=PLAIN LOGIN",
        "250-XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT",
        "250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT",
        "250-ENHANCEDSTATUSCODES",
        "250-8BITMIME",
        "250-DSN",
        "250-SMTPUTF8",
        "250 CHUNKING",
    };
    struct smtp_reply r;
    ehlo_from_lines(lines, sizeof(lines) / sizeof(lines[0]), &r);
    struct smtp_ehlo_caps c;
    smtp_ehlo_caps(r.text, r.text_len, &c);
    assert_int_equal(c.caps, ESMTP_CAP_PIPELINING | ESMTP_CAP_SIZE | ESMTP_CAP_STARTTLS |
                                 ESMTP_CAP_AUTH | ESMTP_CAP_XCLIENT | ESMTP_CAP_XFORWARD |
                                 ESMTP_CAP_ENHANCEDSTATUSCODES | ESMTP_CAP_8BITMIME |
                                 ESMTP_CAP_DSN | ESMTP_CAP_SMTPUTF8 | ESMTP_CAP_CHUNKING);
    assert_true(c.size_limit == 10240000);
    assert_string_equal(c.auth_mechs, "PLAIN LOGIN");
    assert_string_equal(c.xclient_attrs,
                        "NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT");
    smtp_reply_free(&r);
}

static void test_ehlo_greeting_is_not_a_keyword(void **state)
{
    (void)state;
    struct smtp_ehlo_caps c;
    const char *t = "PIPELINING";
    smtp_ehlo_caps(t, strlen(t), &c);
    assert_int_equal(c.caps, 0);
    t = "SIZE 100\n8BITMIME";
    smtp_ehlo_caps(t, strlen(t), &c);
    assert_int_equal(c.caps, ESMTP_CAP_8BITMIME);
    assert_true(c.size_limit == 0);
    smtp_ehlo_caps("", 0, &c);
    assert_int_equal(c.caps, 0);
    smtp_ehlo_caps(NULL, 0, &c);
    assert_int_equal(c.caps, 0);
    assert_string_equal(c.auth_mechs, "");
    assert_string_equal(c.xclient_attrs, "");
}

static void test_ehlo_variants(void **state)
{
    (void)state;
    struct smtp_ehlo_caps c;
    const char *t = "host\nsize\nbinarymime\nStartTLS\nauth=CRAM-MD5 PLAIN\npipelining\n"
                    "xclient name addr\nxforward\nSMTPUTF8\nENHANCEDSTATUSCODES";
    smtp_ehlo_caps(t, strlen(t), &c);
    assert_int_equal(c.caps, ESMTP_CAP_SIZE | ESMTP_CAP_BINARYMIME | ESMTP_CAP_STARTTLS |
                                 ESMTP_CAP_AUTH | ESMTP_CAP_PIPELINING | ESMTP_CAP_XCLIENT |
                                 ESMTP_CAP_XFORWARD | ESMTP_CAP_SMTPUTF8 |
                                 ESMTP_CAP_ENHANCEDSTATUSCODES);
    assert_true(c.size_limit == 0);
    /* Only the old form announced: it is used. */
    assert_string_equal(c.auth_mechs, "CRAM-MD5 PLAIN");
    assert_string_equal(c.xclient_attrs, "name addr");

    /* Old form first, standard form after: the standard one wins. */
    t = "host\nAUTH=LOGIN\nAUTH PLAIN   XOAUTH2 ";
    smtp_ehlo_caps(t, strlen(t), &c);
    assert_string_equal(c.auth_mechs, "PLAIN XOAUTH2");

    /* Unknown keywords and prefixes of known ones are ignored. */
    t = "host\nVRFY\nETRN\nSIZEX 5\nDSNX\n8BITMIMEX\nX-EXPS GSSAPI\nAUTHX PLAIN\nSIZE=5";
    smtp_ehlo_caps(t, strlen(t), &c);
    assert_int_equal(c.caps, 0);
    assert_true(c.size_limit == 0);

    /* SIZE values: none, zero, huge, garbage. */
    t = "host\nSIZE 0";
    smtp_ehlo_caps(t, strlen(t), &c);
    assert_true(c.caps == ESMTP_CAP_SIZE && c.size_limit == 0);
    t = "host\nSIZE 99999999999999999999999";
    smtp_ehlo_caps(t, strlen(t), &c);
    assert_true(c.size_limit == UINT64_MAX);
    t = "host\nSIZE abc";
    smtp_ehlo_caps(t, strlen(t), &c);
    assert_true(c.caps == ESMTP_CAP_SIZE && c.size_limit == 0);

    /* Only len bytes are read. */
    t = "host\nDSN\nCHUNKING";
    smtp_ehlo_caps(t, 8, &c);
    assert_int_equal(c.caps, ESMTP_CAP_DSN);
}

static void test_ehlo_truncation(void **state)
{
    (void)state;
    /* A mechanism list longer than the field is cut between words. */
    char t[1200] = "host\nAUTH";
    for (int i = 0; i < 60; i++) {
        char w[32];
        snprintf(w, sizeof(w), " MECH-%02d", i);
        strcat(t, w);
    }
    strcat(t, "\nXCLIENT");
    for (int i = 0; i < 60; i++)
        strcat(t, " ATTRIBUTE");
    struct smtp_ehlo_caps c;
    smtp_ehlo_caps(t, strlen(t), &c);
    size_t n = strlen(c.auth_mechs);
    assert_true(n <= sizeof(c.auth_mechs) - 1);
    assert_true(n > sizeof(c.auth_mechs) - 10);
    assert_memory_equal(c.auth_mechs, "MECH-00 MECH-01", 15);
    assert_memory_equal(c.auth_mechs + n - 7, "MECH-", 5);
    n = strlen(c.xclient_attrs);
    assert_true(n <= sizeof(c.xclient_attrs) - 1);
    assert_memory_equal(c.xclient_attrs + n - 9, "ATTRIBUTE", 9);
    assert_true(c.caps == (ESMTP_CAP_AUTH | ESMTP_CAP_XCLIENT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_valid),
        cmocka_unit_test(test_line_invalid),
        cmocka_unit_test(test_enhanced),
        cmocka_unit_test(test_feed_single),
        cmocka_unit_test(test_feed_multi),
        cmocka_unit_test(test_feed_errors),
        cmocka_unit_test(test_feed_line_limit),
        cmocka_unit_test(test_feed_byte_limit),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_format_text),
        cmocka_unit_test(test_format_reparses),
        cmocka_unit_test(test_ehlo_postfix),
        cmocka_unit_test(test_ehlo_greeting_is_not_a_keyword),
        cmocka_unit_test(test_ehlo_variants),
        cmocka_unit_test(test_ehlo_truncation),
    };
    return cmocka_run_group_tests_name("smtp_reply", tests, NULL, NULL);
}
