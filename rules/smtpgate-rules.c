/*
 * smtpgate-rules - the admin's tool for rule files: lint, test, bench.
 *
 *   smtpgate-rules lint FILE...
 *   smtpgate-rules test FILE... MESSAGE [--ip A] [--name N] [--helo H] [--from S] [--rcpt R]...
 *                       [--symbol NAME=SCORE]... [--dump-body] [--dump-rawbody] [--dump-uris]
 *   smtpgate-rules bench FILE... DIR [--seconds N]        (DIR and its subfolders)
 *   smtpgate-rules [VERB] --help
 *
 * lint loads the files as smtpgate would and runs every rule's examples
 * (those of the rules that compiled even when others failed: every error in
 * one run) and warns of a rule that can only score and has no score;
 * test runs one message through every stage the given facts allow and says
 * what smtpgate would do, with every value each rule matched; bench measures content evaluation
 * over a folder of messages and names the slowest rules.
 *
 * Exit status: 0 fine (lint: no error; test: the message would be delivered,
 * tagged or not), 1 lint found errors / test: the message or its connection
 * would be refused, discarded or quarantined, 2 usage, unreadable input,
 * rules that do not load (test, bench), or out of memory (any verb: the
 * library returns the failure, the tool says "out of memory" and stops).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <time.h>

#include "rules/rules.h"
#include "rules/rules_int.h"
#include "rules/sa_dns_resolve.h"
#include "rules/sa_dnsbl.h"
#include "rules/sa_relays.h"
#include "util/build_info.h"

#define MESSAGE_MAX     (64u * 1024 * 1024)
#define BENCH_MAX_FILES 100000
#define BENCH_SLOWEST   10
#define BENCH_MAX_DEPTH 16

static const char usage_main[] =
    "usage: smtpgate-rules VERB ...\n"
    "\n"
    "  lint FILE...                 check rule files and their examples\n"
    "  test FILE... MESSAGE [opts]  run a message through the rules, show hits and verdict\n"
    "  bench FILE... DIR [opts]     messages per second over a folder, slowest rules\n"
    "\n"
    "smtpgate-rules VERB --help tells more; --version the version.  Exit status: 0 fine, 1 errors "
    "found or\n"
    "message refused, 2 usage or unreadable input.\n";

static const char usage_lint[] =
    "usage: smtpgate-rules lint [FILE...] [--sa] [--sa-dir DIR]... [--sa-local FILE]...\n"
    "                           [--sa-network] [--list]\n"
    "\n"
    "Loads the rule files together, as smtpgate's rules plugin does (includes\n"
    "followed, names unique across files), and runs every rule's must-hit and\n"
    "must-not-hit examples.  Prints each error as FILE:LINE:COLUMN: reason,\n"
    "every error of the files in one run (examples too when others failed),\n"
    "and a warning for a rule that can only score and has no score.\n"
    "--sa loads SpamAssassin's rule files beside them (sa-update's folder or\n"
    "/usr/share/spamassassin, then /etc/spamassassin); --sa-dir reads the *.cf of\n"
    "the folders given instead, --sa-local adds the admin's own .cf files, and\n"
    "--sa-network takes the scores for network tests on.  It then prints how\n"
    "many of SpamAssassin's rules loaded and, by reason, which were skipped.\n"
    "The same options work with test and bench.  --list prints every rule\n"
    "loaded: \"rule NAME TARGET\", its score, its pattern's flags and the\n"
    "pattern as compiled, tab-separated.\n"
    "Exit status: 0 no error, 1 errors, 2 usage.\n";

static const char usage_test[] =
    "usage: smtpgate-rules test FILE... MESSAGE [--ip ADDR] [--name NAME] [--helo NAME]\n"
    "                           [--from ADDR] [--rcpt ADDR]... [--symbol NAME=SCORE]...\n"
    "                           [--dump-body] [--dump-rawbody] [--dump-uris]\n"
    "                           [--tls] [--auth LOGIN] [--by NAME] [--dump-relays]\n"
    "\n"
    "Runs MESSAGE (a saved message, RFC 5322, as received) through the rules.\n"
    "Envelope stages run only when their facts are given: connect with --ip or\n"
    "--name (verified reverse name), helo with --helo, mail with --from (\"\" is\n"
    "the null sender), rcpt once per --rcpt.  Prints every rule that hit (stage,\n"
    "name, target, matched text, score), the score, the verdict smtpgate would\n"
    "give, and the report headers; a rule that matched several values (or one\n"
    "value several times) shows every match, comma-separated.  --symbol stands\n"
    "for a symbol another plugin would add (SPF_FAIL=2, DNSBL_ZEN_SPAMHAUS_ORG=3):\n"
    "present from the first stage on, for symbol(NAME) and in the score.\n"
    "--dump-body and --dump-rawbody print the text body and rawbody rules see\n"
    "(each line after \"| \"), --dump-uris every URI uri rules see, one a line\n"
    "(with SpamAssassin's rules also its URI list, \"sa-uri URI\": every form of\n"
    "each, redirectors' targets included), before the content stage's hits.\n"
    "For SpamAssassin's relay chain smtpgate is the receiving MTA: --ip, --name,\n"
    "--helo, --tls (the session was under TLS), --auth (its SASL login) and --by\n"
    "(the receiving host's name, default localhost) make the newest relay, the\n"
    "one SpamAssassin reads from the Received field its MTA adds (the message\n"
    "must not hold that field).  --dump-relays prints the chain judged, as\n"
    "SpamAssassin's X-Spam-Relays-Trusted, -Untrusted, -Internal, -External.\n"
    "With --sa-network the relay blocklist queries of check_rbl rules are sent\n"
    "before the content stage, all at once, and waited for at most --dns-timeout\n"
    "seconds (default 5): to --dns-server HOST[:PORT][,...] or, without it, the\n"
    "system's resolvers.  An unanswered query is a miss.\n"
    "Exit status: 0 delivered (maybe tagged), 1 refused, discarded or quarantined,\n"
    "2 usage, unreadable message, or rules that do not load.\n";

static const char usage_bench[] =
    "usage: smtpgate-rules bench FILE... DIR [--seconds N]\n"
    "\n"
    "Evaluates the content rules over every regular file in DIR and its\n"
    "subfolders (each a saved message; names starting with \".\" left out,\n"
    "links to folders not followed), round after round for N seconds\n"
    "(default 3, at most 600, at least one round), parsing each message anew\n"
    "as smtpgate does.  Prints\n"
    "messages per second, megabytes per second and the %d slowest rules.\n"
    "Exit status: 0, or 2 on usage, unreadable input, rules that do not load.\n";

/* The relay chain as SpamAssassin's debug output names it; -1 out of memory. */
static int print_relays(const struct rules *r, const struct rules_facts *f, struct rules_msg *m)
{
    static const char *const names[SA_RL__COUNT] = {"Trusted", "Untrusted", "Internal", "External"};
    rules_msg_set_relay_ctx(m, r->sa_relay_conf, f, sa_relays_free);
    const struct sa_relays *rl = sa_relays_of(m);
    if (rl == NULL)
        return -1;
    for (int k = 0; k < SA_RL__COUNT; k++)
        printf("X-Spam-Relays-%s: %s\n", names[k], rl->str[k]);
    printf("relays unparseable: %zu\n", rl->unparseable);
    return 0;
}

