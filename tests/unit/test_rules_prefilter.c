/*
 * Unit tests for the literal prefilter: which literal each kind of pattern
 * yields (or why none: optional parts, classes, groups, alternatives too
 * short, extended mode, inline options, UTF caseless), the Aho-Corasick
 * automaton (overlapping literals, shared suffixes, case folding, octets
 * outside every literal), and a differential run: the same rules with and
 * without the prefilter must give the same hits over many messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules_int.h"

struct lit_case {
    const char *pattern;
    uint32_t flags;
    const char *want; /* literals joined by '|', or NULL for none */
};

static const struct lit_case lit_cases[] = {
    {"viagra", 0, "viagra"},
    {"cheap\\s+viagra", 0, "viagra&cheap"},
    {"GTUBE-STANDARD", 0, "gtube-standard"},
    {"XJS\\*C4JDBQADN1\\.NSBN3", 0, "xjs*c4jdbqadn1.nsbn3"},
    {"colou?r", 0, "colour|color"},
    {"abcx*yz", 0, "abc"},
    {"ab{0,2}cdef", 0, "cdef"},
    {"xy{2}zzz", 0, "xyyzzz"},
    {"xyz{1,}", 0, "xyz"},
    {"abc+def", 0, "cdef&abc"},
    {"(foo)?barbaz", 0, "foobarbaz|barbaz"},
    {"[abc]defg", 0, "adefg|bdefg|cdefg"},
    {"[]x]defg", 0, "]defg|xdefg"},
    {"[[:alpha:]]defg", 0, "defg"},
    {"hello|world", 0, "hello|world"},
    {"hello|wo", 0, NULL},
    {"(a|b)cde", 0, "acde|bcde"},
    {"(abc|def)", 0, "abc|def"},
    {"^start", 0, "start"},
    {"end$", 0, "end"},
    {"abc(?=def)", 0, "abc"},
    {"a.b.c", 0, NULL},
    {"\\d+abc\\d+", 0, "abc"},
    {"\\bword\\b", 0, "word"},
    {"\\x{41}bcd", 0, "abcd"},
    {"ab\\Kcdef", 0, "abcdef"},
    {"caf\xc3\xa9s", 0, "caf\xc3\xa9s"},
    {"a{2,3}", 0, NULL},
    {"abc{x}", 0, "abc{x}"},
    {"x", 0, NULL},
    {"free money", PCRE2_EXTENDED, NULL},
    {"(?x)free money", 0, NULL},
    {"(?i)hello", 0, "hello"},
    {"(*UTF)hello", 0, NULL},
    {"\\Qa.b.c\\E", 0, "a.b.c"},
    {"strasse", PCRE2_UTF | PCRE2_CASELESS, NULL},
    {"strasse", PCRE2_UTF, "strasse"},
    {"strasse", PCRE2_CASELESS, "strasse"},
    {"(?:abc)def", 0, "abcdef"},
    {"tosiqua\\s+neraze\\s+nixmi", 0, "tosiqua&neraze&nixmi"},
    {"\\b(alert|casino)\\s+debt\\b", 0, "alert|casino&debt"},
    {"free money|cheap pills", 0, "free money|cheap pills"},
    {"abc\\s+de|xyzw", 0, "abc|xyzw"},
    {"\\x41bcd", 0, "abcd"},
    {"\\x4gbcd", 0, "\x04gbcd"},
    {"\\101bc", 0, NULL},
    {"\\cAxyz", 0, "\x01xyz"},
    {"\\pLabc", 0, "abc"},
    {"\\p{Lu}abc", 0, "abc"},
    {"(a)\\1abc", 0, "abc"},
    {"(?<n>a)\\k<n>abc", 0, "abc"},
    {"(a)\\g{-1}abc", 0, "abc"},
    {"(a)\\g-1abc", 0, "abc"},
    {"\\o{101}abc", 0, "aabc"},
    {"\\N{U+41}abc", PCRE2_UTF, "abc"},
    {"a\\|bcd", 0, "a|bcd"},
    {"(abc|de)xyz", 0, "abcxyz|dexyz"},
    {"(abc|def)*xyz", 0, "xyz"},
    {"(abc|def){0,2}xyz", 0, "xyz"},
    {"(abc|def){2}xyz", 0, "abcabcxyz|abcdefxyz|defabcxyz|defdefxyz"},
    {"(?<n>abc|def)xyz", 0, "abcxyz|defxyz"},
    {"(?!abc)xyz", 0, "xyz"},
    {"(a(bcd|efg)h|ijkl)mno", 0, "abcdhmno|aefghmno|ijklmno"},
    {"(abcd(efg|hij)|klmn)xyz", 0, "abcdefgxyz|abcdhijxyz|klmnxyz"},
    {"stra(ss|\\x{df})e", 0,
     "strasse|stra\xdf"
     "e"},
    /* the required factors of larger patterns */
    {"ad+res+", 0, "dres"},
    {"(?:bad|poor|repair).{0,10} (?:credit|debt)", 0, " credit| debt&bad|poor|repair"},
    {"\\bv[_\\W]?i[_\\W]?agra", 0, "agra"},
    {"[a-c]xyz", 0, "axyz|bxyz|cxyz"},
    {"[a-z]xyz", 0, "xyz"},
    {"[^a]xyz", 0, "xyz"},
    {"[A-C]xyz", PCRE2_CASELESS, "axyz|bxyz|cxyz"},
    {"[\\x41\\x42]yz", 0, "ayz|byz"},
    {"(?:abc|x\\d+yz)", 0, NULL},
    {"(?:abcd|x\\d+yzw)", 0, "abcd|yzw"},
    {"(abc)\\1def", 0, "abc&def"},
    {"(?<=abc)def", 0, "def"},
    {"(?!abc)def", 0, "def"},
    {"abc(?#comment)def", 0, "abcdef"},
    {"\\Qa.b\\E+cde", 0, "cde"},
    {"(?-i)abc", 0, "abc"},
    {"(?i:abc)def", 0, "abcdef"},
    {"(?i:abc)def", PCRE2_UTF, NULL},
    {"(?x: a b c )def", 0, NULL},
    {"(?(1)abc|def)ghi", 0, NULL},
    {"(?R)?abc", 0, NULL},
    {"(*UCP)abc", 0, NULL},
    {"abc", PCRE2_EXTENDED_MORE, NULL},
    {"caf\xc3\xa9+s", PCRE2_UTF, "caf\xc3\xa9&\xc3\xa9s"},
    {"caf\xc3\xa9+s", 0, "caf\xc3\xa9"},
    {"[\xc3\xa9]xyz", PCRE2_UTF, "xyz"},
    {"abc(def", 0, NULL},
    {"abc)def", 0, NULL},
    {"[abc", 0, NULL},
    {"(?:x{3}){2}", 0, "xxxxxx"},
    {"(?:abc){2,}", 0, "abcabc"},
    /* a quantifier after \E, \Q\E or a comment takes the atom before */
    {"abcx\\E?yz", 0, NULL},
    {"abcx\\Q\\E*yz", 0, NULL},
    {"abcx(?#c)+yz", 0, NULL},
    {"abc\\Eyz", 0, "abcyz"},
};

