/*
 * rules_compile - loads rule files and turns what the parser read into an
 * immutable, shareable rule set.
 *
 * rules_load_files() reads every file (and what they include), parses them,
 * and compiles: rule names must be unique across all files; every name a
 * meta rule uses must exist, meta rules must not form a loop, and an
 * enforcing meta rule must not use a shadow rule (it would let the shadow
 * rule decide); each meta rule runs at the latest stage of the rules it uses;
 * patterns are compiled with PCRE2 and JIT-compiled when the JIT is there;
 * thresholds must be in order (tag <= quarantine <= reject).  Any error in
 * any file: nothing is returned but the errors, each naming file, line and
 * column.  rules_load_buffer() does the same over one buffer, without
 * include.  rules_check_examples() runs the rules' own examples.
 *
 * The set is reference counted with an atomic counter; the last
 * rules_unref() frees it.  Nothing in it changes after loading, so threads
 * share it without locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "rules/rules_int.h"
#include "rules/rules_eval_int.h"

#define RULE_FILE_MAX (16u * 1024 * 1024)

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        abort();
    return q;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        abort();
    return d;
}

void rules_errors_free(struct rules_errors *errs)
{
    if (errs == NULL)
        return;
    for (size_t i = 0; i < errs->n; i++) {
        free(errs->v[i].file);
        free(errs->v[i].msg);
    }
    free(errs->v);
    *errs = (struct rules_errors){0};
}

char *rules_error_format(const struct rules_error *e)
{
    char *s = NULL;
    int rc;
    if (e->line == 0)
        rc = asprintf(&s, "%s: %s", e->file, e->msg);
    else if (e->col == 0)
        rc = asprintf(&s, "%s:%u: %s", e->file, e->line, e->msg);
    else
        rc = asprintf(&s, "%s:%u:%u: %s", e->file, e->line, e->col, e->msg);
    if (rc < 0)
        abort();
    return s;
}

static void errors_add(struct rules_errors *errs, const char *file, unsigned line, unsigned col,
                       const char *msg)
{
    if (errs == NULL)
        return;
    if (errs->n == errs->cap) {
        errs->cap = errs->cap ? errs->cap * 2 : 16;
        errs->v = xrealloc(errs->v, errs->cap * sizeof(*errs->v));
    }
    errs->v[errs->n++] = (struct rules_error){xstrdup(file), line, col, xstrdup(msg)};
}

void rules_build_error(struct rules_build *b, const char *file, unsigned line, unsigned col,
                       const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    b->nerrs++;
    errors_add(b->errs, file, line, col, msg);
}

const char *rules_build_file(struct rules_build *b, const char *path)
{
    struct rules *r = b->r;
    if (r->nfiles == r->files_cap) {
        r->files_cap = r->files_cap ? r->files_cap * 2 : 8;
        r->files = xrealloc(r->files, r->files_cap * sizeof(*r->files));
    }
    r->files[r->nfiles] = xstrdup(path);
    return r->files[r->nfiles++];
}

void rules_rule_free(struct rule *rule)
{
    free(rule->name);
    free(rule->header);
    free(rule->target_desc);
    free(rule->pattern);
    pcre2_code_free(rule->re);
    free(rule->cidrs);
    for (size_t i = 0; i < rule->nmeta; i++)
        free(rule->meta[i].name);
    free(rule->meta);
    free(rule->describe);
    free(rule->reply);
    free(rule->reason);
    for (size_t i = 0; i < rule->nadd; i++) {
        free((char *)rule->adds[i].name);
        free((char *)rule->adds[i].value);
    }
    free(rule->adds);
    for (size_t i = 0; i < rule->nexamples; i++)
        free(rule->examples[i].text);
    free(rule->examples);
}

static void rules_free(struct rules *r)
{
    for (size_t i = 0; i < r->n; i++)
        rules_rule_free(&r->v[i]);
    free(r->v);
    for (size_t i = 0; i < r->nfiles; i++)
        free(r->files[i]);
    free(r->files);
    for (int k = 0; k < TH__COUNT; k++) {
        struct threshold *t = &r->th[k];
        free(t->reply);
        free(t->reason);
        free(t->subject_prefix);
        for (size_t i = 0; i < t->nadd; i++) {
            free((char *)t->adds[i].name);
            free((char *)t->adds[i].value);
        }
        free(t->adds);
    }
    for (int s = 0; s < RULES_STAGE__COUNT; s++)
        free(r->order[s]);
    for (int s = 0; s < RULES_PF_SLOTS; s++)
        rules_prefilter_free(r->pf[s]);
    pcre2_match_context_free(r->mctx);
    free(r);
}

struct rules *rules_ref(struct rules *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void rules_unref(struct rules *r)
{
    if (r != NULL && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        rules_free(r);
}

size_t rules_count(const struct rules *r)
{
    return r->n;
}

const char *rules_rule_name(const struct rules *r, size_t i)
{
    return i < r->n ? r->v[i].name : NULL;
}

size_t rules_file_count(const struct rules *r)
{
    return r->nfiles;
}

unsigned rules_stages(const struct rules *r)
{
    return r->stages;
}

bool rules_need_headers(const struct rules *r)
{
    return r->need_headers;
}

bool rules_need_raw(const struct rules *r)
{
    return r->need_raw;
}

double rules_required(const struct rules *r)
{
    if (r->th[TH_TAG].set)
        return r->th[TH_TAG].score;
    if (r->th[TH_QUARANTINE].set)
        return r->th[TH_QUARANTINE].score;
    if (r->th[TH_REJECT].set)
        return r->th[TH_REJECT].score;
    return 5.0;
}

/* ---- addresses ---- */

