/*
 * Unit tests for the rules plugin against the contract of plugin.h: the real
 * build/.../plugins/rules.so is dlopen'ed and driven by a host written here
 * from the header alone (options with their defaults, config errors, facts,
 * private storage, replies, edits, counters, logs).  Covered: option and
 * rule-file errors through config_error, each envelope stage refusing with
 * the rule's reply, recipients alone, GTUBE refused at end of message, a
 * tagged message getting the report, the subject prefix and the client's own
 * X-Spam-* fields removed, max_scan_size, counters and the log line, and a
 * reload while a connection keeps its old rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtpgate/plugin.h"

/* ---- the host ---- */

#define MAX_LINES 64

struct sg_section {
    const char *name;
    const char *files[4];
    size_t nfiles;
    const char *sa_dirs[2]; /* spamassassin_dirs */
    size_t nsa_dirs;
    const char *keys[8];
    const char *values[8];
    size_t nkeys;
};

struct edit {
    char what[16];
    char name[64];
    size_t nth;
    char value[512];
};

struct sg_ctx {
    struct sg_conn_info ci;
    struct sg_envelope env;
    struct sg_header headers[16];
    size_t nheaders;
    const char *message;
    void *conn_data;
    void (*conn_free)(void *);
    void *msg_data;
    void (*msg_free)(void *);
    char reply[512];
    char reason[256];
    struct edit edits[32];
    size_t nedits;
    enum sg_stage stage;
};

static const struct sg_plugin *plugin;
static char errors[MAX_LINES][512];
static size_t nerrors;
static char logs[MAX_LINES][1024];
static size_t nlogs;
static struct {
    char name[128];
    uint64_t n;
} counters[128];
static size_t ncounters;

static const struct sg_option *option(const char *key)
{
    for (const struct sg_option *o = plugin->options; o->name != NULL; o++)
        if (strcmp(o->name, key) == 0)
            return o;
    fail_msg("plugin asked for undeclared option %s", key);
    return NULL;
}

static const char *raw_value(const struct sg_section *sec, const char *key)
{
    for (size_t i = 0; i < sec->nkeys; i++)
        if (strcmp(sec->keys[i], key) == 0)
            return sec->values[i];
    return option(key)->def;
}

static const char *h_opt_string(const struct sg_section *sec, const char *key)
{
    return raw_value(sec, key);
}

static long long h_opt_int(const struct sg_section *sec, const char *key)
{
    assert_int_equal(option(key)->type, SG_OPT_INT);
    return atoll(raw_value(sec, key));
}

static double h_opt_float(const struct sg_section *sec, const char *key)
{
    return atof(raw_value(sec, key));
}

static bool h_opt_bool(const struct sg_section *sec, const char *key)
{
    assert_int_equal(option(key)->type, SG_OPT_BOOL);
    return strcmp(raw_value(sec, key), "true") == 0;
}

static size_t h_opt_list_size(const struct sg_section *sec, const char *key)
{
    assert_int_equal(option(key)->type, SG_OPT_LIST);
    return strcmp(key, "files") == 0               ? sec->nfiles
           : strcmp(key, "spamassassin_dirs") == 0 ? sec->nsa_dirs
                                                   : 0;
}

static const char *h_opt_list_item(const struct sg_section *sec, const char *key, size_t i)
{
    if (strcmp(key, "spamassassin_dirs") == 0)
        return i < sec->nsa_dirs ? sec->sa_dirs[i] : NULL;
    assert_string_equal(key, "files");
    return i < sec->nfiles ? sec->files[i] : NULL;
}

static bool h_opt_is_set(const struct sg_section *sec, const char *key)
{
    for (size_t i = 0; i < sec->nkeys; i++)
        if (strcmp(sec->keys[i], key) == 0)
            return true;
    return false;
}

static const char *h_section_name(const struct sg_section *sec)
{
    return sec->name;
}

static void h_config_error(const struct sg_section *sec, const char *key, const char *fmt, ...)
{
    (void)sec;
    va_list ap;
    va_start(ap, fmt);
    if (nerrors < MAX_LINES) {
        int n = snprintf(errors[nerrors], sizeof(errors[0]), "%s: ", key ? key : "-");
        vsnprintf(errors[nerrors] + n, sizeof(errors[0]) - (size_t)n, fmt, ap);
        nerrors++;
    }
    va_end(ap);
}

