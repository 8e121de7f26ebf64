/*
 * Unit tests for the SPF plugin's callbacks, against a fake host that
 * implements struct sg_host as plugin.h states it, and a small DNS server
 * thread on 127.0.0.1 (the plugin's nameserver option points at it):
 * options and their errors, exemptions, fail refused at MAIL with 5.7.23
 * and the domain's explanation, the null sender judged by HELO, temperror
 * as 451 4.7.24 when the nameserver is gone, decide_at=rcpt letting
 * postmaster@ through, decide_at=eom, and at end of data the forged
 * Authentication-Results removed (last first) and Received-SPF and
 * Authentication-Results inserted at the top.  With a loop from
 * host->event_loop that outlives the connection, the same checks wait on
 * it (SG_PENDING, then resolve() from the loop, nothing of them left on
 * it); with one that does not, they block as without a loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtpgate/plugin.h"

extern const struct sg_plugin smtpgate_plugin;

/* ---- a DNS server thread: TXT and A from a table, NXDOMAIN otherwise ---- */

struct rr {
    const char *name;
    int type; /* 1 A, 16 TXT */
    const char *data;
};

static const struct rr dns_table[] = {
    {"pass.test", 16, "v=spf1 ip4:192.0.2.0/24 -all"},
    {"fail.test", 16, "v=spf1 ip4:198.51.100.1 -all exp=why.fail.test"},
    {"why.fail.test", 16, "%{i} is not allowed to send for %{d}"},
    {"soft.test", 16, "v=spf1 ~all"},
    {"bad.test", 16, "v=spf1 ip4:1.2.3.4/33 -all"},
    {"helo.test", 16, "v=spf1 a -all"},
    {"helo.test", 1, "192.0.2.7"},
    {NULL, 0, NULL},
};

static int dns_fd = -1;
static int dns_port;
static atomic_int dns_stop;
static pthread_t dns_thread;

static size_t dns_answer(const unsigned char *q, size_t qlen, unsigned char *a)
{
    char name[256];
    size_t i = 12, o = 0;
    while (i < qlen && q[i] != 0 && o < sizeof name - 64) {
        size_t l = q[i++];
        if (i + l > qlen)
            return 0;
        if (o)
            name[o++] = '.';
        memcpy(name + o, q + i, l);
        o += l;
        i += l;
    }
    name[o] = '\0';
    if (i + 5 > qlen)
        return 0;
    int type = (q[i + 1] << 8) | q[i + 2];
    size_t qend = i + 5;
    memcpy(a, q, qend);
    a[2] = 0x81;
    a[3] = 0x80;
    a[6] = a[7] = a[8] = a[9] = a[10] = a[11] = 0;
    bool exists = false;
    unsigned count = 0;
    size_t n = qend;
    for (const struct rr *r = dns_table; r->name; r++) {
        if (strcasecmp(r->name, name) != 0)
            continue;
        exists = true;
        if (r->type != type)
            continue;
        unsigned char rd[600];
        size_t rdlen = 0;
        if (type == 1) {
            inet_pton(AF_INET, r->data, rd);
            rdlen = 4;
        } else {
            size_t dl = strlen(r->data);
            rd[0] = (unsigned char)dl;
            memcpy(rd + 1, r->data, dl);
            rdlen = dl + 1;
        }
        unsigned char hdr[12] = {0xc0,
                                 0x0c,
                                 0,
                                 (unsigned char)type,
                                 0,
                                 1,
                                 0,
                                 0,
                                 0,
                                 60,
                                 (unsigned char)(rdlen >> 8),
                                 (unsigned char)rdlen};
        memcpy(a + n, hdr, 12);
        memcpy(a + n + 12, rd, rdlen);
        n += 12 + rdlen;
        count++;
    }
    a[7] = (unsigned char)count;
    if (!exists)
        a[3] = 0x83;
    return n;
}

