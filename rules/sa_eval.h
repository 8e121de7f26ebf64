/*
 * sa_eval - SpamAssassin's eval tests (eval:NAME(ARGS)) that smtpgate runs
 * natively: the registry of the functions by name, the call a rule holds
 * (its function and parsed arguments), and running it over a message.
 *
 * What it promises:
 *   - sa_eval_find knows every function one of the sa_eval_*.c files
 *     implements, and only those: an eval rule naming another stays
 *     skipped, reported by name.
 *   - sa_eval_call_new parses the arguments as SpamAssassin does
 *     (sa_eval_args) and has the function check them (their number, numbers
 *     where numbers are needed) when the set is loaded, so a bad rule is a
 *     reason to skip it, never an error at run time.
 *   - sa_eval_run gives 1 for a hit, 0 for a miss, -1 when out of memory;
 *     a function reads the message only (rules_msg), never changes it.
 *
 * What it assumes: the content stage (the message is there).
 */
#ifndef SMTPGATE_RULES_SA_EVAL_H
#define SMTPGATE_RULES_SA_EVAL_H

#include <stdbool.h>
#include <stddef.h>

#include "rules/rules.h"
#include "rules/rules_int.h"
#include "rules/sa_eval_args.h"
#include "rules/sa_lists.h"

struct sa_eval_call;

#define SA_EVAL_RE_MAX 16

/* A function's check of its arguments at load: false with why. */
typedef bool (*sa_eval_check_fn)(struct sa_eval_call *c, char *why, size_t wn);
/* The test itself: 1 hit, 0 miss, -1 out of memory. */
typedef int (*sa_eval_run_fn)(const struct sa_eval_call *c, struct rules_msg *m);

struct sa_eval_def {
    const char *name;
    sa_eval_run_fn run;
    sa_eval_check_fn check; /* NULL: no argument taken */
};

struct sa_eval_call {
    const struct sa_eval_def *def;
    struct sa_eval_args args;
    double num[SA_EVAL_ARGS_MAX];   /* numeric arguments, as the check read them */
    bool undef[SA_EVAL_ARGS_MAX];   /* the argument is 'undef' (no bound) */
    pcre2_code *re[SA_EVAL_RE_MAX]; /* the function's fixed patterns, compiled at load */
    size_t nre;
    struct sa_lists *lists; /* the rule set's lists (sa_lists.h), shared */
    bool rawbody; /* a rawbody rule: the text a body function reads is the decoded one */
    bool nice;    /* tflags nice: DNSEval queries trusted relays too */
};

/* The tables of the concern files, each ending with {NULL}. */
extern const struct sa_eval_def sa_eval_header_defs[];
extern const struct sa_eval_def sa_eval_date_defs[];
extern const struct sa_eval_def sa_eval_forged_defs[];
extern const struct sa_eval_def sa_eval_body_defs[];
extern const struct sa_eval_def sa_eval_relay_defs[];
extern const struct sa_eval_def sa_eval_freemail_defs[];
extern const struct sa_eval_def sa_eval_wlbl_defs[];
extern const struct sa_eval_def sa_eval_rcvdwl_defs[];
extern const struct sa_eval_def sa_eval_subject_defs[];
extern const struct sa_eval_def sa_eval_recips_defs[];
extern const struct sa_eval_def sa_eval_mime_defs[];
extern const struct sa_eval_def sa_eval_image_defs[];
extern const struct sa_eval_def sa_eval_html_defs[];
extern const struct sa_eval_def sa_eval_alt_defs[];
extern const struct sa_eval_def sa_eval_fns_defs[];
extern const struct sa_eval_def sa_eval_av_defs[];
extern const struct sa_eval_def sa_eval_uri_defs[];
extern const struct sa_eval_def sa_eval_https_defs[];
extern const struct sa_eval_def sa_eval_vbounce_defs[];
extern const struct sa_eval_def sa_eval_dnsbl_defs[];

const struct sa_eval_def *sa_eval_find(const char *name);

enum sa_eval_new_rc {
    SA_EVAL_NEW_OK = 0,
    SA_EVAL_NEW_UNKNOWN = 1, /* no such function here */
    SA_EVAL_NEW_BAD = 2,     /* its arguments are wrong: why says how */
    SA_EVAL_NEW_NOMEM = -1,
};
enum sa_eval_new_rc sa_eval_call_new(const char *name, const char *args, struct sa_eval_call **out,
                                     char *why, size_t wn);
void sa_eval_call_free(struct sa_eval_call *c);
int sa_eval_run(const struct sa_eval_call *c, struct rules_msg *m);

/* ---- for the functions' checks ---- */
/* exactly between min and max arguments */
bool sa_eval_nargs(struct sa_eval_call *c, size_t min, size_t max, char *why, size_t wn);
/* argument i as a number as Perl reads it (leading blanks, a decimal
 * prefix); false when it has none (Perl would take 0 with a warning) */
bool sa_eval_number(struct sa_eval_call *c, size_t i, bool undef_ok, char *why, size_t wn);

#endif

/* ---- for the functions: header values as SpamAssassin's get() gives them ---- */
struct sa_eval_buf {
    char *s;
    size_t n;
    size_t cap;
};
/* The values of the fields named name (case-insensitive), each ending with
 * a line end, joined in order, into b (emptied first): decoded (unfolded,
 * RFC 2047, trimmed) or raw (leading blanks dropped, folds made one
 * space).  The number of values, or -1 when out of memory. */
long sa_eval_get(struct rules_msg *m, const char *name, bool raw, struct sa_eval_buf *b);
/* The addresses of those fields (as :addr gives them) joined by line ends,
 * without one after the last.  Their number, or -1 when out of memory. */
long sa_eval_get_addrs(struct rules_msg *m, const char *name, struct sa_eval_buf *b);
int sa_eval_buf_add(struct sa_eval_buf *b, const char *s, size_t n);
/* The Received values as SpamAssassin's get('Received') gives them where
 * the receiving MTA wrote its own field: that field first (made from the
 * session's facts, sa_relays.h; none without facts), then the message's.
 * Their number, or -1 when out of memory. */
long sa_eval_get_received(struct rules_msg *m, struct sa_eval_buf *b);

/* Compiles pattern (Perl's syntax, octets, PCRE2 options flags) into the
 * call's next slot at load; false with why. */
bool sa_eval_compile(struct sa_eval_call *c, const char *pattern, uint32_t flags, char *why,
                     size_t wn);
/* Pattern k of the call (or re, when not NULL) over s[0..n): 1 matched
 * (the span of group g in *gs, *gl when gs is not NULL), 0 not, -1 out of
 * memory or a limit (a miss for the caller to count as such). */
int sa_eval_match(const struct sa_eval_call *c, size_t k, const pcre2_code *re, const char *s,
                  size_t n, unsigned g, size_t *gs, size_t *gl);
void sa_eval_buf_free(struct sa_eval_buf *b);
