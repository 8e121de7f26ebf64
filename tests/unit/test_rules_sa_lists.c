/*
 * Unit tests for sa_lists: SpamAssassin's glob (case, `*`, `?`, the octets
 * it rewrites, line ends, wildcards within a label for freemail_domains),
 * the address list settings with their aliases and removals, enlist_addrlist,
 * the URI host lists with '!' and delist_uri_host, freemail_domains and
 * freemail_welcomelist with their warnings, FreeMail's own welcomelist, the
 * numbers, and a list of thousands of entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_lists.h"

static bool glob(const char *p, const char *s, bool dots)
{
    return sa_glob_match(p, strlen(p), s, strlen(s), dots);
}

static void test_glob(void **state)
{
    (void)state;
    assert_true(glob("friend@somewhere.com", "Friend@SOMEWHERE.com", false));
    assert_false(glob("friend@somewhere.com", "friend@somewhere.com.au", false));
    assert_false(glob("friend@somewhere.com", "xfriend@somewhere.com", false));
    assert_true(glob("*@isp.com", "a.b@isp.com", false));
    assert_true(glob("*@isp.com", "@isp.com", false));
    assert_false(glob("*@isp.com", "a@isp.com.evil", false));
    assert_true(glob("*.domain.net", "x@mail.domain.net", false));
    assert_true(glob("a?c@x", "abc@x", false));
    assert_false(glob("a?c@x", "ac@x", false));
    assert_true(glob("**@x", "abc@x", false));
    assert_true(glob("a*b*c", "aXbYbZc", false));
    assert_false(glob("a*b*c", "aXbYbZ", false));
    /* '(' and backslash stand for '_' */
    assert_true(glob("a(b@x", "a_b@x", false));
    assert_false(glob("a(b@x", "a(b@x", false));
    assert_true(glob("a\\b@x", "a_b@x", false));
    /* no wildcard crosses a line end; $ matches before the last one */
    assert_false(glob("a*b", "a\nb", false));
    assert_false(glob("a?b", "a\nb", false));
    assert_true(glob("ab", "ab\n", false));
    /* within a label: * stops at a dot, ? does not */
    assert_true(glob("*.example.com", "mail.example.com", true));
    assert_false(glob("*.example.com", "a.mail.example.com", true));
    assert_true(glob("mail?example.com", "mail.example.com", true));
    assert_true(glob("", "", false));
    assert_false(glob("", "a", false));
}

static struct sa_lists *lists(const char *const *lines)
{
    struct sa_lists *l = sa_lists_new();
    assert_non_null(l);
    for (size_t i = 0; lines[i]; i++) {
        const char *sp = strchr(lines[i], ' ');
        char key[64];
        size_t kn = sp ? (size_t)(sp - lines[i]) : strlen(lines[i]);
        snprintf(key, sizeof(key), "%.*s", (int)kn, lines[i]);
        const char *v = sp ? sp + 1 : "";
        char why[160] = "";
        enum sa_lists_rc rc = sa_lists_setting(l, key, v, strlen(v), why, sizeof(why));
        if (rc != SA_LISTS_OK)
            print_message("line %zu: rc %d: %s\n", i, (int)rc, why);
        assert_int_equal(rc, SA_LISTS_OK);
    }
    assert_int_equal(sa_lists_finish(l), 0);
    return l;
}

static int listed(struct sa_lists *l, const char *list, const char *a)
{
    return sa_lists_addr_listed(l, list, a, strlen(a));
}

static void test_addrlists(void **state)
{
    (void)state;
    const char *const cf[] = {
        "welcomelist_from friend@somewhere.com *@Trusted.example",
        "whitelist_from old@alias.example",
        "blacklist_from *@spammer.example bad@one.example",
        "unblocklist_from bad@one.example",
        "unwelcomelist_from *@nothing.example",
        "welcomelist_to me@here.example",
        "more_spam_to more@here.example",
        "all_spam_to all@here.example",
        "blocklist_to *@blocked.example",
        "enlist_addrlist (BANKS) *@bank.example service@pay.example",
        "welcomelist_from temp@x.example",
        "unwhitelist_from TEMP@x.example",
        NULL,
    };
    struct sa_lists *l = lists(cf);
    assert_int_equal(listed(l, "welcomelist_from", "FRIEND@somewhere.com"), 1);
    assert_int_equal(listed(l, "welcomelist_from", "anyone@trusted.example"), 1);
    assert_int_equal(listed(l, "welcomelist_from", "old@alias.example"), 1);
    assert_int_equal(listed(l, "welcomelist_from", "temp@x.example"), 0);
    assert_int_equal(listed(l, "welcomelist_from", "stranger@somewhere.com"), 0);
    assert_int_equal(listed(l, "blocklist_from", "x@spammer.example"), 1);
    assert_int_equal(listed(l, "blocklist_from", "bad@one.example"), 0);
    assert_int_equal(listed(l, "welcomelist_to", "me@here.example"), 1);
    assert_int_equal(listed(l, "more_spam_to", "more@here.example"), 1);
    assert_int_equal(listed(l, "all_spam_to", "all@here.example"), 1);
    assert_int_equal(listed(l, "blocklist_to", "x@blocked.example"), 1);
    assert_int_equal(listed(l, "BANKS", "a@bank.example"), 1);
    assert_int_equal(listed(l, "BANKS", "service@pay.example"), 1);
    assert_int_equal(listed(l, "BANKS", "other@pay.example"), 0);
    assert_true(sa_lists_has_addrlist(l, "BANKS"));
    assert_false(sa_lists_has_addrlist(l, "NOPE"));
    assert_int_equal(listed(l, "NOPE", "a@bank.example"), 0);
    sa_lists_unref(l);
}

