"""SpamAssassin's HTML tests that smtpgate runs natively (rules/sa_html.c, the facts its HTML
parser records; rules/sa_eval_html.c, Plugin::HTMLEval's functions), against Debian's
`spamassassin -L -t` on small messages written for this test: image-only HTML, unbalanced
tags, invisible and low-contrast text, tiny and huge fonts, a title longer than the Subject,
obfuscated words, comments, embeds, HTML with many tags, encoded parts, and a well-formed
newsletter as ham.  For every eval rule of these functions smtpgate loads, the same hit or
miss on every message (there must be no disagreement), and each message hits the rules it
was written for in both.  lint names the functions as implemented.

The rules are read where the package puts them and never copied here.
"""

from __future__ import annotations

import base64
import quopri
import re

import pytest

from sa_diff import both_hits, disagreements, lint_list, loaded_evals, needs_spamassassin
from sa_diff import msg as _msg

pytestmark = needs_spamassassin

FUNCTIONS = ("html_tag_balance", "html_image_only", "html_image_ratio", "html_charset_faraway",
             "html_tag_exists", "html_test", "html_eval", "html_text_match",
             "html_title_subject_ratio", "html_text_not_match", "html_range", "check_iframe_src")

HEAD = ("Received: from mail.example.org (mail.example.org [192.0.2.10])\n"
        "\tby mx.example.net (Postfix) with ESMTP id 4711;\n"
        "\tMon, 07 Dec 2026 10:00:00 +0000\n"
        "From: Alice Example <alice@example.org>\nTo: Bob <bob@example.net>\n"
        "Date: Mon, 07 Dec 2026 09:59:00 +0000\n"
        "Message-ID: <20261207100000.{n}@mail.example.org>\nMIME-Version: 1.0\n")


def html(n: int, body: str, subject: str = "Minutes of the meeting", cte: str = "7bit") -> bytes:
    """A message whose only part is text/html, encoded as cte says."""
    if cte == "base64":
        text = base64.encodebytes(body.encode("latin-1")).decode("ascii")
    elif cte == "quoted-printable":
        text = quopri.encodestring(body.encode("latin-1")).decode("ascii")
    else:
        text = body
    return _msg(HEAD.format(n=n) + f"Subject: {subject}\n"
                "Content-Type: text/html; charset=us-ascii\n"
                f"Content-Transfer-Encoding: {cte}\n", text)


def alternative(n: int, plain: str, body: str, subject: str = "Minutes of the meeting") -> bytes:
    return _msg(HEAD.format(n=n) + f"Subject: {subject}\n"
                "Content-Type: multipart/alternative; boundary=\"b1\"\n",
                "--b1\nContent-Type: text/plain; charset=us-ascii\n\n" + plain + "\n"
                "--b1\nContent-Type: text/html; charset=us-ascii\n\n" + body + "\n--b1--\n")


WORDS = "the minutes of the meeting are attached, please read them before friday. "
NEWSLETTER = ("<!DOCTYPE html PUBLIC \"-//W3C//DTD HTML 4.01 Transitional//EN\">\n"
              "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html; "
              "charset=us-ascii\">\n<title>Example Monthly</title>\n"
              "<style>p { margin: 0 }</style>\n</head>\n<body>\n<h1>Example Monthly</h1>\n"
              + "".join(f"<p>News item {i}: {WORDS}</p>\n" for i in range(12)) +
              "<p><a href=\"https://www.example.org/news\">Read more on our site</a></p>\n"
              "<table><tr><td>Contact</td><td>news@example.org</td></tr></table>\n"
              "</body>\n</html>\n")

# what a well-formed HTML newsletter hits, and all it hits of these rules: nothing spammy
NEWSLETTER_HITS = {"HTML_MESSAGE", "__HTML_LENGTH_1024_1536", "__TAG_EXISTS_HTML",
                   "__TAG_EXISTS_HEAD", "__TAG_EXISTS_BODY", "__TAG_EXISTS_META",
                   "__TAG_EXISTS_STYLE"}

