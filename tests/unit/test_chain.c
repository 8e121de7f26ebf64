/*
 * Unit tests for the chain engine: verdict merging, per-recipient refusals,
 * accept, discard, bad verdicts and replies, pending verdicts resolved from
 * another thread, timeouts, blocking callbacks on the work pool, and edits
 * recorded at end of message, and the event loop handed to plugins.  The plugins are descriptors defined here, put
 * in a chain the way plugin_host builds one, so that each case states the
 * plugins' behaviour next to its assertions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chain/chain.h"
#include "chain/instance.h"
#include "chain/host_api.h"
#include "chain/workpool.h"

/* ---- test plugins ---- */

struct behaviour {
    enum sg_verdict mail, rcpt, eom;
    const char *reply;
    const char *refuse_rcpt;
    int mail_calls, rcpt_calls, eom_calls, abort_calls, close_calls, header_calls, body_calls;
    size_t body_octets;
    bool edit;
    unsigned resolve_after_ms; /* rcpt: pending, resolved from a thread */
    bool never_resolve;        /* rcpt: pending, resolved only when the test says */
    struct sg_ctx *held;
};

static const struct sg_host *H = &host_api_table;

static enum sg_verdict t_mail(struct sg_ctx *ctx, void *inst, const char *from, const char *p)
{
    (void)from;
    (void)p;
    struct behaviour *b = inst;
    b->mail_calls++;
    if (b->reply)
        H->set_reply(ctx, b->reply);
    return b->mail;
}

struct later {
    struct sg_ctx *ctx;
    unsigned ms;
};

static void *t_resolver(void *arg)
{
    struct later *l = arg;
    usleep(l->ms * 1000);
    H->resolve(l->ctx, SG_REJECT, "550 5.7.1 decided later");
    free(l);
    return NULL;
}

static enum sg_verdict t_rcpt(struct sg_ctx *ctx, void *inst, const char *rcpt, const char *p)
{
    (void)p;
    struct behaviour *b = inst;
    b->rcpt_calls++;
    if (b->resolve_after_ms) {
        struct later *l = malloc(sizeof(*l));
        l->ctx = ctx;
        l->ms = b->resolve_after_ms;
        pthread_t t;
        pthread_create(&t, NULL, t_resolver, l);
        pthread_detach(t);
        return SG_PENDING;
    }
    if (b->never_resolve) {
        b->held = ctx;
        return SG_PENDING;
    }
    if (b->refuse_rcpt && strcmp(rcpt, b->refuse_rcpt) == 0) {
        H->set_reply(ctx, "550 5.1.1 no such user");
        return SG_REJECT;
    }
    return b->rcpt;
}

static enum sg_verdict t_header(struct sg_ctx *ctx, void *inst, const struct sg_header *h)
{
    (void)ctx;
    (void)h;
    ((struct behaviour *)inst)->header_calls++;
    return SG_CONTINUE;
}

static enum sg_verdict t_body(struct sg_ctx *ctx, void *inst, const void *chunk, size_t len)
{
    (void)ctx;
    (void)chunk;
    struct behaviour *b = inst;
    b->body_calls++;
    b->body_octets += len;
    return SG_CONTINUE;
}

static enum sg_verdict t_eom(struct sg_ctx *ctx, void *inst)
{
    struct behaviour *b = inst;
    b->eom_calls++;
    if (b->edit) {
        assert_int_equal(H->add_header(ctx, "X-Test", "yes"), 0);
        assert_int_equal(H->add_header(ctx, "Bad Name", "x"), -1);
        assert_int_equal(H->add_header(ctx, "X-Inject", "a\r\nB: c"), -1);
        assert_int_equal(H->change_from(ctx, "new@example.test", NULL), 0);
        assert_int_equal(H->replace_body(ctx, "a\nb\r", 4), 0);
    }
    if (b->reply)
        H->set_reply(ctx, b->reply);
    return b->eom;
}

static void t_abort(struct sg_ctx *ctx, void *inst)
{
    (void)ctx;
    ((struct behaviour *)inst)->abort_calls++;
}

