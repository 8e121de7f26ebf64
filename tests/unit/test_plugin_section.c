/*
 * Unit tests for config/plugin_section: plugin sections read as data, with
 * the line of every value, taken out of the text so that the rest parses with
 * unchanged line numbers; libconfuse's syntax (quotes, escapes, lists, +=);
 * a later section of the same name replacing the earlier in its place; and
 * every mistake named with its line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config/plugin_section.h"

static char *dup_text(const char *t)
{
    char *d = strdup(t);
    assert_non_null(d);
    return d;
}

static void test_sections_with_lines(void **state)
{
    (void)state;
    char *text = dup_text("hostname = \"mx.example.test\"\n"
                          "plugin rules {\n"
                          "    path = \"rules.so\"\n"
                          "    files = {\"a.rules\",\n"
                          "             'b.rules'}\n"
                          "    timeout = 2.5\n"
                          "}\n"
                          "upstream main { address = \"127.0.0.1:25\" }\n"
                          "plugin \"spf\" { path = spf.so exempt = {} }\n");
    struct plugin_sections ps = {0};
    char err[256];
    int line = 0;
    assert_int_equal(plugin_sections_take(text, "t.conf", &ps, &line, err, sizeof(err)), 0);
    assert_int_equal(ps.n, 2);

    const struct plugin_section *r = &ps.v[0];
    assert_string_equal(r->name, "rules");
    assert_string_equal(r->source, "t.conf");
    assert_int_equal(r->line, 2);
    assert_int_equal(r->nvalues, 3);
    const struct plugin_value *v = plugin_section_get(r, "path");
    assert_non_null(v);
    assert_false(v->list);
    assert_int_equal(v->nitems, 1);
    assert_string_equal(v->items[0], "rules.so");
    assert_int_equal(v->line, 3);
    v = plugin_section_get(r, "files");
    assert_true(v->list);
    assert_int_equal(v->nitems, 2);
    assert_string_equal(v->items[1], "b.rules");
    assert_int_equal(v->line, 5);
    assert_string_equal(plugin_section_get(r, "timeout")->items[0], "2.5");
    assert_null(plugin_section_get(r, "nothing"));

    const struct plugin_section *s = &ps.v[1];
    assert_string_equal(s->name, "spf");
    assert_int_equal(s->line, 9);
    v = plugin_section_get(s, "exempt");
    assert_true(v->list);
    assert_int_equal(v->nitems, 0);

    /* The rest is left, line for line, for libconfuse. */
    assert_non_null(strstr(text, "hostname = \"mx.example.test\"\n"));
    assert_non_null(strstr(text, "upstream main { address = \"127.0.0.1:25\" }\n"));
    assert_null(strstr(text, "plugin"));
    assert_null(strstr(text, "rules.so"));
    size_t newlines = 0;
    for (const char *p = text; *p; p++)
        newlines += *p == '\n';
    assert_int_equal(newlines, 9);
    plugin_sections_clear(&ps);
    free(text);
}

static void test_strings_and_appending(void **state)
{
    (void)state;
    setenv("PLUGIN_SECTION_TEST", "from-env", 1);
    char *text = dup_text("plugin p {\n"
                          "  a = \"tab\\there\\x41\\101\\\"q\\\" ${PLUGIN_SECTION_TEST}\"\n"
                          "  b = 'it\\'s \\n raw'\n"
                          "  c = {\"x\"}\n"
                          "  c += {\"y\", \"z\"}\n"
                          "  d = one\n"
                          "  d = two\n"
                          "  e = \"${PLUGIN_SECTION_UNSET:-fallback}\"\n"
                          "}\n");
    struct plugin_sections ps = {0};
    char err[256];
    int line = 0;
    assert_int_equal(plugin_sections_take(text, "-o #1", &ps, &line, err, sizeof(err)), 0);
    assert_int_equal(ps.n, 1);
    const struct plugin_section *p = &ps.v[0];
    assert_string_equal(plugin_section_get(p, "a")->items[0], "tab\thereAA\"q\" from-env");
    assert_string_equal(plugin_section_get(p, "b")->items[0], "it's \\n raw");
    const struct plugin_value *c = plugin_section_get(p, "c");
    assert_int_equal(c->nitems, 3);
    assert_string_equal(c->items[2], "z");
    const struct plugin_value *d = plugin_section_get(p, "d");
    assert_int_equal(d->nitems, 1);
    assert_string_equal(d->items[0], "two");
    assert_int_equal(d->line, 7);
    assert_string_equal(plugin_section_get(p, "e")->items[0], "fallback");
    plugin_sections_clear(&ps);
    free(text);
}