static void *dns_run(void *arg)
{
    (void)arg;
    unsigned char q[512], a[2048];
    while (!atomic_load(&dns_stop)) {
        struct pollfd p = {.fd = dns_fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(dns_fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
        if (n <= 12)
            continue;
        size_t al = dns_answer(q, (size_t)n, a);
        if (al > 0)
            sendto(dns_fd, a, al, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

static int dns_start(void **state)
{
    (void)state;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof sin;
    dns_fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (dns_fd < 0 || bind(dns_fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        getsockname(dns_fd, (struct sockaddr *)&sin, &l) < 0)
        return -1;
    dns_port = ntohs(sin.sin_port);
    atomic_store(&dns_stop, 0);
    return pthread_create(&dns_thread, NULL, dns_run, NULL) == 0 ? 0 : -1;
}

static int dns_end(void **state)
{
    (void)state;
    atomic_store(&dns_stop, 1);
    pthread_join(dns_thread, NULL);
    close(dns_fd);
    return 0;
}

/* ---- the fake host ---- */

struct kv {
    const char *key;
    const char *value; /* lists: items separated by ',' */
};

struct sg_section {
    const struct kv *kv;
    char errors[1024];
    char warnings[1024];
    unsigned stages; /* what set_stages() said */
    bool stages_set;
    double timeout_s; /* the host's timeout key; 0: 30 s */
};

struct edit {
    char op; /* 'i' insert, 'c' change/delete */
    size_t index;
    char name[64];
    char value[1024];
    bool deleted;
};

struct sg_ctx {
    struct sg_conn_info conn;
    struct sg_envelope env;
    const struct sg_header *headers;
    size_t nheaders;
    void *conn_data, *msg_data;
    void (*conn_free)(void *);
    void (*msg_free)(void *);
    char reply[1024];
    struct edit edits[16];
    size_t nedits;
    char log[8192];
    unsigned counters_rejected, counters_forged;
    struct event_base *base; /* host->event_loop's, or NULL */
    bool outlives;
    bool resolved;
    enum sg_verdict verdict;
    char symbol[64]; /* the last add_symbol */
    double symbol_score;
    int symbol_scope;
};

static const char *fake_default(const char *key)
{
    for (const struct sg_option *o = smtpgate_plugin.options; o->name; o++)
        if (strcmp(o->name, key) == 0)
            return o->def;
    return NULL;
}

/* value of key: the admin's, else the option's default in file syntax */
static const char *fake_raw(const struct sg_section *s, const char *key, bool *is_default)
{
    for (const struct kv *k = s->kv; k && k->key; k++)
        if (strcmp(k->key, key) == 0) {
            *is_default = false;
            return k->value;
        }
    *is_default = true;
    return fake_default(key);
}

static char fake_buf[16][256];
static int fake_next;

static const char *fake_string(const struct sg_section *s, const char *key)
{
    bool d;
    const char *v = fake_raw(s, key, &d);
    if (v == NULL || !d)
        return v;
    char *b = fake_buf[fake_next++ % 16];
    snprintf(b, 256, "%s", v[0] == '"' ? v + 1 : v);
    size_t n = strlen(b);
    if (n && b[n - 1] == '"')
        b[n - 1] = '\0';
    return b;
}

static long long fake_int(const struct sg_section *s, const char *key)
{
    const char *v = fake_string(s, key);
    return v ? atoll(v) : 0;
}

static double fake_float(const struct sg_section *s, const char *key)
{
    const char *v = fake_string(s, key);
    return v ? atof(v) : 0;
}

static bool fake_bool(const struct sg_section *s, const char *key)
{
    const char *v = fake_string(s, key);
    return v && strcmp(v, "true") == 0;
}

/* lists: "a,b" from the admin, {"a","b"} as a default */
static size_t fake_items(const struct sg_section *s, const char *key, char items[8][128])
{
    bool d;
    const char *v = fake_raw(s, key, &d);
    if (v == NULL || *v == '\0')
        return 0;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", v);
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(tmp, d ? "{},\"" : ",", &save); t && n < 8;
         t = strtok_r(NULL, d ? "{},\"" : ",", &save))
        snprintf(items[n++], 128, "%s", t);
    return n;
}

static size_t fake_list_size(const struct sg_section *s, const char *key)
{
    char items[8][128];
    return fake_items(s, key, items);
}

static const char *fake_list_item(const struct sg_section *s, const char *key, size_t i)
{
    char items[8][128];
    size_t n = fake_items(s, key, items);
    if (i >= n)
        return NULL;
    char *b = fake_buf[fake_next++ % 16];
    snprintf(b, 256, "%s", items[i]);
    return b;
}

static bool fake_is_set(const struct sg_section *s, const char *key)
{
    bool d;
    fake_raw(s, key, &d);
    return !d;
}

static const char *fake_section_name(const struct sg_section *s)
{
    (void)s;
    return "spf";
}

static void fake_config_error(const struct sg_section *s, const char *key, const char *fmt, ...)
{
    struct sg_section *w = (struct sg_section *)s;
    size_t n = strlen(w->errors);
    n += (size_t)snprintf(w->errors + n, sizeof w->errors - n, "%s: ", key ? key : "-");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errors + n, sizeof w->errors - n, fmt, ap);
    va_end(ap);
}

static void fake_config_warning(const struct sg_section *s, const char *key, const char *fmt, ...)
{
    struct sg_section *w = (struct sg_section *)s;
    size_t n = strlen(w->warnings);
    n += (size_t)snprintf(w->warnings + n, sizeof w->warnings - n, "%s: ", key ? key : "-");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->warnings + n, sizeof w->warnings - n, fmt, ap);
    va_end(ap);
}

static void fake_set_stages(const struct sg_section *s, unsigned stages)
{
    struct sg_section *w = (struct sg_section *)s;
    w->stages = stages;
    w->stages_set = true;
}

static double fake_verdict_timeout(const struct sg_section *s)
{
    return s->timeout_s > 0 ? s->timeout_s : 30;
}

static void fake_log(const struct sg_ctx *ctx, enum sg_log_level level, const char *fmt, ...)
{
    (void)level;
    if (ctx == NULL)
        return;
    struct sg_ctx *c = (struct sg_ctx *)ctx;
    size_t n = strlen(c->log);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->log + n, sizeof c->log - n, fmt, ap);
    va_end(ap);
    n = strlen(c->log);
    if (n + 1 < sizeof c->log) {
        c->log[n] = '\n';
        c->log[n + 1] = '\0';
    }
}

static void fake_counter(const struct sg_ctx *ctx, const char *name, uint64_t d)
{
    struct sg_ctx *c = (struct sg_ctx *)ctx;
    for (const char *p = name; *p; p++)
        assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
    if (strcmp(name, "rejected") == 0)
        c->counters_rejected += (unsigned)d;
    if (strcmp(name, "forged_ar_removed") == 0)
        c->counters_forged += (unsigned)d;
}

static const struct sg_conn_info *fake_conn(const struct sg_ctx *c)
{
    return &c->conn;
}

static const struct sg_envelope *fake_env(const struct sg_ctx *c)
{
    return &c->env;
}

static enum sg_stage fake_stage(const struct sg_ctx *c)
{
    (void)c;
    return SG_STAGE_MAIL;
}

static size_t fake_hcount(const struct sg_ctx *c)
{
    return c->nheaders;
}

static const struct sg_header *fake_hget(const struct sg_ctx *c, size_t i)
{
    return i < c->nheaders ? &c->headers[i] : NULL;
}

static void fake_set_conn(struct sg_ctx *c, void *d, void (*f)(void *))
{
    if (c->conn_free && c->conn_data)
        c->conn_free(c->conn_data);
    c->conn_data = d;
    c->conn_free = f;
}

static void *fake_get_conn(const struct sg_ctx *c)
{
    return c->conn_data;
}

static void fake_set_msg(struct sg_ctx *c, void *d, void (*f)(void *))
{
    if (c->msg_free && c->msg_data)
        c->msg_free(c->msg_data);
    c->msg_data = d;
    c->msg_free = f;
}

static void *fake_get_msg(const struct sg_ctx *c)
{
    return c->msg_data;
}

static int fake_set_reply(struct sg_ctx *c, const char *r)
{
    if (strlen(r) < 10 || strchr(r, '\r') || strchr(r, '\n'))
        return -1;
    snprintf(c->reply, sizeof c->reply, "%s", r);
    return 0;
}

static int fake_insert(struct sg_ctx *c, size_t index, const char *name, const char *value)
{
    assert_true(c->nedits < 16);
    struct edit *e = &c->edits[c->nedits++];
    e->op = 'i';
    e->index = index;
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->value, sizeof e->value, "%s", value);
    /* folding CRLFs must be followed by SP or HTAB */
    for (const char *p = value; *p; p++)
        if (*p == '\n')
            assert_true(p[1] == ' ' || p[1] == '\t');
    return 0;
}

static int fake_change(struct sg_ctx *c, const char *name, size_t nth, const char *value)
{
    assert_true(c->nedits < 16);
    struct edit *e = &c->edits[c->nedits++];
    e->op = 'c';
    e->index = nth;
    e->deleted = value == NULL;
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->value, sizeof e->value, "%s", value ? value : "");
    return 0;
}

