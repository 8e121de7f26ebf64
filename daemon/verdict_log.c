/*
 * verdict_log - one JSON object per transaction, a line each, in the file
 * named by verdict_log: what the transaction line and the recipients' lines
 * say, as fields a log shipper reads without a grammar of its own.
 *
 * The line is built in a fixed buffer (json_out keeps it valid when cut) and
 * written with one write(2) on an O_APPEND descriptor, so lines from worker
 * threads never interleave.  The descriptor belongs to the runtime, opened
 * again at each reload: logrotate's SIGHUP lets the rotated file go.  The
 * same object goes to recent_tx for the status page.
 */
#include "daemon/verdict_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chain/chain.h"
#include "daemon/recent_tx.h"
#include "daemon/session_int.h"
#include "daemon/upstream.h"
#include "message/msg_store.h"
#include "util/json_out.h"

#define VERDICT_LINE_MAX 16384

static void verdict_log_chain(struct json_out *j, const struct chain_conn *c)
{
    unsigned generation;
    const char *decided_by, *verdict;
    chain_tx_decision(c, &generation, &decided_by, &verdict);
    json_out_key(j, "chain");
    json_out_int(j, generation);
    json_out_key(j, "decided_by");
    json_out_cstr(j, decided_by);
    json_out_key(j, "verdict");
    json_out_cstr(j, verdict);
    json_out_key(j, "plugin_ms");
    json_out_open(j, '{');
    const char *name;
    double ms;
    for (size_t i = 0; chain_tx_plugin_time(c, i, &name, &ms); i++) {
        if (ms < 0)
            continue;
        json_out_key(j, name);
        json_out_num(j, ms);
    }
    json_out_close(j);
    /* What the plugins scored, and the total the rules plugin acts on. */
    json_out_key(j, "symbols");
    json_out_open(j, '{');
    for (size_t i = 0; i < chain_symbol_count(c); i++) {
        const struct sg_symbol *sym = chain_symbol_get(c, i);
        json_out_key(j, sym->name);
        json_out_num(j, sym->score);
    }
    json_out_close(j);
    json_out_key(j, "score");
    json_out_num(j, chain_symbols_total(c));
}

void verdict_log_write(const struct session *s, const char *result, int code, const char *text,
                       const char *queued_as, double duration)
{
    int fd = s->rt->verdict_fd;
    if (fd < 0 && !recent_tx_enabled())
        return;
    char line[VERDICT_LINE_MAX];
    struct json_out j;
    json_out_init(&j, line, sizeof(line));

    char when[64]; /* any year gmtime_r gives fits */
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    json_out_key(&j, "time");
    json_out_cstr(&j, when);
    json_out_key(&j, "session");
    json_out_cstr(&j, s->id);
    json_out_key(&j, "client_name");
    json_out_cstr(&j, s->client.name ? s->client.name : "unknown");
    json_out_key(&j, "client_addr");
    json_out_cstr(&j, s->addr);
    json_out_key(&j, "client_port");
    json_out_int(&j, s->port);
    json_out_key(&j, "helo");
    json_out_cstr(&j, s->client.helo);
    json_out_key(&j, "from");
    json_out_cstr(&j, s->tx.mail_from ? s->tx.mail_from : "");
    json_out_key(&j, "rcpts");
    json_out_open(&j, '[');
    for (size_t i = 0; i < s->tx.nrcpts; i++)
        json_out_cstr(&j, s->tx.rcpts[i].mailbox ? s->tx.rcpts[i].mailbox : "");
    json_out_close(&j);
    json_out_key(&j, "rcpts_sent");
    json_out_int(&j, s->tx.rcpt_sent);
    json_out_key(&j, "size");
    json_out_int(&j, s->msg.store ? (int64_t)msg_store_size(s->msg.store) : 0);
    json_out_key(&j, "upstream");
    json_out_cstr(&j, s->up ? upstream_label(s->up) : NULL);
    json_out_key(&j, "result");
    json_out_cstr(&j, result);
    json_out_key(&j, "reply_code");
    json_out_int(&j, code);
    json_out_key(&j, "reply");
    json_out_cstr(&j, text);
    json_out_key(&j, "queued_as");
    json_out_cstr(&j, queued_as && queued_as[0] ? queued_as : NULL);
    if (s->chain)
        verdict_log_chain(&j, s->chain);
    json_out_key(&j, "duration");
    json_out_num(&j, duration);
    size_t n = json_out_finish(&j);
    recent_tx_add(line, n);
    if (fd < 0)
        return;
    ssize_t w = write(fd, line, n);
    (void)w; /* a full disk must not stop the mail; the daemon's log still has the line */
}