MESSAGES = {
    "newsletter": (html(1, NEWSLETTER, "Example Monthly: the news of December"), NEWSLETTER_HITS),
    "image_only": (html(2, "<html><body><img src=\"http://img.example.com/a.gif\" width=\"600\" "
                           "height=\"400\"></body></html>"),
                   {"HTML_IMAGE_ONLY_04", "HTML_MESSAGE", "__HTML_LENGTH_384"}),
    "image_only_12": (html(3, "<html><body><a href=\"http://shop.example.com/\"><img "
                              "src=\"http://img.example.com/a.gif\" width=\"600\" height=\"400\">"
                              "</a><!--" + "x" * 850 + "--></body></html>"),
                      {"HTML_IMAGE_ONLY_12", "__HTML_LINK_IMAGE"}),
    "image_ratio": (html(4, "<html><body><p>Buy now</p><img src=\"http://img.example.com/b.gif\" "
                            "width=\"800\" height=\"600\"></body></html>"),
                    {"HTML_IMAGE_RATIO_02"}),
    "image_ratio_06": (html(5, "<html><body><p>" + "word " * 200 + "</p><img "
                               "src=\"http://img.example.com/c.gif\" width=\"400\" "
                               "height=\"400\"></body></html>"),
                       {"HTML_IMAGE_RATIO_06"}),
    "unbalanced_body": (html(6, "<html><head><title>Hi</title></head><body><p>" + WORDS +
                                "</p></html>"),
                        {"HTML_TAG_BALANCE_BODY"}),
    "unbalanced_head": (html(7, "<html><head><title>Hi</title><body><p>" + WORDS +
                                "</p></body></html>"),
                        {"HTML_TAG_BALANCE_HEAD"}),
    "extra_close": (html(8, "<html><body><p>" + WORDS + "</b></i></u></font></span></p></body>"
                            "</html>"),
                    {"HTML_EXTRA_CLOSE"}),
    "center": (html(9, "<html><body><center><p>" + WORDS + "</p></body></html>"),
               {"__TAG_EXISTS_CENTER", "__HTML_TAG_BALANCE_CENTER"}),
    "invisible": (html(10, "<html><body><p>" + WORDS + "</p><font color=\"#ffffff\">hidden "
                           "words for the filter</font></body></html>"),
                  {"HTML_FONT_LOW_CONTRAST"}),
    "low_contrast": (html(11, "<html><body bgcolor=\"#ffffff\"><p>" + WORDS + "</p><span "
                              "style=\"color: #fafafa\">nearly white words</span></body></html>"),
                     {"HTML_FONT_LOW_CONTRAST"}),
    "invalid_color": (html(12, "<html><body><p>" + WORDS + "</p><font color=\"bluish\">"
                               "odd</font></body></html>"),
                      {"__KAM_HTML_FONT_INVALID"}),
    "tiny_font": (html(13, "<html><body><p>" + WORDS + "</p><font size=\"1\">tiny words "
                           "here</font></body></html>"), set()),
    "huge_font": (html(14, "<html><body><font size=\"7\">HUGE SALE</font><p>" + WORDS +
                           "</p></body></html>"),
                  {"HTML_FONT_SIZE_HUGE"}),
    "large_font": (html(15, "<html><body><font size=\"+3\">big sale</font><p>" + WORDS +
                            "</p></body></html>"),
                   {"HTML_FONT_SIZE_LARGE"}),
    "bad_face": (html(16, "<html><body><font face=\"1234\">x</font><p>" + WORDS +
                          "</p></body></html>"),
                 {"HTML_FONT_FACE_BAD"}),
    "long_title": (html(17, "<html><head><title>" + "Amazing offer " * 10 + "</title></head>"
                            "<body><p>" + WORDS + "</p></body></html>", "Hi"),
                   {"__HTML_TITLE_120", "__HTML_TITLE_SUBJ_DIFF"}),
    # every tag splits a word: obfuscation 46 of 50 tags
    "obfuscated": (html(18, "<body>" + " ".join(["W<b>o</b>r<b>d</b>s"] * 12) + "</body>"),
                   {"HTML_OBFUSCATE_90_100"}),
    "obfuscated_10": (html(19, "<html><body><p>Some V<b>i</b>agra and some <b>plain</b> text, "
                               "<i>more</i> of <u>it</u> <br> here <br></p></body></html>"),
                      {"HTML_OBFUSCATE_10_20"}),
    "saved_url": (html(20, "<!-- saved from url=(0022)http://internet.e-mail -->\n<html><body><p>"
                           + WORDS + "</p></body></html>"),
                  {"HTML_COMMENT_SAVED_URL", "__COMMENT_EXISTS"}),
    "embeds": (html(21, "<html><body><p>" + WORDS + "</p><embed src=\"http://x.example.com/a.swf"
                        "\"><object data=\"x\"></object></body></html>"),
               {"HTML_EMBEDS"}),
    "many_tags": (html(22, "<html><body>" + "".join(f"<div><span>item {i}</span></div>"
                                                      for i in range(40)) + "</body></html>"),
                  {"__HTML_LENGTH_1024_1536"}),
    "base64_part": (html(23, "<html><body><center><font size=\"7\">" + WORDS + "</font></center>"
                             "</body></html>", cte="base64"),
                    {"HTML_FONT_SIZE_HUGE", "__TAG_EXISTS_CENTER"}),
    "qp_part": (html(24, "<html><body><p>" + WORDS * 3 + "</p><font color=\"white\">hidden "
                         "text</font></body></html>", cte="quoted-printable"),
                {"HTML_FONT_LOW_CONTRAST"}),
    "alternative": (alternative(25, WORDS, "<html><body><p>" + WORDS + "</p><script>var a=1;"
                                           "</script></body></html>"),
                    {"HTML_MESSAGE", "__TAG_EXISTS_SCRIPT"}),
    # 378 characters with LF line ends, 391 as sent with CRLF: the length is the former
    "length_lf": (html(27, "<html><body>\n" + "".join(f"<p>line number {i:02d} here</p>\n"
                                                         for i in range(13)) + "</body></html>"),
                   {"__HTML_LENGTH_384", "__HTML_LENGTH_512"}),
    "plain_text": (_msg(HEAD.format(n=26) + "Subject: Minutes\n"
                        "Content-Type: text/plain; charset=us-ascii\n", WORDS + "\n"), set()),
}
TARGETS = set().union(*(want for _, want in MESSAGES.values()))


