/*
 * sa_relays - SpamAssassin's relay chain (see sa_relays.h).
 *
 * The trust walk is parse_received_headers line for line: $in_trusted,
 * $in_internal and $found_msa, the inference used only when neither
 * trusted_networks nor internal_networks was configured, and one standing
 * in for the other when only one was.  smtpgate never learns SpamAssassin's
 * "originating" attribute (a caller's assertion), so it is never set.
 */
#include "rules/sa_relays.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/rules_int.h"
#include "util/alloc.h"

void sa_relays_free(struct sa_relays *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        sa_relay_clear(&r->v[i]);
    free(r->v);
    for (int k = 0; k < SA_RL__COUNT; k++) {
        free(r->list[k]);
        free(r->str[k]);
    }
    free(r->facts_line);
    free(r);
}

char *sa_relays_facts_line(const struct sa_relay_facts *f)
{
    const char *name = f->rdns != NULL && f->rdns[0] != '\0' ? f->rdns : "unknown";
    const char *helo = f->helo != NULL && f->helo[0] != '\0' ? f->helo : name;
    bool v6 = strchr(f->ip, ':') != NULL;
    char *s = NULL;
    /* Postfix's smtpd: "from HELO (NAME [ADDR]) by MYHOSTNAME (Postfix)
     * with ESMTP[S][A]", IPv6 addresses marked "IPv6:" */
    if (util_asprintf(&s, "from %s (%s [%s%s]) by %s (Postfix) with ESMTP%s%s", helo, name,
                      v6 ? "IPv6:" : "", f->ip, f->by != NULL && f->by[0] ? f->by : "localhost",
                      f->tls ? "S" : "", f->auth != NULL && f->auth[0] ? "A" : "") < 0)
        return NULL;
    return s;
}

static int push(struct sa_relays *r, int list, size_t i, size_t *caps)
{
    if (util_grow(&r->list[list], &caps[list], r->count[list] + 1, sizeof(size_t)) != 0)
        return -1;
    r->list[list][r->count[list]++] = i;
    return 0;
}

