/*
 * Unit tests for sa_bigre, the rewrite of a SpamAssassin pattern PCRE2
 * finds too large: the text each repeat and copy becomes, what is refused
 * (anything that could read a capture or a group number, or that the scan
 * would misread), and above all that the rewrite matches exactly what the
 * original does: both compiled (with and without the JIT) and every match
 * of each over many subjects compared, start and end, as //g finds them.
 * Last, the FILL_THIS_FORM patterns ReplaceTags makes of 72_active.cf's
 * tags: the small ones compared the same way, the long one (which PCRE2
 * refuses) compiled from its rewrite and tried on forms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "rules/sa_bigre.h"

/* SpamAssassin 4.0's tags of the form rules, as 72_active.cf has them */
#define FF_LNNO                                                                                    \
    "(?:(?:\\d{1,3}(?:[)}\\]:.,]{1,80}|(?:st|nd|rd|th)[)}\\]:.,]{0,3})|\\W?\\([\\div]{1,5}\\)|"    \
    "\\W?\\{\\d{1,3}\\}|\\[\\d{1,3}\\]|\\*{1,5}|\\#{1,5}|\\(?[A-K][)}\\]:.,]{1,3})\\s?)"
#define FF_YOUR                                                                                    \
    "(?:a?\\s?copy\\sof\\s)?(?:(?:your|din|seu|twoje)[\\s,:]{1,5})?(?:present\\s|c[uo]rrent\\s|"   \
    "full(?:st[\\xe4]ndigt)?\\s?|complete\\s|direct\\s|private?\\s|valid\\s|personal\\s|"          \
    "nuvarande\\s|vollst[\\xe4]ndige\\s|aktuelle\\s|pe\\s(?:ne\\s)?){0,3}"
#define ANDOR     "(?:\\s?[\\/&+,]\\s?|\\sor\\s|\\sand?\\s)"
#define NUMBER    "(?:(?:ruf)?num(?:[bm]er)?\\(?s?\\)?|nos?\\.|no\\b|n[\\xb0]|\\#s?|nbrs?\\.?)"
#define FF_SUFFIX "(?:\\sin\\s(?:full|words)|\\scompleto)?:?(?:\\s?[({][^)}]{1,30}[)}])?"
#define FF_BLANK1                                                                                  \
    "(?:[\\s:;]{0,4}(?:(?:[-=_.,:;*\\s\\x85]|&\\#\\d{1,3};|[\\xe2][\\x80][\\xa6]){3,100}))"
#define FF_BLANK2                                                                                  \
    "(?:[^-=_.,:;*\\w]{0,3}(?:[-=_.,:;*\\s\\x85]|&\\#\\d{1,3};|[\\xe2][\\x80][\\xa6]){1,100})"
#define FF_A1                                                                                      \
    "(?:(?:countr?y|city|province|ter+itory|(?:zip|post(?:al)?)(?:\\s?code)?|st?ates?|ad+res+e?"   \
    ")" ANDOR "?){1,3}(?:\\sof\\s(?:residence|birth|employment|citizenship|origin))?"
#define FF_A2                                                                                      \
    "(?:(?:contact|full|house|home|resident[ia]+l|busines+|mailing|work|delivery|ship+ing|post(?:" \
    "al)?|of+ice|e-?mail|bostads|wohn)" ANDOR                                                      \
    "?){0,3}\\s?(?:ad+res+[es]{0,2}|location|endere[\\xe7]o)(?:\\sline)?(?:\\s[0-9])?"
#define FF_N1                                                                                      \
    "(?:company|first|last|all|busines+|legal|ben[ei]ficiary|user|vollstaendigen)?\\s?(?:name?["   \
    "sn]?|navne|nome|nazwy)(?:" ANDOR "ad+res+)?"
#define FF_P1                                                                                      \
    "(?:(?:(?:busines+|contact|fax|voice|house|home|mobile?|cel+(?:ular)?|of+ice|tel+e?(?:\\s?(?:" \
    "ph|f)one?)?|(?:ph|f)one|private)(?:\\s(?:ph|f)one)?" ANDOR "?){1,3}(?:\\s?" NUMBER ")?" ANDOR \
    "?){1,3}"
#define FF_M1                                                                                      \
    "(?:(?:ages?|marital\\s?statu[se]|sex|gender|male\\sor\\sfemale|(?:date\\s(?:of\\s)?)?birth|"  \
    "religion|nationality|(?:user "                                                                \
    ")?email|next\\sof\\skin|alter|staatsangehoerigkeit|nationalitet|idade|weik)" ANDOR "?){1,3}"
