/*
 * Unit tests for plugins/ratelimit/rate_rule: every kind and key, the
 * window units and their bounds, the keys each kind may use, blanks and
 * case, and the reason given for each kind of mistake; the input is read
 * by its length only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit/rate_rule.h"

static int parse(const char *s, struct rate_rule *r, const char **why)
{
    return rate_rule_parse(s, strlen(s), r, why);
}

static const char *why_of(const char *s)
{
    struct rate_rule r;
    const char *why = NULL;
    assert_int_equal(parse(s, &r, &why), -1);
    assert_non_null(why);
    return why;
}

static void test_examples(void **state)
{
    (void)state;
    struct rate_rule r;
    assert_int_equal(parse("connections per client_network 30/1m", &r, NULL), 0);
    assert_int_equal(r.kind, RATE_CONNECTIONS);
    assert_int_equal(r.key, RATE_KEY_CLIENT_NETWORK);
    assert_int_equal(r.count, 30);
    assert_int_equal(r.window_ms, 60000);
    assert_int_equal(parse("messages per sender_domain 100/1h", &r, NULL), 0);
    assert_int_equal(r.kind, RATE_MESSAGES);
    assert_int_equal(r.key, RATE_KEY_SENDER_DOMAIN);
    assert_int_equal(r.count, 100);
    assert_int_equal(r.window_ms, 3600000);
    assert_int_equal(parse("recipients per recipient_domain 500/1m", &r, NULL), 0);
    assert_int_equal(r.kind, RATE_RECIPIENTS);
    assert_int_equal(r.key, RATE_KEY_RECIPIENT_DOMAIN);
    assert_int_equal(parse("recipients per login 1000/1h", &r, NULL), 0);
    assert_int_equal(r.key, RATE_KEY_LOGIN);
    assert_int_equal(r.count, 1000);
    assert_int_equal(parse("concurrency per client 10", &r, NULL), 0);
    assert_int_equal(r.kind, RATE_CONCURRENCY);
    assert_int_equal(r.key, RATE_KEY_CLIENT);
    assert_int_equal(r.count, 10);
    assert_int_equal(r.window_ms, 0);
    assert_int_equal(parse("messages per sender 5/30s", &r, NULL), 0);
    assert_int_equal(r.key, RATE_KEY_SENDER);
    assert_int_equal(r.window_ms, 30000);
    assert_int_equal(parse("messages per client 5/2d", &r, NULL), 0);
    assert_int_equal(r.key, RATE_KEY_CLIENT);
    assert_int_equal(r.window_ms, 2 * 86400000ULL);
}

static void test_blanks_case_and_unit_alone(void **state)
{
    (void)state;
    struct rate_rule r;
    assert_int_equal(parse("  \tMESSAGES  Per\tLogin 7/M  ", &r, NULL), 0);
    assert_int_equal(r.kind, RATE_MESSAGES);
    assert_int_equal(r.key, RATE_KEY_LOGIN);
    assert_int_equal(r.count, 7);
    assert_int_equal(r.window_ms, 60000);
    assert_int_equal(parse("connections per client 1/1s", &r, NULL), 0);
    assert_int_equal(r.window_ms, RATE_WINDOW_MIN_MS);
    assert_int_equal(parse("connections per client 1000000000/7d", &r, NULL), 0);
    assert_int_equal(r.count, RATE_COUNT_MAX);
    assert_int_equal(r.window_ms, RATE_WINDOW_MAX_MS);
    assert_int_equal(parse("connections per client 1/168h", &r, NULL), 0);
    assert_int_equal(r.window_ms, RATE_WINDOW_MAX_MS);
}

static void test_keys_by_kind(void **state)
{
    (void)state;
    const char *keys[] = {"client",        "client_network", "sender",
                          "sender_domain", "login",          "recipient_domain"};
    const char *kinds[] = {"connections", "messages", "recipients", "concurrency"};
    /* allowed[kind][key] */
    const int allowed[4][6] = {
        {1, 1, 0, 0, 0, 0}, {1, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 1}, {1, 1, 0, 0, 0, 0}};
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 6; j++) {
            char text[128];
            snprintf(text, sizeof(text), "%s per %s 3%s", kinds[k], keys[j], k == 3 ? "" : "/1m");
            struct rate_rule r;
            const char *why = NULL;
            int rc = parse(text, &r, &why);
            assert_int_equal(rc, allowed[k][j] ? 0 : -1);
            if (rc == 0) {
                assert_int_equal(r.kind, k);
                assert_int_equal(r.key, j);
                assert_string_equal(rate_kind_name(r.kind), kinds[k]);
                assert_string_equal(rate_key_name(r.key), keys[j]);
            }
        }
    assert_string_equal(why_of("messages per recipient_domain 3/1m"),
                        "messages cannot be counted per recipient_domain");
    assert_string_equal(why_of("connections per sender 3/1m"),
                        "connections are counted per client or client_network");
}

