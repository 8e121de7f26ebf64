/*
 * rules - smtpgate's rule language: load, compile and evaluate rule files.
 *
 * A rule set is compiled once from one or more files (rules_load_files) or
 * from one buffer (rules_load_buffer, which refuses include).  Any error in
 * any file refuses the whole set: nothing is returned but the list of errors,
 * each with file, line, column and reason, so the caller keeps whatever rules
 * it already had.  A compiled set is immutable and reference counted
 * (rules_ref/rules_unref, atomic): threads share it without locks, and a
 * session holding a reference keeps its rules after a reload replaced them.
 *
 * Evaluation follows an SMTP session.  A struct rules_tx holds what hit so
 * far; rules_tx_eval(tx, stage, facts, msg) evaluates the rules of one stage
 * and returns what that stage should do:
 *
 *   RULES_STAGE_CONNECT   client_addr, client_name
 *   RULES_STAGE_HELO      helo (a second HELO replaces the first one's hits)
 *   RULES_STAGE_MAIL      mail_from (starts a transaction: later hits dropped)
 *   RULES_STAGE_RCPT      rcpt_to, one call per recipient, judged alone
 *   RULES_STAGE_CONTENT   headers, body, uri, full, size, attachments; the
 *                         score, the thresholds and the report
 *
 * A connection's tx is made with rules_tx_new; each transaction gets its own
 * rules_tx_fork of it, which carries the connection's hits over and holds its
 * own reference to the rules.  Meta rules are evaluated at the latest stage
 * of the rules they use; at RULES_STAGE_CONTENT a recipient rule counts when
 * it hit for any recipient that was not refused by these rules.
 *
 * Envelope stages act at once only with accept, reject and tempfail; discard,
 * quarantine and add-header of envelope rules are carried to the content
 * stage, where the message exists.  Precedence among the actions of one
 * stage: accept, reject, tempfail, discard, quarantine; an immediate action
 * of a content rule beats the score thresholds.  After accept (an allow-list
 * rule) later stages evaluate nothing and say accept; the content stage still
 * gives the report.  Shadow rules are evaluated and listed, never act, never
 * score, and never appear in the report.
 *
 * Symbols: the facts carry the symbols other plugins added.  Their scores
 * add to the score the thresholds compare, their names are in the report's
 * tests list, and symbol(NAME) in a meta rule is 1 when NAME is there.  A
 * meta rule that reads a symbol (itself, or through another meta) is
 * evaluated at its own stage and again at every later one until it hits,
 * since a symbol may come at any stage.
 *
 * Cost: every match runs under the set's PCRE2 match, depth and heap limits;
 * a match that exceeds one is a miss and an event in the outcome.  The
 * content stage stops matching when the per-message time budget is spent: the
 * rules not evaluated are misses, and the outcome says so.
 *
 * A rules_msg is the message as the content stage sees it: header fields as
 * received (decoded lazily, RFC 2047 and charsets, once), the raw octets, and
 * a MIME view (GMime) built on first use by a body, rawbody, uri or
 * attachment rule, once whatever the number of rules.
 *
 * Memory: strings in an outcome are valid until the next rules_tx_eval on
 * that tx or its free; names and targets as long as the rule set.
 *
 * Out of memory, the program's one policy (util/alloc.h): the library never
 * aborts.  Every allocation failure comes back as the function's error
 * value: a load returns -1 with errs->nomem set (and "out of memory" in the
 * list when that could still be stored), so the caller keeps its old rules;
 * rules_tx_new, rules_tx_fork, rules_msg_new and rules_msg_parse return
 * NULL; rules_msg_add_header -1; rules_tx_eval NULL, which the rules plugin
 * answers with a tempfail (451 4.3.0) and smtpgate-rules with an error exit.
 * An evaluation that failed leaves the tx usable: its next stage is
 * evaluated afresh, and a recipient whose evaluation failed counts as
 * refused.  PCRE2 allocates through util/alloc too; GMime (GLib) aborts on
 * its own, which is GLib's policy and out of our hands.
 */
#ifndef SMTPGATE_RULES_H
#define SMTPGATE_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rules_stage {
    RULES_STAGE_CONNECT = 0,
    RULES_STAGE_HELO,
    RULES_STAGE_MAIL,
    RULES_STAGE_RCPT,
    RULES_STAGE_CONTENT,
    RULES_STAGE__COUNT
};

enum rules_verdict {
    RULES_CONTINUE = 0,
    RULES_ACCEPT,
    RULES_REJECT,
    RULES_TEMPFAIL,
    RULES_DISCARD,
    RULES_QUARANTINE,
};

