// fuzz-sources: plugins/state/kv_options.c
/*
 * A Redis address from the admin's file must parse or be refused with a
 * reason, never crash; what parses is a numeric address with a port from 1
 * to 65535, or an absolute socket path that fits a sockaddr_un, and the
 * host always fits its buffer.  The input is copied to a NUL-terminated
 * buffer of exactly its size plus one.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/kv_options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char host[128];
    bool is_unix;
    int port;
    const char *why = NULL;
    if (kv_parse_redis_address(buf, &is_unix, host, sizeof(host), &port, &why) == 0) {
        unsigned char a[16];
        if (strlen(host) >= sizeof(host))
            abort();
        if (is_unix ? (host[0] != '/' || strlen(host) > 107 || port != 0)
                    : ((inet_pton(AF_INET, host, a) != 1 && inet_pton(AF_INET6, host, a) != 1) ||
                       port < 1 || port > 65535))
            abort();
        if (kv_check_redis(buf) != NULL)
            abort();
    } else if (why == NULL || kv_check_redis(buf) == NULL) {
        abort();
    }
    (void)kv_check_prefix(buf);
    (void)kv_check_backend(buf);
    (void)kv_check_failure(buf);
    free(buf);
    return 0;
}
