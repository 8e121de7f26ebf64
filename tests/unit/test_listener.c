/*
 * Unit tests for the edge's config: CIDR ranges of proxy_trusted (IPv4, IPv6,
 * IPv4-mapped clients, host bits refused), SNI name matching, and listener
 * sections and upstream TLS settings as config_load reads them, with the
 * file:line of every error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/listener.h"
#include "daemon/reload.h"
#include "daemon/runtime.h"
#include "daemon/tls.h"
#include "daemon/upstream_pool.h"
#include "util/log.h"
#include "util/sockaddr.h"

/* Host names are refused rather than resolved: no DNS query from a unit test. */
static const struct config_load_opts numeric = {.numeric_hosts = true};

static struct sockaddr_storage v4(const char *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *s = (struct sockaddr_in *)&ss;
    s->sin_family = AF_INET;
    inet_pton(AF_INET, a, &s->sin_addr);
    return ss;
}

static struct sockaddr_storage v6(const char *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
    s->sin6_family = AF_INET6;
    inet_pton(AF_INET6, a, &s->sin6_addr);
    return ss;
}

static void test_ranges(void **state)
{
    (void)state;
    struct net_range r[3];
    assert_true(net_range_parse("192.0.2.0/24", &r[0]));
    assert_true(net_range_parse("2001:db8::/32", &r[1]));
    assert_true(net_range_parse("127.0.0.1", &r[2]));
    struct sockaddr_storage a = v4("192.0.2.200");
    assert_true(net_range_contains(r, 3, (struct sockaddr *)&a));
    a = v4("192.0.3.1");
    assert_false(net_range_contains(r, 3, (struct sockaddr *)&a));
    a = v4("127.0.0.1");
    assert_true(net_range_contains(r, 3, (struct sockaddr *)&a));
    a = v4("127.0.0.2");
    assert_false(net_range_contains(r, 3, (struct sockaddr *)&a));
    a = v6("2001:db8:ffff::1");
    assert_true(net_range_contains(r, 3, (struct sockaddr *)&a));
    a = v6("2001:db9::1");
    assert_false(net_range_contains(r, 3, (struct sockaddr *)&a));
    a = v6("::ffff:192.0.2.9");
    assert_true(net_range_contains(r, 3, (struct sockaddr *)&a));

    struct net_range x;
    assert_true(net_range_parse("10.0.0.0/9", &x));
    assert_true(net_range_parse("0.0.0.0/0", &x));
    a = v4("203.0.113.1");
    assert_true(net_range_contains(&x, 1, (struct sockaddr *)&a));
    assert_false(net_range_parse("10.1.2.3/8", &x)); /* host bits */
    assert_false(net_range_parse("10.0.0.0/33", &x));
    assert_false(net_range_parse("10.0.0.0/", &x));
    assert_false(net_range_parse("10.0.0.0/-1", &x));
    assert_false(net_range_parse("::/129", &x));
    assert_false(net_range_parse("example.com", &x));
    assert_false(net_range_parse("", &x));
}

static void test_names(void **state)
{
    (void)state;
    assert_true(tls_name_matches("mx.example.com", "MX.Example.COM"));
    assert_true(tls_name_matches("*.example.com", "a.example.com"));
    assert_false(tls_name_matches("*.example.com", "example.com"));
    assert_false(tls_name_matches("*.example.com", "a.b.example.com"));
    assert_false(tls_name_matches("*.example.com", ".example.com"));
    assert_false(tls_name_matches("mx.example.com", "mx.example.org"));
    assert_false(tls_name_matches("*", "a"));
    assert_false(tls_name_matches("", "a"));
    assert_int_equal(tls_version_from_name("TLSv1.3"), TLS1_3_VERSION);
    assert_int_equal(tls_version_from_name("SSLv3"), 0);
}

/* ---- config ---- */

static char conf_path[64];

