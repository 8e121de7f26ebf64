/*
 * Unit tests for SpamAssassin's local plugins run natively: FromNameSpoof
 * (sa_eval_fns.c) over From display names that hold an address (another
 * one, the same one, one of the same owner by fns_add_addrlist, one of a
 * TLD util_rb_tld lacks, one buried in a long name past fns_extrachars),
 * Reply-To and To equal to it (To compared case-sensitively, as the
 * plugin does), fns_ignore_headers, fns_check and the level argument;
 * both plugins present only once a .pre (or .cf) loadplugin line loads
 * them, as Debian ships their lines commented out;
 * AntiVirus (sa_eval_av.c) over attachments named like programs, an MZ
 * header in base64 and uuencoded in a text part, names whose extension
 * does not fit their type, and harmless ones; URIEval and HTTPSMismatch
 * (sa_eval_uri.c, sa_eval_https.c) over links cut at 8,192 characters (or
 * whose canonical form is), anchor texts naming another https host than
 * the href's, IP address links, the anchor bounds, and redirector URIs.
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
#include "rules/rules_int.h"

static char dir[] = "/tmp/test_sa_localplug.XXXXXX";
#include "tests/unit/sa_rules_fixture.h"

/* of the rules named in all, exactly those of want hit */
static void exactly(struct rules *r, const char *msg, const char *all, const char *want)
{
    char *h = hits(r, msg, NULL);
    char names[1024];
    snprintf(names, sizeof(names), "%s", all);
    for (char *save = NULL, *w = strtok_r(names, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        char pad[200];
        snprintf(pad, sizeof(pad), " %s ", w);
        char wp[1100];
        snprintf(wp, sizeof(wp), " %s ", want);
        bool wanted = strstr(wp, pad) != NULL;
        if (wanted != has(h, w))
            fail_msg("%s %s:%s\n%s", w, wanted ? "did not hit" : "hit", h, msg);
    }
}

static const char plugins_pre[] = "loadplugin Mail::SpamAssassin::Plugin::FromNameSpoof\n"
                                  "loadplugin Mail::SpamAssassin::Plugin::AntiVirus\n";

static const char fns_cf[] =
    "util_rb_tld com net org uk\n"
    "util_rb_2tld co.uk\n"
    "header FNS_SPOOF eval:check_fromname_spoof()\n"
    "header FNS_SPOOF0 eval:check_fromname_spoof('0')\n"
    "header FNS_SPOOF2 eval:check_fromname_spoof(2)\n"
    "header FNS_SPOOFX eval:check_fromname_spoof('x')\n"
    "header FNS_DIFF eval:check_fromname_different()\n"
    "header FNS_DOM eval:check_fromname_domain_differ()\n"
    "header FNS_EMAIL eval:check_fromname_contains_email()\n"
    "header FNS_TO eval:check_fromname_equals_to()\n"
    "header FNS_OWN eval:check_fromname_owners_differ()\n"
    "header FNS_REPLY eval:check_fromname_equals_replyto()\n"
    "fns_add_addrlist (PayPal) *@paypal.com *@paypal-mail.com\n"
    "fns_add_addrlist (bank) boss@bank.com\n"
    "fns_remove_addrlist (bank) boss@bank.com\n"
    "fns_ignore_headers List-Id X-Ignore-Me\n"
    "fns_extrachars 40\n";

#define FNS_ALL "FNS_SPOOF FNS_SPOOF0 FNS_SPOOF2 FNS_SPOOFX FNS_DIFF FNS_DOM FNS_EMAIL FNS_TO FNS_OWN FNS_REPLY"

static char *fmsg(const char *from, const char *extra)
{
    static char buf[2048];
    snprintf(buf, sizeof(buf),
             "From: %s\nTo: bob@example.org\n%sSubject: hi\nMessage-ID: <1@x.example.org>\n"
             "Date: Mon, 7 Dec 2026 10:00:00 +0000\n\nhello\n",
             from, extra);
    return buf;
}

static const char fns_gated_cf[] = "ifplugin Mail::SpamAssassin::Plugin::FromNameSpoof\n"
                                   "header FNS_GATED eval:check_fromname_different()\n"
                                   "endif\n";

/* Without a loadplugin line the plugin is absent, said so; a .pre file's
 * line, or a .cf line before the rules, loads it. */
static void test_optional_plugins(void **state)
{
    (void)state;
    write_file("20_g.cf", fns_gated_cf);
    struct loaded l = load(NULL, false);
    assert_int_equal(
        skipped(&l.rep, "plugin Mail::SpamAssassin::Plugin::FromNameSpoof is not loaded: no .pre "
                        "file loads it"),
        1);
    assert_int_equal(l.rep.loaded, 0);
    unload(&l);
    /* commented out, as Debian ships it: still absent */
    write_file("v342.pre", "# loadplugin Mail::SpamAssassin::Plugin::FromNameSpoof\n"
                           "loadplugin Mail::SpamAssassin::Plugin::DNSEval\n");
    l = load(NULL, false);
    assert_int_equal(l.rep.loaded, 0);
    unload(&l);
    write_file("v342.pre", "loadplugin Mail::SpamAssassin::Plugin::FromNameSpoof # on\n");
    l = load(NULL, false);
    assert_int_equal(l.rep.loaded, 1);
    assert_int_equal(l.rep.nfiles, 1); /* a .pre file is not one of the rule files */
    unload(&l);
    unlink(write_file("v342.pre", ""));
    write_file("20_g.cf", "tryplugin Mail::SpamAssassin::Plugin::FromNameSpoof\n");
    write_file("21_g.cf", fns_gated_cf);
    l = load(NULL, false);
    assert_int_equal(l.rep.loaded, 1);
    unload(&l);
    unlink(write_file("20_g.cf", ""));
    unlink(write_file("21_g.cf", ""));
}

static void test_fromname_spoof(void **state)
{
    (void)state;
    write_file("init.pre", plugins_pre);
    write_file("20_fns.cf", fns_cf);
    struct loaded l = load(NULL, false);
    /* another address, owner and domain */
    exactly(l.r, fmsg("\"service@Paypal.com\" <evil@mail.spam.net>", ""), FNS_ALL,
            "FNS_SPOOF FNS_SPOOF0 FNS_SPOOF2 FNS_SPOOFX FNS_DIFF FNS_DOM FNS_EMAIL FNS_OWN");
    /* the From address itself in the name: contains an address, nothing else */
    exactly(l.r, fmsg("\"bob@spam.net\" <Bob@Spam.net>", ""), FNS_ALL, "FNS_EMAIL");
    /* the same owner by its list: different, not spoofed at level 1 */
    exactly(l.r, fmsg("\"service@paypal.com\" <alerts@paypal-mail.com>", ""), FNS_ALL,
            "FNS_SPOOF0 FNS_SPOOF2 FNS_DIFF FNS_DOM FNS_EMAIL");
    /* a subdomain: the registered domain is the same, and the owner */
    exactly(l.r, fmsg("\"ann@news.shop.co.uk\" <ann@shop.co.uk>", ""), FNS_ALL,
            "FNS_SPOOF0 FNS_DIFF FNS_EMAIL");
    /* the owner is the first label of the registered domain: bank.com and bank.net share it */
    exactly(l.r, fmsg("\"boss@bank.com\" <boss@bank.net>", ""), FNS_ALL,
            "FNS_SPOOF0 FNS_SPOOF2 FNS_DIFF FNS_DOM FNS_EMAIL");
    /* a TLD util_rb_tld does not name: no address at all */
    exactly(l.r, fmsg("\"boss@bank.example\" <boss@bank.net>", ""), FNS_ALL, "");
    /* a From address with no valid domain: nothing judged */
    exactly(l.r, fmsg("\"boss@bank.com\" <boss@localhost>", ""), FNS_ALL, "");
    /* a long name: the address is found, but too far from being the name */
    exactly(l.r,
            fmsg("\"Customer care desk of the service, write to help@paypal.com\" <x@spam.net>", ""),
            FNS_ALL, "FNS_EMAIL");
    /* the name's address is the Reply-To, and a To (exactly so) */
    exactly(l.r, fmsg("\"bob@example.org\" <x@spam.net>", "Reply-To: Bob <bob@example.org>\n"),
            FNS_ALL, "FNS_SPOOF FNS_SPOOF0 FNS_SPOOF2 FNS_SPOOFX FNS_DIFF FNS_DOM FNS_EMAIL FNS_TO "
                     "FNS_OWN FNS_REPLY");
    exactly(l.r, fmsg("\"Ann@Example.org\" <x@spam.net>", "Cc: Ann@Example.org\n"), FNS_ALL,
            "FNS_SPOOF FNS_SPOOF0 FNS_SPOOF2 FNS_SPOOFX FNS_DIFF FNS_DOM FNS_EMAIL FNS_OWN");
    /* a field fns_ignore_headers names: no fact at all */
    exactly(l.r, fmsg("\"service@paypal.com\" <evil@spam.net>", "List-Id: <a.example.org>\n"),
            FNS_ALL, "");
    exactly(l.r, fmsg("\"service@paypal.com\" <evil@spam.net>", "x-ignore-me: 0\n"), FNS_ALL, "");
    /* no address in the name, no name */
    exactly(l.r, fmsg("PayPal Service <evil@spam.net>", ""), FNS_ALL, "");
    exactly(l.r, fmsg("evil@spam.net", ""), FNS_ALL, "");
    unload(&l);

    /* fns_check 0 makes the plain call level 0 */
    write_file("20_fns.cf", "util_rb_tld com net org\n"
                            "header FNS_SPOOF eval:check_fromname_spoof()\n"
                            "fns_check 0\nfns_check 7\n");
    l = load(NULL, false);
    exactly(l.r, fmsg("\"service@paypal.com\" <alerts@paypal.net>", ""), "FNS_SPOOF", "FNS_SPOOF");
    unload(&l);
    write_file("20_fns.cf", "util_rb_tld com net org\n"
                            "header FNS_SPOOF eval:check_fromname_spoof()\n");
    l = load(NULL, false);
    exactly(l.r, fmsg("\"service@paypal.com\" <alerts@paypal.net>", ""), "FNS_SPOOF", "");
    unload(&l);
    unlink(write_file("20_fns.cf", ""));
    unlink(write_file("init.pre", ""));
}

static const char av_cf[] = "ifplugin Mail::SpamAssassin::Plugin::AntiVirus\n"
                            "body AV_EXE eval:check_microsoft_executable()\n"
                            "body AV_NAME eval:check_suspect_name()\n"
                            "endif\n";

/* a message with one attachment after a text part */
static char *amsg(const char *ctype, const char *cte, const char *content)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf),
             "From: a@example.org\nTo: b@example.org\nSubject: files\n"
             "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"BB\"\n\n"
             "--BB\nContent-Type: text/plain\n\nsee the file\n"
             "--BB\nContent-Type: %s\n%s%s%s\n%s\n--BB--\n",
             ctype, cte ? "Content-Transfer-Encoding: " : "", cte ? cte : "", cte ? "\n" : "",
             content);
    return buf;
}

