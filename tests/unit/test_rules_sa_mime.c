/*
 * Unit tests for SpamAssassin's MIME tree (sa_mime.c), the image header
 * reader (sa_image.c) and the eval tests over them (sa_eval_mime.c,
 * sa_eval_image.c).  The parser: parse_content_type's quirks (missing
 * type, text/(anything) folded to text/plain, quoted and bare boundaries, charset
 * and name), the tree in find_parts order with the raw lines of each leaf
 * (CRLF squashed, the boundary's line end taken off, long lines split),
 * the parse flags (missing separators, truncated header, part without
 * headers, epilogue, a boundary never closed, nested same boundary),
 * message/rfc822 parsed again, base64 and quoted-printable decoding, every
 * allocation failing in turn.  The
 * images: GIF, PNG, JPEG dimensions and the truncated and foreign inputs.
 * The functions: each loaded from .cf lines and run over messages written
 * for it, hits and misses; the alternatives' word sets and the stock
 * labels.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rules/rules.h"
#include "rules/sa_image.h"
#include "rules/sa_mime.h"
#include "util/alloc.h"

static char dir[] = "/tmp/test_sa_mime.XXXXXX";
#include "tests/unit/sa_rules_fixture.h"

static struct sa_mime *parse(const char *s)
{
    struct sa_mime *t = sa_mime_parse(s, strlen(s));
    assert_non_null(t);
    return t;
}

/* a leaf's raw lines joined */
static char *leaf_text(const struct sa_mime *t, size_t i)
{
    static char buf[8192];
    size_t k = 0;
    const struct sa_mime_node *n = &t->nodes[i];
    for (size_t j = 0; j < n->nlines; j++) {
        const struct sa_mime_line *l = &t->lines[n->line0 + j];
        assert_true(k + l->n + 2 < sizeof(buf));
        memcpy(buf + k, l->p, l->n);
        k += l->n;
        if (l->nl)
            buf[k++] = '\n';
    }
    buf[k] = '\0';
    return buf;
}

static void test_content_type(void **state)
{
    (void)state;
    struct sa_mime_ct ct;
    assert_true(sa_mime_content_type(NULL, &ct));
    assert_string_equal(ct.type, "text/plain");
    assert_string_equal(ct.charset, "us-ascii");
    assert_true(ct.missing);
    sa_mime_ct_free(&ct);
    assert_true(sa_mime_content_type("", &ct));
    assert_string_equal(ct.type, "text/plain");
    assert_null(ct.charset);
    assert_true(ct.missing);
    sa_mime_ct_free(&ct);
    assert_true(sa_mime_content_type("Text/Enriched; Charset=\"ISO-8859-1\"", &ct));
    assert_string_equal(ct.type, "text/plain");
    assert_string_equal(ct.charset, "ISO-8859-1");
    assert_false(ct.missing);
    sa_mime_ct_free(&ct);
    assert_true(sa_mime_content_type("text/html; charset=utf-8; name=a.htm", &ct));
    assert_string_equal(ct.type, "text/html");
    assert_string_equal(ct.charset, "utf-8");
    assert_string_equal(ct.name, "a.htm");
    sa_mime_ct_free(&ct);
    assert_true(sa_mime_content_type("multipart/mixed; boundary=\"=_a b\"", &ct));
    assert_string_equal(ct.type, "multipart/mixed");
    assert_string_equal(ct.boundary, "=_a b");
    sa_mime_ct_free(&ct);
    assert_true(sa_mime_content_type("multipart/alternative;\tBOUNDARY=xyz;x=1", &ct));
    assert_string_equal(ct.boundary, "xyz");
    sa_mime_ct_free(&ct);
    /* a bare boundary cut by a quote is no boundary */
    assert_true(sa_mime_content_type("multipart/mixed; boundary=ab\"c", &ct));
    assert_null(ct.boundary);
    sa_mime_ct_free(&ct);
    assert_true(sa_mime_content_type("image/gif; filename=\"x.gif\"", &ct));
    assert_string_equal(ct.type, "image/gif");
    assert_string_equal(ct.name, "x.gif");
    sa_mime_ct_free(&ct);
    /* RFC 2231 pieces, joined in their order */
    assert_true(sa_mime_content_type("image/gif; name*1=tail.gif; name*0=\"head_\"", &ct));
    assert_string_equal(ct.name, "head_tail.gif");
    sa_mime_ct_free(&ct);
    assert_true(sa_mime_content_type("image/gif; name*1=b", &ct));
    assert_null(ct.name);
    sa_mime_ct_free(&ct);
    assert_true(sa_mime_content_type("  Application/PDF extra", &ct));
    assert_string_equal(ct.type, "application/pdf");
    sa_mime_ct_free(&ct);
}

