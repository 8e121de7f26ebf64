/*
 * milter_addr - a milter socket specification to a socket address (see the
 * header).
 *
 * Promises: no resolver, no allocation; every length is checked before a
 * copy, so any input (the fuzz harness feeds it arbitrary octets) gives 0 or
 * -1 and nothing else.
 */
#include "plugins/milter/milter_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/un.h>

static bool addr_prefix(const char *spec, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(spec, prefix, n) != 0)
        return false;
    *rest = spec + n;
    return true;
}

/* A port of 1 to 65535 in exactly n digits. */
static int addr_port(const char *p, size_t n, unsigned *port)
{
    if (n == 0 || n > 5)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

/* host (n octets, no brackets) as an address of family af. */
static int addr_host(const char *host, size_t n, int af, void *dst)
{
    char buf[INET6_ADDRSTRLEN];
    if (n == 9 && strncmp(host, "localhost", 9) == 0) {
        const char *lo = af == AF_INET ? "127.0.0.1" : "::1";
        return inet_pton(af, lo, dst) == 1 ? 0 : -1;
    }
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, host, n);
    buf[n] = '\0';
    return inet_pton(af, buf, dst) == 1 ? 0 : -1;
}

static int addr_fill(int af, const void *ip, unsigned port, struct sockaddr_storage *out,
                     socklen_t *len)
{
    memset(out, 0, sizeof(*out));
    if (af == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        memcpy(&sin->sin_addr, ip, sizeof(sin->sin_addr));
        *len = (socklen_t)sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        memcpy(&sin6->sin6_addr, ip, sizeof(sin6->sin6_addr));
        *len = (socklen_t)sizeof(*sin6);
    }
    return 0;
}

static int addr_inet(const char *rest, bool v6_prefix, struct sockaddr_storage *out, socklen_t *len,
                     const char **why)
{
    unsigned char ip[sizeof(struct in6_addr)];
    unsigned port;
    const char *at = strchr(rest, '@');
    if (at) {
        /* libmilter: PORT@HOST */
        if (addr_port(rest, (size_t)(at - rest), &port) < 0) {
            *why = "expected a port from 1 to 65535 before '@'";
            return -1;
        }
        const char *host = at + 1;
        size_t n = strlen(host);
        if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
            host++;
            n -= 2;
        }
        int af = v6_prefix || memchr(host, ':', n) ? AF_INET6 : AF_INET;
        if (addr_host(host, n, af, ip) < 0) {
            *why = "the host must be a numeric address or localhost";
            return -1;
        }
        return addr_fill(af, ip, port, out, len);
    }
    /* Postfix: HOST:PORT, an IPv6 host in brackets */
    const char *colon = strrchr(rest, ':');
    if (!colon) {
        *why = "expected HOST:PORT or PORT@HOST";
        return -1;
    }
    if (addr_port(colon + 1, strlen(colon + 1), &port) < 0) {
        *why = "expected a port from 1 to 65535 after the last ':'";
        return -1;
    }
    const char *host = rest;
    size_t n = (size_t)(colon - rest);
    bool bracket = n >= 2 && host[0] == '[' && host[n - 1] == ']';
    if (bracket) {
        host++;
        n -= 2;
    } else if (memchr(host, ':', n)) {
        *why = "an IPv6 host needs brackets: inet:[::1]:PORT";
        return -1;
    }
    int af = v6_prefix || bracket ? AF_INET6 : AF_INET;
    if (af == AF_INET6 && bracket && n > 0 && !memchr(host, ':', n) &&
        !(n == 9 && strncmp(host, "localhost", 9) == 0)) {
        /* "[127.0.0.1]:PORT" is Postfix's literal IPv4 form */
        af = AF_INET;
    }
    if (addr_host(host, n, af, ip) < 0) {
        *why = "the host must be a numeric address or localhost";
        return -1;
    }
    return addr_fill(af, ip, port, out, len);
}

int milter_addr_parse(const char *spec, struct sockaddr_storage *out, socklen_t *len,
                      const char **why)
{
    const char *rest;
    if (addr_prefix(spec, "unix:", &rest) || addr_prefix(spec, "local:", &rest)) {
        size_t n = strlen(rest);
        struct sockaddr_un sun;
        if (rest[0] != '/') {
            *why = "the socket path must be absolute";
            return -1;
        }
        if (n >= sizeof(sun.sun_path)) {
            *why = "the socket path is too long";
            return -1;
        }
        memset(out, 0, sizeof(*out));
        struct sockaddr_un *u = (struct sockaddr_un *)out;
        u->sun_family = AF_UNIX;
        memcpy(u->sun_path, rest, n + 1);
        *len = (socklen_t)sizeof(*u);
        return 0;
    }
    if (addr_prefix(spec, "inet6:", &rest))
        return addr_inet(rest, true, out, len, why);
    if (addr_prefix(spec, "inet:", &rest))
        return addr_inet(rest, false, out, len, why);
    *why = "expected inet:HOST:PORT, inet:PORT@HOST, inet6:PORT@HOST or unix:PATH";
    return -1;
}
