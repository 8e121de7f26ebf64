// fuzz-sources: plugins/milter/milter_addr.c plugins/milter/milter_macros.c
/*
 * The milter plugin's own parsers over any bytes: a socket specification
 * (milter_addr_parse) gives an address of the family it names, with a length
 * that fits, or a reason; a macro list (milter_macros_split, as a milter's
 * SMFIC_OPTNEG symbol list arrives) gives at most MILTER_MACROS_MAX names,
 * none empty and none holding a separator, and looking each up is bounded.
 * The input is copied to an exact-size, NUL-terminated buffer, so a read past
 * it is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "plugins/milter/milter_addr.h"
#include "plugins/milter/milter_macros.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    struct sockaddr_storage ss;
    socklen_t len = 0;
    const char *why = NULL;
    if (milter_addr_parse(s, &ss, &len, &why) == 0) {
        if (len == 0 || len > sizeof(ss))
            abort();
        if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6 && ss.ss_family != AF_UNIX)
            abort();
        if (ss.ss_family == AF_UNIX &&
            !memchr(((struct sockaddr_un *)&ss)->sun_path, '\0',
                    sizeof(struct sockaddr_un) - offsetof(struct sockaddr_un, sun_path)))
            abort();
    } else if (!why) {
        abort();
    }

    struct milter_macro_list l;
    if (milter_macros_split(s, &l) == 0) {
        if (l.n > MILTER_MACROS_MAX)
            abort();
        struct milter_facts f = {.host_name = "h",
                                 .client_addr = "192.0.2.1",
                                 .client_port = 1,
                                 .tx_id = "T.1",
                                 .mail_addr = "a@b",
                                 .rcpt_addr = "c@d"};
        char buf[320];
        for (size_t i = 0; i < l.n; i++) {
            if (!l.names[i][0] || strpbrk(l.names[i], " \t,"))
                abort();
            const char *v = milter_macros_value(&f, l.names[i], buf, sizeof(buf));
            if (v == buf && !memchr(buf, '\0', sizeof(buf)))
                abort();
        }
        milter_macros_free(&l);
    }
    free(s);
    return 0;
}