static void test_literals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(lit_cases) / sizeof(lit_cases[0]); i++) {
        const struct lit_case *c = &lit_cases[i];
        char lits[8][RULES_LITERAL_MAX];
        size_t lens[8];
        unsigned clause[8];
        size_t n = rules_literals(c->pattern, strlen(c->pattern), c->flags, lits, lens, clause, 8);
        /* "a&b": two clauses, both required; "a|b": one clause, either */
        char got[512] = "";
        for (size_t k = 0; k < n; k++) {
            if (k > 0)
                strcat(got, clause[k] == clause[k - 1] ? "|" : "&");
            strncat(got, lits[k], lens[k]);
        }
        if ((c->want == NULL) != (n == 0) || (c->want != NULL && strcmp(got, c->want) != 0))
            print_message("pattern %s: got \"%s\" (%zu), wanted %s\n", c->pattern, got, n,
                          c->want ? c->want : "none");
        if (c->want == NULL)
            assert_int_equal(n, 0);
        else
            assert_string_equal(got, c->want);
    }
    /* more alternatives than room: none */
    char lits[2][RULES_LITERAL_MAX];
    size_t lens[2];
    unsigned clause[2];
    assert_int_equal(rules_literals("aaa|bbb|ccc", 11, 0, lits, lens, clause, 2), 0);
    /* a run longer than a literal holds: its prefix and its suffix */
    const char *longp =
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz";
    size_t ll = strlen(longp);
    assert_int_equal(rules_literals(longp, ll, 0, lits, lens, clause, 2), 2);
    assert_int_equal(lens[0], RULES_LITERAL_MAX);
    assert_memory_equal(lits[0], longp, RULES_LITERAL_MAX);
    assert_int_equal(lens[1], RULES_LITERAL_MAX);
    assert_memory_equal(lits[1], longp + ll - RULES_LITERAL_MAX, RULES_LITERAL_MAX);
    assert_int_not_equal(clause[0], clause[1]);
    /* room for one clause only: the first, whole */
    assert_int_equal(rules_literals(longp, ll, 0, lits, lens, clause, 1), 1);
}