static void t_close(struct sg_ctx *ctx, void *inst)
{
    (void)ctx;
    ((struct behaviour *)inst)->close_calls++;
}

static const struct sg_plugin t_desc = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "t",
    .init = NULL,
    .mail = t_mail,
    .rcpt = t_rcpt,
    .header = t_header,
    .body = t_body,
    .eom = t_eom,
    .abort = t_abort,
    .close = t_close,
};

static const struct sg_plugin t_blocking_desc = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "tb",
    .blocking_stages = SG_STAGE_BIT(SG_STAGE_MAIL),
    .mail = t_mail,
};

/* A chain as plugin_host builds one, of n test plugins. */
static struct chain *t_chain(struct behaviour *b, size_t n, const struct sg_plugin *desc)
{
    struct chain *ch = calloc(1, sizeof(*ch));
    ch->plugins = calloc(n, sizeof(*ch->plugins));
    atomic_init(&ch->refs, 1);
    ch->generation = 7;
    ch->n = n;
    for (size_t i = 0; i < n; i++) {
        struct plugin_inst *p = &ch->plugins[i];
        char name[16];
        snprintf(name, sizeof(name), "p%zu", i);
        p->name = strdup(name);
        p->path = strdup("-");
        p->desc = desc;
        p->instance = &b[i];
        p->index = i;
        p->timeout_ms = 200;
        p->failure_verdict = SG_TEMPFAIL;
        pthread_mutex_init(&p->counters_lock, NULL);
        for (int st = 0; st < SG_STAGE__COUNT; st++)
            if (chain_plugin_has(desc, (enum sg_stage)st))
                ch->stage_mask |= SG_STAGE_BIT(st);
    }
    return ch;
}

struct notifier {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int count;
};

static void t_notify(void *arg)
{
    struct notifier *n = arg;
    pthread_mutex_lock(&n->lock);
    n->count++;
    pthread_cond_signal(&n->cond);
    pthread_mutex_unlock(&n->lock);
}

static void t_wait_notify(struct notifier *n, int count)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&n->lock);
    while (n->count < count)
        if (pthread_cond_timedwait(&n->cond, &n->lock, &until) != 0)
            break;
    int got = n->count;
    pthread_mutex_unlock(&n->lock);
    assert_true(got >= count);
}

static struct notifier notes = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static struct chain_conn *t_conn(struct chain *ch)
{
    struct sg_conn_info info = {.session_id = "SID", .client_addr = "192.0.2.1", .client_port = 1};
    struct chain_front front = {.notify = t_notify, .arg = &notes};
    struct chain_conn *c = chain_conn_new(ch, &info, &front, 1 << 20, "/tmp");
    assert_non_null(c);
    chain_tx_begin(c, "SID.1");
    chain_tx_set_mail(c, "s@example.test", "");
    return c;
}

static void t_done(struct chain *ch, struct chain_conn *c)
{
    chain_tx_end(c);
    chain_conn_release(c);
    chain_unref(ch);
}

/* ---- cases ---- */

static void test_first_refusal_decides(void **state)
{
    (void)state;
    struct behaviour b[3] = {{.mail = SG_CONTINUE},
                             {.mail = SG_REJECT, .reply = "553 5.7.1 go away"},
                             {.mail = SG_CONTINUE}};
    struct chain *ch = t_chain(b, 3, &t_desc);
    struct chain_conn *c = t_conn(ch);
    struct chain_result res;
    assert_int_equal(chain_run(c, SG_STAGE_MAIL, "s@example.test", "", &res), CHAIN_DONE);
    assert_int_equal(res.action, CHAIN_REFUSE);
    assert_string_equal(res.reply, "553 5.7.1 go away");
    assert_string_equal(res.decided_by, "p1");
    assert_int_equal(b[2].mail_calls, 0);
    char summary[256];
    chain_tx_summary(c, summary, sizeof(summary));
    assert_non_null(strstr(summary, "chain=7 decided=p1 verdict=reject filters=p0:"));
    t_done(ch, c);
    assert_int_equal(b[0].abort_calls, 1);
    assert_int_equal(b[0].close_calls, 0); /* connect never ran: no close is owed */
}

