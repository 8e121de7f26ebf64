/*
 * Unit tests for SpamAssassin's model of a message (msg.c, html.c,
 * sa_text.c, sa_uri.c): the whitespace rule of its body (a line end inside
 * a paragraph is a blank, a blank line a paragraph break), its line and
 * rawbody cuts, the forms of a URI (www. made http://, a "/" before the
 * query, the user part and the default port left out, a redirector's
 * target), and, through SpamAssassin rules loaded from a folder of their
 * own, over messages written here: the Subject first in body, HTML
 * rendered as HTML.pm renders it (invisible text kept), ^ and $ at a paragraph's ends and /m at
 * line ends of mail with CRLF, rawbody decoded but not rendered,
 * nosubject, EnvelopeFrom from MAIL FROM or Return-Path, mimeheader over
 * each part (decoded and :raw), and the mbox "From " line and a message
 * without a header section.
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

#include "rules/rules_int.h"
#include "rules/sa_text.h"
#include "rules/sa_redir.h"
#include "rules/sa_uri.h"

static char dir[] = "/tmp/test_sa_model.XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *para(const char *in)
{
    static char out[1024];
    struct rules_buf b = {0};
    sa_text_paragraphs(in, strlen(in), &b);
    assert_false(b.nomem);
    snprintf(out, sizeof(out), "%.*s", (int)b.len, b.p ? b.p : "");
    free(b.p);
    return out;
}

static void test_paragraphs(void **state)
{
    (void)state;
    assert_string_equal(para("Bad\nCredit"), "Bad Credit");
    assert_string_equal(para("CLICK\n\nHERE"), "CLICK\nHERE");
    assert_string_equal(para("a \t\n \n\n b"), "a \n b");
    /* as Perl does it: the CR before the first line end is a blank of its own */
    assert_string_equal(para("one\r\n\r\ntwo\r\n"), "one \ntwo ");
    /* NBSP and U+2003 are Perl's \s on characters */
    assert_string_equal(para("x\xc2\xa0\xe2\x80\x83y"), "x y");
    /* other UTF-8 stays */
    assert_string_equal(para("caf\xc3\xa9  cr\xc3\xa8me"), "caf\xc3\xa9 cr\xc3\xa8me");
    assert_string_equal(para(""), "");
}

static void test_lines_and_chunks(void **state)
{
    (void)state;
    assert_int_equal(sa_text_line_end("ab\ncd", 5), 3);
    assert_int_equal(sa_text_line_end("abcd", 4), 4);
    /* a long line: cut after its last blank within 2048 */
    static char long_line[5000];
    memset(long_line, 'x', sizeof(long_line));
    long_line[100] = ' ';
    long_line[2000] = ' ';
    assert_int_equal(sa_text_line_end(long_line, sizeof(long_line)), 2001);
    long_line[100] = long_line[2000] = 'x';
    assert_int_equal(sa_text_line_end(long_line, sizeof(long_line)), SA_TEXT_LINE_MAX);
    /* rawbody: up to twice the limit whole, then cut at a line end */
    assert_int_equal(sa_text_chunk_end(long_line, 4096), 4096);
    long_line[3000] = '\n';
    long_line[2500] = '>';
    assert_int_equal(sa_text_chunk_end(long_line, sizeof(long_line)), 3001);
    long_line[3000] = 'x';
    assert_int_equal(sa_text_chunk_end(long_line, sizeof(long_line)), 2501);
    long_line[2500] = 'x';
    assert_int_equal(sa_text_chunk_end(long_line, sizeof(long_line)), SA_TEXT_LINE_MAX + 1);
}

struct forms {
    char v[SA_URI_FORMS_MAX][300];
    size_t n;
};

static void form(void *arg, const char *s, size_t n)
{
    struct forms *f = arg;
    assert_true(f->n < SA_URI_FORMS_MAX);
    snprintf(f->v[f->n++], sizeof(f->v[0]), "%.*s", (int)n, s);
}

static bool has_form(const struct forms *f, const char *s)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->v[i], s) == 0)
            return true;
    return false;
}

static struct forms forms_with(const struct sa_redirs *rd, const char *uri)
{
    struct forms f = {0};
    sa_uri_forms(uri, strlen(uri), rd, form, &f);
    return f;
}

