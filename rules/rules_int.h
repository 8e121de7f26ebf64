/*
 * rules_int - the rule set's inside: the types shared by the parser
 * (lex.c, meta.c, parse.c), the compiler (compile.c), the set's life
 * (ruleset.c), matching (match.c), the message model (msg.c) and the
 * evaluator (eval.c); and the leaf modules' internals (msg.c, literal.c),
 * which call nothing else of rules/.  Not installed; nothing outside rules/
 * uses it.  Each other file's functions are in its own header (build.h,
 * ruleset.h, lex.h, meta.h, parse.h, match.h, report.h), so the calls
 * between them run one way: compile -> parse, build, ruleset, literal;
 * parse -> lex, meta, build, ruleset; meta -> lex -> build; eval -> match,
 * report, ruleset, msg, literal; match -> build; msg, report -> html.
 *
 * The parser fills a struct rules_build with rules and thresholds exactly as
 * written (names unresolved, patterns not compiled) and with errors; the
 * compiler resolves names, compiles the patterns and orders evaluation, and
 * then the struct rules never changes again.
 *
 * Out of memory: as everywhere in the program (util/alloc.h), an
 * allocation that fails is an error return, never an abort.  The message
 * model and the evaluator keep a sticky flag (rules_msg_nomem, the tx's
 * own) that turns the evaluation into its error return.
 */
#ifndef SMTPGATE_RULES_INT_H
#define SMTPGATE_RULES_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdatomic.h>

#include "rules/rules.h"
#include "util/net.h"

enum rule_target {
    T_CLIENT_ADDR,
    T_CLIENT_NAME,
    T_HELO,
    T_MAIL_FROM,
    T_RCPT_TO,
    T_HEADER,
    T_HEADERS,
    T_BODY,
    T_RAWBODY,
    T_URI,
    T_FULL,
    T_SIZE,
    T_ATTACH_NAME,
    T_ATTACH_TYPE,
    T_META,
    T_SA_HEADER,     /* SpamAssassin's header: the fields of sa_fields joined as it joins them */
    T_SA_BODY,       /* SpamAssassin's body: Subject first, rendered, per line (paragraph) */
    T_SA_RAWBODY,    /* SpamAssassin's rawbody: the decoded parts, per piece */
    T_SA_URI,        /* SpamAssassin's URI list: every form of each URI */
    T_SA_ENVFROM,    /* header EnvelopeFrom: the MAIL FROM address */
    T_SA_MIMEHEADER, /* mimeheader: the fields of each MIME part */
    T_SA_EVAL,       /* SpamAssassin's eval test: a function of sa_eval.h over the message */
    T_SA_RELAYS,     /* X-Spam-Relays-*, ALL-TRUSTED...: the relay chain's (sa_relays.h) */
};

enum rule_match { M_REGEX, M_CIDR, M_EXISTS, M_SIZE, M_META, M_EVAL };
enum header_mode { HM_DECODED, HM_RAW, HM_ADDR, HM_NAME };
/* In order of precedence, weakest first. */
enum rule_action { A_NONE, A_QUARANTINE, A_DISCARD, A_TEMPFAIL, A_REJECT, A_ACCEPT };
enum size_op { SZ_LT, SZ_LE, SZ_GT, SZ_GE, SZ_EQ };

struct rule_pos {
    const char *file; /* owned by the set's files[] */
    unsigned line;
    unsigned col;
};

enum meta_op {
    MN_REF,
    MN_SYM, /* symbol(NAME): 1 when a plugin added NAME */
    MN_NUM,
    MN_NOT,
    MN_AND,
    MN_OR,
    MN_ADD,
    MN_LT,
    MN_LE,
    MN_GT,
    MN_GE,
    MN_EQ,
    MN_NE,
    /* SpamAssassin's metas: Perl's arithmetic, and && || giving an operand's value */
    MN_SUB,
    MN_MUL,
    MN_DIV,
    MN_NEG,
    MN_PAND,
    MN_POR,
};

struct meta_node {
    enum meta_op op;
    double num; /* MN_NUM */
    char *name; /* MN_REF, MN_SYM: as written */
    size_t ref; /* MN_REF, resolved rule index */
    int a, b;   /* operands (node indices) */
    struct rule_pos pos;
};

/* A named group of a capture rule: the tag (struct rules' sa_tags) it sets. */
struct rule_capture {
    uint32_t tag;
    uint32_t group;
};

struct rule_example {
    char *text;
    size_t len;
    bool must_hit;
    struct rule_pos pos;
};