static int fake_add_symbol(struct sg_ctx *c, enum sg_symbol_scope scope, const char *name,
                           double score, const char *detail)
{
    (void)detail;
    snprintf(c->symbol, sizeof c->symbol, "%s", name);
    c->symbol_score = score;
    c->symbol_scope = (int)scope;
    return 0;
}

static struct event_base *fake_event_loop(const struct sg_ctx *c, bool *outlives)
{
    if (outlives != NULL)
        *outlives = c->outlives;
    return c->base;
}

static void fake_resolve(struct sg_ctx *c, enum sg_verdict v, const char *reply)
{
    assert_false(c->resolved);
    c->resolved = true;
    c->verdict = v;
    if (reply != NULL)
        snprintf(c->reply, sizeof c->reply, "%s", reply);
}

static const struct sg_host host = {
    .size = offsetof(struct sg_host, add_symbol) + sizeof(void *), /* up to add_symbol */
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .opt_string = fake_string,
    .opt_int = fake_int,
    .opt_float = fake_float,
    .opt_bool = fake_bool,
    .opt_list_size = fake_list_size,
    .opt_list_item = fake_list_item,
    .opt_is_set = fake_is_set,
    .section_name = fake_section_name,
    .config_error = fake_config_error,
    .log = fake_log,
    .counter_add = fake_counter,
    .conn = fake_conn,
    .envelope = fake_env,
    .stage = fake_stage,
    .header_count = fake_hcount,
    .header_get = fake_hget,
    .set_conn_data = fake_set_conn,
    .conn_data = fake_get_conn,
    .set_msg_data = fake_set_msg,
    .msg_data = fake_get_msg,
    .set_reply = fake_set_reply,
    .insert_header = fake_insert,
    .change_header = fake_change,
    .set_stages = fake_set_stages,
    .verdict_timeout = fake_verdict_timeout,
    .config_warning = fake_config_warning,
    .resolve = fake_resolve,
    .event_loop = fake_event_loop,
    .add_symbol = fake_add_symbol,
};

