// fuzz-sources: codec/client_identity.c codec/esmtp.c util/net.c
/*
 * Client facts come from the network (HELO, login) or from DNS (name), and
 * the attribute list from the upstream: whatever they hold, every XCLIENT
 * line must be a well-formed command of at most 512 octets ending in CRLF,
 * and ADDR, when sent, must be in the last line.  The PROXY v2 header must
 * have the length it announces.
 *
 * Input: one flag octet, two port octets, then '\n'-separated strings:
 * attrs, addr, name, helo, proto, login.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/client_identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_FIELDS 6

static void fuzz_xclient(const struct client_facts *f, const char *attrs)
{
    char *out;
    unsigned n;
    size_t len = xclient_build(f, attrs, &out, &n);
    if (len == (size_t)-1) {
        if (out != NULL || n != 0)
            abort();
        return;
    }
    if (n == 0 || strlen(out) != len)
        abort();

    unsigned lines = 0;
    size_t p = 0;
    const char *last = out;
    while (p < len) {
        const char *lf = memchr(out + p, '\n', len - p);
        if (lf == NULL)
            abort();
        size_t line = (size_t)(lf - (out + p)) + 1;
        if (line > 512 || line < 11 || out[p + line - 2] != '\r' ||
            memchr(out + p, '\r', line - 2) != NULL || memcmp(out + p, "XCLIENT ", 8) != 0)
            abort();
        /* No blank, control or non-ASCII octet inside a value. */
        for (size_t i = p + 8; i < p + line - 2; i++) {
            unsigned char c = (unsigned char)out[i];
            if (c < 32 || c > 126)
                abort();
        }
        last = out + p;
        p += line;
        lines++;
    }
    if (lines != n)
        abort();
    const char *addr = strstr(out, " ADDR=");
    if (addr != NULL && addr < last)
        abort();
    free(out);
}

static void fuzz_proxy(const uint8_t *data, size_t size, uint8_t flags)
{
    struct sockaddr_storage src, dst;
    uint8_t out[232];
    memset(&src, 0, sizeof(src));
    memset(&dst, 0, sizeof(dst));
    static const int families[4] = {AF_INET, AF_INET6, AF_UNIX, AF_UNSPEC};
    src.ss_family = (sa_family_t)families[flags & 3];
    dst.ss_family = (sa_family_t)families[(flags >> 2) & 3];
    /* Fill the addresses and ports from the input. */
    size_t n = size < sizeof(struct sockaddr_in6) - 2 ? size : sizeof(struct sockaddr_in6) - 2;
    memcpy((char *)&src + 2, data, n);
    memcpy((char *)&dst + 2, data, n);
    size_t len = proxy_v2_build((struct sockaddr *)&src, (struct sockaddr *)&dst, out);
    if (len < 16 || len > sizeof(out) || (size_t)((out[14] << 8) | out[15]) != len - 16)
        abort();
    if (out[12] != 0x20 && out[12] != 0x21)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint8_t flags = data[0];
    unsigned port = (unsigned)(data[1] << 8 | data[2]) * ((flags & 0x80) ? 2u : 1u);

    char *field[FUZZ_FIELDS] = {0};
    size_t p = 3;
    for (int i = 0; i < FUZZ_FIELDS; i++) {
        const uint8_t *nl = p < size ? memchr(data + p, '\n', size - p) : NULL;
        size_t end = nl ? (size_t)(nl - data) : size;
        size_t len = end > p ? end - p : 0;
        field[i] = malloc(len + 1);
        if (field[i] == NULL)
            goto out;
        memcpy(field[i], data + p, len);
        field[i][len] = '\0';
        p = end + 1;
    }

    struct client_facts f = {
        .addr = (flags & 0x01) ? NULL : field[1],
        .family = (flags & 0x02) ? AF_INET6 : AF_INET,
        .port = port,
        .name = (flags & 0x04) ? NULL : field[2],
        .helo = (flags & 0x08) ? NULL : field[3],
        .proto = (flags & 0x10) ? NULL : field[4],
        .login = (flags & 0x20) ? NULL : field[5],
    };
    fuzz_xclient(&f, (flags & 0x40) ? "NAME ADDR PORT PROTO HELO LOGIN" : field[0]);
    fuzz_xclient(&f, field[0]);
    fuzz_proxy(data + 3, size - 3, flags);

out:
    for (int i = 0; i < FUZZ_FIELDS; i++)
        free(field[i]);
    return 0;
}