static void test_rcpt_refusal_is_per_recipient(void **state)
{
    (void)state;
    struct behaviour b[1] = {{.refuse_rcpt = "bad@example.test"}};
    struct chain *ch = t_chain(b, 1, &t_desc);
    struct chain_conn *c = t_conn(ch);
    struct chain_result res;
    chain_run(c, SG_STAGE_RCPT, "bad@example.test", "", &res);
    assert_int_equal(res.action, CHAIN_REFUSE);
    assert_string_equal(res.reply, "550 5.1.1 no such user");
    chain_run(c, SG_STAGE_RCPT, "good@example.test", "", &res);
    assert_int_equal(res.action, CHAIN_PASS);
    t_done(ch, c);
}

static void test_accept_skips_later_plugins(void **state)
{
    (void)state;
    struct behaviour b[2] = {{.mail = SG_ACCEPT}, {.mail = SG_REJECT, .eom = SG_REJECT}};
    struct chain *ch = t_chain(b, 2, &t_desc);
    struct chain_conn *c = t_conn(ch);
    struct chain_result res;
    chain_run(c, SG_STAGE_MAIL, "s@example.test", "", &res);
    assert_int_equal(res.action, CHAIN_PASS);
    assert_int_equal(b[1].mail_calls, 0);
    struct msg_store *store = msg_store_new(1 << 20, "/tmp");
    struct msg_headers h;
    msg_headers_init(&h, 4096, 100);
    const char msg[] = "A: 1\r\n\r\nbody\r\n";
    msg_store_append(store, msg, sizeof(msg) - 1);
    msg_headers_feed(&h, msg, sizeof(msg) - 1);
    msg_headers_finish(&h);
    struct chain_content content = {store, &h};
    assert_int_equal(chain_run_message(c, &content, &res), CHAIN_DONE);
    assert_int_equal(res.action, CHAIN_PASS);
    assert_int_equal(b[0].eom_calls, 1);
    assert_int_equal(b[0].header_calls, 1);
    assert_int_equal(b[0].body_octets, 6);
    assert_int_equal(b[1].eom_calls, 0);
    t_done(ch, c);
    msg_store_free(store);
    msg_headers_free(&h);
}

static void test_discard_at_rcpt_decides_message(void **state)
{
    (void)state;
    struct behaviour b[2] = {{.rcpt = SG_DISCARD}, {.rcpt = SG_CONTINUE}};
    struct chain *ch = t_chain(b, 2, &t_desc);
    struct chain_conn *c = t_conn(ch);
    struct chain_result res;
    chain_run(c, SG_STAGE_RCPT, "a@example.test", "", &res);
    assert_int_equal(res.action, CHAIN_PASS);
    struct msg_store *store = msg_store_new(1 << 20, "/tmp");
    struct chain_content content = {store, NULL};
    chain_run_message(c, &content, &res);
    assert_int_equal(res.action, CHAIN_DISCARD);
    assert_int_equal(b[0].eom_calls + b[1].eom_calls, 0);
    t_done(ch, c);
    msg_store_free(store);
}