struct rules_limits {
    uint32_t match_limit;    /* PCRE2 match limit per match */
    uint32_t depth_limit;    /* PCRE2 depth limit per match */
    uint32_t heap_limit_kib; /* PCRE2 heap limit per match */
    uint64_t budget_us;      /* content stage, per message; 0: none */
    bool no_prefilter;       /* every long-text rule runs PCRE2 (for comparisons) */
};
#define RULES_DEFAULT_MATCH_LIMIT    1000000u
#define RULES_DEFAULT_DEPTH_LIMIT    10000u
#define RULES_DEFAULT_HEAP_LIMIT_KIB 20000u
#define RULES_DEFAULT_BUDGET_US      500000u

struct rules_error {
    char *file;
    unsigned line; /* 0: the error is about the file as a whole */
    unsigned col;  /* 0: the whole line */
    char *msg;
};

struct rules_errors {
    struct rules_error *v;
    size_t n;
    size_t cap;
    bool nomem; /* an allocation failed: the load failed, the list may lack errors */
};

void rules_errors_free(struct rules_errors *errs);
/* "file:line:col: msg" (line, col left out when 0); malloc'ed, NULL on ENOMEM */
char *rules_error_format(const struct rules_error *e);

struct rules;

/* 0 and *out, or -1 with errs filled (errs may be NULL).  lim may be NULL
 * for the defaults.  Includes are relative to the including file. */
int rules_load_files(const char *const *paths, size_t npaths, const struct rules_limits *lim,
                     struct rules **out, struct rules_errors *errs);
/* The same over one buffer named name; include is an error. */
int rules_load_buffer(const char *name, const char *data, size_t len,
                      const struct rules_limits *lim, struct rules **out,
                      struct rules_errors *errs);
/* Runs every rule's must-hit / must-not-hit examples; each failure is added
 * to errs at the example's position.  Returns the number of failures (out
 * of memory is one, with errs->nomem set). */
size_t rules_check_examples(const struct rules *r, struct rules_errors *errs);

/* ---- SpamAssassin's rule files, beside the native ones ---- */
struct rules_sa_opts {
    /* folders whose *.cf files are read in this order; NULL: SpamAssassin's
     * own: sa-update's /var/lib/spamassassin/<version> when it exists,
     * else /usr/share/spamassassin; then /etc/spamassassin */
    const char *const *dirs;
    size_t ndirs;
    const char *const *local; /* the admin's own .cf files, read last */
    size_t nlocal;
    bool network; /* network tests on: score set 1 (else 0; smtpgate has no Bayes) */
};

/* One reason, how often, and the first rule (or setting) it was for. */
struct rules_sa_count {
    char *what;
    size_t count;
    char *first;
};

/* What a load made of SpamAssassin's files: every rule defined there is
 * either loaded or counted under a reason in skipped. */
struct rules_sa_report {
    char **files; /* read, in order */
    size_t nfiles;
    size_t defined;                 /* rules the files define (after their if blocks) */
    size_t loaded;                  /* of those, compiled into the set */
    struct rules_sa_count *skipped; /* rules not loaded, by reason; the most first */
    size_t nskipped;
    struct rules_sa_count *ignored; /* settings smtpgate does not use, by name */
    size_t nignored;
    struct rules_sa_count *evals; /* eval functions the rules name that smtpgate lacks */
    size_t nevals;
    struct rules_sa_count *evals_done; /* those it runs natively */
    size_t nevals_done;
    struct rules_errors warnings; /* malformed lines, as spamassassin --lint sees them */
    int score_set;
    const char *version; /* the SpamAssassin version emulated */
};
void rules_sa_report_free(struct rules_sa_report *rep);

/* rules_load_files, and SpamAssassin's files beside them when sa is not
 * NULL (rep, when not NULL, is filled even when the load fails).  A rule of
 * SpamAssassin's that cannot be compiled is skipped and counted, never an
 * error; a native rule of the same name wins. */
int rules_load_sa(const char *const *paths, size_t npaths, const struct rules_sa_opts *sa,
                  const struct rules_limits *lim, struct rules **out, struct rules_errors *errs,
                  struct rules_sa_report *rep);
/* rules_load_sa for smtpgate-rules lint: when the load fails, the examples
 * of the rules that did compile are run too and their failures join errs,
 * so that one run lists every error of the files. */
int rules_load_lint(const char *const *paths, size_t npaths, const struct rules_sa_opts *sa,
                    struct rules **out, struct rules_errors *errs, struct rules_sa_report *rep);