static struct forms forms_of(const char *uri)
{
    return forms_with(NULL, uri);
}

static void test_uri_forms(void **state)
{
    (void)state;
    struct forms f = forms_of("www.example.com/x");
    assert_int_equal(f.n, 2);
    assert_true(has_form(&f, "www.example.com/x") && has_form(&f, "http://www.example.com/x"));
    f = forms_of("ftp.example.com/f");
    assert_true(has_form(&f, "ftp://ftp.example.com/f"));
    f = forms_of("http:\\\\example.com?a=1");
    assert_true(has_form(&f, "http://example.com/?a=1"));
    /* the default port left out, and with it the user part */
    f = forms_of("http://user@example.com:80/p");
    assert_int_equal(f.n, 2);
    assert_true(has_form(&f, "http://example.com/p"));
    f = forms_of("https://example.com!!!/p");
    assert_true(has_form(&f, "https://example.com/p"));
    f = forms_of("http://r.example/go?u=http://target.example/p&x=1");
    assert_true(has_form(&f, "http://target.example/p"));
    f = forms_of("http://example.com/&#46;x&#x41;");
    assert_true(has_form(&f, "http://example.com/.xA"));
    f = forms_of("mailto:bob@example.com?subject=hi");
    assert_int_equal(f.n, 2);
    assert_true(has_form(&f, "mailto:bob@example.com"));
    /* what SpamAssassin skips */
    assert_int_equal(forms_of("#top").n, 0);
    assert_int_equal(forms_of("/img/a.gif").n, 0);
    assert_int_equal(forms_of("?q").n, 0);
    assert_int_equal(forms_of("x").n, 0);
    f = forms_of("  http://example.com/a\r\nb  ");
    assert_true(has_form(&f, "http://example.com/ab"));
    /* %XX decoded (but %20, %7f, %80-%ff), then the scheme asked */
    f = forms_of("http%3A%2F%2Fexample.com%2Fa%20b%e9%41");
    assert_int_equal(f.n, 2);
    assert_true(has_form(&f, "http://example.com/a%20b%e9A"));
    f = forms_of("www.example.com/%41 x\"");
    assert_true(has_form(&f, "http://www.example.com/A%20x%22"));
    assert_false(has_form(&f, "http://www.example.com/%41 x\""));
    /* the generic redirector's target, %-decoded in its turn */
    f = forms_of("http://r.example/go?u=http%3A%2F%2Ftarget.example%2Fp");
    assert_true(has_form(&f, "http://target.example/p"));
}

static struct sa_redirs *redirs(const char *const *pats, size_t n)
{
    struct sa_redirs *rd = sa_redirs_new();
    assert_non_null(rd);
    char why[256];
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sa_redirs_add(rd, pats[i], strlen(pats[i]), why, sizeof(why)), SA_REDIR_OK);
    assert_int_equal(sa_redirs_count(rd), n);
    return rd;
}

