/*
 * client_identity - tell the upstream who the real client is: XCLIENT command
 * lines (Postfix XCLIENT_README) and the PROXY protocol v2 header (HAProxy
 * proxy-protocol.txt 2.2), built as bytes, pure.
 *
 * xclient_build() sends only attributes the upstream announced, each value
 * xtext-encoded and at most 255 octets (Postfix refuses longer values with
 * 501), a value that cannot be sent as "[UNAVAILABLE]".  Lines are at most
 * 512 octets including CRLF.  Postfix re-evaluates XCLIENT permission with the
 * new client name and address after each XCLIENT, so NAME, ADDR and PORT go
 * in the last line; it also resets HELO, PROTO and LOGIN when the last XCLIENT
 * does not carry them, so as many of those as fit join that last line (LOGIN
 * first, as it decides relay permission), and only the rest goes before it.
 *
 * proxy_v2_build() writes the signature, the PROXY command and a TCP4 or TCP6
 * address block; IPv4-mapped IPv6 addresses are sent as IPv4 so that the
 * upstream's access rules see the address they were written for, and mixed
 * families are sent as TCP6.  Anything else is sent as LOCAL.
 *
 * Diagnostics: xclient_build() returns (size_t)-1 when memory runs out or when
 * the upstream announced no attribute that we send.
 */
#include "codec/client_identity.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/net.h"

#include "codec/esmtp.h"

#define XCLIENT_LINE_MAX  512 /* including CRLF */
#define XCLIENT_VALUE_MAX 255 /* Postfix: "attribute value too long" */
#define XCLIENT_PREFIX    "XCLIENT"
#define XCLIENT_UNAVAIL   "[UNAVAILABLE]"
#define XCLIENT_IPV6      "IPV6:"

/* In the order they are written within a line. */
enum xclient_attr { XA_HELO, XA_PROTO, XA_LOGIN, XA_NAME, XA_ADDR, XA_PORT, XA__COUNT };

static const char *const xclient_names[XA__COUNT] = {
    [XA_HELO] = "HELO", [XA_PROTO] = "PROTO", [XA_LOGIN] = "LOGIN",
    [XA_NAME] = "NAME", [XA_ADDR] = "ADDR",   [XA_PORT] = "PORT",
};

/* Which of HELO/PROTO/LOGIN join the last line first. */
static const enum xclient_attr xclient_last_extra[] = {XA_LOGIN, XA_HELO, XA_PROTO};

struct xclient_item {
    bool present;
    bool last_line;
    char value[XCLIENT_VALUE_MAX + 1];
    size_t len; /* " NAME=value" */
};

/* Is name a word of the blank-separated list attrs (case-insensitive)? */
static bool xclient_announced(const char *attrs, const char *name)
{
    size_t name_len = strlen(name);
    const char *p = attrs;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if ((size_t)(p - start) == name_len && strncasecmp(start, name, name_len) == 0)
            return true;
    }
    return false;
}

/* xtext-encode src into item, or "[UNAVAILABLE]" when absent or too long. */
static void xclient_set(struct xclient_item *item, const char *src, size_t len)
{
    if (src == NULL || len == 0 ||
        esmtp_xtext_encode(src, len, item->value, sizeof(item->value)) == (size_t)-1)
        strcpy(item->value, XCLIENT_UNAVAIL);
}

static void xclient_set_str(struct xclient_item *item, const char *src)
{
    xclient_set(item, src, src ? strlen(src) : 0);
}

/*
 * Postfix answers 501 to a NAME that is not a valid host name, which would
 * lose the whole XCLIENT; the name is unknown to the upstream then.
 */
static bool xclient_hostname_ok(const char *name)
{
    size_t label = 0;
    bool alpha = false;
    if (name == NULL || *name == '\0')
        return false;
    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_') {
            alpha = true;
            label++;
        } else if (c >= '0' && c <= '9') {
            label++;
        } else {
            return false;
        }
        if (label > 63)
            return false;
    }
    /* All-numeric names are addresses in disguise. */
    return alpha;
}

/*
 * The numeric address as XCLIENT wants it: IPv4 dotted, IPv6 with "IPV6:",
 * IPv4-mapped IPv6 as IPv4.  Returns false if addr is not a numeric address.
 */
