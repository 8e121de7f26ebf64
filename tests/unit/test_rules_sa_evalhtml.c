/*
 * Unit tests for SpamAssassin's HTMLEval tests run natively
 * (sa_eval_html.c): .cf lines as SpamAssassin's own files write them,
 * loaded with rules_load_sa and run over messages with HTML written for
 * each function: tag balance and existence, html_test's flags, html_eval
 * and html_range over the numbers (bounds exclusive below, inclusive above,
 * "inf"), image-only and image-ratio, the title, comment and anchor
 * matches, the title against the Subject, iframes, a hit in any one of
 * several HTML parts, no hit without HTML, and expressions HTMLEval would
 * refuse (never a hit) or that are more than "OP N" (skipped at load).
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

static char dir[] = "/tmp/test_sa_evalhtml.XXXXXX";
#include "tests/unit/sa_rules_fixture.h"

/* A message whose only part is this HTML */
static const char *html_msg(const char *subject, const char *html)
{
    static char buf[8192];
    snprintf(buf, sizeof(buf),
             "From: a@example.org\r\nTo: b@example.net\r\nSubject: %s\r\nMIME-Version: 1.0\r\n"
             "Content-Type: text/html; charset=us-ascii\r\n\r\n%s\r\n",
             subject, html);
    return buf;
}

static void test_tags(void **state)
{
    (void)state;
    write_file("20_t.cf", "body TB_BODY eval:html_tag_balance('body', '!= 0')\n"
                          "body TB_CENTER_GT eval:html_tag_balance('center', '> 1')\n"
                          "body TB_BAD_TAG eval:html_tag_balance('b-x', '!= 0')\n"
                          "body TB_REFUSED eval:html_tag_balance('body', '!= x')\n"
                          "body TB_LONG eval:html_tag_balance('body', '> 1 + 2')\n"
                          "body TE_BGSOUND eval:html_tag_exists('bgsound')\n"
                          "body TE_STYLE eval:html_tag_exists('style')\n");
    struct loaded l = load(NULL, false);
    /* "> 1 + 2" is more than OP N: skipped, named */
    assert_int_equal(l.rep.loaded, 6);
    expect_hits(l.r, html_msg("x", "<html><body><p>hi</p></html>"), WANT("TB_BODY"),
                WANT("TB_CENTER_GT", "TB_BAD_TAG", "TB_REFUSED", "TE_BGSOUND", "TE_STYLE"));
    expect_hits(l.r, html_msg("x", "<body><center><center><bgsound src=x>hi</body>"),
                WANT("TB_CENTER_GT", "TE_BGSOUND"), WANT("TB_BODY", "TB_REFUSED"));
    /* an end tag alone makes the tag seen; the balance stays 0 */
    expect_hits(l.r, html_msg("x", "</style><body>x</body>"), WANT("TE_STYLE"), WANT("TB_BODY"));
    /* no HTML part: nothing */
    expect_hits(l.r, "Subject: x\r\n\r\n<html><body>text\r\n", NONE, WANT("TB_BODY", "TE_STYLE"));
    unload(&l);
    unlink(write_file("20_t.cf", ""));
}

static void test_flags_and_numbers(void **state)
{
    (void)state;
    write_file("20_f.cf", "body H_MESSAGE eval:html_test('html')\n"
                          "body H_LOW eval:html_test('font_low_contrast')\n"
                          "body H_INVALID eval:html_test('font_invalid_color')\n"
                          "body H_FACE eval:html_test('font_face_bad')\n"
                          "body H_MAILTO eval:html_test('form_action_mailto')\n"
                          "body H_EMBEDS eval:html_test('embeds')\n"
                          "body H_LEN_64 eval:html_eval('length', '< 64')\n"
                          "body H_HUGE eval:html_range('max_size', '6', 'inf')\n"
                          "body H_LARGE eval:html_range('max_size', '5', '6')\n"
                          "body H_EXTRA eval:html_range('closed_extra_ratio', '0.09', 'inf')\n"
                          "body H_OBF eval:html_range('obfuscation_ratio','.9','1.0')\n"
                          "body H_BADTAG eval:html_range('bad_tag_ratio','0.40','0.50')\n");
    struct loaded l = load(NULL, false);
    assert_int_equal(l.rep.loaded, 12);
    expect_hits(l.r, html_msg("x", "<p>hi</p>"), WANT("H_MESSAGE", "H_LEN_64"),
                WANT("H_LOW", "H_INVALID", "H_FACE", "H_MAILTO", "H_EMBEDS", "H_HUGE", "H_LARGE",
                     "H_EXTRA", "H_OBF", "H_BADTAG"));
    expect_hits(l.r,
                html_msg("x", "<body><font color=white>hidden</font><font color=bluish>x</font>"
                              "<font face=\"123\">y</font><form action=\"MailTo:a@b\"></form>"
                              "<embed src=x></body>"),
                WANT("H_LOW", "H_INVALID", "H_FACE", "H_MAILTO", "H_EMBEDS"), WANT("H_LEN_64"));
    /* max_size 6 is LARGE (5 < 6 <= 6), 7 HUGE */
    expect_hits(l.r, html_msg("x", "<font size=6>big</font>"), WANT("H_LARGE"), WANT("H_HUGE"));
    expect_hits(l.r, html_msg("x", "<font size=+4>big</font>"), WANT("H_HUGE"), WANT("H_LARGE"));
    /* 1 extra close of 9 tags: 0.11 */
    expect_hits(l.r, html_msg("x", "<p><b>x</b></i><b>y</b><b>z</b></p>"), WANT("H_EXTRA"), NONE);
    /* every tag splits a word: 1.0, within (.9, 1.0] */
    expect_hits(l.r, html_msg("x", "W<b>o</b>r<b>d</b>s"), WANT("H_OBF"), NONE);
    /* 3 unknown tags of 5 (an end tag counts): 0.6; 2 of 4 is 0.5, at most 0.50 */
    expect_hits(l.r, html_msg("x", "<p><zz>x</zz><yy></p>"), NONE, WANT("H_BADTAG"));
    expect_hits(l.r, html_msg("x", "<p><zz>x</zz></p>"), WANT("H_BADTAG"), NONE);
    unload(&l);
    unlink(write_file("20_f.cf", ""));
}