static const char MULTI[] =
    "From: a@example.org\r\n"
    "Content-Type: multipart/mixed; boundary=\"B1\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--B1\r\n"
    "Content-Type: multipart/alternative; boundary=B2\r\n"
    "\r\n"
    "--B2\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "plain text\r\n"
    "--B2\r\n"
    "Content-Type: text/html\r\n"
    "Content-Transfer-Encoding: Quoted-Printable\r\n"
    "\r\n"
    "<p>caf=E9</p>\r\n"
    "--B2--\r\n"
    "--B1\r\n"
    "Content-Type: image/gif; name=\"a.gif\"\r\n"
    "Content-Disposition: attachment;\r\n"
    "\tfilename=\"b.gif\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "R0lGODlhAQABAAAAACw=\r\n"
    "--B1--\r\n";

static void test_tree(void **state)
{
    (void)state;
    struct sa_mime *t = parse(MULTI);
    assert_int_equal(t->nnodes, 5);
    const char *types[] = {"multipart/mixed", "multipart/alternative", "text/plain", "text/html",
                           "image/gif"};
    const unsigned depth[] = {0, 1, 2, 2, 1};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(t->nodes[i].type, types[i]);
        assert_int_equal(t->nodes[i].depth, depth[i]);
    }
    assert_false(t->nodes[0].leaf);
    assert_false(t->nodes[1].leaf);
    assert_true(t->nodes[2].leaf);
    assert_int_equal(t->nodes[2].parent, 1);
    assert_int_equal(t->nodes[4].parent, 0);
    /* CRLF squashed, the line end before the boundary taken off */
    assert_string_equal(leaf_text(t, 2), "plain text");
    assert_string_equal(leaf_text(t, 3), "<p>caf=E9</p>");
    assert_string_equal(t->nodes[3].cte, "Quoted-Printable");
    assert_string_equal(t->nodes[4].name, "b.gif");
    assert_string_equal(t->nodes[4].cd, "attachment; filename=\"b.gif\"");
    assert_false(t->missing_boundary);
    assert_false(t->missing_head_body_separator);
    assert_false(t->mime_epilogue_exists);
    size_t n;
    char *d = sa_mime_decode(t, 3, &n);
    assert_string_equal(d, "<p>caf\xe9</p>");
    free(d);
    d = sa_mime_decode(t, 4, &n);
    assert_int_equal(n, 14);
    assert_memory_equal(d, "GIF89a\1\0\1\0", 10);
    free(d);
    sa_mime_free(t);
}

/* every allocation failing in turn: NULL, never a crash or a leak, until
 * enough succeed for the whole tree */
