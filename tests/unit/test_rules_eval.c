/*
 * Unit tests for rule evaluation: each envelope stage and its actions,
 * recipients judged alone (a refused recipient's hits do not count), meta
 * logic with && || ! parentheses and counts, per-recipient metas, scores and
 * shadow rules, action precedence, thresholds with tag headers and subject
 * prefix, the SpamAssassin-style report, accept (allow-list) short-cuts, a
 * new HELO or MAIL forgetting old hits, reference counting across a reload,
 * threads sharing one rule set, and the PCRE2 limits and per-message budget
 * against a catastrophic-backtracking pattern on hostile input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rules/rules.h"

static struct rules *load_lim(const char *src, const struct rules_limits *lim)
{
    struct rules_errors errs = {0};
    struct rules *r = NULL;
    int rc = rules_load_buffer("t.rules", src, strlen(src), lim, &r, &errs);
    for (size_t i = 0; i < errs.n; i++) {
        char *s = rules_error_format(&errs.v[i]);
        free(s);
    }
    rules_errors_free(&errs);
    assert_int_equal(rc, 0);
    return r;
}

static struct rules *load(const char *src)
{
    return load_lim(src, NULL);
}

static struct rules_msg *msg(const char *text)
{
    return rules_msg_parse(text, strlen(text));
}

static bool has_hit(const struct rules_outcome *o, const char *name)
{
    for (size_t i = 0; i < o->nhits; i++)
        if (strcmp(o->hits[i].rule, name) == 0)
            return true;
    return false;
}

static bool near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

static void test_envelope_stages(void **state)
{
    (void)state;
    struct rules *r = load("rule NET client_addr 192.0.2.0/24 score 1\n"
                           "rule NAME client_name /\\.dyn\\./ score 0.5\n"
                           "rule HELO helo /^localhost$/ reject \"550 5.7.1 Bad HELO\"\n"
                           "rule FROM mail_from /@spam\\.example$/i tempfail\n"
                           "rule CFO rcpt_to /^cfo@/ reject \"550 5.7.1 Not for you\"\n");
    struct rules_tx *conn = rules_tx_new(r);
    rules_unref(r); /* the tx holds its own reference */
    struct rules_facts f = {.client_addr = "192.0.2.9", .client_name = "a.dyn.example"};
    const struct rules_outcome *o = rules_tx_eval(conn, RULES_STAGE_CONNECT, &f, NULL);
    assert_int_equal(o->verdict, RULES_CONTINUE);
    assert_int_equal(o->nhits, 2);
    assert_string_equal(o->hits[0].rule, "NET");
    assert_string_equal(o->hits[0].target, "client_addr");
    assert_string_equal(o->hits[0].text, "192.0.2.9");
    assert_true(near(o->score, 1.5));

    f.helo = "localhost";
    o = rules_tx_eval(conn, RULES_STAGE_HELO, &f, NULL);
    assert_int_equal(o->verdict, RULES_REJECT);
    assert_string_equal(o->reply, "550 5.7.1 Bad HELO");
    assert_string_equal(o->decided_by, "HELO");
    /* a second HELO replaces the first one's hits */
    f.helo = "mx.example.org";
    o = rules_tx_eval(conn, RULES_STAGE_HELO, &f, NULL);
    assert_int_equal(o->verdict, RULES_CONTINUE);
    assert_int_equal(rules_tx_hit_count(conn), 2);

    struct rules_tx *tx = rules_tx_fork(conn);
    assert_int_equal(rules_tx_hit_count(tx), 2);
    f.mail_from = "x@SPAM.example";
    o = rules_tx_eval(tx, RULES_STAGE_MAIL, &f, NULL);
    assert_int_equal(o->verdict, RULES_TEMPFAIL);
    assert_string_equal(o->reply, "451 4.7.1 Try again later");
    /* a new MAIL starts over */
    f.mail_from = "alice@example.org";
    o = rules_tx_eval(tx, RULES_STAGE_MAIL, &f, NULL);
    assert_int_equal(o->verdict, RULES_CONTINUE);
    assert_int_equal(rules_tx_hit_count(tx), 2);

    f.rcpt = "cfo@example.org";
    o = rules_tx_eval(tx, RULES_STAGE_RCPT, &f, NULL);
    assert_int_equal(o->verdict, RULES_REJECT);
    assert_string_equal(o->hits[0].rcpt, "cfo@example.org");
    assert_false(o->hits[0].counted);
    f.rcpt = "bob@example.org";
    o = rules_tx_eval(tx, RULES_STAGE_RCPT, &f, NULL);
    assert_int_equal(o->verdict, RULES_CONTINUE);

    struct rules_msg *m = msg("Subject: hi\r\n\r\nbody\r\n");
    o = rules_tx_eval(tx, RULES_STAGE_CONTENT, &f, m);
    assert_int_equal(o->verdict, RULES_CONTINUE);
    assert_true(near(o->score, 1.5));
    /* the refused recipient's rule is not in the report */
    assert_string_equal(o->report_status, "No, score=1.5 required=5.0 tests=NAME,NET");
    assert_string_equal(o->report_score, "1.5");
    assert_string_equal(o->report_level, "*");
    rules_msg_free(m);
    rules_tx_free(tx);
    rules_tx_free(conn);
}

