/*
 * milter_wire: packets byte for byte as libmilter reads them (length in
 * network order counting the command octet), every reply kind with its
 * checks, the negotiation's macro lists and its refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "codec/milter_wire.h"

#define BYTES(s) ((const uint8_t *)(s)), (sizeof(s) - 1)

static void assert_packet(const struct milter_out *o, const char *want, size_t want_len)
{
    assert_false(milter_out_failed(o));
    assert_int_equal(o->len, want_len);
    assert_memory_equal(o->buf, want, want_len);
}

static void test_commands_encode(void **state)
{
    (void)state;
    struct milter_out o;
    milter_out_init(&o);

    milter_out_optneg(&o, 6, SMFIF_ADDHDRS | SMFIF_CHGFROM, SMFIP_NR_HDR | SMFIP_SKIP);
    assert_packet(&o, "\0\0\0\x0dO\0\0\0\x06\0\0\0\x41\0\0\x04\x80", 17);

    milter_out_clear(&o);
    milter_out_connect(&o, "mail.example.org", SMFIA_INET, 25, "192.0.2.1");
    assert_packet(&o,
                  "\0\0\0\x1f"
                  "Cmail.example.org\0"
                  "4\0\x19"
                  "192.0.2.1\0",
                  35);

    milter_out_clear(&o);
    milter_out_connect(&o, "[UNAVAILABLE]", SMFIA_UNKNOWN, 0, NULL);
    assert_packet(&o,
                  "\0\0\0\x10"
                  "C[UNAVAILABLE]\0U",
                  20);

    milter_out_clear(&o);
    const char *args[] = {"SIZE=100", "BODY=8BITMIME"};
    milter_out_envelope(&o, SMFIC_MAIL, "a@example.org", args, 2);
    assert_packet(&o,
                  "\0\0\0\x28"
                  "M<a@example.org>\0SIZE=100\0BODY=8BITMIME\0",
                  44);

    milter_out_clear(&o);
    milter_out_envelope(&o, SMFIC_MAIL, "", NULL, 0);
    assert_packet(&o, "\0\0\0\x04M<>\0", 8);

    milter_out_clear(&o);
    const char *names[] = {"j", "{client_addr}"}, *values[] = {"mx.example.test", NULL};
    milter_out_macros(&o, SMFIC_CONNECT, names, values, 2);
    assert_packet(&o,
                  "\0\0\0\x23"
                  "DCj\0mx.example.test\0{client_addr}\0\0",
                  39);

    milter_out_clear(&o);
    milter_out_header(&o, "Subject", " hi\n there");
    milter_out_simple(&o, SMFIC_EOH);
    assert_packet(&o,
                  "\0\0\0\x14"
                  "LSubject\0 hi\n there\0"
                  "\0\0\0\x01N",
                  29);

    milter_out_clear(&o);
    milter_out_helo(&o, "client.example");
    milter_out_unknown(&o, "XYZZY now");
    assert_packet(&o,
                  "\0\0\0\x10Hclient.example\0"
                  "\0\0\0\x0bUXYZZY now\0",
                  35);
    milter_out_free(&o);
}

static void test_body_chunk_limit(void **state)
{
    (void)state;
    static uint8_t big[MILTER_CHUNK_SIZE + 1];
    struct milter_out o;
    milter_out_init(&o);
    assert_int_equal(milter_out_body(&o, big, sizeof(big)), -1);
    assert_false(milter_out_failed(&o));
    assert_int_equal(o.len, 0);
    assert_int_equal(milter_out_body(&o, big, MILTER_CHUNK_SIZE), 0);
    assert_int_equal(o.len, 4 + 1 + MILTER_CHUNK_SIZE);
    assert_memory_equal(o.buf,
                        "\0\1\0\0"
                        "B",
                        5); /* 65535 + the command octet */
    milter_out_free(&o);
}

