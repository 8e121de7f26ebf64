/*
 * spf_dns_reply - a c-ares reply made into a libspf2 record set; see the
 * header for the mapping.  Every read of the message is c-ares's or
 * libresolv's; this file only copies their results.
 */
#include "spf_dns_reply.h"

#include <ares.h>
#include <netdb.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>

/* The least TTL of the answer records of the type asked; 0 when the
 * message cannot be read (nothing is then kept for long). */
static long reply_ttl(const unsigned char *abuf, int alen, ns_type type)
{
    ns_msg msg;
    if (ns_initparse(abuf, alen, &msg) < 0)
        return 0;
    long ttl = -1;
    for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
        ns_rr r;
        if (ns_parserr(&msg, ns_s_an, i, &r) < 0)
            return 0;
        if (ns_rr_type(r) == type && (ttl < 0 || (long)ns_rr_ttl(r) < ttl))
            ttl = (long)ns_rr_ttl(r);
    }
    return ttl < 0 ? 0 : ttl;
}

/* Appends one record of len octets; its storage is returned, or NULL. */
static void *rr_push(SPF_dns_rr_t *rr, size_t len)
{
    int idx = rr->num_rr;
    if (SPF_dns_rr_buf_realloc(rr, idx, len) != SPF_E_SUCCESS)
        return NULL;
    rr->num_rr = idx + 1;
    return rr->rr[idx];
}

static int reply_addrs(SPF_dns_rr_t *rr, ns_type type, const unsigned char *abuf, int alen)
{
    /* No more addresses than records of 16 octets fit in the message. */
    int cap = alen / 16 + 1, n = cap, st;
    if (type == ns_t_a) {
        struct ares_addrttl *v = calloc((size_t)cap, sizeof *v);
        if (v == NULL)
            return ARES_ENOMEM;
        st = ares_parse_a_reply(abuf, alen, NULL, v, &n);
        for (int i = 0; st == ARES_SUCCESS && i < n; i++) {
            void *p = rr_push(rr, sizeof(struct in_addr));
            if (p == NULL)
                st = ARES_ENOMEM;
            else
                memcpy(p, &v[i].ipaddr, sizeof(struct in_addr));
        }
        free(v);
    } else {
        struct ares_addr6ttl *v = calloc((size_t)cap, sizeof *v);
        if (v == NULL)
            return ARES_ENOMEM;
        st = ares_parse_aaaa_reply(abuf, alen, NULL, v, &n);
        for (int i = 0; st == ARES_SUCCESS && i < n; i++) {
            void *p = rr_push(rr, sizeof(struct in6_addr));
            if (p == NULL)
                st = ARES_ENOMEM;
            else
                memcpy(p, &v[i].ip6addr, sizeof(struct in6_addr));
        }
        free(v);
    }
    return st;
}

static int rr_push_name(SPF_dns_rr_t *rr, const char *name)
{
    size_t len = strlen(name);
    char *p = rr_push(rr, len + 1);
    if (p == NULL)
        return ARES_ENOMEM;
    memcpy(p, name, len + 1);
    return ARES_SUCCESS;
}

static int reply_mx(SPF_dns_rr_t *rr, const unsigned char *abuf, int alen)
{
    struct ares_mx_reply *mx = NULL;
    int st = ares_parse_mx_reply(abuf, alen, &mx);
    for (struct ares_mx_reply *m = mx; st == ARES_SUCCESS && m != NULL; m = m->next)
        st = rr_push_name(rr, m->host);
    if (mx != NULL)
        ares_free_data(mx);
    return st;
}

static int reply_ptr(SPF_dns_rr_t *rr, const unsigned char *abuf, int alen)
{
    struct hostent *h = NULL;
    int st = ares_parse_ptr_reply(abuf, alen, NULL, 0, AF_INET, &h);
    /* Every PTR target is in h_aliases, in the order of the answer. */
    for (size_t i = 0; st == ARES_SUCCESS && h != NULL && h->h_aliases[i] != NULL; i++)
        st = rr_push_name(rr, h->h_aliases[i]);
    if (h != NULL)
        ares_free_hostent(h);
    return st;
}

