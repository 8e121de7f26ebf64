/*
 * session_tx - the mail transaction: MAIL, RCPT, DATA and BDAT (their rows
 * of the command table), the message as it streams in, the end-of-message
 * verdict and the plugins' edits, and the transaction's log line.
 *
 * The message: after DATA, smtpgate answers 354 itself, decodes the data
 * (data_decoder: dot-unstuffing, end only at CRLF.CRLF, bare newline policy,
 * size and line limits while the data streams in) into a message store, and
 * only at the end sends it upstream.  The client's 250 is the upstream's 250
 * (session_relay.c); when the filters changed the envelope, the upstream gets
 * the new one in a new transaction first, every line of it or none (a line
 * that cannot be made fails the transaction with 451).
 *
 * A transaction is open (session_tx_open) from the moment MAIL goes upstream
 * until its final reply, a refusal or RSET; session_tx_reset() closes it.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/msg_edit.h"
#include "daemon/session_int.h"
#include "daemon/verdict_log.h"
#include "daemon/upstream.h"
#include "message/msg_view.h"
#include "message/quarantine.h"
#include "util/log.h"

/* ---- the transaction's life ---- */

bool session_tx_open(const struct session *s)
{
    return s->state == SESSION_MAIL || s->state == SESSION_DATA ||
           (s->state == SESSION_BDAT && s->msg.bdat_after == SESSION_MAIL);
}

void session_free_headers(void *h)
{
    msg_headers_free(h);
    free(h);
}

static void session_free_store(void *store)
{
    msg_store_free(store);
}

/* A plugin the chain gave up waiting for may still read the message: it
 * gets this one to keep, and the session starts a new store. */
void session_release_content(struct session *s)
{
    if (!s->chain || !chain_busy(s->chain))
        return;
    if (s->msg.store) {
        chain_adopt(s->chain, s->msg.store, session_free_store);
        s->msg.store = NULL;
    }
    struct msg_headers *fresh = malloc(sizeof(*fresh));
    if (fresh) {
        msg_headers_init(fresh, s->msg.hdrs->max_bytes, s->msg.hdrs->max_fields);
        chain_adopt(s->chain, s->msg.hdrs, session_free_headers);
        s->msg.hdrs = fresh;
    }
}

void session_tx_reset(struct session *s)
{
    if (s->chain)
        chain_tx_end(s->chain);
    session_release_content(s);
    struct session_tx *tx = &s->tx;
    for (size_t i = 0; i < tx->nrcpts; i++) {
        free(tx->rcpts[i].mailbox);
        free(tx->rcpts[i].params);
    }
    free(tx->rcpts);
    free(tx->mail_params);
    free(tx->mail_from);
    if (tx->edited_hdr)
        msg_store_free(tx->edited_hdr);
    unsigned gen = tx->gen + 1, count = tx->count;
    memset(tx, 0, sizeof(*tx));
    tx->gen = gen;
    tx->count = count;
    tx->body = ESMTP_BODY_UNSPEC;
    s->msg.bdat_total = 0;
    if (s->msg.store)
        msg_store_reset(s->msg.store);
    if (s->msg.hdrs)
        msg_headers_reset(s->msg.hdrs);
    if (s->state == SESSION_MAIL)
        s->state = session_idle_state(s);
}

void session_keep_rcpt(struct session *s, struct msg_rcpt *r)
{
    struct msg_rcpt *n = realloc(s->tx.rcpts, (s->tx.nrcpts + 1) * sizeof(*n));
    if (!n)
        return;
    s->tx.rcpts = n;
    s->tx.rcpts[s->tx.nrcpts++] = *r;
    if (s->chain)
        chain_rcpt_accepted(s->chain, r->mailbox);
    r->mailbox = r->params = NULL;
}

/* ---- the log line and the counters ---- */