static void write_conf(const char *text)
{
    FILE *f = fopen(conf_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    log_open("test_listener", true, 0);
    snprintf(conf_path, sizeof(conf_path), "/tmp/test_listener_%d.conf", (int)getpid());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(conf_path);
    return 0;
}

static void test_config_listeners(void **state)
{
    (void)state;
    write_conf("listen = {\"127.0.0.1:2525\"}\n"
               "listener relay {\n"
               "  address = \"127.0.0.1:2526\"\n"
               "  proxy_protocol = \"v2\"\n"
               "  proxy_trusted = {\"10.0.0.0/8\", \"127.0.0.1\"}\n"
               "  auth_mechanisms = \"PLAIN LOGIN\"\n"
               "}\n"
               "upstream pf { address = \"127.0.0.1:10025\" }\n");
    struct sg_config *c = config_load(conf_path, NULL, 0, &numeric);
    assert_non_null(c);
    assert_int_equal(c->nlisten, 2);
    assert_string_equal(c->listen[1].text, "127.0.0.1:2526");
    assert_null(c->listeners[0].name);
    assert_int_equal(c->listeners[0].proxy_protocol, 0);
    assert_string_equal(c->listeners[1].name, "relay");
    assert_int_equal(c->listeners[1].ntrusted, 2);
    assert_int_equal(c->listeners[1].auth_max_failures, 3);
    assert_int_equal(c->upstreams[0].tls.mode, UPSTREAM_TLS_NONE);
    struct sockaddr_storage local;
    struct sg_sockaddr sa;
    assert_null(sockaddr_parse("127.0.0.1:2526", 0, &sa));
    memcpy(&local, &sa.sa, sizeof(local));
    assert_ptr_equal(listener_find(c, (struct sockaddr *)&local), &c->listeners[1]);
    config_unref(c);

    /* Only listener sections: the built-in listen default is not bound. */
    write_conf("listener a { address = \"127.0.0.1:2600\" }\n"
               "upstream pf {\n address = \"127.0.0.1:10025\"\n tls = \"opportunistic\"\n}\n");
    c = config_load(conf_path, NULL, 0, &numeric);
    assert_non_null(c);
    assert_int_equal(c->nlisten, 1);
    assert_int_equal(c->upstreams[0].tls.mode, UPSTREAM_TLS_OPPORTUNISTIC);
    config_unref(c);
    /* The daemon's assembly builds the upstream's TLS context from the settings. */
    struct cmdline cmd = {.config_file = conf_path, .load = numeric};
    struct sg_runtime *rt = reload_assemble(&cmd, NULL);
    assert_non_null(rt);
    assert_int_equal(rt->cfg->upstreams[0].tls.mode, UPSTREAM_TLS_OPPORTUNISTIC);
    assert_non_null(rt->upstreams[0].tls);
    assert_null(rt->listen_tls[0]);
    runtime_unref(rt);
    upstream_pool_shutdown();
}

static void test_config_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        /* TLS without a certificate */
        "listener a {\n address = \"127.0.0.1:2600\"\n tls = \"starttls\"\n}\n",
        /* a choice misspelt */
        "listener a {\n address = \"127.0.0.1:2600\"\n tls = \"yes\"\n}\n",
        /* certificate file missing */
        "listener a {\n address = \"127.0.0.1:2600\"\n tls_cert_file = {\"/nonexistent.pem\"}\n}\n",
        /* policy without STARTTLS */
        "listener a {\n address = \"127.0.0.1:2600\"\n require_tls = \"mail\"\n}\n",
        /* PROXY without trusted networks */
        "listener a {\n address = \"127.0.0.1:2600\"\n proxy_protocol = \"v1\"\n}\n",
        /* trusted network with host bits */
        "listener a {\n address = \"127.0.0.1:2600\"\n proxy_trusted = {\"10.1.0.0/8\"}\n}\n",
        /* a mechanism that cannot be relayed */
        "listener a {\n address = \"127.0.0.1:2600\"\n auth_mechanisms = \"GSSAPI\"\n}\n",
        /* no address */
        "listener a {\n tls = \"none\"\n}\n",
        /* the same address twice */
        "listen = {\"127.0.0.1:2600\"}\nlistener a {\n address = \"127.0.0.1:2600\"\n}\n",
        /* required TLS upstream without the name to verify */
        "upstream pf {\n address = \"127.0.0.1:10025\"\n tls = \"required\"\n}\n",
        "listener a {\n address = \"127.0.0.1:2600\"\n auth_max_failures = 0\n}\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[1024];
        snprintf(text, sizeof(text), "%s%s", bad[i],
                 strstr(bad[i], "upstream pf") ? ""
                                               : "upstream pf { address = \"127.0.0.1:10025\" }\n");
        write_conf(text);
        struct sg_config *c = config_load(conf_path, NULL, 0, &numeric);
        if (c) {
            config_unref(c);
            fail_msg("accepted config %zu:\n%s", i, text);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_config_listeners),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
