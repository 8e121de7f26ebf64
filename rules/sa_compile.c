/*
 * sa_compile - SpamAssassin rules to engine rules (see sa_compile.h).
 *
 * Targets: header is T_SA_HEADER, the fields joined as SpamAssassin's
 * get() joins them (ToCc and MESSAGEID are lists of fields; ALL is the
 * engine's whole header text; EnvelopeFrom the MAIL FROM; X-Spam-Relays-*
 * and ALL-TRUSTED and its kin the relay chain's, T_SA_RELAYS); body, rawbody
 * and uri are SpamAssassin's own views of the message (T_SA_BODY, ...,
 * built by msg.c as Message.pm builds them), full the message as received,
 * mimeheader each MIME part's fields.  Patterns are compiled later with the native ones, with the
 * modifiers i m s x as PCRE2 options and no UTF mode, as Perl runs them on
 * SpamAssassin's octets.
 */
#include "rules/sa_compile.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/build.h"
#include "rules/ruleset.h"
#include "rules/sa_capture.h"
#include "rules/sa_eval.h"
#include "rules/sa_meta.h"
#include "util/alloc.h"

static void skip(struct rules_build *b, const struct sa_rule *sr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void skip(struct rules_build *b, const struct sa_rule *sr, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (sa_tally_add(b->sa_skipped, what, sr->name) != 0)
        rules_build_nomem(b);
}

static bool mods_to_flags(const char *mods, uint32_t *flags, char *bad)
{
    *flags = 0;
    for (const char *m = mods; *m; m++) {
        switch (*m) {
        case 'i':
            *flags |= PCRE2_CASELESS;
            break;
        case 'm':
            *flags |= PCRE2_MULTILINE;
            break;
        case 's':
            *flags |= PCRE2_DOTALL;
            break;
        case 'x':
            *flags |= PCRE2_EXTENDED;
            break;
        default:
            *bad = *m;
            return false;
        }
    }
    return true;
}

static bool add_field(struct rule *rule, const char *name)
{
    char **v = util_reallocarray(rule->sa_fields, rule->nsa_fields + 1, sizeof(*v));
    if (v == NULL)
        return false;
    rule->sa_fields = v;
    if ((v[rule->nsa_fields] = util_strdup(name)) == NULL)
        return false;
    rule->nsa_fields++;
    return true;
}

/* FIELD[:mod...] into the rule's target; false and *why when it cannot run here. */
static bool header_target(struct rule *rule, const struct sa_rule *sr, char *why, size_t wn,
                          bool *nomem)
{
    char name[256];
    const char *colon = strchr(sr->field, ':');
    size_t n = colon ? (size_t)(colon - sr->field) : strlen(sr->field);
    if (n == 0 || n >= sizeof(name)) {
        snprintf(why, wn, "unsupported construct: header field name");
        return false;
    }
    memcpy(name, sr->field, n);
    name[n] = '\0';
    bool raw = false, addr = false, nm = false;
    for (const char *m = colon; m != NULL && *m == ':';) {
        const char *e = strchr(m + 1, ':');
        size_t ml = e ? (size_t)(e - m - 1) : strlen(m + 1);
        if (ml == 3 && memcmp(m + 1, "raw", 3) == 0)
            raw = true;
        else if (ml == 4 && memcmp(m + 1, "addr", 4) == 0)
            addr = true;
        else if (ml == 4 && memcmp(m + 1, "name", 4) == 0)
            nm = true;
        else if (ml == 5 && memcmp(m + 1, "first", 5) == 0)
            rule->sa_first = true;
        else if (ml == 4 && memcmp(m + 1, "last", 4) == 0)
            rule->sa_last = true;
        else {
            snprintf(why, wn, "unsupported construct: header modifier :%.*s", (int)ml, m + 1);
            return false;
        }
        m = e;
    }
    rule->hmode = addr ? HM_ADDR : nm ? HM_NAME : raw ? HM_RAW : HM_DECODED;
    if ((rule->header = util_strdup(sr->field)) == NULL)
        return !(*nomem = true);
    if (strcmp(name, "ALL") == 0) {
        if (addr || nm || rule->sa_first || rule->sa_last || sr->exists) {
            snprintf(why, wn, "unsupported construct: header ALL with a modifier");
            return false;
        }
        rule->target = T_HEADERS;
        return true;
    }
    if (strcasecmp(name, "EnvelopeFrom") == 0) {
        /* one address already: :addr changes nothing, :name has none */
        if (nm) {
            snprintf(why, wn, "unsupported construct: EnvelopeFrom:name");
            return false;
        }
        rule->target = T_SA_ENVFROM;
        return true;
    }
    /* the relay chain's texts (sa_relays.h), in enum sa_relay_list's order */
    static const char *const relays[] = {"X-Spam-Relays-Trusted", "X-Spam-Relays-Untrusted",
                                         "X-Spam-Relays-Internal", "X-Spam-Relays-External"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, relays[i]) == 0) {
            if (addr || nm || rule->sa_first || rule->sa_last) {
                snprintf(why, wn, "unsupported construct: %s with a modifier", relays[i]);
                return false;
            }
            rule->target = T_SA_RELAYS;
            rule->sa_relays_list = i;
            return true;
        }
    /* the header lines those relays could have added (sa_relays_all) */
    static const char *const alls[] = {"ALL-TRUSTED", "ALL-UNTRUSTED", "ALL-INTERNAL",
                                       "ALL-EXTERNAL"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, alls[i]) == 0) {
            if (raw || addr || nm || rule->sa_first || rule->sa_last || sr->exists) {
                snprintf(why, wn, "unsupported construct: %s with a modifier", alls[i]);
                return false;
            }
            rule->target = T_SA_RELAYS;
            rule->sa_relays_list = 4 + i;
            return true;
        }
    rule->target = T_SA_HEADER;
    bool ok;
    if (strcasecmp(name, "ToCc") == 0)
        ok = add_field(rule, "To") && add_field(rule, "Cc");
    else if (strcmp(name, "MESSAGEID") == 0)
        ok = add_field(rule, "X-Message-Id") && add_field(rule, "Resent-Message-Id") &&
             add_field(rule, "X-Original-Message-ID") && add_field(rule, "Message-Id");
    else
        ok = add_field(rule, name);
    if (!ok)
        *nomem = true;
    return ok;
}