static void print_escaped(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 32 || c == 127)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

/* Exit status 2, after the message. */
static int nomem(void)
{
    fprintf(stderr, "smtpgate-rules: out of memory\n");
    return 2;
}

static void print_errors(const struct rules_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++) {
        char *s = rules_error_format(&errs->v[i]);
        fprintf(stderr, "%s\n", s ? s : "out of memory");
        free(s);
    }
    if (errs->nomem && errs->n == 0)
        nomem();
}

/* The SpamAssassin options of every verb, taken out of argv. */
struct sa_cli {
    bool on;
    const char *dirs[64];
    size_t ndirs;
    const char *local[64];
    size_t nlocal;
    bool network;
    const char *dns_server; /* NULL: the system's resolvers */
    double dns_timeout;
    struct rules_sa_opts opts;
};

static struct sa_cli sa_cli;

/* Takes --sa, --sa-dir DIR, --sa-local FILE and --sa-network out of argv;
 * -1 after a usage error (said). */
static int take_sa_options(int *argc, char **argv)
{
    int k = 0;
    for (int i = 0; i < *argc; i++) {
        const char *a = argv[i];
        bool dir = strcmp(a, "--sa-dir") == 0, local = strcmp(a, "--sa-local") == 0;
        if (strcmp(a, "--sa") == 0) {
            sa_cli.on = true;
        } else if (strcmp(a, "--sa-network") == 0) {
            sa_cli.on = sa_cli.network = true;
        } else if (strcmp(a, "--dns-server") == 0 || strcmp(a, "--dns-timeout") == 0) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "smtpgate-rules: %s takes a value\n", a);
                return -1;
            }
            if (a[6] == 's') {
                sa_cli.dns_server = argv[++i];
            } else {
                char *end;
                double t = strtod(argv[++i], &end);
                if (*end || !(t > 0 && t <= 60)) {
                    fprintf(stderr, "smtpgate-rules: --dns-timeout takes 0 to 60 seconds\n");
                    return -1;
                }
                sa_cli.dns_timeout = t;
            }
        } else if (dir || local) {
            size_t *n = dir ? &sa_cli.ndirs : &sa_cli.nlocal;
            if (i + 1 >= *argc || *n == 64) {
                fprintf(stderr, "smtpgate-rules: %s takes a %s (at most 64)\n", a,
                        dir ? "folder" : "file");
                return -1;
            }
            (dir ? sa_cli.dirs : sa_cli.local)[(*n)++] = argv[++i];
            sa_cli.on = true;
        } else {
            argv[k++] = argv[i];
        }
    }
    *argc = k;
    sa_cli.opts = (struct rules_sa_opts){.dirs = sa_cli.ndirs ? sa_cli.dirs : NULL,
                                         .ndirs = sa_cli.ndirs,
                                         .local = sa_cli.local,
                                         .nlocal = sa_cli.nlocal,
                                         .network = sa_cli.network};
    return 0;
}