@pytest.fixture(scope="module")
def lint() -> str:
    return lint_list()


@pytest.fixture(scope="module")
def html_rules(lint) -> dict[str, str]:
    """The eval rules of HTMLEval's functions smtpgate loaded: name -> function."""
    return loaded_evals(lint, FUNCTIONS)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    return both_hits({name: m for name, (m, _) in MESSAGES.items()}, tmp_path_factory)


def test_lint_names_the_functions_implemented(lint, html_rules):
    done = set(re.findall(r"^eval function implemented \d+: (\w+) ", lint, re.M))
    missing = set(re.findall(r"^eval function not implemented \d+: (\w+) ", lint, re.M))
    used = {"html_tag_balance", "html_image_only", "html_image_ratio", "html_charset_faraway",
            "html_tag_exists", "html_test", "html_eval", "html_text_match",
            "html_title_subject_ratio", "html_range", "check_iframe_src"}
    assert used <= done, used - done
    assert not (set(FUNCTIONS) & missing)
    assert "HTMLEval is not emulated" not in lint
    assert TARGETS <= set(html_rules), TARGETS - set(html_rules)


@pytest.mark.time_limit(400)
def test_same_html_hits_as_spamassassin(both, html_rules):
    found, agree = disagreements(both, set(html_rules), "HTMLEval")
    for name, (_, want) in MESSAGES.items():
        sa, sg = both[name]
        # each message hits what it was written for, in both
        assert want <= sa, (name, "spamassassin", sorted(want - sa))
        assert want <= sg, (name, "smtpgate", sorted(want - sg))
    # the ham newsletter hits no other HTML rule; plain text none at all
    assert set(html_rules) & both["newsletter"][1] == NEWSLETTER_HITS
    assert set(html_rules) & both["plain_text"][1] == set()
    # and the written-for rules that mark something odd hit nowhere else
    odd = TARGETS - NEWSLETTER_HITS - {"__HTML_LENGTH_384", "__HTML_LENGTH_512",
                                        "__TAG_EXISTS_CENTER",
                                        "__TAG_EXISTS_SCRIPT", "__COMMENT_EXISTS",
                                        "HTML_IMAGE_ONLY_04", "HTML_IMAGE_ONLY_12"}
    for name, (_, want) in MESSAGES.items():
        assert odd & both[name][1] <= want, (name, sorted(odd & both[name][1] - want))
    assert found == []
    assert agree == len(html_rules) * len(MESSAGES)
