/*
 * The literal prefilter never drops a SpamAssassin rule that could match:
 * every rule of the installed SpamAssassin files (Debian's spamassassin
 * package), loaded once with the prefilter and once without, over a corpus
 * of generated messages, must give exactly the same hits per message.
 *
 * The corpus is built to make rules fire and to sit on the prefilter's
 * edges: the words of the rules' own patterns (so their literals occur,
 * PCRE2 runs, and many rules hit), those words broken by the separators
 * obfuscation rules look for, cut short, cased oddly, split over lines and
 * HTML, beside high-bit octets and random ASCII.  The test also asserts
 * the corpus makes rules hit and the prefilter skips rules, so it cannot
 * pass by testing nothing.  Deterministic: a fixed generator seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rules/rules.h"
#include "rules/rules_int.h"

#define NMSG     400
#define MAXWORDS 20000

static uint32_t seed = 20261207;

static uint32_t rnd(void)
{
    seed = seed * 1103515245u + 12345u;
    return seed >> 8;
}

static struct rules *load(bool prefilter)
{
    struct rules_limits lim = {.match_limit = RULES_DEFAULT_MATCH_LIMIT,
                               .depth_limit = RULES_DEFAULT_DEPTH_LIMIT,
                               .heap_limit_kib = RULES_DEFAULT_HEAP_LIMIT_KIB,
                               .no_prefilter = !prefilter};
    struct rules_sa_opts sa = {0};
    struct rules *r = NULL;
    struct rules_errors errs = {0};
    struct rules_sa_report rep = {0};
    int rc = rules_load_sa(NULL, 0, &sa, &lim, &r, &errs, &rep);
    rules_errors_free(&errs);
    rules_sa_report_free(&rep);
    assert_int_equal(rc, 0);
    return r;
}

/* The words of every pattern: runs of letters, digits and spaces. */
static size_t pattern_words(const struct rules *r, char **words)
{
    size_t n = 0;
    for (size_t i = 0; i < rules_count(r) && n < MAXWORDS; i++) {
        size_t len;
        const char *p = rules_rule_pattern(r, i, &len);
        if (p == NULL)
            continue;
        size_t k = 0;
        while (k < len && n < MAXWORDS) {
            while (k < len && !isalnum((unsigned char)p[k]))
                k++;
            size_t s = k;
            while (k < len && (isalnum((unsigned char)p[k]) || p[k] == ' '))
                k++;
            /* \s, \b, \d escapes leave their letter glued to a word */
            if (s > 0 && p[s - 1] == '\\')
                s++;
            if (k > s + 2) {
                words[n] = strndup(p + s, k - s);
                assert_non_null(words[n]);
                n++;
            }
        }
    }
    return n;
}

static void put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len + n + 1 >= cap)
        return;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
}

/* One word as a message shows it: plain, cased, cut, spaced out. */
static void put_word(char *buf, size_t cap, size_t *len, const char *w)
{
    size_t wl = strlen(w);
    char t[512];
    if (wl >= sizeof(t) / 3)
        wl = sizeof(t) / 3 - 1;
    switch (rnd() % 8) {
    case 0: /* upper case */
        for (size_t k = 0; k < wl; k++)
            t[k] = (char)toupper((unsigned char)w[k]);
        put(buf, cap, len, t, wl);
        break;
    case 1: /* cut short: a literal's edge */
        put(buf, cap, len, w, wl > 3 ? wl - 1 - rnd() % 2 : wl);
        break;
    case 2: { /* letters apart: obfuscation rules */
        static const char seps[] = "._- *";
        char sep = seps[rnd() % 5];
        size_t tl = 0;
        for (size_t k = 0; k < wl; k++) {
            t[tl++] = w[k];
            t[tl++] = sep;
        }
        put(buf, cap, len, t, tl);
        break;
    }
    case 3: /* a line break instead of a space */
        for (size_t k = 0; k < wl; k++)
            t[k] = w[k] == ' ' ? '\n' : w[k];
        put(buf, cap, len, t, wl);
        break;
    default:
        put(buf, cap, len, w, wl);
        break;
    }
}

static const char *const filler[] = {"Dear friend, ",
                                     "you have won ",
                                     "$1,500,000.00 USD ",
                                     "click here ",
                                     "http://www.example.com/x ",
                                     "unsubscribe ",
                                     "\xe9\xe8\xe0 ",
                                     "\xc3\xa9t\xc3\xa9 ",
                                     "=20 ",
                                     "100% ",
                                     "FREE!!! ",
                                     "  ",
                                     "your password ",
                                     "bank account ",
                                     "please reply ",
                                     "<b>",
                                     "</b>",
                                     "&nbsp;",
                                     "\r\n\r\n",
                                     "Subject: ",
                                     "million dollars ",
                                     "V1AGRA ",
                                     "c1al1s ",
                                     "v-i-a-g-r-a ",
                                     "0123456789abcdef0123 "};

