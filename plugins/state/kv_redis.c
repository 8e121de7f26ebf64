/*
 * kv_redis - the Redis backend of the state layer (contract in kv.h), for
 * a fleet of smtpgate instances that share rates and greylist entries.
 *
 * hiredis's asynchronous API on its libevent adapter: every operation is
 * sent on the event loop of the connection that asks and answered from it,
 * so no thread ever waits for Redis.  One server connection per attached
 * loop (a worker's loop serves many SMTP sessions, which then share it),
 * kept in a table under a mutex; only the loop's own thread touches a
 * connection, the mutex guards the table alone.  The connection closes when
 * its last session detaches, on the loop's thread, so nothing of it
 * outlives a loop that is freed after its sessions (smtpgate-milter's, or a
 * worker's at shutdown); the next session opens a new one.
 *
 * Atomic operations: window and add run as Lua scripts (EVAL), so two
 * instances that count one key at the same moment both count; set and get
 * are single commands.  AUTH and SELECT are queued on a new connection
 * before any operation, so the operations behind them run authenticated in
 * the right database; a refused AUTH or SELECT drops the connection.
 *
 * Never a stalled session: each operation has a timer of redis_timeout on
 * the loop.  An operation that times out, or a connection that breaks,
 * drops the connection: every operation queued on it fails at once
 * (KV_FAILED), and the next operation opens a new one.  After a timeout, a
 * connection that could not be made, or a refused AUTH or SELECT, the loop
 * does not try again for KV_REDIS_RETRY_MS: operations meanwhile fail at
 * once rather than each waiting for a server that is not there.
 *
 * Assumes: the host's libevent is set up for threads (smtpgate calls
 * evthread_use_pthreads); kv_attach/kv_detach and every operation on a
 * loop come from that loop's thread.
 */
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_impl.h"
#include "kv_options.h"

#define KV_REDIS_RETRY_MS 1000

static const char WINDOW_SCRIPT[] =
    "local now = tonumber(ARGV[1]) local w = tonumber(ARGV[2]) local n = tonumber(ARGV[3]) "
    "local len = math.floor(w / n) if len < 1 then len = 1 end "
    "local cur = math.floor(now / len) "
    "redis.call('HINCRBY', KEYS[1], string.format('%d', cur), 1) "
    "local total = 0 "
    "local all = redis.call('HGETALL', KEYS[1]) "
    "for i = 1, #all, 2 do "
    "  if tonumber(all[i]) <= cur - n then redis.call('HDEL', KEYS[1], all[i]) "
    "  else total = total + tonumber(all[i + 1]) end "
    "end "
    "redis.call('PEXPIRE', KEYS[1], w) "
    "return total";

static const char ADD_SCRIPT[] =
    "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) "
    "if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "
    "return v";

struct kv_redis;

struct rconn {
    struct kv_redis *r;
    struct event_base *base;
    redisAsyncContext *ac; /* NULL: none open */
    unsigned users;
    int64_t retry_after_ms;
    struct rconn *next;
};

struct kv_redis {
    struct kv head;
    pthread_mutex_t lock;
    struct rconn *conns;
    bool is_unix;
    char host[128];
    int port;
    char *address, *password;
    long db;
    long timeout_ms;
};

enum rop_kind { ROP_INT, ROP_SET, ROP_GET };

struct rop {
    struct rconn *c;
    kv_done_fn done;
    void *arg;
    struct event *timer;
    enum rop_kind kind;
    bool timed_out;
};

static void conn_drop(struct rconn *c)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    c->retry_after_ms = kv_now_ms() + KV_REDIS_RETRY_MS;
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac); /* every queued operation's callback runs, with no reply */
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rconn *c = ac->data;
    if (status != REDIS_OK && c && c->ac == ac) {
        /* hiredis frees the context after this callback. */
        c->ac = NULL;
        c->retry_after_ms = kv_now_ms() + KV_REDIS_RETRY_MS;
    }
}

/* A connection that worked and broke (Redis restarted, a network blip):
 * the next operation connects again at once; if the server is really gone
 * that connect fails, and the pause starts then. */
static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct rconn *c = ac->data;
    if (c && c->ac == ac)
        c->ac = NULL;
}

/* AUTH and SELECT: anything but "OK" ends the connection. */
static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)privdata;
    const redisReply *rep = reply;
    struct rconn *c = ac->data;
    if (rep && rep->type == REDIS_REPLY_STATUS)
        return;
    if (c && c->ac == ac)
        conn_drop(c); /* in a callback: hiredis frees it when this returns */
}