static void test_meta(void **state)
{
    (void)state;
    struct rules *r = load("rule A header Subject /a/\n"
                           "rule B header Subject /b/\n"
                           "rule C header Subject /c/\n"
                           "rule D header Subject /d/\n"
                           "rule TWO meta A + B + C >= 2 score 1\n"
                           "rule AND meta A && (B || C) && !D score 1\n"
                           "rule EQ meta (A + B + C + D) == 4 score 1\n"
                           "rule NOTNOT meta !!A score 1\n"
                           "rule PREC meta !A + B > 0 score 1\n"
                           "rule CHAIN meta TWO && AND score 1\n"
                           "rule ARITH meta (A + B) * 3 - 1 >= 5 score 1\n"
                           "rule DIV meta (A + B + C) / 2 > 1.25 score 1\n"
                           "rule NEG meta -A + 1 == 0 && 0.5 * 4 / 0 == 0 score 1\n");
    static const struct {
        const char *subject;
        const char *hits[12];
    } cases[] = {
        {"a", {"A", "NOTNOT", "NEG", NULL}},
        {"ab", {"A", "B", "TWO", "AND", "NOTNOT", "PREC", "CHAIN", "ARITH", "NEG"}},
        {"abd", {"A", "B", "D", "TWO", "NOTNOT", "PREC", "ARITH", "NEG"}},
        {"c", {"C", "PREC", NULL}},
        {"abcd", {"A", "B", "C", "D", "TWO", "EQ", "NOTNOT", "PREC", "ARITH", "DIV", "NEG"}},
        {"", {"PREC", NULL}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[100];
        snprintf(text, sizeof(text), "Subject: %s\r\n\r\n", cases[i].subject);
        struct rules_msg *m = msg(text);
        struct rules_tx *tx = rules_tx_new(r);
        const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
        size_t want = 0;
        for (size_t k = 0; k < 12 && cases[i].hits[k] != NULL; k++, want++) {
            if (!has_hit(o, cases[i].hits[k]))
                print_message("subject %s: no %s\n", cases[i].subject, cases[i].hits[k]);
            assert_true(has_hit(o, cases[i].hits[k]));
        }
        if (o->nhits != want) {
            for (size_t k = 0; k < o->nhits; k++)
                print_message("subject %s: hit %s\n", cases[i].subject, o->hits[k].rule);
        }
        assert_int_equal(o->nhits, want);
        rules_tx_free(tx);
        rules_msg_free(m);
    }
    rules_unref(r);
}

/* A meta over mail_from and rcpt_to acts per recipient, at RCPT. */
static void test_meta_per_recipient(void **state)
{
    (void)state;
    struct rules *r = load("rule __FREEMAIL mail_from /@freemail\\.example$/\n"
                           "rule __CFO rcpt_to /^cfo@/\n"
                           "rule FREEMAIL_TO_CFO meta __FREEMAIL && __CFO reject\n");
    struct rules_tx *tx = rules_tx_new(r);
    struct rules_facts f = {.mail_from = "boss@freemail.example"};
    assert_int_equal(rules_tx_eval(tx, RULES_STAGE_MAIL, &f, NULL)->verdict, RULES_CONTINUE);
    f.rcpt = "bob@example.org";
    assert_int_equal(rules_tx_eval(tx, RULES_STAGE_RCPT, &f, NULL)->verdict, RULES_CONTINUE);
    f.rcpt = "cfo@example.org";
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_RCPT, &f, NULL);
    assert_int_equal(o->verdict, RULES_REJECT);
    assert_string_equal(o->decided_by, "FREEMAIL_TO_CFO");
    assert_string_equal(o->reply, "550 5.7.1 Rejected by policy");
    f.rcpt = "carol@example.org";
    assert_int_equal(rules_tx_eval(tx, RULES_STAGE_RCPT, &f, NULL)->verdict, RULES_CONTINUE);
    rules_tx_free(tx);
    rules_unref(r);
}