static char ns_opt[64];

static void *load(const struct kv *extra)
{
    struct kv kv[24];
    size_t n = 0;
    snprintf(ns_opt, sizeof ns_opt, "127.0.0.1:%d", dns_port);
    kv[n++] = (struct kv){"nameserver", ns_opt};
    kv[n++] = (struct kv){"authserv_id", "mx.test"};
    kv[n++] = (struct kv){"dns_timeout", "1.5"};
    for (; extra && extra->key; extra++)
        kv[n++] = *extra;
    kv[n] = (struct kv){NULL, NULL};
    struct sg_section sec = {.kv = kv};
    void *inst = NULL;
    if (smtpgate_plugin.init(&host, &sec, &inst) != 0)
        fail_msg("init refused: %s", sec.errors);
    return inst;
}

static void ctx_init(struct sg_ctx *c, const char *ip, const char *helo)
{
    memset(c, 0, sizeof *c);
    c->conn.session_id = "S1";
    c->conn.client_addr = ip;
    c->conn.helo = helo;
    c->conn.host_name = "gate.test";
    c->env.tx_id = "S1.1";
}

static void ctx_end(struct sg_ctx *c)
{
    fake_set_msg(c, NULL, NULL);
    fake_set_conn(c, NULL, NULL);
}

/* ---- tests ---- */

static void test_descriptor(void **state)
{
    (void)state;
    assert_int_equal(smtpgate_plugin.abi_version, SG_PLUGIN_ABI_VERSION);
    assert_string_equal(smtpgate_plugin.name, "spf");
    /* checks wait on the connection's loop: nothing goes to the work pool */
    assert_int_equal(smtpgate_plugin.blocking_stages, 0);
    for (const struct sg_option *o = smtpgate_plugin.options; o->name; o++)
        if (o->check != NULL && o->def != NULL && o->type == SG_OPT_STRING) {
            char v[64];
            snprintf(v, sizeof v, "%s", o->def + 1);
            v[strlen(v) - 1] = '\0';
            assert_null(o->check(v));
        }
}

/* HELO goes to the pool only when it is checked, RCPT only when decided
 * there; a host timeout within dns_timeout is warned of, the config kept. */
