/*
 * Unit tests for the message view content rules see: header splitting and
 * unfolding, RFC 2047 decoding (B and Q, charsets, adjacent words, raw 8-bit),
 * :addr and :name, base64 and quoted-printable bodies, charsets to UTF-8
 * (declared, unknown, lying), nested multiparts and embedded messages,
 * HTML reduced to text with URIs from links and text, attachment names
 * (RFC 2231) and types, and a hostile nesting depth that must not reach the
 * MIME parser.  Then the same through rules: body, rawbody, uri and
 * attachment targets hit where they should.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules.h"
#include "rules/rules_html.h"

static struct rules_msg *msg(const char *text)
{
    return rules_msg_parse(text, strlen(text));
}

static bool contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

static bool has_uri(struct rules_msg *m, const char *uri)
{
    for (size_t i = 0; i < rules_msg_uri_count(m); i++)
        if (strcmp(rules_msg_uri(m, i), uri) == 0)
            return true;
    return false;
}

static void test_headers(void **state)
{
    (void)state;
    struct rules_msg *m =
        msg("Subject: =?utf-8?B?Q2Fmw6kgb3V2ZXJ0?=\r\n"
            "X-Q: =?iso-8859-1?Q?caf=E9_cr=E8me?= and\r\n"
            "\tmore =?utf-8?q?a?= =?utf-8?q?b?=\r\n"
            "X-Raw: na\xefve\r\n"
            "X-Koi: =?koi8-r?B?8NLJ18XU?=\r\n"
            "From: =?utf-8?q?J=C3=BCrgen?= <juergen@example.org>, bob@example.net\r\n"
            "X-Dup: one\r\n"
            "X-Dup: two\r\n"
            "Blank-Before-Colon : kept\r\n"
            "Name With Space: ends the header section\r\n"
            "\r\n"
            "Not-A-Header: body\r\n");
    assert_string_equal(rules_msg_header(m, "subject", 0), "Caf\xc3\xa9 ouvert");
    /* unfolded as SpamAssassin unfolds: the line end and its blanks one blank */
    assert_string_equal(rules_msg_header(m, "X-Q", 0), "caf\xc3\xa9 cr\xc3\xa8me and more ab");
    /* raw 8-bit Latin-1 comes out as valid UTF-8 */
    assert_string_equal(rules_msg_header(m, "X-Raw", 0), "na\xc3\xafve");
    assert_string_equal(rules_msg_header(m, "X-Koi", 0),
                        "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
    assert_string_equal(rules_msg_header(m, "X-Dup", 1), "two");
    assert_null(rules_msg_header(m, "X-Dup", 2));
    assert_null(rules_msg_header(m, "Not-A-Header", 0));
    assert_string_equal(rules_msg_header(m, "Blank-Before-Colon", 0), "kept");
    assert_null(rules_msg_header(m, "Name With Space", 0));
    rules_msg_free(m);

    /* a line that is not a field ends the header section */
    m = msg("A: 1\r\nthis is not a header\r\nB: 2\r\n\r\n");
    assert_string_equal(rules_msg_header(m, "A", 0), "1");
    assert_null(rules_msg_header(m, "B", 0));
    rules_msg_free(m);

    /* no body, no empty line, LF only */
    m = msg("A: 1\nB:2");
    assert_string_equal(rules_msg_header(m, "B", 0), "2");
    size_t len;
    rules_msg_body(m, &len);
    assert_int_equal(len, 0);
    rules_msg_free(m);
}

static void test_addresses(void **state)
{
    (void)state;
    struct rules *r = NULL;
    const char *src = "rule JN header From:name /^J\\x{fc}rgen$/u score 1\n"
                      "rule BOB header From:addr /^bob@example\\.net$/ score 1\n"
                      "rule NOADDR header To:addr !/@/ score 1\n";
    assert_int_equal(rules_load_buffer("t", src, strlen(src), NULL, &r, NULL), 0);
    struct rules_msg *m =
        msg("From: =?utf-8?q?J=C3=BCrgen?= <juergen@example.org>, bob@example.net\r\n"
            "To: undisclosed-recipients:;\r\n\r\n");
    struct rules_tx *tx = rules_tx_new(r);
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
    assert_int_equal(o->nhits, 3);
    assert_string_equal(o->hits[1].text, "bob@example.net");
    rules_tx_free(tx);
    rules_msg_free(m);
    rules_unref(r);
}