static const struct lit_case skeleton_cases[] = {
    {"v[_\\W]?i[_\\W]?agra", 0, "viagra"},
    {"t[_\\W]{0,3}r[_\\W]{0,3}[a4@]m", 0, "trm|tr4m|tram"},
    {"a-b-c", 0, "abc"},
    {"ab\\s*cd", 0, "abcd"},
    {"abc\\w?def", 0, "abc&def"},
    {"ab.cd", 0, NULL},
    {"[^a]bcd", 0, "bcd"},
    {"\\$\\d+ million", 0, "million"},
    {"x[\\xe0-\\xe6a]yz", 0, "xyz|xayz"},
    {"caf\xc3\xa9s", PCRE2_UTF, "cafs"},
    {"abc", PCRE2_UTF | PCRE2_UCP, NULL},
    {"\\Qa-b\\Ecde", 0, "cde"},
};

static void test_skeleton(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(skeleton_cases) / sizeof(skeleton_cases[0]); i++) {
        const struct lit_case *c = &skeleton_cases[i];
        char lits[8][RULES_LITERAL_MAX];
        size_t lens[8];
        unsigned clause[8];
        size_t n = rules_literals_skeleton(c->pattern, strlen(c->pattern), c->flags, lits, lens,
                                           clause, 8);
        char got[512] = "";
        for (size_t k = 0; k < n; k++) {
            if (k > 0)
                strcat(got, clause[k] == clause[k - 1] ? "|" : "&");
            strncat(got, lits[k], lens[k]);
        }
        if ((c->want == NULL) != (n == 0) || (c->want != NULL && strcmp(got, c->want) != 0))
            print_message("skeleton of %s: got \"%s\" (%zu), wanted %s\n", c->pattern, got, n,
                          c->want ? c->want : "none");
        if (c->want == NULL)
            assert_int_equal(n, 0);
        else
            assert_string_equal(got, c->want);
    }
    /* the scan skips what the skeleton takes out */
    const char *lit[] = {"viagra"};
    size_t len[] = {6};
    uint32_t own[] = {0};
    bool nomem = false;
    struct rules_prefilter *pf = rules_prefilter_build(lit, len, own, 1, &nomem);
    assert_non_null(pf);
    unsigned char seen[1] = {0};
    const char *split = "buy V-i_a g\xe9r.a now", *broken = "buy V-i_a gxra now";
    rules_prefilter_scan_skeleton(pf, split, strlen(split), seen);
    assert_int_equal(seen[0], 1);
    seen[0] = 0;
    rules_prefilter_scan_skeleton(pf, broken, strlen(broken), seen);
    assert_int_equal(seen[0], 0);
    rules_prefilter_free(pf);
}