static void test_stages_and_timeout_warning(void **state)
{
    (void)state;
    static const struct {
        const char *helo_check, *decide_at;
        unsigned want;
    } cases[] = {
        {"false", "mail", SG_STAGE_BIT(SG_STAGE_MAIL) | SG_STAGE_BIT(SG_STAGE_EOM)},
        {"true", "mail",
         SG_STAGE_BIT(SG_STAGE_HELO) | SG_STAGE_BIT(SG_STAGE_MAIL) | SG_STAGE_BIT(SG_STAGE_EOM)},
        {"false", "rcpt",
         SG_STAGE_BIT(SG_STAGE_MAIL) | SG_STAGE_BIT(SG_STAGE_RCPT) | SG_STAGE_BIT(SG_STAGE_EOM)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kv kv[] = {{"helo_check", cases[i].helo_check},
                          {"decide_at", cases[i].decide_at},
                          {"dns_timeout", "5"},
                          {NULL, NULL}};
        struct sg_section sec = {.kv = kv};
        void *inst = NULL;
        assert_int_equal(smtpgate_plugin.init(&host, &sec, &inst), 0);
        assert_true(sec.stages_set);
        assert_int_equal(sec.stages, cases[i].want);
        assert_string_equal(sec.warnings, "");
        smtpgate_plugin.fini(inst);
    }
    for (int at = 0; at < 2; at++) {
        struct kv kv[] = {{"dns_timeout", "5"}, {NULL, NULL}};
        struct sg_section sec = {.kv = kv, .timeout_s = at ? 5 : 4};
        void *inst = NULL;
        assert_int_equal(smtpgate_plugin.init(&host, &sec, &inst), 0);
        assert_non_null(strstr(sec.warnings, "dns_timeout: 5s is not below the plugin's timeout"));
        smtpgate_plugin.fini(inst);
    }
}

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        struct kv kv;
        const char *key;
    } bad[] = {
        {{"nameserver", "dns.example:53"}, "nameserver"},
        {{"nameserver", "127.0.0.1:99999"}, "nameserver"},
        {{"on_fail", "bounce"}, "on_fail"},
        {{"decide_at", "data"}, "decide_at"},
        {{"exempt_networks", "10.0.0.0/8,192.0.2.0/33"}, "exempt_networks"},
        {{"exempt_domains", "not a domain"}, "exempt_domains"},
        {{"trusted_forwarders", "999.1.1.1/8"}, "trusted_forwarders"},
        {{"authserv_id", "mx test"}, "authserv_id"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct kv kv[2] = {bad[i].kv, {NULL, NULL}};
        struct sg_section sec = {.kv = kv};
        void *inst = NULL;
        assert_int_equal(smtpgate_plugin.init(&host, &sec, &inst), -1);
        if (strncmp(sec.errors, bad[i].key, strlen(bad[i].key)) != 0)
            fail_msg("%s=%s: error '%s'", bad[i].kv.key, bad[i].kv.value, sec.errors);
        assert_null(inst);
    }
    /* numbers: the host refuses what is outside the declared range before
     * init runs (dns_timeout = 0, dns_cache_bits = 17: test_spf_proxy.py) */
    const struct sg_option *o = smtpgate_plugin.options;
    for (; o->name && strcmp(o->name, "dns_timeout") != 0; o++)
        ;
    assert_int_equal(o->type, SG_OPT_FLOAT);
    assert_true(o->min == 0.1 && o->max == 120);
    for (o = smtpgate_plugin.options; o->name && strcmp(o->name, "dns_cache_bits") != 0; o++)
        ;
    assert_int_equal(o->type, SG_OPT_INT);
    assert_true(o->min == 0 && o->max == 16);
}

static void test_pass_tags_at_eom(void **state)
{
    (void)state;
    void *inst = load(NULL);
    struct sg_ctx c;
    ctx_init(&c, "192.0.2.1", "client.test");
    const struct sg_header hs[] = {
        {"Received", " from x", 7},
        {"Authentication-Results", " mx.test; spf=pass smtp.mailfrom=a@pass.test", 45},
        {"authentication-results", " other.test; spf=fail", 21},
        {"Authentication-Results", " (c) MX.TEST; dkim=pass", 23},
    };
    c.headers = hs;
    c.nheaders = 4;
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@pass.test", ""), SG_CONTINUE);
    assert_int_equal(smtpgate_plugin.rcpt(&c, inst, "rcpt@dest.test", ""), SG_CONTINUE);
    assert_int_equal(smtpgate_plugin.eom(&c, inst), SG_CONTINUE);
    /* the forged fields go first, the third before the first */
    assert_true(c.nedits == 4);
    assert_int_equal(c.edits[0].op, 'c');
    assert_int_equal(c.edits[0].index, 3);
    assert_true(c.edits[0].deleted);
    assert_int_equal(c.edits[1].index, 1);
    assert_int_equal(c.counters_forged, 2);
    assert_int_equal(c.edits[2].op, 'i');
    assert_string_equal(c.edits[2].name, "Received-SPF");
    assert_int_equal(c.edits[2].index, 0);
    assert_true(
        strncmp(c.edits[2].value, "pass (mx.test: domain of user@pass.test designates", 50) == 0);
    assert_non_null(strstr(c.edits[2].value, "client-ip=192.0.2.1;"));
    assert_non_null(strstr(c.edits[2].value, "helo=client.test;"));
    assert_string_equal(c.edits[3].name, "Authentication-Results");
    assert_string_equal(c.edits[3].value, "mx.test; spf=pass smtp.mailfrom=user@pass.test");
    assert_non_null(strstr(c.log, "result=pass"));
    ctx_end(&c);
    smtpgate_plugin.fini(inst);
}