#define FF_L1                                                                                      \
    "(?:(?:previous\\s)?work(?:ing)\\s?experience|employment|position|profes+ion|(?:monthly|an+"   \
    "ual)?\\s?income|purpose\\sof\\sl(?:oa|ao)n|an+ual\\sturn\\s?over|l(?:oa|ao)n\\sduration|oc+"  \
    "up[ae]tion(?:\\/"                                                                             \
    "position)?s?|(?:l(?:oa|ao)n\\s|the\\s)?amount(?:\\sneed(ed)?|\\sdesired)?(?:\\s(?:as|of)"     \
    "\\sloan)?|beruf|zaw(?:=F3|[\\xf3])d)"
#define FF_F1                                                                                      \
    "(?:(?:bank(?:ing)?|beneficiary|billing|acc(?:oun)?t|rout(?:ing)?|swift|receiver|user)" ANDOR  \
    "?){1,3}\\s(?:(?:name|ad+res+(?:es)?|location|code|details|institution|a\\/c|" NUMBER          \
    ")" ANDOR "?){1,3}"
#define FF_F2                                                                                      \
    "(?:(?:(?:international\\s)?driver'?s?\\sli[sc]+(?:en[sc]e)?|pas+\\s?port|id\\scard|[ia]d(?:"  \
    "entification|entity)(?:\\s(?:card|" NUMBER "|papers?))?)" ANDOR "?){1,3}(?:\\s" NUMBER ")?"
#define FF_F3                                                                                      \
    "(?:picture|zdj\\scie|test\\squestion|answer|amount\\swon|(?:inheritance\\s)?funds?\\svalue|(" \
    "?:e-?mail\\s)?pas+word|e-?mai?l\\sid|amount\\s[\\w\\s]{0,30}lost[\\w\\s]{0,15})"
#define FF_F4 "(?:log[-\\s]?in|(?:e-?mail\\s)?user)\\s?names?"
#define FF_F5 "(?:ref(?:erence)?|batch|win+ing|award|billet)[-\\s]?" NUMBER
#define FF_ALL                                                                                     \
    "(?:" FF_A1 "|" FF_A2 "|" FF_N1 "|" FF_P1 "|" FF_M1 "|" FF_F1 "|" FF_F2 "|" FF_F3 "|" FF_F4    \
    "|" FF_F5 "|" FF_L1 ")"

#define FF_ITEM_LNNO FF_LNNO FF_YOUR FF_ALL FF_SUFFIX
#define FF_ITEM      FF_YOUR FF_ALL FF_SUFFIX
#define FF_TAIL      "(?:" FF_BLANK2 "(?:P[a-z\\.\\s]{10,30})?|" ANDOR ")"

struct shape {
    const char *pattern, *want;
};