static const char *thresholds = "rule S1 header Subject /one/ score 3\n"
                                "rule S2 header Subject /two/ score 4\n"
                                "rule S3 header Subject /three/ score 5\n"
                                "rule NEG header X-Trusted /yes/ score -6\n"
                                "rule SH header Subject /one/ score 100 shadow\n"
                                "threshold tag 5 add-header \"X-Spam-Flag: YES\" "
                                "subject-prefix \"[SPAM] \"\n"
                                "threshold quarantine 8 \"high score\"\n"
                                "threshold reject 12 \"550 5.7.1 Spam\"\n";

static const struct rules_outcome *content(struct rules_tx *tx, struct rules_msg **m,
                                           const char *text)
{
    *m = msg(text);
    return rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, *m);
}

static void test_scores_and_thresholds(void **state)
{
    (void)state;
    struct rules *r = load(thresholds);
    struct rules_msg *m;
    struct rules_tx *tx = rules_tx_new(r);

    const struct rules_outcome *o = content(tx, &m, "Subject: one\r\n\r\n");
    assert_int_equal(o->verdict, RULES_CONTINUE);
    assert_true(near(o->score, 3)); /* the shadow rule's 100 does not count */
    assert_false(o->tagged);
    assert_false(o->spam);
    assert_true(has_hit(o, "SH"));
    assert_int_equal(o->nheaders, 0);
    assert_null(o->subject_prefix);
    assert_string_equal(o->report_status, "No, score=3.0 required=5.0 tests=S1");
    rules_msg_free(m);

    o = content(tx, &m, "Subject: one two\r\n\r\n");
    assert_int_equal(o->verdict, RULES_CONTINUE);
    assert_true(o->tagged);
    assert_true(o->spam);
    assert_int_equal(o->nheaders, 1);
    assert_string_equal(o->headers[0].name, "X-Spam-Flag");
    assert_string_equal(o->headers[0].value, "YES");
    assert_string_equal(o->subject_prefix, "[SPAM] ");
    assert_string_equal(o->decided_by, "threshold tag");
    assert_string_equal(o->report_status, "Yes, score=7.0 required=5.0 tests=S1,S2");
    assert_string_equal(o->report_level, "*******");
    rules_msg_free(m);

    o = content(tx, &m, "Subject: two three\r\n\r\n");
    assert_int_equal(o->verdict, RULES_QUARANTINE);
    assert_string_equal(o->reason, "high score");
    assert_true(o->tagged);
    rules_msg_free(m);

    o = content(tx, &m, "Subject: one two three\r\n\r\n");
    assert_int_equal(o->verdict, RULES_REJECT);
    assert_string_equal(o->reply, "550 5.7.1 Spam");
    assert_string_equal(o->decided_by, "threshold reject");
    rules_msg_free(m);

    o = content(tx, &m, "Subject: one two three\r\nX-Trusted: yes\r\n\r\n");
    assert_int_equal(o->verdict, RULES_CONTINUE);
    assert_true(near(o->score, 6));
    assert_true(o->tagged);
    rules_msg_free(m);

    o = content(tx, &m, "Subject: x\r\nX-Trusted: yes\r\n\r\n");
    assert_string_equal(o->report_status, "No, score=-6.0 required=5.0 tests=NEG");
    assert_null(o->report_level);
    rules_msg_free(m);
    rules_tx_free(tx);
    rules_unref(r);
}