static void test_fail_rejected_at_mail(void **state)
{
    (void)state;
    void *inst = load(NULL);
    struct sg_ctx c;
    ctx_init(&c, "192.0.2.9", "client.test");
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@fail.test", ""), SG_REJECT);
    assert_string_equal(c.reply, "550 5.7.23 192.0.2.9 is not allowed to send for fail.test");
    assert_int_equal(c.counters_rejected, 1);
    /* the result is a transaction symbol with its default score */
    assert_string_equal(c.symbol, "SPF_FAIL");
    assert_true(c.symbol_score == 2.0);
    assert_int_equal(c.symbol_scope, SG_SYMBOL_TRANSACTION);
    ctx_end(&c);
    /* softfail is tagged only */
    ctx_init(&c, "192.0.2.9", "client.test");
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@soft.test", ""), SG_CONTINUE);
    assert_string_equal(c.symbol, "SPF_SOFTFAIL");
    assert_true(c.symbol_score == 1.0);
    assert_int_equal(smtpgate_plugin.eom(&c, inst), SG_CONTINUE);
    assert_true(strncmp(c.edits[0].value, "softfail", 8) == 0);
    ctx_end(&c);
    /* permerror is tagged unless configured */
    ctx_init(&c, "192.0.2.9", "client.test");
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@bad.test", ""), SG_CONTINUE);
    ctx_end(&c);
    smtpgate_plugin.fini(inst);
    const struct kv perm[] = {{"on_permerror", "reject"}, {NULL, NULL}};
    inst = load(perm);
    ctx_init(&c, "192.0.2.9", "client.test");
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@bad.test", ""), SG_REJECT);
    assert_true(strncmp(c.reply, "550 5.7.24 ", 11) == 0);
    ctx_end(&c);
    smtpgate_plugin.fini(inst);
}

static void test_null_sender_and_helo(void **state)
{
    (void)state;
    void *inst = load(NULL);
    struct sg_ctx c;
    ctx_init(&c, "192.0.2.7", "helo.test");
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "", ""), SG_CONTINUE);
    assert_int_equal(smtpgate_plugin.eom(&c, inst), SG_CONTINUE);
    assert_non_null(strstr(c.edits[0].value, "identity=helo"));
    assert_string_equal(c.edits[1].value, "mx.test; spf=pass smtp.helo=helo.test");
    ctx_end(&c);
    ctx_init(&c, "192.0.2.8", "helo.test");
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "", ""), SG_REJECT);
    assert_true(strncmp(c.reply, "550 5.7.23 ", 11) == 0);
    ctx_end(&c);
    smtpgate_plugin.fini(inst);

    /* helo_check: HELO fails, MAIL FROM passes: the stronger action wins */
    const struct kv hc[] = {{"helo_check", "true"}, {NULL, NULL}};
    inst = load(hc);
    ctx_init(&c, "192.0.2.8", "helo.test");
    assert_int_equal(smtpgate_plugin.helo(&c, inst), SG_CONTINUE);
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@pass.test", ""), SG_REJECT);
    assert_non_null(strstr(c.reply, "postmaster@helo.test"));
    ctx_end(&c);
    ctx_init(&c, "192.0.2.7", "helo.test");
    assert_int_equal(smtpgate_plugin.helo(&c, inst), SG_CONTINUE);
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@pass.test", ""), SG_CONTINUE);
    assert_int_equal(smtpgate_plugin.eom(&c, inst), SG_CONTINUE);
    assert_int_equal(c.nedits, 3);
    assert_string_equal(c.edits[2].value, "mx.test; spf=pass smtp.mailfrom=user@pass.test;\r\n"
                                          "\tspf=pass smtp.helo=helo.test");
    ctx_end(&c);
    smtpgate_plugin.fini(inst);
}