static redisAsyncContext *conn_open(struct rconn *c)
{
    if (c->ac)
        return c->ac;
    if (kv_now_ms() < c->retry_after_ms)
        return NULL;
    struct kv_redis *r = c->r;
    redisAsyncContext *ac =
        r->is_unix ? redisAsyncConnectUnix(r->host) : redisAsyncConnect(r->host, r->port);
    if (!ac)
        return NULL;
    if (ac->err || redisLibeventAttach(ac, c->base) != REDIS_OK) {
        redisAsyncFree(ac);
        c->retry_after_ms = kv_now_ms() + KV_REDIS_RETRY_MS;
        return NULL;
    }
    ac->data = c;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    if (r->password && *r->password) {
        const char *argv[] = {"AUTH", r->password};
        size_t lens[] = {4, strlen(r->password)};
        redisAsyncCommandArgv(ac, on_setup_reply, NULL, 2, argv, lens);
    }
    if (r->db != 0) {
        char db[24];
        snprintf(db, sizeof(db), "%ld", r->db);
        const char *argv[] = {"SELECT", db};
        size_t lens[] = {6, strlen(db)};
        redisAsyncCommandArgv(ac, on_setup_reply, NULL, 2, argv, lens);
    }
    return c->ac;
}

static struct rconn *conn_find(struct kv_redis *r, struct event_base *base)
{
    pthread_mutex_lock(&r->lock);
    struct rconn *c = r->conns;
    while (c && c->base != base)
        c = c->next;
    pthread_mutex_unlock(&r->lock);
    return c;
}

static void redis_attach(struct kv *kv, struct event_base *base)
{
    struct kv_redis *r = (struct kv_redis *)kv;
    int64_t now = kv_now_ms();
    pthread_mutex_lock(&r->lock);
    struct rconn *c = NULL;
    for (struct rconn **pp = &r->conns; *pp;) {
        struct rconn *x = *pp;
        if (x->base == base) {
            c = x;
            pp = &x->next;
        } else if (x->users == 0 && x->retry_after_ms <= now) {
            *pp = x->next; /* a loop's pause is over: forget it */
            free(x);
        } else {
            pp = &x->next;
        }
    }
    if (!c && (c = calloc(1, sizeof(*c)))) {
        c->r = r;
        c->base = base;
        c->next = r->conns;
        r->conns = c;
    }
    if (c)
        c->users++;
    pthread_mutex_unlock(&r->lock);
}