struct rules *rules_ref(struct rules *r);
void rules_unref(struct rules *r);

size_t rules_count(const struct rules *r);
const char *rules_rule_name(const struct rules *r, size_t i);
/* "header Subject", "body", "meta", ... */
const char *rules_rule_target(const struct rules *r, size_t i);
/* The pattern as compiled (SpamAssassin's with its templates expanded), or
 * NULL for a rule without one. */
const char *rules_rule_pattern(const struct rules *r, size_t i, size_t *len);
/* What a hit scores, and the pattern's flags ("i", "ms", ... "" when none). */
double rules_rule_score(const struct rules *r, size_t i);
void rules_rule_flags(const struct rules *r, size_t i, char out[8]);
/* A native rule that can only score (no action, no add-header, not a __
 * helper, not shadow) and was given no score: it scores 0, which is
 * rarely what its author meant (SpamAssassin's default is 1.0). */
bool rules_rule_unscored(const struct rules *r, size_t i);
/* Where rule i is defined; the file lives as long as the set. */
const char *rules_rule_file(const struct rules *r, size_t i, unsigned *line, unsigned *col);
size_t rules_file_count(const struct rules *r);
/* SG-style bit mask (1u << stage) of stages that have rules to evaluate. */
unsigned rules_stages(const struct rules *r);
bool rules_need_headers(const struct rules *r); /* content rules read header fields */
bool rules_need_raw(const struct rules *r);     /* content rules read the octets */
/* The score at which the report says Yes: the tag threshold, else
 * SpamAssassin's required_score when its files set one, else the
 * quarantine or reject threshold, else 5. */
double rules_required(const struct rules *r);

/* ---- the message ---- */
struct rules_msg;

struct rules_msg *rules_msg_new(void);
/* name without the colon; value raw as received (folding kept). -1 on ENOMEM. */
int rules_msg_add_header(struct rules_msg *m, const char *name, const char *value, size_t len);
/* The whole message as received; m takes the malloc'ed bytes.  body_offset:
 * first body octet. */
void rules_msg_set_raw(struct rules_msg *m, char *bytes, size_t len, size_t body_offset);
/* The answers of SpamAssassin's relay blocklist queries (sa_dnsbl.h),
 * gathered with sa_dnsbl_gather and resolved (sa_dns_resolve.h) before
 * the content stage; kept by the caller until the message is freed.
 * Not set: none asked (network tests off), every check_rbl a miss. */
struct sa_dns_queries;
void rules_msg_set_dns(struct rules_msg *m, const struct sa_dns_queries *q);
void rules_msg_set_size(struct rules_msg *m, uint64_t size);
/* Header fields split out of bytes (RFC 5322), bytes copied as the raw
 * message, size = len.  NULL on ENOMEM. */
struct rules_msg *rules_msg_parse(const char *bytes, size_t len);
void rules_msg_free(struct rules_msg *m);
/* What rules_msg_parse found at the start: an mbox "From " line (not a
 * field, and dropped from the message, as SpamAssassin drops it), or no
 * header section at all (every field rule then sees no field, the body is
 * the whole text).  For the tool's warnings. */
bool rules_msg_mbox_from(const struct rules_msg *m);
bool rules_msg_no_headers(const struct rules_msg *m);

/* Decoded views, as the rules see them (built on first call). */
const char *rules_msg_body(struct rules_msg *m, size_t *len);
const char *rules_msg_rawbody(struct rules_msg *m, size_t *len);
size_t rules_msg_uri_count(struct rules_msg *m);
const char *rules_msg_uri(struct rules_msg *m, size_t i);
size_t rules_msg_part_count(struct rules_msg *m);
const char *rules_msg_part_type(struct rules_msg *m, size_t i); /* "text/plain" */
const char *rules_msg_part_name(struct rules_msg *m, size_t i); /* filename or NULL */
/* nth (0-based) field of that name, RFC 2047-decoded and unfolded; NULL if none. */
const char *rules_msg_header(struct rules_msg *m, const char *name, size_t nth);

/* ---- evaluation ---- */
/* A symbol another plugin added (plugin.h's add_symbol): meta rules test it
 * with symbol(NAME); its score counts in the message's score. */
struct rules_symbol {
    const char *name;
    double score;
};