static const struct rules_sa_opts *sa_opts(void)
{
    return sa_cli.on ? &sa_cli.opts : NULL;
}

static void print_counts(const char *label, const struct rules_sa_count *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        printf("%s %zu: %s", label, v[i].count, v[i].what);
        if (v[i].first != NULL)
            printf(" (%s%s)", v[i].first, v[i].count > 1 ? ", ..." : "");
        putchar('\n');
    }
}

/* What the load made of SpamAssassin's files, for lint. */
static void print_sa_report(const struct rules_sa_report *rep)
{
    size_t skipped = 0;
    for (size_t i = 0; i < rep->nskipped; i++)
        skipped += rep->skipped[i].count;
    printf("spamassassin: emulating %s, score set %d, %zu file%s read\n",
           rep->version ? rep->version : "?", rep->score_set, rep->nfiles,
           rep->nfiles == 1 ? "" : "s");
    printf("spamassassin: %zu rules defined, %zu loaded, %zu skipped\n", rep->defined, rep->loaded,
           skipped);
    print_counts("skipped", rep->skipped, rep->nskipped);
    print_counts("eval function implemented", rep->evals_done, rep->nevals_done);
    print_counts("eval function not implemented", rep->evals, rep->nevals);
    print_counts("ignored setting", rep->ignored, rep->nignored);
    for (size_t i = 0; i < rep->warnings.n; i++) {
        char *s = rules_error_format(&rep->warnings.v[i]);
        printf("warning %s\n", s ? s : "out of memory");
        free(s);
    }
}

static struct rules *load(const char *const *files, size_t n)
{
    struct rules_errors errs = {0};
    struct rules *r = NULL;
    struct rules_sa_report rep = {0};
    int rc = rules_load_sa(files, n, sa_opts(), NULL, &r, &errs, &rep);
    rules_sa_report_free(&rep);
    if (rc != 0) {
        print_errors(&errs);
        fprintf(stderr, "smtpgate-rules: %zu error%s, rules not loaded\n", errs.n,
                errs.n == 1 ? "" : "s");
        rules_errors_free(&errs);
        return NULL;
    }
    rules_errors_free(&errs);
    return r;
}

/* Warnings, not errors: the set loads and works, but a rule that can only
 * score and was given no score never counts. */