static void test_uri_redirector_pattern(void **state)
{
    (void)state;
    static const char *const pats[] = {
        "/^http:\\/\\/chkpt\\.zdnet\\.com\\/chkpt\\/\\w+\\/(.*)$/i",
        "m'^http.*?/redirect\\.php\\?.*(?<=[?&])goto=(.*?)(?:$|[&\\#])'i",
        "m{^https?://nodot\\.example/(x*)}",
        "m{^https?://(?:u\\.)?hop\\.example/(.*)$}",
    };
    struct sa_redirs *rd = redirs(pats, 4);
    /* the target as written after the redirector, every form of it */
    struct forms f = forms_with(rd, "http://CHKPT.zdnet.com/chkpt/a1/www.target.example/p?q=1");
    assert_true(has_form(&f, "www.target.example/p?q=1"));
    assert_true(has_form(&f, "http://www.target.example/p?q=1"));
    /* without the patterns: no target (its rest holds no http URI) */
    f = forms_of("http://chkpt.zdnet.com/chkpt/a1/www.target.example/p");
    assert_false(has_form(&f, "http://www.target.example/p"));
    /* the pattern's match replaces the generic one */
    f = forms_with(rd, "http://x.example/redirect.php?a=http://generic.example/&goto=http://t.example/");
    assert_true(has_form(&f, "http://t.example/"));
    assert_false(has_form(&f, "http://generic.example/"));
    /* a group without a '.' tries the next pattern, then the generic one */
    f = forms_with(rd, "http://nodot.example/xx?u=http://g.example/");
    assert_true(has_form(&f, "http://g.example/"));
    /* the user part is not part of what is matched */
    f = forms_with(rd, "http://me@chkpt.zdnet.com/chkpt/a/t2.example/");
    assert_true(has_form(&f, "http://t2.example/"));
    /* nested redirectors, at most SA_URI_NEST_MAX deep */
    f = forms_with(rd, "http://hop.example/hop.example/hop.example/t3.example/");
    assert_true(has_form(&f, "http://t3.example/"));
    f = forms_with(rd, "http://hop.example/u.hop.example/u.hop.example/u.hop.example/"
                       "u.hop.example/t4.example/");
    assert_false(has_form(&f, "http://t4.example/"));
    sa_redirs_free(rd);

    /* what Conf.pm refuses, with why */
    static const char *const bad[] = {"", "  ", "^http://x/(.*)", "/a/b/", "m\\a\\",
                                      "/x(?{1})/", "/(/", "/x/e", "m{x", "/x/q"};
    char why[256];
    rd = sa_redirs_new();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_int_equal(sa_redirs_add(rd, bad[i], strlen(bad[i]), why, sizeof(why)),
                         SA_REDIR_BAD);
        assert_true(strncmp(why, "redirector_pattern: ", 20) == 0);
    }
    assert_int_equal(sa_redirs_count(rd), 0);
    assert_int_equal(sa_redirs_add(rd, "qr<a(b.c)>", 10, why, sizeof(why)), SA_REDIR_OK);
    sa_redirs_free(rd);
}

/* ---- through SpamAssassin rules ---- */

