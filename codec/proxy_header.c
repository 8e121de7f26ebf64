/*
 * proxy_header - PROXY protocol v1/v2 parser (HAProxy proxy-protocol.txt).
 *
 * Everything is checked against the octets actually present: a prefix that
 * could still become a valid header asks for more, anything else is invalid
 * at once, so a client that is not a proxy is told apart after a few octets
 * and a proxy's header is never read past its end (the client's own bytes
 * follow it on the same connection).
 */
#include "codec/proxy_header.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const uint8_t proxy_v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define PP2_TYPE_AUTHORITY 0x02
#define PP2_TYPE_SSL       0x20
#define PP2_CLIENT_SSL     0x01

/* Is buf[0..len) a prefix of sig (or sig a prefix of buf)? */
static bool proxy_prefix(const uint8_t *buf, size_t len, const uint8_t *sig, size_t sig_len)
{
    size_t n = len < sig_len ? len : sig_len;
    return memcmp(buf, sig, n) == 0;
}

/* A decimal port, "0".."65535", no sign, no leading zero. */
static bool proxy_v1_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

static bool proxy_v1_addr(int family, const char *s, size_t n, struct sockaddr_storage *ss,
                          uint16_t port)
{
    char text[INET6_ADDRSTRLEN + 1];
    if (n == 0 || n >= sizeof(text))
        return false;
    memcpy(text, s, n);
    text[n] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        return inet_pton(AF_INET, text, &a->sin_addr) == 1;
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    return inet_pton(AF_INET6, text, &a->sin6_addr) == 1;
}

static enum proxy_hdr_status proxy_v1(const uint8_t *buf, size_t len, struct proxy_header *out,
                                      size_t *consumed)
{
    size_t limit = len < PROXY_HDR_V1_MAX ? len : PROXY_HDR_V1_MAX;
    const uint8_t *lf = memchr(buf, '\n', limit);
    if (!lf)
        return len >= PROXY_HDR_V1_MAX ? PROXY_HDR_INVALID : PROXY_HDR_MORE;
    size_t line_len = (size_t)(lf - buf);
    if (line_len < 1 || buf[line_len - 1] != '\r')
        return PROXY_HDR_INVALID;
    line_len--;
    const char *line = (const char *)buf;
    *consumed = line_len + 2;
    out->version = 1;

    /* Fields separated by exactly one space: PROXY proto src dst sport dport. */
    const char *f[6];
    size_t fl[6];
    size_t nf = 0, start = 0;
    for (size_t i = 0; i <= line_len; i++) {
        if (i == line_len || line[i] == ' ') {
            if (nf == 6)
                return PROXY_HDR_INVALID;
            f[nf] = line + start;
            fl[nf] = i - start;
            nf++;
            start = i + 1;
        } else if ((unsigned char)line[i] < 0x21 || (unsigned char)line[i] > 0x7E) {
            return PROXY_HDR_INVALID;
        }
    }
    if (nf < 2 || fl[0] != 5 || memcmp(f[0], "PROXY", 5) != 0)
        return PROXY_HDR_INVALID;
    if (fl[1] == 7 && memcmp(f[1], "UNKNOWN", 7) == 0) {
        /* The rest of the line may be anything, and is ignored. */
        out->local = true;
        return PROXY_HDR_OK;
    }
    int family;
    if (fl[1] == 4 && memcmp(f[1], "TCP4", 4) == 0)
        family = AF_INET;
    else if (fl[1] == 4 && memcmp(f[1], "TCP6", 4) == 0)
        family = AF_INET6;
    else
        return PROXY_HDR_INVALID;
    for (size_t i = 0; i < nf; i++)
        if (fl[i] == 0)
            return PROXY_HDR_INVALID;
    uint16_t sport, dport;
    if (nf != 6 || !proxy_v1_port(f[4], fl[4], &sport) || !proxy_v1_port(f[5], fl[5], &dport))
        return PROXY_HDR_INVALID;
    if (memchr(f[2], ':', fl[2]) ? family != AF_INET6 : family != AF_INET)
        return PROXY_HDR_INVALID;
    if (!proxy_v1_addr(family, f[2], fl[2], &out->src, sport) ||
        !proxy_v1_addr(family, f[3], fl[3], &out->dst, dport))
        return PROXY_HDR_INVALID;
    out->addr_len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    return PROXY_HDR_OK;
}