static void test_actions(void **state)
{
    (void)state;
    struct rules *r = load("rule Q header Subject /q/ quarantine\n"
                           "rule D header Subject /d/ discard\n"
                           "rule T header Subject /t/ tempfail \"452 4.3.1 later\"\n"
                           "rule R header Subject /r/ reject\n"
                           "rule A header Subject /a/ accept\n"
                           "rule H header Subject /h/ add-header \"X-Seen: h\" score 20\n"
                           "rule SR header Subject /s/ reject shadow\n"
                           "rule EQ mail_from /q@/ quarantine \"from q\"\n"
                           "rule EH mail_from /h@/ add-header \"X-Env: h\"\n"
                           "threshold reject 10\n");
    static const struct {
        const char *subject;
        enum rules_verdict v;
        const char *by;
    } cases[] = {
        {"q", RULES_QUARANTINE, "Q"}, {"qd", RULES_DISCARD, "D"},
        {"qdt", RULES_TEMPFAIL, "T"}, {"qdtr", RULES_REJECT, "R"},
        {"qdtra", RULES_ACCEPT, "A"}, {"h", RULES_REJECT, "threshold reject"},
        {"rh", RULES_REJECT, "R"},    {"ah", RULES_ACCEPT, "A"},
        {"s", RULES_CONTINUE, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[100];
        snprintf(text, sizeof(text), "Subject: %s\r\n\r\n", cases[i].subject);
        struct rules_msg *m;
        struct rules_tx *tx = rules_tx_new(r);
        const struct rules_outcome *o = content(tx, &m, text);
        assert_int_equal(o->verdict, cases[i].v);
        if (cases[i].by != NULL)
            assert_string_equal(o->decided_by, cases[i].by);
        else
            assert_null(o->decided_by);
        if (cases[i].v == RULES_REJECT && strcmp(cases[i].by, "R") == 0)
            assert_string_equal(o->reply, "550 5.7.1 Rejected by policy");
        if (cases[i].v == RULES_REJECT && strcmp(cases[i].by, "threshold reject") == 0)
            assert_string_equal(o->reply, "550 5.7.1 Message content rejected");
        if (cases[i].v == RULES_TEMPFAIL)
            assert_string_equal(o->reply, "452 4.3.1 later");
        if (cases[i].v == RULES_QUARANTINE)
            assert_string_equal(o->reason, "Q");
        /* what is not delivered as ham is spam in the report, whatever the score */
        bool spam = cases[i].v != RULES_CONTINUE && cases[i].v != RULES_ACCEPT;
        if (strncmp(o->report_status, spam ? "Yes, " : "No, ", spam ? 5 : 4) != 0)
            fail_msg("%s: %s", cases[i].subject, o->report_status);
        rules_tx_free(tx);
        rules_msg_free(m);
    }

    /* envelope quarantine and add-header wait for the message */
    struct rules_tx *tx = rules_tx_new(r);
    struct rules_facts f = {.mail_from = "q@h@example.org"};
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_MAIL, &f, NULL);
    assert_int_equal(o->verdict, RULES_CONTINUE);
    assert_int_equal(o->nhits, 2);
    struct rules_msg *m;
    o = content(tx, &m, "Subject: none\r\n\r\n");
    assert_int_equal(o->verdict, RULES_QUARANTINE);
    assert_string_equal(o->reason, "from q");
    assert_string_equal(o->report_status, "Yes, score=0.0 required=10.0 tests=EH,EQ");
    assert_int_equal(o->nheaders, 1);
    assert_string_equal(o->headers[0].name, "X-Env");
    rules_msg_free(m);
    rules_tx_free(tx);
    rules_unref(r);
}

static void test_accept_shortcut(void **state)
{
    (void)state;
    struct rules *r = load("rule OURS client_addr 10.0.0.0/8,fd00::/8 accept score -5\n"
                           "rule BADHELO helo /./ reject\n"
                           "rule GT body /GTUBE/ reject\n");
    struct rules_tx *conn = rules_tx_new(r);
    struct rules_facts f = {.client_addr = "fd00::1", .helo = "x"};
    const struct rules_outcome *o = rules_tx_eval(conn, RULES_STAGE_CONNECT, &f, NULL);
    assert_int_equal(o->verdict, RULES_ACCEPT);
    assert_int_equal(rules_tx_eval(conn, RULES_STAGE_HELO, &f, NULL)->verdict, RULES_ACCEPT);
    struct rules_tx *tx = rules_tx_fork(conn);
    struct rules_msg *m;
    o = content(tx, &m, "Subject: x\r\n\r\nGTUBE\r\n");
    assert_int_equal(o->verdict, RULES_ACCEPT);
    assert_string_equal(o->decided_by, "OURS");
    assert_int_equal(o->nhits, 0);
    assert_string_equal(o->report_status, "No, score=-5.0 required=5.0 tests=OURS");
    rules_msg_free(m);
    rules_tx_free(tx);

    /* not ours: HELO refused, content refused */
    f.client_addr = "192.0.2.1";
    assert_int_equal(rules_tx_eval(conn, RULES_STAGE_CONNECT, &f, NULL)->verdict, RULES_CONTINUE);
    assert_int_equal(rules_tx_eval(conn, RULES_STAGE_HELO, &f, NULL)->verdict, RULES_REJECT);
    tx = rules_tx_fork(conn);
    o = content(tx, &m, "Subject: x\r\n\r\nGTUBE\r\n");
    assert_int_equal(o->verdict, RULES_REJECT);
    rules_msg_free(m);
    rules_tx_free(tx);
    rules_tx_free(conn);
    rules_unref(r);
}

