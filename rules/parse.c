/*
 * rules_parse - the rule file parser: text in, rules and thresholds out.
 *
 * rules_parse(b, file, data, len) reads one file's text and appends what it
 * declares to b->r: rules exactly as written (names of meta operands not
 * resolved, patterns not compiled) and thresholds.  It is pure apart from
 * include, which reads through b->read_file and parses the included text in
 * place.  See rules/README.md for the language; in short:
 *
 *   rule NAME TARGET [!]MATCH CLAUSE...      a rule
 *   threshold tag|quarantine|reject SCORE ...
 *   include "file"                           relative to this file
 *   shadow                                   every rule of this file is shadow
 *   score NAME N                             re-scores a rule of any file (0: off)
 *
 * A statement starts at the first column; a line starting with a blank
 * continues the statement above.  "#" starts a comment where a token could
 * start; blank and comment lines are skipped anywhere.
 *
 * The lexical level (cursor, words, strings, patterns, numbers, value
 * checks) is lex.c, meta expressions meta.c; this file reads statements
 * and clauses.
 *
 * Diagnostics: every error goes to rules_build_error with file, line and
 * column (1-based, in octets) and a reason; after an error the rest of that
 * statement is skipped, so one pass reports the first error of every
 * statement.  Out of memory stops the parse (b->nomem).
 */
#include "rules/parse.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "rules/build.h"
#include "rules/lex.h"
#include "rules/meta.h"
#include "rules/ruleset.h"
#include "util/alloc.h"
#include "util/net.h"

#define INCLUDE_MAX_DEPTH 8
#define RULE_MULTIPLE_CAP 10000 /* as SpamAssassin's loader caps tflags multiple */
/* The start of every "this is SpamAssassin's" error: the file is one. */
#define SA_SYNTAX                                                                                  \
    "is SpamAssassin's syntax: load the file as SpamAssassin's (spamassassin_local), or "

static const struct {
    const char *word;
    enum rule_target target;
    enum rules_stage stage;
} targets[] = {
    {"client_addr", T_CLIENT_ADDR, RULES_STAGE_CONNECT},
    {"client_name", T_CLIENT_NAME, RULES_STAGE_CONNECT},
    {"helo", T_HELO, RULES_STAGE_HELO},
    {"mail_from", T_MAIL_FROM, RULES_STAGE_MAIL},
    {"rcpt_to", T_RCPT_TO, RULES_STAGE_RCPT},
    {"header", T_HEADER, RULES_STAGE_CONTENT},
    {"headers", T_HEADERS, RULES_STAGE_CONTENT},
    {"body", T_BODY, RULES_STAGE_CONTENT},
    {"rawbody", T_RAWBODY, RULES_STAGE_CONTENT},
    {"uri", T_URI, RULES_STAGE_CONTENT},
    {"full", T_FULL, RULES_STAGE_CONTENT},
    {"size", T_SIZE, RULES_STAGE_CONTENT},
    {"attachment_name", T_ATTACH_NAME, RULES_STAGE_CONTENT},
    {"attachment_type", T_ATTACH_TYPE, RULES_STAGE_CONTENT},
    {"meta", T_META, RULES_STAGE_CONNECT},
};