/* One record from its strings, starting at t (record_start set). */
static int rr_push_txt(SPF_dns_rr_t *rr, const struct ares_txt_ext *t)
{
    size_t len = 0;
    for (const struct ares_txt_ext *s = t; s != NULL && (s == t || !s->record_start); s = s->next)
        len += s->length;
    char *out = rr_push(rr, len + 1);
    if (out == NULL)
        return ARES_ENOMEM;
    size_t o = 0;
    for (const struct ares_txt_ext *s = t; s != NULL && (s == t || !s->record_start); s = s->next)
        for (size_t k = 0; k < s->length; k++)
            out[o++] = s->txt[k] != 0 ? (char)s->txt[k] : 0x7f;
    out[o] = '\0';
    return ARES_SUCCESS;
}

static int reply_txt(SPF_dns_rr_t *rr, const unsigned char *abuf, int alen)
{
    struct ares_txt_ext *txt = NULL;
    int st = ares_parse_txt_reply_ext(abuf, alen, &txt);
    for (struct ares_txt_ext *t = txt; st == ARES_SUCCESS && t != NULL; t = t->next)
        if (t->record_start)
            st = rr_push_txt(rr, t);
    if (txt != NULL)
        ares_free_data(txt);
    return st;
}

SPF_dns_rr_t *spf_dns_reply_rr(SPF_dns_server_t *srv, const char *domain, ns_type type, int status,
                               const unsigned char *abuf, int alen)
{
    switch (status) {
    case ARES_SUCCESS:
        break;
    case ARES_ENODATA:
        return SPF_dns_rr_new_init(srv, domain, type, SPF_DNS_NEG_TTL, NO_DATA);
    case ARES_ENOTFOUND:
        return SPF_dns_rr_new_init(srv, domain, type, SPF_DNS_NEG_TTL, HOST_NOT_FOUND);
    case ARES_EBADNAME:
        return SPF_dns_rr_new_init(srv, domain, type, SPF_DNS_NEG_TTL, HOST_NOT_FOUND);
    case ARES_ENOMEM:
        return NULL;
    default:
        return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
    }
    if (abuf == NULL || alen < NS_HFIXEDSZ)
        return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
    SPF_dns_rr_t *rr = SPF_dns_rr_new_init(srv, domain, type, SPF_DNS_NEG_TTL, NO_DATA);
    if (rr == NULL)
        return NULL;
    int st;
    switch (type) {
    case ns_t_a:
    case ns_t_aaaa:
        st = reply_addrs(rr, type, abuf, alen);
        break;
    case ns_t_mx:
        st = reply_mx(rr, abuf, alen);
        break;
    case ns_t_ptr:
        st = reply_ptr(rr, abuf, alen);
        break;
    case ns_t_txt:
        st = reply_txt(rr, abuf, alen);
        break;
    default:
        st = ARES_ENODATA;
        break;
    }
    if (st == ARES_SUCCESS && rr->num_rr > 0) {
        long ttl = reply_ttl(abuf, alen, type);
        rr->herrno = NETDB_SUCCESS;
        rr->ttl = ttl < SPF_DNS_MAX_TTL ? ttl : SPF_DNS_MAX_TTL;
        return rr;
    }
    if (st == ARES_ENOMEM) {
        SPF_dns_rr_free(rr);
        return NULL;
    }
    /* Whatever was pushed before a failure is not an answer. */
    rr->num_rr = 0;
    if (st == ARES_SUCCESS || st == ARES_ENODATA)
        return rr; /* NO_DATA */
    rr->herrno = TRY_AGAIN;
    rr->ttl = 0;
    return rr;
}
