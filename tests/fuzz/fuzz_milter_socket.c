// fuzz-sources: codec/milter_socket.c
/*
 * The socket setting is admin input, checked before libmilter parses it:
 * any text gets an answer, an accepted one has a known prefix and an
 * address to reach it, and a refused one none.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/milter_socket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *spec = malloc(size + 1);
    if (!spec)
        return 0;
    memcpy(spec, data, size);
    spec[size] = '\0';
    if (!milter_socket_check(spec) && strncmp(spec, "inet:", 5) != 0 &&
        strncmp(spec, "inet6:", 6) != 0 && strncmp(spec, "unix:/", 6) != 0 &&
        strncmp(spec, "local:/", 7) != 0)
        abort();
    struct sockaddr_storage ss;
    socklen_t len;
    if ((milter_socket_address(spec, &ss, &len) == 0) != (milter_socket_check(spec) == NULL))
        abort();
    free(spec);
    return 0;
}