static bool xclient_addr_text(const char *addr, char *out, size_t out_size)
{
    struct net_addr a;
    char text[INET6_ADDRSTRLEN];

    if (addr == NULL || !net_addr_parse(addr, strlen(addr), &a))
        return false;
    if (a.family == AF_INET)
        return inet_ntop(AF_INET, a.bytes, out, (socklen_t)out_size) != NULL;
    if (inet_ntop(AF_INET6, a.bytes, text, sizeof(text)) == NULL)
        return false;
    return (size_t)snprintf(out, out_size, "%s%s", XCLIENT_IPV6, text) < out_size;
}

static void xclient_values(const struct client_facts *f, struct xclient_item *items)
{
    char buf[64];

    xclient_set_str(&items[XA_HELO], f->helo);

    /* Postfix refuses any PROTO but these two, even [UNAVAILABLE]. */
    if (f->proto && strcasecmp(f->proto, "ESMTP") == 0)
        strcpy(items[XA_PROTO].value, "ESMTP");
    else if (f->proto && strcasecmp(f->proto, "SMTP") == 0)
        strcpy(items[XA_PROTO].value, "SMTP");
    else
        items[XA_PROTO].present = false;

    xclient_set_str(&items[XA_LOGIN], f->login);
    if (!f->name && f->name_tempfail)
        strcpy(items[XA_NAME].value, "[TEMPUNAVAIL]");
    else
        xclient_set_str(&items[XA_NAME], xclient_hostname_ok(f->name) ? f->name : NULL);

    if (xclient_addr_text(f->addr, buf, sizeof(buf)))
        xclient_set_str(&items[XA_ADDR], buf);
    else
        xclient_set(&items[XA_ADDR], NULL, 0);

    if (f->port > 0 && f->port <= 65535) {
        snprintf(buf, sizeof(buf), "%u", f->port);
        xclient_set_str(&items[XA_PORT], buf);
    } else {
        xclient_set(&items[XA_PORT], NULL, 0);
    }
}

/* Write one line with the items marked in take[]; returns its length, 0 if
 * nothing is marked. */
static size_t xclient_emit(char *out, const struct xclient_item *items, const bool *take)
{
    size_t o = 0;
    for (int a = 0; a < XA__COUNT; a++) {
        if (!take[a])
            continue;
        if (o == 0) {
            memcpy(out, XCLIENT_PREFIX, sizeof(XCLIENT_PREFIX) - 1);
            o = sizeof(XCLIENT_PREFIX) - 1;
        }
        o += (size_t)sprintf(out + o, " %s=%s", xclient_names[a], items[a].value);
    }
    if (o > 0) {
        memcpy(out + o, "\r\n", 2);
        o += 2;
    }
    return o;
}