bool rules_cidr_parse(const char *s, size_t len, struct cidr *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *slash = strchr(buf, '/');
    long bits = -1;
    if (slash != NULL) {
        *slash = '\0';
        char *end;
        if (slash[1] < '0' || slash[1] > '9')
            return false;
        bits = strtol(slash + 1, &end, 10);
        if (*end != '\0')
            return false;
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->v6 = false;
        if (bits > 32)
            return false;
        out->bits = bits < 0 ? 32 : (unsigned)bits;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->v6 = true;
        if (bits > 128)
            return false;
        out->bits = bits < 0 ? 128 : (unsigned)bits;
    } else {
        return false;
    }
    return true;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

bool rules_cidr_match(const struct cidr *c, const char *addr)
{
    uint8_t a[16];
    if (addr == NULL)
        return false;
    if (inet_pton(AF_INET, addr, a) == 1) {
        if (!c->v6)
            return prefix_equal(a, c->addr, c->bits);
        /* an IPv4 network also covers its IPv4-mapped IPv6 form, and back */
        return false;
    }
    if (inet_pton(AF_INET6, addr, a) != 1)
        return false;
    if (c->v6)
        return prefix_equal(a, c->addr, c->bits);
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, mapped, 12) == 0 && prefix_equal(a + 12, c->addr, c->bits);
}

/* ---- compiling ---- */

static const char *target_word(enum rule_target t)
{
    switch (t) {
    case T_CLIENT_ADDR:
        return "client_addr";
    case T_CLIENT_NAME:
        return "client_name";
    case T_HELO:
        return "helo";
    case T_MAIL_FROM:
        return "mail_from";
    case T_RCPT_TO:
        return "rcpt_to";
    case T_HEADER:
        return "header";
    case T_HEADERS:
        return "headers";
    case T_BODY:
        return "body";
    case T_RAWBODY:
        return "rawbody";
    case T_URI:
        return "uri";
    case T_FULL:
        return "full";
    case T_SIZE:
        return "size";
    case T_ATTACH_NAME:
        return "attachment_name";
    case T_ATTACH_TYPE:
        return "attachment_type";
    case T_META:
        return "meta";
    }
    return "?";
}

static void describe_target(struct rule *rule)
{
    static const char *modes[] = {"", ":raw", ":addr", ":name"};
    int rc;
    if (rule->target == T_HEADER)
        rc = asprintf(&rule->target_desc, "header %s%s", rule->header, modes[rule->hmode]);
    else
        rc = asprintf(&rule->target_desc, "%s%s", target_word(rule->target),
                      rule->target == T_HEADERS ? modes[rule->hmode] : "");
    if (rc < 0)
        abort();
}

