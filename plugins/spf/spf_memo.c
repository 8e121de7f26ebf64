/*
 * spf_memo - the answers of one SPF check so far, as a libspf2 DNS layer
 * (see the header).  A list is enough: a check holds a few dozen answers.
 */
#include "spf_memo.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spf_dns.h"

struct memo_answer {
    char *name; /* as asked: a record's own domain may be another (a CNAME's target) */
    ns_type type;
    SPF_dns_rr_t *rr;
    struct memo_answer *next;
};

struct spf_memo {
    SPF_dns_server_t layer;
    SPF_dns_server_t *stack;
    struct memo_answer *answers;
    size_t count;
    bool expired;
    bool missed;
    char *miss_name;
    ns_type miss_type;
    bool miss_cache;
};

static SPF_dns_rr_t *memo_find(const struct spf_memo *m, const char *domain, ns_type type)
{
    for (const struct memo_answer *a = m->answers; a != NULL; a = a->next)
        if (a->type == type && strcasecmp(a->name, domain) == 0)
            return a->rr;
    return NULL;
}

static SPF_dns_rr_t *memo_lookup(SPF_dns_server_t *srv, const char *domain, ns_type type,
                                 int should_cache)
{
    struct spf_memo *m = srv->hook;
    SPF_dns_rr_t *have = memo_find(m, domain, type);
    if (have != NULL) {
        SPF_dns_rr_t *dup = NULL;
        if (SPF_dns_rr_dup(&dup, have) != SPF_E_SUCCESS) {
            if (dup != NULL)
                SPF_dns_rr_free(dup);
            return NULL;
        }
        return dup;
    }
    if (m->missed || m->expired || m->count >= SPF_MEMO_MAX)
        return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
    if (m->stack != NULL) {
        SPF_dns_rr_t *cached = spf_dns_cached(m->stack, domain, type);
        if (cached != NULL) {
            /* Kept: were the cache's entry to expire before the next
             * evaluation, that one would ask differently from this one. */
            SPF_dns_rr_t *dup = NULL;
            if (SPF_dns_rr_dup(&dup, cached) == SPF_E_SUCCESS)
                (void)spf_memo_add(m, domain, type, dup);
            else if (dup != NULL)
                SPF_dns_rr_free(dup);
            return cached;
        }
    }
    char *name = strdup(domain);
    if (name == NULL)
        return NULL;
    m->missed = true;
    m->miss_name = name;
    m->miss_type = type;
    m->miss_cache = should_cache != 0;
    return SPF_dns_rr_new_init(srv, domain, type, 0, TRY_AGAIN);
}

struct spf_memo *spf_memo_new(SPF_dns_server_t *stack)
{
    struct spf_memo *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->stack = stack;
    m->layer.lookup = memo_lookup;
    m->layer.name = "smtpgate-memo";
    m->layer.hook = m;
    return m;
}

void spf_memo_free(struct spf_memo *m)
{
    if (m == NULL)
        return;
    while (m->answers != NULL) {
        struct memo_answer *a = m->answers;
        m->answers = a->next;
        SPF_dns_rr_free(a->rr);
        free(a->name);
        free(a);
    }
    free(m->miss_name);
    free(m);
}

SPF_dns_server_t *spf_memo_layer(struct spf_memo *m)
{
    return &m->layer;
}

void spf_memo_rearm(struct spf_memo *m)
{
    m->missed = false;
    free(m->miss_name);
    m->miss_name = NULL;
}

bool spf_memo_missed(const struct spf_memo *m, const char **name, ns_type *type, bool *should_cache)
{
    if (!m->missed)
        return false;
    *name = m->miss_name;
    *type = m->miss_type;
    *should_cache = m->miss_cache;
    return true;
}

int spf_memo_add(struct spf_memo *m, const char *name, ns_type type, SPF_dns_rr_t *rr)
{
    struct memo_answer *a = m->count < SPF_MEMO_MAX ? malloc(sizeof *a) : NULL;
    char *key = a != NULL ? strdup(name) : NULL;
    if (key == NULL) {
        free(a);
        SPF_dns_rr_free(rr);
        return -1;
    }
    a->name = key;
    a->type = type;
    a->rr = rr;
    a->next = m->answers;
    m->answers = a;
    m->count++;
    return 0;
}

void spf_memo_expire(struct spf_memo *m)
{
    m->expired = true;
}

size_t spf_memo_count(const struct spf_memo *m)
{
    return m->count;
}