static void test_report_folding(void **state)
{
    (void)state;
    char src[4096] = "";
    size_t n = 0;
    for (int i = 0; i < 12; i++)
        n +=
            (size_t)snprintf(src + n, sizeof(src) - n,
                             "rule A_FAIRLY_LONG_RULE_NAME_%02d header Subject /x/ score 0.5\n", i);
    snprintf(src + n, sizeof(src) - n, "rule __HIDDEN header Subject /x/\n");
    struct rules *r = load(src);
    struct rules_tx *tx = rules_tx_new(r);
    struct rules_msg *m;
    const struct rules_outcome *o = content(tx, &m, "Subject: x\r\n\r\n");
    assert_int_equal(o->nhits, 13);
    const char *s = o->report_status;
    assert_null(strstr(s, "__HIDDEN"));
    static const char start[] =
        "Yes, score=6.0 required=5.0 tests=A_FAIRLY_LONG_RULE_NAME_00,\r\n\t";
    assert_memory_equal(s, start, sizeof(start) - 1);
    /* folded: no line longer than 78 with the field name, every fold CRLF TAB */
    size_t line = strlen("X-Spam-Status: ");
    for (const char *p = s; *p; p++) {
        if (*p == '\r') {
            assert_int_equal(p[1], '\n');
            assert_int_equal(p[2], '\t');
            assert_true(line <= 78);
            line = 0;
            p++;
            continue;
        }
        line++;
    }
    assert_true(line <= 78);
    assert_non_null(strstr(s, "A_FAIRLY_LONG_RULE_NAME_11"));
    rules_msg_free(m);
    rules_tx_free(tx);
    rules_unref(r);
}

/* The classic: (a+)+$ over "aaaa...!" backtracks exponentially. */
static char *hostile(size_t n)
{
    char *s = malloc(n + 64);
    assert_non_null(s);
    size_t k = (size_t)snprintf(s, 64, "Subject: ");
    memset(s + k, 'a', n);
    memcpy(s + k + n, "!\r\n\r\n", 6);
    return s;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_match_limit(void **state)
{
    (void)state;
    struct rules *r = load("rule EVIL header Subject /^(a+)+$/ score 1\n"
                           "rule EVIL_NOT header Subject !/^(a+)+$/ score 1\n"
                           "rule AFTER header Subject /aaa/ score 2\n");
    char *text = hostile(5000);
    struct rules_msg *m = msg(text);
    struct rules_tx *tx = rules_tx_new(r);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
    assert_true(seconds_since(&t0) < 10);
    /* both count as misses, even the negated one; the next rule runs */
    assert_false(has_hit(o, "EVIL"));
    assert_false(has_hit(o, "EVIL_NOT"));
    assert_true(has_hit(o, "AFTER"));
    assert_int_equal(o->nevents, 2);
    assert_string_equal(o->events[0].rule, "EVIL");
    assert_string_equal(o->events[0].what, "match limit");
    assert_false(o->budget_exceeded);
    rules_tx_free(tx);
    rules_msg_free(m);
    free(text);
    rules_unref(r);
}

static void test_budget(void **state)
{
    (void)state;
    /* a generous match limit, a tiny budget: the first slow rule spends it */
    struct rules_limits lim = {
        .match_limit = 5000000, .depth_limit = 100000, .heap_limit_kib = 20000, .budget_us = 1000};
    char src[4096] = "";
    size_t n = 0;
    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(src + n, sizeof(src) - n,
                              "rule SLOW_%02d header Subject /^(a+)+$/ score 1\n", i);
    snprintf(src + n, sizeof(src) - n, "rule LAST header Subject /a/ score 1\n");
    struct rules *r = load_lim(src, &lim);
    char *text = hostile(5000);
    struct rules_msg *m = msg(text);
    struct rules_tx *tx = rules_tx_new(r);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
    double took = seconds_since(&t0);
    assert_true(o->budget_exceeded);
    assert_false(has_hit(o, "LAST"));
    bool budget = false;
    for (size_t i = 0; i < o->nevents; i++)
        budget = budget || strcmp(o->events[i].what, "budget") == 0;
    assert_true(budget);
    /* far less than 20 full runs to the match limit */
    assert_true(o->nevents < 20);
    assert_true(took < 10);
    /* the budget is per message: a new evaluation starts afresh */
    rules_msg_free(m);
    m = msg("Subject: b\r\n\r\n");
    o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
    assert_false(o->budget_exceeded);
    rules_tx_free(tx);
    rules_msg_free(m);
    free(text);
    rules_unref(r);
}

/* Sessions in flight keep their rules: the tx outlives the loader's reference. */
static void test_reload_keeps_rules(void **state)
{
    (void)state;
    struct rules *old = load("rule OLD helo /x/ reject\n");
    struct rules_tx *conn = rules_tx_new(old);
    rules_unref(old);
    struct rules *fresh = load("rule NEW helo /x/ score 1\n");
    struct rules_facts f = {.helo = "x"};
    const struct rules_outcome *o = rules_tx_eval(conn, RULES_STAGE_HELO, &f, NULL);
    assert_int_equal(o->verdict, RULES_REJECT);
    assert_string_equal(o->hits[0].rule, "OLD");
    struct rules_tx *tx = rules_tx_fork(conn);
    rules_tx_free(conn);
    assert_string_equal(rules_rule_name(rules_tx_rules(tx), 0), "OLD");
    rules_tx_free(tx);
    struct rules_tx *next = rules_tx_new(fresh);
    o = rules_tx_eval(next, RULES_STAGE_HELO, &f, NULL);
    assert_int_equal(o->verdict, RULES_CONTINUE);
    assert_string_equal(o->hits[0].rule, "NEW");
    rules_tx_free(next);
    rules_unref(fresh);
}

struct worker {
    struct rules *r;
    int hits;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 200; i++) {
        struct rules_tx *tx = rules_tx_new(w->r);
        struct rules_msg *m = msg("Subject: hello world\r\n\r\nsome body text\r\n");
        const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
        w->hits += (int)o->nhits;
        rules_msg_free(m);
        rules_tx_free(tx);
    }
    return NULL;
}