/* Where a rule type runs in one priority of Plugin::Check's check_main:
 * head tests, head evals, body, uri, body evals (mimeheader's), rawbody,
 * full. */
static int type_rank(enum sa_kind k)
{
    switch (k) {
    case SA_HEADER:
        return 0;
    case SA_BODY:
        return 2;
    case SA_URI:
        return 3;
    case SA_MIMEHEADER:
        return 4;
    case SA_RAWBODY:
        return 5;
    default:
        return 6;
    }
}

/* Conf::Parser::parse_captures on a regex rule: its templates marked (and
 * kept to be filled per message; MIMEHeader marks them too but never fills
 * them, so its rules match the literal text), and the priority -10000 of a
 * pattern with a named group, which a later priority line overrides.
 * False when out of memory. */
static bool capture_setup(struct rule *rule, const struct sa_rule *sr)
{
    rule->sa_priority = sr->priority;
    rule->sa_type_rank = type_rank(sr->kind);
    rule->sa_capture = true;
    if (sa_capture_has_group(sr->re, sr->re_len) && sr->def_seq > sr->prio_seq)
        rule->sa_priority = -10000;
    char *marked;
    size_t mlen, nt;
    struct sa_capture_tmpl *t;
    if (sa_capture_mark(rule->pattern, rule->pattern_len, &marked, &mlen, &t, &nt) != 0)
        return false;
    if (nt == 0)
        return true;
    free(rule->pattern);
    rule->pattern = marked;
    rule->pattern_len = mlen;
    if (sr->kind == SA_MIMEHEADER) {
        sa_capture_tmpl_free(t, nt);
        return true;
    }
    rule->sa_tmpl = t;
    rule->nsa_tmpl = nt;
    rule->sa_tagged = true;
    return true;
}