static void test_bad_verdict_and_reply(void **state)
{
    (void)state;
    struct behaviour b[2] = {{.mail = (enum sg_verdict)99}, {.mail = SG_CONTINUE}};
    struct chain *ch = t_chain(b, 2, &t_desc);
    struct chain_conn *c = t_conn(ch);
    struct chain_result res;
    chain_run(c, SG_STAGE_MAIL, "s@example.test", "", &res);
    assert_int_equal(res.action, CHAIN_REFUSE); /* failure verdict: tempfail */
    assert_string_equal(res.reply, "451 4.7.1 Temporary failure, try again later");
    t_done(ch, c);

    /* a 5xx reply with a tempfail verdict does not fit: the default is used */
    struct behaviour b2[1] = {{.mail = SG_TEMPFAIL, .reply = "550 5.7.1 wrong class"}};
    ch = t_chain(b2, 1, &t_desc);
    c = t_conn(ch);
    chain_run(c, SG_STAGE_MAIL, "s@example.test", "", &res);
    assert_string_equal(res.reply, "451 4.7.1 Temporary failure, try again later");
    t_done(ch, c);

    /* multi-line, enhanced code added where missing; a mismatched one refused */
    struct behaviour b3[1] = {{.mail = SG_REJECT, .reply = "550 first\n550 5.7.1 second"}};
    ch = t_chain(b3, 1, &t_desc);
    c = t_conn(ch);
    chain_run(c, SG_STAGE_MAIL, "s@example.test", "", &res);
    assert_string_equal(res.reply, "550-5.7.1 first\r\n550 5.7.1 second");
    t_done(ch, c);
    struct behaviour b4[1] = {{.mail = SG_REJECT, .reply = "550 4.7.1 mixed classes"}};
    ch = t_chain(b4, 1, &t_desc);
    c = t_conn(ch);
    chain_run(c, SG_STAGE_MAIL, "s@example.test", "", &res);
    assert_string_equal(res.reply, "550 5.7.1 Sender address refused");
    t_done(ch, c);
}

static void test_pending_resolved_from_another_thread(void **state)
{
    (void)state;
    struct behaviour b[1] = {{.resolve_after_ms = 50}};
    struct chain *ch = t_chain(b, 1, &t_desc);
    struct chain_conn *c = t_conn(ch);
    struct chain_result res;
    int before = notes.count;
    assert_int_equal(chain_run(c, SG_STAGE_RCPT, "a@example.test", "", &res), CHAIN_WAIT);
    assert_int_equal(chain_wait_ms(c), 200);
    t_wait_notify(&notes, before + 1);
    assert_int_equal(chain_resume(c, &res), CHAIN_DONE);
    assert_int_equal(res.action, CHAIN_REFUSE);
    assert_string_equal(res.reply, "550 5.7.1 decided later");
    t_done(ch, c);
}

static void test_timeout_then_late_resolve(void **state)
{
    (void)state;
    struct behaviour b[2] = {{.never_resolve = true}, {.rcpt = SG_CONTINUE}};
    struct chain *ch = t_chain(b, 2, &t_desc);
    ch->plugins[0].failure_verdict = SG_CONTINUE;
    struct chain_conn *c = t_conn(ch);
    struct chain_result res;
    assert_int_equal(chain_run(c, SG_STAGE_RCPT, "a@example.test", "", &res), CHAIN_WAIT);
    assert_int_equal(chain_resume(c, &res), CHAIN_WAIT); /* nothing yet */
    chain_expire(c);
    assert_int_equal(chain_resume(c, &res), CHAIN_DONE);
    assert_int_equal(res.action, CHAIN_PASS);
    assert_int_equal(b[1].rcpt_calls, 1);
    assert_true(chain_busy(c)); /* the abandoned call is still out */
    /* the same plugin is asked again while its old call is out: a fresh ctx */
    b[0].never_resolve = false;
    b[0].rcpt = SG_CONTINUE;
    assert_int_equal(chain_run(c, SG_STAGE_RCPT, "b@example.test", "", &res), CHAIN_DONE);
    /* the connection ends before the late answer: nothing may break */
    struct chain_conn *keep = c;
    chain_tx_end(c);
    chain_conn_release(c);
    H->resolve(b[0].held, SG_REJECT, NULL); /* frees the abandoned ctx and the connection */
    (void)keep;
    chain_unref(ch);
}

static void test_blocking_callback_runs_on_pool(void **state)
{
    (void)state;
    struct behaviour b[1] = {{.mail = SG_REJECT, .reply = "550 5.7.1 from the pool"}};
    struct chain *ch = t_chain(b, 1, &t_blocking_desc);
    struct chain_conn *c = t_conn(ch);
    struct chain_result res;
    int before = notes.count;
    enum chain_status st = chain_run(c, SG_STAGE_MAIL, "s@example.test", "", &res);
    assert_int_equal(st, CHAIN_WAIT);
    t_wait_notify(&notes, before + 1);
    assert_int_equal(chain_resume(c, &res), CHAIN_DONE);
    assert_string_equal(res.reply, "550 5.7.1 from the pool");
    t_done(ch, c);
}