static void test_base64_qp_charsets(void **state)
{
    (void)state;
    struct rules_msg *m = msg("MIME-Version: 1.0\r\n"
                              "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
                              "\r\n"
                              "preamble\r\n"
                              "--XX\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Content-Transfer-Encoding: base64\r\n"
                              "\r\n"
                              "SGVsbG8gd8O2cmxkIQ==\r\n"
                              "--XX\r\n"
                              "Content-Type: text/plain; charset=iso-8859-1\r\n"
                              "Content-Transfer-Encoding: quoted-printable\r\n"
                              "\r\n"
                              "Caf=E9 soft=\r\n"
                              "break\r\n"
                              "--XX\r\n"
                              "Content-Type: text/plain; charset=windows-1252\r\n"
                              "Content-Transfer-Encoding: 8bit\r\n"
                              "\r\n"
                              "price \x80\x35\r\n"
                              "--XX\r\n"
                              "Content-Type: text/plain; charset=x-unknown-charset\r\n"
                              "\r\n"
                              "unknown \xe9t\xe9\r\n"
                              "--XX\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "\r\n"
                              "lying \xff\xfe utf-8\r\n"
                              "--XX--\r\n");
    size_t len;
    const char *body = rules_msg_body(m, &len);
    assert_int_equal(strlen(body), len);
    assert_true(contains(body, "Hello w\xc3\xb6rld!"));
    assert_true(contains(body, "Caf\xc3\xa9 softbreak"));
    assert_true(contains(body, "price \xe2\x82\xac"
                               "5"));
    assert_true(contains(body, "unknown \xc3\xa9t\xc3\xa9"));
    assert_true(contains(body, "lying "));
    assert_false(contains(body, "preamble"));
    assert_false(contains(body, "SGVsbG8"));
    assert_int_equal(rules_msg_part_count(m), 5);
    assert_string_equal(rules_msg_part_type(m, 0), "text/plain");
    rules_msg_free(m);
}

static void test_nested_and_html(void **state)
{
    (void)state;
    struct rules_msg *m = msg(
        "Content-Type: multipart/mixed; boundary=outer\r\n"
        "\r\n"
        "--outer\r\n"
        "Content-Type: multipart/alternative; boundary=inner\r\n"
        "\r\n"
        "--inner\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "Plain part, see https://example.org/plain). And www.example.com/x.\r\n"
        "--inner\r\n"
        "Content-Type: TEXT/HTML; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "<html><head><style>p {color: red}</style><script>var hidden=3D1;</script></head>=\r\n"
        "<body><p>Hello&nbsp;<b>bold</b> &amp; &#233;&#x20AC; &bogus; 1 < 2</p>=\r\n"
        "<!-- a comment --><a href=3D\"http://203.0.113.5/login?a=3D1&amp;b=3D2\">click</a>=\r\n"
        "<img src=3D'http://img.example/p.gif'><br>line two</body></html>\r\n"
        "--inner--\r\n"
        "--outer\r\n"
        "Content-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.exe\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "TVqQAA==\r\n"
        "--outer\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        "Subject: inner message\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "Forwarded text\r\n"
        "--outer--\r\n");
    size_t len;
    const char *body = rules_msg_body(m, &len);
    assert_true(contains(body, "Plain part"));
    assert_true(contains(body, "Hello bold & \xc3\xa9\xe2\x82\xac &bogus; 1 < 2"));
    assert_true(contains(body, "\nline two"));
    assert_true(contains(body, "click"));
    assert_true(contains(body, "Forwarded text"));
    assert_false(contains(body, "color"));
    assert_false(contains(body, "hidden"));
    assert_false(contains(body, "comment"));
    assert_false(contains(body, "<b>"));
    const char *raw = rules_msg_rawbody(m, &len);
    assert_true(contains(raw, "<b>bold</b>"));
    assert_true(contains(raw, "<script>"));

    assert_true(has_uri(m, "https://example.org/plain"));
    assert_true(has_uri(m, "www.example.com/x"));
    assert_true(has_uri(m, "http://203.0.113.5/login?a=1&b=2"));
    assert_true(has_uri(m, "http://img.example/p.gif"));

    /* leaves: text/plain, text/html, the attachment, the message, its text */
    assert_int_equal(rules_msg_part_count(m), 5);
    assert_string_equal(rules_msg_part_type(m, 1), "text/html");
    assert_string_equal(rules_msg_part_type(m, 2), "application/octet-stream");
    assert_string_equal(rules_msg_part_name(m, 2), "r\xc3\xa9sum\xc3\xa9.exe");
    assert_string_equal(rules_msg_part_type(m, 3), "message/rfc822");
    assert_null(rules_msg_part_name(m, 0));
    rules_msg_free(m);
}