/* The tags SpamAssassin itself has at rule time (PerMsgStatus's common
 * tags and those its plugins set): a template naming one reads that value
 * there, which smtpgate does not make, so such a rule is skipped, named. */
static bool sa_own_tag(const char *tag)
{
    static const char *const own[] = {
        "ADDEDHEADER", "ADDEDHEADERHAM", "ADDEDHEADERSPAM", "ASN", "AUTHORDOMAIN",
        "AUTOLEARN", "AUTOLEARNSCORE", "AWL", "AWLCOUNT", "AWLMEAN", "AWLPRESCORE", "BAYES",
        "CONTACTADDRESS", "DATE", "DCCB", "DCCR", "DCCREP", "DKIMDOMAIN", "DKIMIDENTITY",
        "DKIMSELECTOR", "FIRSTTRUSTEDIP", "FIRSTTRUSTEDREVIP", "FNSFADDRADDR", "FNSFADDRDOMAIN",
        "FNSFADDROWNER", "FNSFNAMEADDR", "FNSFNAMEDOMAIN", "FNSFNAMEOWNER", "HEADER", "HITS",
        "HOSTNAME", "LANGUAGES", "LASTEXTERNALHELO", "LASTEXTERNALIP", "LASTEXTERNALRDNS",
        "LASTEXTERNALREVIP", "PREVIEW", "PYZOR", "RBL", "RELAYCOUNTRY", "RELAYCOUNTRYALL",
        "RELAYCOUNTRYAUTH", "RELAYCOUNTRYEXT", "RELAYSEXTERNAL", "RELAYSINTERNAL",
        "RELAYSTRUSTED", "RELAYSUNTRUSTED", "REMOTEHOSTADDR", "REMOTEHOSTNAME", "REPORT", "REQD",
        "RULESVERSION", "SCORE", "SENDERDOMAIN", "STARS", "SUBJPREFIX", "SUBTESTS",
        "SUBTESTSCOLLAPSED", "SUBVERSION", "TESTS", "TESTSSCORES", "TEXTCATRESULTS", "TIMING",
        "TXREP", "URIDOMAINS", "URIHOSTS", "URILIST", "VERSION", "YESNO", "YESNOCAPS"};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (strcmp(own[i], tag) == 0)
            return true;
    return false;
}