size_t xclient_build(const struct client_facts *f, const char *attrs, char **out, unsigned *ncmds)
{
    struct xclient_item items[XA__COUNT];
    const size_t base = sizeof(XCLIENT_PREFIX) - 1 + 2;

    *out = NULL;
    *ncmds = 0;
    if (f == NULL || attrs == NULL)
        return (size_t)-1;

    memset(items, 0, sizeof(items));
    for (int a = 0; a < XA__COUNT; a++)
        items[a].present = xclient_announced(attrs, xclient_names[a]);
    xclient_values(f, items);
    bool any = false;
    for (int a = 0; a < XA__COUNT; a++)
        any |= items[a].present;
    if (!any)
        return (size_t)-1;

    /* The last line: NAME, ADDR, PORT, then whatever else fits. */
    size_t last_len = base;
    size_t total = 0;
    for (int a = 0; a < XA__COUNT; a++) {
        if (!items[a].present)
            continue;
        items[a].len = 1 + strlen(xclient_names[a]) + 1 + strlen(items[a].value);
        if (a == XA_NAME || a == XA_ADDR || a == XA_PORT) {
            items[a].last_line = true;
            last_len += items[a].len;
        }
    }
    for (size_t i = 0; i < sizeof(xclient_last_extra) / sizeof(xclient_last_extra[0]); i++) {
        struct xclient_item *it = &items[xclient_last_extra[i]];
        if (it->present && last_len + it->len <= XCLIENT_LINE_MAX) {
            it->last_line = true;
            last_len += it->len;
        }
    }

    /* The others, greedily, in lines before it.  Each item fits a line alone:
     * values are at most 255 octets. */
    bool lines[XA__COUNT][XA__COUNT];
    size_t nlines = 0;
    size_t cur = 0;
    memset(lines, 0, sizeof(lines));
    for (int a = 0; a < XA__COUNT; a++) {
        if (!items[a].present || items[a].last_line)
            continue;
        if (cur > 0 && cur + items[a].len > XCLIENT_LINE_MAX) {
            total += cur;
            nlines++;
            cur = 0;
        }
        if (cur == 0)
            cur = base;
        lines[nlines][a] = true;
        cur += items[a].len;
    }
    if (cur > 0) {
        total += cur;
        nlines++;
    }
    bool last_take[XA__COUNT];
    bool last_any = false;
    for (int a = 0; a < XA__COUNT; a++) {
        last_take[a] = items[a].present && items[a].last_line;
        last_any |= last_take[a];
    }
    if (last_any)
        total += last_len;

    char *buf = malloc(total + 1);
    if (buf == NULL)
        return (size_t)-1;
    size_t o = 0;
    for (size_t l = 0; l < nlines; l++)
        o += xclient_emit(buf + o, items, lines[l]);
    if (last_any) {
        o += xclient_emit(buf + o, items, last_take);
        nlines++;
    }
    buf[o] = '\0';
    *out = buf;
    *ncmds = (unsigned)nlines;
    return o;
}

/* ---- PROXY protocol v2 ---- */

static const uint8_t proxy_v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define PROXY_V2_LOCAL  0x20
#define PROXY_V2_PROXY  0x21
#define PROXY_V2_UNSPEC 0x00
#define PROXY_V2_TCP4   0x11
#define PROXY_V2_TCP6   0x21

/* One endpoint, as both an IPv6 and (when possible) an IPv4 address. */
struct proxy_end {
    uint8_t a6[16];
    uint8_t a4[4];
    bool is4; /* IPv4, or IPv4-mapped IPv6 */
    uint8_t port[2];
};

static bool proxy_v2_end(const struct sockaddr *sa, struct proxy_end *e)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (sa == NULL)
        return false;
    /* Copy out by family: the caller's storage may be only as large as it. */
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof(in));
        memcpy(e->a4, &in.sin_addr, 4);
        memcpy(e->a6, mapped, 12);
        memcpy(e->a6 + 12, e->a4, 4);
        memcpy(e->port, &in.sin_port, 2);
        e->is4 = true;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof(in6));
        memcpy(e->a6, &in6.sin6_addr, 16);
        memcpy(e->port, &in6.sin6_port, 2);
        e->is4 = memcmp(e->a6, mapped, 12) == 0;
        if (e->is4)
            memcpy(e->a4, e->a6 + 12, 4);
        return true;
    }
    return false;
}

size_t proxy_v2_build(const struct sockaddr *src, const struct sockaddr *dst, uint8_t *out)
{
    struct proxy_end s, d;
    size_t o = 16;

    memcpy(out, proxy_v2_sig, sizeof(proxy_v2_sig));
    if (!proxy_v2_end(src, &s) || !proxy_v2_end(dst, &d)) {
        out[12] = PROXY_V2_LOCAL;
        out[13] = PROXY_V2_UNSPEC;
        out[14] = 0;
        out[15] = 0;
        return 16;
    }
    out[12] = PROXY_V2_PROXY;
    if (s.is4 && d.is4) {
        out[13] = PROXY_V2_TCP4;
        memcpy(out + o, s.a4, 4);
        memcpy(out + o + 4, d.a4, 4);
        o += 8;
    } else {
        out[13] = PROXY_V2_TCP6;
        memcpy(out + o, s.a6, 16);
        memcpy(out + o + 16, d.a6, 16);
        o += 32;
    }
    memcpy(out + o, s.port, 2);
    memcpy(out + o + 2, d.port, 2);
    o += 4;
    out[14] = (uint8_t)((o - 16) >> 8);
    out[15] = (uint8_t)((o - 16) & 0xff);
    return o;
}
