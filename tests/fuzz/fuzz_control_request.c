// fuzz-sources: codec/control_request.c
/*
 * A control socket request line from whoever may connect: a status or a
 * reason, never a crash.  The input is copied to a buffer of exactly its
 * size, so any read past len is caught.  A request that parses names a
 * known command, and its ID, when it has one, is one that cannot leave the
 * quarantine folder.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/control_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct control_request rq;
    const char *why = control_request_parse(buf, size, &rq);
    if (!why) {
        if (strcmp(control_cmd_name(rq.cmd), "?") == 0)
            abort();
        size_t n = strnlen(rq.id, sizeof(rq.id));
        if (n == sizeof(rq.id))
            abort();
        bool wants_id = rq.cmd == CONTROL_QUARANTINE_SHOW || rq.cmd == CONTROL_QUARANTINE_RELEASE ||
                        rq.cmd == CONTROL_QUARANTINE_DELETE;
        if (wants_id != (n > 0))
            abort();
        if (n && (!control_id_valid(rq.id, n) || strchr(rq.id, '/') || strstr(rq.id, "..") ||
                  rq.id[0] == '.'))
            abort();
        if (rq.cmd == CONTROL_DRAIN && rq.has_grace && rq.grace > CONTROL_GRACE_MAX)
            abort();
    } else if (why[0] == '\0') {
        abort();
    }
    (void)control_id_valid(buf, size);
    free(buf);
    return 0;
}