/* One SpamAssassin rule into rule; false with why when it cannot run here. */
static bool convert(const struct sa_rule *sr, int set, const char *file, struct rule *rule,
                    char *why, size_t wn, bool *nomem, bool *lacking)
{
    if (sr->score[set] == 0) {
        snprintf(why, wn, "disabled: score 0");
        return false;
    }
    if (sa_tflag(sr, "net") && !(set & 1)) {
        snprintf(why, wn, "network test, network tests off");
        return false;
    }
    if (sa_tflag(sr, "learn")) {
        snprintf(why, wn, "needs Bayes (smtpgate has none)");
        return false;
    }
    struct sa_eval_call *call = NULL;
    if (sr->eval != NULL) {
        enum sa_eval_new_rc rc = sa_eval_call_new(sr->eval, sr->eval_args, &call, why, wn);
        if (rc == SA_EVAL_NEW_NOMEM)
            return !(*nomem = true);
        if (rc == SA_EVAL_NEW_UNKNOWN)
            snprintf(why, wn, "unknown eval function %s", sr->eval);
        if (rc != SA_EVAL_NEW_OK) {
            *lacking = true;
            return false;
        }
        call->rawbody = sr->kind == SA_RAWBODY;
        call->nice = sa_tflag(sr, "nice");
        rule->sa_call = call;
    }
    if (sr->too_large) {
        snprintf(why, wn, "pattern too large after its templates");
        return false;
    }
    rule->sa = true;
    rule->sa_priority = sr->priority;
    rule->sa_area = sr->kind == SA_BODY      ? "BODY: "
                    : sr->kind == SA_RAWBODY ? "RAW: "
                    : sr->kind == SA_URI     ? "URI: "
                    : sr->kind == SA_FULL && call == NULL ? "FULL: "
                                                          : "";
    rule->meta_root = -1;
    rule->hidden = strncmp(sr->name, "__", 2) == 0;
    rule->score = rule->hidden ? 0 : sr->score[set];
    rule->has_score = !rule->hidden;
    rule->stage = RULES_STAGE_CONTENT;
    if ((rule->name = util_strdup(sr->name)) == NULL)
        return !(*nomem = true);
    rule->pos = (struct rule_pos){file, sr->line, 1};
    rule->pat_pos = rule->pos;
    if (sr->describe != NULL && (rule->describe = util_strdup(sr->describe)) == NULL)
        return !(*nomem = true);
    if (sa_tflag(sr, "multiple")) {
        unsigned mh = sa_maxhits(sr);
        rule->maxhits = mh > 0 && mh < SA_MULTIPLE_CAP ? mh : SA_MULTIPLE_CAP;
    }
    if (call != NULL) {
        /* the function's name is the target's description: "eval NAME" */
        if ((rule->header = util_strdup(sr->eval)) == NULL)
            return !(*nomem = true);
        rule->target = T_SA_EVAL;
        rule->match = M_EVAL;
        rule->maxhits = 0;
        return true;
    }
    switch (sr->kind) {
    case SA_META: {
        rule->target = T_META;
        rule->match = M_META;
        const char *mwhy = NULL;
        int root = sa_meta_parse(sr->meta, strlen(sr->meta), rule, &mwhy);
        if (root == -2)
            return !(*nomem = true);
        if (root < 0) {
            snprintf(why, wn, "unsupported construct: %s", mwhy ? mwhy : "meta expression");
            return false;
        }
        rule->meta_root = root;
        rule->maxhits = 0;
        return true;
    }
    case SA_HEADER:
        if (!header_target(rule, sr, why, wn, nomem))
            return false;
        if (sr->exists) {
            rule->match = M_EXISTS;
            rule->maxhits = 0;
            return true;
        }
        if (sr->unset != NULL && (rule->sa_unset = util_strdup(sr->unset)) == NULL)
            return !(*nomem = true);
        break;
    case SA_MIMEHEADER: {
        const char *colon = strchr(sr->field, ':');
        size_t n = colon ? (size_t)(colon - sr->field) : strlen(sr->field);
        if (colon != NULL && strcmp(colon, ":raw") != 0) {
            snprintf(why, wn, "unsupported construct: mimeheader modifier %s", colon);
            return false;
        }
        if (n == 3 && memcmp(sr->field, "ALL", 3) == 0) {
            snprintf(why, wn, "unsupported construct: mimeheader ALL");
            return false;
        }
        rule->target = T_SA_MIMEHEADER;
        rule->hmode = colon ? HM_RAW : HM_DECODED;
        if ((rule->header = util_memdup(sr->field, n)) == NULL)
            return !(*nomem = true);
        if (sr->exists) {
            rule->match = M_EXISTS;
            rule->maxhits = 0;
            return true;
        }
        break;
    }
    case SA_BODY:
        rule->target = T_SA_BODY;
        rule->sa_nosubject = sa_tflag(sr, "nosubject");
        break;
    case SA_RAWBODY:
        rule->target = T_SA_RAWBODY;
        break;
    case SA_FULL:
        rule->target = T_FULL;
        break;
    case SA_URI:
        rule->target = T_SA_URI;
        break;
    default:
        snprintf(why, wn, "unsupported construct: rule type");
        return false;
    }
    char bad = 0;
    if (!mods_to_flags(sr->mods, &rule->pflags, &bad)) {
        snprintf(why, wn, "unsupported construct: regex modifier %c", bad);
        return false;
    }
    rule->match = M_REGEX;
    rule->negate = sr->negate;
    if ((rule->pattern = util_memdup(sr->re, sr->re_len)) == NULL)
        return !(*nomem = true);
    rule->pattern_len = sr->re_len;
    if (sa_capture_escaped(sr->re, sr->re_len)) {
        snprintf(why, wn, "pattern error: unescaped left brace in \\%%{NAME} (Perl refuses it)");
        return false;
    }
    if (!capture_setup(rule, sr))
        return !(*nomem = true);
    for (size_t k = 0; k < rule->nsa_tmpl; k++)
        if (sa_own_tag(rule->sa_tmpl[k].tag)) {
            snprintf(why, wn, "template %%{%s}: a tag of SpamAssassin's own, smtpgate has none",
                     rule->sa_tmpl[k].tag);
            return false;
        }
    return true;
}