static void test_out_of_memory(void **state)
{
    (void)state;
    static const char rfc822[] = "Content-Type: multipart/mixed; boundary=m\n\n--m\n"
                                 "Content-Type: message/rfc822\n\nSubject: in\n"
                                 "Content-Type: multipart/alternative; boundary=n\n\n--n\n"
                                 "Content-Type: text/html\n\n<b>x</b>\n--n--\n--m--\n";
    const char *inputs[] = {MULTI, rfc822};
    for (size_t k = 0; k < 2; k++) {
        bool done = false;
        for (long n = 0; n < 2000 && !done; n++) {
            util_alloc_fail_after(n);
            struct sa_mime *t = sa_mime_parse(inputs[k], strlen(inputs[k]));
            util_alloc_fail_after(-1);
            if (t != NULL) {
                assert_int_equal(t->nnodes, k == 0 ? 5 : 4);
                done = true;
            }
            sa_mime_free(t);
        }
        assert_true(done);
    }
}

static void test_flags(void **state)
{
    (void)state;
    /* the header runs into a boundary line */
    struct sa_mime *t = parse("Subject: x\n--b\nContent-Type: text/plain\n\nhi\n");
    assert_true(t->missing_head_body_separator);
    sa_mime_free(t);
    /* four lines that are no fields */
    t = parse("Subject: x\none\ntwo\nthree\nfour\n");
    assert_true(t->missing_head_body_separator);
    sa_mime_free(t);
    t = parse("Subject: x\none\ntwo\nthree\n\nbody\n");
    assert_false(t->missing_head_body_separator);
    sa_mime_free(t);
    /* only a header: the end came first */
    t = parse("Subject: x\n");
    assert_true(t->missing_head_body_separator);
    sa_mime_free(t);
    static char longv[9000 + 40];
    memset(longv, 'a', sizeof(longv) - 1);
    memcpy(longv, "X-Long: ", 8);
    memcpy(longv + sizeof(longv) - 8, "\n\nbody\n", 8);
    t = parse(longv);
    assert_true(t->truncated_header);
    sa_mime_free(t);
    t = parse("Content-Type: multipart/mixed; boundary=q\n\n--q\nno header here\n\n"
              "text\n--q--\nepilogue words\n");
    assert_true(t->missing_mime_headers);
    assert_true(t->mime_epilogue_exists);
    /* its first line is no field and not empty */
    assert_true(t->missing_mime_head_body_separator);
    assert_false(t->missing_boundary);
    sa_mime_free(t);
    /* dots and blanks after the end are no epilogue */
    t = parse("Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/plain\n"
              "no blank line\n--q--\n.\n  \n");
    assert_false(t->mime_epilogue_exists);
    assert_true(t->missing_mime_head_body_separator);
    sa_mime_free(t);
    t = parse("Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/plain\n\n"
              "never closed\n");
    assert_true(t->missing_boundary);
    assert_int_equal(t->nnodes, 2);
    assert_string_equal(leaf_text(t, 1), "never closed\n");
    sa_mime_free(t);
}