static void test_threads_share(void **state)
{
    (void)state;
    struct rules *r = load("rule W header Subject /world/ score 1\nrule B body /body/ score 1\n");
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){rules_ref(r), 0};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    rules_unref(r);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].hits, 400);
        rules_unref(w[i].r);
    }
}

static void test_size_and_full(void **state)
{
    (void)state;
    struct rules *r = load("rule BIG size > 1k score 1\n"
                           "rule SMALL size <= 100 score 1\n"
                           "rule FULL full /^Subject: x\\r\\n\\r\\nend/ score 1\n"
                           "rule ALLH headers /^X-B: 2$/m score 1\n"
                           "rule RAWH headers:raw /=\\?utf-8\\?/i score 1\n");
    struct rules_tx *tx = rules_tx_new(r);
    struct rules_msg *m;
    const struct rules_outcome *o = content(tx, &m, "Subject: x\r\n\r\nend\r\n");
    assert_true(has_hit(o, "SMALL"));
    assert_true(has_hit(o, "FULL"));
    assert_false(has_hit(o, "BIG"));
    rules_msg_free(m);
    o = content(tx, &m, "X-A: =?utf-8?q?caf=C3=A9?=\r\nX-B: 2\r\n\r\nx\r\n");
    assert_true(has_hit(o, "ALLH"));
    assert_true(has_hit(o, "RAWH"));
    rules_msg_set_size(m, 5000);
    o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
    assert_true(has_hit(o, "BIG"));
    rules_msg_free(m);
    rules_tx_free(tx);
    rules_unref(r);
}

/* Plugins' symbols: symbol(NAME) in metas at whatever stage the symbol comes,
 * their scores in the thresholds' total, their names in the report. */