static void test_antivirus(void **state)
{
    (void)state;
    write_file("init.pre", plugins_pre);
    write_file("25_av.cf", av_cf);
    struct loaded l = load(NULL, false);
    assert_int_equal(l.rep.loaded, 2);
    const char *all = "AV_EXE AV_NAME";
    const char *mz = "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    exactly(l.r, amsg("application/octet-stream; name=\"Invoice.EXE\"", "base64", "AAAA"), all,
            "AV_EXE");
    exactly(l.r, amsg("application/octet-stream; name=\"screen.scr?\"", NULL, "x"), all, "AV_EXE");
    /* the name is Content-Type's: a Content-Disposition filename is not read */
    exactly(l.r, amsg("application/octet-stream\nContent-Disposition: attachment; filename=a.exe",
                      NULL, "x"),
            all, "");
    /* no name, but an MZ header: base64 only */
    exactly(l.r, amsg("application/octet-stream", "base64", mz), all, "AV_EXE");
    exactly(l.r, amsg("application/octet-stream", "7bit", mz), all, "");
    /* uuencoded in a text part */
    exactly(l.r, amsg("text/plain", NULL, "begin 644 a.exe\nM35JX`ab`cd````\nend"), all, "AV_EXE");
    exactly(l.r, amsg("application/octet-stream", NULL, "M35JX`ab`cd````"), all, "");
    /* names that do not fit their type */
    exactly(l.r, amsg("application/x-msdownload; name=\"photo.JPG\"", "base64", "AAAA"), all,
            "AV_NAME");
    exactly(l.r, amsg("text/plain; name=\"report.pdf.exe\"", NULL, "x"), all, "AV_EXE AV_NAME");
    exactly(l.r, amsg("application/pdf; name=\"letter.doc\"", "base64", "AAAA"), all, "AV_NAME");
    exactly(l.r, amsg("application/vnd.ms-word; name=\"letter.doc\"", "base64", "AAAA"), all, "");
    exactly(l.r, amsg("application/x-excel; name=\"sheet.xls\"", "base64", "AAAA"), all, "");
    /* x- goes: text/x-vcard is text/vcard; any other text type is text/plain */
    exactly(l.r, amsg("text/x-vcard; name=\"card.vcf\"", NULL, "BEGIN:VCARD"), all, "");
    exactly(l.r, amsg("text/vcard; name=\"card.vcf\"", NULL, "BEGIN:VCARD"), all, "AV_NAME");
    exactly(l.r, amsg("text/html; name=\"page.html\"", NULL, "<p>x</p>"), all, "");
    exactly(l.r, amsg("image/png; name=\"page.html\"", "base64", "AAAA"), all, "AV_NAME");
    /* harmless */
    exactly(l.r, amsg("application/pdf; name=\"a.pdf\"", "base64", "JVBERi0xLjQK"), all, "");
    exactly(l.r, amsg("image/gif; name=\"0\"", "base64", "R0lGODlh"), all, "");
    unload(&l);
    unlink(write_file("25_av.cf", ""));
    unlink(write_file("init.pre", ""));
}