static struct rules *load_cf(const char *cf)
{
    char sadir[300], path[400];
    static unsigned seq;
    snprintf(sadir, sizeof(sadir), "%s/sa%u", dir, seq++);
    assert_int_equal(mkdir(sadir, 0700), 0);
    snprintf(path, sizeof(path), "%s/10_t.cf", sadir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(cf, fp);
    fclose(fp);
    const char *dirs[] = {sadir};
    struct rules_sa_opts o = {.dirs = dirs, .ndirs = 1};
    struct rules_errors errs = {0};
    struct rules_sa_report rep = {0};
    struct rules *r = NULL;
    assert_int_equal(rules_load_sa(NULL, 0, &o, NULL, &r, &errs, &rep), 0);
    assert_int_equal(rep.nskipped, 0);
    rules_errors_free(&errs);
    rules_sa_report_free(&rep);
    return r;
}

static char *hits(struct rules *r, const char *msg, const char *mail_from)
{
    struct rules_msg *m = rules_msg_parse(msg, strlen(msg));
    assert_non_null(m);
    struct rules_tx *tx = rules_tx_new(r);
    struct rules_facts f = {.mail_from = mail_from};
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, &f, m);
    assert_non_null(o);
    static char buf[4096];
    size_t n = 0;
    buf[n++] = ' ';
    for (size_t i = 0; i < o->nhits; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s ", o->hits[i].rule);
    buf[n] = '\0';
    rules_tx_free(tx);
    rules_msg_free(m);
    return buf;
}

static void expect(const char *h, const char *const *want, size_t nw, const char *const *miss,
                   size_t nm)
{
    char w[200];
    for (size_t i = 0; i < nw; i++) {
        snprintf(w, sizeof(w), " %s ", want[i]);
        if (strstr(h, w) == NULL)
            fail_msg("%s did not hit:%s", want[i], h);
    }
    for (size_t i = 0; i < nm; i++) {
        snprintf(w, sizeof(w), " %s ", miss[i]);
        if (strstr(h, w) != NULL)
            fail_msg("%s hit:%s", miss[i], h);
    }
}

#define EXPECT(h, W, M) expect(h, W, sizeof(W) / sizeof(W[0]), M, sizeof(M) / sizeof(M[0]))

static const char *plain = "From: a@example.org\r\n"
                           "Subject: Hello there\r\n"
                           "\r\n"
                           "I can fix your Bad\r\n"
                           "Credit today\r\n"
                           "\r\n"
                           "CLICK\r\n"
                           "\r\n"
                           "HERE\r\n"
                           "visit www.example.com/offer?x=1 now\r\n";

static void test_body(void **state)
{
    (void)state;
    struct rules *r = load_cf("body SUBJ_FIRST /^Hello there$/\n"
                              "body SUBJ_NOSUBJ /Hello there/\n"
                              "tflags SUBJ_NOSUBJ nosubject\n"
                              "body BAD_CREDIT /Bad Credit/\n"
                              "body CLICK_LINE /^CLICK$/\n"
                              "body CLICK_HERE /CLICK\\s+HERE/\n"
                              "body EOL_M /today$/m\n"
                              "body CR /\\r/\n"
                              "rawbody RAW_LINES /Bad\\nCredit/\n"
                              "rawbody RAW_CR /\\r/\n"
                              "full FULL_CRLF /Bad\\r\\nCredit/\n"
                              "uri URI_WWW m{^http://www\\.example\\.com/offer\\?x=1$}\n"
                              "uri URI_ASIS /^www\\.example\\.com/\n");
    const char *want[] = {"SUBJ_FIRST", "BAD_CREDIT", "CLICK_LINE", "EOL_M",
                          "RAW_LINES",  "FULL_CRLF",  "URI_WWW"};
    const char *miss[] = {"SUBJ_NOSUBJ", "CLICK_HERE", "CR", "RAW_CR", "URI_ASIS"};
    EXPECT(hits(r, plain, NULL), want, miss);
    rules_unref(r);
}

/* The view itself, exactly; asked after the native views (its own MIME
 * pass) or first (one pass for both), the same. */
static void test_body_text(void **state)
{
    (void)state;
    const char *want = "Hello there\nI can fix your Bad Credit today\nCLICK\n"
                       "HERE visit www.example.com/offer?x=1 now ";
    const size_t want_ends[] = {12, 44, 50, strlen(want)};
    for (int order = 0; order < 2; order++) {
        struct rules_msg *m = rules_msg_parse(plain, strlen(plain));
        size_t len, n;
        const size_t *ends;
        if (order == 0) {
            const char *nb = rules_msg_body(m, &len);
            assert_string_equal(nb, "I can fix your Bad\nCredit today\n\nCLICK\n\nHERE\n"
                                    "visit www.example.com/offer?x=1 now\n");
        }
        const char *s = rules_msg_sa_body(m, &len, &ends, &n);
        assert_string_equal(s, want);
        assert_int_equal(len, strlen(want));
        assert_int_equal(n, 4);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(ends[i], want_ends[i]);
        s = rules_msg_sa_rawbody(m, &len, &ends, &n);
        assert_string_equal(s, "I can fix your Bad\nCredit today\n\nCLICK\n\nHERE\n"
                               "visit www.example.com/offer?x=1 now\n");
        assert_int_equal(n, 1);
        /* a URI of the text gets its scheme first: "www." is listed as http:// only */
        assert_int_equal(rules_msg_sa_uri_count(m), 1);
        assert_string_equal(rules_msg_sa_uri(m, 0), "http://www.example.com/offer?x=1");
        if (order == 1)
            assert_int_equal(rules_msg_uri_count(m), 1);
        rules_msg_free(m);
    }
}

/* The e-mail addresses of the text are mailto: URIs, as SpamAssassin finds them. */
static void test_text_mail_uris(void **state)
{
    (void)state;
    const char *msg = "Subject: contact\r\n\r\n"
                      "Write to claims.agent@winner-example.com, or (mail:bob@example.org).\r\n"
                      "Not these: user@localhost, a@b.c1, @alone, x@.\r\n";
    struct rules_msg *m = rules_msg_parse(msg, strlen(msg));
    size_t n = rules_msg_sa_uri_count(m);
    assert_int_equal(n, 2);
    assert_string_equal(rules_msg_sa_uri(m, 0), "mailto:claims.agent@winner-example.com");
    assert_string_equal(rules_msg_sa_uri(m, 1), "mailto:bob@example.org");
    rules_msg_free(m);
}

static const char *html =
    "From: a@example.org\r\n"
    "Subject: News\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/alternative; boundary=\"b\"\r\n"
    "\r\n"
    "--b\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "plain part\r\n"
    "--b\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "<html><head><style>p {color: red}</style><title>Title</title></head><body>=\r\n"
    "<p>You have <b>won</b>\r\n"
    " a&nbsp;prize</p><div>line one<br>line two</div><p>Click <a href=3D\"http://=\r\n"
    "192.0.2.7?claim=3D1\">here</a><a href=3D\"www.example.net/x\">w</a></p></body></html>\r\n"
    "--b--\r\n";

static void test_html(void **state)
{
    (void)state;
    struct rules *r = load_cf("body WON /You have won a prize/\n"
                              "body TITLE /^Title$/\n"
                              "body LINE_ONE /^line one line two$/\n"
                              "body STYLE /color/\n"
                              "body PLAIN_FIRST /^plain part$/\n"
                              "body TAGS /<b>/\n"
                              "rawbody RAW_TAGS /<b>won<\\/b>/\n"
                              "rawbody RAW_PLAIN /^plain part$/\n"
                              "uri URI_SLASH m{^http://192\\.0\\.2\\.7/\\?claim=1$}\n"
                              "uri URI_LINK_ASIS m{^www\\.example\\.net/x$}\n"
                              "uri URI_LINK_HTTP m{^http://www\\.example\\.net/x$}\n"
                              "mimeheader MH_HTML Content-Type =~ m{^text/html; charset=utf-8$}\n"
                              "mimeheader MH_QP Content-Transfer-Encoding =~ /quoted-printable/\n"
                              "mimeheader MH_RAW Content-Type:raw =~ /^multipart/\n"
                              "mimeheader MH_NONE Content-Disposition =~ /./\n");
    const char *want[] = {"WON",       "TITLE",     "LINE_ONE", "PLAIN_FIRST", "RAW_TAGS",
                          "RAW_PLAIN", "URI_SLASH", "MH_HTML",  "MH_QP",       "MH_RAW",
                          "URI_LINK_ASIS", "URI_LINK_HTTP"};
    const char *miss[] = {"STYLE", "TAGS", "MH_NONE"};
    EXPECT(hits(r, html, NULL), want, miss);
    rules_unref(r);
}

/* SpamAssassin 4.0's body keeps text it calls invisible (display:none, the
 * colour of the background): get_rendered_text() with no option. */
static void test_html_invisible_kept(void **state)
{
    (void)state;
    struct rules *r = load_cf("body HIDDEN /hiddenword/\nbody WHITE /whiteword/\n");
    const char *msg = "From: a@example.org\r\nSubject: t\r\nContent-Type: text/html\r\n\r\n"
                      "<html><body><p>Visible</p><span style=\"display:none\">hiddenword</span>"
                      "<font color=\"#ffffff\">whiteword</font></body></html>\r\n";
    const char *want[] = {"HIDDEN", "WHITE"}, *miss[] = {"NONE"};
    EXPECT(hits(r, msg, NULL), want, miss);
    rules_unref(r);
}

static void test_envelope_from(void **state)
{
    (void)state;
    struct rules *r = load_cf("header ENV_SMTP EnvelopeFrom =~ /^bounce\\@example\\.net$/\n"
                              "header ENV_RP EnvelopeFrom:addr =~ /^rp\\@example\\.org$/\n"
                              "header ENV_SET EnvelopeFrom =~ /./\n"
                              "header ENV_UNSET EnvelopeFrom =~ /^none$/ [if-unset: none]\n");
    const char *msg = "Return-Path: <rp@example.org>\r\nFrom: a@example.org\r\n\r\nx\r\n";
    const char *want1[] = {"ENV_SMTP", "ENV_SET"}, *miss1[] = {"ENV_RP", "ENV_UNSET"};
    EXPECT(hits(r, msg, "bounce@example.net"), want1, miss1);
    /* without the SMTP fact (a saved message): Return-Path, SpamAssassin's guess */
    const char *want2[] = {"ENV_RP", "ENV_SET"}, *miss2[] = {"ENV_SMTP", "ENV_UNSET"};
    EXPECT(hits(r, msg, NULL), want2, miss2);
    const char *want3[] = {"ENV_UNSET"}, *miss3[] = {"ENV_SET", "ENV_RP"};
    EXPECT(hits(r, "From: a@example.org\r\n\r\nx\r\n", NULL), want3, miss3);
    rules_unref(r);
}

static void test_mbox_and_no_headers(void **state)
{
    (void)state;
    const char *mbox = "From bounce@example.org Mon Dec  7 10:00:00 2026\n"
                       "From: Alice <alice@example.org>\n"
                       "Subject: offer\n"
                       "\n"
                       "act now\n";
    struct rules_msg *m = rules_msg_parse(mbox, strlen(mbox));
    assert_true(rules_msg_mbox_from(m));
    assert_false(rules_msg_no_headers(m));
    assert_string_equal(rules_msg_header(m, "Subject", 0), "offer");
    assert_string_equal(rules_msg_header(m, "From", 0), "Alice <alice@example.org>");
    rules_msg_free(m);
    /* the obsolete "From :" is a field */
    m = rules_msg_parse("From : a@example.org\n\nx\n", 24);
    assert_false(rules_msg_mbox_from(m));
    assert_string_equal(rules_msg_header(m, "From", 0), "a@example.org");
    rules_msg_free(m);
    m = rules_msg_parse("just a body\nof two lines\n", 25);
    assert_true(rules_msg_no_headers(m));
    assert_int_equal(rules_msg_header(m, "just a body", 0) == NULL, 1);
    rules_msg_free(m);

    struct rules *r = load_cf("full FULL_MBOX /^From bounce/\n"
                              "header SUBJ Subject =~ /^offer$/\n"
                              "body NOHDR_BODY /^just a body of two lines $/\n");
    const char *want[] = {"SUBJ"}, *miss[] = {"FULL_MBOX"};
    EXPECT(hits(r, mbox, NULL), want, miss);
    /* SpamAssassin reads past up to three lines that are no fields: its body
     * is what follows the empty line; the native body is the whole text */
    const char *miss2[] = {"SUBJ", "NOHDR_SKIPPED"};
    rules_unref(r);
    r = load_cf("body NOHDR_BODY /^second paragraph $/\n"
                "body NOHDR_SKIPPED /just a body/\n"
                "full NOHDR_FULL /^just a body/\n"
                "header SUBJ Subject =~ /./\n");
    const char *nohdr = "just a body\nof two lines\n\nsecond paragraph\n";
    const char *want3[] = {"NOHDR_BODY", "NOHDR_FULL"};
    EXPECT(hits(r, nohdr, NULL), want3, miss2);
    m = rules_msg_parse(nohdr, strlen(nohdr));
    size_t len;
    assert_string_equal(rules_msg_body(m, &len), nohdr);
    rules_msg_free(m);
    /* four lines that are no fields: the fourth starts SpamAssassin's body */
    const char *four = "a\nb\nc\nsecond paragraph\n";
    const char *want4[] = {"NOHDR_BODY"};
    EXPECT(hits(r, four, NULL), want4, miss2);
    /* a MIME boundary line ends the section too, and begins the body */
    rules_unref(r);
    r = load_cf("rawbody BOUNDARY /^--b\\nsecond/\n");
    const char *want5[] = {"BOUNDARY"}, *miss5[] = {"NONE"};
    EXPECT(hits(r, "x\n--b\nsecond\n", NULL), want5, miss5);
    rules_unref(r);
}

/* The native language's own body keeps its meaning, with LF line ends. */
static void test_native_body_lf(void **state)
{
    (void)state;
    struct rules_errors errs = {0};
    struct rules *r = NULL;
    const char *src = "rule EOL body /^Credit today$/m score 1\n"
                      "rule NO_SUBJ body /Hello there/ score 1\n"
                      "rule CR body /\\r/ score 1\n";
    assert_int_equal(rules_load_buffer("t.rules", src, strlen(src), NULL, &r, &errs), 0);
    const char *want[] = {"EOL"}, *miss[] = {"NO_SUBJ", "CR"};
    EXPECT(hits(r, plain, NULL), want, miss);
    rules_unref(r);
    rules_errors_free(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paragraphs),
        cmocka_unit_test(test_lines_and_chunks),
        cmocka_unit_test(test_uri_forms),
        cmocka_unit_test(test_uri_redirector_pattern),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_body_text),
        cmocka_unit_test(test_text_mail_uris),
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_html_invisible_kept),
        cmocka_unit_test(test_envelope_from),
        cmocka_unit_test(test_mbox_and_no_headers),
        cmocka_unit_test(test_native_body_lf),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