struct rule {
    char *name;
    struct rule_pos pos;
    enum rule_target target;
    enum header_mode hmode;
    char *header; /* T_HEADER */
    char *target_desc;
    enum rule_match match;
    bool negate;
    char *pattern;
    size_t pattern_len;
    uint32_t pflags;
    struct rule_pos pat_pos; /* of the pattern's first octet */
    pcre2_code *re;
    struct net_range *cidrs;
    size_t ncidr;
    enum size_op size_op;
    uint64_t size_val;
    struct meta_node *meta;
    size_t nmeta;
    int meta_root;
    /* A meta that reads plugins' symbols (itself or through another meta):
     * evaluated at its own stage and every later one until it hits, as a
     * symbol may come at any stage. */
    bool multi_stage;
    enum rules_stage stage;
    double score;
    bool has_score;
    char *describe;
    bool shadow;
    bool hidden;   /* name starts with "__": not in the report */
    bool disabled; /* a "score NAME 0" statement: never evaluated, never hits */
    enum rule_action action;
    struct rule_pos action_pos;
    char *reply;  /* reject, tempfail */
    char *reason; /* quarantine */
    struct rules_header *adds;
    size_t nadd;
    struct rule_example *examples;
    size_t nexamples;
    /* from SpamAssassin's files (the sa loader): errors there skip the rule, reported */
    bool sa;
    char **sa_fields; /* T_SA_HEADER: the fields joined, in order */
    size_t nsa_fields;
    char *sa_unset;               /* T_SA_HEADER: the value when none of them is there; NULL: "" */
    bool sa_first, sa_last;       /* :first, :last */
    bool sa_nosubject;            /* T_SA_BODY, tflags nosubject: the Subject line not matched */
    bool sa_skip;                 /* refused while compiling: taken out before the set is made */
    struct sa_eval_call *sa_call; /* T_SA_EVAL: the function and its arguments */
    int sa_relays_list;           /* T_SA_RELAYS: enum sa_relay_list, + 4 for ALL-TRUSTED... */
    const char *sa_area;          /* the report's "BODY: ", "RAW: ", ... (static) */
    uint32_t maxhits;             /* tflags multiple: hits counted up to this (meta operand) */
    /* SpamAssassin 4's capture templates (sa_capture.h).  A rule that sets
     * or reads tags runs after every other plain rule, in SpamAssassin's
     * order (priority, then its rule type's place in a priority's run). */
    bool sa_capture;                 /* its named groups set tags (resolved by compile.c) */
    bool sa_tagged;                  /* it sets or reads tags: run in that order */
    int sa_priority;                 /* SpamAssassin's priority (a capture rule's -10000) */
    int sa_type_rank;                /* head 0, body 2, uri 3, mimeheader 4, rawbody 5, full 6 */
    struct rule_capture *sa_caps;    /* the groups that set tags */
    size_t nsa_caps;
    uint32_t sa_ngroups;             /* capture groups of the pattern */
    struct sa_capture_tmpl *sa_tmpl; /* its templates; pattern is the marked one */
    size_t nsa_tmpl;
    uint32_t *sa_tmpl_tag; /* the tag each template reads */
    int pf_slot;                  /* the prefilter its text goes through, or -1 */
    uint32_t pf_first;            /* its clauses in that prefilter */
    uint32_t pf_nclause;
};

enum threshold_kind { TH_TAG, TH_QUARANTINE, TH_REJECT, TH__COUNT };

struct threshold {
    bool set;
    double score;
    struct rule_pos pos;
    char *reply;  /* reject */
    char *reason; /* quarantine */
    struct rules_header *adds;
    size_t nadd;
    char *subject_prefix;
};

/* Texts with a prefilter (literal.c): body, rawbody, full, headers,
 * headers:raw, SpamAssassin's body and rawbody, and the skeleton of
 * SpamAssassin's body (its [A-Za-z0-9] octets only), for its body rules
 * with no literal of their own. */
#define RULES_PF_SLOTS    8
#define RULES_PF_SKELETON 7
#define RULES_LITERAL_MAX 64
struct rules_prefilter;

