/*
 * Unit tests for sa_html: the facts SpamAssassin's HTML parser records of
 * a text/html part.  Every expected value was read from SpamAssassin's own
 * HTML.pm (its get_results() over the same text, with Message::Node's
 * length and non-space counts of the rendered text), so a test that passes
 * here agrees with it: tag balances and ratios, obfuscation and backhair,
 * invisible and low-contrast text, font sizes, image area, titles, comments
 * and anchors, and HTML::Parser's way with broken markup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "rules/sa_html.h"

static struct sa_html_part parse(const char *html)
{
    struct sa_html_part p;
    assert_int_equal(sa_html_parse(html, strlen(html), &p), 0);
    return p;
}

static void expect_num(const struct sa_html_part *p, const char *key, double want)
{
    double v = -12345;
    assert_true(sa_html_number(p, key, &v));
    assert_float_equal(v, want, 1e-5);
}

static void expect_undef(const struct sa_html_part *p, const char *key)
{
    double v;
    assert_false(sa_html_number(p, key, &v));
}

static void expect_inside(const struct sa_html_part *p, const char *tag, long want)
{
    long v = -1;
    assert_true(sa_html_inside(p, tag, &v));
    assert_int_equal(v, want);
}

static void expect_str(const struct sa_html_part *p, const char *key, size_t i, const char *want)
{
    const struct sa_html_strs *l = sa_html_strings(p, key);
    assert_non_null(l);
    assert_true(i < l->n);
    size_t e = i + 1 < l->n ? l->start[i + 1] : l->len;
    assert_int_equal(e - l->start[i], strlen(want));
    assert_memory_equal(l->text + l->start[i], want, strlen(want));
}

static void test_obfuscation_title_image(void **state)
{
    (void)state;
    struct sa_html_part p =
        parse("<html><head><title>Hello there friend</title></head><body><p>Some "
              "<b>V</b>i<b>a</b>gra text here.</p><img src=\"a.gif\" width=\"400\" "
              "height=\"300\"></body></html>\n");
    expect_num(&p, "length", 158);
    expect_num(&p, "html_length", 48);
    expect_num(&p, "non_space_len", 35);
    expect_num(&p, "image_area", 120000);
    expect_num(&p, "obfuscation_ratio", 0.2);
    expect_num(&p, "backhair_count", 2);
    expect_num(&p, "closed_extra_ratio", 0);
    expect_num(&p, "bad_tag_ratio", 0);
    expect_inside(&p, "img", 1);
    expect_inside(&p, "html", 0);
    expect_str(&p, "title", 0, "Hello there friend");
    assert_true(sa_html_true(&p, "html"));
    assert_false(sa_html_true(&p, "font_low_contrast"));
    assert_null(sa_html_strings(&p, "comment"));
    long v;
    assert_false(sa_html_inside(&p, "center", &v));
    sa_html_part_free(&p);
}

static void test_fonts(void **state)
{
    (void)state;
    struct sa_html_part p =
        parse("<html><body><font color=\"#ffffff\">invisible words here</font> <font "
              "color=\"#fffffe\">low</font><font size=\"1\">tiny</font><font "
              "size=\"+4\">big</font></body></html>");
    expect_num(&p, "max_size", 7);
    expect_num(&p, "min_size", 1);
    expect_num(&p, "html_length", 31);
    expect_num(&p, "non_space_len", 28);
    assert_true(sa_html_true(&p, "font_low_contrast"));
    assert_false(sa_html_true(&p, "font_invalid_color"));
    sa_html_part_free(&p);

    p = parse("<basefont size=2><font size=-1>small</font><big><big><big><big>huge</big></"
              "big></big></big><small>s</small><font size=\"7\">seven</font>");
    /* big and small change the size but not the maxima */
    expect_num(&p, "max_size", 7);
    expect_num(&p, "min_size", 1);
    expect_num(&p, "backhair_count", 3);
    expect_inside(&p, "basefont", 1);
    sa_html_part_free(&p);

    p = parse("<table bgcolor=\"#000000\"><tr><td style=\"background:#000 url(x.png) "
              "no-repeat\">black on black</td></tr></table><font color=red>red</font><font "
              "color=\"#f00\">x</font><font color=\"rgb(10%,20%,30%)\">y</font><font "
              "color=\"zzz\">inv</font>");
    assert_true(sa_html_true(&p, "font_low_contrast"));
    assert_true(sa_html_true(&p, "font_invalid_color"));
    expect_num(&p, "obfuscation_ratio", 0.214286);
    sa_html_part_free(&p);

    p = parse("<html><body><span style=\"color: rgb(255,255,255); background-color: "
              "white\">hidden</span><p style=\"display:none\">gone</p><div "
              "style=\"visibility: hidden\">hid</div><font face=\"Arial, "
              "Helvetica\">ok</font><font face=\"@@bad\">bad</font></body></html>");
    assert_true(sa_html_true(&p, "font_low_contrast"));
    assert_true(sa_html_true(&p, "font_face_bad"));
    expect_num(&p, "non_space_len", 18);
    sa_html_part_free(&p);

    /* the last background layer decides; a comma ending the value leaves the one before */
    p = parse("<div style=\"background: url(a,b.png) #fff, #000 url(x)\">dark</div>");
    assert_true(sa_html_true(&p, "font_low_contrast"));
    sa_html_part_free(&p);
    p = parse("<div style=\"background: #000, 'q,r' #fff\">light</div>");
    assert_false(sa_html_true(&p, "font_low_contrast"));
    sa_html_part_free(&p);
    p = parse("<div style=\"background: #fff, (#000) #000,  \">dark</div>");
    assert_true(sa_html_true(&p, "font_low_contrast"));
    sa_html_part_free(&p);

    p = parse("<font face=\"Arial, Helvetica\">ok</font><font color=white>x</font>");
    assert_false(sa_html_true(&p, "font_face_bad"));
    assert_true(sa_html_true(&p, "font_low_contrast"));
    sa_html_part_free(&p);
}

