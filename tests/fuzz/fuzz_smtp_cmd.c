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