static void test_later_section_replaces_in_place(void **state)
{
    (void)state;
    struct plugin_sections ps = {0};
    char err[256];
    int line = 0;
    char *file = dup_text("plugin a { path = a.so x = 1 }\nplugin b { path = b.so }\n");
    char *override = dup_text("plugin a { path = other.so }");
    assert_int_equal(plugin_sections_take(file, "t.conf", &ps, &line, err, sizeof(err)), 0);
    assert_int_equal(plugin_sections_take(override, "-o #1", &ps, &line, err, sizeof(err)), 0);
    assert_int_equal(ps.n, 2);
    assert_string_equal(ps.v[0].name, "a");
    assert_string_equal(ps.v[0].source, "-o #1");
    assert_string_equal(plugin_section_get(&ps.v[0], "path")->items[0], "other.so");
    assert_null(plugin_section_get(&ps.v[0], "x"));
    assert_string_equal(ps.v[1].name, "b");
    plugin_sections_clear(&ps);
    free(file);
    free(override);
}

static void test_only_top_level_sections(void **state)
{
    (void)state;
    const char *orig = "hostname = plugin\n"
                       "upstream plugin { address = \"127.0.0.1:25\" }\n"
                       "listen = {plugin, \"x\"}\n"
                       "milter { plugin = { } }\n";
    char *text = dup_text(orig);
    struct plugin_sections ps = {0};
    char err[256];
    int line = 0;
    assert_int_equal(plugin_sections_take(text, "t.conf", &ps, &line, err, sizeof(err)), 0);
    assert_int_equal(ps.n, 0);
    assert_string_equal(text, orig);
    free(text);
}

static void expect_mistake(const char *text, int want_line, const char *want)
{
    char *t = dup_text(text);
    struct plugin_sections ps = {0};
    char err[256] = "";
    int line = 0;
    assert_int_equal(plugin_sections_take(t, "t.conf", &ps, &line, err, sizeof(err)), -1);
    if (line != want_line || !strstr(err, want))
        fail_msg("\"%s\": got %d: %s; wanted %d: %s", text, line, err, want_line, want);
    plugin_sections_clear(&ps);
    free(t);
}

static void test_mistakes_name_their_line(void **state)
{
    (void)state;
    expect_mistake("\nplugin {\n", 2, "missing title for section 'plugin'");
    expect_mistake("plugin a\n\nx = 1\n", 3, "missing opening brace for section 'plugin'");
    expect_mistake("plugin a {\n path = a.so\n", 3, "premature end of file");
    expect_mistake("plugin a {\n path a.so\n}\n", 2, "missing equal sign after option 'path'");
    expect_mistake("plugin a {\n path = = a.so\n}\n", 2, "unexpected token '='");
    expect_mistake("plugin a {\n l = {\"x\" \"y\"}\n}\n", 2, "unexpected token 'y'");
    expect_mistake("plugin a {\n l = {,}\n}\n", 2, "unexpected token ','");
    expect_mistake("plugin a {\n\n s = \"open\n", 4, "unterminated string constant");
    expect_mistake("plugin a {\n s = \"\\9\"\n}\n", 2, "bad escape sequence");
    expect_mistake("plugin a {\n s = \"\\777\"\n}\n", 2, "invalid octal number");
}

static void test_body_for_defaults(void **state)
{
    (void)state;
    struct plugin_section s = {0};
    char err[256];
    int line = 0;
    assert_int_equal(plugin_section_parse_body("mode = strict\nnets = {\"127.0.0.0/8\",\"::1\"}\n",
                                               "x.so", &s, &line, err, sizeof(err)),
                     0);
    assert_int_equal(s.nvalues, 2);
    assert_string_equal(plugin_section_get(&s, "nets")->items[1], "::1");
    plugin_section_clear(&s);
    assert_int_equal(plugin_section_parse_body("a = 1\n}\n", "x.so", &s, &line, err, sizeof(err)),
                     -1);
    assert_int_equal(line, 2);
    assert_string_equal(err, "unexpected closing brace");
    plugin_section_clear(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sections_with_lines),
        cmocka_unit_test(test_strings_and_appending),
        cmocka_unit_test(test_later_section_replaces_in_place),
        cmocka_unit_test(test_only_top_level_sections),
        cmocka_unit_test(test_mistakes_name_their_line),
        cmocka_unit_test(test_body_for_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