static const struct shape shapes[] = {
    {"(?:ab){5}", "(?<_sg1>(?:ab))(?&_sg1){4}"},
    {"(?:ab){2}", "(?<_sg1>(?:ab))(?&_sg1)"},
    {"(?:ab){2,5}", "(?<_sg1>(?:ab))(?&_sg1){1,4}"},
    {"(?:ab){1,3}", "(?<_sg1>(?:ab))(?&_sg1){0,2}"},
    {"(?:ab){3,}", "(?<_sg1>(?:ab))(?&_sg1){2,}"},
    {"(?:ab){1,}", "(?<_sg1>(?:ab))(?&_sg1){0,}"},
    {"(?:ab){0,3}", "(?:(?<_sg1>(?:ab))(?&_sg1){0,2})?"},
    {"(?:ab){0,3}?", "(?:(?<_sg1>(?:ab))(?&_sg1){0,2}?)??"},
    {"(?:ab){2,5}?", "(?<_sg1>(?:ab))(?&_sg1){1,4}?"},
    {"(?:ab){2,5}+", "(?>(?<_sg1>(?:ab))(?&_sg1){1,4})"},
    {"x(ab){3}y", "x(?<_sg1>(ab))(?&_sg1){2}y"},
    {"(?>a|ab){2}", "(?<_sg1>(?>a|ab))(?&_sg1)"},
    {"(?:(?:ab){2}c){3}", "(?<_sg1>(?:(?<_sg2>(?:ab))(?&_sg2)c))(?&_sg1){2}"},
    {"(?:abcd|efgh)x(?:abcd|efgh)", "(?<_sg1>(?:abcd|efgh))x(?&_sg1)"},
    {"(?i)(?:abcd|efgh)x(?:abcd|efgh)?", "(?i)(?<_sg1>(?:abcd|efgh))x(?&_sg1)?"},
    {"(?:abcd|efgh){2}x(?:abcd|efgh)", "(?<_sg1>(?:abcd|efgh))(?&_sg1)x(?&_sg1)"},
    {"[(?:ab){2}]", NULL},          /* a class, not a group */
    {"\\((?:a)\\){2}", NULL},       /* an escaped parenthesis is no group */
    {"(?:ab){1}(?:ab){0,1}", NULL}, /* one copy each already */
    {"(?:ab){0}", NULL},
    {"a{5}(?:ab)*", NULL},
    {"(?:ab){,3}", NULL},                      /* a literal brace in PCRE2 10.42 */
    {"(?:ab|c)x(?:ab|c)", NULL},               /* too short to be worth a call */
    {"(?:abcd|efgh)(?i)x(?:abcd|efgh)", NULL}, /* options could differ */
    {"(?<=ab){2}x", NULL},
    /* refused: what reads captures or numbers, or what the scan cannot read */
    {"(?:(a)\\1){2}", NULL},
    {"(?:(a)\\g{-1}){2}", NULL},
    {"(?:(?<n>a)\\k<n>){2}", NULL},
    {"(?<N>a){2}", NULL},
    {"(?'N'a){2}", NULL},
    {"(?P<N>a){2}", NULL},
    {"(?:a(?1)){2}", NULL},
    {"(?:a(?-1)){2}", NULL},
    {"(?:a(?R)?){2}", NULL},
    {"(?:a(?(1)b|c)){2}", NULL},
    {"(?|(a)|(b)){2}", NULL},
    {"(?:a(*ACCEPT)){2}", NULL},
    {"(*UTF)(?:ab){2}", NULL},
    {"(?:a\\Kb){2}", NULL},
    {"(?:a(?C1)b){2}", NULL},
    {"\\Q(?:ab){2}\\E", NULL},
    {"(?#c)(?:ab){2}", NULL},
    {"(?x)(?:a b){2}", NULL},
    {"(?:a(?x: b)){2}", NULL},
    {"(?:ab){2", NULL},
    {"(?:ab){2}{3}", NULL},
    {"(?:ab){70000}", NULL},
    {"(?:ab){3,2}", NULL},
    {"(?:ab){2})", NULL},
    {"((?:ab){2}", NULL},
    {"[a(?:ab){2}", NULL},
    {"(?:ab){2}\\", NULL},
};

static void test_shapes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        char *out = NULL;
        size_t n = 0;
        int rc = sa_bigre_rewrite(shapes[i].pattern, strlen(shapes[i].pattern), 0, &out, &n);
        if (shapes[i].want == NULL) {
            if (rc != 0)
                fail_msg("%s: rewritten as %s", shapes[i].pattern, out);
            assert_null(out);
            continue;
        }
        if (rc != 1)
            fail_msg("%s: not rewritten", shapes[i].pattern);
        assert_string_equal(out, shapes[i].want);
        assert_int_equal(n, strlen(shapes[i].want));
        free(out);
    }
}

static void test_extended_refused(void **state)
{
    (void)state;
    char *out = NULL;
    size_t n = 0;
    assert_int_equal(sa_bigre_rewrite("(?:ab){2}", 9, PCRE2_EXTENDED, &out, &n), 0);
    assert_int_equal(sa_bigre_rewrite("(?:ab){2}", 9, PCRE2_EXTENDED_MORE, &out, &n), 0);
    assert_null(out);
    /* a NUL is one more octet, not the end */
    assert_int_equal(sa_bigre_rewrite("(?:a\0b){2}", 10, 0, &out, &n), 1);
    assert_int_equal(n, 24);
    assert_memory_equal(out, "(?<_sg1>(?:a\0b))(?&_sg1)", 24);
    free(out);
}

static pcre2_code *compile(const char *p, size_t n, uint32_t flags, bool jit)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)p, n, flags, &err, &off, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof(msg));
        fail_msg("%.*s: %s", (int)(n > 200 ? 200 : n), p, (char *)msg);
    }
    if (jit)
        assert_int_equal(pcre2_jit_compile(re, PCRE2_JIT_COMPLETE), 0);
    return re;
}