static void test_images(void **state)
{
    (void)state;
    write_file("20_i.cf", "body IO_04 eval:html_image_only('0000','0400')\n"
                          "body IO_08 eval:html_image_only('0400','0800')\n"
                          "body IR_02 eval:html_image_ratio('0.000','0.002')\n"
                          "body IR_08 eval:html_image_ratio('0.006','0.008')\n");
    struct loaded l = load(NULL, false);
    expect_hits(l.r, html_msg("x", "<img src=a width=600 height=400>"), WANT("IO_04"),
                WANT("IO_08", "IR_02", "IR_08"));
    /* 13 non-blank characters over 200x10: 0.0065 */
    expect_hits(l.r, html_msg("x", "<p>fourteen chars</p><img src=a width=\"200\" height=\"10\">"),
                WANT("IO_04", "IR_08"), WANT("IR_02"));
    /* percentages: 50% of 8 times 50% of 6 makes 400x300 */
    expect_hits(l.r, html_msg("x", "<p>hi</p><img width=50% height=50%>"), WANT("IR_02"), NONE);
    /* no img: no image-only, however short */
    expect_hits(l.r, html_msg("x", "<p>hi</p>"), NONE, WANT("IO_04", "IR_02"));
    unload(&l);
    unlink(write_file("20_i.cf", ""));
}

static void test_text_and_title(void **state)
{
    (void)state;
    write_file("20_x.cf",
               "body C_SHORT eval:html_text_match('comment', '<!(?!-).{0,6}>')\n"
               "body C_SAVED eval:html_text_match('comment', '<!-- saved from url=\\(\\d{4}\\)')\n"
               "body A_IMG eval:html_text_match('anchor', '<img>')\n"
               "body T_120 eval:html_text_match('title', '.{120}')\n"
               "body T_NOT_HI eval:html_text_not_match('title', '^hi$')\n"
               "body T_SUBJ eval:html_title_subject_ratio('3.5')\n"
               "body I_SRC eval:check_iframe_src()\n"
               "body CS_FAR eval:html_charset_faraway()\n");
    struct loaded l = load(NULL, false);
    expect_hits(l.r,
                html_msg("x", "<!x><!-- saved from url=(0022)http://internet.e-mail --><a href=u>"
                              "<img src=i></a><title>hi</title>"),
                WANT("C_SHORT", "C_SAVED", "A_IMG"), WANT("T_120", "T_NOT_HI", "T_SUBJ", "I_SRC"));
    /* the title over the Subject with its line end: 8 / 3 is under 3.5, 15 / 3 over */
    expect_hits(l.r, html_msg("ab", "<title>12345678</title>"), WANT("T_NOT_HI"), WANT("T_SUBJ"));
    expect_hits(l.r, html_msg("ab", "<title>123456789012345</title>"), WANT("T_SUBJ"), NONE);
    char title[200];
    memset(title, 'w', 130);
    snprintf(title + 130, sizeof(title) - 130, "</title>");
    char body[300];
    snprintf(body, sizeof(body), "<title>%s", title);
    expect_hits(l.r, html_msg("a much longer subject line for this long title", body),
                WANT("T_120"), WANT("T_SUBJ"));
    expect_hits(l.r, html_msg("x", "<iframe src=\"http://x.example/\"></iframe>"), WANT("I_SRC"),
                WANT("CS_FAR"));
    expect_hits(l.r,
                html_msg("x", "<meta http-equiv=\"Content-Type\" content=\"text/html; "
                              "charset=koi8-r\"><iframe width=1></iframe>"),
                NONE, WANT("I_SRC", "CS_FAR"));
    unload(&l);
    unlink(write_file("20_x.cf", ""));
}

static void test_any_part(void **state)
{
    (void)state;
    write_file("20_p.cf", "body TE_CENTER eval:html_tag_exists('center')\n"
                          "body H_LOW eval:html_test('font_low_contrast')\n");
    struct loaded l = load(NULL, false);
    const char *msg = "From: a@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
                      "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
                      "--b\r\nContent-Type: text/plain\r\n\r\n<center>not html</center>\r\n"
                      "--b\r\nContent-Type: text/html\r\n\r\n<p>first</p>\r\n"
                      "--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                      "PGNlbnRlcj5zZWNvbmQ8L2NlbnRlcj4=\r\n--b--\r\n";
    expect_hits(l.r, msg, WANT("TE_CENTER"), WANT("H_LOW"));
    unload(&l);
    unlink(write_file("20_p.cf", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tags),     cmocka_unit_test(test_flags_and_numbers),
        cmocka_unit_test(test_images),   cmocka_unit_test(test_text_and_title),
        cmocka_unit_test(test_any_part),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