static void test_symbols(void **state)
{
    (void)state;
    struct rules *r = load("rule SPF_AND_BL meta symbol(SPF_FAIL) && symbol(DNSBL_ZEN) "
                           "reject \"550 5.7.1 SPF fail from a listed client\"\n"
                           "rule ONLY_BL meta symbol ( DNSBL_ZEN ) && !symbol(SPF_PASS) score 1\n"
                           "rule SUBJ header Subject /money/ score 1.5\n"
                           "threshold tag 4 add-header \"X-Spam-Flag: YES\"\n"
                           "threshold reject 6 \"550 5.7.1 Too spammy\"\n");
    struct rules_tx *conn = rules_tx_new(r);
    struct rules_symbol bl[] = {{"DNSBL_ZEN", 3.0}};
    struct rules_facts f = {.client_addr = "192.0.2.1", .symbols = bl, .nsymbols = 1};
    /* at connect only the blocklist is known: ONLY_BL hits, SPF_AND_BL waits */
    const struct rules_outcome *o = rules_tx_eval(conn, RULES_STAGE_CONNECT, &f, NULL);
    assert_int_equal(o->verdict, RULES_CONTINUE);
    assert_int_equal(o->nhits, 1);
    assert_string_equal(o->hits[0].rule, "ONLY_BL");
    assert_true(near(o->score, 4.0)); /* 1 (rule) + 3 (symbol) */

    /* at MAIL the SPF result is there too: the one-line rule refuses */
    struct rules_tx *tx = rules_tx_fork(conn);
    struct rules_symbol both[] = {{"DNSBL_ZEN", 3.0}, {"SPF_FAIL", 2.0}};
    f.symbols = both;
    f.nsymbols = 2;
    f.mail_from = "a@b.example";
    o = rules_tx_eval(tx, RULES_STAGE_MAIL, &f, NULL);
    assert_int_equal(o->verdict, RULES_REJECT);
    assert_string_equal(o->reply, "550 5.7.1 SPF fail from a listed client");
    assert_string_equal(o->decided_by, "SPF_AND_BL");
    assert_int_equal(o->nhits, 1); /* ONLY_BL hit at connect, not again */
    rules_tx_free(tx);

    /* another transaction, SPF passes: the total of rule and symbol scores
     * decides (1 + 3 - 0.5 + 1.5 = 5: tagged, not refused) */
    tx = rules_tx_fork(conn);
    struct rules_symbol pass[] = {{"DNSBL_ZEN", 3.0}, {"SPF_PASS", -0.5}};
    f.symbols = pass;
    o = rules_tx_eval(tx, RULES_STAGE_MAIL, &f, NULL);
    assert_int_equal(o->verdict, RULES_CONTINUE);
    struct rules_msg *m = msg("Subject: money\r\n\r\nx\r\n");
    o = rules_tx_eval(tx, RULES_STAGE_CONTENT, &f, m);
    assert_true(near(o->score, 5.0));
    assert_int_equal(o->verdict, RULES_CONTINUE);
    assert_true(o->tagged);
    assert_string_equal(o->report_status,
                        "Yes, score=5.0 required=4.0 tests=DNSBL_ZEN,ONLY_BL,SPF_PASS,\r\n\tSUBJ");
    assert_string_equal(o->report_score, "5.0");
    rules_msg_free(m);
    rules_tx_free(tx);

    /* a heavier symbol pushes the same message over the reject threshold */
    tx = rules_tx_fork(conn);
    struct rules_symbol heavy[] = {{"DNSBL_ZEN", 3.0}, {"GREYLIST_PASS", 0}, {"X_HEAVY", 1.0}};
    f.symbols = heavy;
    f.nsymbols = 3;
    o = rules_tx_eval(tx, RULES_STAGE_MAIL, &f, NULL);
    m = msg("Subject: money\r\n\r\nx\r\n");
    o = rules_tx_eval(tx, RULES_STAGE_CONTENT, &f, m);
    assert_true(near(o->score, 6.5));
    assert_int_equal(o->verdict, RULES_REJECT);
    assert_string_equal(o->decided_by, "threshold reject");
    assert_string_equal(o->reply, "550 5.7.1 Too spammy");
    rules_msg_free(m);
    rules_tx_free(tx);

    /* a new HELO forgets a symbol meta that hit at HELO, and evaluates it anew */
    struct rules_facts none = {.helo = "x"};
    o = rules_tx_eval(conn, RULES_STAGE_HELO, &none, NULL);
    assert_int_equal(o->nhits, 0);
    assert_true(near(o->score, 1.0)); /* ONLY_BL from connect stays; no symbols now */
    rules_tx_free(conn);
    rules_unref(r);
}

/* score NAME N, written before or after the rule: the last one wins; 0
 * turns the rule off (no hit, no action, 0 for a meta). */