/* The tflags of a loaded rule that change nothing here are said, by word:
 * smtpgate does not do what they ask (yet).  Those it follows (multiple,
 * maxhits, net, learn, nice) and those without effect without Bayes or
 * user preferences (noautolearn, userconf, publish), are not. */
static void tally_tflags(struct rules_build *b, struct sa_conf *c, const struct sa_rule *sr)
{
    static const char *const known[] = {"multiple",    "net",      "learn",   "nice",
                                        "noautolearn", "userconf", "publish", "nosubject"};
    const char *p = sr->tflags;
    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, " \t");
        if (n == 0)
            break;
        bool ok = n > 8 && strncmp(p, "maxhits=", 8) == 0;
        for (size_t i = 0; !ok && i < sizeof(known) / sizeof(known[0]); i++)
            ok = strlen(known[i]) == n && strncmp(p, known[i], n) == 0;
        if (!ok) {
            char what[80];
            snprintf(what, sizeof(what), "tflags %.*s", (int)(n > 60 ? 60 : n), p);
            if (sa_tally_add(&c->ignored, what, sr->name) != 0)
                rules_build_nomem(b);
        }
        p += n;
    }
}

void sa_compile(struct rules_build *b, struct sa_conf *c, size_t *defined)
{
    int set = sa_score_set(&c->env);
    const char *last_src = NULL, *last_file = NULL; /* files interned once each */
    *defined = 0;
    for (size_t i = 0; i < c->nrules && !b->nomem; i++) {
        const struct sa_rule *sr = &c->rules[i];
        if (sr->kind == SA_NONE)
            continue;
        (*defined)++;
        struct rule rule = {0};
        char why[256];
        bool nomem = false, lacking = false;
        if (sr->file != last_src) {
            if ((last_file = rules_build_file(b, sr->file)) == NULL)
                return;
            last_src = sr->file;
        }
        if (sr->eval != NULL && sa_tally_add(sa_eval_find(sr->eval) ? &c->evals_done : &c->evals,
                                             sr->eval, sr->name) != 0)
            nomem = true;
        if (nomem || !convert(sr, set, last_file, &rule, why, sizeof(why), &nomem, &lacking)) {
            rules_rule_free(&rule);
            if (nomem)
                rules_build_nomem(b);
            else
                skip(b, sr, "%s", why);
            if (lacking)
                rules_build_sa_lacking(b, sr->name);
            rules_build_sa_pruned(b, sr->name);
            continue;
        }
        tally_tflags(b, c, sr);
        if (rule.sa_call != NULL)
            rule.sa_call->lists = sa_lists_ref(c->lists); /* the rule set's lists */
        struct rules *r = b->r;
        if (util_grow(&r->v, &r->cap, r->n + 1, sizeof(*r->v)) != 0) {
            rules_rule_free(&rule);
            rules_build_nomem(b);
            return;
        }
        r->v[r->n++] = rule;
    }
}
