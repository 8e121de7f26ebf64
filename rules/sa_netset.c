/*
 * sa_netset - SpamAssassin's network lists (see sa_netset.h).
 *
 * IPv4 entries are kept as IPv4 ranges and IPv4 addresses are looked up as
 * such (util/net folds ::ffff:a.b.c.d into its IPv4 address), which is
 * what NetSet's paired IPv4 / mapped-IPv6 entries amount to.
 */
#include "rules/sa_netset.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"

static const char *const names[SA_NET__COUNT] = {"trusted_networks", "internal_networks",
                                                 "msa_networks"};

static int add(struct sa_netset *s, const struct net_range *r, bool exclude)
{
    if (util_grow(&s->v, &s->cap, s->n + 1, sizeof(*s->v)) != 0)
        return -1;
    s->v[s->n++] = (struct sa_net){*r, exclude};
    return 0;
}

static int reset(struct sa_netset *s, bool loopback)
{
    s->n = 0;
    s->configured = false;
    if (!loopback)
        return 0;
    struct net_range r;
    const char *why;
    if (net_range_parse_text("127.0.0.0/8", 11, 0, &r, &why) != 0 || add(s, &r, false) != 0)
        return -1;
    if (net_range_parse_text("::1", 3, 0, &r, &why) != 0 || add(s, &r, false) != 0)
        return -1;
    return 0;
}

struct sa_relay_conf *sa_relay_conf_new(void)
{
    struct sa_relay_conf *c = util_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if (reset(&c->set[SA_NET_TRUSTED], true) != 0 || reset(&c->set[SA_NET_INTERNAL], true) != 0) {
        sa_relay_conf_free(c);
        return NULL;
    }
    return c;
}

void sa_relay_conf_free(struct sa_relay_conf *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < SA_NET__COUNT; i++)
        free(c->set[i].v);
    free(c);
}

/* One entry as NetSet's add_cidr reads it: 0 read, 1 not readable. */
static int entry(const char *e, size_t n, struct net_range *r, bool *exclude)
{
    char buf[128], addr[128];
    if (n == 0 || n >= sizeof(buf))
        return 1;
    memcpy(buf, e, n);
    buf[n] = '\0';
    char *s = buf;
    *exclude = *s == '!';
    if (*exclude)
        s++;
    const char *mask = NULL;
    char *slash = strchr(s, '/');
    if (slash != NULL) {
        *slash = '\0';
        mask = slash + 1;
        if (*mask == '\0' || strspn(mask, "0123456789") != strlen(mask) || strlen(mask) > 3)
            return 1; /* a netmask such as 255.255.0.0: not read here */
    }
    size_t k = strlen(s);
    if (k >= 2 && s[0] == '[' && s[k - 1] == ']' && memchr(s + 1, ']', k - 2) == NULL) {
        s[k - 1] = '\0';
        s++;
    }
    char *pct = strrchr(s, '%');
    if (pct != NULL)
        *pct = '\0';
    unsigned deflen = 128;
    if (isdigit((unsigned char)s[0]) && (strchr(s, '.') != NULL || strspn(s, "0123456789") == strlen(s))) {
        unsigned o[4], cnt = 0;
        const char *p = s;
        while (cnt < 4 && isdigit((unsigned char)*p)) {
            char *end;
            unsigned long v = strtoul(p, &end, 10);
            if (v > 255 || end - p > 10)
                return 1;
            o[cnt++] = (unsigned)v;
            p = end;
            if (*p != '.')
                break;
            p++;
        }
        /* a full address, or one to three octets with an optional final dot */
        if (*p != '\0' || cnt == 0 || (cnt == 4 && p[-1] == '.'))
            return 1;
        for (unsigned i = cnt; i < 4; i++)
            o[i] = 0;
        deflen = cnt * 8;
        snprintf(addr, sizeof(addr), "%u.%u.%u.%u", o[0], o[1], o[2], o[3]);
    } else {
        snprintf(addr, sizeof(addr), "%s", s);
    }
    char full[160];
    if (mask != NULL)
        snprintf(full, sizeof(full), "%s/%s", addr, mask);
    else if (deflen != 128)
        snprintf(full, sizeof(full), "%s/%u", addr, deflen);
    else
        snprintf(full, sizeof(full), "%s", addr);
    const char *why;
    return net_range_parse_text(full, strlen(full), 0, r, &why) == 0 ? 0 : 1;
}

int sa_netset_line(struct sa_relay_conf *c, const char *key, const char *val, size_t vn,
                   char *why, size_t wn)
{
    for (int i = 0; i < SA_NET__COUNT; i++) {
        if (strncmp(key, "clear_", 6) == 0 && strcmp(key + 6, names[i]) == 0) {
            if (reset(&c->set[i], i != SA_NET_MSA) != 0)
                return -1;
            if (vn != 0) {
                snprintf(why, wn, "%s: takes no value", key);
                return 2;
            }
            return 0;
        }
        if (strcmp(key, names[i]) != 0)
            continue;
        if (vn == 0) {
            snprintf(why, wn, "%s: requires a value", key);
            return 2;
        }
        int rc = 0;
        for (size_t a = 0; a < vn;) {
            while (a < vn && isspace((unsigned char)val[a]))
                a++;
            size_t e = a;
            while (e < vn && !isspace((unsigned char)val[e]))
                e++;
            if (e == a)
                break;
            struct net_range r;
            bool ex;
            if (entry(val + a, e - a, &r, &ex) != 0) {
                if (rc == 0)
                    snprintf(why, wn, "%s: not an address or network: %.*s", key,
                             (int)(e - a > 60 ? 60 : e - a), val + a);
                rc = 2;
            } else if (add(&c->set[i], &r, ex) != 0) {
                return -1;
            }
            a = e;
        }
        c->set[i].configured = true;
        return rc;
    }
    return 1;
}

bool sa_netset_contains(const struct sa_netset *s, const char *ip)
{
    struct net_addr a;
    if (ip == NULL || !net_addr_parse(ip, strlen(ip), &a))
        return false;
    for (size_t i = 0; i < s->n; i++)
        if (net_range_match(&s->v[i].range, &a))
            return !s->v[i].exclude;
    return false;
}