static void test_mistakes_and_reasons(void **state)
{
    (void)state;
    assert_string_equal(why_of(""),
                        "must start with connections, messages, recipients or concurrency");
    assert_string_equal(why_of("mail per client 3/1m"),
                        "must start with connections, messages, recipients or concurrency");
    assert_string_equal(why_of("messages by client 3/1m"),
                        "want \"per\" after the kind (\"messages per sender 100/1h\")");
    assert_string_equal(why_of("messages per"),
                        "unknown key: want client, client_network, sender, sender_domain, "
                        "login or recipient_domain");
    assert_string_equal(why_of("messages per helo 3/1m"),
                        "unknown key: want client, client_network, sender, sender_domain, "
                        "login or recipient_domain");
    assert_string_equal(why_of("messages per client"), "want a count from 1 to 1000000000");
    assert_string_equal(why_of("messages per client 0/1m"), "want a count from 1 to 1000000000");
    assert_string_equal(why_of("messages per client 1000000001/1m"),
                        "want a count from 1 to 1000000000");
    assert_string_equal(why_of("messages per client -3/1m"), "want a count from 1 to 1000000000");
    assert_string_equal(why_of("messages per client 3"), "want COUNT/WINDOW (\"30/1m\")");
    assert_string_equal(why_of("messages per client 3/"),
                        "the window must be a number and a unit: s, m, h or d (\"1m\")");
    assert_string_equal(why_of("messages per client 3/5"),
                        "the window must be a number and a unit: s, m, h or d (\"1m\")");
    assert_string_equal(why_of("messages per client 3/1w"),
                        "the window must be a number and a unit: s, m, h or d (\"1m\")");
    assert_string_equal(why_of("messages per client 3/1mm"),
                        "the window must be a number and a unit: s, m, h or d (\"1m\")");
    assert_string_equal(why_of("messages per client 3/0m"), "the window must not be empty");
    assert_string_equal(why_of("messages per client 3/8d"), "the window is too long (at most 7d)");
    assert_string_equal(why_of("messages per client 3/604801s"),
                        "the window is too long (at most 7d)");
    assert_string_equal(why_of("messages per client 3/99999999999999999999s"),
                        "the window is too long (at most 7d)");
    assert_string_equal(why_of("concurrency per client 3/1m"),
                        "concurrency takes a count only (\"concurrency per client 10\")");
    assert_string_equal(why_of("messages per client 3/1m extra"), "unexpected text after the rule");
}

static void test_length_not_nul(void **state)
{
    (void)state;
    /* Only the first len bytes count: the rest of the buffer is not read. */
    const char text[] = "messages per client 3/1mXYZ";
    struct rate_rule r;
    assert_int_equal(rate_rule_parse(text, strlen("messages per client 3/1m"), &r, NULL), 0);
    assert_int_equal(r.window_ms, 60000);
    assert_int_equal(rate_rule_parse(text, strlen("messages per cli"), &r, NULL), -1);
    assert_int_equal(rate_rule_parse(NULL, 0, &r, NULL), -1);
    assert_int_equal(rate_rule_parse("connections per client 1/1m", 27, NULL, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples),       cmocka_unit_test(test_blanks_case_and_unit_alone),
        cmocka_unit_test(test_keys_by_kind),   cmocka_unit_test(test_mistakes_and_reasons),
        cmocka_unit_test(test_length_not_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