static const char uri_cf[] = "util_rb_tld com net org\n"
                             "body UT_TRUNC eval:check_uri_truncated()\n"
                             "body UT_IP eval:check_https_ip_mismatch()\n"
                             "body UT_HTTPS eval:check_https_http_mismatch('1','10')\n"
                             "body UT_HTTPS3 eval:check_https_http_mismatch('1','3')\n"
                             "body UT_HTTPS2 eval:check_https_http_mismatch('2')\n"
                             "body UT_REDIR eval:check_for_http_redirector()\n";
#define URI_ALL "UT_TRUNC UT_IP UT_HTTPS UT_HTTPS3 UT_HTTPS2 UT_REDIR"

static char *hmsg(const char *html)
{
    static char buf[20000];
    snprintf(buf, sizeof(buf),
             "From: a@example.org\nTo: b@example.org\nSubject: links\n"
             "MIME-Version: 1.0\nContent-Type: text/html\n\n<html><body>%s</body></html>\n",
             html);
    return buf;
}

static char *long_link(const char *prefix, size_t fill, const char *suffix)
{
    static char buf[12000];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "<a href=\"%s", prefix);
    memset(buf + n, 'y', fill);
    snprintf(buf + n + fill, sizeof(buf) - n - fill, "%s\">here</a>", suffix);
    return buf;
}