static void test_automaton(void **state)
{
    (void)state;
    const char *lits[] = {"he", "she", "his", "hers", "x\x80y"};
    size_t lens[] = {2, 3, 3, 4, 3};
    uint32_t owners[] = {0, 1, 2, 3, 4};
    bool nomem = false;
    struct rules_prefilter *pf = rules_prefilter_build(lits, lens, owners, 5, &nomem);
    assert_non_null(pf);
    assert_false(nomem);
    struct {
        const char *text;
        const char *seen;
    } cases[] = {
        {"ushers", "11010"}, {"USHERS", "11010"},  {"hi", "00000"},
        {"this", "00100"},   {"h e r s", "00000"}, {"", "00000"},
        {"x\x80y", "00001"}, {"X\x80Y!", "00001"}, {"sHe", "11000"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char seen[5] = {0};
        rules_prefilter_scan(pf, cases[i].text, strlen(cases[i].text), seen);
        char got[6];
        for (int k = 0; k < 5; k++)
            got[k] = seen[k] ? '1' : '0';
        got[5] = '\0';
        if (strcmp(got, cases[i].seen) != 0)
            print_message("text %s\n", cases[i].text);
        assert_string_equal(got, cases[i].seen);
    }
    rules_prefilter_free(pf);
    assert_null(rules_prefilter_build(lits, lens, owners, 0, &nomem));
    assert_false(nomem); /* none to filter is no failure */
}

/* ---- differential ---- */

static const char *diff_rules = "rule P01 body /cheap\\s+viagra/i\n"
                                "rule P02 body /colou?r/\n"
                                "rule P03 body /GTUBE/\n"
                                "rule P04 body /gtube/i\n"
                                "rule P05 body /(foo)?barbaz/\n"
                                "rule P06 body /hello|world/i\n"
                                "rule P07 body /\\bword\\b/\n"
                                "rule P08 body !/absent-literal/\n"
                                "rule P09 rawbody /<b>bold/i\n"
                                "rule P10 full /X-Mark:\\s*\\d+/\n"
                                "rule P11 headers /^Subject: .*urgent/mi\n"
                                "rule P12 headers:raw /=\\?utf-8\\?/i\n"
                                "rule P13 body /caf\\x{e9}/u\n"
                                "rule P14 body /stra(ss|\\x{df})e/ui\n"
                                "rule P15 body /ab{0,2}cdef/\n"
                                "rule P16 body /\\d+abc\\d+/\n"
                                "rule P17 body /(?i)MiXeD/\n"
                                "rule P18 body /a.b.c/\n"
                                "rule P19 body /x y z/x\n"
                                "rule P20 body /end of text$/\n"
                                "rule P21 body /^line start/m\n"
                                "rule P22 rawbody !/nothing-here/i\n"
                                "rule P23 body /\\x41bcd/\n"
                                "rule P24 body /\\101bcdef/\n"
                                "rule P25 body /x\\|yzw/\n"
                                "rule P26 body /\\b(cheap|free)\\s+(viagra|money)\\b/i\n"
                                "rule P27 body /(a(bcd|efg)h|word)abc/\n"
                                "rule P28 body /(colou?r|gtube)\\s*(hello)?/i\n";

static const char *fragments[] = {
    "cheap viagra",
    "CHEAP   VIAGRA",
    "color",
    "colour",
    "colur",
    "GTUBE",
    "gtube",
    "barbaz",
    "foobarbaz",
    "HELLO",
    "wOrLd",
    "word",
    "sword",
    "<b>bold</b>",
    "<B>BOLD</B>",
    "urgent",
    "caf\xc3\xa9",
    "CAF\xc3\x89",
    "strasse",
    "STRA\xc3\x9f"
    "E",
    "acdef",
    "abbcdef",
    "abbbcdef",
    "1abc2",
    "abc",
    "mixed",
    "MIXED",
    "a-b-c",
    "xyz",
    "x y z",
    "end of text",
    "line start",
    "absent-literal",
    "nothing-here",
    "\xff\xfe",
    "=?utf-8?q?x?=",
    "Abcd",
    "Abcdef",
    "x|yzw",
};

static struct rules *load(const char *src, bool prefilter)
{
    struct rules_limits lim = {.match_limit = 1000000,
                               .depth_limit = 10000,
                               .heap_limit_kib = 20000,
                               .no_prefilter = !prefilter};
    struct rules *r = NULL;
    struct rules_errors errs = {0};
    int rc = rules_load_buffer("d.rules", src, strlen(src), &lim, &r, &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_message("%s:%u:%u: %s\n", errs.v[i].file, errs.v[i].line, errs.v[i].col,
                      errs.v[i].msg);
    rules_errors_free(&errs);
    assert_int_equal(rc, 0);
    return r;
}

static void hits_of(struct rules *r, const char *text, char *out, size_t cap)
{
    struct rules_msg *m = rules_msg_parse(text, strlen(text));
    struct rules_tx *tx = rules_tx_new(r);
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
    out[0] = '\0';
    for (size_t i = 0; i < o->nhits; i++) {
        strncat(out, o->hits[i].rule, cap - strlen(out) - 1);
        strncat(out, " ", cap - strlen(out) - 1);
    }
    rules_tx_free(tx);
    rules_msg_free(m);
}

static void test_differential(void **state)
{
    (void)state;
    /* enough rules on every long text for each to get its automaton */
    static const char *targets[] = {"rawbody", "full", "headers", "headers:raw"};
    static const char *words[] = {"viagra", "colour", "gtube",   "barbaz", "hello",
                                  "bold",   "urgent", "strasse", "mixed"};
    char src[8192];
    size_t sl = (size_t)snprintf(src, sizeof(src), "%s", diff_rules);
    for (size_t t = 0; t < 4; t++)
        for (size_t w = 0; w < 9; w++)
            sl += (size_t)snprintf(src + sl, sizeof(src) - sl, "rule T%zu_%zu %s /%s/%s\n", t, w,
                                   targets[t], words[w], w % 2 ? "i" : "");
    struct rules *with = load(src, true), *without = load(src, false);
    size_t per_slot[RULES_PF_SLOTS] = {0};
    for (size_t i = 0; i < with->n; i++)
        if (with->v[i].pf_slot >= 0)
            per_slot[with->v[i].pf_slot]++;
    /* the native texts; slots 5 and 6 are SpamAssassin's body and rawbody, 7 its skeleton */
    for (int k = 0; k < 5; k++) {
        assert_true(per_slot[k] >= 8);
        assert_non_null(with->pf[k]);
    }
    for (size_t i = 0; i < without->n; i++)
        assert_int_equal(without->v[i].pf_slot, -1);

    uint32_t x = 12345;
    size_t nfrag = sizeof(fragments) / sizeof(fragments[0]);
    for (int round = 0; round < 400; round++) {
        char text[4096];
        int n = snprintf(text, sizeof(text), "Subject: %s\r\nX-Mark: %d\r\n",
                         round % 3 ? "hello" : "very urgent", round);
        if (round % 5 == 0)
            n += snprintf(text + n, sizeof(text) - (size_t)n, "X-Enc: =?utf-8?q?x?=\r\n");
        if (round % 4 == 1)
            n += snprintf(text + n, sizeof(text) - (size_t)n,
                          "Content-Type: text/html; charset=utf-8\r\n");
        n += snprintf(text + n, sizeof(text) - (size_t)n, "\r\n");
        int parts = 1 + (int)(x % 6);
        for (int k = 0; k < parts; k++) {
            x = x * 1103515245u + 12345u;
            const char *f = fragments[(x >> 8) % nfrag];
            const char *sep = (x >> 20) % 3 == 0 ? "\r\n" : " ";
            n += snprintf(text + n, sizeof(text) - (size_t)n, "%s%s", f, sep);
        }
        char a[1024], b[1024];
        hits_of(with, text, a, sizeof(a));
        hits_of(without, text, b, sizeof(b));
        if (strcmp(a, b) != 0)
            print_message("message:\n%s\nwith: %s\nwithout: %s\n", text, a, b);
        assert_string_equal(a, b);
    }
    rules_unref(with);
    rules_unref(without);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_automaton),
        cmocka_unit_test(test_skeleton),
        cmocka_unit_test(test_differential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
