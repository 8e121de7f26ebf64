/*
 * client_key - canonical key texts for addresses, networks, senders and
 * domains (contract in client_key.h).
 *
 * Addresses go through util/net's parser, which reads a v4-mapped IPv6
 * address as its IPv4 address, and back out through inet_ntop(), so the
 * text of a key never depends on how the client's address was spelled.
 * Mailboxes are lower-cased whole: local parts are case-sensitive by the
 * letter of RFC 5321, but no mail system that a rate or a greylist is meant
 * for treats User@ and user@ as two senders, and a spammer would otherwise
 * get a fresh counter by changing case.
 */
#include "client_key.h"

#include <arpa/inet.h>
#include <string.h>

#include "util/net.h"

static int key_put(const char *s, size_t n, char *out, size_t outlen)
{
    if (outlen == 0 || n >= outlen)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return (int)n;
}

static char key_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int client_key_address(const char *addr, char *out, size_t outlen)
{
    struct net_addr a;
    char text[INET6_ADDRSTRLEN];
    if (addr == NULL || !net_addr_parse(addr, strlen(addr), &a) ||
        inet_ntop(a.family, a.bytes, text, sizeof(text)) == NULL)
        return -1;
    return key_put(text, strlen(text), out, outlen);
}

int client_key_network(const char *addr, unsigned ipv4_prefix, unsigned ipv6_prefix, char *out,
                       size_t outlen)
{
    struct net_addr a;
    if (addr == NULL || !net_addr_parse(addr, strlen(addr), &a))
        return -1;
    unsigned bits = a.family == AF_INET ? ipv4_prefix : ipv6_prefix;
    unsigned size = a.family == AF_INET ? 32 : 128;
    if (bits > size)
        return -1;
    for (unsigned i = 0; i < size / 8; i++) {
        unsigned keep = bits > i * 8 ? bits - i * 8 : 0;
        if (keep < 8)
            a.bytes[i] &= (uint8_t)(0xff00u >> keep);
    }
    char text[INET6_ADDRSTRLEN + 4];
    if (inet_ntop(a.family, a.bytes, text, INET6_ADDRSTRLEN) == NULL)
        return -1;
    size_t n = strlen(text);
    text[n++] = '/';
    if (bits >= 100)
        text[n++] = (char)('0' + bits / 100);
    if (bits >= 10)
        text[n++] = (char)('0' + bits / 10 % 10);
    text[n++] = (char)('0' + bits % 10);
    return key_put(text, n, out, outlen);
}

int client_key_sender(const char *mailbox, bool strip_extension, char *out, size_t outlen)
{
    if (mailbox == NULL)
        return -1;
    if (*mailbox == '\0')
        return key_put("<>", 2, out, outlen);
    const char *at = strrchr(mailbox, '@');
    size_t len = strlen(mailbox);
    size_t local_end = at ? (size_t)(at - mailbox) : len;
    size_t n = 0;
    bool in_extension = false;
    for (size_t i = 0; i < len; i++) {
        if (i == local_end)
            in_extension = false;
        else if (strip_extension && i < local_end && mailbox[i] == '+' && i > 0)
            in_extension = true;
        if (in_extension)
            continue;
        if (n + 1 >= outlen)
            return -1;
        unsigned char c = (unsigned char)mailbox[i];
        if (c < 0x20 || c == 0x7f)
            return -1;
        out[n++] = key_lower((char)c);
    }
    if (outlen == 0)
        return -1;
    out[n] = '\0';
    return (int)n;
}

int client_key_domain(const char *mailbox, char *out, size_t outlen)
{
    const char *at = mailbox ? strrchr(mailbox, '@') : NULL;
    if (at == NULL || at[1] == '\0')
        return -1;
    const char *d = at + 1;
    size_t len = strlen(d);
    /* A trailing dot names the same domain; an empty label names none. */
    if (len > 1 && d[len - 1] == '.')
        len--;
    if (d[len - 1] == '.' || len >= outlen)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c <= 0x20 || c == 0x7f)
            return -1;
        out[i] = key_lower((char)c);
    }
    out[len] = '\0';
    return (int)len;
}
