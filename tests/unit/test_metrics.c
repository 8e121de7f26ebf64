/*
 * Unit tests for util/metrics: the text exposition (HELP and TYPE per family,
 * families sorted by name and series by labels, label values and help texts
 * escaped, cumulative histogram buckets ending in +Inf equal to _count) and
 * the registry's refusals (bad names, reserved labels, a name asked again
 * with another shape), and a capped family's overflow series.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util/metrics.h"

static int teardown(void **state)
{
    (void)state;
    metrics_shutdown();
    return 0;
}

static char *format(void)
{
    size_t len;
    char *text = metrics_format(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static void test_counter_and_gauge_text(void **state)
{
    (void)state;
    static const char *const labels[] = {"result", NULL};
    struct metrics_family *f =
        metrics_family("b_total", METRICS_COUNTER, "Things done", labels, NULL, 0);
    metrics_add(metrics_series(f, (const char *const[]){"zulu"}), 2);
    metrics_add(metrics_series(f, (const char *const[]){"alpha"}), 5);
    struct metrics_series *g = metrics_single("a_open", METRICS_GAUGE, "Open now");
    metrics_gauge_add(g, 3);
    metrics_gauge_add(g, -5);
    char *text = format();
    assert_string_equal(text, "# HELP a_open Open now\n"
                              "# TYPE a_open gauge\n"
                              "a_open -2\n"
                              "# HELP b_total Things done\n"
                              "# TYPE b_total counter\n"
                              "b_total{result=\"alpha\"} 5\n"
                              "b_total{result=\"zulu\"} 2\n");
    free(text);
    metrics_gauge_set(g, 7);
    assert_int_equal(metrics_value(g), 7);
}

/* Label values from outside the configuration: past the cap every new value
 * lands on the overflow series, and values already there keep their own. */
static void test_capped_family_bounded(void **state)
{
    (void)state;
    static const char *const labels[] = {"symbol", NULL};
    struct metrics_family *f =
        metrics_family("s_total", METRICS_COUNTER, "Symbols", labels, NULL, 0);
    struct metrics_series *other = metrics_series(f, (const char *const[]){"(other)"});
    assert_non_null(other);
    struct metrics_series *a = metrics_series_capped(f, (const char *const[]){"A"}, 3, other);
    struct metrics_series *b = metrics_series_capped(f, (const char *const[]){"B"}, 3, other);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, other);
    assert_ptr_not_equal(b, other);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(metrics_series_capped(f, (const char *const[]){"C"}, 3, other), other);
    assert_ptr_equal(metrics_series_capped(f, (const char *const[]){"D"}, 3, other), other);
    assert_ptr_equal(metrics_series_capped(f, (const char *const[]){"A"}, 3, other), a);
    metrics_add(a, 1);
    metrics_add(metrics_series_capped(f, (const char *const[]){"C"}, 3, other), 2);
    metrics_add(metrics_series_capped(f, (const char *const[]){"D"}, 3, other), 1);
    char *text = format();
    assert_string_equal(text, "# HELP s_total Symbols\n"
                              "# TYPE s_total counter\n"
                              "s_total{symbol=\"(other)\"} 3\n"
                              "s_total{symbol=\"A\"} 1\n"
                              "s_total{symbol=\"B\"} 0\n");
    free(text);
}

static void test_escaping(void **state)
{
    (void)state;
    static const char *const labels[] = {"plugin", "event", NULL};
    struct metrics_family *f = metrics_family("e_total", METRICS_COUNTER,
                                              "A \\ backslash\nand a \"quote\"", labels, NULL, 0);
    metrics_add(metrics_series(f, (const char *const[]){"a\"b", "c\\d\ne"}), 1);
    char *text = format();
    assert_string_equal(text, "# HELP e_total A \\\\ backslash\\nand a \"quote\"\n"
                              "# TYPE e_total counter\n"
                              "e_total{plugin=\"a\\\"b\",event=\"c\\\\d\\ne\"} 1\n");
    free(text);
}

