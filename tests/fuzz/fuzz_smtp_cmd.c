// fuzz-sources: codec/smtp_cmd.c
/*
 * A command line from the network must give a status, never a crash, and
 * every pointer handed back must lie inside the input.  The input is copied
 * to a buffer of exactly its size, so any read past len is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/smtp_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_span(const char *buf, size_t size, const char *p, size_t len)
{
    if (p == NULL)
        return;
    if (p < buf || len > size || (size_t)(p - buf) > size - len)
        abort();
}

static void fuzz_path(const char *buf, size_t size, const char *arg, size_t len, bool is_mail)
{
    struct smtp_path path;
    if (smtp_path_parse(arg, len, is_mail, &path) != SMTP_CMD_OK)
        return;
    if (!path.null_path)
        fuzz_check_span(buf, size, path.mailbox, path.mailbox_len);
    else if (path.mailbox_len != 0 || is_mail == false)
        abort();
    fuzz_check_span(buf, size, path.params, path.params_len);
    if (path.mailbox_len > 256 || (path.postmaster && is_mail))
        abort();
}

/* The lenient reading: the canonical path lies in the caller's buffer, the
 * parameters in the input, and the path must read back the same. */
static void fuzz_lenient(const char *buf, size_t size, const char *arg, size_t len, bool is_mail)
{
    size_t canon_size = 2 * len + 3;
    char *canon = malloc(canon_size);
    if (canon == NULL)
        return;
    struct smtp_path path;
    if (smtp_path_parse_lenient(arg, len, is_mail, canon, canon_size, &path) == SMTP_CMD_OK) {
        if (path.null_path ? (path.mailbox_len != 0 || !is_mail)
                           : (path.mailbox != canon || path.mailbox_len > canon_size))
            abort();
        fuzz_check_span(buf, size, path.params, path.params_len);
        for (size_t i = 0; i < path.mailbox_len; i++)
            if ((unsigned char)path.mailbox[i] < 0x20 || path.mailbox[i] == 0x7f)
                abort();
        /* Canonical in, the same canonical out. */
        size_t line_len = 5 + path.mailbox_len + 2;
        char *line = malloc(line_len);
        char *again = malloc(2 * line_len + 3);
        if (line && again && !path.null_path) {
            memcpy(line, "FROM:<", 6);
            memcpy(line + 6, path.mailbox, path.mailbox_len);
            line[line_len - 1] = '>';
            struct smtp_path back;
            if (smtp_path_parse_lenient(line, line_len, true, again, 2 * line_len + 3, &back) !=
                    SMTP_CMD_OK ||
                back.mailbox_len != path.mailbox_len ||
                memcmp(back.mailbox, path.mailbox, path.mailbox_len) != 0 || back.params)
                abort();
        }
        free(line);
        free(again);
    }
    free(canon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);

    struct smtp_cmd cmd;
    enum smtp_cmd_status st = smtp_cmd_parse(buf, size, &cmd);
    if (smtp_cmd_status_reply(st) == NULL || smtp_verb_name(cmd.verb) == NULL)
        abort();
    fuzz_check_span(buf, size, cmd.verb_text, cmd.verb_len);
    fuzz_check_span(buf, size, cmd.arg, cmd.arg_len);

    /* Whatever the verb, feed the argument (or the whole line) to every parser. */
    const char *arg = cmd.arg ? cmd.arg : buf;
    size_t arg_len = cmd.arg ? cmd.arg_len : size;
    fuzz_path(buf, size, arg, arg_len, true);
    fuzz_path(buf, size, arg, arg_len, false);
    fuzz_lenient(buf, size, arg, arg_len, true);
    fuzz_lenient(buf, size, arg, arg_len, false);

    uint64_t chunk;
    bool last;
    if (smtp_bdat_parse(arg, arg_len, &chunk, &last) == SMTP_CMD_OK &&
        chunk > 999999999999999999ULL)
        abort();

    const char *name;
    size_t name_len;
    if (smtp_helo_parse(arg, arg_len, &name, &name_len) == SMTP_CMD_OK)
        fuzz_check_span(buf, size, name, name_len);

    free(buf);
    return 0;
}