static void test_exemptions(void **state)
{
    (void)state;
    const struct kv ex[] = {{"exempt_networks", "203.0.113.0/24,2001:db8::/32"},
                            {"exempt_domains", "fail.test"},
                            {"trusted_forwarders", "198.51.100.0/24,relay.test"},
                            {NULL, NULL}};
    void *inst = load(ex);
    struct sg_ctx c;
    const char *clients[] = {"203.0.113.5", "2001:db8::5", "198.51.100.77"};
    for (size_t i = 0; i < 3; i++) {
        ctx_init(&c, clients[i], "client.test");
        assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@soft.test", ""), SG_CONTINUE);
        assert_int_equal(smtpgate_plugin.eom(&c, inst), SG_CONTINUE);
        assert_int_equal(c.nedits, 0);
        assert_non_null(strstr(c.log, "not checked"));
        ctx_end(&c);
    }
    ctx_init(&c, "192.0.2.200", "client.test");
    c.conn.client_name = "mx1.relay.test";
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@soft.test", ""), SG_CONTINUE);
    ctx_end(&c);
    ctx_init(&c, "192.0.2.200", "client.test");
    c.conn.client_name = "relay.test";
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@soft.test", ""), SG_CONTINUE);
    assert_non_null(strstr(c.log, "trusted forwarder"));
    ctx_end(&c);
    /* exempt sender domain, and an authenticated client */
    ctx_init(&c, "192.0.2.200", "client.test");
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@fail.test", ""), SG_CONTINUE);
    ctx_end(&c);
    smtpgate_plugin.fini(inst);
    inst = load(NULL);
    ctx_init(&c, "192.0.2.200", "client.test");
    c.conn.login = "alice";
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@fail.test", ""), SG_CONTINUE);
    assert_non_null(strstr(c.log, "authenticated"));
    ctx_end(&c);
    /* the default exempts loopback */
    ctx_init(&c, "127.0.0.1", "client.test");
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@fail.test", ""), SG_CONTINUE);
    ctx_end(&c);
    smtpgate_plugin.fini(inst);
}

static void test_decide_at_rcpt_and_eom(void **state)
{
    (void)state;
    const struct kv rc[] = {{"decide_at", "rcpt"}, {NULL, NULL}};
    void *inst = load(rc);
    struct sg_ctx c;
    ctx_init(&c, "192.0.2.9", "client.test");
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@fail.test", ""), SG_CONTINUE);
    assert_int_equal(smtpgate_plugin.rcpt(&c, inst, "someone@dest.test", ""), SG_REJECT);
    assert_true(strncmp(c.reply, "550 5.7.23 ", 11) == 0);
    assert_int_equal(smtpgate_plugin.rcpt(&c, inst, "Postmaster@dest.test", ""), SG_CONTINUE);
    assert_int_equal(smtpgate_plugin.eom(&c, inst), SG_CONTINUE);
    assert_true(strncmp(c.edits[0].value, "fail", 4) == 0);
    ctx_end(&c);
    smtpgate_plugin.fini(inst);
    const struct kv eo[] = {{"decide_at", "eom"}, {NULL, NULL}};
    inst = load(eo);
    ctx_init(&c, "192.0.2.9", "client.test");
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@fail.test", ""), SG_CONTINUE);
    assert_int_equal(smtpgate_plugin.rcpt(&c, inst, "someone@dest.test", ""), SG_CONTINUE);
    assert_int_equal(smtpgate_plugin.eom(&c, inst), SG_REJECT);
    assert_true(strncmp(c.reply, "550 5.7.23 ", 11) == 0);
    ctx_end(&c);
    smtpgate_plugin.fini(inst);
}

static void test_temperror_when_dns_is_gone(void **state)
{
    (void)state;
    /* a UDP port with nothing behind it: refused at once, temperror */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof sin;
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &l), 0);
    char ns[64];
    snprintf(ns, sizeof ns, "127.0.0.1:%d", ntohs(sin.sin_port));
    close(fd);
    const struct kv gone[] = {{"nameserver", ns}, {"dns_timeout", "1"}, {NULL, NULL}};
    struct kv kv[4] = {gone[0], gone[1], {"authserv_id", "mx.test"}, {NULL, NULL}};
    struct sg_section sec = {.kv = kv};
    void *inst = NULL;
    assert_int_equal(smtpgate_plugin.init(&host, &sec, &inst), 0);
    struct sg_ctx c;
    ctx_init(&c, "192.0.2.9", "client.test");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@pass.test", ""), SG_TEMPFAIL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_true(b.tv_sec - a.tv_sec <= 1);
    assert_true(strncmp(c.reply, "451 4.7.24 ", 11) == 0);
    ctx_end(&c);
    smtpgate_plugin.fini(inst);
}

static void test_reload_keeps_dns(void **state)
{
    (void)state;
    void *a = load(NULL);
    struct kv kv[4];
    snprintf(ns_opt, sizeof ns_opt, "127.0.0.1:%d", dns_port);
    kv[0] = (struct kv){"nameserver", ns_opt};
    kv[1] = (struct kv){"authserv_id", "mx.test"};
    kv[2] = (struct kv){"dns_timeout", "1.5"};
    kv[3] = (struct kv){NULL, NULL};
    struct sg_section sec = {.kv = kv};
    void *b = NULL;
    assert_int_equal(smtpgate_plugin.reload(&host, &sec, a, &b), 0);
    smtpgate_plugin.fini(a); /* the old one ends first; b's DNS lives on */
    struct sg_ctx c;
    ctx_init(&c, "192.0.2.1", "client.test");
    assert_int_equal(smtpgate_plugin.mail(&c, b, "user@pass.test", ""), SG_CONTINUE);
    assert_non_null(strstr(c.log, "result=pass"));
    ctx_end(&c);
    smtpgate_plugin.fini(b);
}