static void test_edits_recorded_at_eom_only(void **state)
{
    (void)state;
    struct behaviour b[1] = {{.eom = SG_CONTINUE, .edit = true}};
    struct chain *ch = t_chain(b, 1, &t_desc);
    struct chain_conn *c = t_conn(ch);
    struct msg_store *store = msg_store_new(1 << 20, "/tmp");
    struct chain_content content = {store, NULL};
    struct chain_result res;
    chain_run_message(c, &content, &res);
    const struct chain_tx_info *t = chain_tx_info(c);
    assert_int_equal(t->nedits, 2);
    assert_int_equal(t->edits[0].kind, EDIT_ADD_HEADER);
    assert_string_equal(t->edits[0].name, "X-Test");
    assert_int_equal(t->edits[1].kind, EDIT_CHANGE_FROM);
    assert_non_null(t->new_body);
    char body[16] = {0};
    assert_int_equal(msg_store_read(t->new_body, 0, body, sizeof(body)), 6);
    assert_memory_equal(body, "a\r\nb\r\n", 6); /* bare LF and CR made CRLF */
    t_done(ch, c);
    msg_store_free(store);
}

/* What a plugin sees of SG_HAS: the host's structs carry their size, and a
 * member past an older host's size reads as absent. */
struct has_seen {
    bool called;
    bool conn_host_name, conn_size_ok;
    bool tx_note;
};

static struct has_seen seen;

static enum sg_verdict t_has_mail(struct sg_ctx *ctx, void *inst, const char *from, const char *p)
{
    (void)inst;
    (void)from;
    (void)p;
    const struct sg_conn_info *ci = H->conn(ctx);
    seen.called = true;
    seen.conn_size_ok = ci->size == sizeof(struct sg_conn_info);
    seen.conn_host_name = SG_HAS(ci, host_name);
    seen.tx_note = SG_HAS(H, tx_note);
    if (seen.tx_note)
        H->tx_note(ctx, "read through SG_HAS");
    return SG_CONTINUE;
}

static const struct sg_plugin t_has_desc = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "th",
    .mail = t_has_mail,
};

static void test_size_prefixed_host_structs(void **state)
{
    (void)state;
    assert_int_equal(host_api_table.size, sizeof(struct sg_host));
    assert_true(SG_HAS(&host_api_table, tx_note));
    assert_true(SG_HAS(&host_api_table, replace_body));

    /* A host older than tx_note: the member is absent, the ones before it
     * are there. */
    struct sg_host older = host_api_table;
    older.size = offsetof(struct sg_host, tx_note);
    assert_false(SG_HAS(&older, tx_note));
    assert_true(SG_HAS(&older, counter_add));
    const struct sg_host *none = NULL;
    assert_false(SG_HAS(none, log));

    struct sg_conn_info short_info = {.size = offsetof(struct sg_conn_info, host_name)};
    assert_false(SG_HAS(&short_info, host_name));
    assert_true(SG_HAS(&short_info, tls_peer_fingerprint));

    /* The facts a connection hands its plugins carry the host's size,
     * whatever size the front-end's own copy said. */
    struct behaviour b[1] = {{0}};
    struct chain *ch = t_chain(b, 1, &t_has_desc);
    struct chain_conn *c = t_conn(ch);
    struct chain_result res;
    seen = (struct has_seen){0};
    assert_int_equal(chain_run(c, SG_STAGE_MAIL, "s@example.test", "", &res), CHAIN_DONE);
    assert_true(seen.called && seen.conn_size_ok && seen.conn_host_name && seen.tx_note);
    char summary[512];
    chain_tx_summary(c, summary, sizeof(summary));
    assert_non_null(strstr(summary, "p0=\"read through SG_HAS\""));
    t_done(ch, c);
}

/* host->event_loop: the front's base and what it said of its life, in a
 * callback on the connection's thread; NULL on the work pool. */
struct loop_seen {
    struct event_base *base;
    bool outlives;
    int calls;
};

static struct loop_seen loop_seen;