static void print_unscored(const struct rules *r)
{
    for (size_t i = 0; i < rules_count(r); i++) {
        if (!rules_rule_unscored(r, i))
            continue;
        unsigned line, col;
        const char *file = rules_rule_file(r, i, &line, &col);
        const char *name = rules_rule_name(r, i);
        fprintf(stderr,
                "%s:%u:%u: warning: rule %s has no score, so it counts 0 (SpamAssassin's "
                "default is 1.0): give it \"score N\" or an action, or name it __%s if it "
                "only feeds meta rules\n",
                file, line, col, name, name);
    }
}

static int cmd_lint(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(usage_lint, stdout);
        return 0;
    }
    if (take_sa_options(&argc, argv) != 0)
        return 2;
    bool list = false;
    int k = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--list") == 0)
            list = true;
        else
            argv[k++] = argv[i];
    }
    argc = k;
    if (argc < 1 && !sa_cli.on) {
        fputs(usage_lint, stderr);
        return 2;
    }
    struct rules_errors errs = {0};
    struct rules *r = NULL;
    struct rules_sa_report rep = {0};
    int rc = rules_load_lint((const char *const *)argv, (size_t)argc, sa_opts(), &r, &errs, &rep);
    if (sa_cli.on)
        print_sa_report(&rep);
    rules_sa_report_free(&rep);
    if (rc != 0) {
        print_errors(&errs);
        fprintf(stderr, "%zu error%s\n", errs.n, errs.n == 1 ? "" : "s");
        bool oom = errs.nomem;
        rules_errors_free(&errs);
        return oom ? nomem() : 1;
    }
    size_t bad = rules_check_examples(r, &errs);
    print_errors(&errs);
    print_unscored(r);
    bool oom = errs.nomem;
    rules_errors_free(&errs);
    size_t n = rules_count(r), nf = rules_file_count(r);
    if (oom) {
        rules_unref(r);
        return nomem();
    }
    if (bad > 0) {
        fprintf(stderr, "%zu example%s failed\n", bad, bad == 1 ? "" : "s");
        rules_unref(r);
        return 1;
    }
    for (size_t i = 0; list && i < n; i++) {
        size_t plen = 0;
        const char *p = rules_rule_pattern(r, i, &plen);
        char flags[8];
        rules_rule_flags(r, i, flags);
        printf("rule %s %s\t%g\t%s\t", rules_rule_name(r, i), rules_rule_target(r, i),
               rules_rule_score(r, i), flags);
        if (p != NULL)
            fwrite(p, 1, plen, stdout);
        putchar('\n');
    }
    printf("ok: %zu rule%s in %zu file%s\n", n, n == 1 ? "" : "s", nf, nf == 1 ? "" : "s");
    rules_unref(r);
    return 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "smtpgate-rules: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n == cap) {
            if (cap >= MESSAGE_MAX) {
                fprintf(stderr, "smtpgate-rules: %s: larger than %u octets\n", path, MESSAGE_MAX);
                free(buf);
                buf = NULL;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                fprintf(stderr, "smtpgate-rules: %s: %s\n", path, strerror(errno));
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static void print_hits(const struct rules_outcome *o)
{
    for (size_t i = 0; i < o->nhits; i++) {
        const struct rules_hit *h = &o->hits[i];
        printf("hit  %-7s %s  %s  ", rules_stage_name(h->stage), h->rule, h->target);
        if (h->text != NULL)
            print_escaped(stdout, h->text, h->text_len);
        else
            fputs("(no text)", stdout);
        for (size_t k = 0; k < h->nmore; k++) {
            fputs(", ", stdout);
            print_escaped(stdout, h->more[k].text, h->more[k].len);
        }
        printf("  score %.1f", h->score);
        if (h->rcpt != NULL)
            printf("  rcpt %s", h->rcpt);
        if (h->shadow)
            fputs("  shadow", stdout);
        if (!h->counted)
            fputs("  (recipient refused)", stdout);
        putchar('\n');
    }
    for (size_t i = 0; i < o->nevents; i++)
        printf("note %s: %s%s\n", o->events[i].rule, o->events[i].what,
               strcmp(o->events[i].what, "budget") == 0 ? " spent, later rules not evaluated"
                                                        : " exceeded, counted as a miss");
}

static void print_verdict(const char *stage, const struct rules_outcome *o)
{
    printf("verdict %s: %s", stage, rules_verdict_name(o->verdict));
    if (o->reply != NULL)
        printf(" \"%s\"", o->reply);
    if (o->reason != NULL)
        printf(" reason \"%s\"", o->reason);
    if (o->decided_by != NULL)
        printf(" (%s)", o->decided_by);
    putchar('\n');
}

/* The text as the rules see it, each line after "| " so that blank lines
 * and trailing blanks show (a CR before the line end is left out). */
static void dump_text(const char *what, const char *s, size_t len)
{
    printf("%s: %zu octets\n", what, len);
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(s + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - s) : len, l = e - i;
        if (l > 0 && s[i + l - 1] == '\r')
            l--;
        fputs("| ", stdout);
        fwrite(s + i, 1, l, stdout);
        putchar('\n');
        i = nl ? e + 1 : len;
    }
}

