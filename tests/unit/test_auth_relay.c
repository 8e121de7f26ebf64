/*
 * Unit tests for auth_relay: mechanism lists as upstreams announce them,
 * AUTH arguments and initial responses, response lines (base64, empty, "*",
 * the length bound), base64 decoding, the login name of each mechanism that
 * carries one, and what of an AUTH line may be logged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "codec/auth_relay.h"

static void test_mechs(void **state)
{
    (void)state;
    const char *l = "PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256-PLUS GSSAPI ntlm";
    unsigned m = auth_mechs_parse(l, strlen(l));
    assert_int_equal(m, AUTH_MECH_PLAIN | AUTH_MECH_LOGIN | AUTH_MECH_CRAM_MD5);
    char out[64];
    assert_int_equal(auth_mechs_format(m, out, sizeof(out)), strlen("PLAIN LOGIN CRAM-MD5"));
    assert_string_equal(out, "PLAIN LOGIN CRAM-MD5");
    /* Too small: whole names only. */
    assert_int_equal(auth_mechs_format(m, out, 12), strlen("PLAIN LOGIN"));
    assert_string_equal(out, "PLAIN LOGIN");
    assert_int_equal(auth_mechs_parse("", 0), 0);
    assert_int_equal(auth_mechs_parse("plain,login", 11), AUTH_MECH_PLAIN | AUTH_MECH_LOGIN);
    assert_int_equal(auth_mech_lookup("SCRAM-SHA-1", 11), AUTH_MECH_SCRAM_SHA_1);
    assert_int_equal(auth_mech_lookup("SCRAM-SHA-1-PLUS", 16), 0);
}

static void test_cmd_parse(void **state)
{
    (void)state;
    struct auth_cmd c;
    assert_int_equal(auth_cmd_parse("PLAIN", 5, &c), AUTH_OK);
    assert_int_equal(c.mech, AUTH_MECH_PLAIN);
    assert_null(c.initial);
    const char *a = "plain AGFsaWNlAHNlY3JldA==";
    assert_int_equal(auth_cmd_parse(a, strlen(a), &c), AUTH_OK);
    assert_int_equal(c.initial_len, 20);
    assert_int_equal(auth_cmd_parse("LOGIN =", 7, &c), AUTH_OK);
    assert_int_equal(c.initial_len, 1);
    assert_int_equal(auth_cmd_parse("GSSAPI", 6, &c), AUTH_UNKNOWN_MECH);
    assert_int_equal(auth_cmd_parse("", 0, &c), AUTH_SYNTAX);
    assert_int_equal(auth_cmd_parse("PLAIN ", 6, &c), AUTH_SYNTAX);
    assert_int_equal(auth_cmd_parse("PLAIN abc", 9, &c), AUTH_SYNTAX);   /* not 4n */
    assert_int_equal(auth_cmd_parse("PLAIN ab=c", 10, &c), AUTH_SYNTAX); /* inner = */
    assert_int_equal(auth_cmd_parse("PLAIN AAAA BBBB", 15, &c), AUTH_SYNTAX);
    assert_int_equal(auth_cmd_parse("PL@IN", 5, &c), AUTH_SYNTAX);
}

static void test_response(void **state)
{
    (void)state;
    assert_int_equal(auth_response_check("", 0, 100), AUTH_OK);
    assert_int_equal(auth_response_check("*", 1, 100), AUTH_CANCEL);
    assert_int_equal(auth_response_check("YWxpY2U=", 8, 100), AUTH_OK);
    assert_int_equal(auth_response_check("YWxpY2U=", 8, 7), AUTH_TOO_LONG);
    assert_int_equal(auth_response_check("YWxp Y2U=", 9, 100), AUTH_SYNTAX);
    assert_int_equal(auth_response_check("QUIT", 4, 100), AUTH_OK); /* base64 too: relayed */
    assert_int_equal(auth_response_check("RSET\r", 5, 100), AUTH_SYNTAX);
}

static void test_base64(void **state)
{
    (void)state;
    unsigned char out[16];
    assert_int_equal(auth_base64_decode("YWxpY2U=", 8, out, sizeof(out)), 5);
    assert_memory_equal(out, "alice", 5);
    assert_int_equal(auth_base64_decode("YQ==", 4, out, sizeof(out)), 1);
    assert_int_equal(auth_base64_decode("", 0, out, sizeof(out)), 0);
    assert_int_equal(auth_base64_decode("YWxpY2U=", 8, out, 4), (size_t)-1);
    assert_int_equal(auth_base64_decode("Y===", 4, out, sizeof(out)), (size_t)-1);
}

static void test_login_guess(void **state)
{
    (void)state;
    char name[AUTH_LOGIN_MAX];
    /* "\0alice\0secret" */
    assert_true(
        auth_login_guess(AUTH_MECH_PLAIN, 0, "AGFsaWNlAHNlY3JldA==", 20, name, sizeof(name)));
    assert_string_equal(name, "alice");
    /* "admin\0alice\0secret": the name is authcid, not the authzid */
    assert_true(
        auth_login_guess(AUTH_MECH_PLAIN, 1, "YWRtaW4AYWxpY2UAc2VjcmV0", 24, name, sizeof(name)));
    assert_string_equal(name, "alice");
    /* no second NUL: nothing, rather than the password */
    assert_false(auth_login_guess(AUTH_MECH_PLAIN, 0, "AGFsaWNl", 8, name, sizeof(name)));
    assert_true(auth_login_guess(AUTH_MECH_LOGIN, 1, "YWxpY2U=", 8, name, sizeof(name)));
    assert_string_equal(name, "alice");
    /* the second LOGIN response is the password */
    assert_false(auth_login_guess(AUTH_MECH_LOGIN, 2, "c2VjcmV0", 8, name, sizeof(name)));
    /* CRAM-MD5 "bob 0123abcd" */
    assert_true(
        auth_login_guess(AUTH_MECH_CRAM_MD5, 1, "Ym9iIDAxMjNhYmNk", 16, name, sizeof(name)));
    assert_string_equal(name, "bob");
    /* SCRAM "n,,n=carol,r=xyz" */
    assert_true(auth_login_guess(AUTH_MECH_SCRAM_SHA_256, 0, "biwsbj1jYXJvbCxyPXh5eg==", 24, name,
                                 sizeof(name)));
    assert_string_equal(name, "carol");
    /* control characters are not a name */
    assert_false(auth_login_guess(AUTH_MECH_LOGIN, 1, "YQpi", 4, name, sizeof(name)));
    assert_false(auth_login_guess(AUTH_MECH_LOGIN, 0, "=", 1, name, sizeof(name)));
    assert_false(auth_login_guess(AUTH_MECH_XOAUTH2, 0, "YWxpY2U=", 8, name, sizeof(name)));
}

static void test_loggable(void **state)
{
    (void)state;
    const char *l = "AUTH PLAIN AGFsaWNlAHNlY3JldA==";
    assert_int_equal(auth_loggable_len(l, strlen(l)), 10);
    assert_int_equal(auth_loggable_len("auth login", 10), 10);
    assert_int_equal(auth_loggable_len("AUTHX y", 7), 7);
    assert_int_equal(auth_loggable_len("MAIL FROM:<a@b>", 15), 15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mechs),       cmocka_unit_test(test_cmd_parse),
        cmocka_unit_test(test_response),    cmocka_unit_test(test_base64),
        cmocka_unit_test(test_login_guess), cmocka_unit_test(test_loggable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