static enum sg_verdict t_loop_mail(struct sg_ctx *ctx, void *inst, const char *from,
                                   const char *p)
{
    (void)inst;
    (void)from;
    (void)p;
    loop_seen.calls++;
    loop_seen.outlives = !loop_seen.outlives;
    loop_seen.base = H->event_loop(ctx, &loop_seen.outlives);
    return SG_CONTINUE;
}

static const struct sg_plugin t_loop_desc = {
    .abi_version = SG_PLUGIN_ABI_VERSION, .name = "tl", .mail = t_loop_mail};
static const struct sg_plugin t_loop_blocking_desc = {.abi_version = SG_PLUGIN_ABI_VERSION,
                                                      .name = "tlb",
                                                      .blocking_stages =
                                                          SG_STAGE_BIT(SG_STAGE_MAIL),
                                                      .mail = t_loop_mail};

static void test_event_loop_is_the_fronts(void **state)
{
    (void)state;
    assert_true(SG_HAS(H, event_loop));
    struct event_base *base = (struct event_base *)&loop_seen; /* only compared */
    struct sg_conn_info info = {.session_id = "SID", .client_addr = "192.0.2.1"};
    struct chain_result res;
    for (int outlives = 0; outlives < 2; outlives++) {
        struct behaviour b[1] = {{0}};
        struct chain *ch = t_chain(b, 1, &t_loop_desc);
        struct chain_front front = {
            .notify = t_notify, .arg = &notes, .base = base, .base_outlives = outlives};
        struct chain_conn *c = chain_conn_new(ch, &info, &front, 1 << 20, "/tmp");
        chain_tx_begin(c, "SID.1");
        loop_seen = (struct loop_seen){.outlives = !outlives};
        assert_int_equal(chain_run(c, SG_STAGE_MAIL, "s@example.test", "", &res), CHAIN_DONE);
        assert_int_equal(loop_seen.calls, 1);
        assert_ptr_equal(loop_seen.base, base);
        assert_int_equal(loop_seen.outlives, outlives);
        t_done(ch, c);
    }

    /* On the work pool there is no loop; inline (the milter front) there is. */
    for (int inline_blocking = 0; inline_blocking < 2; inline_blocking++) {
        struct behaviour b[1] = {{0}};
        struct chain *ch = t_chain(b, 1, &t_loop_blocking_desc);
        struct chain_front front = {.notify = t_notify,
                                    .arg = &notes,
                                    .inline_blocking = inline_blocking,
                                    .base = base};
        struct chain_conn *c = chain_conn_new(ch, &info, &front, 1 << 20, "/tmp");
        chain_tx_begin(c, "SID.1");
        loop_seen = (struct loop_seen){0};
        int before = notes.count;
        enum chain_status st = chain_run(c, SG_STAGE_MAIL, "s@example.test", "", &res);
        if (st == CHAIN_WAIT) {
            t_wait_notify(&notes, before + 1);
            st = chain_resume(c, &res);
        }
        assert_int_equal(st, CHAIN_DONE);
        assert_int_equal(loop_seen.calls, 1);
        if (inline_blocking)
            assert_ptr_equal(loop_seen.base, base);
        else
            assert_null(loop_seen.base);
        t_done(ch, c);
    }
}

/* ---- symbols ---- */