static void test_nested_and_rfc822(void **state)
{
    (void)state;
    /* bug 7358: a part declaring its parent's boundary; its closing line is skipped once */
    struct sa_mime *t = parse("Content-Type: multipart/mixed; boundary=s\n\n--s\n"
                              "Content-Type: multipart/related; boundary=s\n\n--s\n"
                              "Content-Type: text/plain\n\ninner\n--s--\n--s--\n");
    assert_string_equal(t->nodes[1].type, "multipart/related");
    /* each level opens and closes the one state */
    assert_false(t->missing_boundary);
    assert_int_equal(t->nnodes, 3);
    assert_string_equal(leaf_text(t, 2), "inner");
    sa_mime_free(t);
    t = parse("Content-Type: multipart/mixed; boundary=m\n\n--m\n"
              "Content-Type: message/rfc822\n\nSubject: inner\n"
              "Content-Type: text/html\n\n<b>x</b>\n--m--\n");
    assert_int_equal(t->nnodes, 3);
    assert_string_equal(t->nodes[1].type, "message/rfc822");
    assert_false(t->nodes[1].leaf);
    assert_string_equal(t->nodes[2].type, "text/html");
    assert_int_equal(t->nodes[2].parent, 1);
    assert_string_equal(leaf_text(t, 2), "<b>x</b>");
    sa_mime_free(t);
    /* a digest's untyped part is a message */
    t = parse("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nbody\n"
              "--d--\n");
    assert_string_equal(t->nodes[1].type, "message/rfc822");
    assert_int_equal(t->nnodes, 3);
    sa_mime_free(t);
    /* an mbox line first; a line over 2048 octets split in a multipart only */
    static char big[3000 + 200];
    strcpy(big, "From alice@example.org Mon Dec  7 10:00:00 2026\nSubject: x\n\n");
    size_t o = strlen(big);
    memset(big + o, 'x', 2100);
    strcpy(big + o + 2100, "\n");
    t = parse(big);
    assert_int_equal(t->nnodes, 1);
    assert_int_equal(t->nodes[0].nlines, 1);
    assert_int_equal(sa_mime_line_len(&t->lines[t->nodes[0].line0]), 2101);
    sa_mime_free(t);
    strcpy(big, "Content-Type: multipart/mixed; boundary=L\n\n--L\n\n");
    o = strlen(big);
    memset(big + o, 'x', 2100);
    strcpy(big + o + 2100, "\nend\n--L--\n");
    t = parse(big);
    assert_int_equal(t->nnodes, 2);
    assert_int_equal(t->nodes[1].nlines, 3);
    assert_int_equal(sa_mime_line_len(&t->lines[t->nodes[1].line0]), 2049);
    assert_int_equal(sa_mime_line_len(&t->lines[t->nodes[1].line0 + 1]), 53);
    assert_string_equal(leaf_text(t, 1) + 2049 + 53, "end");
    sa_mime_free(t);
}

static void test_decode(void **state)
{
    (void)state;
    struct sa_mime *t = parse("Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
                              "SGVsbG8s\r\nIGJvYg0K\n");
    size_t n;
    char *d = sa_mime_decode(t, 0, &n);
    assert_string_equal(d, "Hello, bob\n");
    free(d);
    sa_mime_free(t);
    t = parse("Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
              "soft=\nbreak  \n=41=4a=zz\n");
    d = sa_mime_decode(t, 0, &n);
    assert_string_equal(d, "softbreak\nAJ=zz\n");
    free(d);
    sa_mime_free(t);
    /* an empty input is one empty line: an empty header, then the end */
    t = sa_mime_parse("", 0);
    assert_non_null(t);
    assert_int_equal(t->nnodes, 1);
    assert_false(t->missing_head_body_separator);
    sa_mime_free(t);
}

static void test_image_dims(void **state)
{
    (void)state;
    uint32_t w, h;
    const unsigned char g[] = "GIF89a\x20\x03\x58\x02\0\0\0";
    assert_true(sa_image_dims(SA_IMAGE_GIF, g, 13, &w, &h));
    assert_int_equal(w, 800);
    assert_int_equal(h, 600);
    assert_false(sa_image_dims(SA_IMAGE_GIF, g, 9, &w, &h));
    assert_false(sa_image_dims(SA_IMAGE_GIF, (const unsigned char *)"GIF88a\1\0\1\0", 10, &w, &h));
    const unsigned char p[] = "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\1\0\0\0\0\x80\x08\x02\0\0\0"
                              "ABCD";
    assert_true(sa_image_dims(SA_IMAGE_PNG, p, sizeof(p) - 1, &w, &h));
    assert_int_equal(w, 256);
    assert_int_equal(h, 128);
    assert_false(sa_image_dims(SA_IMAGE_PNG, p, 8 + 8 + 11, &w, &h));
    const unsigned char pe[] = "\x89PNG\r\n\x1a\n\0\0\0\0IEND\0\0\0\x0dIHDR\0\0\1\0\0\0\0\x80"
                               "\x08\x02\0\0\0ABCD";
    assert_false(sa_image_dims(SA_IMAGE_PNG, pe, sizeof(pe) - 1, &w, &h));
    const unsigned char j[] = "\xff\xd8\xff\xe0\0\x04xx\xff\xc2\0\x11\x08\x01\x2c\x00\xc8\x03";
    assert_true(sa_image_dims(SA_IMAGE_JPEG, j, sizeof(j) - 1, &w, &h));
    assert_int_equal(h, 300);
    assert_int_equal(w, 200);
    /* SOS before a frame; a marker without its FF */
    const unsigned char js[] = "\xff\xd8\xff\xda\0\x04xx\xff\xc0\0\x11\x08\x01\x2c\x00\xc8\x03";
    assert_false(sa_image_dims(SA_IMAGE_JPEG, js, sizeof(js) - 1, &w, &h));
    const unsigned char jb[] = "\xff\xd8\x00\xc0\0\x11\x08\x01\x2c\x00\xc8\x03";
    assert_false(sa_image_dims(SA_IMAGE_JPEG, jb, sizeof(jb) - 1, &w, &h));
    assert_false(sa_image_dims(SA_IMAGE_JPEG, j, 12, &w, &h));
}