/* TARGET, with header's field name and :raw / :addr / :name. */
static bool parse_target(struct cur *c, struct rule *rule)
{
    const char *w, *at;
    size_t n;
    lex_skip_ws(c);
    at = c->p;
    if (!cur_word(c, &w, &n)) {
        cur_error_at(c, at, "expected a target after the rule name");
        return false;
    }
    const char *mode = memchr(w, ':', n);
    size_t base = mode ? (size_t)(mode - w) : n;
    size_t i;
    for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
        if (lex_word_is(w, base, targets[i].word))
            break;
    if (i == sizeof(targets) / sizeof(targets[0]) &&
        (lex_word_is(w, base, "eval") || lex_word_is(w, base, "rbleval"))) {
        cur_error_at(c, at,
                     "\"%.*s:\" %s"
                     "write a pattern rule (eval tests run from SpamAssassin's files "
                     "only)",
                     (int)base, w, SA_SYNTAX);
        return false;
    }
    if (i == sizeof(targets) / sizeof(targets[0])) {
        cur_error_at(c, at,
                     "unknown target \"%.*s\" (client_addr, client_name, helo, mail_from, "
                     "rcpt_to, header, headers, body, rawbody, uri, full, size, "
                     "attachment_name, attachment_type, meta)",
                     (int)(n > 60 ? 60 : n), w);
        return false;
    }
    rule->target = targets[i].target;
    rule->stage = targets[i].stage;
    if (mode != NULL && rule->target != T_HEADERS) {
        cur_error_at(c, mode, "only a header field (header NAME:raw) or headers takes a mode");
        return false;
    }
    if (rule->target == T_HEADERS && mode != NULL) {
        if (!lex_word_is(mode, (size_t)(w + n - mode), ":raw")) {
            cur_error_at(c, mode, "headers takes only the :raw mode");
            return false;
        }
        rule->hmode = HM_RAW;
    }
    if (rule->target != T_HEADER)
        return true;

    lex_skip_ws(c);
    at = c->p;
    if (!cur_word(c, &w, &n)) {
        cur_error_at(c, at, "expected a header field name after header");
        return false;
    }
    mode = memchr(w, ':', n);
    base = mode ? (size_t)(mode - w) : n;
    if (!lex_valid_field_name(w, base)) {
        cur_error_at(c, at, "bad header field name \"%.*s\"", (int)(n > 60 ? 60 : n), w);
        return false;
    }
    rule->hmode = HM_DECODED;
    if (mode != NULL && lex_word_is(w, base, "exists")) {
        size_t fl = (size_t)(w + n - mode) - 1;
        cur_error_at(c, at, "\"exists:%.*s\" %swrite: header %.*s exists", (int)fl, mode + 1,
                     SA_SYNTAX, (int)fl, mode + 1);
        return false;
    }
    if (mode != NULL) {
        size_t ml = (size_t)(w + n - mode);
        static const char *const sa_modes[] = {":first", ":last", ":host", ":domain", ":ip",
                                               ":revip"};
        for (size_t k = 0; k < sizeof(sa_modes) / sizeof(sa_modes[0]); k++)
            if (lex_word_is(mode, ml, sa_modes[k])) {
                cur_error_at(c, mode, "\"%s\" %suse :raw, :addr or :name", sa_modes[k],
                             SA_SYNTAX);
                return false;
            }
        if (lex_word_is(mode, ml, ":raw"))
            rule->hmode = HM_RAW;
        else if (lex_word_is(mode, ml, ":addr"))
            rule->hmode = HM_ADDR;
        else if (lex_word_is(mode, ml, ":name"))
            rule->hmode = HM_NAME;
        else {
            cur_error_at(c, mode, "unknown header mode \"%.*s\" (:raw, :addr, :name)",
                         (int)(ml > 30 ? 30 : ml), mode);
            return false;
        }
    }
    if (lex_word_is(w, base, "ALL")) {
        /* SpamAssassin's name for every header field */
        rule->target = T_HEADERS;
        if (rule->hmode == HM_ADDR || rule->hmode == HM_NAME) {
            cur_error_at(c, mode, "header ALL takes only the :raw mode");
            return false;
        }
        return true;
    }
    rule->header = util_memdup(w, base);
    return rule->header != NULL || cur_nomem(c);
}

static bool parse_cidrs(struct cur *c, struct rule *rule)
{
    const char *w, *at;
    size_t n;
    lex_skip_ws(c);
    at = c->p;
    if (!cur_word(c, &w, &n)) {
        cur_error_at(c, at, "expected a pattern or an address list");
        return false;
    }
    rule->match = M_CIDR;
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && w[j] != ',')
            j++;
        struct net_range cd;
        if (j == i || net_range_parse_text(w + i, j - i, 0, &cd, NULL) != 0) {
            cur_error_at(c, w + i, "bad address or network \"%.*s\" (192.0.2.0/24, 2001:db8::/32)",
                         (int)(j - i > 60 ? 60 : j - i), w + i);
            return false;
        }
        struct net_range *v = util_reallocarray(rule->cidrs, rule->ncidr + 1, sizeof(*v));
        if (v == NULL)
            return cur_nomem(c);
        rule->cidrs = v;
        rule->cidrs[rule->ncidr++] = cd;
        i = j + 1;
    }
    return true;
}