static bool refused(const struct rules_outcome *o)
{
    return o->verdict == RULES_REJECT || o->verdict == RULES_TEMPFAIL;
}

static int cmd_test(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        fputs(usage_test, stdout);
        return 0;
    }
    if (take_sa_options(&argc, argv) != 0)
        return 2;
    struct rules_facts f = {0};
    struct sa_dns_queries dq = {0};
    const char **pos = calloc((size_t)argc + 1, sizeof(char *));
    const char **rcpts = calloc((size_t)argc + 1, sizeof(char *));
    struct rules_symbol *syms = calloc((size_t)argc + 1, sizeof(*syms));
    size_t npos = 0, nrcpt = 0, nsym = 0;
    bool have_conn = false, dump_body = false, dump_rawbody = false, dump_uris = false,
         dump_relays = false;
    int rc = 2;
    if (pos == NULL || rcpts == NULL || syms == NULL)
        goto out;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool opt = strcmp(a, "--ip") == 0 || strcmp(a, "--name") == 0 || strcmp(a, "--helo") == 0 ||
                   strcmp(a, "--from") == 0 || strcmp(a, "--rcpt") == 0 ||
                   strcmp(a, "--symbol") == 0 || strcmp(a, "--auth") == 0 || strcmp(a, "--by") == 0;
        if (opt && i + 1 >= argc) {
            fprintf(stderr, "smtpgate-rules test: %s needs a value\n", a);
            goto out;
        }
        if (strcmp(a, "--ip") == 0)
            f.client_addr = argv[++i], have_conn = true;
        else if (strcmp(a, "--name") == 0)
            f.client_name = argv[++i], have_conn = true;
        else if (strcmp(a, "--helo") == 0)
            f.helo = argv[++i];
        else if (strcmp(a, "--from") == 0)
            f.mail_from = argv[++i];
        else if (strcmp(a, "--rcpt") == 0)
            rcpts[nrcpt++] = argv[++i];
        else if (strcmp(a, "--dump-body") == 0)
            dump_body = true;
        else if (strcmp(a, "--dump-rawbody") == 0)
            dump_rawbody = true;
        else if (strcmp(a, "--dump-uris") == 0)
            dump_uris = true;
        else if (strcmp(a, "--tls") == 0)
            f.tls = true;
        else if (strcmp(a, "--auth") == 0)
            f.auth_login = argv[++i];
        else if (strcmp(a, "--by") == 0)
            f.local_name = argv[++i];
        else if (strcmp(a, "--dump-relays") == 0)
            dump_relays = true;
        else if (strcmp(a, "--symbol") == 0) {
            char *v = argv[++i], *eq = strchr(v, '='), *end = NULL;
            double score = eq ? strtod(eq + 1, &end) : 0;
            if (eq == NULL || eq == v || end == eq + 1 || *end != '\0') {
                fprintf(stderr, "smtpgate-rules test: --symbol %s: want NAME=SCORE\n", v);
                goto out;
            }
            *eq = '\0';
            syms[nsym++] = (struct rules_symbol){v, score};
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "smtpgate-rules test: unknown option %s\n", a);
            goto out;
        } else
            pos[npos++] = a;
    }
    if (npos < (sa_cli.on ? 1u : 2u)) {
        fputs(usage_test, stderr);
        goto out;
    }
    f.symbols = syms;
    f.nsymbols = nsym;
    size_t len;
    char *bytes = read_file(pos[npos - 1], &len);
    if (bytes == NULL)
        goto out;
    struct rules *r = load(pos, npos - 1);
    if (r == NULL) {
        free(bytes);
        goto out;
    }
    struct rules_msg *m = rules_msg_parse(bytes, len);
    free(bytes);
    if (m != NULL && rules_msg_mbox_from(m))
        printf("warning %s: the first line is an mbox \"From \" line, not a field: "
               "left out, as SpamAssassin does\n",
               pos[npos - 1]);
    if (m != NULL && rules_msg_no_headers(m))
        printf("warning %s: no header section: the message starts with its body\n", pos[npos - 1]);
    struct rules_tx *conn = rules_tx_new(r);
    struct rules_tx *tx = NULL;
    if (conn != NULL)
        rules_tx_set_all_values(conn, true);
    const struct rules_outcome *o;
    rc = 0;
    if (m == NULL || conn == NULL) {
        rc = nomem();
        goto done;
    }
    if (have_conn) {
        o = rules_tx_eval(conn, RULES_STAGE_CONNECT, &f, NULL);
        if (o == NULL) {
            rc = nomem();
            goto done;
        }
        print_hits(o);
        print_verdict("connect", o);
        if (refused(o)) {
            rc = 1;
            goto done;
        }
    }
    if (f.helo != NULL) {
        o = rules_tx_eval(conn, RULES_STAGE_HELO, &f, NULL);
        if (o == NULL) {
            rc = nomem();
            goto done;
        }
        print_hits(o);
        print_verdict("helo", o);
        if (refused(o)) {
            rc = 1;
            goto done;
        }
    }
    tx = rules_tx_fork(conn);
    if (tx == NULL) {
        rc = nomem();
        goto done;
    }
    if (f.mail_from != NULL) {
        o = rules_tx_eval(tx, RULES_STAGE_MAIL, &f, NULL);
        if (o == NULL) {
            rc = nomem();
            goto done;
        }
        print_hits(o);
        print_verdict("mail", o);
        if (refused(o)) {
            rc = 1;
            goto done;
        }
    }
    size_t accepted = 0;
    for (size_t i = 0; i < nrcpt; i++) {
        f.rcpt = rcpts[i];
        o = rules_tx_eval(tx, RULES_STAGE_RCPT, &f, NULL);
        if (o == NULL) {
            rc = nomem();
            goto done;
        }
        print_hits(o);
        printf("rcpt %s: ", rcpts[i]);
        print_verdict("rcpt", o);
        if (!refused(o))
            accepted++;
    }
    if (nrcpt > 0 && accepted == 0) {
        printf("every recipient refused: no message\n");
        rc = 1;
        goto done;
    }
    if (dump_body || dump_rawbody) {
        size_t l;
        const char *t;
        if (dump_body && (t = rules_msg_body(m, &l)) != NULL)
            dump_text("body", t, l);
        if (dump_rawbody && (t = rules_msg_rawbody(m, &l)) != NULL)
            dump_text("rawbody", t, l);
    }
    if (dump_uris) {
        size_t nu = rules_msg_uri_count(m);
        printf("uris: %zu\n", nu);
        for (size_t i = 0; i < nu; i++)
            printf("uri %s\n", rules_msg_uri(m, i));
        if (r->need_sa) {
            /* SpamAssassin's list, its redirectors followed as the
             * content stage will */
            rules_msg_set_sa_redirs(m, r->sa_redirs);
            nu = rules_msg_sa_uri_count(m);
            printf("sa-uris: %zu\n", nu);
            for (size_t i = 0; i < nu; i++)
                printf("sa-uri %s\n", rules_msg_sa_uri(m, i));
        }
    }
    if (dump_relays && print_relays(r, &f, m) != 0) {
        rc = nomem();
        goto done;
    }
    /* SpamAssassin's _HOSTNAME_: this host's name, as spamassassin -t would say */
    char host[256];
    if (f.local_name == NULL && gethostname(host, sizeof(host)) == 0) {
        host[sizeof(host) - 1] = '\0';
        f.host_name = host;
    }
    if (sa_cli.network) {
        char why[200] = "";
        if (sa_dnsbl_gather(r, m, &f, &dq) != 0) {
            rc = nomem();
            goto done;
        }
        if (sa_dns_resolve(&dq, sa_cli.dns_server,
                           sa_dnsbl_timeout(r, sa_cli.dns_timeout > 0 ? sa_cli.dns_timeout : 5),
                           why, sizeof why) != 0)
            fprintf(stderr, "smtpgate-rules: blocklist queries: %s\n", why);
        rules_msg_set_dns(m, &dq);
    }
    o = rules_tx_eval(tx, RULES_STAGE_CONTENT, &f, m);
    if (o == NULL) {
        rc = nomem();
        goto done;
    }
    print_hits(o);
    printf("score %.1f required %.1f\n", o->score, o->required);
    print_verdict("content", o);
    for (size_t i = 0; i < o->nheaders; i++)
        printf("add-header %s: %s\n", o->headers[i].name, o->headers[i].value);
    if (o->subject_prefix != NULL)
        printf("subject-prefix \"%s\"\n", o->subject_prefix);
    for (size_t i = 0; i < o->nreport; i++)
        printf("%s: %s\n", o->report[i].name, o->report[i].value);
    rc = o->verdict == RULES_CONTINUE || o->verdict == RULES_ACCEPT ? 0 : 1;
