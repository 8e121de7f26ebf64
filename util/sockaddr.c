/*
 * sockaddr - parsing "host:port" into a socket address.
 *
 * The host part is copied into a local buffer of 256 octets (a domain name
 * is at most 253); a longer one is refused here, where the buffer is.
 */
#include "util/sockaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sockaddr_parse(const char *text, unsigned flags, struct sg_sockaddr *out)
{
    char host[256];
    const char *port;
    size_t hlen;
    bool passive = flags & SOCKADDR_PASSIVE;

    memset(out, 0, sizeof(*out));
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end || end[1] != ':')
            return "expected [IPv6-address]:port";
        hlen = (size_t)(end - text - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            return "bad IPv6 address";
        memcpy(host, text + 1, hlen);
        port = end + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon)
            return "expected host:port";
        if (memchr(text, ':', (size_t)(colon - text)))
            return "IPv6 addresses need brackets: [address]:port";
        hlen = (size_t)(colon - text);
        if (hlen == 0 || hlen >= sizeof(host))
            return "missing or too long host";
        memcpy(host, text, hlen);
        port = colon + 1;
    }
    host[hlen] = '\0';

    char *endp;
    errno = 0;
    long p = strtol(port, &endp, 10);
    if (*port == '\0' || *endp != '\0' || errno || p < 1 || p > 65535)
        return "port must be a number from 1 to 65535";

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    if (flags & SOCKADDR_NUMERIC)
        hints.ai_flags |= AI_NUMERICHOST;
    if (passive)
        hints.ai_flags |= AI_PASSIVE;
    const char *lookup = host;
    if (strcmp(host, "*") == 0) {
        if (!passive)
            return "\"*\" is only for listen addresses";
        lookup = NULL;
        hints.ai_family = AF_INET;
    }
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(lookup, port, &hints, &res);
    if (rc != 0 || !res)
        return rc == EAI_NONAME ? "host name not found" : gai_strerror(rc);
    if (res->ai_addrlen > sizeof(out->sa)) {
        freeaddrinfo(res);
        return "address family not supported";
    }
    memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);

    char numeric[INET6_ADDRSTRLEN];
    const void *a = out->sa.ss_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)&out->sa)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)&out->sa)->sin_addr;
    if (!inet_ntop(out->sa.ss_family, a, numeric, sizeof(numeric))) {
        memset(out, 0, sizeof(*out));
        return "address family not supported";
    }
    /* Cannot truncate: see SOCKADDR_TEXT_MAX; checked all the same. */
    int n = snprintf(out->text, sizeof(out->text),
                     out->sa.ss_family == AF_INET6 ? "[%s]:%ld" : "%s:%ld", numeric, p);
    if (n < 0 || (size_t)n >= sizeof(out->text)) {
        memset(out, 0, sizeof(*out));
        return "address too long";
    }
    return NULL;
}
