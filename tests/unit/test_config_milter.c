/*
 * Unit tests for the config's milter section (smtpgate-milter's socket): its
 * default, a value from the file and from an override, a bad socket refused
 * with file:line and reason, and a config without upstream sections, which
 * only smtpgate-milter accepts.
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

#include "config/config.h"

static const char *log_path = "/tmp/test_config_milter.log";

/* Load text as a file with opts; the module's error lines go to *log. */
static struct sg_config *load_with(const char *text, const char *const *ov, size_t nov, char *path,
                                   size_t path_size, char **log,
                                   const struct config_load_opts *opts)
{
    snprintf(path, path_size, "/tmp/test_config_milter.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(log_path, "w+");
    assert_non_null(f);
    dup2(fileno(f), 2);
    struct sg_config *c = config_load(path, ov, nov, opts);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);

    static char buf[4096];
    rewind(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(log_path);
    unlink(path);
    if (log)
        *log = buf;
    return c;
}

static struct sg_config *load(const char *text, const char *const *ov, size_t nov, char *path,
                              size_t path_size, char **log)
{
    return load_with(text, ov, nov, path, path_size, log, NULL);
}

#define UPSTREAM "upstream u { address = \"127.0.0.1:10025\" }\n"

static void test_example_has_the_milter_socket(void **state)
{
    (void)state;
    /* the example's plugins from the build, as in test_config.c */
    const char *ov[] = {"plugin_dir = \"" SMTPGATE_BUILD_DIR "/plugins\"",
                        "plugin rules { path = \"rules.so\" files = {\"rules/default.rules\"} }"};
    struct sg_config *c = config_load("etc/smtpgate.conf", ov, 2, NULL);
    assert_non_null(c);
    assert_string_equal(c->milter_socket, "inet:8890@127.0.0.1");
    config_unref(c);
}

static void test_default_socket(void **state)
{
    (void)state;
    char path[64];
    struct sg_config *c = load(UPSTREAM, NULL, 0, path, sizeof(path), NULL);
    assert_non_null(c);
    assert_string_equal(c->milter_socket, "inet:8890@127.0.0.1");
    config_unref(c);
}

static void test_socket_from_file_and_override(void **state)
{
    (void)state;
    char path[64];
    struct sg_config *c = load(UPSTREAM "milter {\n  socket = \"unix:/run/smtpgate/m.sock\"\n}\n",
                               NULL, 0, path, sizeof(path), NULL);
    assert_non_null(c);
    assert_string_equal(c->milter_socket, "unix:/run/smtpgate/m.sock");
    config_unref(c);

    const char *ov[] = {"milter { socket = \"inet6:8891@::1\" }"};
    c = load(UPSTREAM "milter {\n  socket = \"unix:/run/smtpgate/m.sock\"\n}\n", ov, 1, path,
             sizeof(path), NULL);
    assert_non_null(c);
    assert_string_equal(c->milter_socket, "inet6:8891@::1");
    config_unref(c);
}

static void test_bad_socket_names_file_and_line(void **state)
{
    (void)state;
    char path[64], *log;
    struct sg_config *c = load(UPSTREAM "milter {\n  socket = \"inet:8890@localhost\"\n}\n", NULL,
                               0, path, sizeof(path), &log);
    assert_null(c);
    char want[256];
    snprintf(want, sizeof(want),
             "%s:3: milter socket \"inet:8890@localhost\": address must be a numeric IPv4 address",
             path);
    assert_non_null(strstr(log, want));

    c = load(UPSTREAM "milter { socket = \"8890\" }\n", NULL, 0, path, sizeof(path), &log);
    assert_null(c);
    assert_non_null(strstr(log, "expected inet:PORT@ADDRESS, inet6:PORT@ADDRESS or unix:PATH"));
}

static void test_upstream_optional_for_the_milter_only(void **state)
{
    (void)state;
    char path[64], *log;
    const char *text = "milter { socket = \"inet:8890@127.0.0.1\" }\n";
    struct sg_config *c = load(text, NULL, 0, path, sizeof(path), &log);
    assert_null(c);
    assert_non_null(strstr(log, "no 'upstream NAME"));

    const struct config_load_opts milter = {.upstream_optional = true};
    c = load_with(text, NULL, 0, path, sizeof(path), &log, &milter);
    assert_non_null(c);
    assert_int_equal(c->nupstreams, 0);
    assert_string_equal(c->milter_socket, "inet:8890@127.0.0.1");
    config_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_has_the_milter_socket),
        cmocka_unit_test(test_default_socket),
        cmocka_unit_test(test_socket_from_file_and_override),
        cmocka_unit_test(test_bad_socket_names_file_and_line),
        cmocka_unit_test(test_upstream_optional_for_the_milter_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