static bool parse_match(struct cur *c, struct rule *rule)
{
    lex_skip_ws(c);
    const char *at = c->p;
    if (lex_at_eos(c)) {
        cur_error_at(c, at, "expected a pattern after the target");
        return false;
    }
    if (rule->target == T_META) {
        rule->match = M_META;
        rule->meta_root = rules_meta_parse(c, rule);
        return rule->meta_root >= 0;
    }
    if (rule->target == T_SIZE) {
        static const struct {
            const char *s;
            enum size_op op;
        } ops[] = {{"<", SZ_LT}, {"<=", SZ_LE}, {">", SZ_GT}, {">=", SZ_GE}, {"==", SZ_EQ}};
        const char *w;
        size_t n, i;
        cur_word(c, &w, &n);
        for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
            if (lex_word_is(w, n, ops[i].s))
                break;
        if (i == sizeof(ops) / sizeof(ops[0])) {
            cur_error_at(c, at, "size needs a comparison: < <= > >= ==");
            return false;
        }
        rule->match = M_SIZE;
        rule->size_op = ops[i].op;
        lex_skip_ws(c);
        at = c->p;
        if (!cur_word(c, &w, &n) || !lex_size_parse(w, n, &rule->size_val)) {
            cur_error_at(c, at, "expected a size in octets (1000, 64k, 10M, 1G)");
            return false;
        }
        return true;
    }
    if (c->end - c->p >= 2 && (c->p[0] == '=' || c->p[0] == '!') && c->p[1] == '~') {
        cur_error_at(c, at,
                     "\"%c~\" is SpamAssassin's syntax: load the file as SpamAssassin's "
                     "(spamassassin_local), or write the pattern alone: %s/re/",
                     c->p[0], c->p[0] == '!' ? "!" : "");
        return false;
    }
    if (*c->p == '!') {
        rule->negate = true;
        c->p++;
        if (c->p < c->end && (lex_is_blank(*c->p) || lex_is_eol(*c->p))) {
            cur_error_at(c, at, "'!' must stand right before the pattern");
            return false;
        }
    }
    if (rule->target == T_HEADER && (size_t)(c->end - c->p) >= 6 &&
        memcmp(c->p, "exists", 6) == 0 &&
        (c->p + 6 == c->end || lex_is_blank(c->p[6]) || lex_is_eol(c->p[6]) || c->p[6] == '#')) {
        rule->match = M_EXISTS;
        c->p += 6;
        return true;
    }
    if (rule->target == T_CLIENT_ADDR && *c->p != '/' &&
        !(c->p + 1 < c->end && *c->p == 'm' && ispunct((unsigned char)c->p[1])))
        return parse_cidrs(c, rule);
    rule->match = M_REGEX;
    return cur_pattern(c, rule);
}

static bool set_action(struct cur *c, struct rule *rule, enum rule_action a, const char *at)
{
    if (rule->action != A_NONE) {
        cur_error_at(c, at,
                     "a rule takes one of accept, reject, tempfail, discard, quarantine "
                     "(already one at column %u)",
                     rule->action_pos.col);
        return false;
    }
    rule->action = a;
    rule->action_pos = (struct rule_pos){c->file, c->line, cur_col(c, at)};
    return true;
}

static bool parse_add_header(struct cur *c, struct rules_header **adds, size_t *nadd)
{
    lex_skip_ws(c);
    const char *at = c->p;
    char *text = cur_line_string(c, "add-header");
    if (text == NULL)
        return false;
    char *name, *value;
    const char *why = rules_header_check(text, &name, &value);
    free(text);
    if (why != NULL) {
        cur_error_at(c, at, "add-header: %s", why);
        return false;
    }
    struct rules_header *v = name ? util_reallocarray(*adds, *nadd + 1, sizeof(**adds)) : NULL;
    if (v == NULL) {
        free(name);
        free(value);
        return cur_nomem(c);
    }
    *adds = v;
    (*adds)[(*nadd)++] = (struct rules_header){name, value};
    return true;
}

static bool parse_reply(struct cur *c, char **dst, char want, const char *what)
{
    lex_skip_ws(c);
    const char *at = c->p;
    char *s = cur_line_string(c, what);
    if (s == NULL)
        return false;
    const char *why = rules_reply_check(s, want);
    if (why != NULL) {
        cur_error_at(c, at, "%s reply: %s", what, why);
        free(s);
        return false;
    }
    *dst = s;
    return true;
}