static void expect(struct rules *r, const char *msg, const char *want, const char *miss)
{
    char *h = hits(r, msg, NULL);
    char names[512];
    snprintf(names, sizeof(names), "%s", want);
    for (char *s = strtok(names, " "); s; s = strtok(NULL, " "))
        if (!has(h, s))
            fail_msg("%s did not hit:%s", s, h);
    snprintf(names, sizeof(names), "%s", miss);
    for (char *s = strtok(names, " "); s; s = strtok(NULL, " "))
        if (has(h, s))
            fail_msg("%s hit:%s", s, h);
}

static const char MIME_CF[] =
    "rawbody B64 eval:check_for_mime('mime_base64_count')\n"
    "rawbody B64_TEXT eval:check_for_mime('mime_base64_encoded_text')\n"
    "rawbody QP eval:check_for_mime('mime_qp_count')\n"
    "rawbody QP_LONG eval:check_for_mime('mime_qp_long_line')\n"
    "body BAD_ISO eval:check_for_mime('mime_bad_iso_charset')\n"
    "body ATTACH eval:check_for_mime('mime_attachment')\n"
    "body LIMIT eval:check_for_mime('mimepart_limit_exceeded')\n"
    "body MISSING_BOUNDARY eval:check_for_mime('mime_missing_boundary')\n"
    "body ALT eval:check_for_mime('mime_multipart_alternative')\n"
    "body HTML eval:check_for_mime_html()\n"
    "body HTML_ONLY eval:check_for_mime_html_only()\n"
    "body HTML_MOSTLY eval:check_mime_multipart_ratio('0.00','0.01')\n"
    "body HB_SEP eval:check_msg_parse_flags('missing_head_body_separator')\n"
    "body MIME_HB_SEP eval:check_msg_parse_flags('missing_mime_head_body_separator')\n"
    "body EPI eval:check_msg_parse_flags('mime_epilogue_exists')\n"
    "body NO_HEADERS eval:check_msg_parse_flags('missing_mime_headers')\n"
    "body FAKE_ASCII eval:check_for_ascii_text_illegal()\n"
    "body UNICODE eval:check_abundant_unicode_ratio(0.02)\n"
    "body UNICODE_BAD eval:check_abundant_unicode_ratio('1')\n"
    "body UPPER eval:check_for_uppercase('75', '100')\n"
    "body MA_NON_TEXT eval:check_ma_non_text()\n"
    "body B64_78 eval:check_base64_length('78','79')\n"
    "body B64_79 eval:check_base64_length('79')\n"
    "body QP_RATIO eval:check_qp_ratio('0.1')\n"
    "body BAD_ARGS eval:check_base64_length('x')\n";