struct rules {
    atomic_uint refs;
    struct rule *v;
    size_t n;
    size_t cap;
    char **files;
    size_t nfiles;
    size_t files_cap;
    struct threshold th[TH__COUNT];
    /* evaluation order per stage: plain rules, then metas dependencies first */
    size_t *order[RULES_STAGE__COUNT];
    size_t norder[RULES_STAGE__COUNT];
    pcre2_general_context *gctx; /* util/alloc's allocator, for PCRE2 */
    pcre2_compile_context *cctx;
    pcre2_match_context *mctx;
    struct rules_prefilter *pf[RULES_PF_SLOTS];
    size_t pf_nclause[RULES_PF_SLOTS];
    struct rules_limits lim;
    unsigned stages;
    bool need_headers;
    bool need_raw;
    bool need_sa; /* rules read SpamAssassin's views of the message */
    /* SpamAssassin's trusted/internal/msa_networks, for its relay chain
     * (sa_netset.h); NULL: its defaults */
    struct sa_relay_conf *sa_relay_conf;
    /* SpamAssassin's redirector_pattern lines (sa_redir.h); NULL: none */
    struct sa_redirs *sa_redirs;
    /* the tags SpamAssassin's capture rules set or read, by index */
    char **sa_tags;
    size_t nsa_tags;
    uint32_t sa_max_groups; /* of the capture rules: the match data they need */
    /* the template rules' patterns as messages filled them in: the one
     * part of the set that changes after loading (its own lock) */
    struct sa_capture_cache *sa_tcache;
    /* SpamAssassin's add_header templates, report and required_score
     * (sa_hdrconf.h): the report's fields are written from them; NULL: no
     * SpamAssassin file was read, the native report */
    struct sa_hdrconf *sa_hdr;
};

struct sa_tally;
struct sa_eval_call;
struct sa_capture_cache;

/* A "score NAME N" statement: re-scores (0: disables) a rule of any file,
 * applied once every file is read, in the order written (the last wins). */
struct score_override {
    char *name;
    double score;
    struct rule_pos pos;
};

/* What the parser works on: the set being built, and where errors go. */
struct rules_build {
    struct rules *r;
    struct rules_errors *errs;
    size_t nerrs; /* errors counted even when errs is NULL */
    /* Reads an included file: 0 and a malloc'ed buffer, or -1 and a reason. */
    int (*read_file)(const char *path, char **data, size_t *len, char **why);
    unsigned depth;
    char **seen; /* canonical names of the files read, against loops */
    size_t nseen;
    char **failed; /* names of rules refused by the parser: not "unknown" */
    size_t nfailed;
    struct score_override *scores; /* in the order read */
    size_t nscores;
    bool lint;                   /* a failed load still runs the examples of what compiled */
    bool nomem;                  /* an allocation failed: the load fails */
    struct sa_tally *sa_skipped; /* SpamAssassin rules refused by the compiler, by reason */
    char **sa_pruned;            /* their names, sorted: a native meta using one is told why */
    size_t nsa_pruned;
    /* SpamAssassin rules whose eval function smtpgate lacks (their plugin
     * emulated, so SpamAssassin would run them): a meta using one is skipped */
    char **sa_lacking;
    size_t nsa_lacking;
};

/* ---- message internals used by the evaluator (msg.c) ---- */
struct rules_msg_field {
    char *name;
    char *raw; /* value as received */
    size_t raw_len;
    char *decoded; /* unfolded, RFC 2047-decoded, UTF-8; built on demand */
    char **addrs;  /* :addr values, on demand */
    size_t naddrs;
    char **names; /* :name values, on demand */
    size_t nnames;
    bool addr_done;
};

size_t rules_msg_field_count(const struct rules_msg *m);
struct rules_msg_field *rules_msg_field(struct rules_msg *m, size_t i);
const char *rules_msg_field_decoded(struct rules_msg *m, size_t i);
void rules_msg_field_addrs(struct rules_msg *m, size_t i);
const char *rules_msg_all_headers(struct rules_msg *m, bool raw, size_t *len);
const char *rules_msg_full(struct rules_msg *m, size_t *len);
uint64_t rules_msg_size(const struct rules_msg *m);
/* SpamAssassin's body and rawbody: one text, and where each element its
 * rules match alone ends (offsets into it, ascending, the last its length);
 * its URIs, every form of each (sa_uri.h). */
const char *rules_msg_sa_body(struct rules_msg *m, size_t *len, const size_t **ends, size_t *nends);
const char *rules_msg_sa_rawbody(struct rules_msg *m, size_t *len, const size_t **ends,
                                 size_t *nends);
size_t rules_msg_sa_uri_count(struct rules_msg *m);
const char *rules_msg_sa_uri(struct rules_msg *m, size_t i);
/* SpamAssassin's HTML facts of each text/html part (sa_html.h), made on
 * the first call; NULL with *n 0 when there are none. */
struct sa_html_part;
const struct sa_html_part *rules_msg_sa_html(struct rules_msg *m, size_t *n);
/* The SpamAssassin views will be asked for: built in the same MIME pass as
 * the native ones (they are built on their own pass otherwise). */
void rules_msg_want_sa(struct rules_msg *m);
/* The fields of every MIME part (mimeheader): name, and the value decoded
 * or raw, with its line end; i below the count. */