/* multiple [N]: a meta rule reads the rule as its number of matches (each
 * match of each value, as SpamAssassin's tflags multiple, at most N or
 * RULE_MULTIPLE_CAP) instead of 1.  Only the targets whose every value the
 * evaluator counts (the count is the message's, so content only). */
static bool parse_multiple(struct cur *c, struct rule *rule, const char *at)
{
    bool countable = rule->target == T_HEADERS || rule->target == T_BODY ||
                     rule->target == T_RAWBODY || rule->target == T_FULL ||
                     rule->target == T_URI ||
                     (rule->target == T_HEADER && rule->hmode == HM_DECODED);
    if (rule->match != M_REGEX || !countable || rule->negate) {
        cur_error_at(c, at,
                     "multiple counts the matches of a pattern over header NAME, headers, "
                     "body, rawbody, full or uri (not negated)");
        return false;
    }
    if (rule->maxhits > 0) {
        cur_error_at(c, at, "multiple given twice");
        return false;
    }
    rule->maxhits = RULE_MULTIPLE_CAP;
    lex_skip_ws(c);
    const char *w;
    size_t n;
    const char *save = c->p;
    double v;
    if (lex_at_eos(c) || !isdigit((unsigned char)*c->p))
        return true;
    if (!cur_word(c, &w, &n) || !lex_number_parse(w, n, &v) || v < 1 || v > RULE_MULTIPLE_CAP ||
        v != (double)(uint32_t)v) {
        cur_error_at(c, save, "multiple takes a whole number of matches, 1 to %d",
                     RULE_MULTIPLE_CAP);
        return false;
    }
    rule->maxhits = (uint32_t)v;
    return true;
}

static bool parse_clause(struct cur *c, struct rule *rule)
{
    const char *w;
    size_t n;
    lex_skip_ws(c);
    const char *at = c->p;
    if (*c->p == '"') {
        cur_error_at(c, at, "a string here needs a clause before it (describe, reject, ...)");
        return false;
    }
    if (*c->p == '[') {
        cur_error_at(c, at, "\"[if-unset: ...]\" %swrite a second rule with !exists",
                     SA_SYNTAX);
        return false;
    }
    cur_word(c, &w, &n);
    if (lex_word_is(w, n, "tflags")) {
        cur_error_at(c, at,
                     "\"tflags\" %swrite tflags multiple maxhits=N as the clause multiple N, "
                     "leave the others out",
                     SA_SYNTAX);
        return false;
    }
    if (lex_word_is(w, n, "priority") || lex_word_is(w, n, "lang")) {
        cur_error_at(c, at, "\"%.*s\" %sleave it out", (int)n, w, SA_SYNTAX);
        return false;
    }
    if (lex_word_is(w, n, "multiple"))
        return parse_multiple(c, rule, at);
    if (lex_word_is(w, n, "score")) {
        if (rule->has_score) {
            cur_error_at(c, at, "score given twice");
            return false;
        }
        rule->has_score = true;
        return cur_number(c, &rule->score, "score");
    }
    if (lex_word_is(w, n, "describe")) {
        if (rule->describe != NULL) {
            cur_error_at(c, at, "describe given twice");
            return false;
        }
        rule->describe = cur_line_string(c, "describe");
        return rule->describe != NULL;
    }
    if (lex_word_is(w, n, "shadow")) {
        rule->shadow = true;
        return true;
    }
    if (lex_word_is(w, n, "accept"))
        return set_action(c, rule, A_ACCEPT, at);
    if (lex_word_is(w, n, "discard"))
        return set_action(c, rule, A_DISCARD, at);
    if (lex_word_is(w, n, "reject")) {
        if (!set_action(c, rule, A_REJECT, at))
            return false;
        return !lex_next_is_string(c) || parse_reply(c, &rule->reply, '5', "reject");
    }
    if (lex_word_is(w, n, "tempfail")) {
        if (!set_action(c, rule, A_TEMPFAIL, at))
            return false;
        return !lex_next_is_string(c) || parse_reply(c, &rule->reply, '4', "tempfail");
    }
    if (lex_word_is(w, n, "quarantine")) {
        if (!set_action(c, rule, A_QUARANTINE, at))
            return false;
        if (!lex_next_is_string(c))
            return true;
        rule->reason = cur_line_string(c, "quarantine reason");
        return rule->reason != NULL;
    }
    if (lex_word_is(w, n, "add-header"))
        return parse_add_header(c, &rule->adds, &rule->nadd);
    if (lex_word_is(w, n, "must-hit") || lex_word_is(w, n, "must-not-hit")) {
        bool hit = lex_word_is(w, n, "must-hit");
        if (rule->match == M_META || rule->match == M_EXISTS) {
            cur_error_at(c, at, "examples need a pattern, an address list or a size to test");
            return false;
        }
        lex_skip_ws(c);
        struct rule_pos pos = {c->file, c->line, cur_col(c, c->p)};
        size_t len;
        char *text = cur_string(c, &len, hit ? "must-hit" : "must-not-hit");
        if (text == NULL)
            return false;
        struct rule_example *v = util_reallocarray(rule->examples, rule->nexamples + 1, sizeof(*v));
        if (v == NULL) {
            free(text);
            return cur_nomem(c);
        }
        rule->examples = v;
        rule->examples[rule->nexamples++] = (struct rule_example){text, len, hit, pos};
        return true;
    }
    cur_error_at(c, at,
                 "unknown clause \"%.*s\" (score, describe, shadow, accept, reject, tempfail, "
                 "discard, quarantine, add-header, multiple, must-hit, must-not-hit)",
                 (int)(n > 60 ? 60 : n), w);
    return false;
}