static void add_uri(void *arg, const char *s, size_t n)
{
    struct rules_buf *b = arg;
    rules_buf_add(b, s, n);
    rules_buf_addc(b, '|');
}

static void test_html_and_uris_direct(void **state)
{
    (void)state;
    struct rules_buf out = {0}, uris = {0};
    const char *h = "<a href=unquoted.example/x>a</a><A HREF = \"  http://x.example/ y \">b</A>"
                    "<form action='/post'></form><td>c</td><th>d</th><unclosed attr=\"x";
    rules_html_text(h, strlen(h), &out, add_uri, &uris);
    assert_string_equal(rules_buf_cstr(&out), "ab c  d ");
    assert_string_equal(rules_buf_cstr(&uris), "unquoted.example/x|http://x.example/y|/post|");
    free(out.p);
    free(uris.p);

    uris = (struct rules_buf){0};
    const char *t = "see (http://a.example/p?q=1), mailto:x@y.example; ftp://f.example/. "
                    "nothttp://no.example xwww.no.example https://";
    rules_text_uris(t, strlen(t), add_uri, &uris);
    assert_string_equal(rules_buf_cstr(&uris),
                        "http://a.example/p?q=1|mailto:x@y.example|ftp://f.example/|");
    free(uris.p);

    /* an unterminated comment, script and reference end the text cleanly */
    out = (struct rules_buf){0};
    rules_html_text("a<!-- b", 7, &out, NULL, NULL);
    rules_html_text("c<script>d", 10, &out, NULL, NULL);
    rules_html_text("e&#", 3, &out, NULL, NULL);
    rules_html_text("&#0;&#xD800;&#1114112;", 22, &out, NULL, NULL);
    assert_string_equal(rules_buf_cstr(&out), "ace&#\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    free(out.p);
}

static void test_too_nested(void **state)
{
    (void)state;
    size_t cap = 1 << 20, n = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    n += (size_t)snprintf(s + n, cap - n, "Subject: deep\r\n");
    for (int i = 0; i < 5000; i++)
        n += (size_t)snprintf(s + n, cap - n,
                              "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
    n += (size_t)snprintf(s + n, cap - n, "Content-Type: text/plain\r\n\r\nDEEP TEXT\r\n");
    struct rules_msg *m = rules_msg_parse(s, n);
    size_t len;
    const char *body = rules_msg_body(m, &len);
    /* not parsed as MIME: the body rules see the undecoded body */
    assert_true(contains(body, "DEEP TEXT"));
    assert_int_equal(rules_msg_part_count(m), 0);
    rules_msg_free(m);
    free(s);
}

static void test_rules_over_mime(void **state)
{
    (void)state;
    const char *src = "rule B64 body /w\\x{f6}rld/u score 1\n"
                      "rule HTMLTEXT body /Hello bold/ score 1\n"
                      "rule RAWTAG rawbody /<b>bold/ score 1\n"
                      "rule NOTAG body /<b>/ score 1\n"
                      "rule IPURI uri m{^https?://\\d+\\.\\d+\\.\\d+\\.\\d+/} score 1\n"
                      "rule EXE attachment_name /\\.exe$/i score 1\n"
                      "rule HTMLTYPE attachment_type m{^text/html$} score 1\n";
    struct rules *r = NULL;
    assert_int_equal(rules_load_buffer("t", src, strlen(src), NULL, &r, NULL), 0);
    struct rules_msg *m =
        msg("Content-Type: multipart/mixed; boundary=b\r\n\r\n"
            "--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8gd8O2cmxkIQ==\r\n"
            "--b\r\nContent-Type: text/html\r\n\r\n"
            "<p>Hello <b>bold</b> <a href=\"http://192.0.2.1/x\">x</a>\r\n"
            "--b\r\nContent-Type: application/x-msdownload; name=\"SETUP.EXE\"\r\n"
            "\r\nMZ\r\n--b--\r\n");
    struct rules_tx *tx = rules_tx_new(r);
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
    const char *want[] = {"B64", "HTMLTEXT", "RAWTAG", "IPURI", "EXE", "HTMLTYPE"};
    assert_int_equal(o->nhits, 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(o->hits[i].rule, want[i]);
    assert_string_equal(o->hits[3].text, "http://192.0.2.1/");
    assert_string_equal(o->hits[4].target, "attachment_name");
    rules_tx_free(tx);
    rules_msg_free(m);
    rules_unref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_base64_qp_charsets),
        cmocka_unit_test(test_nested_and_html),
        cmocka_unit_test(test_html_and_uris_direct),
        cmocka_unit_test(test_too_nested),
        cmocka_unit_test(test_rules_over_mime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