static void test_bad_settings(void **state)
{
    (void)state;
    struct sa_lists *l = sa_lists_new();
    char why[160];
    assert_int_equal(sa_lists_setting(l, "welcomelist_from", "", 0, why, sizeof(why)),
                     SA_LISTS_BAD);
    assert_string_equal(why, "welcomelist_from: missing required value");
    assert_int_equal(sa_lists_setting(l, "enlist_addrlist", "NOPAREN a@b", 11, why, sizeof(why)),
                     SA_LISTS_BAD);
    assert_int_equal(sa_lists_setting(l, "freemail_max_body_emails", "x5", 2, why, sizeof(why)),
                     SA_LISTS_BAD);
    assert_string_equal(why, "freemail_max_body_emails: invalid value");
    const char *d = "good.example bad_dom.example";
    assert_int_equal(sa_lists_setting(l, "freemail_domains", d, strlen(d), why, sizeof(why)),
                     SA_LISTS_BAD);
    assert_string_equal(why, "freemail: invalid freemail_domains: bad_dom.example");
    d = "nodots";
    assert_int_equal(sa_lists_setting(l, "freemail_welcomelist", d, strlen(d), why, sizeof(why)),
                     SA_LISTS_BAD);
    assert_int_equal(sa_lists_setting(l, "required_score", "5", 1, why, sizeof(why)),
                     SA_LISTS_NOT_MINE);
    assert_int_equal(sa_lists_finish(l), 0);
    /* the good one of the line was taken */
    assert_int_equal(sa_lists_is_freemail(l, "a@good.example", 14), 1);
    assert_int_equal(sa_lists_freemail_opts(l)->max_body_emails, 5);
    sa_lists_unref(l);
}

static int fm(struct sa_lists *l, const char *e)
{
    return sa_lists_is_freemail(l, e, strlen(e));
}

static void test_freemail(void **state)
{
    (void)state;
    const char *const cf[] = {
        "freemail_domains gmail.com Yahoo.CO.UK mail.*.example ?ahoo.example",
        "freemail_welcomelist vip@gmail.com friends.example",
        "freemail_domains friends.example",
        "freemail_max_body_emails 7",
        "freemail_skip_when_over_max 0",
        "util_rb_tld com uk example",
        NULL,
    };
    struct sa_lists *l = lists(cf);
    assert_true(sa_lists_freemail_available(l));
    assert_int_equal(fm(l, "joe@gmail.com"), 1);
    assert_int_equal(fm(l, "joe@yahoo.co.uk"), 1);
    assert_int_equal(fm(l, "joe@mail.x.example"), 1);
    assert_int_equal(fm(l, "joe@mail.x.y.example"), 0);
    assert_int_equal(fm(l, "joe@yahoo.example"), 1);
    assert_int_equal(fm(l, "joe@sub.gmail.com"), 0);
    assert_int_equal(fm(l, "vip@gmail.com"), 0);       /* welcomelisted address */
    assert_int_equal(fm(l, "joe@friends.example"), 0); /* welcomelisted domain */
    assert_int_equal(fm(l, "support@gmail.com"), 0);   /* FreeMail's own list */
    assert_int_equal(fm(l, "a=b=c@gmail.com"), 0);
    assert_int_equal(fm(l, ""), 0);
    assert_int_equal(sa_lists_freemail_opts(l)->max_body_emails, 7);
    assert_int_equal(sa_lists_freemail_opts(l)->skip_when_over_max, 0);
    const pcre2_code *re = sa_lists_email_re(l);
    assert_non_null(re);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    const char *t = "write to Joe.Doe@Mail.Gmail.com today";
    assert_true(pcre2_match(re, (PCRE2_SPTR)t, strlen(t), 0, 0, md, NULL) > 0);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    assert_int_equal(ov[2], 9);
    assert_int_equal(ov[3], 9 + strlen("Joe.Doe@Mail.Gmail.com"));
    t = "x@host.invalidtld";
    assert_true(pcre2_match(re, (PCRE2_SPTR)t, strlen(t), 0, 0, md, NULL) < 0);
    pcre2_match_data_free(md);
    sa_lists_unref(l);

    /* no domains: FreeMail is off */
    const char *const none[] = {"freemail_welcomelist a@b.example", NULL};
    l = lists(none);
    assert_false(sa_lists_freemail_available(l));
    assert_null(sa_lists_email_re(l));
    sa_lists_unref(l);
}