static void h_log(const struct sg_ctx *ctx, enum sg_log_level level, const char *fmt, ...)
{
    (void)ctx;
    (void)level;
    va_list ap;
    va_start(ap, fmt);
    if (nlogs < MAX_LINES)
        vsnprintf(logs[nlogs++], sizeof(logs[0]), fmt, ap);
    va_end(ap);
}

static char tx_note[600];

static void h_tx_note(struct sg_ctx *ctx, const char *text)
{
    (void)ctx;
    snprintf(tx_note, sizeof(tx_note), "%s", text);
}

static void h_counter_add(const struct sg_ctx *ctx, const char *name, uint64_t delta)
{
    (void)ctx;
    for (const char *p = name; *p; p++)
        assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
    for (size_t i = 0; i < ncounters; i++) {
        if (strcmp(counters[i].name, name) == 0) {
            counters[i].n += delta;
            return;
        }
    }
    assert_true(ncounters < 128);
    snprintf(counters[ncounters].name, sizeof(counters[0].name), "%s", name);
    counters[ncounters++].n = delta;
}

static const struct sg_conn_info *h_conn(const struct sg_ctx *ctx)
{
    return &ctx->ci;
}

static const struct sg_envelope *h_envelope(const struct sg_ctx *ctx)
{
    return &ctx->env;
}

static enum sg_stage h_stage(const struct sg_ctx *ctx)
{
    return ctx->stage;
}

static size_t h_header_count(const struct sg_ctx *ctx)
{
    return ctx->nheaders;
}

static const struct sg_header *h_header_get(const struct sg_ctx *ctx, size_t i)
{
    return i < ctx->nheaders ? &ctx->headers[i] : NULL;
}

static uint64_t h_message_size(const struct sg_ctx *ctx)
{
    return strlen(ctx->message);
}

static ssize_t h_message_read(const struct sg_ctx *ctx, uint64_t off, void *buf, size_t len)
{
    size_t n = strlen(ctx->message);
    if (off >= n)
        return 0;
    /* in small pieces, as a spool file might give them */
    size_t k = n - off < len ? n - off : len;
    if (k > 7)
        k = 7;
    memcpy(buf, ctx->message + off, k);
    return (ssize_t)k;
}

static uint64_t h_body_offset(const struct sg_ctx *ctx)
{
    const char *e = strstr(ctx->message, "\r\n\r\n");
    return e ? (uint64_t)(e - ctx->message) + 4 : strlen(ctx->message);
}

static void h_set_conn_data(struct sg_ctx *ctx, void *data, void (*fn)(void *))
{
    if (ctx->conn_free != NULL)
        ctx->conn_free(ctx->conn_data);
    ctx->conn_data = data;
    ctx->conn_free = fn;
}

static void *h_conn_data(const struct sg_ctx *ctx)
{
    return ctx->conn_data;
}

static void h_set_msg_data(struct sg_ctx *ctx, void *data, void (*fn)(void *))
{
    if (ctx->msg_free != NULL)
        ctx->msg_free(ctx->msg_data);
    ctx->msg_data = data;
    ctx->msg_free = fn;
}

static void *h_msg_data(const struct sg_ctx *ctx)
{
    return ctx->msg_data;
}

static int h_set_reply(struct sg_ctx *ctx, const char *reply)
{
    snprintf(ctx->reply, sizeof(ctx->reply), "%s", reply);
    return 0;
}

static void h_set_quarantine_reason(struct sg_ctx *ctx, const char *reason)
{
    snprintf(ctx->reason, sizeof(ctx->reason), "%s", reason);
}

static void h_resolve(struct sg_ctx *ctx, enum sg_verdict v, const char *reply)
{
    (void)ctx;
    (void)v;
    (void)reply;
    fail_msg("the rules plugin never returns SG_PENDING");
}

static int edit(struct sg_ctx *ctx, const char *what, const char *name, size_t nth,
                const char *value)
{
    if (ctx->stage != SG_STAGE_EOM)
        return -1;
    assert_true(ctx->nedits < 32);
    struct edit *e = &ctx->edits[ctx->nedits++];
    snprintf(e->what, sizeof(e->what), "%s", what);
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->nth = nth;
    snprintf(e->value, sizeof(e->value), "%s", value ? value : "(delete)");
    return 0;
}