done:
    rules_tx_free(tx);
    rules_tx_free(conn);
    rules_msg_free(m);
    sa_dns_queries_clear(&dq);
    rules_unref(r);
out:
    free(pos);
    free(rcpts);
    free(syms);
    return rc;
}

struct bench_msg {
    char *bytes;
    size_t len;
};

static int cmp_prof(const void *a, const void *b, void *arg)
{
    const uint64_t *prof = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return prof[x] < prof[y] ? 1 : prof[x] > prof[y] ? -1 : 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct file_list {
    char **v;
    size_t n;
};

/* Every regular file under dir, in its subfolders too (a Maildir's cur/ and
 * new/, a corpus sorted by month), names starting with "." left out.
 * Symbolic links to folders are not followed, so a loop cannot trap the
 * walk; the depth and the count are bounded. */
static void walk_folder(struct file_list *fl, const char *dir, unsigned depth)
{
    if (depth > BENCH_MAX_DEPTH)
        return;
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && fl->n < BENCH_MAX_FILES) {
        if (de->d_name[0] == '.')
            continue;
        char *p;
        if (asprintf(&p, "%s/%s", dir, de->d_name) < 0)
            break;
        struct stat lst, st;
        if (lstat(p, &lst) != 0 || stat(p, &st) != 0) {
            free(p);
            continue;
        }
        if (S_ISDIR(lst.st_mode)) {
            walk_folder(fl, p, depth + 1);
            free(p);
            continue;
        }
        char **nn = S_ISREG(st.st_mode) ? realloc(fl->v, (fl->n + 1) * sizeof(*nn)) : NULL;
        if (nn == NULL) {
            free(p);
            continue;
        }
        fl->v = nn;
        fl->v[fl->n++] = p;
    }
    closedir(d);
}