static void test_uri_hosts(void **state)
{
    (void)state;
    const char *const cf[] = {
        "enlist_uri_host (MYLIST) !sub1.example.com example.com",
        "blocklist_uri_host bad.example",
        "welcomelist_uri_host good.example",
        "enlist_uri_host (OTHER) gone.example kept.example",
        "delist_uri_host (OTHER) gone.example",
        "enlist_uri_host (THIRD) both.example",
        "delist_uri_host !both.example",
        NULL,
    };
    struct sa_lists *l = lists(cf);
    assert_int_equal(sa_lists_uri_list_count(l), 5);
    /* in name order */
    assert_string_equal(sa_lists_uri_list_name(l, 0), "BLOCK");
    assert_string_equal(sa_lists_uri_list_name(l, 1), "MYLIST");
    size_t my = sa_lists_uri_list_find(l, "MYLIST");
    assert_int_equal(sa_lists_uri_host(l, my, "example.com", 11), 1);
    assert_int_equal(sa_lists_uri_host(l, my, "sub1.example.com", 16), 0);
    assert_int_equal(sa_lists_uri_host(l, my, "other.com", 9), -1);
    size_t o = sa_lists_uri_list_find(l, "OTHER");
    assert_int_equal(sa_lists_uri_host(l, o, "gone.example", 12), -1);
    assert_int_equal(sa_lists_uri_host(l, o, "kept.example", 12), 1);
    size_t t = sa_lists_uri_list_find(l, "THIRD");
    assert_int_equal(sa_lists_uri_host(l, t, "both.example", 12), -1);
    assert_int_equal(sa_lists_uri_host(l, sa_lists_uri_list_find(l, "BLOCK"), "bad.example", 11),
                     1);
    assert_int_equal(sa_lists_uri_list_find(l, "NONE"), (size_t)-1);
    sa_lists_unref(l);
}

static void test_many(void **state)
{
    (void)state;
    struct sa_lists *l = sa_lists_new();
    char why[160];
    for (int i = 0; i < 5000; i++) {
        char d[64];
        int n = snprintf(d, sizeof(d), "dom%d.example", i);
        assert_int_equal(sa_lists_setting(l, "freemail_domains", d, (size_t)n, why, sizeof(why)),
                         SA_LISTS_OK);
        n = snprintf(d, sizeof(d), "u%d@list.example", i);
        assert_int_equal(sa_lists_setting(l, "welcomelist_from", d, (size_t)n, why, sizeof(why)),
                         SA_LISTS_OK);
    }
    assert_int_equal(sa_lists_finish(l), 0);
    assert_int_equal(fm(l, "a@dom4999.example"), 1);
    assert_int_equal(fm(l, "a@dom5000.example"), 0);
    assert_int_equal(listed(l, "welcomelist_from", "U1234@LIST.example"), 1);
    assert_int_equal(listed(l, "welcomelist_from", "u5000@list.example"), 0);
    sa_lists_unref(l);
}

static void test_trim_domain(void **state)
{
    (void)state;
    const char *const cf[] = {"util_rb_2tld co.uk com.au", "util_rb_3tld demon.co.uk", NULL};
    struct sa_lists *l = lists(cf);
    static const char *const cases[][2] = {
        {"www.example.com", "example.com"},
        {"example.com", "example.com"},
        {"com", "com"},
        {"mail.Example.CO.UK", "example.co.uk"},
        {"co.uk", "co.uk"},
        {"a.b.demon.co.uk", "b.demon.co.uk"},
        {"www..example.com.", "example.com"},
        {"host.city.ca.us", "host.city.ca.us"},
        {"x.fire-dept.ci.los-angeles.ca.us", "fire-dept.ci.los-angeles.ca.us"},
        {"", ""},
    };
    char out[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = sa_lists_trim_domain(l, cases[i][0], strlen(cases[i][0]), out, sizeof(out));
        assert_string_equal(out, cases[i][1]);
        assert_int_equal(n, strlen(cases[i][1]));
    }
    char why[160];
    assert_int_equal(sa_lists_setting(l, "util_rb_2tld", "a.b.c", 5, why, sizeof(why)),
                     SA_LISTS_BAD);
    assert_true(sa_lists_tld_valid(l, "UK", 2) == false);
    sa_lists_unref(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),         cmocka_unit_test(test_addrlists),
        cmocka_unit_test(test_bad_settings), cmocka_unit_test(test_freemail),
        cmocka_unit_test(test_uri_hosts),    cmocka_unit_test(test_many),
        cmocka_unit_test(test_trim_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