static void test_comments_anchors_doctype(void **state)
{
    (void)state;
    struct sa_html_part p =
        parse("<!DOCTYPE html PUBLIC \"-//W3C//DTD HTML 4.01//EN\"><html><head><meta "
              "http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\"><style>p "
              "{color:red}</style></head><body><!-- a comment --><!foo bar><a "
              "href=\"http://x.example/\">click <img src=\"b.png\"> here</a></body></html>");
    expect_str(&p, "comment", 0, "<!-- a comment -->");
    expect_str(&p, "comment", 1, "<!foo bar>");
    expect_str(&p, "anchor", 0, "click <img>\n here");
    expect_inside(&p, "!doctype", 0);
    expect_inside(&p, "meta", 1);
    expect_num(&p, "html_length", 11);
    sa_html_part_free(&p);

    p = parse("<![if !supportLists]>x<![endif]><![CDATA[ <b>not a tag</b> ]]>after<?xml "
              "version=\"1.0\"?></ weird><title>t1</title><title>second &amp; title</title>");
    expect_str(&p, "title", 0, "t1");
    expect_str(&p, "title", 1, "second & title");
    expect_str(&p, "comment", 0, "<![if !supportLists]>");
    expect_str(&p, "comment", 2, "</ weird>");
    expect_num(&p, "html_length", 48);
    expect_num(&p, "non_space_len", 34);
    sa_html_part_free(&p);
}

static void test_balance_ratios(void **state)
{
    (void)state;
    struct sa_html_part p = parse("<div><center><blink>x</blink></center></center></div></"
                                  "div><foo><bar></bar><zz:qq>text<o:p></o:p></div>");
    expect_num(&p, "closed_extra_ratio", 0.2);
    expect_num(&p, "bad_tag_ratio", 0.4);
    expect_num(&p, "non_element_ratio", 0.571429);
    expect_inside(&p, "foo", 1);
    expect_inside(&p, "center", 0);
    expect_inside(&p, "zz:qq", 1);
    expect_undef(&p, "obfuscation_ratio");
    sa_html_part_free(&p);

    /* no tag at all: the ratios are not defined */
    p = parse("just text");
    expect_undef(&p, "closed_extra_ratio");
    expect_undef(&p, "bad_tag_ratio");
    expect_num(&p, "length", 9);
    sa_html_part_free(&p);
}