static int cmd_bench(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        printf(usage_bench, BENCH_SLOWEST);
        return 0;
    }
    if (take_sa_options(&argc, argv) != 0)
        return 2;
    const char **pos = calloc((size_t)argc + 1, sizeof(char *));
    size_t npos = 0;
    double seconds = 3;
    int rc = 2;
    if (pos == NULL)
        return 2;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            char *end;
            seconds = strtod(argv[++i], &end);
            if (*end != '\0' || !(seconds >= 0 && seconds <= 600)) {
                fprintf(stderr, "smtpgate-rules bench: --seconds takes 0 to 600\n");
                free(pos);
                return 2;
            }
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "smtpgate-rules bench: unknown option %s\n", argv[i]);
            free(pos);
            return 2;
        } else {
            pos[npos++] = argv[i];
        }
    }
    if (npos < (sa_cli.on ? 1u : 2u)) {
        fprintf(stderr, usage_bench, BENCH_SLOWEST);
        free(pos);
        return 2;
    }
    const char *dir = pos[npos - 1];
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "smtpgate-rules bench: %s: %s\n", dir, strerror(errno));
        free(pos);
        return 2;
    }
    struct file_list fl = {0};
    walk_folder(&fl, dir, 0);
    closedir(d);
    char **names = fl.v;
    size_t nnames = fl.n;
    qsort(names, nnames, sizeof(*names), cmp_names);
    struct bench_msg *msgs = calloc(nnames ? nnames : 1, sizeof(*msgs));
    size_t nmsgs = 0, total = 0;
    for (size_t i = 0; msgs != NULL && i < nnames; i++) {
        msgs[nmsgs].bytes = read_file(names[i], &msgs[nmsgs].len);
        if (msgs[nmsgs].bytes != NULL)
            total += msgs[nmsgs++].len;
    }
    struct rules *r = NULL;
    if (nmsgs == 0) {
        fprintf(stderr, "smtpgate-rules bench: no message in %s\n", dir);
        goto out;
    }
    r = load(pos, npos - 1);
    if (r == NULL)
        goto out;
    size_t nr = rules_count(r);
    uint64_t *prof = calloc(nr ? nr : 1, sizeof(uint64_t));
    size_t *idx = calloc(nr ? nr : 1, sizeof(size_t));
    if (prof == NULL || idx == NULL) {
        free(prof);
        free(idx);
        goto out;
    }
    size_t done = 0, rounds = 0, events = 0;
    uint64_t octets = 0;
    double t0 = now_s(), el, decoding = 0;
    bool raw = rules_need_raw(r), oom = false;
    do {
        for (size_t i = 0; i < nmsgs; i++) {
            double d0 = now_s();
            struct rules_msg *m = rules_msg_parse(msgs[i].bytes, msgs[i].len);
            struct rules_tx *tx = m ? rules_tx_new(r) : NULL;
            if (tx == NULL) {
                rules_msg_free(m);
                oom = true;
                break;
            }
            if (raw) {
                /* the MIME view on its own line, not on the first body rule */
                size_t l;
                rules_msg_body(m, &l);
                rules_msg_uri_count(m);
            }
            decoding += now_s() - d0;
            rules_tx_set_profile(tx, prof);
            const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
            events += o ? o->nevents : 0;
            oom = oom || o == NULL;
            rules_tx_free(tx);
            rules_msg_free(m);
            octets += msgs[i].len;
            done++;
        }
        rounds++;
        el = now_s() - t0;
    } while (el < seconds && !oom);
    if (oom) {
        free(prof);
        free(idx);
        rc = nomem();
        goto out;
    }
    printf("%zu messages (%.1f KiB) from %s, %zu rules\n", nmsgs, (double)total / 1024, dir, nr);
    printf("%zu rounds, %zu messages in %.2f s: %.0f messages/s, %.1f MiB/s\n", rounds, done, el,
           (double)done / el, (double)octets / el / (1024 * 1024));
    printf("parsing and MIME decoding: %.1f us per message\n", decoding * 1e6 / (double)done);
    if (events > 0)
        printf("%zu limit or budget events\n", events);
    for (size_t i = 0; i < nr; i++)
        idx[i] = i;
    qsort_r(idx, nr, sizeof(size_t), cmp_prof, prof);
    printf("slowest rules (total ms, us per message):\n");
    for (size_t i = 0; i < nr && i < BENCH_SLOWEST; i++) {
        if (prof[idx[i]] == 0)
            break;
        printf("  %-40s %10.2f %10.2f\n", rules_rule_name(r, idx[i]), (double)prof[idx[i]] / 1e6,
               (double)prof[idx[i]] / 1e3 / (double)done);
    }
    free(prof);
    free(idx);
    rc = 0;
out:
    rules_unref(r);
    for (size_t i = 0; i < nmsgs; i++)
        free(msgs[i].bytes);
    free(msgs);
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    free(pos);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(verb, "--version") == 0) {
        printf("smtpgate-rules %s\n", SMTPGATE_VERSION);
        return 0;
    }
    if (strcmp(verb, "lint") == 0)
        return cmd_lint(argc - 2, argv + 2);
    if (strcmp(verb, "test") == 0)
        return cmd_test(argc - 2, argv + 2);
    if (strcmp(verb, "bench") == 0)
        return cmd_bench(argc - 2, argv + 2);
    fprintf(stderr, "smtpgate-rules: unknown verb %s\n", verb);
    fputs(usage_main, stderr);
    return 2;
}
