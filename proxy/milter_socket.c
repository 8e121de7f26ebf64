/*
 * milter_socket - checks a libmilter socket specification (see the header).
 *
 * libmilter itself reports a bad specification only when smfi_opensocket()
 * runs, without a line number, and resolves host names; checking here lets the
 * config loader name the file and line, and keeps start-up resolver-free.
 */
#include "milter_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/un.h>

static bool milter_socket_prefix(const char *spec, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(spec, prefix, n) != 0)
        return false;
    *rest = spec + n;
    return true;
}

/* "PORT" or "PORT@ADDR" with ADDR an address literal of family af. */
static const char *milter_socket_inet(const char *rest, int af)
{
    size_t digits = strspn(rest, "0123456789");
    if (digits == 0 || digits > 5)
        return "expected a port number after the colon";
    unsigned long port = 0;
    for (size_t i = 0; i < digits; i++)
        port = port * 10 + (unsigned long)(rest[i] - '0');
    if (port < 1 || port > 65535)
        return "port must be from 1 to 65535";
    const char *tail = rest + digits;
    if (*tail == '\0')
        return NULL;
    if (*tail != '@')
        return "expected PORT@ADDRESS";
    const char *addr = tail + 1;
    size_t len = strlen(addr);
    if (len == 0)
        return "missing address after '@'";
    char buf[INET6_ADDRSTRLEN];
    if (len >= sizeof(buf))
        return "address too long";
    memcpy(buf, addr, len + 1);
    unsigned char out[sizeof(struct in6_addr)];
    if (inet_pton(af, buf, out) != 1)
        return af == AF_INET ? "address must be a numeric IPv4 address"
                             : "address must be a numeric IPv6 address, without brackets";
    return NULL;
}

const char *milter_socket_check(const char *spec)
{
    const char *rest = spec;
    if (milter_socket_prefix(spec, "inet:", &rest))
        return milter_socket_inet(rest, AF_INET);
    if (milter_socket_prefix(spec, "inet6:", &rest))
        return milter_socket_inet(rest, AF_INET6);
    if (milter_socket_prefix(spec, "unix:", &rest) || milter_socket_prefix(spec, "local:", &rest)) {
        if (rest[0] != '/')
            return "the socket path must be absolute";
        if (strlen(rest) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return "the socket path is too long";
        return NULL;
    }
    return "expected inet:PORT@ADDRESS, inet6:PORT@ADDRESS or unix:PATH";
}

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