static char *message(char **words, size_t nwords, size_t *out_len)
{
    size_t cap = 16384, len = 0;
    char *m = malloc(cap);
    assert_non_null(m);
    m[0] = '\0';
    bool html = rnd() % 3 == 0;
    char head[512];
    int hl = snprintf(head, sizeof(head),
                      "From: \"%s\" <user%u@example.org>\r\nTo: you@example.net\r\n"
                      "Subject: %s\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n"
                      "Message-ID: <%u@example.org>\r\nMIME-Version: 1.0\r\n"
                      "Content-Type: text/%s; charset=iso-8859-1\r\n\r\n",
                      words[rnd() % nwords], rnd() % 1000, words[rnd() % nwords], rnd(),
                      html ? "html" : "plain");
    put(m, cap, &len, head, (size_t)hl);
    if (html)
        put(m, cap, &len, "<html><body><p>", 15);
    unsigned pieces = 20 + rnd() % 80;
    for (unsigned k = 0; k < pieces; k++) {
        unsigned what = rnd() % 10;
        if (what < 7) {
            put_word(m, cap, &len, words[rnd() % nwords]);
        } else if (what < 9) {
            const char *f = filler[rnd() % (sizeof(filler) / sizeof(filler[0]))];
            put(m, cap, &len, f, strlen(f));
        } else {
            char junk[16];
            for (size_t j = 0; j < sizeof(junk); j++)
                junk[j] = (char)(rnd() % 3 == 0 ? 0x80 + rnd() % 128 : 0x20 + rnd() % 95);
            put(m, cap, &len, junk, sizeof(junk));
        }
        const char *gap = rnd() % 7 == 0 ? (html ? "</p><p>" : "\r\n") : " ";
        put(m, cap, &len, gap, strlen(gap));
    }
    if (html)
        put(m, cap, &len, "</p></body></html>\r\n", 20);
    *out_len = len;
    return m;
}

static void hits_of(struct rules *r, const char *text, size_t len, char *out, size_t cap,
                    size_t *nhits, unsigned char *fired)
{
    struct rules_msg *m = rules_msg_parse(text, len);
    assert_non_null(m);
    struct rules_tx *tx = rules_tx_new(r);
    assert_non_null(tx);
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
    assert_non_null(o);
    size_t ol = 0;
    out[0] = '\0';
    for (size_t i = 0; i < o->nhits; i++) {
        int w = snprintf(out + ol, cap - ol, "%s ", o->hits[i].rule);
        if (w > 0 && (size_t)w < cap - ol)
            ol += (size_t)w;
        if (fired != NULL)
            for (size_t k = 0; k < rules_count(r); k++)
                if (strcmp(rules_rule_name(r, k), o->hits[i].rule) == 0)
                    fired[k] = 1;
    }
    *nhits += o->nhits;
    rules_tx_free(tx);
    rules_msg_free(m);
}

static void test_sa_rules_same_hits(void **state)
{
    (void)state;
    if (access("/usr/share/spamassassin/20_body_tests.cf", R_OK) != 0)
        skip(); /* Debian's spamassassin package is not installed */
    struct rules *with = load(true), *without = load(false);
    assert_int_equal(rules_count(with), rules_count(without));
    size_t filtered = 0;
    for (size_t i = 0; i < with->n; i++)
        filtered += with->v[i].pf_slot >= 0;
    assert_true(filtered > 400);

    char **words = calloc(MAXWORDS, sizeof(char *));
    assert_non_null(words);
    size_t nwords = pattern_words(with, words);
    assert_true(nwords > 1000);
    unsigned char *fired = calloc(rules_count(with), 1);
    assert_non_null(fired);
    size_t nwith = 0, nwithout = 0;
    static char a[65536], b[65536];
    for (int k = 0; k < NMSG; k++) {
        size_t len;
        char *msg = message(words, nwords, &len);
        hits_of(with, msg, len, a, sizeof(a), &nwith, fired);
        hits_of(without, msg, len, b, sizeof(b), &nwithout, NULL);
        if (strcmp(a, b) != 0)
            print_message("message %d:\n%s\nwith: %s\nwithout: %s\n", k, msg, a, b);
        assert_string_equal(a, b);
        free(msg);
    }
    /* the corpus exercised the prefilter: many filtered rules hit */
    size_t fired_filtered = 0, fired_all = 0, fired_skeleton = 0, skeleton = 0;
    for (size_t i = 0; i < with->n; i++) {
        fired_all += fired[i];
        fired_filtered += fired[i] && with->v[i].pf_slot >= 0;
        fired_skeleton += fired[i] && with->v[i].pf_slot == RULES_PF_SKELETON;
        skeleton += with->v[i].pf_slot == RULES_PF_SKELETON;
    }
    print_message("%zu messages, %zu hits, %zu rules hit, %zu of them prefiltered, %zu of the "
                  "%zu filtered by the body's skeleton\n",
                  (size_t)NMSG, nwith, fired_all, fired_filtered, fired_skeleton, skeleton);
    assert_int_equal(nwith, nwithout);
    assert_true(fired_filtered >= 100);
    assert_true(skeleton >= 20);
    assert_true(fired_skeleton >= 5);
    for (size_t i = 0; i < nwords; i++)
        free(words[i]);
    free(words);
    free(fired);
    rules_unref(with);
    rules_unref(without);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sa_rules_same_hits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