static void parse_rule(struct cur *c, const char *stmt)
{
    const char *w;
    size_t n;
    lex_skip_ws(c);
    const char *at = c->p;
    if (!cur_word(c, &w, &n)) {
        cur_error_at(c, at, "expected a rule name after rule");
        return;
    }
    if (!lex_valid_name(w, n)) {
        cur_error_at(c, at,
                     "bad rule name \"%.*s\": letters, digits and _, starting with a letter "
                     "or _, at most %d",
                     (int)(n > 60 ? 60 : n), w, NAME_MAX_LEN);
        return;
    }
    struct rule rule = {0};
    if ((rule.name = util_memdup(w, n)) == NULL) {
        cur_nomem(c);
        return;
    }
    rule.pos = (struct rule_pos){c->file, c->line, cur_col(c, stmt)};
    rule.hidden = n > 2 && w[0] == '_' && w[1] == '_';
    rule.meta_root = -1;
    bool ok = parse_target(c, &rule) && parse_match(c, &rule);
    while (ok && !lex_at_eos(c))
        ok = parse_clause(c, &rule);
    if (ok && rule.hidden && (rule.has_score || rule.action != A_NONE || rule.nadd > 0)) {
        cur_error_at(c, stmt, "a rule named __... only feeds meta rules: no score or action");
        ok = false;
    }
    if (!ok) {
        struct rules_build *b = c->b;
        char **v = util_reallocarray(b->failed, b->nfailed + 1, sizeof(*b->failed));
        if (v != NULL) {
            b->failed = v;
            b->failed[b->nfailed++] = rule.name;
            rule.name = NULL;
        } else {
            cur_nomem(c);
        }
        rules_rule_free(&rule);
        return;
    }
    struct rules *r = c->b->r;
    if (util_grow(&r->v, &r->cap, r->n + 1, sizeof(*r->v)) != 0) {
        rules_rule_free(&rule);
        cur_nomem(c);
        return;
    }
    r->v[r->n++] = rule;
}