static void test_score_statement(void **state)
{
    (void)state;
    struct rules *r = load("score LOUD 4\n"
                           "rule LOUD header Subject /loud/ score 1\n"
                           "rule KILL header Subject /kill/ reject\n"
                           "rule __K header Subject /kill/\n"
                           "rule BOTH meta LOUD && KILL score 2\n"
                           "rule HELPER meta __K score 0.5\n"
                           "score KILL 0\n"
                           "score LOUD 2.5\n"
                           "score HELPER 0\n"
                           "score HELPER 1.5\n");
    struct rules_msg *m;
    struct rules_tx *tx = rules_tx_new(r);
    const struct rules_outcome *o = content(tx, &m, "Subject: loud kill\r\n\r\n");
    assert_int_equal(o->verdict, RULES_CONTINUE);
    assert_true(has_hit(o, "LOUD"));
    assert_false(has_hit(o, "KILL"));
    assert_false(has_hit(o, "BOTH"));
    assert_true(has_hit(o, "HELPER"));
    assert_true(near(o->score, 4));
    assert_string_equal(o->report_status, "No, score=4.0 required=5.0 tests=HELPER,LOUD");
    rules_msg_free(m);
    rules_tx_free(tx);
    for (size_t i = 0; i < rules_count(r); i++)
        if (strcmp(rules_rule_name(r, i), "LOUD") == 0)
            assert_true(near(rules_rule_score(r, i), 2.5));
    rules_unref(r);
}

/* rules_tx_set_all_values: every match kept in the hit, in order; off (the
 * plugin's way), the first one only. */
static void test_all_values(void **state)
{
    (void)state;
    struct rules *r = load("rule R header Received /by \\w+/ score 1\n"
                           "rule B body /o+/ score 1\n");
    const char *text = "Received: by a\r\nReceived: none\r\nReceived: by b\r\n\r\nfoo, boo\r\n";
    for (int on = 0; on <= 1; on++) {
        struct rules_msg *m;
        struct rules_tx *tx = rules_tx_new(r);
        rules_tx_set_all_values(tx, on);
        const struct rules_outcome *o = content(tx, &m, text);
        assert_int_equal(o->nhits, 2);
        const struct rules_hit *h = &o->hits[0];
        assert_string_equal(h->rule, "R");
        assert_memory_equal(h->text, "by a", 4);
        assert_int_equal(h->nmore, on ? 1 : 0);
        if (on)
            assert_memory_equal(h->more[0].text, "by b", h->more[0].len);
        h = &o->hits[1];
        assert_int_equal(h->nmore, on ? 1 : 0);
        if (on)
            assert_memory_equal(h->more[0].text, "oo", h->more[0].len);
        assert_true(near(o->score, 2));
        rules_msg_free(m);
        rules_tx_free(tx);
    }
    rules_unref(r);
}

/* multiple [N]: a meta reads the rule's number of matches; without it 1.
 * A 4-line body: __LINE < 2 must not hit (it did when every rule read 1). */
static void test_multiple_counts(void **state)
{
    (void)state;
    struct rules *r = load("rule __LINE body /^line/m multiple\n"
                           "rule __LINE2 body /^line/m multiple 2\n"
                           "rule __ONCE body /^line/m\n"
                           "rule __RCVD header Received /by/ multiple\n"
                           "rule FEW meta __LINE < 2 score 1\n"
                           "rule FOUR meta __LINE == 4 score 1\n"
                           "rule CAPPED meta __LINE2 == 2 score 1\n"
                           "rule ONCE meta __ONCE == 1 score 1\n"
                           "rule RCVD2 meta __RCVD == 2 && __LINE / 2 == 2 score 1\n");
    struct rules_msg *m;
    struct rules_tx *tx = rules_tx_new(r);
    const struct rules_outcome *o =
        content(tx, &m, "Received: by a\r\nReceived: by b\r\nSubject: x\r\n\r\n"
                        "line one\r\nline two\r\nline three\r\nline four\r\n");
    assert_false(has_hit(o, "FEW"));
    assert_true(has_hit(o, "FOUR"));
    assert_true(has_hit(o, "CAPPED"));
    assert_true(has_hit(o, "ONCE"));
    assert_true(has_hit(o, "RCVD2"));
    assert_true(near(o->score, 4));
    rules_msg_free(m);
    /* one line: FEW hits, the others do not */
    o = content(tx, &m, "Subject: x\r\n\r\nline one\r\n");
    assert_true(has_hit(o, "FEW"));
    assert_false(has_hit(o, "FOUR"));
    assert_false(has_hit(o, "CAPPED"));
    rules_msg_free(m);
    rules_tx_free(tx);
    rules_unref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_stages),
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_meta_per_recipient),
        cmocka_unit_test(test_scores_and_thresholds),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_accept_shortcut),
        cmocka_unit_test(test_report_folding),
        cmocka_unit_test(test_match_limit),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_reload_keeps_rules),
        cmocka_unit_test(test_threads_share),
        cmocka_unit_test(test_size_and_full),
        cmocka_unit_test(test_symbols),
        cmocka_unit_test(test_score_statement),
        cmocka_unit_test(test_all_values),
        cmocka_unit_test(test_multiple_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