static void test_frame(void **state)
{
    (void)state;
    char cmd;
    const uint8_t *data;
    size_t dlen;
    const uint8_t two[] = "\0\0\0\x01"
                          "c"
                          "\0\0\0\x02"
                          "yX";
    assert_int_equal(milter_wire_frame(two, 3, 100, &cmd, &data, &dlen), 0);
    assert_int_equal(milter_wire_frame(two, 4, 100, &cmd, &data, &dlen), 0);
    assert_int_equal(milter_wire_frame(two, 5, 100, &cmd, &data, &dlen), 5);
    assert_int_equal(cmd, 'c');
    assert_int_equal(dlen, 0);
    assert_int_equal(milter_wire_frame(two + 5, 5, 100, &cmd, &data, &dlen), 0);
    assert_int_equal(milter_wire_frame(two + 5, 6, 100, &cmd, &data, &dlen), 6);
    assert_int_equal(cmd, 'y');
    assert_int_equal(dlen, 1);
    assert_int_equal(data[0], 'X');
    /* A zero length has no command octet; a length past the limit is refused
     * before its data arrives. */
    assert_int_equal(milter_wire_frame(BYTES("\0\0\0\0c"), 100, &cmd, &data, &dlen), -1);
    assert_int_equal(milter_wire_frame(BYTES("\0\1\0\x01"), 65535, &cmd, &data, &dlen), -1);
    assert_int_equal(milter_wire_frame(BYTES("\0\1\0\x00"), 65535, &cmd, &data, &dlen), 0);
    assert_int_equal(milter_wire_frame(BYTES("\xff\xff\xff\xff"), SIZE_MAX, &cmd, &data, &dlen), 0);
    assert_int_equal(milter_wire_data_max(0), 65535);
    assert_int_equal(milter_wire_data_max(SMFIP_MDS_256K), 256 * 1024 - 1);
    assert_int_equal(milter_wire_data_max(SMFIP_MDS_1M | SMFIP_MDS_256K), 1024 * 1024 - 1);
}

static enum milter_reply_kind reply(char cmd, const void *data, size_t len, struct milter_reply *r)
{
    return milter_wire_reply(cmd, data, len, r);
}

static void test_verdict_replies(void **state)
{
    (void)state;
    struct milter_reply r;
    const struct {
        char cmd;
        enum milter_reply_kind kind;
    } bare[] = {{'a', MILTER_R_ACCEPT},   {'c', MILTER_R_CONTINUE}, {'r', MILTER_R_REJECT},
                {'t', MILTER_R_TEMPFAIL}, {'d', MILTER_R_DISCARD},  {'s', MILTER_R_SKIP},
                {'p', MILTER_R_PROGRESS}, {'4', MILTER_R_SHUTDOWN}, {'f', MILTER_R_CONN_FAIL}};
    for (size_t i = 0; i < sizeof(bare) / sizeof(bare[0]); i++) {
        assert_int_equal(reply(bare[i].cmd, "", 0, &r), bare[i].kind);
        assert_false(milter_wire_is_edit(r.kind));
        assert_int_equal(reply(bare[i].cmd, "x", 1, &r), MILTER_R_INVALID);
        assert_string_equal(r.why, "data after a reply that has none");
    }
    assert_int_equal(reply('Z', "", 0, &r), MILTER_R_INVALID);
    assert_int_equal(reply('l', "\0\0\0\0j\0", 6, &r), MILTER_R_INVALID);
    assert_string_equal(r.why, "SETSYMLIST outside the negotiation");
}