static void test_uri_evals(void **state)
{
    (void)state;
    write_file("20_uri.cf", uri_cf);
    struct loaded l = load(NULL, false);
    assert_int_equal(skipped(&l.rep, "plugin Mail::SpamAssassin::Plugin::URIEval is not emulated"), 0);
    assert_int_equal(skipped(&l.rep, "plugin Mail::SpamAssassin::Plugin::HTTPSMismatch is not emulated"), 0);
    /* cut at 8,192: the link itself, or the form with its scheme added */
    exactly(l.r, hmsg(long_link("http://www.example.com/", 9000, "")), URI_ALL, "UT_TRUNC");
    exactly(l.r, hmsg(long_link("www.example.com/", 8174, "")), URI_ALL, "UT_TRUNC");
    exactly(l.r, hmsg(long_link("  http://www.example.com/", 8169, " ")), URI_ALL, "");
    char img[9200];
    snprintf(img, sizeof(img), "<img src=\"http://www.example.com/%0*d\">", 8300, 0);
    exactly(l.r, hmsg(img), URI_ALL, "UT_TRUNC");
    /* an https text over an http link to another domain */
    exactly(l.r, hmsg("<a href=\"http://login.evil.com/p\">https://www.paypal.com/</a>"), URI_ALL,
            "UT_HTTPS UT_HTTPS3");
    exactly(l.r, hmsg("<a href=\"http://www.paypal.com/x\">https://PayPal.com/</a>"), URI_ALL, "");
    exactly(l.r, hmsg("<a href=\"http://login.evil.com/p\">https://1.2.3.4/</a>"), URI_ALL,
            "UT_HTTPS UT_HTTPS3");
    exactly(l.r, hmsg("<a href=\"http://login.evil.com/p\">https://paypal.invalid/</a>"), URI_ALL, "");
    exactly(l.r, hmsg("<a href=\"http://login.evil.com/p\">https://www.paypal.com/</a>"
                      "<a href=\"http://b.evil.com/\">b</a><a href=\"http://c.evil.com/\">c</a>"),
            URI_ALL, "UT_HTTPS UT_HTTPS2");
    /* the same href twice counts once */
    exactly(l.r, hmsg("<a href=\"http://login.evil.com/p\">https://www.paypal.com/</a>"
                      "<a href=\"http://login.evil.com/p\">again</a>"),
            URI_ALL, "UT_HTTPS UT_HTTPS3");
    /* an IP address link */
    exactly(l.r, hmsg("<a href=\"http://192.0.2.1/login\">https://www.bank.com/</a>"), URI_ALL,
            "UT_IP");
    exactly(l.r, hmsg("<a href=\"https://user@192.0.2.1/\">see https://192.0.2.1/</a>"), URI_ALL,
            "UT_IP");
    exactly(l.r, hmsg("<a href=\"http://192.0.2.1/\">https://192.0.2.1/</a>"), URI_ALL, "");
    exactly(l.r, hmsg("<a href=\"http://192.0.2.1/\">http://www.bank.com/</a>"), URI_ALL, "");
    /* redirectors */
    exactly(l.r, hmsg("<a href=\"http://r.example.com/go?u=http://evil.example.net/\">x</a>"),
            URI_ALL, "UT_REDIR");
    exactly(l.r, hmsg("<a href=\"http://www.example.com/go?u=http://example.com/\">x</a>"),
            URI_ALL, "");
    unload(&l);
    unlink(write_file("20_uri.cf", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_optional_plugins),
        cmocka_unit_test(test_fromname_spoof),
        cmocka_unit_test(test_antivirus),
        cmocka_unit_test(test_uri_evals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
