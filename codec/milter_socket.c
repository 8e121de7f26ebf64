/*
 * milter_socket - a libmilter socket specification's local address (see the
 * header, which also holds the check).
 *
 * libmilter itself reports a bad specification only when smfi_opensocket()
 * runs, without a line number, and resolves host names; checking at load
 * lets the config loader name the file and line, and keeps start-up
 * resolver-free.
 */
#include "codec/milter_socket.h"

#include <stdint.h>

int milter_socket_address(const char *spec, struct sockaddr_storage *out, socklen_t *len)
{
    if (milter_socket_check(spec))
        return -1;
    memset(out, 0, sizeof(*out));
    const char *rest = spec;
    if (milter_socket_prefix(spec, "unix:", &rest) || milter_socket_prefix(spec, "local:", &rest)) {
        struct sockaddr_un *sun = (struct sockaddr_un *)out;
        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, rest, strlen(rest) + 1);
        *len = (socklen_t)sizeof(*sun);
        return 0;
    }
    bool v6 = milter_socket_prefix(spec, "inet6:", &rest);
    if (!v6)
        milter_socket_prefix(spec, "inet:", &rest);
    unsigned long port = 0;
    for (; *rest >= '0' && *rest <= '9'; rest++)
        port = port * 10 + (unsigned long)(*rest - '0');
    const char *addr = *rest == '@' ? rest + 1 : NULL;
    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        if (addr)
            inet_pton(AF_INET6, addr, &sin6->sin6_addr);
        if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
            sin6->sin6_addr = in6addr_loopback;
        *len = (socklen_t)sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        if (addr)
            inet_pton(AF_INET, addr, &sin->sin_addr);
        if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
            sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *len = (socklen_t)sizeof(*sin);
    }
    return 0;
}