static void test_replycode(void **state)
{
    (void)state;
    struct milter_reply r;
    assert_int_equal(reply('y', BYTES("550 5.7.1 Command rejected\0"), &r), MILTER_R_REPLYCODE);
    assert_int_equal(r.code, 550);
    assert_string_equal(r.text, "550 5.7.1 Command rejected");
    assert_int_equal(reply('y', BYTES("451-4.7.1 first\r\n451 4.7.1 second\0"), &r),
                     MILTER_R_REPLYCODE);
    assert_int_equal(r.code, 451);
    assert_int_equal(reply('y', BYTES("554\0"), &r), MILTER_R_REPLYCODE);

    const char *bad[] = {
        "250 2.0.0 ok",        /* only a refusal may be set */
        "55 x",                /* too short a code */
        "550x5.7.1",           /* no blank after the code */
        "550-5.7.1 only line", /* '-' but nothing follows */
        "550 one\r\n550 two",  /* ' ' but more follows */
        "550-one\r\n451 two",  /* codes differ */
        "550 a\nb",            /* bare LF */
        "550 a\rb",            /* bare CR */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(reply('y', bad[i], strlen(bad[i]) + 1, &r), MILTER_R_INVALID);
    assert_int_equal(reply('y', BYTES("550 x"), &r), MILTER_R_INVALID); /* no NUL */
    assert_int_equal(reply('y', BYTES("550 x\0\0"), &r), MILTER_R_INVALID);
}

static void test_header_edits(void **state)
{
    (void)state;
    struct milter_reply r;
    assert_int_equal(reply('h', BYTES("X-Spam\0 yes\0"), &r), MILTER_R_ADDHEADER);
    assert_string_equal(r.name, "X-Spam");
    assert_string_equal(r.value, " yes");
    assert_true(milter_wire_is_edit(r.kind));
    assert_int_equal(reply('i',
                           BYTES("\0\0\0\x02"
                                 "Authentication-Results\0mx; dkim=pass\0"),
                           &r),
                     MILTER_R_INSHEADER);
    assert_int_equal(r.index, 2);
    assert_int_equal(reply('m', BYTES("\0\0\0\x01Subject\0\0"), &r), MILTER_R_CHGHEADER);
    assert_int_equal(r.index, 1);
    assert_string_equal(r.value, ""); /* deletes the first Subject */
    /* folded value with the MTA's LF */
    assert_int_equal(reply('h', BYTES("X-Long\0 a\n\tb\0"), &r), MILTER_R_ADDHEADER);

    assert_int_equal(reply('h', BYTES("\0v\0"), &r), MILTER_R_INVALID);
    assert_string_equal(r.why, "malformed header name");
    assert_int_equal(reply('h', BYTES("Bad:Name\0v\0"), &r), MILTER_R_INVALID);
    assert_int_equal(reply('h', BYTES("Bad Name\0v\0"), &r), MILTER_R_INVALID);
    assert_int_equal(reply('h', BYTES("Name\0v"), &r), MILTER_R_INVALID);
    assert_int_equal(reply('h', BYTES("Name\0v\0x"), &r), MILTER_R_INVALID);
    assert_int_equal(reply('m', BYTES("\0\0\0"), &r), MILTER_R_INVALID);
    assert_string_equal(r.why, "header index missing");
    char longname[MILTER_WIRE_NAME_MAX + 4];
    memset(longname, 'A', MILTER_WIRE_NAME_MAX + 1);
    longname[MILTER_WIRE_NAME_MAX + 1] = '\0';
    longname[MILTER_WIRE_NAME_MAX + 2] = '\0';
    assert_int_equal(reply('h', longname, MILTER_WIRE_NAME_MAX + 3, &r), MILTER_R_INVALID);
}

static void test_envelope_and_body_edits(void **state)
{
    (void)state;
    struct milter_reply r;
    assert_int_equal(reply('e', BYTES("<bounce@example.org>\0"), &r), MILTER_R_CHGFROM);
    assert_string_equal(r.addr, "<bounce@example.org>");
    assert_null(r.args);
    assert_int_equal(reply('e', BYTES("<b@example.org>\0SIZE=10\0"), &r), MILTER_R_CHGFROM);
    assert_string_equal(r.args, "SIZE=10");
    assert_int_equal(reply('+', BYTES("<new@example.org>\0"), &r), MILTER_R_ADDRCPT);
    assert_int_equal(reply('+', BYTES("<new@example.org>\0NOTIFY=NEVER\0"), &r), MILTER_R_INVALID);
    assert_int_equal(reply('2', BYTES("<new@example.org>\0NOTIFY=NEVER\0"), &r),
                     MILTER_R_ADDRCPT_PAR);
    assert_string_equal(r.args, "NOTIFY=NEVER");
    assert_int_equal(reply('-', BYTES("<old@example.org>\0"), &r), MILTER_R_DELRCPT);
    assert_int_equal(reply('-', BYTES("\0"), &r), MILTER_R_INVALID);
    assert_string_equal(r.why, "empty address");
    assert_int_equal(reply('-', BYTES("<x>"), &r), MILTER_R_INVALID);
    assert_int_equal(reply('e', BYTES("<b>\0SIZE=10"), &r), MILTER_R_INVALID);

    assert_int_equal(reply('b', BYTES("new body\r\n\0with a NUL"), &r), MILTER_R_REPLBODY);
    assert_int_equal(r.body_len, 21);
    assert_int_equal(reply('b', "", 0, &r), MILTER_R_REPLBODY);
    assert_int_equal(r.body_len, 0);

    assert_int_equal(reply('q', BYTES("virus found\0"), &r), MILTER_R_QUARANTINE);
    assert_string_equal(r.text, "virus found");
    assert_int_equal(reply('q', BYTES("no nul"), &r), MILTER_R_INVALID);
}

static void test_optneg(void **state)
{
    (void)state;
    struct milter_optneg offer = {.version = 6,
                                  .actions = SMFI_CURR_ACTS,
                                  .protocol = SMFIP_NR_HDR | SMFIP_SKIP | SMFIP_NOHELO |
                                              SMFIP_MDS_256K | SMFIP_NR_CONN};
    struct milter_optneg got, agreed;
    const char *why = NULL;
    /* OpenDKIM-style: version 6, a few actions, two macro lists. */
    const char opendkim[] = "\0\0\0\x06"
                            "\0\0\0\x11"
                            "\0\0\x10\x80"
                            "\0\0\0\x00"
                            "j {daemon_name}\0"
                            "\0\0\0\x05"
                            "{auth_type}\0";
    assert_int_equal(
        milter_wire_optneg((const uint8_t *)opendkim, sizeof(opendkim) - 1, &got, &why), 0);
    assert_int_equal(got.version, 6);
    assert_int_equal(got.actions, SMFIF_ADDHDRS | SMFIF_CHGHDRS);
    assert_int_equal(got.protocol, SMFIP_NR_HDR | SMFIP_NR_CONN);
    assert_string_equal(got.macros[SMFIM_CONNECT], "j {daemon_name}");
    assert_string_equal(got.macros[SMFIM_EOM], "{auth_type}");
    assert_null(got.macros[SMFIM_HELO]);
    assert_int_equal(milter_wire_negotiate(&offer, &got, &agreed, &why), 0);
    assert_int_equal(agreed.protocol, SMFIP_NR_HDR | SMFIP_NR_CONN);

    /* A version 2 milter: three words only. */
    assert_int_equal(milter_wire_optneg(BYTES("\0\0\0\x02\0\0\0\x01\0\0\0\x00"), &got, &why), 0);
    assert_int_equal(milter_wire_negotiate(&offer, &got, &agreed, &why), 0);
    assert_int_equal(agreed.version, 2);

    struct milter_optneg bad = got;
    bad.version = 1;
    assert_int_equal(milter_wire_negotiate(&offer, &bad, &agreed, &why), -1);
    bad.version = 7;
    assert_int_equal(milter_wire_negotiate(&offer, &bad, &agreed, &why), -1);
    bad = got;
    bad.actions = SMFIF_QUARANTINE | 0x200;
    assert_int_equal(milter_wire_negotiate(&offer, &bad, &agreed, &why), -1);
    assert_string_equal(why, "asks for actions that were not offered");
    bad = got;
    bad.protocol = SMFIP_NR_BODY;
    assert_int_equal(milter_wire_negotiate(&offer, &bad, &agreed, &why), -1);
    assert_string_equal(why, "asks for protocol steps that were not offered");

    assert_int_equal(milter_wire_optneg(BYTES("\0\0\0\x06\0\0\0\x01\0\0\0"), &got, &why), -1);
    assert_int_equal(milter_wire_optneg(BYTES("\0\0\0\x06\0\0\0\x01\0\0\0\0\0\0"), &got, &why), -1);
    assert_string_equal(why, "macro list stage cut short");
    assert_int_equal(
        milter_wire_optneg(BYTES("\0\0\0\x06\0\0\0\x01\0\0\0\0\0\0\0\x07j\0"), &got, &why), -1);
    assert_string_equal(why, "macro list for an unknown stage");
    assert_int_equal(milter_wire_optneg(BYTES("\0\0\0\x06\0\0\0\x01\0\0\0\0\0\0\0\0j"), &got, &why),
                     -1);
    assert_string_equal(why, "macro list not NUL-terminated");
    assert_int_equal(
        milter_wire_optneg(BYTES("\0\0\0\x06\0\0\0\x01\0\0\0\0\0\0\0\x01j\0\0\0\0\x01i\0"), &got,
                           &why),
        -1);
    assert_string_equal(why, "two macro lists for one stage");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_encode),
        cmocka_unit_test(test_body_chunk_limit),
        cmocka_unit_test(test_frame),
        cmocka_unit_test(test_verdict_replies),
        cmocka_unit_test(test_replycode),
        cmocka_unit_test(test_header_edits),
        cmocka_unit_test(test_envelope_and_body_edits),
        cmocka_unit_test(test_optneg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