static uint16_t proxy_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* Walk TLVs in [p, end): each must fit; returns false on any overrun. */
static bool proxy_v2_tlvs(const uint8_t *p, const uint8_t *end, struct proxy_header *out)
{
    while (p < end) {
        if ((size_t)(end - p) < 3)
            return false;
        uint8_t type = p[0];
        size_t vlen = proxy_be16(p + 1);
        p += 3;
        if ((size_t)(end - p) < vlen)
            return false;
        if (type == PP2_TYPE_AUTHORITY) {
            if (vlen < sizeof(out->authority) && !memchr(p, '\0', vlen)) {
                memcpy(out->authority, p, vlen);
                out->authority[vlen] = '\0';
            }
        } else if (type == PP2_TYPE_SSL) {
            /* client (1) verify (4) then sub-TLVs, which must be well formed too. */
            if (vlen < 5)
                return false;
            out->ssl = (p[0] & PP2_CLIENT_SSL) != 0;
            struct proxy_header sub;
            memset(&sub, 0, sizeof(sub));
            if (!proxy_v2_tlvs(p + 5, p + vlen, &sub))
                return false;
        }
        p += vlen;
    }
    return true;
}

static enum proxy_hdr_status proxy_v2(const uint8_t *buf, size_t len, struct proxy_header *out,
                                      size_t *consumed)
{
    if (len < 16)
        return PROXY_HDR_MORE;
    uint8_t ver_cmd = buf[12], fam = buf[13];
    size_t body = proxy_be16(buf + 14);
    if ((ver_cmd >> 4) != 2)
        return PROXY_HDR_INVALID;
    unsigned cmd = ver_cmd & 0x0F;
    if (cmd > 1)
        return PROXY_HDR_INVALID;
    if (len < 16 + body)
        return PROXY_HDR_MORE;
    *consumed = 16 + body;
    out->version = 2;

    unsigned af = fam >> 4, proto = fam & 0x0F;
    if (af > 3 || proto > 2)
        return PROXY_HDR_INVALID;
    const uint8_t *p = buf + 16, *end = buf + 16 + body;
    size_t need = af == 1 ? 12 : af == 2 ? 36 : af == 3 ? 216 : 0;
    if (body < need)
        return PROXY_HDR_INVALID;

    if (cmd == 0 || af == 0 || af == 3 || proto == 0) {
        /* LOCAL (the proxy's own health check) or nothing usable: the
         * connection's own addresses stand.  The address block is skipped. */
        out->local = true;
    } else if (proto != 1) {
        return PROXY_HDR_INVALID; /* datagrams have no place on an SMTP port */
    } else if (af == 1) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, p, 4);
        memcpy(&d->sin_addr, p + 4, 4);
        memcpy(&s->sin_port, p + 8, 2);
        memcpy(&d->sin_port, p + 10, 2);
        out->addr_len = sizeof(struct sockaddr_in);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, p, 16);
        memcpy(&d->sin6_addr, p + 16, 16);
        memcpy(&s->sin6_port, p + 32, 2);
        memcpy(&d->sin6_port, p + 34, 2);
        out->addr_len = sizeof(struct sockaddr_in6);
    }
    if (!proxy_v2_tlvs(p + need, end, out))
        return PROXY_HDR_INVALID;
    return PROXY_HDR_OK;
}

enum proxy_hdr_status proxy_header_parse(const uint8_t *buf, size_t len, unsigned allow,
                                         struct proxy_header *out, size_t *consumed)
{
    memset(out, 0, sizeof(*out));
    *consumed = 0;
    if (len == 0)
        return PROXY_HDR_MORE;
    bool v1 = (allow & PROXY_HDR_ALLOW_V1) && proxy_prefix(buf, len, (const uint8_t *)"PROXY ", 6);
    bool v2 = (allow & PROXY_HDR_ALLOW_V2) && proxy_prefix(buf, len, proxy_v2_sig, 12);
    if (!v1 && !v2)
        return PROXY_HDR_INVALID;
    if (v1) {
        if (len < 6)
            return PROXY_HDR_MORE;
        return proxy_v1(buf, len, out, consumed);
    }
    if (len < 12)
        return PROXY_HDR_MORE;
    return proxy_v2(buf, len, out, consumed);
}