static int h_add_header(struct sg_ctx *ctx, const char *name, const char *value)
{
    return edit(ctx, "add", name, 0, value);
}

static int h_insert_header(struct sg_ctx *ctx, size_t index, const char *name, const char *value)
{
    return edit(ctx, "insert", name, index, value);
}

static int h_change_header(struct sg_ctx *ctx, const char *name, size_t nth, const char *value)
{
    return edit(ctx, "change", name, nth, value);
}

static int h_unused_edit(struct sg_ctx *ctx, const char *a, const char *b)
{
    (void)ctx;
    (void)a;
    (void)b;
    return -1;
}

static int h_del_rcpt(struct sg_ctx *ctx, const char *a)
{
    (void)ctx;
    (void)a;
    return -1;
}

static int h_replace_body(struct sg_ctx *ctx, const void *b, size_t n)
{
    (void)ctx;
    (void)b;
    (void)n;
    return -1;
}

/* A host from before symbols: the plugin must run on it (SG_HAS). */
static const struct sg_host host = {
    .size = offsetof(struct sg_host, add_symbol),
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .opt_string = h_opt_string,
    .opt_int = h_opt_int,
    .opt_float = h_opt_float,
    .opt_bool = h_opt_bool,
    .opt_list_size = h_opt_list_size,
    .opt_list_item = h_opt_list_item,
    .opt_is_set = h_opt_is_set,
    .section_name = h_section_name,
    .config_error = h_config_error,
    .log = h_log,
    .counter_add = h_counter_add,
    .tx_note = h_tx_note,
    .conn = h_conn,
    .envelope = h_envelope,
    .stage = h_stage,
    .header_count = h_header_count,
    .header_get = h_header_get,
    .message_size = h_message_size,
    .message_read = h_message_read,
    .body_offset = h_body_offset,
    .set_conn_data = h_set_conn_data,
    .conn_data = h_conn_data,
    .set_msg_data = h_set_msg_data,
    .msg_data = h_msg_data,
    .set_reply = h_set_reply,
    .set_quarantine_reason = h_set_quarantine_reason,
    .resolve = h_resolve,
    .add_header = h_add_header,
    .insert_header = h_insert_header,
    .change_header = h_change_header,
    .change_from = h_unused_edit,
    .add_rcpt = h_unused_edit,
    .del_rcpt = h_del_rcpt,
    .replace_body = h_replace_body,
};

/* ---- helpers ---- */

static void *handle;
static char dir[] = "/tmp/test_rules_plugin.XXXXXX";

static int setup(void **state)
{
    (void)state;
    char exe[PATH_MAX], so[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0'; /* .../tests */
    *strrchr(exe, '/') = '\0'; /* the build folder */
    snprintf(so, sizeof(so), "%s/plugins/rules.so", exe);
    handle = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL)
        print_error("%s\n", dlerror());
    assert_non_null(handle);
    plugin = dlsym(handle, SG_PLUGIN_SYMBOL);
    assert_non_null(plugin);
    assert_int_equal(plugin->abi_version, SG_PLUGIN_ABI_VERSION);
    assert_string_equal(plugin->name, "rules");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    /* the object is -z nodelete: dlclose leaves it mapped, GMime with it */
    dlclose(handle);
    return 0;
}