/* "queued as ID" in the upstream's final reply: the key into the MTA's log. */
static void session_queue_id(const char *text, char *out, size_t out_size)
{
    out[0] = '\0';
    const char *p = strstr(text, "queued as ");
    if (!p)
        return;
    p += 10;
    size_t n = strcspn(p, " \t\r\n;,)");
    if (n >= out_size)
        n = out_size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

/*
 * One line per recipient the upstream took, in the shape of Postfix's
 * delivery lines ("to=<r>, relay=..., delay=..., dsn=..., status=sent
 * (reply)"), so that a grep for an address finds its fate here as it does
 * in the MTA's log, and queued_as leads on into it.
 */
static void session_log_recipients(const struct session *s, const char *result, int code,
                                   const char *first, const char *qid)
{
    const char *status = strcmp(result, "accepted") == 0 ? "sent" : result;
    char dsn[16] = "-";
    size_t n = strspn(first, "0123456789.");
    if (n > 0 && n < sizeof(dsn) && first[0] >= '2' && first[0] <= '5' && first[1] == '.')
        snprintf(dsn, sizeof(dsn), "%.*s", (int)n, first);
    const char *relay = s->up ? upstream_label(s->up) : "-";
    double delay = session_elapsed(&s->tx.started);
    for (size_t i = 0; i < s->tx.nrcpts; i++)
        log_info("%s: to=<%s>, relay=%s, delay=%.3f, dsn=%s, status=%s (%d %s), queued_as=%s",
                 s->id, s->tx.rcpts[i].mailbox ? s->tx.rcpts[i].mailbox : "", relay, delay, dsn,
                 status, code, first, qid[0] ? qid : "-");
}

void session_tx_log(struct session *s, const char *result, int code, const char *text)
{
    session_metrics_transaction(result, s->msg.store && strcmp(result, "aborted") != 0,
                                s->msg.store ? msg_store_size(s->msg.store) : 0);
    chain_symbol_metrics_count(s->chain);
    char qid[64];
    session_queue_id(text ? text : "", qid, sizeof(qid));
    char first[256];
    snprintf(first, sizeof(first), "%s", text ? text : "");
    first[strcspn(first, "\n")] = '\0';
    char filters[4096] = "";
    if (s->chain) {
        filters[0] = ' ';
        chain_tx_summary(s->chain, filters + 1, sizeof(filters) - 1);
    }
    const struct session_tx *tx = &s->tx;
    log_info("%s: tx from=<%s> nrcpt=%u/%u size=%" PRIu64 " body=%s upstream=%s result=%s "
             "reply=\"%d %s\" queued_as=%s client=%s[%s]%s duration=%.3fs",
             s->id, tx->mail_from ? tx->mail_from : "", tx->rcpt_ok, tx->rcpt_sent,
             s->msg.store ? msg_store_size(s->msg.store) : 0,
             tx->body == ESMTP_BODY_8BITMIME     ? "8BITMIME"
             : tx->body == ESMTP_BODY_BINARYMIME ? "BINARYMIME"
                                                 : "7BIT",
             s->up ? upstream_label(s->up) : "-", result, code, first, qid[0] ? qid : "-",
             s->client.name ? s->client.name : "unknown", s->addr, filters,
             session_elapsed(&tx->started));
    session_log_recipients(s, result, code, first, qid);
    verdict_log_write(s, result, code, first, qid, session_elapsed(&tx->started));
}

/* A transaction smtpgate ended itself: logged, the client told `reply`, the
 * upstream's side aborted. */
static void session_tx_end_with(struct session *s, const char *reply)
{
    s->stats.ntransactions++;
    session_tx_log(s, reply[0] == '4' ? "deferred" : "refused", atoi(reply), reply + 4);
    session_reply(s, reply);
    session_abort_upstream_tx(s);
    session_tx_reset(s);
}

/* ---- MAIL and RCPT paths ---- */

/*
 * The command rebuilt around the canonical path: "MAIL FROM:<path> params".
 * path's pointers are moved to the new line, which a keeps.  False without
 * memory.
 */
static bool session_canonical_line(struct session_args *a, bool is_mail, struct smtp_path *path)
{
    const char *verb = is_mail ? "MAIL FROM:" : "RCPT TO:";
    size_t verb_len = strlen(verb);
    size_t n = verb_len + path->mailbox_len + 2 + (path->params ? 1 + path->params_len : 0);
    char *line = malloc(n + 1);
    if (!line)
        return false;
    int w =
        snprintf(line, n + 1, "%s<%.*s>%s%.*s", verb, (int)path->mailbox_len, path->mailbox,
                 path->params ? " " : "", (int)path->params_len, path->params ? path->params : "");
    if (w < 0 || (size_t)w != n) {
        free(line);
        return false;
    }
    free(a->kept);
    a->kept = line;
    a->line = line;
    a->len = n;
    smtp_cmd_parse(a->line, a->len, &a->cmd);
    path->mailbox = line + verb_len + 1;
    if (path->params)
        path->params = path->mailbox + path->mailbox_len + 2;
    return true;
}

/*
 * Parse a MAIL/RCPT argument.  By default as leniently as Postfix does, and
 * the command goes upstream rebuilt around the canonical path, which is also
 * what the filters judge; what the lenient reading refuses but RFC 5321
 * allows still passes as the client sent it.  With strict_envelopes only RFC
 * 5321 paths pass, as sent.  On SMTP_CMD_OK path's pointers stay valid as
 * long as a's line.
 */
static enum smtp_cmd_status session_path(struct session *s, struct session_args *a, bool is_mail,
                                         struct smtp_path *path)
{
    enum smtp_cmd_status st = smtp_path_parse(a->cmd.arg, a->cmd.arg_len, is_mail, path);
    if (s->cfg->strict_envelopes || st == SMTP_CMD_BAD_SYNTAX)
        return st;
    size_t canon_size = 2 * a->cmd.arg_len + 3;
    char *canon = malloc(canon_size);
    if (!canon)
        return st;
    struct smtp_path lenient;
    bool rebuilt = smtp_path_parse_lenient(a->cmd.arg, a->cmd.arg_len, is_mail, canon, canon_size,
                                           &lenient) == SMTP_CMD_OK &&
                   session_canonical_line(a, is_mail, &lenient);
    free(canon);
    if (!rebuilt)
        return st;
    *path = lenient;
    return SMTP_CMD_OK;
}

/* ---- MAIL ---- */

enum session_check session_check_mail(struct session *s, struct session_args *a)
{
    struct smtp_path path;
    enum smtp_cmd_status st = session_path(s, a, true, &path);
    if (st != SMTP_CMD_OK) {
        session_reply(s, smtp_cmd_status_reply(st));
        return CHECK_FAIL;
    }
    struct esmtp_mail mp;
    enum esmtp_status es =
        esmtp_mail_params(path.params ? path.params : "", path.params_len, s->client.caps, &mp);
    if (es != ESMTP_OK) {
        session_reply(s, esmtp_status_reply(es));
        return CHECK_FAIL;
    }
    if (path.utf8 && !(mp.smtputf8 && (s->client.caps & ESMTP_CAP_SMTPUTF8))) {
        session_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send UTF8 address");
        return CHECK_FAIL;
    }
    if (mp.has_size && (mp.size > s->cfg->max_message_size ||
                        (s->client.size_limit && mp.size > s->client.size_limit))) {
        session_reply(s, "552 5.3.4 Message size exceeds fixed limit");
        return CHECK_FAIL;
    }
    session_tx_reset(s);
    s->tx.mail_from = strndup(path.mailbox, path.mailbox_len);
    s->tx.mail_params = path.params ? strndup(path.params, path.params_len) : NULL;
    s->tx.body = mp.body;
    clock_gettime(CLOCK_MONOTONIC, &s->tx.started);
    if (!s->tx.mail_from || (path.params && !s->tx.mail_params)) {
        session_reply(s, "451 4.3.0 Error: out of memory");
        return CHECK_FAIL;
    }
    if (!s->chain)
        return CHECK_SKIP;
    /* The session id, '.', at most 10 digits and the NUL always fit. */
    char tx_id[sizeof(s->id) + 12];
    snprintf(tx_id, sizeof(tx_id), "%s.%u", s->id, ++s->tx.count);
    chain_tx_begin(s->chain, tx_id);
    chain_tx_set_mail(s->chain, s->tx.mail_from, s->tx.mail_params);
    a->chain_arg = s->tx.mail_from;
    a->chain_params = s->tx.mail_params;
    return CHECK_OK;
}

/* MAIL passed every check of ours and the chain's: it goes upstream. */
void session_do_mail(struct session *s, struct session_args *a)
{
    s->state = SESSION_MAIL;
    session_forward(s, EXPECT_MAIL, a->line, a->len);
}

void session_refused_mail(struct session *s, struct session_args *a)
{
    (void)a;
    const char *reply = s->wait.res.reply;
    session_reply(s, reply);
    s->stats.ntransactions++;
    session_tx_log(s, reply[0] == '4' ? "deferred" : "refused", atoi(reply), reply + 4);
    session_tx_reset(s);
}

/* ---- RCPT ---- */

enum session_check session_check_rcpt(struct session *s, struct session_args *a)
{
    struct smtp_path path;
    enum smtp_cmd_status st = session_path(s, a, false, &path);
    if (st != SMTP_CMD_OK) {
        session_reply(s, smtp_cmd_status_reply(st));
        return CHECK_FAIL;
    }
    struct esmtp_rcpt rp;
    enum esmtp_status es =
        esmtp_rcpt_params(path.params ? path.params : "", path.params_len, s->client.caps, &rp);
    if (es != ESMTP_OK) {
        session_reply(s, esmtp_status_reply(es));
        return CHECK_FAIL;
    }
    if (path.utf8 && !(s->client.caps & ESMTP_CAP_SMTPUTF8)) {
        session_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send UTF8 address");
        return CHECK_FAIL;
    }
    if (s->tx.rcpt_sent >= s->cfg->max_recipients) {
        session_reply(s, "452 4.5.3 Error: too many recipients");
        return CHECK_FAIL;
    }
    s->tx.rcpt_sent++;
    a->mailbox = strndup(path.mailbox, path.mailbox_len);
    a->params = path.params ? strndup(path.params, path.params_len) : NULL;
    if (!a->mailbox || (path.params && !a->params)) {
        session_reply(s, "451 4.3.0 Error: out of memory");
        return CHECK_FAIL;
    }
    a->chain_arg = a->mailbox;
    a->chain_params = a->params;
    return CHECK_OK;
}

void session_do_rcpt(struct session *s, struct session_args *a)
{
    struct expect *e = session_forward(s, EXPECT_RCPT, a->line, a->len);
    if (e) {
        e->rcpt.mailbox = a->mailbox;
        e->rcpt.params = a->params;
        a->mailbox = a->params = NULL;
    }
}

/* ---- DATA ---- */

static bool session_store_ready(struct session *s)
{
    if (!s->msg.store)
        s->msg.store = msg_store_new(s->cfg->spill_threshold, s->cfg->spool_dir);
    return s->msg.store != NULL;
}

static int session_sink(void *ctx, const char *bytes, size_t len)
{
    struct session *s = ctx;
    if (!s->msg.hdrs->complete && msg_headers_feed(s->msg.hdrs, bytes, len) < 0)
        return -1;
    return msg_store_append(s->msg.store, bytes, len);
}

/* The message may start only when MAIL and at least one RCPT were accepted. */
static const char *session_message_refusal(const struct session *s)
{
    if (s->tx.fail)
        return s->tx.fail;
    if (!s->tx.mail_ok)
        return "503 5.5.1 Error: need MAIL command";
    if (s->tx.rcpt_ok == 0)
        return s->tx.rcpt_sent ? "554 5.5.1 Error: no valid recipients"
                               : "503 5.5.1 Error: need RCPT command";
    if (s->tx.bdat_used)
        return "503 5.5.1 Error: DATA after BDAT";
    if (!s->up)
        return "451 4.4.2 Upstream connection lost, try again later";
    return NULL;
}

static void session_data_start(struct session *s)
{
    msg_store_reset(s->msg.store);
    msg_headers_reset(s->msg.hdrs);
    data_decoder_init(&s->msg.dec, s->cfg->newline_policy, s->cfg->max_data_line_length,
                      s->cfg->max_message_size, session_sink, s);
}

/* The transaction refused by the chain before its message: the upstream
 * forgets it too. */
static void session_refuse_tx(struct session *s)
{
    const char *reply = s->wait.res.reply;
    s->stats.ntransactions++;
    session_tx_log(s, reply[0] == '4' ? "deferred" : "refused", atoi(reply), reply + 4);
    session_abort_upstream_tx(s);
    session_tx_reset(s);
}

/* Reply r (ours, a single line) and end the transaction as refused. */
static void session_refuse_tx_with(struct session *s, const char *r)
{
    snprintf(s->wait.res.reply, sizeof(s->wait.res.reply), "%s", r);
    session_reply(s, s->wait.res.reply);
    session_refuse_tx(s);
}

enum session_check session_check_data(struct session *s, struct session_args *a)
{
    (void)a;
    const char *refusal = session_message_refusal(s);
    if (refusal) {
        session_reply(s, refusal);
        return CHECK_FAIL;
    }
    if (!session_store_ready(s)) {
        session_reply(s, "451 4.3.0 Error: out of memory");
        return CHECK_FAIL;
    }
    return CHECK_OK;
}

/* DATA after the chain's data stage let it pass. */
void session_do_data(struct session *s, struct session_args *a)
{
    (void)a;
    session_data_start(s);
    s->tx.data_used = true;
    s->state = SESSION_DATA;
    session_set_read_timeout(s, s->cfg->data_timeout);
    session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

void session_refused_data(struct session *s, struct session_args *a)
{
    (void)a;
    session_reply(s, s->wait.res.reply);
    session_refuse_tx(s);
}

/* ---- the end of the message ---- */

/* "MAIL FROM:<mailbox> params" or "RCPT TO:<...>", in an allocation of its
 * exact size; false when out of memory. */
static bool session_path_line(char **out, const char *verb, const char *mailbox, const char *params)
{
    size_t n = strlen(verb) + strlen(mailbox) + 2 + (params ? 1 + strlen(params) : 0);
    char *line = malloc(n + 1);
    if (!line)
        return false;
    int w =
        snprintf(line, n + 1, "%s<%s>%s%s", verb, mailbox, params ? " " : "", params ? params : "");
    if (w < 0 || (size_t)w != n) {
        free(line);
        return false;
    }
    *out = line;
    return true;
}

/* The envelope a plugin changed, sent again before the message: every line
 * or none.  False when it cannot be made. */
static bool session_replay_envelope(struct session *s, const struct msg_envelope *env)
{
    size_t nlines = env->nrcpt + 1;
    char **lines = calloc(nlines, sizeof(*lines));
    bool made =
        lines && session_path_line(&lines[0], "MAIL FROM:", env->mail_from, env->mail_params);
    for (size_t i = 0; made && i < env->nrcpt; i++)
        made =
            session_path_line(&lines[i + 1], "RCPT TO:", env->rcpt[i].mailbox, env->rcpt[i].params);
    if (made) {
        /* The upstream has the envelope the client gave: it gets the new one
         * in a new transaction. */
        s->tx.replay = true;
        session_send_silent(s, EXPECT_SILENT, "RSET", 4);
        session_send_silent(s, EXPECT_REPLAY_MAIL, lines[0], strlen(lines[0]));
        for (size_t i = 1; i < nlines; i++)
            session_send_silent(s, EXPECT_REPLAY_RCPT, lines[i], strlen(lines[i]));
    }
    for (size_t i = 0; lines && i < nlines; i++)
        free(lines[i]);
    free(lines);
    return made;
}

/* Give the upstream the message: as received, or as the plugins edited it. */
static void session_message_send(struct session *s)
{
    if (!s->up) {
        session_tx_end_with(s, "451 4.4.2 Upstream connection lost, try again later");
        return;
    }
    struct msg_view view;
    msg_view_of_store(&view, s->msg.store);
    if (s->chain) {
        const struct chain_tx_info *t = chain_tx_info(s->chain);
        if (msg_edit_has_header_edits(t->edits, t->nedits) || t->new_body) {
            s->tx.edited_hdr = msg_store_new(s->cfg->spill_threshold, s->cfg->spool_dir);
            if (!s->tx.edited_hdr || msg_edit_apply(s->msg.hdrs, s->msg.store, t->edits, t->nedits,
                                                    t->new_body, s->tx.edited_hdr, &view) < 0) {
                session_refuse_tx_with(s, "451 4.3.0 Error: cannot apply the filters' changes");
                return;
            }
        }
        if (msg_edit_has_envelope_edits(t->edits, t->nedits)) {
            struct msg_envelope env;
            if (msg_edit_envelope(s->tx.mail_from, s->tx.mail_params, s->tx.rcpts, s->tx.nrcpts,
                                  t->edits, t->nedits, &env) < 0) {
                session_refuse_tx_with(s, "451 4.3.0 Error: out of memory");
                return;
            }
            bool made = session_replay_envelope(s, &env);
            msg_envelope_free(&env);
            if (!made) {
                session_refuse_tx_with(s, "451 4.3.0 Error: out of memory");
                return;
            }
        }
    }
    struct reply_slot *slot = session_slot_new(s);
    struct expect *e = slot ? session_expect(s, EXPECT_MESSAGE, slot) : NULL;
    if (!e) {
        s->io.closing = true;
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &e->sent);
    s->wait.kind = WAIT_FINAL;
    session_set_read_timeout(s, 0);
    bool bdat = s->tx.body == ESMTP_BODY_BINARYMIME && (upstream_caps(s->up) & ESMTP_CAP_CHUNKING);
    upstream_message(s->up, &view, bdat);
}

/* Discard or quarantine: the client is told 250, the upstream forgets the
 * transaction.  A quarantine that cannot be written is a 451: the client
 * keeps its copy. */
static void session_message_hold(struct session *s, bool quarantine)
{
    const char *result = "discarded";
    char path[4096] = "";
    if (quarantine) {
        const struct chain_tx_info *t = chain_tx_info(s->chain);
        const char **rcpt = calloc(s->tx.nrcpts ? s->tx.nrcpts : 1, sizeof(*rcpt));
        for (size_t i = 0; rcpt && i < s->tx.nrcpts; i++)
            rcpt[i] = s->tx.rcpts[i].mailbox;
        char id[sizeof(s->id) + 12]; /* as tx_id at MAIL: never truncated */
        snprintf(id, sizeof(id), "%s.%u", s->id, s->tx.count);
        struct quarantine_facts f = {.id = id,
                                     .client_addr = s->addr,
                                     .helo = s->client.helo,
                                     .mail_from = s->tx.mail_from,
                                     .rcpt = rcpt,
                                     .nrcpt = rcpt ? s->tx.nrcpts : 0,
                                     .reason = t->quarantine_reason,
                                     .decided_by = s->wait.res.decided_by};
        struct msg_view view;
        msg_view_of_store(&view, s->msg.store);
        int rc =
            rcpt ? quarantine_write(s->cfg->quarantine_dir, &f, &view, path, sizeof(path)) : -1;
        free(rcpt);
        if (rc < 0) {
            log_err("%s: cannot write quarantine file %s: %s", s->id, path, strerror(errno));
            session_refuse_tx_with(s, "451 4.3.0 Error: cannot keep the message, try again later");
            return;
        }
        result = "quarantined";
        log_info("%s: quarantined in %s: %s", s->id, path,
                 t->quarantine_reason ? t->quarantine_reason : "-");
    }
    s->stats.ntransactions++;
    s->stats.naccepted++;
    session_tx_log(s, result, 250, "2.0.0 Ok");
    session_reply(s, "250 2.0.0 Ok");
    session_abort_upstream_tx(s);
    session_tx_reset(s);
}

/* The chain's end-of-message verdict. */
static void session_message_decided(struct session *s)
{
    session_set_read_timeout(s, s->cfg->command_timeout);
    switch (s->wait.res.action) {
    case CHAIN_REFUSE:
        session_reply(s, s->wait.res.reply);
        session_refuse_tx(s);
        break;
    case CHAIN_DISCARD:
        session_message_hold(s, false);
        break;
    case CHAIN_QUARANTINE:
        session_message_hold(s, true);
        break;
    case CHAIN_PASS:
        session_message_send(s);
        break;
    }
}

/* End of the message from the client: refuse it, or send it upstream. */
static void session_message_complete(struct session *s, enum data_error err)
{
    s->state = SESSION_MAIL;
    s->io.cmd_what = NULL; /* the message's final reply is on its transaction line */
    session_set_read_timeout(s, s->cfg->command_timeout);
    const char *refusal = NULL;
    if (err != DATA_ERR_NONE)
        refusal = data_error_reply(err);
    else if (msg_headers_finish(s->msg.hdrs) < 0)
        refusal = "451 4.3.0 Error: out of memory";
    else if (s->tx.fail || !s->up)
        refusal = s->tx.fail ? s->tx.fail : "451 4.4.2 Upstream connection lost, try again later";
    if (refusal) {
        session_tx_end_with(s, refusal);
        return;
    }
    if (s->chain) {
        /* Reading stops until the verdict: the client waits for our reply. */
        session_set_read_timeout(s, 0);
        if (!session_chain_run(s, SG_STAGE_EOM, NULL, NULL, session_message_decided))
            return;
        session_message_decided(s);
        return;
    }
    session_message_send(s);
}

/* Feed message data to the decoder; true when the loop may go on. */
bool session_feed_data(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->io.bev);
    struct evbuffer_iovec v[16];
    int n = evbuffer_peek(in, -1, NULL, v, 16);
    size_t consumed = 0;

    for (int i = 0; i < n && i < 16 && !s->msg.dec.done; i++)
        consumed += data_decoder_feed(&s->msg.dec, v[i].iov_base, v[i].iov_len);
    evbuffer_drain(in, consumed);
    if (s->msg.dec.done) {
        session_message_complete(s, s->msg.dec.error);
        return true;
    }
    return n > 16;
}

/* ---- BDAT ---- */

enum session_check session_check_bdat(struct session *s, struct session_args *a)
{
    uint64_t size;
    bool last;
    enum smtp_cmd_status st = smtp_bdat_parse(a->cmd.arg, a->cmd.arg_len, &size, &last);
    if (st != SMTP_CMD_OK) {
        /* Without a valid size the chunk cannot be skipped: the stream is lost. */
        session_close_with(s, "501 5.5.4 Syntax: BDAT chunk-size [LAST]; closing connection");
        return CHECK_FAIL;
    }
    struct session_msg *m = &s->msg;
    m->bdat_remaining = size;
    m->bdat_last = last;
    m->bdat_refusal = NULL;
    session_set_read_timeout(s, s->cfg->data_timeout);

    if (!(s->client.caps & ESMTP_CAP_CHUNKING)) {
        m->bdat_refusal = "503 5.5.1 Error: BDAT not announced";
        return CHECK_SKIP;
    }
    if (s->tx.data_used) {
        m->bdat_refusal = "503 5.5.1 Error: BDAT after DATA";
        return CHECK_SKIP;
    }
    const char *refusal = NULL;
    bool first = !s->tx.bdat_used;
    if (first) {
        refusal = session_message_refusal(s);
        if (!refusal && !session_store_ready(s))
            refusal = "451 4.3.0 Error: out of memory";
        if (!refusal) {
            session_data_start(s);
            s->tx.bdat_used = true;
            m->bdat_total = 0;
        }
    } else if (s->tx.fail) {
        refusal = s->tx.fail;
    }
    if (!refusal && m->bdat_total + size > s->cfg->max_message_size)
        refusal = "552 5.3.4 Message size exceeds fixed limit";
    m->bdat_refusal = refusal;
    m->bdat_total += size;
    /* The first chunk waits in the input buffer until the chain has spoken. */
    return first && !refusal ? CHECK_OK : CHECK_SKIP;
}

void session_do_bdat(struct session *s, struct session_args *a)
{
    (void)a;
    s->msg.bdat_after = s->state;
    s->state = SESSION_BDAT;
}

void session_refused_bdat(struct session *s, struct session_args *a)
{
    s->msg.bdat_refusal = s->wait.res.reply;
    session_do_bdat(s, a);
}

/* The chunk has been read (or skipped) completely. */
static void session_bdat_chunk_done(struct session *s)
{
    struct session_msg *m = &s->msg;
    s->state = m->bdat_after;
    session_set_read_timeout(s, s->cfg->command_timeout);
    if (m->bdat_refusal) {
        const char *r = m->bdat_refusal;
        m->bdat_refusal = NULL;
        if (s->tx.bdat_used) {
            session_tx_end_with(s, r);
            return;
        }
        session_reply(s, r);
        return;
    }
    if (!m->bdat_last) {
        /* A defect in this chunk is answered at LAST, as for DATA at its end,
         * so the client learns that the whole message was refused. */
        session_replyf(s, "250 2.0.0 Ok: %" PRIu64 " octets", m->bdat_total);
        return;
    }
    if (s->tx.body != ESMTP_BODY_BINARYMIME)
        bdat_check_finish(&m->dec);
    session_message_complete(s, m->dec.error);
}

/* Read chunk octets; true when the loop may go on. */
bool session_feed_bdat(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->io.bev);
    struct session_msg *m = &s->msg;
    while (m->bdat_remaining > 0) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return false;
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            return false;
        size_t take = v.iov_len;
        if (take > m->bdat_remaining)
            take = (size_t)m->bdat_remaining;
        if (!m->bdat_refusal) {
            if (s->tx.body == ESMTP_BODY_BINARYMIME) {
                if (session_sink(s, v.iov_base, take) < 0)
                    m->bdat_refusal = "451 4.3.0 Error: queue file write error";
            } else {
                bdat_check_feed(&m->dec, v.iov_base, take);
            }
        }
        evbuffer_drain(in, take);
        m->bdat_remaining -= take;
    }
    session_bdat_chunk_done(s);
    return true;
}