/* A pending verdict: the loop runs until it is resolved (within 10 s). */
static enum sg_verdict settle(struct sg_ctx *c, enum sg_verdict v)
{
    if (v != SG_PENDING)
        return v;
    for (int i = 0; i < 1000 && !c->resolved; i++) {
        struct timeval tick = {.tv_usec = 10000};
        event_base_loopexit(c->base, &tick);
        event_base_dispatch(c->base);
    }
    assert_true(c->resolved);
    /* Everything of the check is gone from the loop. */
    assert_int_equal(event_base_get_num_events(c->base, EVENT_BASE_COUNT_ADDED |
                                                            EVENT_BASE_COUNT_ACTIVE),
                     0);
    c->resolved = false;
    return c->verdict;
}

static void test_checks_on_the_loop(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    void *inst = load(NULL);
    struct sg_ctx c;
    ctx_init(&c, "192.0.2.9", "client.test");
    c.base = base;
    c.outlives = true;
    enum sg_verdict v = smtpgate_plugin.mail(&c, inst, "user@fail.test", "");
    assert_int_equal(v, SG_PENDING);
    assert_int_equal(settle(&c, v), SG_REJECT);
    assert_string_equal(c.reply, "550 5.7.23 192.0.2.9 is not allowed to send for fail.test");
    assert_int_equal(c.counters_rejected, 1);
    assert_non_null(strstr(c.log, "result=fail mechanism=-all"));
    ctx_end(&c);
    ctx_init(&c, "192.0.2.9", "client.test");
    c.base = base;
    c.outlives = true;
    assert_int_equal(settle(&c, smtpgate_plugin.mail(&c, inst, "user@soft.test", "")),
                     SG_CONTINUE);
    assert_int_equal(smtpgate_plugin.eom(&c, inst), SG_CONTINUE);
    assert_true(strncmp(c.edits[0].value, "softfail", 8) == 0);
    ctx_end(&c);
    /* A loop that ends with its connection: the check blocks instead. */
    ctx_init(&c, "192.0.2.9", "client.test");
    c.base = base;
    c.outlives = false;
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "user@fail.test", ""), SG_REJECT);
    ctx_end(&c);
    smtpgate_plugin.fini(inst);

    /* helo_check: both identities on the loop, the stronger action wins */
    const struct kv hc[] = {{"helo_check", "true"}, {NULL, NULL}};
    inst = load(hc);
    ctx_init(&c, "192.0.2.8", "helo.test");
    c.base = base;
    c.outlives = true;
    v = smtpgate_plugin.helo(&c, inst);
    assert_int_equal(v, SG_PENDING);
    assert_int_equal(settle(&c, v), SG_CONTINUE);
    v = smtpgate_plugin.mail(&c, inst, "user@pass.test", "");
    assert_int_equal(v, SG_PENDING);
    assert_int_equal(settle(&c, v), SG_REJECT);
    assert_non_null(strstr(c.reply, "postmaster@helo.test"));
    ctx_end(&c);
    /* the null sender takes the HELO result without a second check */
    ctx_init(&c, "192.0.2.7", "helo.test");
    c.base = base;
    c.outlives = true;
    assert_int_equal(settle(&c, smtpgate_plugin.helo(&c, inst)), SG_CONTINUE);
    assert_int_equal(smtpgate_plugin.mail(&c, inst, "", ""), SG_CONTINUE);
    assert_int_equal(smtpgate_plugin.eom(&c, inst), SG_CONTINUE);
    assert_string_equal(c.edits[1].value, "mx.test; spf=pass smtp.helo=helo.test");
    ctx_end(&c);
    smtpgate_plugin.fini(inst);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_stages_and_timeout_warning),
        cmocka_unit_test(test_pass_tags_at_eom),
        cmocka_unit_test(test_fail_rejected_at_mail),
        cmocka_unit_test(test_null_sender_and_helo),
        cmocka_unit_test(test_exemptions),
        cmocka_unit_test(test_decide_at_rcpt_and_eom),
        cmocka_unit_test(test_temperror_when_dns_is_gone),
        cmocka_unit_test(test_reload_keeps_dns),
        cmocka_unit_test(test_checks_on_the_loop),
    };
    return cmocka_run_group_tests(tests, dns_start, dns_end);
}
