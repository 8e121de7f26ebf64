/*
 * Unit tests for smtp_cmd: verbs and their arguments, every status and its
 * reply, MAIL/RCPT paths (quoting, source routes, literals, UTF-8, the RFC
 * 5321 size limits at and over the bound), BDAT sizes and HELO names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/smtp_cmd.h"

static enum smtp_cmd_status parse(const char *line, struct smtp_cmd *cmd)
{
    return smtp_cmd_parse(line, strlen(line), cmd);
}

static enum smtp_cmd_status mail(const char *arg, struct smtp_path *p)
{
    return smtp_path_parse(arg, strlen(arg), true, p);
}

static enum smtp_cmd_status rcpt(const char *arg, struct smtp_path *p)
{
    return smtp_path_parse(arg, strlen(arg), false, p);
}

static void assert_span(const char *s, size_t len, const char *want)
{
    assert_non_null(s);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(s, want, len);
}

/* ---- smtp_cmd_parse ---- */

static void test_cmd_every_verb(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        enum smtp_verb verb;
        const char *name;
    } cases[] = {
        {"HELO a.example", SMTP_VERB_HELO, "HELO"},
        {"EHLO a.example", SMTP_VERB_EHLO, "EHLO"},
        {"MAIL FROM:<>", SMTP_VERB_MAIL, "MAIL"},
        {"RCPT TO:<a@b>", SMTP_VERB_RCPT, "RCPT"},
        {"DATA", SMTP_VERB_DATA, "DATA"},
        {"BDAT 10 LAST", SMTP_VERB_BDAT, "BDAT"},
        {"RSET", SMTP_VERB_RSET, "RSET"},
        {"NOOP", SMTP_VERB_NOOP, "NOOP"},
        {"QUIT", SMTP_VERB_QUIT, "QUIT"},
        {"VRFY user", SMTP_VERB_VRFY, "VRFY"},
        {"EXPN list", SMTP_VERB_EXPN, "EXPN"},
        {"HELP", SMTP_VERB_HELP, "HELP"},
        {"STARTTLS", SMTP_VERB_STARTTLS, "STARTTLS"},
        {"AUTH PLAIN", SMTP_VERB_AUTH, "AUTH"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct smtp_cmd cmd;
        assert_int_equal(parse(cases[i].line, &cmd), SMTP_CMD_OK);
        assert_int_equal(cmd.verb, cases[i].verb);
        assert_string_equal(smtp_verb_name(cmd.verb), cases[i].name);
    }
}

static void test_cmd_case_insensitive(void **state)
{
    (void)state;
    struct smtp_cmd cmd;
    assert_int_equal(parse("ehlo x", &cmd), SMTP_CMD_OK);
    assert_int_equal(cmd.verb, SMTP_VERB_EHLO);
    assert_int_equal(parse("MaIl FROM:<>", &cmd), SMTP_CMD_OK);
    assert_int_equal(cmd.verb, SMTP_VERB_MAIL);
    assert_int_equal(parse("starttls", &cmd), SMTP_CMD_OK);
    assert_int_equal(cmd.verb, SMTP_VERB_STARTTLS);
    assert_span(cmd.verb_text, cmd.verb_len, "starttls");
}

static void test_cmd_arg_split(void **state)
{
    (void)state;
    struct smtp_cmd cmd;
    assert_int_equal(parse("MAIL FROM:<a@b> SIZE=10", &cmd), SMTP_CMD_OK);
    assert_span(cmd.verb_text, cmd.verb_len, "MAIL");
    assert_span(cmd.arg, cmd.arg_len, "FROM:<a@b> SIZE=10");

    /* Extra blanks before the argument and trailing blanks are dropped. */
    assert_int_equal(parse("EHLO   host.example  \t ", &cmd), SMTP_CMD_OK);
    assert_span(cmd.arg, cmd.arg_len, "host.example");

    /* Trailing blanks after an argument-less verb are not an argument. */
    assert_int_equal(parse("DATA   ", &cmd), SMTP_CMD_OK);
    assert_null(cmd.arg);
    assert_int_equal(cmd.arg_len, 0);

    assert_int_equal(parse("NOOP hello there", &cmd), SMTP_CMD_OK);
    assert_span(cmd.arg, cmd.arg_len, "hello there");
    assert_int_equal(parse("HELP MAIL", &cmd), SMTP_CMD_OK);
    assert_span(cmd.arg, cmd.arg_len, "MAIL");

    /* Leading blanks before the verb are tolerated. */
    assert_int_equal(parse("  QUIT", &cmd), SMTP_CMD_OK);
    assert_int_equal(cmd.verb, SMTP_VERB_QUIT);
}

static void test_cmd_empty(void **state)
{
    (void)state;
    struct smtp_cmd cmd;
    assert_int_equal(smtp_cmd_parse("", 0, &cmd), SMTP_CMD_EMPTY);
    assert_int_equal(smtp_cmd_parse(NULL, 0, &cmd), SMTP_CMD_EMPTY);
    assert_int_equal(parse("    ", &cmd), SMTP_CMD_EMPTY);
    assert_int_equal(parse(" \t ", &cmd), SMTP_CMD_EMPTY);
    assert_string_equal(smtp_cmd_status_reply(SMTP_CMD_EMPTY), "500 5.5.2 Error: bad syntax");
}