struct rules_facts {
    const char *client_addr; /* numeric */
    const char *client_name; /* verified reverse name; NULL: "unknown" */
    const char *helo;
    const char *mail_from; /* "" for the null sender */
    const char *rcpt;      /* the recipient judged at RULES_STAGE_RCPT */
    /* For SpamAssassin's relay chain (smtpgate is the receiving MTA): */
    bool tls;               /* the session is under TLS */
    const char *auth_login; /* SASL login; NULL: none */
    const char *local_name; /* the receiving host's name; NULL: "localhost" */
    const char *host_name;  /* SpamAssassin's _HOSTNAME_ (no report_hostname); NULL: local_name */
    /* Symbols of the connection and transaction so far (names unique). */
    const struct rules_symbol *symbols;
    size_t nsymbols;
};

/* A further value a rule matched (rules_tx_set_all_values). */
struct rules_value {
    const char *text; /* at most RULES_HIT_TEXT_MAX octets */
    size_t len;
};
#define RULES_HIT_VALUES_MAX 100

struct rules_hit {
    const char *rule;
    const char *target; /* "header Subject", "body", "meta", ... */
    enum rules_stage stage;
    const char *text; /* the matched text (at most RULES_HIT_TEXT_MAX octets) or NULL */
    size_t text_len;
    const char *rcpt; /* the recipient, for a hit at RULES_STAGE_RCPT */
    double score;
    bool shadow;
    bool counted; /* part of the message's result (false: refused recipient) */
    /* With rules_tx_set_all_values: every further match after text, in the
     * order found (each value of the target, each match within a value), at
     * most RULES_HIT_VALUES_MAX; else none. */
    const struct rules_value *more;
    size_t nmore;
};
#define RULES_HIT_TEXT_MAX 200

struct rules_event {
    const char *rule;
    const char *what; /* "match limit", "budget", ... */
};

struct rules_header {
    const char *name;
    const char *value;
};

struct rules_outcome {
    enum rules_verdict verdict;
    const char *reply;      /* REJECT, TEMPFAIL: "550 5.7.1 text"; NULL: the host's */
    const char *reason;     /* QUARANTINE */
    const char *decided_by; /* rule name, "threshold reject", ... or NULL */
    double score;           /* counted, enforcing hits of the whole transaction, plus
                               the facts' symbols */
    double required;
    bool spam;                    /* score >= required (content stage) */
    bool tagged;                  /* the tag threshold applies */
    const struct rules_hit *hits; /* hits of this evaluation */
    size_t nhits;
    const struct rules_event *events;
    size_t nevents;
    bool budget_exceeded;
    /* content stage: fields to add (rules' add-header, tag threshold) */
    const struct rules_header *headers;
    size_t nheaders;
    const char *subject_prefix; /* tag threshold, or NULL */
    /* content stage: the report, "Yes, score=..." and "12.3" and "************" */
    const char *report_status;
    const char *report_score;
    const char *report_level;
    /* content stage: the report's fields as written, in order: X-Spam-Status,
     * X-Spam-Score and X-Spam-Level (when not empty); with SpamAssassin's
     * files (that have add_header lines), those its templates make (X-Spam-Checker-Version,
     * -Flag, -Level, -Status, ...), folds "\r\n\t" */
    const struct rules_header *report;
    size_t nreport;
};

struct rules_tx;

/* Takes a reference to r.  NULL on ENOMEM. */
struct rules_tx *rules_tx_new(struct rules *r);
/* A transaction of the connection conn: its connect and helo hits, its rules. */
struct rules_tx *rules_tx_fork(const struct rules_tx *conn);
void rules_tx_free(struct rules_tx *tx);
const struct rules *rules_tx_rules(const struct rules_tx *tx);
/* Every match of a pattern rule is kept in its hit (struct rules_hit's
 * more), not only the first: for smtpgate-rules test, which shows them;
 * matching then goes on past the first match, so it costs more. */
void rules_tx_set_all_values(struct rules_tx *tx, bool on);
/* Per-rule nanoseconds spent matching, added to prof[rules_count()] (bench). */
void rules_tx_set_profile(struct rules_tx *tx, uint64_t *prof);
/* msg is needed (non-NULL) only at RULES_STAGE_CONTENT.  NULL on ENOMEM. */
const struct rules_outcome *rules_tx_eval(struct rules_tx *tx, enum rules_stage stage,
                                          const struct rules_facts *facts, struct rules_msg *msg);
/* Every hit of the transaction so far, in order. */
size_t rules_tx_hit_count(const struct rules_tx *tx);
const struct rules_hit *rules_tx_hit(const struct rules_tx *tx, size_t i);

const char *rules_stage_name(enum rules_stage s);
const char *rules_verdict_name(enum rules_verdict v);

#endif
