// fuzz-sources: codec/milter_text.c
/*
 * Header names and values come from the MTA, which passes what the client
 * sent.  The input is split at the first NUL into name and value: the
 * rebuilt line must end in CRLF with no bare LF after the name (a name is
 * copied as it is: the MTA passes only well-formed ones), and the edit value must
 * carry no CRLF.  The mailbox and parameter helpers take the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/milter_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 2);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    buf[size + 1] = '\0';
    const char *name = buf;
    const char *value = buf + strlen(buf) + (strlen(buf) < size ? 1 : 0);

    for (int leadspc = 0; leadspc < 2; leadspc++) {
        size_t len;
        char *line = milter_text_header_line(name, value, leadspc, &len);
        if (line) {
            if (len < 2 || line[len - 2] != '\r' || line[len - 1] != '\n')
                abort();
            for (size_t i = strlen(name) + 1; i < len; i++)
                if (line[i] == '\n' && (i == 0 || line[i - 1] != '\r'))
                    abort();
            free(line);
        }
        char *v = milter_text_edit_value(value, leadspc);
        if (v && strstr(v, "\r\n"))
            abort();
        free(v);
    }
    char *m = milter_text_mailbox(value);
    if (m) {
        char *b = milter_text_bracket(m);
        free(b);
        free(m);
    }
    char *argv[] = {(char *)name, (char *)value, NULL};
    free(milter_text_params(argv));
    free(buf);
    return 0;
}