static void test_mime_evals(void **state)
{
    (void)state;
    write_file("20_mime.cf", MIME_CF);
    struct loaded l = load(NULL, false);
    assert_int_equal(skipped(&l.rep, "eval check_base64_length: argument 1 (x) is not a number"),
                     1);
    struct rules *r = l.r;
    expect(r, "Subject: x\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
              "aGVsbG8K\n", "B64 B64_TEXT", "QP HTML ATTACH B64_78 B64_79 LIMIT HB_SEP");
    expect(r, "Subject: x\nContent-Type: text/plain; charset=utf-8\n"
              "Content-Transfer-Encoding: base64\n\naGVsbG8K\n", "B64", "B64_TEXT");
    expect(r, "Subject: x\nContent-Type: text/plain; charset=iso-8859-1\n"
              "Content-Transfer-Encoding: quoted-printable\n\n"
              "=41=42=43 and a very long line of text that goes on and on past the seventy-nine "
              "octets\n", "QP QP_LONG", "B64");
    expect(r, "Subject: x\nContent-Type: text/plain; charset=iso-8859-1\n"
              "Content-Transfer-Encoding: quoted-printable\n\n=41=42=43=44\n", "QP QP_RATIO",
           "QP_LONG");
    /* trailing =20 are not counted, =E9 is not printable ASCII */
    expect(r, "Subject: x\nContent-Type: text/plain; charset=iso-8859-1\n"
              "Content-Transfer-Encoding: quoted-printable\n\ncaf=E9=20=20\n", "", "QP QP_RATIO");
    expect(r, "Subject: x\nContent-Type: text/plain; charset=iso-1234-5\n\nhi\n", "BAD_ISO", "");
    expect(r, "Subject: x\nContent-Type: text/plain; charset=iso-8859-15\n\nhi\n", "",
           "BAD_ISO FAKE_ASCII");
    expect(r, "Subject: x\nContent-Type: text/html\n\n<p>hi</p>\n", "HTML HTML_ONLY", "ALT");
    const char *alt = "Subject: x\nContent-Type: multipart/alternative; boundary=a\n\n--a\n"
                      "Content-Type: text/plain\n\nHi\n--a\nContent-Type: text/html\n\n"
                      "<html><body><p>a long enough html part to make the ratio small, "
                      "longer than two hundred octets of markup and text, so that the text "
                      "part of two octets is under a hundredth of it: more words here, and "
                      "more, and more words again until it is long enough</p></body></html>\n"
                      "--a\nContent-Type: application/pdf\n\n%PDF\n--a--\n";
    expect(r, alt, "ALT HTML HTML_MOSTLY MA_NON_TEXT", "HTML_ONLY MISSING_BOUNDARY");
    expect(r, "Subject: x\n--b\nhi\n", "HB_SEP", "");
    expect(r, "Subject: x\nContent-Type: multipart/mixed; boundary=q\n\n--q\nhello\n\ntext\n"
              "--q--\nwords after\n", "EPI NO_HEADERS MIME_HB_SEP", "MISSING_BOUNDARY");
    /* the last line ends the part before its header does: no separator missing */
    expect(r, "Subject: x\nContent-Type: multipart/mixed; boundary=q\n\n--q\n"
              "Content-Type: text/plain\nhello\n", "MISSING_BOUNDARY", "EPI MIME_HB_SEP");
    expect(r, "Subject: x\nContent-Type: text/plain; charset=us-ascii\n\ncaf\xe9\n",
           "FAKE_ASCII", "UNICODE");
    expect(r, "Subject: x\n\nno type at all: caf\xe9\n", "FAKE_ASCII", "");
    expect(r, "Subject: x\nContent-Type: text/plain\n\n&#x0041;&#x0042; hi\n", "UNICODE",
           "UNICODE_BAD FAKE_ASCII");
    char upper[600] = "Subject: x\nContent-Type: text/plain\n\n";
    for (int i = 0; i < 6; i++)
        strcat(upper, "THIS IS A LINE OF SHOUTING WORDS, ALL IN CAPITALS.\n");
    expect(r, upper, "UPPER", "");
    char upper_koi[700] = "Subject: x\nContent-Type: text/plain; charset=koi8-r\n\n";
    strcat(upper_koi, upper + strlen("Subject: x\nContent-Type: text/plain\n\n"));
    expect(r, upper_koi, "", "UPPER");
    char b64l[400] = "Subject: x\nContent-Type: multipart/mixed; boundary=z\n\n--z\n"
                     "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
                     "Content-Disposition: attachment\n\n";
    strcat(b64l, "QUFB" "QUFB" "QUFB" "QUFB" "QUFB" "QUFB" "QUFB" "QUFB" "QUFB" "QUFB"
                 "QUFB" "QUFB" "QUFB" "QUFB" "QUFB" "QUFB" "QUFB" "QUFB" "QUFBQ\nQQ==\n--z--\n");
    /* 77 octets and the line end: 78 */
    expect(r, b64l, "B64 B64_78 ATTACH", "B64_79 B64_TEXT");
    unload(&l);
}

