/*
 * spf_policy - what the SPF plugin does with a result, pure.
 */
#include "spf_policy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void spf_policy_defaults(struct spf_policy *p)
{
    for (int i = 0; i < SPFC__COUNT; i++)
        p->action[i] = SPF_ACT_TAG;
    p->action[SPFC_FAIL] = SPF_ACT_REJECT;
    p->action[SPFC_TEMPERROR] = SPF_ACT_TEMPFAIL;
}

int spf_action_parse(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcasecmp(s, "tag") == 0)
        return SPF_ACT_TAG;
    if (strcasecmp(s, "reject") == 0)
        return SPF_ACT_REJECT;
    if (strcasecmp(s, "tempfail") == 0)
        return SPF_ACT_TEMPFAIL;
    return -1;
}

const char *spf_action_name(enum spf_action a)
{
    return a == SPF_ACT_REJECT ? "reject" : a == SPF_ACT_TEMPFAIL ? "tempfail" : "tag";
}

enum spf_action spf_policy_stronger(enum spf_action a, enum spf_action b)
{
    return a > b ? a : b;
}

/* Visible ASCII only, at most max octets; returns what it wrote. */
static void pol_clean(char *dst, size_t cap, const char *src, size_t max)
{
    size_t o = 0;
    if (cap == 0)
        return;
    for (size_t i = 0; src != NULL && src[i] != '\0' && o + 1 < cap && i < max; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[o++] = (c >= 0x20 && c <= 0x7e) ? (char)c : '?';
    }
    dst[o] = '\0';
}

size_t spf_policy_reply(enum spf_action a, const struct spf_check_result *res,
                        const char *client_ip, char *buf, size_t cap)
{
    char who[300], ip[64], text[1024];
    bool temp = a == SPF_ACT_TEMPFAIL;
    const char *code = temp ? "451 4.7.23" : "550 5.7.23";
    pol_clean(who, sizeof who, res->sender, 256);
    pol_clean(ip, sizeof ip, client_ip, 46);
    switch (res->result) {
    case SPFC_FAIL:
        if (res->explanation != NULL)
            pol_clean(text, sizeof text, res->explanation, 400);
        else
            snprintf(text, sizeof text, "SPF fail: %s is not allowed to send mail as %s", ip, who);
        break;
    case SPFC_PERMERROR:
        if (!temp)
            code = "550 5.7.24";
        {
            char why[200];
            pol_clean(why, sizeof why, res->problem ? res->problem : "invalid SPF record", 160);
            snprintf(text, sizeof text, "SPF permerror for %s: %s", who, why);
        }
        break;
    case SPFC_TEMPERROR:
        code = temp ? "451 4.7.24" : "550 5.7.24";
        snprintf(text, sizeof text, "SPF temperror: cannot check %s now, try again later", who);
        break;
    default:
        snprintf(text, sizeof text, "SPF %s: %s is not accepted as sender from %s",
                 spf_result_name(res->result), who, ip);
        break;
    }
    int n = snprintf(buf, cap, "%s %s", code, text);
    if (n < 0)
        n = 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

static size_t pol_trim(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

bool spf_domain_listed(char *const *list, size_t n, const char *domain)
{
    if (domain == NULL)
        return false;
    size_t dl = pol_trim(domain);
    for (size_t i = 0; i < n; i++) {
        const char *e = list[i];
        size_t el = pol_trim(e);
        if (e[0] == '.') {
            if (dl > el && strncasecmp(domain + dl - el, e, el) == 0)
                return true;
        } else if (el == dl && strncasecmp(domain, e, el) == 0) {
            return true;
        }
    }
    return false;
}

bool spf_rcpt_listed(char *const *list, size_t n, const char *rcpt)
{
    if (rcpt == NULL)
        return false;
    const char *at = strrchr(rcpt, '@');
    size_t ll = at ? (size_t)(at - rcpt) : strlen(rcpt);
    for (size_t i = 0; i < n; i++) {
        const char *e = list[i];
        if (strchr(e, '@') != NULL) {
            if (strcasecmp(e, rcpt) == 0)
                return true;
        } else if (strlen(e) == ll && strncasecmp(e, rcpt, ll) == 0) {
            return true;
        }
    }
    return false;
}
