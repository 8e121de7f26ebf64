/*
 * Unit tests for the milter plugin's pure parts: milter_addr (a milter's
 * socket in Postfix's and libmilter's spelling, and each mistake refused with
 * a reason) and milter_macros (lists split as the settings and SMFIC_OPTNEG
 * write them, values from smtpgate's facts, nothing for what is unknown).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "plugins/milter/milter_addr.h"
#include "plugins/milter/milter_macros.h"
#include "plugins/milter/milter_seen.h"

static void expect_inet(const char *spec, const char *ip, unsigned port)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    const char *why = NULL;
    assert_int_equal(milter_addr_parse(spec, &ss, &len, &why), 0);
    char buf[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        assert_int_equal(len, sizeof(*sin));
        inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
        assert_int_equal(ntohs(sin->sin_port), port);
    } else {
        assert_int_equal(ss.ss_family, AF_INET6);
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        assert_int_equal(len, sizeof(*sin6));
        inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
        assert_int_equal(ntohs(sin6->sin6_port), port);
    }
    assert_string_equal(buf, ip);
}

static void test_addr_forms(void **state)
{
    (void)state;
    expect_inet("inet:127.0.0.1:8891", "127.0.0.1", 8891);
    expect_inet("inet:8891@127.0.0.1", "127.0.0.1", 8891);
    expect_inet("inet:localhost:10025", "127.0.0.1", 10025);
    expect_inet("inet:[127.0.0.2]:25", "127.0.0.2", 25);
    expect_inet("inet:[::1]:8891", "::1", 8891);
    expect_inet("inet6:8891@::1", "::1", 8891);
    expect_inet("inet6:[2001:db8::5]:65535", "2001:db8::5", 65535);
    expect_inet("inet6:1@localhost", "::1", 1);

    struct sockaddr_storage ss;
    socklen_t len;
    const char *why = NULL;
    assert_int_equal(milter_addr_parse("unix:/run/opendkim/opendkim.sock", &ss, &len, &why), 0);
    assert_int_equal(ss.ss_family, AF_UNIX);
    assert_string_equal(((struct sockaddr_un *)&ss)->sun_path, "/run/opendkim/opendkim.sock");
    assert_int_equal(milter_addr_parse("local:/x", &ss, &len, &why), 0);
}

static void expect_refused(const char *spec, const char *reason_part)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *why = NULL;
    assert_int_equal(milter_addr_parse(spec, &ss, &len, &why), -1);
    assert_non_null(why);
    if (!strstr(why, reason_part))
        fail_msg("%s: reason \"%s\" lacks \"%s\"", spec, why, reason_part);
}

static void test_addr_refused(void **state)
{
    (void)state;
    expect_refused("", "expected inet:");
    expect_refused("tcp:127.0.0.1:25", "expected inet:");
    expect_refused("inet:127.0.0.1", "HOST:PORT");
    expect_refused("inet:127.0.0.1:0", "port from 1 to 65535");
    expect_refused("inet:127.0.0.1:65536", "port from 1 to 65535");
    expect_refused("inet:127.0.0.1:88x", "port");
    expect_refused("inet:mail.example.com:8891", "numeric address or localhost");
    expect_refused("inet:::1:8891", "needs brackets");
    expect_refused("inet:0@127.0.0.1", "before '@'");
    expect_refused("inet:8891@", "numeric address");
    expect_refused("inet6:[127.0.0.1:5", "numeric address");
    expect_refused("unix:relative.sock", "absolute");
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    char spec[220];
    snprintf(spec, sizeof(spec), "unix:%s", longpath);
    expect_refused(spec, "too long");
}

static void test_macros_split(void **state)
{
    (void)state;
    struct milter_macro_list l;
    assert_int_equal(milter_macros_split("  j {daemon_name},_ ,,{i}\t", &l), 0);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.names[0], "j");
    assert_string_equal(l.names[1], "{daemon_name}");
    assert_string_equal(l.names[2], "_");
    assert_string_equal(l.names[3], "{i}");
    milter_macros_free(&l);
    assert_int_equal(milter_macros_split("", &l), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(milter_macros_split(NULL, &l), 0);
    assert_int_equal(l.n, 0);
    /* more than the limit: the first MILTER_MACROS_MAX are kept */
    char many[MILTER_MACROS_MAX * 4 + 40] = "";
    for (int i = 0; i < MILTER_MACROS_MAX + 5; i++)
        strcat(many, "x ");
    assert_int_equal(milter_macros_split(many, &l), 0);
    assert_int_equal(l.n, MILTER_MACROS_MAX);
    milter_macros_free(&l);
}