static int join(struct sa_relays *r)
{
    for (int k = 0; k < SA_RL__COUNT; k++) {
        size_t total = 1;
        char **texts = util_calloc(r->count[k] + 1, sizeof(char *));
        if (texts == NULL)
            return -1;
        int rc = 0;
        for (size_t j = 0; j < r->count[k] && rc == 0; j++) {
            if (sa_relay_string(&r->v[r->list[k][j]], &texts[j]) != 0)
                rc = -1;
            else
                total += strlen(texts[j]) + 1;
        }
        if (rc == 0 && (r->str[k] = util_malloc(total)) == NULL)
            rc = -1;
        if (rc == 0) {
            size_t at = 0;
            for (size_t j = 0; j < r->count[k]; j++) {
                if (j > 0)
                    r->str[k][at++] = ' ';
                size_t l = strlen(texts[j]);
                memcpy(r->str[k] + at, texts[j], l);
                at += l;
            }
            r->str[k][at] = '\0';
        }
        for (size_t j = 0; j < r->count[k]; j++)
            free(texts[j]);
        free(texts);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int sa_relays_build(const struct sa_relay_conf *conf, const struct sa_relay_facts *f,
                    const char *const *lines, const size_t *lens, size_t n,
                    struct sa_relays **out)
{
    struct sa_relay_conf *own = NULL;
    if (conf == NULL && (conf = own = sa_relay_conf_new()) == NULL)
        return -1;
    struct sa_relays *r = util_calloc(1, sizeof(*r));
    size_t caps[SA_RL__COUNT] = {0}, vcap = 0;
    char *qms_envfrom = NULL;
    if (r == NULL)
        goto nomem;
    if (f != NULL && f->ip != NULL && f->ip[0] != '\0' &&
        (r->facts_line = sa_relays_facts_line(f)) == NULL)
        goto nomem;

    const struct sa_netset *trusted = &conf->set[SA_NET_TRUSTED];
    const struct sa_netset *internal = &conf->set[SA_NET_INTERNAL];
    const struct sa_netset *msa = &conf->set[SA_NET_MSA];
    bool user_trust = trusted->configured, user_internal = internal->configured;
    if (user_trust && !user_internal)
        internal = trusted;
    else if (!user_trust && user_internal)
        trusted = internal;
    bool in_trusted = true, in_internal = true, found_msa = false, allow_fetch_markers = true;
    r->last_trusted = r->last_internal = -1;

    size_t total = n + (r->facts_line != NULL);
    for (size_t li = 0; li < total; li++) {
        const char *line = r->facts_line;
        size_t len = line ? strlen(line) : 0;
        if (r->facts_line == NULL || li > 0) {
            size_t k = li - (r->facts_line != NULL);
            line = lines[k];
            len = lens[k];
        }
        char *qms = qms_envfrom;
        qms_envfrom = NULL;
        struct sa_relay rl;
        struct sa_rcvd_extra x;
        enum sa_rcvd_rc rc = sa_received_parse(line, len, &rl, &x);
        if (rc == SA_RCVD_NOMEM) {
            free(qms);
            goto nomem;
        }
        if (x.pop_fetcher && allow_fetch_markers) {
            /* found_pop_fetcher_sig: the chain starts again below it */
            r->count[SA_RL_TRUSTED] = r->count[SA_RL_INTERNAL] = r->count[SA_RL_EXTERNAL] = 0;
        }
        qms_envfrom = x.qmail_scanner_envfrom;
        x.qmail_scanner_envfrom = NULL;
        if (rc == SA_RCVD_UNPARSEABLE)
            r->unparseable++;
        if (rc != SA_RCVD_PARSED) {
            free(qms);
            r->last_trusted += in_trusted;
            r->last_internal += in_internal;
            continue;
        }
        if (qms != NULL) {
            free(rl.envfrom);
            rl.envfrom = qms;
        }
        if (in_trusted && !found_msa) {
            if (!user_trust && !user_internal) {
                if (!rl.ip_private && rl.auth[0] == '\0')
                    in_trusted = in_internal = false;
            } else if (rl.auth[0] == '\0' && !sa_netset_contains(trusted, rl.ip)) {
                in_trusted = false;
                in_internal = false;
            } else {
                if (in_internal && rl.auth[0] == '\0' && !sa_netset_contains(internal, rl.ip))
                    in_internal = false;
                if (sa_netset_contains(msa, rl.ip)) {
                    found_msa = true;
                    rl.msa = true;
                }
            }
        }
        rl.internal = in_internal;
        rl.trusted = in_trusted;
        if (util_grow(&r->v, &vcap, r->n + 1, sizeof(*r->v)) != 0) {
            sa_relay_clear(&rl);
            goto nomem;
        }
        size_t i = r->n;
        r->v[r->n++] = rl;
        if (push(r, in_trusted ? SA_RL_TRUSTED : SA_RL_UNTRUSTED, i, caps) != 0 ||
            push(r, in_internal ? SA_RL_INTERNAL : SA_RL_EXTERNAL, i, caps) != 0)
            goto nomem;
        allow_fetch_markers = in_trusted;
        r->last_trusted += in_trusted;
        r->last_internal += in_internal;
    }
    free(qms_envfrom);
    qms_envfrom = NULL;
    if (join(r) != 0)
        goto nomem;
    sa_relay_conf_free(own);
    *out = r;
    return 0;
nomem:
    free(qms_envfrom);
    sa_relays_free(r);
    sa_relay_conf_free(own);
    return -1;
}

static int add_line(char **s, size_t *n, size_t *cap, const char *name, const char *v)
{
    size_t ln = strlen(name), lv = strlen(v);
    if (util_grow(s, cap, *n + ln + lv + 4, 1) != 0)
        return -1;
    memcpy(*s + *n, name, ln);
    memcpy(*s + *n + ln, ": ", 2);
    memcpy(*s + *n + ln + 2, v, lv);
    *n += ln + lv + 2;
    (*s)[(*n)++] = '\n';
    (*s)[*n] = '\0';
    return 0;
}

char *sa_relays_all(struct rules_msg *m, const struct sa_relays *r, int which, size_t *len)
{
    /* get_all_hdrs_in_rcvd_index_range: trusted/internal up to and with the
     * Received at last+1; untrusted/external from that Received on */
    bool upto = which == SA_RL_TRUSTED || which == SA_RL_INTERNAL;
    int bound = (which == SA_RL_TRUSTED || which == SA_RL_UNTRUSTED ? r->last_trusted
                                                                      : r->last_internal) +
                1;
    char *s = NULL;
    size_t n = 0, cap = 0;
    if (util_grow(&s, &cap, 1, 1) != 0)
        return NULL;
    s[0] = '\0';
    int cur = -1;
    size_t nf = rules_msg_field_count(m);
    for (size_t i = 0; i < nf + (r->facts_line != NULL); i++) {
        const char *name = "Received", *v = r->facts_line;
        if (r->facts_line == NULL || i > 0) {
            struct rules_msg_field *f = rules_msg_field(m, i - (r->facts_line != NULL));
            name = f->name;
            if ((v = rules_msg_field_decoded(m, i - (r->facts_line != NULL))) == NULL) {
                free(s);
                return NULL;
            }
        }
        if (strcasecmp(name, "Received") == 0)
            cur++;
        bool take = upto ? cur < bound || cur == bound : bound <= cur;
        if (take && add_line(&s, &n, &cap, name, v) != 0) {
            free(s);
            return NULL;
        }
        if (upto && cur == bound)
            break;
    }
    *len = n;
    return s;
}

/* SpamAssassin's originating_ip_headers, its default */
static const char *const originating[] = {"X-Yahoo-Post-IP", "X-Originating-IP",
                                          "X-Apparently-From", "X-SenderIP"};

const struct sa_relays *sa_relays_of(struct rules_msg *m)
{
    struct sa_relays **slot = rules_msg_relays_slot(m);
    if (*slot != NULL)
        return *slot;
    const struct sa_relay_conf *conf;
    const struct rules_facts *facts;
    rules_msg_relay_ctx(m, &conf, &facts);
    size_t nf = rules_msg_field_count(m), n = 0;
    const char **lines = util_calloc(nf + 5, sizeof(*lines));
    size_t *lens = util_calloc(nf + 5, sizeof(*lens));
    char *made[4] = {0};
    struct sa_relays *r = NULL;
    if (lines == NULL || lens == NULL)
        goto out;
    for (size_t i = 0; i < nf; i++) {
        struct rules_msg_field *fl = rules_msg_field(m, i);
        if (strcasecmp(fl->name, "Received") != 0)
            continue;
        const char *v = rules_msg_field_decoded(m, i);
        if (v == NULL)
            goto out;
        lines[n] = v;
        lens[n++] = strlen(v);
    }
    for (size_t k = 0; k < sizeof(originating) / sizeof(originating[0]); k++) {
        const char *v = NULL;
        /* get_header in scalar context: the last one */
        for (size_t i = nf; i-- > 0 && v == NULL;)
            if (strcasecmp(rules_msg_field(m, i)->name, originating[k]) == 0 &&
                (v = rules_msg_field_decoded(m, i)) == NULL)
                goto out;
        char *ip = NULL;
        int rc = v == NULL ? 0 : sa_received_find_ip(v, strlen(v), &ip);
        if (rc < 0)
            goto out;
        if (rc == 0)
            continue;
        rc = util_asprintf(&made[k], "from X-Originating-IP: %s", ip);
        free(ip);
        if (rc < 0)
            goto out;
        lines[n] = made[k];
        lens[n++] = strlen(made[k]);
    }
    struct sa_relay_facts rf = {0};
    if (facts != NULL) {
        rf.ip = facts->client_addr;
        rf.rdns = facts->client_name;
        rf.helo = facts->helo;
        rf.by = facts->local_name;
        rf.tls = facts->tls;
        rf.auth = facts->auth_login;
    }
    if (sa_relays_build(conf, &rf, lines, lens, n, &r) != 0)
        r = NULL;
    /* the message frees the chain, whoever asked for it first */
    rules_msg_set_relay_ctx(m, conf, facts, sa_relays_free);
    *slot = r;
out:
    for (size_t k = 0; k < 4; k++)
        free(made[k]);
    free(lines);
    free(lens);
    return r;
}