static void compile_pattern(struct rules_build *b, struct rule *rule)
{
    int errcode;
    PCRE2_SIZE off;
    uint32_t opts = rule->pflags;
    if (opts & PCRE2_UTF)
        opts |= PCRE2_MATCH_INVALID_UTF;
    rule->re =
        pcre2_compile((PCRE2_SPTR)rule->pattern, rule->pattern_len, opts, &errcode, &off, NULL);
    if (rule->re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        rules_build_error(b, rule->pat_pos.file, rule->pat_pos.line,
                          rule->pat_pos.col + (unsigned)off, "bad pattern: %s", (char *)msg);
        return;
    }
    /* Without a JIT (some architectures) the interpreter runs, slower, with
     * the same limits. */
    (void)pcre2_jit_compile(rule->re, PCRE2_JIT_COMPLETE);
}

static int pf_slot_of(const struct rule *rule)
{
    switch (rule->target) {
    case T_BODY:
        return 0;
    case T_RAWBODY:
        return 1;
    case T_FULL:
        return 2;
    case T_HEADERS:
        return rule->hmode == HM_RAW ? 4 : 3;
    default:
        return -1;
    }
}

/* One automaton per long text, over the literals of the rules reading it.
 * Below PF_MIN_RULES rules PCRE2's own start-of-match search (memchr for a
 * first character) is faster than a pass of the automaton. */
#define PF_MIN_RULES 8

static void build_prefilters(struct rules *r)
{
    enum { ALTS = 16 };
    for (int slot = 0; slot < RULES_PF_SLOTS; slot++) {
        size_t n = 0, cap = 0, nclause = 0;
        char **lits = NULL;
        size_t *lens = NULL;
        uint32_t *owners = NULL;
        char found[ALTS][RULES_LITERAL_MAX];
        size_t flen[ALTS];
        unsigned fclause[ALTS];
        for (size_t i = 0; i < r->n; i++) {
            struct rule *rule = &r->v[i];
            if (rule->match != M_REGEX || rule->re == NULL || pf_slot_of(rule) != slot)
                continue;
            size_t k = rules_literals(rule->pattern, rule->pattern_len, rule->pflags, found, flen,
                                      fclause, ALTS);
            if (k == 0)
                continue;
            if (n + k > cap) {
                cap = (n + k) * 2;
                lits = xrealloc(lits, cap * sizeof(*lits));
                lens = xrealloc(lens, cap * sizeof(*lens));
                owners = xrealloc(owners, cap * sizeof(*owners));
            }
            unsigned clauses = 0;
            for (size_t a = 0; a < k; a++, n++) {
                lits[n] = xrealloc(NULL, flen[a]);
                memcpy(lits[n], found[a], flen[a]);
                lens[n] = flen[a];
                owners[n] = (uint32_t)(nclause + fclause[a]);
                if (fclause[a] + 1 > clauses)
                    clauses = fclause[a] + 1;
            }
            rule->pf_slot = slot;
            rule->pf_first = (uint32_t)nclause;
            rule->pf_nclause = clauses;
            nclause += clauses;
        }
        size_t nrules = 0;
        for (size_t i = 0; i < r->n; i++)
            nrules += r->v[i].pf_slot == slot;
        if (nrules >= PF_MIN_RULES)
            r->pf[slot] = rules_prefilter_build((const char *const *)lits, lens, owners, n);
        r->pf_nclause[slot] = r->pf[slot] != NULL ? nclause : 0;
        if (r->pf[slot] == NULL)
            for (size_t i = 0; i < r->n; i++)
                if (r->v[i].pf_slot == slot)
                    r->v[i].pf_slot = -1;
        for (size_t i = 0; i < n; i++)
            free(lits[i]);
        free(lits);
        free(lens);
        free(owners);
    }
}

static int cmp_names(const void *a, const void *b, void *arg)
{
    const struct rules *r = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(r->v[x].name, r->v[y].name);
    if (c != 0)
        return c;
    return x < y ? -1 : x > y;
}

struct resolve {
    struct rules_build *b;
    struct rules *r;
    size_t *sorted;
    unsigned char *color; /* 0 white, 1 on the path, 2 done */
    size_t **order;       /* per stage, metas in dependency order */
    size_t *norder;
};