/* Every match of each as //g finds them: the same starts and ends. */
static size_t compare_on(pcre2_code *a, pcre2_code *b, const char *s, size_t len, const char *what)
{
    pcre2_match_data *ma = pcre2_match_data_create_from_pattern(a, NULL);
    pcre2_match_data *mb = pcre2_match_data_create_from_pattern(b, NULL);
    size_t off = 0, found = 0;
    for (unsigned round = 0; round <= len + 1; round++) {
        int ra = pcre2_match(a, (PCRE2_SPTR)s, len, off, 0, ma, NULL);
        int rb = pcre2_match(b, (PCRE2_SPTR)s, len, off, 0, mb, NULL);
        if ((ra >= 0) != (rb >= 0))
            fail_msg("%s on \"%.*s\" at %zu: %d vs %d", what, (int)len, s, off, ra, rb);
        if (ra < 0) {
            assert_int_equal(ra, PCRE2_ERROR_NOMATCH);
            break;
        }
        PCRE2_SIZE *oa = pcre2_get_ovector_pointer(ma), *ob = pcre2_get_ovector_pointer(mb);
        if (oa[0] != ob[0] || oa[1] != ob[1])
            fail_msg("%s on \"%.*s\": [%zu,%zu) vs [%zu,%zu)", what, (int)len, s, (size_t)oa[0],
                     (size_t)oa[1], (size_t)ob[0], (size_t)ob[1]);
        found++;
        off = oa[1] > off ? oa[1] : off + 1;
        if (off > len)
            break;
    }
    pcre2_match_data_free(ma);
    pcre2_match_data_free(mb);
    return found;
}

struct diff_case {
    const char *pattern;
    uint32_t flags;
};

static const struct diff_case diffs[] = {
    {"(?:ab|a){3}c", 0},
    {"(?:a|ab){2,4}b", 0},
    {"(?:a|ab){2,4}?b", 0},
    {"(?:a|ab){2,4}+b", 0},
    {"(?:x?){2,}y", 0},
    {"(?:a?b?){3,}c", 0},
    {"(?:a|b){0,3}?c", 0},
    {"(?:a|b){0,3}c", 0},
    {"(?:ab|a){2,3}+b", 0},
    {"(a|ab)(?:c|bcd){2}(d*)", 0},
    {"^(?:[a-c]+d){2}$", PCRE2_MULTILINE},
    {"(?:(?:a|b){1,2}c){2,3}", 0},
    {"(?>a+|b){2}b", 0},
    {"(?i:ab){2}", 0},
    {"(?:a(?i)b){2}", 0},
    {"(?:AB|a){2}", PCRE2_CASELESS},
    {"(?:abcd|bc|d)x(?:abcd|bc|d)?y", 0},
    {"(?:ax|cd|db|x)(?:ax|cd|db|x)+", 0},
    {"(?=(?:ab){2})a", 0},
    {"(?<=x)(?:ab|b){2}", 0},
    {"(?:\\w+\\s?){2,4}d", 0},
    {"(?:a|ab){1,3}?b$", 0},
    {"(?:[^a]|aa){2,}", 0},
    {"(?:a|(b)){3}", 0},
    {"(?:(?:ab|ba)(?:x|y)?){1,5}d", PCRE2_DOTALL},
    {"\\b(?:a|b\\b){2}", 0},
    {"(?:.|\\n){2}x", 0},
};

/* All strings over the alphabet up to a length, one after the other. */
static void all_subjects(pcre2_code *a, pcre2_code *b, const char *what, size_t *matched)
{
    static const char alpha[] = "abcdxy \n";
    char s[6];
    unsigned idx[6];
    for (size_t len = 0; len <= 5; len++) {
        unsigned total = 1;
        for (size_t k = 0; k < len; k++)
            total *= sizeof(alpha) - 1;
        for (unsigned t = 0; t < total; t++) {
            unsigned v = t;
            for (size_t k = 0; k < len; k++) {
                idx[k] = v % (sizeof(alpha) - 1);
                v /= sizeof(alpha) - 1;
                s[k] = alpha[idx[k]];
            }
            *matched += compare_on(a, b, s, len, what) > 0;
        }
    }
}

static void test_same_matches(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(diffs) / sizeof(diffs[0]); i++) {
        const char *p = diffs[i].pattern;
        char *out = NULL;
        size_t n = 0;
        if (sa_bigre_rewrite(p, strlen(p), diffs[i].flags, &out, &n) != 1)
            fail_msg("%s: not rewritten", p);
        for (int jit = 0; jit <= 1; jit++) {
            pcre2_code *a = compile(p, strlen(p), diffs[i].flags, jit);
            pcre2_code *b = compile(out, n, diffs[i].flags, jit);
            size_t matched = 0;
            all_subjects(a, b, p, &matched);
            /* a comparison that never matches would prove nothing */
            if (matched == 0)
                fail_msg("%s: no subject matches", p);
            pcre2_code_free(a);
            pcre2_code_free(b);
        }
        free(out);
    }
}