static const char *rule_file(const char *name, const char *text)
{
    static char paths[8][300];
    static int k;
    char *p = paths[k++ % 8];
    snprintf(p, 300, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static void reset_records(void)
{
    nerrors = nlogs = ncounters = 0;
    tx_note[0] = '\0';
}

static uint64_t counter(const char *name)
{
    for (size_t i = 0; i < ncounters; i++)
        if (strcmp(counters[i].name, name) == 0)
            return counters[i].n;
    return 0;
}

static bool logged(const char *text)
{
    for (size_t i = 0; i < nlogs; i++)
        if (strstr(logs[i], text) != NULL)
            return true;
    return false;
}

static void ctx_end_tx(struct sg_ctx *ctx)
{
    h_set_msg_data(ctx, NULL, NULL);
    ctx->nedits = 0;
    ctx->reply[0] = ctx->reason[0] = '\0';
}

static void ctx_close(struct sg_ctx *ctx)
{
    ctx_end_tx(ctx);
    h_set_conn_data(ctx, NULL, NULL);
}

/* Splits ctx->message's header section into ctx->headers (test messages
 * are unfolded). */
static void ctx_message(struct sg_ctx *ctx, const char *text)
{
    static char copy[4096];
    snprintf(copy, sizeof(copy), "%s", text);
    ctx->message = text;
    ctx->nheaders = 0;
    char *line = copy;
    while (line && *line && strncmp(line, "\r\n", 2) != 0) {
        char *end = strstr(line, "\r\n");
        if (end)
            *end = '\0';
        char *colon = strchr(line, ':');
        assert_non_null(colon);
        *colon = '\0';
        ctx->headers[ctx->nheaders++] = (struct sg_header){line, colon + 1, strlen(colon + 1)};
        line = end ? end + 2 : NULL;
    }
}

static const char *rules_text =
    "rule BLOCKED client_addr 203.0.113.0/24 reject \"554 5.7.1 Your network is blocked\"\n"
    "rule HELO_LOCAL helo /^localhost$/ reject \"550 5.7.1 Bad HELO\"\n"
    "rule FROM_TEMP mail_from /@later\\.example$/ tempfail \"451 4.7.1 Come back later\"\n"
    "rule CFO rcpt_to /^cfo@/ reject \"550 5.7.1 No mail for the CFO\"\n"
    "rule GTUBE body /XJS\\*C4JDBQADN1/ reject \"554 5.7.1 GTUBE\"\n"
    "rule SPAMMY header Subject /offer/i score 6\n"
    "rule WATCH header Subject /offer/i score 50 shadow\n"
    "rule QUAR body /quarantine me/ quarantine \"asked for\"\n"
    "threshold tag 5 add-header \"X-Spam-Flag: YES\" subject-prefix \"[SPAM] \"\n";

static void *init_with(struct sg_section *sec)
{
    void *inst = NULL;
    reset_records();
    int rc = plugin->init(&host, sec, &inst);
    for (size_t i = 0; i < nerrors; i++)
        print_message("config error: %s\n", errors[i]);
    assert_int_equal(rc, 0);
    assert_non_null(inst);
    return inst;
}

/* ---- tests ---- */

static void test_options_and_errors(void **state)
{
    (void)state;
    for (const struct sg_option *o = plugin->options; o->name != NULL; o++)
        if (o->check != NULL && o->def != NULL)
            assert_null(o->check(o->def));
    /* numbers are range-checked by the host, from the declared ranges */
    const struct sg_option *ms = option("max_scan_size");
    assert_true(ms->min == 1 && isinf(ms->max));
    assert_true(option("budget_ms")->min == 0 && option("budget_ms")->max == 600000);
    assert_true(option("match_limit")->min == 1 && option("depth_limit")->min == 1);

    struct sg_section sec = {.name = "rules"};
    void *inst = NULL;
    reset_records();
    assert_int_equal(plugin->init(&host, &sec, &inst), -1);
    assert_int_equal(nerrors, 1);
    assert_string_equal(errors[0], "files: at least one rule file is needed (or spamassassin)");

    const char *bad = rule_file("bad.rules", "rule A body /(/\nrule B helo /x/ must-hit \"y\"\n");
    sec.files[0] = bad;
    sec.nfiles = 1;
    reset_records();
    assert_int_equal(plugin->init(&host, &sec, &inst), -1);
    assert_int_equal(nerrors, 1);
    char want[400];
    snprintf(want, sizeof(want), "files: %s:1:15: bad pattern", bad);
    assert_true(strncmp(errors[0], want, strlen(want)) == 0);

    /* examples fail: refused too, at the example */
    bad = rule_file("ex.rules", "rule B helo /x/ must-hit \"y\"\n");
    sec.files[0] = bad;
    reset_records();
    assert_int_equal(plugin->init(&host, &sec, &inst), -1);
    snprintf(want, sizeof(want), "files: %s:1:26: must-hit example of B does not hit", bad);
    assert_string_equal(errors[0], want);
}

static void test_envelope(void **state)
{
    (void)state;
    struct sg_section sec = {
        .name = "rules", .files = {rule_file("r.rules", rules_text)}, .nfiles = 1};
    void *inst = init_with(&sec);
    assert_true(logged("plugin rules: loaded 8 rules from 1 files"));

    struct sg_ctx ctx = {.ci = {.session_id = "S1", .client_addr = "203.0.113.9"}};
    ctx.stage = SG_STAGE_CONNECT;
    assert_int_equal(plugin->connect(&ctx, inst), SG_REJECT);
    assert_string_equal(ctx.reply, "554 5.7.1 Your network is blocked");
    assert_true(logged("rules: connect: verdict=reject by=BLOCKED hits=BLOCKED(client_addr)"));
    assert_int_equal(counter("rule_blocked"), 1);
    /* the host counts verdicts; the plugin counting them too would count twice */
    assert_int_equal(counter("verdict_reject"), 0);
    ctx_close(&ctx);

    ctx = (struct sg_ctx){.ci = {.session_id = "S2", .client_addr = "192.0.2.1"}};
    assert_int_equal(plugin->connect(&ctx, inst), SG_CONTINUE);
    ctx.stage = SG_STAGE_HELO;
    ctx.ci.helo = "localhost";
    assert_int_equal(plugin->helo(&ctx, inst), SG_REJECT);
    assert_string_equal(ctx.reply, "550 5.7.1 Bad HELO");
    ctx.ci.helo = "mx.example.org";
    ctx.reply[0] = '\0';
    assert_int_equal(plugin->helo(&ctx, inst), SG_CONTINUE);

    ctx.stage = SG_STAGE_MAIL;
    ctx.env.mail_from = "x@later.example";
    assert_int_equal(plugin->mail(&ctx, inst, "x@later.example", ""), SG_TEMPFAIL);
    assert_string_equal(ctx.reply, "451 4.7.1 Come back later");
    ctx_end_tx(&ctx);

    ctx.env.mail_from = "alice@example.org";
    assert_int_equal(plugin->mail(&ctx, inst, "alice@example.org", ""), SG_CONTINUE);
    ctx.stage = SG_STAGE_RCPT;
    assert_int_equal(plugin->rcpt(&ctx, inst, "cfo@example.org", ""), SG_REJECT);
    assert_string_equal(ctx.reply, "550 5.7.1 No mail for the CFO");
    assert_true(logged("rules: rcpt cfo@example.org: verdict=reject by=CFO hits=CFO(rcpt_to)"));
    ctx.reply[0] = '\0';
    assert_int_equal(plugin->rcpt(&ctx, inst, "bob@example.org", ""), SG_CONTINUE);
    assert_string_equal(ctx.reply, "");
    ctx_close(&ctx);
    plugin->fini(inst);
}

static void test_end_of_message(void **state)
{
    (void)state;
    struct sg_section sec = {
        .name = "rules", .files = {rule_file("r.rules", rules_text)}, .nfiles = 1};
    void *inst = init_with(&sec);
    struct sg_ctx ctx = {
        .ci = {.session_id = "S3", .client_addr = "192.0.2.1", .helo = "mx.example.org"}};
    assert_int_equal(plugin->connect(&ctx, inst), SG_CONTINUE);
    ctx.env.mail_from = "alice@example.org";
    assert_int_equal(plugin->mail(&ctx, inst, "alice@example.org", ""), SG_CONTINUE);

    /* GTUBE: refused with the rule's reply, no edits */
    ctx.stage = SG_STAGE_EOM;
    ctx_message(&ctx, "Subject: test\r\n\r\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE\r\n");
    assert_int_equal(plugin->eom(&ctx, inst), SG_REJECT);
    assert_string_equal(ctx.reply, "554 5.7.1 GTUBE");
    assert_int_equal(ctx.nedits, 0);
    assert_true(logged("rules: score=0.0 required=5.0 verdict=reject by=GTUBE hits=GTUBE(body)"));
    assert_string_equal(tx_note, "score=0.0 hits=GTUBE(body)");
    ctx_end_tx(&ctx);

    /* tagged: the client's own report removed, prefix, flag, report */
    reset_records();
    ctx.stage = SG_STAGE_MAIL;
    assert_int_equal(plugin->mail(&ctx, inst, "alice@example.org", ""), SG_CONTINUE);
    ctx.stage = SG_STAGE_EOM;
    ctx_message(&ctx, "Subject: A great offer\r\nX-Spam-Status: No, forged\r\n"
                      "X-Spam-Flag: NO\r\n\r\nhello\r\n");
    assert_int_equal(plugin->eom(&ctx, inst), SG_CONTINUE);
    const char *want[][4] = {
        {"change", "X-Spam-Status", "1", "(delete)"},
        {"change", "X-Spam-Flag", "1", "(delete)"},
        {"change", "Subject", "1", "[SPAM] A great offer"},
        {"add", "X-Spam-Flag", "0", "YES"},
        {"add", "X-Spam-Status", "0", "Yes, score=6.0 required=5.0 tests=SPAMMY"},
        {"add", "X-Spam-Score", "0", "6.0"},
        {"add", "X-Spam-Level", "0", "******"},
    };
    assert_int_equal(ctx.nedits, 7);
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(ctx.edits[i].what, want[i][0]);
        assert_string_equal(ctx.edits[i].name, want[i][1]);
        assert_int_equal(ctx.edits[i].nth, (size_t)atoi(want[i][2]));
        assert_string_equal(ctx.edits[i].value, want[i][3]);
    }
    assert_true(logged("rules: score=6.0 required=5.0 verdict=continue tagged by=threshold tag "
                       "hits=SPAMMY(header Subject) shadow=WATCH(header Subject)"));
    assert_int_equal(counter("tagged"), 1);
    assert_int_equal(counter("shadow_hits"), 1);
    assert_int_equal(counter("rule_watch"), 1);
    assert_int_equal(counter("messages"), 1);
    ctx_end_tx(&ctx);

    /* quarantine: the reason handed over, the report still added */
    ctx_message(&ctx, "Subject: x\r\n\r\nplease quarantine me\r\n");
    assert_int_equal(plugin->eom(&ctx, inst), SG_QUARANTINE);
    assert_string_equal(ctx.reason, "asked for");
    assert_true(ctx.nedits >= 2);
    /* quarantined by a rule: spam in the report, though it scored nothing */
    bool status_seen = false;
    for (size_t i = 0; i < ctx.nedits; i++)
        if (strcmp(ctx.edits[i].name, "X-Spam-Status") == 0 &&
            strcmp(ctx.edits[i].what, "add") == 0) {
            assert_string_equal(ctx.edits[i].value, "Yes, score=0.0 required=5.0 tests=QUAR");
            status_seen = true;
        }
    assert_true(status_seen);
    ctx_close(&ctx);
    plugin->fini(inst);
}

static void test_max_scan_size(void **state)
{
    (void)state;
    struct sg_section sec = {.name = "rules",
                             .files = {rule_file("r.rules", rules_text)},
                             .nfiles = 1,
                             .keys = {"max_scan_size", "report_headers"},
                             .values = {"20", "false"},
                             .nkeys = 2};
    void *inst = init_with(&sec);
    struct sg_ctx ctx = {.ci = {.session_id = "S4", .client_addr = "192.0.2.1"}};
    ctx.stage = SG_STAGE_EOM;
    ctx_message(&ctx, "Subject: an offer\r\n\r\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE\r\n");
    /* too large for the body rules; header rules still run; no report */
    assert_int_equal(plugin->eom(&ctx, inst), SG_CONTINUE);
    assert_int_equal(counter("scan_skipped_size"), 1);
    assert_int_equal(counter("rule_spammy"), 1);
    for (size_t i = 0; i < ctx.nedits; i++)
        assert_null(strstr(ctx.edits[i].name, "X-Spam-Status"));
    ctx_close(&ctx);
    plugin->fini(inst);
}

static void test_reload_keeps_session_rules(void **state)
{
    (void)state;
    const char *path = rule_file("live.rules", "rule OLD helo /x/ reject \"550 5.7.1 old\"\n");
    struct sg_section sec = {.name = "rules", .files = {path}, .nfiles = 1};
    void *old = init_with(&sec);
    struct sg_ctx ctx = {.ci = {.session_id = "S5", .client_addr = "192.0.2.1"}};
    assert_int_equal(plugin->connect(&ctx, old), SG_CONTINUE);

    rule_file("live.rules", "rule NEW helo /x/ score 1\n");
    void *fresh = NULL;
    reset_records();
    assert_int_equal(plugin->reload(&host, &sec, old, &fresh), 0);
    assert_true(logged("reloaded 1 rules"));
    /* a broken file on reload: refused, the old instance untouched */
    rule_file("live.rules", "rule BROKEN helo\n");
    void *none = NULL;
    assert_int_equal(plugin->reload(&host, &sec, fresh, &none), -1);
    assert_null(none);
    assert_true(nerrors >= 1);

    /* the session that started before the reload keeps OLD */
    ctx.ci.helo = "x";
    assert_int_equal(plugin->helo(&ctx, old), SG_REJECT);
    assert_string_equal(ctx.reply, "550 5.7.1 old");
    plugin->fini(old); /* the host may finish the old config first */
    struct sg_ctx next = {.ci = {.session_id = "S6", .client_addr = "192.0.2.1", .helo = "x"}};
    assert_int_equal(plugin->helo(&next, fresh), SG_CONTINUE);
    ctx_close(&ctx);
    ctx_close(&next);
    plugin->fini(fresh);
}

/* SpamAssassin's files beside a native one: loaded, the load logged with
 * its counts and reasons, their rules scoring at end of message; the
 * folder options without spamassassin are an error. */
static void test_spamassassin(void **state)
{
    (void)state;
    char sadir[400];
    snprintf(sadir, sizeof(sadir), "%s/sa", dir);
    assert_int_equal(mkdir(sadir, 0700), 0);
    rule_file("sa/10_test.cf", "header SA_OFFER Subject =~ /offer/i\n"
                               "score SA_OFFER 6\n"
                               "header SA_EVAL eval:check_razor2()\n"
                               "header SA_TO eval:check_for_missing_to_header()\n"
                               "ifplugin Mail::SpamAssassin::Plugin::URIDNSBL\n"
                               "header SA_RBL eval:check_uridnsbl('a', 'b.')\n"
                               "endif\n");
    struct sg_section sec = {.name = "rules",
                             .files = {rule_file("th.rules", "threshold tag 5\n")},
                             .nfiles = 1,
                             .sa_dirs = {sadir},
                             .nsa_dirs = 1};
    reset_records();
    void *inst = NULL;
    assert_int_equal(plugin->init(&host, &sec, &inst), -1);
    assert_int_equal(nerrors, 1);
    assert_string_equal(errors[0], "spamassassin_dirs: needs spamassassin = true");

    sec.keys[0] = "spamassassin";
    sec.values[0] = "true";
    sec.nkeys = 1;
    inst = init_with(&sec);
    assert_true(logged("plugin rules: spamassassin 4.000001 (score set 0): 1 files, 4 rules "
                       "defined, 2 loaded, 2 skipped"));
    assert_true(logged("plugin rules: spamassassin skipped 1: unknown eval function "
                       "check_razor2 (SA_EVAL)"));
    assert_true(logged("plugin rules: spamassassin skipped 1: plugin "
                       "Mail::SpamAssassin::Plugin::URIDNSBL is not emulated (SA_RBL)"));
    assert_true(logged("plugin rules: spamassassin eval functions implemented: "
                       "check_for_missing_to_header (1)"));
    assert_true(logged("plugin rules: spamassassin eval functions not implemented: "
                       "check_razor2 (1), check_uridnsbl (1)"));
    struct sg_ctx ctx = {
        .ci = {.session_id = "S9", .client_addr = "192.0.2.1", .helo = "mx.example.org"}};
    assert_int_equal(plugin->connect(&ctx, inst), SG_CONTINUE);
    ctx.env.mail_from = "alice@example.org";
    assert_int_equal(plugin->mail(&ctx, inst, "alice@example.org", ""), SG_CONTINUE);
    ctx.stage = SG_STAGE_EOM;
    /* a To: SA_TO (check_for_missing_to_header, run natively) does not hit */
    ctx_message(&ctx, "To: bob@example.net\r\nSubject: A great offer\r\n\r\nhello\r\n");
    assert_int_equal(plugin->eom(&ctx, inst), SG_CONTINUE);
    assert_true(logged("rules: score=6.0 required=5.0 verdict=continue tagged by=threshold tag "
                       "hits=SA_OFFER(header Subject)"));
    ctx_close(&ctx);
    plugin->fini(inst);

    /* no native file at all is fine then */
    sec.nfiles = 0;
    inst = init_with(&sec);
    plugin->fini(inst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_and_errors),
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_end_of_message),
        cmocka_unit_test(test_max_scan_size),
        cmocka_unit_test(test_reload_keeps_session_rules),
        cmocka_unit_test(test_spamassassin),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