static void test_macros_values(void **state)
{
    (void)state;
    struct milter_facts f = {
        .host_name = "gate.example.test",
        .daemon_name = "smtpgate",
        .daemon_addr = "192.0.2.1",
        .daemon_port = 25,
        .version = "smtpgate",
        .client_addr = "198.51.100.7",
        .client_port = 40000,
        .tx_id = "ABC.1",
        .mail_addr = "a@sender.example",
        .rcpt_addr = "b@rcpt.example",
        .auth_authen = "alice",
    };
    char buf[320];
    assert_string_equal(milter_macros_value(&f, "j", buf, sizeof(buf)), "gate.example.test");
    assert_string_equal(milter_macros_value(&f, "_", buf, sizeof(buf)), "unknown [198.51.100.7]");
    assert_string_equal(milter_macros_value(&f, "{client_name}", buf, sizeof(buf)), "unknown");
    f.client_name = "host.example";
    assert_string_equal(milter_macros_value(&f, "_", buf, sizeof(buf)),
                        "host.example [198.51.100.7]");
    assert_string_equal(milter_macros_value(&f, "{client_ptr}", buf, sizeof(buf)), "host.example");
    assert_string_equal(milter_macros_value(&f, "{daemon_port}", buf, sizeof(buf)), "25");
    assert_string_equal(milter_macros_value(&f, "client_port", buf, sizeof(buf)), "40000");
    assert_string_equal(milter_macros_value(&f, "i", buf, sizeof(buf)), "ABC.1");
    assert_string_equal(milter_macros_value(&f, "{i}", buf, sizeof(buf)), "ABC.1");
    assert_string_equal(milter_macros_value(&f, "{mail_host}", buf, sizeof(buf)), "sender.example");
    assert_string_equal(milter_macros_value(&f, "{rcpt_host}", buf, sizeof(buf)), "rcpt.example");
    assert_string_equal(milter_macros_value(&f, "{rcpt_mailer}", buf, sizeof(buf)), "smtp");
    assert_string_equal(milter_macros_value(&f, "{auth_authen}", buf, sizeof(buf)), "alice");
    /* what smtpgate does not know is not sent */
    assert_null(milter_macros_value(&f, "{tls_version}", buf, sizeof(buf)));
    assert_null(milter_macros_value(&f, "{cipher_bits}", buf, sizeof(buf)));
    assert_null(milter_macros_value(&f, "{no_such_macro}", buf, sizeof(buf)));
    assert_null(milter_macros_value(&f, "{}", buf, sizeof(buf)));
    f.mail_addr = "";
    assert_null(milter_macros_value(&f, "{mail_host}", buf, sizeof(buf)));
}

static void test_macros_defaults(void **state)
{
    (void)state;
    assert_string_equal(
        milter_macros_default(SMFIM_CONNECT),
        "j {daemon_name} {daemon_addr} v _ {client_addr} {client_name} {client_ptr}");
    assert_string_equal(milter_macros_default(SMFIM_ENVRCPT),
                        "i {rcpt_addr} {rcpt_host} {rcpt_mailer}");
    assert_string_equal(milter_macros_default(SMFIM_EOM), "i");
    assert_string_equal(milter_macros_default(99), "");
}

static void test_seen(void **state)
{
    (void)state;
    static const int a = 0, b = 0; /* two owners: their addresses */
    assert_int_equal(mc_seen_add("T.1", &a, "Authentication-Results", "x; dkim=pass", true), 0);
    assert_int_equal(mc_seen_add("T.1", &a, "X-Added", "v", false), 0);
    assert_int_equal(mc_seen_add("T.2", &a, "X-Other", "w", false), 0);
    size_t n;
    struct mc_seen_field *f = mc_seen_collect("T.1", &b, &n);
    assert_int_equal(n, 2);
    assert_string_equal(f[0].name, "Authentication-Results");
    assert_true(f[0].top);
    assert_string_equal(f[1].value, "v");
    assert_false(f[1].top);
    mc_seen_free(f, n);
    /* an owner is not shown its own fields */
    f = mc_seen_collect("T.1", &a, &n);
    assert_int_equal(n, 0);
    assert_null(f);
    mc_seen_drop("T.1", &a);
    f = mc_seen_collect("T.1", &b, &n);
    assert_int_equal(n, 0);
    f = mc_seen_collect("T.2", &b, &n);
    assert_int_equal(n, 1);
    mc_seen_free(f, n);
    mc_seen_drop("T.2", &a);
    /* the list is empty again and can grow after the drops */
    assert_int_equal(mc_seen_add("T.3", &b, "X-New", "z", false), 0);
    f = mc_seen_collect("T.3", &a, &n);
    assert_int_equal(n, 1);
    mc_seen_free(f, n);
    mc_seen_drop("T.3", &b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_forms),      cmocka_unit_test(test_addr_refused),
        cmocka_unit_test(test_macros_split),    cmocka_unit_test(test_macros_values),
        cmocka_unit_test(test_macros_defaults), cmocka_unit_test(test_seen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