static char *b64(const unsigned char *d, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static char out[512];
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) |
                     (i + 2 < n ? d[i + 2] : 0);
        out[k++] = a[v >> 18 & 63];
        out[k++] = a[v >> 12 & 63];
        out[k++] = i + 1 < n ? a[v >> 6 & 63] : '=';
        out[k++] = i + 2 < n ? a[v & 63] : '=';
    }
    out[k] = '\0';
    return out;
}

static void test_image_evals(void **state)
{
    (void)state;
    write_file("20_img.cf",
               "body GIF_1 eval:image_count('gif','1','1')\n"
               "body GIF_2P eval:image_count('gif','2')\n"
               "body PNG_1 eval:image_count('png',1,1)\n"
               "body ALL_1 eval:image_count('all',1,1)\n"
               "body GIF_AREA eval:pixel_coverage('gif','180000','475000')\n"
               "body EXACT eval:image_size_exact('gif','400','500')\n"
               "body RANGE eval:image_size_range('gif', 300, 400, 450)\n"
               "body RANGE_NO eval:image_size_range('gif', 300, 600)\n"
               "body NAMED eval:image_named('big.gif')\n"
               "body NAME_RE eval:image_name_regex('^b.g\\.')\n"
               "rawbody RATIO_RAW eval:image_to_text_ratio('all', '0.000', '0.015')\n"
               "body BAD_TYPE eval:image_count('bmp',0)\n");
    struct loaded l = load(NULL, false);
    struct rules *r = l.r;
    unsigned char gif[13] = "GIF89a";
    gif[6] = 500 & 0xff, gif[7] = 500 >> 8, gif[8] = 400 & 0xff, gif[9] = 400 >> 8;
    char msg[2048];
    snprintf(msg, sizeof(msg),
             "Subject: x\nContent-Type: multipart/mixed; boundary=i\n\n--i\n"
             "Content-Type: text/plain\n\nsee it\n--i\nContent-Type: image/gif; name=big.gif\n"
             "Content-Transfer-Encoding: base64\n\n%s\n--i--\n",
             b64(gif, sizeof(gif)));
    expect(r, msg, "GIF_1 ALL_1 GIF_AREA EXACT RANGE NAMED NAME_RE RATIO_RAW",
           "GIF_2P PNG_1 RANGE_NO BAD_TYPE");
    /* not base64: not an image for ImageInfo */
    expect(r, "Subject: x\nContent-Type: image/gif\n\nGIF89a\x01\x02\x01\x02\n", "",
           "GIF_1 ALL_1");
    /* counted without its dimensions, no pixels, no name */
    expect(r, "Subject: x\nContent-Type: image/png; name=big.gif\n"
              "Content-Transfer-Encoding: base64\n\nAAAA\n", "PNG_1 ALL_1",
           "NAMED GIF_AREA RATIO_RAW");
    unload(&l);
}

