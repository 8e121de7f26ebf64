/*
 * Unit tests for config: the shipped example loads, overrides apply on top of
 * the file, and every kind of admin mistake is refused with file:line and a
 * reason that says what is wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain/chain.h"
#include "chain/plugin_host.h"
#include "config/config.h"
#include "util/sockaddr.h"
#include "util/log.h"

/* Captures what the module logs (it writes to stderr) for one call. */
struct capture {
    char path[64];
    int saved;
};

static void capture_start(struct capture *c)
{
    snprintf(c->path, sizeof(c->path), "/tmp/test_config_log.XXXXXX");
    int fd = mkstemp(c->path);
    assert_true(fd >= 0);
    fflush(stderr);
    c->saved = dup(2);
    dup2(fd, 2);
    close(fd);
}

static char *capture_end(struct capture *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    FILE *f = fopen(c->path, "r");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(c->path);
    return buf;
}

static char *write_conf(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/test_config.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static struct sg_config *load_text_with(const char *text, char **log,
                                        const struct config_load_opts *opts)
{
    char *path = write_conf(text);
    struct capture cap;
    capture_start(&cap);
    struct sg_config *c = config_load(path, NULL, 0, opts);
    char *out = capture_end(&cap);
    if (log)
        *log = out;
    unlink(path);
    return c;
}

static struct sg_config *load_text(const char *text, char **log)
{
    return load_text_with(text, log, NULL);
}

/* The example config names installed paths; in the tree its plugins come
 * from the build. */
#define IN_TREE_DIR   "plugin_dir = \"" SMTPGATE_BUILD_DIR "/plugins\""
#define IN_TREE_RULES "plugin rules { path = \"rules.so\" files = {\"rules/default.rules\"} }"

static void test_example_config_loads(void **state)
{
    (void)state;
    const char *ov[] = {IN_TREE_DIR, IN_TREE_RULES};
    struct sg_config *c = config_load("etc/smtpgate.conf", ov, 2, NULL);
    assert_non_null(c);
    int errors = 0;
    struct chain *ch = plugin_load_chain(c, NULL, 1, &errors);
    assert_int_equal(errors, 0);
    assert_int_equal(chain_size(ch), 1);
    chain_unref(ch);
    assert_int_equal(c->nupstreams, 1);
    assert_string_equal(c->upstreams[0].name, "main");
    assert_string_equal(c->upstreams[0].addr.text, "127.0.0.1:10025");
    assert_string_equal(c->listen[0].text, "127.0.0.1:2525");
    assert_int_equal(c->identity, IDENTITY_XCLIENT);
    assert_int_equal(c->newline_policy, DATA_NEWLINE_REJECT);
    assert_int_equal(c->max_line_length, 512);
    assert_true(c->workers >= 1);
    config_unref(c);
}

static void test_overrides_replace_file_values(void **state)
{
    (void)state;
    const char *ov[] = {"listen = {\"127.0.0.1:2600\", \"[::1]:2600\"}",
                        "upstream main { address = \"127.0.0.1:10099\" }", "max_recipients = 7",
                        IN_TREE_DIR, IN_TREE_RULES};
    struct sg_config *c = config_load("etc/smtpgate.conf", ov, 5, NULL);
    assert_non_null(c);
    assert_int_equal(c->nlisten, 2);
    assert_string_equal(c->listen[0].text, "127.0.0.1:2600");
    assert_string_equal(c->listen[1].text, "[::1]:2600");
    assert_int_equal(c->nupstreams, 1);
    assert_string_equal(c->upstreams[0].addr.text, "127.0.0.1:10099");
    assert_int_equal(c->max_recipients, 7);
    config_unref(c);
}

static void test_defaults_with_only_an_upstream(void **state)
{
    (void)state;
    const char *ov[] = {"upstream a { address = \"127.0.0.1:25\" }"};
    struct sg_config *c = config_load(NULL, ov, 1, NULL);
    assert_non_null(c);
    assert_int_equal(c->max_message_size, 10240000);
    assert_int_equal(c->hard_error_limit, 20);
    assert_int_equal(c->command_timeout, 300);
    assert_string_equal(c->hostname, "smtpgate.localdomain");
    assert_false(c->strict_envelopes);
    config_unref(c);
}

static void test_strict_envelopes(void **state)
{
    (void)state;
    struct sg_config *c =
        load_text("upstream a { address = \"127.0.0.1:25\" }\nstrict_envelopes = yes\n", NULL);
    assert_non_null(c);
    assert_true(c->strict_envelopes);
    config_unref(c);
    char *log = NULL;
    c = load_text("upstream a { address = \"127.0.0.1:25\" }\nstrict_envelopes = maybe\n", &log);
    assert_null(c);
    if (!strstr(log, ":2:") || !strstr(log, "strict_envelopes"))
        fail_msg("log lacks the line or the option: %s", log);
}

static void test_upstreams_sorted_by_priority_stable(void **state)
{
    (void)state;
    struct sg_config *c = load_text("upstream b { address = \"127.0.0.2:25\" priority = 20 }\n"
                                    "upstream a { address = \"127.0.0.1:25\" priority = 10 }\n"
                                    "upstream c { address = \"127.0.0.3:25\" priority = 20 }\n",
                                    NULL);
    assert_non_null(c);
    assert_int_equal(c->nupstreams, 3);
    assert_string_equal(c->upstreams[0].name, "a");
    assert_string_equal(c->upstreams[1].name, "b");
    assert_string_equal(c->upstreams[2].name, "c");
    assert_int_equal(c->upstreams[1].priority, 20);
    config_unref(c);
}

static void expect_error_with(const char *text, const char *line_tag, const char *reason,
                              const struct config_load_opts *opts)
{
    char *log = NULL;
    struct sg_config *c = load_text_with(text, &log, opts);
    assert_null(c);
    if (!strstr(log, line_tag) || !strstr(log, reason))
        fail_msg("log lacks \"%s\" / \"%s\": %s", line_tag, reason, log);
}

static void expect_error(const char *text, const char *line_tag, const char *reason)
{
    expect_error_with(text, line_tag, reason, NULL);
}

static void test_unknown_option_names_line(void **state)
{
    (void)state;
    expect_error("upstream a { address = \"127.0.0.1:25\" }\n\nbogus = 1\n",
                 ":3:", "no such option 'bogus'");
}

static void test_line_numbers_after_comments(void **state)
{
    (void)state;
    expect_error("# a comment\n# another\n// slashes\n/* block\n   comment */\n"
                 "spool_dir = \"/var/spool/#x\" # trailing\n"
                 "upstream a { address = \"127.0.0.1:25\" }\nmax_recipients = 0\n",
                 ":8:", "'max_recipients' is 0");
}

static void test_int_out_of_range(void **state)
{
    (void)state;
    expect_error("upstream a { address = \"127.0.0.1:25\" }\nmax_line_length = 100\n",
                 ":2:", "'max_line_length' is 100; it must be from 512");
}

static void test_bad_listen_address(void **state)
{
    (void)state;
    expect_error("listen = {\"127.0.0.1\"}\nupstream a { address = \"127.0.0.1:25\" }\n",
                 ":1:", "listen address \"127.0.0.1\": expected host:port");
    expect_error("listen = {\"::1:25\"}\nupstream a { address = \"127.0.0.1:25\" }\n",
                 ":1:", "IPv6 addresses need brackets");
    expect_error("listen = {\"127.0.0.1:99999\"}\nupstream a { address = \"127.0.0.1:25\" }\n",
                 ":1:", "port must be a number");
}

static void test_bad_choice(void **state)
{
    (void)state;
    expect_error("upstream a { address = \"127.0.0.1:25\" }\nclient_identity = \"xforward\"\n",
                 ":2:", "expected one of: xclient, proxy, none");
    expect_error("upstream a { address = \"127.0.0.1:25\" }\nbare_newline = \"allow\"\n",
                 ":2:", "expected one of: reject, normalize");
}

static void test_bad_upstream_address(void **state)
{
    (void)state;
    expect_error("upstream a {\n  address = \"127.0.0.1\"\n}\n",
                 ":2:", "upstream address \"127.0.0.1\"");
}

static void test_upstream_without_address(void **state)
{
    (void)state;
    expect_error("hostname = \"mx.example.test\"\nupstream a {\n  priority = 3\n}\n",
                 ":4:", "upstream a has no address");
}

static void test_missing_upstream(void **state)
{
    (void)state;
    expect_error("hostname = \"mx.example.test\"\n", "", "no 'upstream NAME");
}

static void test_syntax_error(void **state)
{
    (void)state;
    expect_error("upstream a { address = \"127.0.0.1:25\" }\nworkers = \n",
                 ":3:", "premature end of file");
}

static void test_override_error_named(void **state)
{
    (void)state;
    const char *ov[] = {IN_TREE_DIR, IN_TREE_RULES, "max_recipients = 7", "workers = many"};
    struct capture cap;
    capture_start(&cap);
    struct sg_config *c = config_load("etc/smtpgate.conf", ov, 4, NULL);
    char *log = capture_end(&cap);
    assert_null(c);
    if (!strstr(log, "-o #4:1:"))
        fail_msg("override not named: %s", log);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct capture cap;
    capture_start(&cap);
    struct sg_config *c = config_load("/nonexistent/smtpgate.conf", NULL, 0, NULL);
    char *log = capture_end(&cap);
    assert_null(c);
    assert_non_null(strstr(log, "/nonexistent/smtpgate.conf: cannot read"));
}

static void test_numeric_only_refuses_names(void **state)
{
    (void)state;
    const struct config_load_opts numeric = {.numeric_hosts = true};
    expect_error_with("upstream a { address = \"mx.example.test:25\" }\n",
                      ":1:", "upstream address \"mx.example.test:25\"", &numeric);
}

static void test_parse_sockaddr(void **state)
{
    (void)state;
    struct sg_sockaddr sa;
    assert_null(sockaddr_parse("[::1]:25", 0, &sa));
    assert_string_equal(sa.text, "[::1]:25");
    assert_null(sockaddr_parse("*:2525", SOCKADDR_PASSIVE, &sa));
    assert_string_equal(sa.text, "0.0.0.0:2525");
    assert_non_null(sockaddr_parse("*:2525", 0, &sa));
    assert_non_null(sockaddr_parse("[::1]25", 0, &sa));
    assert_non_null(sockaddr_parse(":25", 0, &sa));
    assert_non_null(sockaddr_parse("127.0.0.1:0", 0, &sa));
    assert_non_null(sockaddr_parse("127.0.0.1:x", 0, &sa));
}

/* Settings load with any plugin section; its values are judged by the chain,
 * against the plugin's options, each error with the line of the value. */
static void expect_chain_error(const char *section, const char *line_tag, const char *reason)
{
    char text[1024];
    snprintf(text, sizeof(text), "upstream a { address = \"127.0.0.1:25\" }\n" IN_TREE_DIR "\n%s",
             section);
    struct sg_config *c = load_text(text, NULL);
    assert_non_null(c);
    struct capture cap;
    capture_start(&cap);
    int errors = 0;
    struct chain *ch = plugin_load_chain(c, NULL, 1, &errors);
    char *log = capture_end(&cap);
    assert_null(ch);
    assert_true(errors > 0);
    if (!strstr(log, line_tag) || !strstr(log, reason))
        fail_msg("log lacks \"%s\" / \"%s\": %s", line_tag, reason, log);
    config_unref(c);
}

static void test_plugin_values_named_by_line(void **state)
{
    (void)state;
    expect_chain_error("plugin rules {\n  path = \"rules.so\"\n  bogus = 1\n}\n",
                       ":5:", "no such option 'bogus'");
    expect_chain_error("plugin rules {\n  path = \"rules.so\"\n\n  budget_ms = {\"1\"}\n}\n",
                       ":6:", "unexpected token '{': plugin rules: 'budget_ms' is not a list");
    expect_chain_error("plugin rules {\n  path = \"rules.so\"\n  report_headers = maybe\n}\n",
                       ":5:", "plugin rules: 'report_headers' is \"maybe\": must be true or false");
    expect_chain_error("plugin rules {\n  path = \"rules.so\"\n  timeout = -1\n}\n", ":5:",
                       "plugin rules: 'timeout' is \"-1\"; it must be from 0.001 to 3600 seconds");
    expect_chain_error("plugin rules {\n  path = \"rules.so\"\n  failure_verdict = drop\n}\n",
                       ":5:", "expected one of: tempfail, continue, accept, reject");
    expect_chain_error("plugin rules {\n  files = {}\n}\n", ":3:", "plugin rules has no path");
    expect_chain_error("plugin gone {\n  path = \"no-such-plugin.so\"\n}\n",
                       ":4:", "plugin gone: cannot load");
}

/* A plugin section of an override replaces the file's whole, in its place. */
static void test_plugin_section_override(void **state)
{
    (void)state;
    const char *ov[] = {IN_TREE_DIR, IN_TREE_RULES,
                        "plugin rules { path = \"rules.so\" files = {\"rules/default.rules\"} "
                        "budget_ms = 250 }"};
    struct sg_config *c = config_load("etc/smtpgate.conf", ov, 3, NULL);
    assert_non_null(c);
    assert_int_equal(c->plugins.n, 1);
    const struct plugin_section *s = &c->plugins.v[0];
    assert_string_equal(s->name, "rules");
    assert_string_equal(s->source, "-o #3");
    assert_string_equal(plugin_section_get(s, "budget_ms")->items[0], "250");
    int errors = 0;
    struct chain *ch = plugin_load_chain(c, NULL, 1, &errors);
    assert_int_equal(errors, 0);
    assert_int_equal(chain_size(ch), 1);
    chain_unref(ch);
    config_unref(c);
}

static void test_refcount(void **state)
{
    (void)state;
    const char *ov[] = {"upstream a { address = \"127.0.0.1:25\" }"};
    struct sg_config *c = config_load(NULL, ov, 1, NULL);
    assert_non_null(c);
    config_ref(c);
    config_unref(c);
    assert_int_equal(atomic_load(&c->refs), 1);
    config_unref(c);
}

int main(void)
{
    log_open("test_config", true, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_config_loads),
        cmocka_unit_test(test_plugin_values_named_by_line),
        cmocka_unit_test(test_plugin_section_override),
        cmocka_unit_test(test_overrides_replace_file_values),
        cmocka_unit_test(test_defaults_with_only_an_upstream),
        cmocka_unit_test(test_strict_envelopes),
        cmocka_unit_test(test_upstreams_sorted_by_priority_stable),
        cmocka_unit_test(test_unknown_option_names_line),
        cmocka_unit_test(test_int_out_of_range),
        cmocka_unit_test(test_line_numbers_after_comments),
        cmocka_unit_test(test_bad_listen_address),
        cmocka_unit_test(test_bad_choice),
        cmocka_unit_test(test_bad_upstream_address),
        cmocka_unit_test(test_missing_upstream),
        cmocka_unit_test(test_upstream_without_address),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_override_error_named),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_numeric_only_refuses_names),
        cmocka_unit_test(test_parse_sockaddr),
        cmocka_unit_test(test_refcount),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