static long find_rule(const struct resolve *rs, const char *name)
{
    size_t lo = 0, hi = rs->r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(rs->r->v[rs->sorted[mid]].name, name);
        if (c == 0)
            return (long)rs->sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Depth-first over meta references: resolves names, finds loops, sets each
 * meta's stage, and appends metas after the rules they use. */
static bool resolve_meta(struct resolve *rs, size_t i, unsigned depth)
{
    struct rule *rule = &rs->r->v[i];
    if (rule->match != M_META || rs->color[i] == 2)
        return true;
    if (rs->color[i] == 1)
        return false;
    if (depth > 10000)
        return false;
    rs->color[i] = 1;
    bool ok = true, any = false;
    enum rules_stage stage = RULES_STAGE_CONNECT;
    for (size_t k = 0; k < rule->nmeta; k++) {
        struct meta_node *nd = &rule->meta[k];
        if (nd->op != MN_REF)
            continue;
        any = true;
        long j = find_rule(rs, nd->name);
        bool known_bad = false;
        for (size_t f = 0; j < 0 && f < rs->b->nfailed; f++)
            known_bad = known_bad || strcmp(rs->b->failed[f], nd->name) == 0;
        if (j < 0 && known_bad) {
            ok = false;
            continue;
        }
        if (j < 0) {
            rules_build_error(rs->b, nd->pos.file, nd->pos.line, nd->pos.col,
                              "meta %s uses unknown rule %s", rule->name, nd->name);
            ok = false;
            continue;
        }
        nd->ref = (size_t)j;
        struct rule *dep = &rs->r->v[j];
        if (dep->match == M_META && !resolve_meta(rs, (size_t)j, depth + 1)) {
            if (rs->color[j] == 1)
                rules_build_error(rs->b, nd->pos.file, nd->pos.line, nd->pos.col,
                                  "meta rules form a loop: %s uses %s", rule->name, dep->name);
            ok = false;
            continue;
        }
        if (dep->shadow && !rule->shadow) {
            rules_build_error(rs->b, nd->pos.file, nd->pos.line, nd->pos.col,
                              "meta %s enforces but uses shadow rule %s: make %s shadow too",
                              rule->name, dep->name, rule->name);
            ok = false;
        }
        if (dep->stage > stage)
            stage = dep->stage;
    }
    if (!any) {
        rules_build_error(rs->b, rule->pos.file, rule->pos.line, rule->pos.col,
                          "meta %s uses no rule", rule->name);
        ok = false;
    }
    rule->stage = stage;
    rs->color[i] = 2;
    if (ok)
        rs->order[stage][rs->norder[stage]++] = i;
    return ok;
}

static void compile(struct rules_build *b, const struct rules_limits *lim)
{
    struct rules *r = b->r;
    r->lim = lim ? *lim
                 : (struct rules_limits){.match_limit = RULES_DEFAULT_MATCH_LIMIT,
                                         .depth_limit = RULES_DEFAULT_DEPTH_LIMIT,
                                         .heap_limit_kib = RULES_DEFAULT_HEAP_LIMIT_KIB,
                                         .budget_us = RULES_DEFAULT_BUDGET_US};
    r->mctx = pcre2_match_context_create(NULL);
    if (r->mctx == NULL)
        abort();
    pcre2_set_match_limit(r->mctx, r->lim.match_limit);
    pcre2_set_depth_limit(r->mctx, r->lim.depth_limit);
    pcre2_set_heap_limit(r->mctx, r->lim.heap_limit_kib);

    struct resolve rs = {.b = b, .r = r};
    rs.sorted = xrealloc(NULL, r->n * sizeof(size_t));
    for (size_t i = 0; i < r->n; i++)
        rs.sorted[i] = i;
    qsort_r(rs.sorted, r->n, sizeof(size_t), cmp_names, r);
    for (size_t i = 1; i < r->n; i++) {
        const struct rule *a = &r->v[rs.sorted[i - 1]], *c = &r->v[rs.sorted[i]];
        if (strcmp(a->name, c->name) == 0)
            rules_build_error(b, c->pos.file, c->pos.line, c->pos.col,
                              "rule %s already defined at %s:%u", c->name, a->pos.file,
                              a->pos.line);
    }

    for (size_t i = 0; i < r->n; i++) {
        struct rule *rule = &r->v[i];
        describe_target(rule);
        rule->pf_slot = -1;
        if (rule->match == M_REGEX)
            compile_pattern(b, rule);
    }
    if (b->nerrs == 0 && !r->lim.no_prefilter)
        build_prefilters(r);

    size_t *meta_order[RULES_STAGE__COUNT];
    size_t nmeta[RULES_STAGE__COUNT] = {0};
    for (int s = 0; s < RULES_STAGE__COUNT; s++)
        meta_order[s] = xrealloc(NULL, r->n * sizeof(size_t));
    rs.order = meta_order;
    rs.norder = nmeta;
    rs.color = calloc(r->n ? r->n : 1, 1);
    if (rs.color == NULL)
        abort();
    for (size_t i = 0; i < r->n; i++)
        resolve_meta(&rs, i, 0);
    free(rs.color);
    free(rs.sorted);

    for (int s = 0; s < RULES_STAGE__COUNT; s++) {
        r->order[s] = xrealloc(NULL, (r->n + 1) * sizeof(size_t));
        r->norder[s] = 0;
        for (size_t i = 0; i < r->n; i++)
            if (r->v[i].match != M_META && r->v[i].stage == (enum rules_stage)s)
                r->order[s][r->norder[s]++] = i;
        for (size_t k = 0; k < nmeta[s]; k++)
            r->order[s][r->norder[s]++] = meta_order[s][k];
        free(meta_order[s]);
        if (r->norder[s] > 0)
            r->stages |= 1u << s;
    }
    for (size_t i = 0; i < r->n; i++) {
        const struct rule *rule = &r->v[i];
        if (rule->stage != RULES_STAGE_CONTENT || rule->match == M_META)
            continue;
        if (rule->target == T_HEADER || rule->target == T_HEADERS)
            r->need_headers = true;
        else if (rule->target != T_SIZE)
            r->need_raw = true;
    }
    /* thresholds beyond the content stage's rules still need it for the report */
    r->stages |= 1u << RULES_STAGE_CONTENT;

    static const char *names[TH__COUNT] = {"tag", "quarantine", "reject"};
    for (int k = 0; k < TH__COUNT; k++) {
        for (int m = k + 1; m < TH__COUNT; m++) {
            const struct threshold *lo = &r->th[k], *hi = &r->th[m];
            if (lo->set && hi->set && lo->score > hi->score)
                rules_build_error(b, lo->pos.file, lo->pos.line, lo->pos.col,
                                  "threshold %s (%g) is above threshold %s (%g) at %s:%u", names[k],
                                  lo->score, names[m], hi->score, hi->pos.file, hi->pos.line);
        }
    }
}

static int read_whole(const char *path, char **data, size_t *len, char **why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    *data = NULL;
    if (fd < 0 || fstat(fd, &st) != 0) {
        *why = xstrdup(strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > RULE_FILE_MAX) {
        *why = xstrdup(S_ISREG(st.st_mode) ? "larger than 16 MiB" : "not a regular file");
        close(fd);
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = xrealloc(NULL, cap);
    for (;;) {
        if (n == cap) {
            if (cap > RULE_FILE_MAX) {
                free(buf);
                close(fd);
                *why = xstrdup("larger than 16 MiB");
                return -1;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            *why = xstrdup(strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    *data = buf;
    *len = n;
    return 0;
}

static struct rules *rules_alloc(void)
{
    struct rules *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    atomic_init(&r->refs, 1);
    return r;
}

struct error_key {
    size_t file; /* order in which the files were read */
    size_t seq;  /* order of report, to keep the sort stable */
    struct rules_error e;
};

static int cmp_errors(const void *a, const void *b)
{
    const struct error_key *x = a, *y = b;
    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    if (x->e.line != y->e.line)
        return x->e.line < y->e.line ? -1 : 1;
    if (x->e.col != y->e.col)
        return x->e.col < y->e.col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The errors of this load (from index from on) by file, line and column, so
 * the admin reads them top to bottom whichever check found them. */
static void sort_errors(const struct rules *r, struct rules_errors *errs, size_t from)
{
    if (errs == NULL || errs->n - from < 2)
        return;
    size_t n = errs->n - from;
    struct error_key *k = xrealloc(NULL, n * sizeof(*k));
    for (size_t i = 0; i < n; i++) {
        k[i].e = errs->v[from + i];
        k[i].seq = i;
        k[i].file = r->nfiles;
        for (size_t f = 0; f < r->nfiles; f++)
            if (strcmp(r->files[f], k[i].e.file) == 0) {
                k[i].file = f;
                break;
            }
    }
    qsort(k, n, sizeof(*k), cmp_errors);
    for (size_t i = 0; i < n; i++)
        errs->v[from + i] = k[i].e;
    free(k);
}

bool rules_build_seen(struct rules_build *b, const char *canon)
{
    for (size_t i = 0; i < b->nseen; i++)
        if (strcmp(b->seen[i], canon) == 0)
            return false;
    b->seen = xrealloc(b->seen, (b->nseen + 1) * sizeof(*b->seen));
    b->seen[b->nseen++] = xstrdup(canon);
    return true;
}

static int finish(struct rules_build *b, const struct rules_limits *lim, struct rules **out,
                  size_t first_error)
{
    /* Compiled even after syntax errors, so one run reports those of the
     * rules that did parse too (duplicate names, bad patterns, meta). */
    compile(b, lim);
    for (size_t i = 0; i < b->nseen; i++)
        free(b->seen[i]);
    free(b->seen);
    for (size_t i = 0; i < b->nfailed; i++)
        free(b->failed[i]);
    free(b->failed);
    if (b->nerrs != 0) {
        sort_errors(b->r, b->errs, first_error);
        rules_free(b->r);
        *out = NULL;
        return -1;
    }
    *out = b->r;
    return 0;
}

int rules_load_files(const char *const *paths, size_t npaths, const struct rules_limits *lim,
                     struct rules **out, struct rules_errors *errs)
{
    struct rules_build b = {.r = rules_alloc(), .errs = errs, .read_file = read_whole};
    size_t first_error = errs ? errs->n : 0;
    for (size_t i = 0; i < npaths; i++) {
        char *canon = realpath(paths[i], NULL);
        const char *name = canon ? canon : paths[i];
        if (!rules_build_seen(&b, name)) {
            rules_build_error(&b, paths[i], 0, 0, "loaded already (given twice, or included)");
            free(canon);
            continue;
        }
        char *data, *why = NULL;
        size_t len;
        if (read_whole(name, &data, &len, &why) != 0) {
            rules_build_error(&b, paths[i], 0, 0, "cannot read: %s", why);
            free(why);
            free(canon);
            continue;
        }
        /* Errors name the file as the admin wrote it. */
        const char *interned = rules_build_file(&b, paths[i]);
        free(canon);
        rules_parse(&b, interned, data, len);
        free(data);
    }
    return finish(&b, lim, out, first_error);
}

int rules_load_buffer(const char *name, const char *data, size_t len,
                      const struct rules_limits *lim, struct rules **out, struct rules_errors *errs)
{
    struct rules_build b = {.r = rules_alloc(), .errs = errs, .read_file = NULL};
    size_t first_error = errs ? errs->n : 0;
    const char *interned = rules_build_file(&b, name);
    rules_parse(&b, interned, data, len);
    return finish(&b, lim, out, first_error);
}

/* ---- examples ---- */

size_t rules_check_examples(const struct rules *r, struct rules_errors *errs)
{
    size_t failures = 0;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (md == NULL)
        abort();
    for (size_t i = 0; i < r->n; i++) {
        const struct rule *rule = &r->v[i];
        for (size_t k = 0; k < rule->nexamples; k++) {
            const struct rule_example *ex = &rule->examples[k];
            const char *why = NULL;
            bool hit = false;
            int rc = rules_match_one(r, rule, ex->text, ex->len, md, NULL, NULL);
            if (rc < 0)
                why = "exceeds the match limits";
            else
                hit = rule->negate ? rc == 0 : rc == 1;
            if (why == NULL && hit != ex->must_hit)
                why = ex->must_hit ? "does not hit" : "hits";
            if (why == NULL)
                continue;
            failures++;
            char msg[300];
            snprintf(msg, sizeof(msg), "%s example of %s %s",
                     ex->must_hit ? "must-hit" : "must-not-hit", rule->name, why);
            errors_add(errs, ex->pos.file, ex->pos.line, ex->pos.col, msg);
        }
    }
    pcre2_match_data_free(md);
    return failures;
}