static void test_alt_evals(void **state)
{
    (void)state;
    write_file("20_alt.cf",
               "body MPART_ALT_DIFF eval:multipart_alternative_difference('99', '100')\n"
               "body ALT_DIFF_ANY eval:multipart_alternative_difference('0', 'undef')\n"
               "body ALT_DIFF_HALF eval:multipart_alternative_difference('40', '60')\n"
               "body MPART_ALT_DIFF_COUNT eval:multipart_alternative_difference_count('3', '1')\n"
               "body STOCK eval:check_stock_info('2')\n"
               "body STOCK_ANY eval:check_stock_info('0')\n");
    struct loaded l = load(NULL, false);
    struct rules *r = l.r;
    const char *head = "Subject: x\nContent-Type: multipart/alternative; boundary=a\n\n--a\n"
                       "Content-Type: text/plain\n\n";
    char msg[2048];
    snprintf(msg, sizeof(msg),
             "%sone two three four\n--a\nContent-Type: text/html\n\n"
             "<p>five six <b>seven</b> eight</p>\n--a--\n", head);
    expect(r, msg, "MPART_ALT_DIFF ALT_DIFF_ANY STOCK_ANY", "ALT_DIFF_HALF MPART_ALT_DIFF_COUNT");
    /* half the HTML words are in the text, as often */
    snprintf(msg, sizeof(msg),
             "%sone two three four\n--a\nContent-Type: text/html\n\n"
             "<p>one two seven eight</p>\n--a--\n", head);
    expect(r, msg, "ALT_DIFF_HALF ALT_DIFF_ANY", "MPART_ALT_DIFF MPART_ALT_DIFF_COUNT");
    /* a word twice in the HTML and once in the text stays: 100 */
    snprintf(msg, sizeof(msg),
             "%sone two\n--a\nContent-Type: text/html\n\n<p>one one two two</p>\n--a--\n",
             head);
    expect(r, msg, "ALT_DIFF_ANY MPART_ALT_DIFF", "ALT_DIFF_HALF");
    snprintf(msg, sizeof(msg),
             "%sa b c d e f g h i j k l m n o p q r s t\n--a\nContent-Type: text/html\n\n"
             "<p>a b</p>\n--a--\n", head);
    /* MIN 0: any difference, 0 too */
    expect(r, msg, "MPART_ALT_DIFF_COUNT ALT_DIFF_ANY", "MPART_ALT_DIFF");
    /* an image and no words: one word the text never has */
    snprintf(msg, sizeof(msg),
             "%shello\n--a\nContent-Type: text/html\n\n<img src=\"cid:x\">\n--a--\n", head);
    expect(r, msg, "MPART_ALT_DIFF", "");
    /* only HTML and a calendar: skipped */
    expect(r, "Subject: x\nContent-Type: multipart/alternative; boundary=a\n\n--a\n"
              "Content-Type: text/html\n\n<p>meet me</p>\n--a\nContent-Type: text/calendar\n\n"
              "BEGIN:VCALENDAR\n--a--\n", "ALT_DIFF_ANY", "MPART_ALT_DIFF");
    expect(r, "Subject: x\nContent-Type: text/plain\n\nCompany: Foo Inc\nSymbol: FOOI\n"
              "Current Price: $0.10\nnot a label\nTarget: $5\n", "STOCK STOCK_ANY", "");
    expect(r, "Subject: x\nContent-Type: text/plain\n\nSymbol: FOOI\nSymbol: BARI\n", "STOCK_ANY",
           "STOCK");
    unload(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_tree),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_nested_and_rfc822),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_image_dims),
        cmocka_unit_test(test_mime_evals),
        cmocka_unit_test(test_image_evals),
        cmocka_unit_test(test_alt_evals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