static const char *const forms[] = {
    "1. Your full name: ____________\n2. Your address: ____________\n"
    "3. Your phone number: ________\n4. Your age: ________\n5. Your occupation: _______\n",
    "1) Full Name ..........\n2) Home Address ..........\n3) Mobile Phone ..........\n"
    "4) Marital Status ..........\n5) Country ..........\n6) Sex ..........\n",
    "Name/Address/Phone/Age/Occupation",
    "Your name, your address, your telephone, your sex, your country, your bank name",
    "a) name: ___ b) city: ___ c) fax: ___ d) religion: ___",
    "1. Name: ____ 2. Address: ____ 3. Phone: ____",
    "Please send your name and address to the office.",
    "Name: John\nAddress: 12 Main Street\nPhone: 555 1234\n",
    "[1] first name -----\n[2] last name -----\n[3] email -----\n[4] password -----\n"
    "[5] login name -----\n",
    "* passport number = \n* driver's license =\n* ref number = \n* bank account name =\n"
    "* date of birth = \n",
    "",
};

#define FF_SHORT1 "(?:" FF_ITEM_LNNO "(?:" FF_BLANK2 "|" ANDOR ")){3}"
#define FF_SMALL1 "(?:" FF_ITEM_LNNO FF_TAIL "){2}"
#define FF_SMALL2 "(?:" FF_ITEM FF_TAIL "){2}"
#define FF_LONG1  "(?:" FF_ITEM_LNNO FF_TAIL "){5}"
#define FF_LONG2  "(?:" FF_ITEM FF_TAIL "){5}"
#define FF_PARTIAL                                                                                 \
    "^\\s?" FF_LNNO "?" FF_YOUR "(?:" FF_ALL ANDOR "?){1,3}" FF_SUFFIX "(?:" FF_BLANK1             \
    "|(?:[-=_.,:;*\\s]|=20){1,4}$)"
#define FF_LOAN1 FF_YOUR FF_L1 FF_SUFFIX "(?:" FF_BLANK1 "|" FF_BLANK2 "$)"

static void compare_forms(const char *p, uint32_t flags, size_t want_matched)
{
    char *out = NULL;
    size_t n = 0;
    assert_int_equal(sa_bigre_rewrite(p, strlen(p), flags, &out, &n), 1);
    for (int jit = 0; jit <= 1; jit++) {
        pcre2_code *a = compile(p, strlen(p), flags, jit);
        pcre2_code *b = compile(out, n, flags, jit);
        size_t matched = 0;
        for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
            matched += compare_on(a, b, forms[i], strlen(forms[i]), "form") > 0;
        assert_int_equal(matched, want_matched);
        pcre2_code_free(a);
        pcre2_code_free(b);
    }
    free(out);
}

static void test_form_patterns(void **state)
{
    (void)state;
    compare_forms(FF_SMALL1, PCRE2_CASELESS, 6);
    compare_forms(FF_SMALL2, PCRE2_CASELESS, 5);
    compare_forms(FF_PARTIAL, PCRE2_CASELESS | PCRE2_MULTILINE, 6);
    compare_forms(FF_LOAN1, PCRE2_CASELESS, 1);
}

/* What PCRE2 refuses compiles rewritten and finds the forms Perl's
 * (?aa)(?i) of the same pattern finds (SpamAssassin 4.0 on Perl 5.36):
 * a bit per form. */
static void test_long_form(void **state)
{
    (void)state;
    static const char *const longs[] = {FF_LONG1, FF_LONG2, FF_SHORT1};
    static const unsigned want[] = {0x103, 0x8, 0x333};
    for (size_t k = 0; k < 3; k++) {
        const char *p = longs[k];
        int err;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)p, strlen(p), PCRE2_CASELESS, &err, &off, NULL);
        if (k < 2) {
            assert_null(re);
            assert_int_equal(err, PCRE2_ERROR_PATTERN_TOO_LARGE);
        }
        pcre2_code_free(re);
        char *out = NULL;
        size_t n = 0;
        assert_int_equal(sa_bigre_rewrite(p, strlen(p), PCRE2_CASELESS, &out, &n), 1);
        pcre2_code *b = compile(out, n, PCRE2_CASELESS, true);
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(b, NULL);
        unsigned matched = 0;
        for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
            if (pcre2_match(b, (PCRE2_SPTR)forms[i], strlen(forms[i]), 0, 0, md, NULL) >= 0)
                matched |= 1u << i;
        assert_int_equal(matched, want[k]);
        pcre2_match_data_free(md);
        pcre2_code_free(b);
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),       cmocka_unit_test(test_extended_refused),
        cmocka_unit_test(test_same_matches), cmocka_unit_test(test_form_patterns),
        cmocka_unit_test(test_long_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