static void test_histogram_cumulative_with_inf(void **state)
{
    (void)state;
    static const char *const labels[] = {"stage", NULL};
    static const double bounds[] = {0.5, 1, 2.5};
    struct metrics_family *f =
        metrics_family("h_seconds", METRICS_HISTOGRAM, "Latency", labels, bounds, 3);
    struct metrics_series *s = metrics_series(f, (const char *const[]){"eom"});
    metrics_observe(s, 0.25);
    metrics_observe(s, 0.5); /* on a bound: that bucket (le is "less or equal") */
    metrics_observe(s, 2);
    metrics_observe(s, 100);
    assert_int_equal(metrics_value(s), 4);
    char *text = format();
    assert_string_equal(text, "# HELP h_seconds Latency\n"
                              "# TYPE h_seconds histogram\n"
                              "h_seconds_bucket{stage=\"eom\",le=\"0.5\"} 2\n"
                              "h_seconds_bucket{stage=\"eom\",le=\"1\"} 2\n"
                              "h_seconds_bucket{stage=\"eom\",le=\"2.5\"} 3\n"
                              "h_seconds_bucket{stage=\"eom\",le=\"+Inf\"} 4\n"
                              "h_seconds_sum{stage=\"eom\"} 102.75\n"
                              "h_seconds_count{stage=\"eom\"} 4\n");
    free(text);
}

static void test_histogram_without_labels(void **state)
{
    (void)state;
    static const double bounds[] = {1024};
    struct metrics_series *s = metrics_series(
        metrics_family("size_bytes", METRICS_HISTOGRAM, "Size", NULL, bounds, 1), NULL);
    metrics_observe(s, 10);
    char *text = format();
    assert_string_equal(text, "# HELP size_bytes Size\n"
                              "# TYPE size_bytes histogram\n"
                              "size_bytes_bucket{le=\"1024\"} 1\n"
                              "size_bytes_bucket{le=\"+Inf\"} 1\n"
                              "size_bytes_sum 10\n"
                              "size_bytes_count 1\n");
    free(text);
}

static void test_same_name_same_family_other_shape_refused(void **state)
{
    (void)state;
    static const char *const one[] = {"plugin", NULL};
    static const char *const two[] = {"plugin", "verdict", NULL};
    struct metrics_family *f = metrics_family("v_total", METRICS_COUNTER, "V", one, NULL, 0);
    assert_non_null(f);
    assert_ptr_equal(metrics_family("v_total", METRICS_COUNTER, "V", one, NULL, 0), f);
    assert_null(metrics_family("v_total", METRICS_COUNTER, "V", two, NULL, 0));
    assert_null(metrics_family("v_total", METRICS_GAUGE, "V", one, NULL, 0));
    struct metrics_series *a = metrics_series(f, (const char *const[]){"x"});
    assert_ptr_equal(metrics_series(f, (const char *const[]){"x"}), a);
    /* an update of the wrong kind changes nothing */
    metrics_gauge_set(a, 9);
    metrics_observe(a, 1);
    assert_int_equal(metrics_value(a), 0);
}

static void test_bad_names_and_labels_refused(void **state)
{
    (void)state;
    static const char *const le[] = {"le", NULL};
    static const char *const reserved[] = {"__name", NULL};
    static const char *const bad[] = {"a-b", NULL};
    static const char *const many[] = {"a", "b", "c", "d", "e", NULL};
    static const double unsorted[] = {2, 1};
    assert_null(metrics_family("9x", METRICS_COUNTER, "h", NULL, NULL, 0));
    assert_null(metrics_family("a.b", METRICS_COUNTER, "h", NULL, NULL, 0));
    assert_null(metrics_family("x", METRICS_COUNTER, NULL, NULL, NULL, 0));
    assert_null(metrics_family("x", METRICS_HISTOGRAM, "h", le, unsorted, 1));
    assert_null(metrics_family("x", METRICS_COUNTER, "h", reserved, NULL, 0));
    assert_null(metrics_family("x", METRICS_COUNTER, "h", bad, NULL, 0));
    assert_null(metrics_family("x", METRICS_COUNTER, "h", many, NULL, 0));
    assert_null(metrics_family("x", METRICS_HISTOGRAM, "h", NULL, unsorted, 2));
    assert_null(metrics_family("x", METRICS_HISTOGRAM, "h", NULL, NULL, 0));
    assert_null(metrics_series(NULL, NULL));
    metrics_add(NULL, 1); /* a failed look-up costs a count, not a crash */
    char *text = format();
    assert_string_equal(text, "");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_counter_and_gauge_text, teardown),
        cmocka_unit_test_teardown(test_escaping, teardown),
        cmocka_unit_test_teardown(test_capped_family_bounded, teardown),
        cmocka_unit_test_teardown(test_histogram_cumulative_with_inf, teardown),
        cmocka_unit_test_teardown(test_histogram_without_labels, teardown),
        cmocka_unit_test_teardown(test_same_name_same_family_other_shape_refused, teardown),
        cmocka_unit_test_teardown(test_bad_names_and_labels_refused, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