static void parse_threshold(struct cur *c, const char *stmt)
{
    static const char *kinds[TH__COUNT] = {"tag", "quarantine", "reject"};
    const char *w;
    size_t n;
    lex_skip_ws(c);
    const char *at = c->p;
    cur_word(c, &w, &n);
    int k;
    for (k = 0; k < TH__COUNT; k++)
        if (lex_word_is(w, n, kinds[k]))
            break;
    if (k == TH__COUNT) {
        cur_error_at(c, at, "threshold is tag, quarantine or reject");
        return;
    }
    struct threshold th = {.set = true};
    th.pos = (struct rule_pos){c->file, c->line, cur_col(c, stmt)};
    bool ok = cur_number(c, &th.score, "threshold score");
    while (ok && !lex_at_eos(c)) {
        lex_skip_ws(c);
        at = c->p;
        if (*c->p == '"' && k == TH_REJECT && th.reply == NULL) {
            ok = parse_reply(c, &th.reply, '5', "threshold reject");
            continue;
        }
        if (*c->p == '"' && k == TH_QUARANTINE && th.reason == NULL) {
            th.reason = cur_line_string(c, "quarantine reason");
            ok = th.reason != NULL;
            continue;
        }
        cur_word(c, &w, &n);
        if (k == TH_TAG && lex_word_is(w, n, "add-header")) {
            ok = parse_add_header(c, &th.adds, &th.nadd);
        } else if (k == TH_TAG && lex_word_is(w, n, "subject-prefix") &&
                   th.subject_prefix == NULL) {
            th.subject_prefix = cur_line_string(c, "subject-prefix");
            ok = th.subject_prefix != NULL;
        } else {
            cur_error_at(c, at,
                         k == TH_TAG      ? "threshold tag takes add-header \"Name: value\" and "
                                            "subject-prefix \"text\""
                         : k == TH_REJECT ? "threshold reject takes one reply \"550 5.7.1 text\""
                                          : "threshold quarantine takes one reason \"text\"");
            ok = false;
        }
    }
    struct threshold *old = &c->b->r->th[k];
    if (ok && old->set) {
        cur_error_at(c, stmt, "threshold %s already set at %s:%u", kinds[k], old->pos.file,
                     old->pos.line);
        ok = false;
    }
    if (ok) {
        *old = th;
        return;
    }
    rules_threshold_free(&th);
}

/* score NAME N: kept for the compiler, which applies it once every file is
 * read (a local file re-scores or disables a shipped rule, whichever file
 * defines it, and a later score statement wins). */
static void parse_score(struct cur *c, const char *stmt)
{
    const char *w;
    size_t n;
    lex_skip_ws(c);
    const char *at = c->p;
    if (!cur_word(c, &w, &n) || !lex_valid_name(w, n)) {
        cur_error_at(c, at, "score takes a rule name and a number: score NAME 2.5 (0 disables it)");
        return;
    }
    if (n > 2 && w[0] == '_' && w[1] == '_') {
        cur_error_at(c, at, "a rule named __... only feeds meta rules: no score");
        return;
    }
    const char *name = w;
    size_t name_len = n;
    double score;
    if (!cur_number(c, &score, "score"))
        return;
    lex_skip_ws(c);
    if (!lex_at_eos(c)) {
        const char *more = c->p;
        double ignored;
        if (cur_word(c, &w, &n) && lex_number_parse(w, n, &ignored))
            cur_error_at(c, more,
                         "one score here: SpamAssassin's four score sets are read in its own "
                         "files (spamassassin_local)");
        else
            cur_error_at(c, more, "score takes a rule name and one number");
        return;
    }
    struct rules_build *b = c->b;
    struct score_override *v = util_reallocarray(b->scores, b->nscores + 1, sizeof(*v));
    char *copy = v ? util_memdup(name, name_len) : NULL;
    if (copy == NULL) {
        if (v != NULL)
            b->scores = v;
        cur_nomem(c);
        return;
    }
    b->scores = v;
    b->scores[b->nscores++] =
        (struct score_override){copy, score, {c->file, c->line, cur_col(c, stmt)}};
}

static char *join_path(const char *base, const char *rel)
{
    if (rel[0] == '/')
        return util_strdup(rel);
    const char *slash = strrchr(base, '/');
    size_t dl = slash ? (size_t)(slash - base) + 1 : 0;
    size_t rl = strlen(rel);
    char *p = util_malloc(dl + rl + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, base, dl);
    memcpy(p + dl, rel, rl + 1);
    return p;
}

