/*
 * milter_socket - the libmilter socket specification of smtpgate-milter's
 * "milter { socket = ... }" setting, checked before libmilter sees it.
 *
 *   inet:PORT             every IPv4 address
 *   inet:PORT@ADDR        an IPv4 address ("inet:8890@127.0.0.1")
 *   inet6:PORT[@ADDR]     IPv6 ("inet6:8890@::1"), no brackets
 *   unix:PATH, local:PATH an absolute path that fits a sockaddr_un
 *
 * milter_socket_check() is pure: it takes the text and returns NULL when
 * libmilter will accept it, or a static reason naming what is wrong.  Host
 * names are refused: the daemon must not depend on a resolver to start.  It
 * is defined here, inline, so that the config loader (which checks the
 * setting while it knows the line) gains no link dependency: every program
 * and harness that links config.c keeps its source list.
 *
 * milter_socket_address() gives the address a local client connects to for a
 * listener on spec (a wildcard or missing address means loopback), as a
 * sockaddr_in, sockaddr_in6 or sockaddr_un; -1 when spec is not valid.
 */
#ifndef SMTPGATE_MILTER_SOCKET_H
#define SMTPGATE_MILTER_SOCKET_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

static inline bool milter_socket_prefix(const char *spec, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(spec, prefix, n) != 0)
        return false;
    *rest = spec + n;
    return true;
}

/* "PORT" or "PORT@ADDR" with ADDR an address literal of family af. */
static inline const char *milter_socket_inet(const char *rest, int af)
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

static inline const char *milter_socket_check(const char *spec)
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

int milter_socket_address(const char *spec, struct sockaddr_storage *out, socklen_t *len);

#endif