static void test_forms_embeds_iframes(void **state)
{
    (void)state;
    struct sa_html_part p =
        parse("<body><form action=\"mailto:x@example.com\"><input name=a></form><embed "
              "src=\"x.swf\"><object></object><iframe src=\"http://evil.example/x\"></"
              "iframe><script>var a=\"<b>\";</script>tail words here");
    assert_true(sa_html_true(&p, "form_action_mailto"));
    assert_true(sa_html_true(&p, "embeds"));
    assert_true(p.iframe_src);
    expect_str(&p, "script", 0, "var a=\"<b>\";");
    expect_num(&p, "html_length", 16);
    expect_num(&p, "bad_tag_ratio", 0.0909091);
    sa_html_part_free(&p);

    p = parse("<iframe width=3></iframe><iframe src=\" \"></iframe>");
    assert_false(p.iframe_src);
    sa_html_part_free(&p);
}

static void test_unterminated_and_entities(void **state)
{
    (void)state;
    /* markup cut at the end is a comment, as HTML::Parser makes it at eof */
    struct sa_html_part p = parse("plain <p>unterminated <a href=\"x");
    expect_str(&p, "comment", 0, "<a href=\"x");
    expect_num(&p, "html_length", 20);
    expect_num(&p, "non_space_len", 17);
    sa_html_part_free(&p);

    p = parse("<html><body>W<b>o</b>r<b>d</b>s and m<i>o</i>re obf<u>usc</u>ation "
              "l<s>i</s>ke th<b>i</b>s<br/>line two&nbsp;&amp; &#65;&#x42; "
              "&copy;</body></html>");
    expect_num(&p, "obfuscation_ratio", 0.705882);
    expect_num(&p, "backhair_count", 5);
    expect_num(&p, "html_length", 53);
    expect_num(&p, "non_space_len", 43);
    expect_inside(&p, "br", 1);
    sa_html_part_free(&p);

    p = parse("<html>\n<head>\n<title>Newsletter</title>\n</head>\n<body bgcolor=\"#ffffff\" "
              "text=\"#000000\">\n<h1>News</h1>\n<p>Dear reader,</p>\n<ul><li>Item "
              "one</li><li>Item two</li></ul>\n<table><tr><th>A</th><td>B</td></tr></"
              "table>\n<p>Regards,<br>\nTeam</p>\n</body>\n</html>\n");
    expect_num(&p, "html_length", 83);
    expect_num(&p, "non_space_len", 53);
    expect_num(&p, "length", 252);
    assert_false(sa_html_true(&p, "font_low_contrast"));
    sa_html_part_free(&p);
}

static void test_entities(void **state)
{
    (void)state;
    /* HTML::Entities' names (those past Latin-1 only with ";"), numbers,
     * and a name's longest prefix when the whole is none */
    struct sa_html_part p = parse("<title>&hearts; &Alpha; &alpha &eacute &Eacute; &ampx &amp "
                                  "&copy2 &euro; &euro &#8364; &lt;b&gt;</title>x &hellip; y "
                                  "&trade z");
    expect_str(&p, "title", 0,
               "\xe2\x99\xa5 \xce\x91 &alpha \xc3\xa9 \xc3\x89 &x & \xc2\xa9"
               "2 \xe2\x82\xac "
               "&euro \xe2\x82\xac <b>");
    expect_num(&p, "html_length", 66);
    expect_num(&p, "non_space_len", 47);
    sa_html_part_free(&p);
}

static void test_bounded(void **state)
{
    (void)state;
    /* many distinct tags, deep nesting, NULs: linear, no crash */
    size_t n = 200000;
    char *s = test_malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = "<a<b\0font>x</"[i % 13];
    s[n] = '\0';
    struct sa_html_part p;
    assert_int_equal(sa_html_parse(s, n, &p), 0);
    sa_html_part_free(&p);
    test_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_obfuscation_title_image),
        cmocka_unit_test(test_fonts),
        cmocka_unit_test(test_comments_anchors_doctype),
        cmocka_unit_test(test_balance_ratios),
        cmocka_unit_test(test_forms_embeds_iframes),
        cmocka_unit_test(test_unterminated_and_entities),
        cmocka_unit_test(test_entities),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