static void test_cmd_bad_char(void **state)
{
    (void)state;
    struct smtp_cmd cmd;
    assert_int_equal(smtp_cmd_parse("NOOP\0x", 6, &cmd), SMTP_CMD_BAD_CHAR);
    assert_int_equal(smtp_cmd_parse("\0", 1, &cmd), SMTP_CMD_BAD_CHAR);
    assert_int_equal(parse("MAIL FROM:<a@b>\rRCPT TO:<c@d>", &cmd), SMTP_CMD_BAD_CHAR);
    assert_int_equal(parse("DATA\n", &cmd), SMTP_CMD_BAD_CHAR);
    assert_int_equal(parse("NOOP \x1b[1m", &cmd), SMTP_CMD_BAD_CHAR);
    assert_int_equal(parse("NOOP \x7f", &cmd), SMTP_CMD_BAD_CHAR);
    assert_string_equal(smtp_cmd_status_reply(SMTP_CMD_BAD_CHAR),
                        "500 5.5.2 Error: control character in command");
    /* HTAB is a blank; 8-bit octets are not control characters. */
    assert_int_equal(parse("NOOP\tx", &cmd), SMTP_CMD_OK);
    assert_span(cmd.arg, cmd.arg_len, "x");
    assert_int_equal(parse("NOOP caf\xc3\xa9", &cmd), SMTP_CMD_OK);
}

static void test_cmd_unknown(void **state)
{
    (void)state;
    struct smtp_cmd cmd;
    assert_int_equal(parse("GET / HTTP/1.1", &cmd), SMTP_CMD_UNKNOWN_VERB);
    assert_int_equal(cmd.verb, SMTP_VERB_UNKNOWN);
    assert_span(cmd.verb_text, cmd.verb_len, "GET");
    assert_span(cmd.arg, cmd.arg_len, "/ HTTP/1.1");
    assert_int_equal(parse("MAILFROM:<a@b>", &cmd), SMTP_CMD_UNKNOWN_VERB);
    assert_int_equal(parse("HEL", &cmd), SMTP_CMD_UNKNOWN_VERB);
    assert_int_equal(parse("HELOO x", &cmd), SMTP_CMD_UNKNOWN_VERB);
    assert_int_equal(parse("XCLIENT ADDR=1.2.3.4", &cmd), SMTP_CMD_UNKNOWN_VERB);
    assert_string_equal(smtp_cmd_status_reply(SMTP_CMD_UNKNOWN_VERB),
                        "500 5.5.1 Error: command not recognized");
    assert_string_equal(smtp_verb_name(SMTP_VERB_UNKNOWN), "UNKNOWN");
    assert_string_equal(smtp_verb_name(SMTP_VERB__COUNT), "UNKNOWN");
}

static void test_cmd_arg_required(void **state)
{
    (void)state;
    static const char *const lines[] = {"HELO", "EHLO", "MAIL", "RCPT",   "BDAT",
                                        "VRFY", "EXPN", "AUTH", "EHLO   "};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct smtp_cmd cmd;
        assert_int_equal(parse(lines[i], &cmd), SMTP_CMD_ARG_REQUIRED);
        assert_int_not_equal(cmd.verb, SMTP_VERB_UNKNOWN);
    }
    assert_string_equal(smtp_cmd_status_reply(SMTP_CMD_ARG_REQUIRED),
                        "501 5.5.4 Syntax error: argument required");
}

static void test_cmd_arg_forbidden(void **state)
{
    (void)state;
    static const char *const lines[] = {"DATA x", "QUIT now", "RSET all", "STARTTLS x"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct smtp_cmd cmd;
        assert_int_equal(parse(lines[i], &cmd), SMTP_CMD_ARG_FORBIDDEN);
    }
    assert_string_equal(smtp_cmd_status_reply(SMTP_CMD_ARG_FORBIDDEN),
                        "501 5.5.4 Syntax error: no argument allowed");
}

static void test_cmd_does_not_read_past_len(void **state)
{
    (void)state;
    struct smtp_cmd cmd;
    /* The buffer continues with a valid argument that must not be seen. */
    const char buf[] = "DATAX";
    assert_int_equal(smtp_cmd_parse(buf, 4, &cmd), SMTP_CMD_OK);
    assert_int_equal(cmd.verb, SMTP_VERB_DATA);
    const char buf2[] = "EHLO x";
    assert_int_equal(smtp_cmd_parse(buf2, 5, &cmd), SMTP_CMD_ARG_REQUIRED);
}

static void test_status_replies(void **state)
{
    (void)state;
    for (int st = SMTP_CMD_OK; st <= SMTP_CMD_PATH_TOO_LONG + 1; st++) {
        const char *r = smtp_cmd_status_reply((enum smtp_cmd_status)st);
        assert_non_null(r);
        assert_true(strlen(r) > 10);
        assert_true(r[3] == ' ');
        assert_null(strchr(r, '\r'));
        assert_null(strchr(r, '\n'));
    }
    assert_string_equal(smtp_cmd_status_reply(SMTP_CMD_BAD_SYNTAX),
                        "501 5.5.4 Syntax error in parameters or arguments");
    assert_string_equal(smtp_cmd_status_reply(SMTP_CMD_BAD_SENDER),
                        "501 5.1.7 Bad sender address syntax");
    assert_string_equal(smtp_cmd_status_reply(SMTP_CMD_BAD_RECIPIENT),
                        "501 5.1.3 Bad recipient address syntax");
    assert_string_equal(smtp_cmd_status_reply(SMTP_CMD_BAD_DOMAIN),
                        "501 5.5.4 Syntax error: bad HELO/EHLO domain");
    assert_string_equal(smtp_cmd_status_reply(SMTP_CMD_PATH_TOO_LONG),
                        "501 5.5.4 Error: path too long");
}

/* ---- smtp_path_parse ---- */