size_t rules_msg_mime_field_count(struct rules_msg *m);
const char *rules_msg_mime_field(struct rules_msg *m, size_t i, bool raw, const char **value,
                                 size_t *len);
/* SpamAssassin's MIME tree of the message (sa_mime.h), parsed on the first
 * call and kept; NULL when out of memory (recorded). */
struct sa_mime;
struct sa_mime *rules_msg_sa_mime(struct rules_msg *m);
/* An allocation failed in building a view: what the rules saw is partial. */
bool rules_msg_nomem(const struct rules_msg *m);
/* SpamAssassin's EnvelopeFrom as the evaluator found it for the eval tests
 * (NULL: none); the message keeps the pointer, never a copy, so the
 * evaluator sets it before each eval run. */
void rules_msg_set_envelope_from(struct rules_msg *m, const char *addr);
const char *rules_msg_envelope_from(const struct rules_msg *m);
/* SpamAssassin's relay chain (sa_relays.h) is kept with the message: what
 * it is built from, set by the evaluator before a rule that reads it (not
 * owned), and its slot, freed with the message by relays_free. */
struct sa_relays;
struct sa_relay_conf;
struct sa_redirs;
/* The redirector patterns the SpamAssassin URI list follows (sa_uri.h):
 * set before its first view is built; NULL, the default, none. */
void rules_msg_set_sa_redirs(struct rules_msg *m, const struct sa_redirs *rd);
const struct sa_dns_queries *rules_msg_dns(const struct rules_msg *m);
void rules_msg_set_relay_ctx(struct rules_msg *m, const struct sa_relay_conf *c,
                             const struct rules_facts *f, void (*relays_free)(struct sa_relays *));
void rules_msg_relay_ctx(const struct rules_msg *m, const struct sa_relay_conf **c,
                         const struct rules_facts **f);
struct sa_relays **rules_msg_relays_slot(struct rules_msg *m);
/* The message's date shift (sa_eval_date.c's Date minus Received, seconds),
 * worked out once: a dozen rules ask for it and each would parse every
 * Received line again.  *state: 0 not yet known, 1 known, -1 its reading
 * failed (out of memory).  Adding a header forgets it. */
struct rules_msg_date_memo {
    int state;
    int64_t diff;
};
struct rules_msg_date_memo *rules_msg_date_memo(struct rules_msg *m);
/* What an eval family works out once per message for one rule set (owner:
 * the rule set's, e.g. its lists) and several rules then read, kept with the
 * message and freed with it by free_fn.  rules_msg_memo is NULL when nothing
 * is kept for that owner; rules_msg_memo_keep replaces what was kept. */
enum rules_msg_memo_kind {
    RULES_MEMO_FREEMAIL_BODY, /* sa_eval_freemail.c: the body's freemail addresses */
    RULES_MEMO_KINDS
};
void *rules_msg_memo(const struct rules_msg *m, enum rules_msg_memo_kind k, const void *owner);
void rules_msg_memo_keep(struct rules_msg *m, enum rules_msg_memo_kind k, const void *owner,
                         void *v, void (*free_fn)(void *));

/* Literals a match of the pattern must contain, lower-cased, each with its
 * clause: every clause needs one of its literals.  Their number (at most
 * max), or 0 when the pattern has none the extractor can vouch for. */
size_t rules_literals(const char *p, size_t n, uint32_t flags, char (*lits)[RULES_LITERAL_MAX],
                      size_t *lens, unsigned *clause, size_t max);
/* The same for the skeleton of a match: what is left of it with every octet
 * but [A-Za-z0-9] taken out ("v-i-a-g-r-a" leaves "viagra"). */
size_t rules_literals_skeleton(const char *p, size_t n, uint32_t flags,
                               char (*lits)[RULES_LITERAL_MAX], size_t *lens, unsigned *clause,
                               size_t max);
/* An automaton over the literals (owner: the clause of each), or NULL when
 * there are none or too many, or when out of memory (then *nomem is set). */
struct rules_prefilter *rules_prefilter_build(const char *const *lits, const size_t *lens,
                                              const uint32_t *owners, size_t nlits, bool *nomem);
/* Sets seen[owner] for every literal found in text (ASCII case folded). */
void rules_prefilter_scan(const struct rules_prefilter *pf, const char *text, size_t len,
                          unsigned char *seen);
/* The same over text's skeleton: its octets outside [A-Za-z0-9] skipped. */
void rules_prefilter_scan_skeleton(const struct rules_prefilter *pf, const char *text, size_t len,
                                   unsigned char *seen);
void rules_prefilter_free(struct rules_prefilter *pf);

#endif