static void parse_include(struct cur *c, const char *stmt)
{
    lex_skip_ws(c);
    const char *at = c->p;
    char *rel = cur_line_string(c, "include file name");
    if (rel == NULL)
        return;
    if (!lex_at_eos(c)) {
        cur_error_at(c, c->p, "include takes one file name");
        free(rel);
        return;
    }
    struct rules_build *b = c->b;
    if (b->read_file == NULL) {
        cur_error_at(c, stmt, "include is not available here");
        free(rel);
        return;
    }
    if (rel[0] == '\0') {
        cur_error_at(c, at, "empty include file name");
        free(rel);
        return;
    }
    if (b->depth >= INCLUDE_MAX_DEPTH) {
        cur_error_at(c, stmt, "includes nested deeper than %d", INCLUDE_MAX_DEPTH);
        free(rel);
        return;
    }
    char *path = join_path(c->file, rel);
    free(rel);
    if (path == NULL) {
        cur_nomem(c);
        return;
    }
    char *canon = realpath(path, NULL);
    const char *name = canon ? canon : path;
    int seen = rules_build_seen(b, name);
    if (seen != 0) {
        if (seen > 0)
            cur_error_at(c, at, "%s is loaded already (included twice, or an include loop)", name);
        free(canon);
        free(path);
        return;
    }
    char *data = NULL, *why = NULL;
    size_t len = 0;
    if (b->read_file(name, &data, &len, &why) != 0) {
        cur_error_at(c, at, "cannot read %s: %s", name, why ? why : "error");
        free(why);
        free(canon);
        free(path);
        return;
    }
    const char *interned = rules_build_file(b, path);
    free(canon);
    free(path);
    if (interned == NULL) {
        free(data);
        return;
    }
    b->depth++;
    rules_parse(b, interned, data, len);
    b->depth--;
    free(data);
}

/* The first words of SpamAssassin's .cf lines, for an error that says so. */
static bool sa_statement(const char *w, size_t n)
{
    static const char *const words[] = {
        "header",       "body",  "rawbody",  "full",   "uri",         "meta",
        "mimeheader",   "describe", "tflags", "priority",    "ifplugin",
        "if",           "endif", "lang",     "else",   "replace_tag", "require_version",
        "replace_rules"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (lex_word_is(w, n, words[i]))
            return true;
    return false;
}

void rules_parse(struct rules_build *b, const char *file, const char *data, size_t len)
{
    struct cur c = {
        .b = b, .file = file, .p = data, .end = data + len, .line_start = data, .line = 1};
    size_t first_rule = b->r->n;
    bool file_shadow = false;

    const char *nul = memchr(data, '\0', len);
    if (nul != NULL) {
        unsigned line = 1;
        const char *ls = data;
        for (const char *q = data; q < nul; q++)
            if (*q == '\n')
                line++, ls = q + 1;
        rules_build_error(b, file, line, (unsigned)(nul - ls) + 1, "NUL octet in rule file");
        return;
    }
    while (c.p < c.end && !b->nomem) {
        c.failed = false;
        if (lex_line_is_empty(c.p, c.end)) {
            lex_skip_to_eol(&c);
            if (c.p < c.end)
                cur_newline(&c);
            continue;
        }
        if (lex_is_blank(*c.p)) {
            while (lex_is_blank(*c.p))
                c.p++;
            cur_error_at(&c, c.p, "indented line without a statement above it");
            lex_skip_statement(&c);
            continue;
        }
        const char *stmt = c.p;
        const char *w;
        size_t n;
        cur_word(&c, &w, &n);
        if (lex_word_is(w, n, "rule"))
            parse_rule(&c, stmt);
        else if (lex_word_is(w, n, "threshold"))
            parse_threshold(&c, stmt);
        else if (lex_word_is(w, n, "include"))
            parse_include(&c, stmt);
        else if (lex_word_is(w, n, "score"))
            parse_score(&c, stmt);
        else if (lex_word_is(w, n, "shadow")) {
            if (!lex_at_eos(&c))
                cur_error_at(&c, c.p, "shadow stands alone on its line (for the whole file)");
            file_shadow = true;
        } else if (n == 0)
            cur_error_at(&c, stmt, "expected a statement (rule, threshold, include, shadow, score)");
        else if (sa_statement(w, n))
            cur_error_at(&c, stmt,
                         "\"%.*s\" is SpamAssassin's syntax: load the file as SpamAssassin's "
                         "(spamassassin_local), or write it as \"rule NAME TARGET /re/ score N\"",
                         (int)n, w);
        else
            cur_error_at(&c, stmt, "unknown statement \"%.*s\" (rule, threshold, include, shadow, score)",
                         (int)(n > 60 ? 60 : n), w);
        if (c.failed) {
            lex_skip_statement(&c);
            continue;
        }
        if (!lex_at_eos(&c)) {
            cur_error_at(&c, c.p, "unexpected text at the end of the statement");
            lex_skip_statement(&c);
            continue;
        }
        if (c.p < c.end)
            cur_newline(&c);
    }
    if (file_shadow)
        for (size_t i = first_rule; i < b->r->n; i++)
            if (b->r->v[i].pos.file == file)
                b->r->v[i].shadow = true;
}