static void test_path_simple(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(mail("FROM:<user@example.com>", &p), SMTP_CMD_OK);
    assert_span(p.mailbox, p.mailbox_len, "user@example.com");
    assert_false(p.null_path);
    assert_false(p.utf8);
    assert_false(p.postmaster);
    assert_null(p.params);
    assert_int_equal(p.params_len, 0);

    assert_int_equal(rcpt("TO:<user@example.com>", &p), SMTP_CMD_OK);
    assert_span(p.mailbox, p.mailbox_len, "user@example.com");
}

static void test_path_keyword(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(mail("from:<a@b.c>", &p), SMTP_CMD_OK);
    assert_int_equal(rcpt("tO:<a@b.c>", &p), SMTP_CMD_OK);
    assert_int_equal(mail("TO:<a@b.c>", &p), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(rcpt("FROM:<a@b.c>", &p), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(mail("FROM <a@b.c>", &p), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(mail("FRO", &p), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(mail("", &p), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(smtp_path_parse(NULL, 0, true, &p), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(smtp_path_parse(NULL, 0, false, &p), SMTP_CMD_BAD_SYNTAX);
}

static void test_path_blank_after_colon(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(mail("FROM: <a@b.c>", &p), SMTP_CMD_OK);
    assert_span(p.mailbox, p.mailbox_len, "a@b.c");
    assert_int_equal(rcpt("TO:\t<a@b.c>", &p), SMTP_CMD_OK);
    /* One blank only, as Postfix. */
    assert_int_equal(mail("FROM:  <a@b.c>", &p), SMTP_CMD_BAD_SENDER);
    assert_int_equal(rcpt("TO:  <a@b.c>", &p), SMTP_CMD_BAD_RECIPIENT);
}

static void test_path_brackets_required(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(mail("FROM:a@b.c", &p), SMTP_CMD_BAD_SENDER);
    assert_int_equal(rcpt("TO:a@b.c", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(mail("FROM:<a@b.c", &p), SMTP_CMD_BAD_SENDER);
    assert_int_equal(mail("FROM:", &p), SMTP_CMD_BAD_SENDER);
    assert_int_equal(mail("FROM: ", &p), SMTP_CMD_BAD_SENDER);
    assert_int_equal(mail("FROM:<a@b.c>x", &p), SMTP_CMD_BAD_SENDER);
    assert_int_equal(mail("FROM:<<a@b.c>>", &p), SMTP_CMD_BAD_SENDER);
    assert_int_equal(mail("FROM:<a b@c.d>", &p), SMTP_CMD_BAD_SENDER);
    assert_int_equal(mail("FROM:Name <a@b.c>", &p), SMTP_CMD_BAD_SENDER);
}

static void test_path_null(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(mail("FROM:<>", &p), SMTP_CMD_OK);
    assert_true(p.null_path);
    assert_non_null(p.mailbox);
    assert_string_equal(p.mailbox, "");
    assert_int_equal(p.mailbox_len, 0);

    assert_int_equal(mail("FROM:<> BODY=8BITMIME", &p), SMTP_CMD_OK);
    assert_true(p.null_path);
    assert_span(p.params, p.params_len, "BODY=8BITMIME");

    assert_int_equal(rcpt("TO:<>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(mail("FROM:< >", &p), SMTP_CMD_BAD_SENDER);
}

static void test_path_params(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(mail("FROM:<a@b.c> SIZE=100 BODY=8BITMIME", &p), SMTP_CMD_OK);
    assert_span(p.params, p.params_len, "SIZE=100 BODY=8BITMIME");
    assert_int_equal(mail("FROM:<a@b.c>    SIZE=100   ", &p), SMTP_CMD_OK);
    assert_span(p.params, p.params_len, "SIZE=100");
    assert_int_equal(mail("FROM:<a@b.c>   ", &p), SMTP_CMD_OK);
    assert_null(p.params);
    assert_int_equal(rcpt("TO:<a@b.c> NOTIFY=NEVER", &p), SMTP_CMD_OK);
    assert_span(p.params, p.params_len, "NOTIFY=NEVER");
}

static void test_path_quoted_local(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(mail("FROM:<\"john doe\"@example.com>", &p), SMTP_CMD_OK);
    assert_span(p.mailbox, p.mailbox_len, "\"john doe\"@example.com");
    /* A quoted ">" does not end the path. */
    assert_int_equal(rcpt("TO:<\"a>b\"@example.com> NOTIFY=NEVER", &p), SMTP_CMD_OK);
    assert_span(p.mailbox, p.mailbox_len, "\"a>b\"@example.com");
    assert_span(p.params, p.params_len, "NOTIFY=NEVER");
    /* quoted-pair */
    assert_int_equal(rcpt("TO:<\"a\\\"b\\\\\"@example.com>", &p), SMTP_CMD_OK);
    assert_int_equal(rcpt("TO:<\"\"@example.com>", &p), SMTP_CMD_OK);
    assert_int_equal(rcpt("TO:<\"unterminated@example.com>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<\"a\"b@example.com>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a\"b\"@example.com>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<\"a\"\"b\"@example.com>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<\"a\\", &p), SMTP_CMD_BAD_RECIPIENT);
}

static void test_path_local_chars(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(rcpt("TO:<a.b+tag-x_y!#$%&'*/=?^`{|}~@example.com>", &p), SMTP_CMD_OK);
    /* Dots are not policed: such addresses are in use. */
    assert_int_equal(rcpt("TO:<a..b.@example.jp>", &p), SMTP_CMD_OK);
    assert_int_equal(rcpt("TO:<a,b@example.com>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a(b)@example.com>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a\\b@example.com>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@b@example.com>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<@example.com>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@>", &p), SMTP_CMD_BAD_RECIPIENT);
}

static void test_path_domain(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(rcpt("TO:<a@mail-1.sub_x.example>", &p), SMTP_CMD_OK);
    assert_int_equal(rcpt("TO:<a@localhost>", &p), SMTP_CMD_OK);
    assert_int_equal(rcpt("TO:<a@example..com>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@.example.com>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@example.com.>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@exa mple.com>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@exa!mple.com>", &p), SMTP_CMD_BAD_RECIPIENT);

    /* 63-octet label is fine, 64 is not. */
    char buf[200];
    char label[65];
    memset(label, 'l', 63);
    label[63] = '\0';
    snprintf(buf, sizeof(buf), "TO:<a@%s.example>", label);
    assert_int_equal(rcpt(buf, &p), SMTP_CMD_OK);
    label[63] = 'l';
    label[64] = '\0';
    snprintf(buf, sizeof(buf), "TO:<a@%s.example>", label);
    assert_int_equal(rcpt(buf, &p), SMTP_CMD_BAD_RECIPIENT);
}

static void test_path_address_literals(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(rcpt("TO:<a@[192.0.2.1]>", &p), SMTP_CMD_OK);
    assert_span(p.mailbox, p.mailbox_len, "a@[192.0.2.1]");
    assert_int_equal(rcpt("TO:<a@[255.255.255.255]>", &p), SMTP_CMD_OK);
    assert_int_equal(rcpt("TO:<a@[IPv6:2001:db8::1]>", &p), SMTP_CMD_OK);
    assert_int_equal(rcpt("TO:<a@[ipv6:::1]>", &p), SMTP_CMD_OK);
    assert_int_equal(rcpt("TO:<a@[IPv6:::ffff:192.0.2.1]>", &p), SMTP_CMD_OK);
    assert_int_equal(mail("FROM:<a@[IPv6:2001:db8::1]> SIZE=1", &p), SMTP_CMD_OK);
    assert_span(p.params, p.params_len, "SIZE=1");
    assert_int_equal(rcpt("TO:<a@[x-tag:some-content]>", &p), SMTP_CMD_OK);

    assert_int_equal(rcpt("TO:<a@[256.0.0.1]>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@[1.2.3]>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@[1.2.3.4.5]>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@[1.2.3.4>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@[1111.2.3.4]>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@[IPv6:2001:db8::g]>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@[IPv6:1.2.3.4]>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@[IPv6:]>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@[]>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@[tag:]>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@[tag-:x]>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@[1.2.3.4]x>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@[IPv6:2001:0db8:0000:0000:0000:0000:0000:0000:0001]>", &p),
                     SMTP_CMD_BAD_RECIPIENT);
}

static void test_path_source_route(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(rcpt("TO:<@relay.example:user@example.com>", &p), SMTP_CMD_OK);
    assert_span(p.mailbox, p.mailbox_len, "user@example.com");
    assert_int_equal(mail("FROM:<@a.example,@b.example:user@example.com>", &p), SMTP_CMD_OK);
    assert_span(p.mailbox, p.mailbox_len, "user@example.com");
    assert_int_equal(rcpt("TO:<@[IPv6:2001:db8::1],@[192.0.2.1]:u@example.com>", &p), SMTP_CMD_OK);
    assert_span(p.mailbox, p.mailbox_len, "u@example.com");

    assert_int_equal(rcpt("TO:<@a.example:>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<@a.example>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<@a.example,b.example:u@c.example>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<@:u@c.example>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<@a..b:u@c.example>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(mail("FROM:<@a.example:>", &p), SMTP_CMD_BAD_SENDER);
}

static void test_path_postmaster(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(rcpt("TO:<Postmaster>", &p), SMTP_CMD_OK);
    assert_true(p.postmaster);
    assert_span(p.mailbox, p.mailbox_len, "Postmaster");
    assert_int_equal(rcpt("TO:<POSTMASTER>", &p), SMTP_CMD_OK);
    assert_true(p.postmaster);
    assert_int_equal(rcpt("to:<postmaster> NOTIFY=NEVER", &p), SMTP_CMD_OK);
    assert_true(p.postmaster);

    assert_int_equal(rcpt("TO:<postmaster@example.com>", &p), SMTP_CMD_OK);
    assert_false(p.postmaster);
    assert_int_equal(rcpt("TO:<postmast>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<postmasters>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<user>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(mail("FROM:<postmaster>", &p), SMTP_CMD_BAD_SENDER);
    assert_int_equal(mail("FROM:<user>", &p), SMTP_CMD_BAD_SENDER);
}

static void test_path_utf8(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(mail("FROM:<j\xc3\xb6rg@b\xc3\xbc\x63her.example>", &p), SMTP_CMD_OK);
    assert_true(p.utf8);
    assert_int_equal(rcpt("TO:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x85\xac"
                          "\xe5\x8f\xb8>",
                          &p),
                     SMTP_CMD_OK);
    assert_true(p.utf8);
    assert_int_equal(rcpt("TO:<a@example.com>", &p), SMTP_CMD_OK);
    assert_false(p.utf8);
    /* 4-octet sequence */
    assert_int_equal(rcpt("TO:<\xf0\x9f\x98\x80@example.com>", &p), SMTP_CMD_OK);
    assert_true(p.utf8);

    /* Malformed UTF-8: lone continuation, overlong, surrogate, truncated, > U+10FFFF. */
    assert_int_equal(rcpt("TO:<\x80@example.com>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<\xc0\xaf@example.com>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<\xed\xa0\x80@example.com>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<a@example.co\xc3>", &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(mail("FROM:<\xf4\x90\x80\x80@example.com>", &p), SMTP_CMD_BAD_SENDER);
    assert_int_equal(mail("FROM:<\xff@example.com>", &p), SMTP_CMD_BAD_SENDER);
}

static void test_path_control_chars(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(smtp_path_parse("FROM:<a\0b@c.d>", 14, true, &p), SMTP_CMD_BAD_SENDER);
    assert_int_equal(smtp_path_parse("TO:<a@c.d\r>", 11, false, &p), SMTP_CMD_BAD_RECIPIENT);
    assert_int_equal(rcpt("TO:<\"a\x01\"@c.d>", &p), SMTP_CMD_BAD_RECIPIENT);
}

/* "FROM:<" + local + "@" + domain + ">" with the given sizes. */
static void build_path(char *buf, size_t size, const char *kw, size_t local, size_t domain)
{
    size_t p = 0;
    p += (size_t)snprintf(buf, size, "%s<", kw);
    memset(buf + p, 'u', local);
    p += local;
    buf[p++] = '@';
    /* Labels of at most 50 octets joined by dots. */
    for (size_t i = 0; i < domain; i++)
        buf[p++] = (i % 51 == 50) ? '.' : 'd';
    buf[p++] = '>';
    buf[p] = '\0';
    assert_true(p < size);
}

static void test_path_limits(void **state)
{
    (void)state;
    struct smtp_path p;
    char buf[600];

    /* Local part: 64 OK, 65 too long. */
    build_path(buf, sizeof(buf), "FROM:", 64, 10);
    assert_int_equal(mail(buf, &p), SMTP_CMD_OK);
    assert_int_equal(p.mailbox_len, 64 + 1 + 10);
    build_path(buf, sizeof(buf), "FROM:", 65, 10);
    assert_int_equal(mail(buf, &p), SMTP_CMD_PATH_TOO_LONG);

    /* Quoted local part counts its quotes. */
    snprintf(buf, sizeof(buf), "TO:<\"%062d\"@example.com>", 0);
    assert_int_equal(rcpt(buf, &p), SMTP_CMD_OK);
    snprintf(buf, sizeof(buf), "TO:<\"%063d\"@example.com>", 0);
    assert_int_equal(rcpt(buf, &p), SMTP_CMD_PATH_TOO_LONG);

    /* Whole path including <>: 256 OK, 257 too long (local 64, domain 189/190). */
    build_path(buf, sizeof(buf), "TO:", 64, 189);
    assert_int_equal(strlen(strchr(buf, '<')), 256);
    assert_int_equal(rcpt(buf, &p), SMTP_CMD_OK);
    build_path(buf, sizeof(buf), "TO:", 64, 190);
    assert_int_equal(strlen(strchr(buf, '<')), 257);
    assert_int_equal(rcpt(buf, &p), SMTP_CMD_PATH_TOO_LONG);

    /* A long domain with a short local part: the path limit comes first. */
    build_path(buf, sizeof(buf), "FROM:", 1, 300);
    assert_int_equal(mail(buf, &p), SMTP_CMD_PATH_TOO_LONG);

    /* The source route counts in the path length. */
    char route[300];
    size_t r = 0;
    while (r < 250) {
        memcpy(route + r, "@relay.example,", 15);
        r += 15;
    }
    route[r - 1] = ':';
    route[r] = '\0';
    snprintf(buf, sizeof(buf), "TO:<%su@example.com>", route);
    assert_int_equal(rcpt(buf, &p), SMTP_CMD_PATH_TOO_LONG);
}

/* ---- smtp_bdat_parse ---- */

static enum smtp_cmd_status bdat(const char *arg, uint64_t *size, bool *last)
{
    return smtp_bdat_parse(arg, strlen(arg), size, last);
}

/* ---- smtp_path_parse_lenient ---- */

struct lenient_case {
    const char *arg;
    const char *canon; /* NULL: refused */
    const char *params;
};

/* The argument copied to a buffer of exactly its size, as the fuzz harness
 * does, so a read past its end is caught. */
static enum smtp_cmd_status lenient(const char *arg, bool is_mail, char *canon, size_t canon_size,
                                    struct smtp_path *p)
{
    size_t n = strlen(arg);
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, arg, n);
    enum smtp_cmd_status st = smtp_path_parse_lenient(copy, n, is_mail, canon, canon_size, p);
    if (st == SMTP_CMD_OK && p->params) {
        /* params point into the argument: give them back from the original. */
        p->params = arg + (p->params - copy);
    }
    free(copy);
    return st;
}

static void check_lenient(const struct lenient_case *c, bool is_mail)
{
    char canon[2048];
    struct smtp_path p;
    enum smtp_cmd_status st = lenient(c->arg, is_mail, canon, sizeof(canon), &p);
    if (c->canon == NULL) {
        if (st == SMTP_CMD_OK)
            fail_msg("accepted %s as <%.*s>", c->arg, (int)p.mailbox_len, p.mailbox);
        return;
    }
    if (st != SMTP_CMD_OK)
        fail_msg("refused %s: %d", c->arg, st);
    if (p.mailbox_len != strlen(c->canon) || memcmp(p.mailbox, c->canon, p.mailbox_len) != 0)
        fail_msg("%s: got <%.*s>, want <%s>", c->arg, (int)p.mailbox_len, p.mailbox, c->canon);
    if (c->params)
        assert_span(p.params, p.params_len, c->params);
    else
        assert_null(p.params);
}

/* The forms aiosmtpd's tests call valid, as Postfix reads them by default. */
static void test_lenient_aiosmtpd_forms(void **state)
{
    (void)state;
    static const struct lenient_case cases[] = {
        {"FROM:anne@example.com", "anne@example.com", NULL},
        {"FROM:<anne@example.com>", "anne@example.com", NULL},
        {"FROM: anne@example.com", "anne@example.com", NULL},
        {"FROM: <anne@example.com>", "anne@example.com", NULL},
        {"FROM:  anne@example.com", "anne@example.com", NULL},
        {"FROM:  <anne@example.com>", "anne@example.com", NULL},
        {"FROM:anne.arthur@example.com", "anne.arthur@example.com", NULL},
        {"FROM:anne+promo@example.com", "anne+promo@example.com", NULL},
        {"FROM:_@example.com", "_@example.com", NULL},
        /* Postfix takes a bare IPv4 address for no domain: 501. */
        {"FROM:anne@127.0.0.1", NULL, NULL},
        {"FROM:anne@[127.0.0.1]", "anne@[127.0.0.1]", NULL},
        {"FROM:anne@[IPv6:2001:db8::1]", "anne@[IPv6:2001:db8::1]", NULL},
        {"FROM:anne@[IPv6::1]", NULL, NULL}, /* no IPv6 address: Postfix says 501 */
        {"FROM:anne(comment)@example.com", "anne@example.com", NULL},
        {"FROM:(comment)anne@example.com", "anne@example.com", NULL},
        {"FROM:anne@example.com(comment)", "anne@example.com", NULL},
        /* The blank ends the address word, as in Postfix: "anne@machine."
         * is left, whose domain ends in a dot (Postfix refuses the
         * parameter "example" instead: 5xx either way). */
        {"FROM:anne@machine(comment).  example", NULL, NULL},
        {"FROM:anne@machine(comment).example  SIZE=1", "anne@machine.example", "SIZE=1"},
        {"FROM:<@example.org:anne@example.com>", "anne@example.com", NULL},
        {"FROM:<@example.net,@example.org:anne@example.com>", "anne@example.com", NULL},
        {"FROM:anne@mail", "anne@mail", NULL},
        {"FROM:\"\"@example.com", "\"\"@example.com", NULL},
        {"FROM:<\"\"@example.com>", "\"\"@example.com", NULL},
        {"FROM:\" \"@example.com", "\" \"@example.com", NULL},
        {"FROM:\"anne..arthur\"@example.com", "\"anne..arthur\"@example.com", NULL},
        {"FROM:mailhost!anne@example.com", "mailhost!anne@example.com", NULL},
        {"FROM:anne%example.org@example.com", "anne%example.org@example.com", NULL},
        {"FROM:much.\"more\\ unusual\"@example.com", "\"much.more unusual\"@example.com", NULL},
        {"FROM:very.\"(),:;<>[]\".VERY.\"very@\\\\ \".very.unusual@strange.example.com",
         "\"very.(),:;<>[].VERY.very@\\\\ .very.unusual\"@strange.example.com", NULL},
        {"FROM:Fred\\ Bloggs@example.com", "\"Fred Bloggs\"@example.com", NULL},
        {"FROM:Joe.\\\\Blow@example.com", "\"Joe.\\\\Blow\"@example.com", NULL},
        {"FROM:\"Abc@def\"@example.com", "\"Abc@def\"@example.com", NULL},
        {"FROM:\"Fred Bloggs\"@example.com", "\"Fred Bloggs\"@example.com", NULL},
        {"FROM:customer/department=shipping@example.com",
         "customer/department=shipping@example.com", NULL},
        {"FROM:$A12345@example.com", "$A12345@example.com", NULL},
        {"FROM:!def!xyz%abc@example.com", "!def!xyz%abc@example.com", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_lenient(&cases[i], true);
        struct lenient_case r = cases[i];
        char arg[256];
        snprintf(arg, sizeof(arg), "TO:%s", cases[i].arg + 5);
        r.arg = arg;
        check_lenient(&r, false);
    }

    /* Long local parts and a sender without a domain, as Postfix takes them. */
    char arg[700], want[600];
    memset(want, 'a', 65);
    strcpy(want + 65, "@example.com");
    snprintf(arg, sizeof(arg), "FROM:%s", want);
    check_lenient(&(struct lenient_case){arg, want, NULL}, true);
    memset(want, 'c', 500);
    want[500] = '\0';
    snprintf(arg, sizeof(arg), "FROM:%s", want);
    check_lenient(&(struct lenient_case){arg, want, NULL}, true);
    snprintf(arg, sizeof(arg), "TO:%s", want);
    check_lenient(&(struct lenient_case){arg, want, NULL}, false);
}

static void test_lenient_display_name_and_params(void **state)
{
    (void)state;
    static const struct lenient_case cases[] = {
        {"FROM:Anne<anne@example.com>", "anne@example.com", NULL},
        {"FROM:\"Anne A.\"<anne@example.com>", "anne@example.com", NULL},
        {"FROM:<anne@example.com> SIZE=10 BODY=8BITMIME", "anne@example.com",
         "SIZE=10 BODY=8BITMIME"},
        {"FROM:anne@example.com   SIZE=10  ", "anne@example.com", "SIZE=10"},
        {"FROM:<>", "", NULL},
        {"FROM: <> SIZE=1", "", "SIZE=1"},
        {"FROM:<(c)>", "", NULL},
        /* A blank inside brackets or quotes is part of the address. */
        {"FROM:< anne@example.com >", "anne@example.com", NULL},
        {"FROM:\"a b\"@example.com SIZE=1", "\"a b\"@example.com", "SIZE=1"},
        {"from:ANNE@Example.COM", "ANNE@Example.COM", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_lenient(&cases[i], true);

    char canon[64];
    struct smtp_path p;
    assert_int_equal(lenient("FROM:<>", true, canon, sizeof(canon), &p), SMTP_CMD_OK);
    assert_true(p.null_path);
    assert_int_equal(lenient("TO:<Postmaster>", false, canon, sizeof(canon), &p), SMTP_CMD_OK);
    assert_true(p.postmaster);
    assert_int_equal(lenient("TO:<bob>", false, canon, sizeof(canon), &p), SMTP_CMD_OK);
    assert_false(p.postmaster);
}

static void test_lenient_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "FROM:",
        "FROM:   ",
        "FROM:<@example.com>",                            /* null local part */
        "FROM:<johnathon@>",                              /* null domain part */
        "FROM:<anne@example.com",                         /* bracket left open */
        "FROM:\"anne@example.com",                        /* quote left open */
        "FROM:anne(comment@example.com",                  /* comment left open */
        "FROM:<a@b><c@d>",                                /* two addresses */
        "FROM:<a@b>junk",                                 /* words after the address */
        "FROM:a@b@c",                                     /* two at-signs */
        "FROM:a\"b\"@example.com",                        /* words need a dot between them, */
        "FROM:very.\"very@\\ \"very.unusual@example.com", /* as in aiosmtpd's form */
        "FROM:anne@10.1.2.3",                             /* an IPv4 address is no domain */
        "FROM:<anne@exa mple.com>",                       /* two words where a domain belongs */
        "FROM:anne@exa(c)mple.com",
        "FROM:a@b<c@d>", /* two addresses */
        "FROM:\"a@b\"x@y<c@d>",
        "FROM:anne@exa\\mple.com", /* no escapes in a domain */
        "FROM:anne@[1.2.3.999]",
        "FROM:anne@-[x]",
        "FROM:<@bad domain:anne@example.com>",
        "FROM:anne@ex..ample.com",
        "FROM:a\xff@example.com", /* not UTF-8 */
        "FROM:a\r\n@example.com", /* control characters */
        "FROM:a\\",               /* backslash at the end */
        "TO:<>",
        "TO:",
    };
    char canon[256];
    struct smtp_path p;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool is_mail = bad[i][0] == 'F';
        enum smtp_cmd_status st = lenient(bad[i], is_mail, canon, sizeof(canon), &p);
        if (st == SMTP_CMD_OK)
            fail_msg("accepted %s as <%.*s>", bad[i], (int)p.mailbox_len, p.mailbox);
    }
    /* The caller's buffer must be large enough for the worst case. */
    assert_int_not_equal(lenient("FROM:anne@example.com", true, canon, 2 * 21 + 2, &p),
                         SMTP_CMD_OK);
    assert_int_equal(lenient("FROM:anne@example.com", true, canon, 2 * 21 + 3, &p), SMTP_CMD_OK);
    assert_int_equal(lenient("MAIL:anne@example.com", true, canon, sizeof(canon), &p),
                     SMTP_CMD_BAD_SYNTAX);
}

/* What goes upstream reads back the same: the canonical path, bracketed, is
 * taken by the strict parser (within its length limits) as the same mailbox. */
static void test_lenient_canonical_is_strict(void **state)
{
    (void)state;
    static const char *const args[] = {
        "FROM:Fred\\ Bloggs@example.com",
        "FROM:much.\"more\\ unusual\"@example.com",
        "FROM:Joe.\\\\Blow@example.com",
        "FROM:(x)a.\"b\\\"c\"@example.com",
        "FROM:.a..b.@example.com",
        "FROM:\"<a@b> \\\\\"@example.com",
        "FROM:anne(c)@[IPv6:2001:db8::1](d)",
    };
    for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
        char canon[256], line[300];
        struct smtp_path p, q;
        assert_int_equal(lenient(args[i], true, canon, sizeof(canon), &p), SMTP_CMD_OK);
        int n = snprintf(line, sizeof(line), "FROM:<%.*s>", (int)p.mailbox_len, p.mailbox);
        if (smtp_path_parse(line, (size_t)n, true, &q) != SMTP_CMD_OK)
            fail_msg("%s gave %s, which the strict parser refuses", args[i], line);
        assert_int_equal(q.mailbox_len, p.mailbox_len);
        assert_memory_equal(q.mailbox, p.mailbox, p.mailbox_len);
        assert_null(q.params);
    }
}

static void test_bdat(void **state)
{
    (void)state;
    uint64_t size;
    bool last;
    assert_int_equal(bdat("1000", &size, &last), SMTP_CMD_OK);
    assert_true(size == 1000);
    assert_false(last);
    assert_int_equal(bdat("0 LAST", &size, &last), SMTP_CMD_OK);
    assert_true(size == 0);
    assert_true(last);
    assert_int_equal(bdat("42 last", &size, &last), SMTP_CMD_OK);
    assert_true(size == 42);
    assert_true(last);
    assert_int_equal(bdat("42 LaSt", &size, &last), SMTP_CMD_OK);
    assert_true(last);
    assert_int_equal(bdat("007", &size, &last), SMTP_CMD_OK);
    assert_true(size == 7);
    assert_int_equal(bdat("999999999999999999", &size, &last), SMTP_CMD_OK);
    assert_true(size == 999999999999999999ULL);
    assert_int_equal(bdat("999999999999999999 LAST", &size, &last), SMTP_CMD_OK);
    assert_true(size == 999999999999999999ULL);
    assert_true(last);

    assert_int_equal(bdat("1000000000000000000", &size, &last), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(bdat("18446744073709551616", &size, &last), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(bdat("", &size, &last), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(smtp_bdat_parse(NULL, 0, &size, &last), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(bdat("LAST", &size, &last), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(bdat("-1", &size, &last), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(bdat("+1", &size, &last), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(bdat("0x10", &size, &last), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(bdat("10LAST", &size, &last), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(bdat("10 LASTX", &size, &last), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(bdat("10 LAS", &size, &last), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(bdat("10 LAST x", &size, &last), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(bdat("10 20", &size, &last), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(bdat("10 FIRST", &size, &last), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(bdat("1.5", &size, &last), SMTP_CMD_BAD_SYNTAX);
    assert_int_equal(smtp_bdat_parse("10\0LAST", 7, &size, &last), SMTP_CMD_BAD_SYNTAX);

    /* Only len bytes are read. */
    assert_int_equal(smtp_bdat_parse("12 LAST", 2, &size, &last), SMTP_CMD_OK);
    assert_true(size == 12);
    assert_false(last);
}

/* ---- smtp_helo_parse ---- */

static void test_helo(void **state)
{
    (void)state;
    const char *name;
    size_t len;
    assert_int_equal(smtp_helo_parse("mail.example.com", 16, &name, &len), SMTP_CMD_OK);
    assert_span(name, len, "mail.example.com");
    assert_int_equal(smtp_helo_parse("[192.0.2.1]", 11, &name, &len), SMTP_CMD_OK);
    assert_span(name, len, "[192.0.2.1]");
    assert_int_equal(smtp_helo_parse("[IPv6:2001:db8::1]", 18, &name, &len), SMTP_CMD_OK);
    /* Lenient: any printable word. */
    assert_int_equal(smtp_helo_parse("localhost", 9, &name, &len), SMTP_CMD_OK);
    assert_int_equal(smtp_helo_parse("x_y!", 4, &name, &len), SMTP_CMD_OK);
    assert_int_equal(smtp_helo_parse("b\xc3\xbc\x63her.example", 14, &name, &len), SMTP_CMD_OK);
    assert_int_equal(smtp_helo_parse("  host  ", 8, &name, &len), SMTP_CMD_OK);
    assert_span(name, len, "host");

    assert_int_equal(smtp_helo_parse("", 0, &name, &len), SMTP_CMD_ARG_REQUIRED);
    assert_int_equal(smtp_helo_parse("   ", 3, &name, &len), SMTP_CMD_ARG_REQUIRED);
    assert_int_equal(smtp_helo_parse(NULL, 0, &name, &len), SMTP_CMD_ARG_REQUIRED);
    assert_int_equal(smtp_helo_parse("a\0b", 3, &name, &len), SMTP_CMD_BAD_DOMAIN);
    assert_int_equal(smtp_helo_parse("a\rb", 3, &name, &len), SMTP_CMD_BAD_DOMAIN);
    assert_int_equal(smtp_helo_parse("a\x7f", 2, &name, &len), SMTP_CMD_BAD_DOMAIN);
    assert_int_equal(smtp_helo_parse("my computer", 11, &name, &len), SMTP_CMD_BAD_DOMAIN);
    assert_null(name);
}

static void test_end_to_end(void **state)
{
    (void)state;
    struct smtp_cmd cmd;
    struct smtp_path p;
    const char *line = "MAIL FROM: <@hop.example:a@b.example> SIZE=5 ";
    assert_int_equal(parse(line, &cmd), SMTP_CMD_OK);
    assert_int_equal(smtp_path_parse(cmd.arg, cmd.arg_len, true, &p), SMTP_CMD_OK);
    assert_span(p.mailbox, p.mailbox_len, "a@b.example");
    assert_span(p.params, p.params_len, "SIZE=5");

    uint64_t size;
    bool last;
    assert_int_equal(parse("BDAT 512 LAST", &cmd), SMTP_CMD_OK);
    assert_int_equal(smtp_bdat_parse(cmd.arg, cmd.arg_len, &size, &last), SMTP_CMD_OK);
    assert_true(size == 512 && last);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmd_every_verb),
        cmocka_unit_test(test_cmd_case_insensitive),
        cmocka_unit_test(test_cmd_arg_split),
        cmocka_unit_test(test_cmd_empty),
        cmocka_unit_test(test_cmd_bad_char),
        cmocka_unit_test(test_cmd_unknown),
        cmocka_unit_test(test_cmd_arg_required),
        cmocka_unit_test(test_cmd_arg_forbidden),
        cmocka_unit_test(test_cmd_does_not_read_past_len),
        cmocka_unit_test(test_status_replies),
        cmocka_unit_test(test_lenient_aiosmtpd_forms),
        cmocka_unit_test(test_lenient_display_name_and_params),
        cmocka_unit_test(test_lenient_refused),
        cmocka_unit_test(test_lenient_canonical_is_strict),
        cmocka_unit_test(test_path_simple),
        cmocka_unit_test(test_path_keyword),
        cmocka_unit_test(test_path_blank_after_colon),
        cmocka_unit_test(test_path_brackets_required),
        cmocka_unit_test(test_path_null),
        cmocka_unit_test(test_path_params),
        cmocka_unit_test(test_path_quoted_local),
        cmocka_unit_test(test_path_local_chars),
        cmocka_unit_test(test_path_domain),
        cmocka_unit_test(test_path_address_literals),
        cmocka_unit_test(test_path_source_route),
        cmocka_unit_test(test_path_postmaster),
        cmocka_unit_test(test_path_utf8),
        cmocka_unit_test(test_path_control_chars),
        cmocka_unit_test(test_path_limits),
        cmocka_unit_test(test_bdat),
        cmocka_unit_test(test_helo),
        cmocka_unit_test(test_end_to_end),
    };
    return cmocka_run_group_tests_name("smtp_cmd", tests, NULL, NULL);
}