static enum sg_verdict sym_mail(struct sg_ctx *ctx, void *inst, const char *from, const char *p)
{
    (void)inst;
    (void)from;
    (void)p;
    assert_int_equal(H->add_symbol(ctx, SG_SYMBOL_CONNECTION, "DNSBL_ZEN", 3, "zen.test"), 0);
    assert_int_equal(H->add_symbol(ctx, SG_SYMBOL_TRANSACTION, "SPF_FAIL", 1, NULL), 0);
    /* again: the score is replaced, the order kept */
    assert_int_equal(H->add_symbol(ctx, SG_SYMBOL_TRANSACTION, "SPF_FAIL", 2, "x\"y\n"), 0);
    assert_int_equal(H->add_symbol(ctx, SG_SYMBOL_TRANSACTION, "GREYLIST_PASS", -0.04, NULL), 0);
    /* refused: bad names, a score that is not a number, a scope that is not one */
    assert_int_equal(H->add_symbol(ctx, SG_SYMBOL_TRANSACTION, "9LIVES", 1, NULL), -1);
    assert_int_equal(H->add_symbol(ctx, SG_SYMBOL_TRANSACTION, "A-B", 1, NULL), -1);
    assert_int_equal(H->add_symbol(ctx, SG_SYMBOL_TRANSACTION, "", 1, NULL), -1);
    assert_int_equal(H->add_symbol(ctx, SG_SYMBOL_TRANSACTION, "NAN", NAN, NULL), -1);
    assert_int_equal(H->add_symbol(ctx, (enum sg_symbol_scope)7, "X", 1, NULL), -1);
    double sc = 0;
    assert_true(H->symbol_score(ctx, "SPF_FAIL", &sc));
    assert_true(sc == 2);
    assert_false(H->symbol_score(ctx, "SPF_PASS", &sc));
    assert_int_equal(H->symbol_count(ctx), 3);
    const struct sg_symbol *s0 = H->symbol_get(ctx, 0), *s1 = H->symbol_get(ctx, 1);
    assert_string_equal(s0->name, "DNSBL_ZEN");
    assert_string_equal(s0->detail, "zen.test");
    assert_string_equal(s0->plugin, "p0");
    assert_int_equal(s0->scope, SG_SYMBOL_CONNECTION);
    assert_string_equal(s1->name, "SPF_FAIL");
    assert_string_equal(s1->detail, "x?y?"); /* one line, no quote: it lands on the log line */
    assert_null(H->symbol_get(ctx, 3));
    assert_true(H->symbols_total(ctx) > 4.95 && H->symbols_total(ctx) < 4.97);
    return SG_CONTINUE;
}

static const struct sg_plugin sym_desc = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "sym",
    .mail = sym_mail,
};

static void test_symbols(void **state)
{
    (void)state;
    struct behaviour b[1] = {{0}};
    struct chain *ch = t_chain(b, 1, &sym_desc);
    struct chain_conn *c = t_conn(ch);
    struct chain_result res;
    assert_int_equal(chain_run(c, SG_STAGE_MAIL, "s@example.test", "", &res), CHAIN_DONE);
    assert_int_equal(res.action, CHAIN_PASS);
    char summary[512];
    chain_tx_summary(c, summary, sizeof(summary));
    const char *sym = strstr(summary, " symbols=");
    assert_non_null(sym);
    assert_string_equal(sym, " symbols=DNSBL_ZEN(3.0),SPF_FAIL(2.0),GREYLIST_PASS(0.0) score=5.0");
    /* the transaction's symbols end with it, the connection's stay */
    chain_tx_end(c);
    assert_int_equal(chain_symbol_count(c), 1);
    assert_string_equal(chain_symbol_get(c, 0)->name, "DNSBL_ZEN");
    assert_true(chain_symbols_total(c) == 3);
    chain_tx_begin(c, "SID.2");
    chain_tx_summary(c, summary, sizeof(summary));
    assert_non_null(strstr(summary, " symbols=DNSBL_ZEN(3.0) score=3.0"));
    /* a transaction symbol needs a transaction */
    chain_tx_end(c);
    chain_conn_release(c);
    chain_unref(ch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_refusal_decides),
        cmocka_unit_test(test_rcpt_refusal_is_per_recipient),
        cmocka_unit_test(test_accept_skips_later_plugins),
        cmocka_unit_test(test_discard_at_rcpt_decides_message),
        cmocka_unit_test(test_bad_verdict_and_reply),
        cmocka_unit_test(test_pending_resolved_from_another_thread),
        cmocka_unit_test(test_timeout_then_late_resolve),
        cmocka_unit_test(test_blocking_callback_runs_on_pool),
        cmocka_unit_test(test_edits_recorded_at_eom_only),
        cmocka_unit_test(test_size_prefixed_host_structs),
        cmocka_unit_test(test_event_loop_is_the_fronts),
        cmocka_unit_test(test_symbols),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    workpool_shutdown();
    return rc;
}