static void redis_detach(struct kv *kv, struct event_base *base)
{
    struct kv_redis *r = (struct kv_redis *)kv;
    struct rconn *gone = NULL;
    redisAsyncContext *ac = NULL;
    int64_t now = kv_now_ms();
    pthread_mutex_lock(&r->lock);
    for (struct rconn **pp = &r->conns; *pp; pp = &(*pp)->next)
        if ((*pp)->base == base) {
            struct rconn *c = *pp;
            if (--c->users == 0) {
                ac = c->ac;
                c->ac = NULL;
                /* A loop in its pause after a failure keeps the entry (no
                 * connection), so that its next session fails at once
                 * too; attach forgets it once the pause is over. */
                if (c->retry_after_ms <= now) {
                    gone = c;
                    *pp = c->next;
                }
            }
            break;
        }
    pthread_mutex_unlock(&r->lock);
    if (ac) {
        /* Its callbacks must not find the entry, which may be gone. */
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    free(gone);
}

static enum kv_status reply_status(const struct rop *op, const redisReply *rep, long long *value)
{
    if (!rep)
        return KV_FAILED;
    switch (op->kind) {
    case ROP_INT:
        if (rep->type != REDIS_REPLY_INTEGER)
            return KV_FAILED;
        *value = rep->integer;
        return KV_OK;
    case ROP_SET:
        return rep->type == REDIS_REPLY_STATUS ? KV_OK : KV_FAILED;
    case ROP_GET:
        if (rep->type == REDIS_REPLY_NIL)
            return KV_ABSENT;
        if (rep->type == REDIS_REPLY_STRING) {
            char *end;
            *value = strtoll(rep->str, &end, 10);
            return end != rep->str && *end == '\0' ? KV_OK : KV_FAILED;
        }
        return KV_FAILED;
    }
    return KV_FAILED;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct rop *op = privdata;
    if (op->timed_out)
        return; /* the timer dropped the connection and reports, below */
    event_free(op->timer);
    long long value = 0;
    enum kv_status st = reply_status(op, reply, &value);
    kv_done_fn done = op->done;
    void *arg = op->arg;
    free(op);
    /* An error reply (a script that failed) leaves the connection usable;
     * no reply at all means it is gone, and hiredis says so itself. */
    done(arg, st, value);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rop *op = arg;
    op->timed_out = true;
    conn_drop(op->c);
    event_free(op->timer);
    kv_done_fn done = op->done;
    void *darg = op->arg;
    free(op);
    done(darg, KV_FAILED, 0);
}

static void redis_send(struct kv_redis *r, struct event_base *base, enum rop_kind kind, int argc,
                       const char **argv, const size_t *lens, kv_done_fn done, void *arg)
{
    struct rconn *c = conn_find(r, base);
    redisAsyncContext *ac = c ? conn_open(c) : NULL;
    struct rop *op = ac ? calloc(1, sizeof(*op)) : NULL;
    if (!op) {
        done(arg, KV_FAILED, 0);
        return;
    }
    op->c = c;
    op->done = done;
    op->arg = arg;
    op->kind = kind;
    op->timer = evtimer_new(base, on_timeout, op);
    struct timeval tv = {.tv_sec = r->timeout_ms / 1000, .tv_usec = (r->timeout_ms % 1000) * 1000};
    if (!op->timer || evtimer_add(op->timer, &tv) < 0) {
        if (op->timer)
            event_free(op->timer);
        free(op);
        done(arg, KV_FAILED, 0);
        return;
    }
    if (redisAsyncCommandArgv(ac, on_reply, op, argc, argv, lens) != REDIS_OK) {
        event_free(op->timer);
        free(op);
        done(arg, KV_FAILED, 0);
    }
}

static void redis_window(struct kv *kv, struct event_base *base, const char *key,
                         uint64_t window_ms, kv_done_fn done, void *arg)
{
    char now[24], w[24], n[8];
    snprintf(now, sizeof(now), "%lld", (long long)kv_now_ms());
    snprintf(w, sizeof(w), "%llu", (unsigned long long)window_ms);
    snprintf(n, sizeof(n), "%d", KV_WINDOW_SLOTS);
    const char *argv[] = {"EVAL", WINDOW_SCRIPT, "1", key, now, w, n};
    size_t lens[] = {4,        sizeof(WINDOW_SCRIPT) - 1, 1, strlen(key), strlen(now), strlen(w),
                     strlen(n)};
    redis_send((struct kv_redis *)kv, base, ROP_INT, 7, argv, lens, done, arg);
}

static void redis_add(struct kv *kv, struct event_base *base, const char *key, long long delta,
                      uint64_t ttl_ms, kv_done_fn done, void *arg)
{
    char d[24], t[24];
    snprintf(d, sizeof(d), "%lld", delta);
    snprintf(t, sizeof(t), "%llu", (unsigned long long)ttl_ms);
    const char *argv[] = {"EVAL", ADD_SCRIPT, "1", key, d, t};
    size_t lens[] = {4, sizeof(ADD_SCRIPT) - 1, 1, strlen(key), strlen(d), strlen(t)};
    redis_send((struct kv_redis *)kv, base, ROP_INT, 6, argv, lens, done, arg);
}

static void redis_set(struct kv *kv, struct event_base *base, const char *key, long long value,
                      uint64_t ttl_ms, kv_done_fn done, void *arg)
{
    char v[24], t[24];
    snprintf(v, sizeof(v), "%lld", value);
    snprintf(t, sizeof(t), "%llu", (unsigned long long)ttl_ms);
    const char *argv[] = {"SET", key, v, "PX", t};
    size_t lens[] = {3, strlen(key), strlen(v), 2, strlen(t)};
    redis_send((struct kv_redis *)kv, base, ROP_SET, ttl_ms ? 5 : 3, argv, lens, done, arg);
}

static void redis_get(struct kv *kv, struct event_base *base, const char *key, kv_done_fn done,
                      void *arg)
{
    const char *argv[] = {"GET", key};
    size_t lens[] = {3, strlen(key)};
    redis_send((struct kv_redis *)kv, base, ROP_GET, 2, argv, lens, done, arg);
}

static void redis_destroy(struct kv *kv)
{
    struct kv_redis *r = (struct kv_redis *)kv;
    /* Every session detached before the last reference went: no connection
     * is left, and none may be freed here, off its loop's thread. */
    while (r->conns) {
        struct rconn *c = r->conns;
        r->conns = c->next;
        free(c);
    }
    free(r->address);
    free(r->password);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static bool redis_same_config(const struct kv *kv, const struct kv_config *cfg)
{
    const struct kv_redis *r = (const struct kv_redis *)kv;
    const char *pw = cfg->redis_password ? cfg->redis_password : "";
    return cfg->backend == KV_REDIS && strcmp(cfg->redis, r->address) == 0 &&
           strcmp(pw, r->password) == 0 && cfg->redis_db == r->db &&
           cfg->redis_timeout_ms == r->timeout_ms;
}

static const struct kv_backend_ops redis_ops = {
    .name = "redis",
    .destroy = redis_destroy,
    .same_config = redis_same_config,
    .attach = redis_attach,
    .detach = redis_detach,
    .window = redis_window,
    .add = redis_add,
    .set = redis_set,
    .get = redis_get,
};

struct kv *kv_redis_open(const struct kv_config *cfg, char *err, size_t errlen)
{
    const char *why = NULL;
    struct kv_redis *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (kv_parse_redis_address(cfg->redis, &r->is_unix, r->host, sizeof(r->host), &r->port, &why) <
        0) {
        snprintf(err, errlen, "redis: %s", why);
        free(r);
        return NULL;
    }
    r->address = strdup(cfg->redis);
    r->password = strdup(cfg->redis_password ? cfg->redis_password : "");
    if (!r->address || !r->password) {
        free(r->address);
        free(r->password);
        free(r);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->db = cfg->redis_db;
    r->timeout_ms = cfg->redis_timeout_ms > 0 ? cfg->redis_timeout_ms : 500;
    r->head.ops = &redis_ops;
    pthread_mutex_init(&r->lock, NULL);
    return &r->head;
}
