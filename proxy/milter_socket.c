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
    const char *rest;
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
