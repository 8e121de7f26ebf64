/*
 * control_release - "quarantine release ID": the quarantined message handed
 * to the upstream as a new transaction, as the client would have had it
 * delivered.
 *
 * The connection is an ordinary upstream connection (upstream.h) on the main
 * thread's loop: the configuration's upstreams by priority, STARTTLS as
 * configured, and the quarantined client's address and HELO told to the
 * upstream by XCLIENT or PROXY v2, as for the session that brought the
 * message, so the upstream judges the released message as it judged the
 * original envelope.  Then:
 *
 *   NOOP                         the connection is ready: its EHLO is known
 *   MAIL FROM:<sender> [BODY=8BITMIME] [SMTPUTF8] [SIZE=n]
 *   RCPT TO:<each recipient>
 *   DATA, the message without the X-Quarantine lines, "."
 *
 * All or nothing (DESIGN.md, rule 1: no message lost inside smtpgate): the
 * message goes only when every recipient was taken, and the file is removed
 * only after the upstream's 250 for the message.  A refused MAIL or RCPT, a
 * refused message, or a connection that fails leaves the file where it was,
 * and the requester gets the upstream's reply.  Each release is logged
 * ("quarantine: ID released ..." or "... release refused ...").
 *
 * A release of an ID in flight blocks another release or a delete of it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/esmtp.h"
#include "codec/smtp_reply.h"
#include "daemon/control_int.h"
#include "daemon/runtime.h"
#include "daemon/upstream.h"
#include "message/msg_store.h"
#include "message/msg_view.h"
#include "message/quarantine_read.h"
#include "util/log.h"

enum release_step { REL_READY, REL_MAIL, REL_RCPT, REL_MESSAGE };

struct release_rcpt {
    char *mailbox;
    int code;
    char *reply;
};

struct release {
    struct release *next, *prev;
    char id[CONTROL_ID_MAX + 1];
    char path[4096];
    long uid;
    struct control_wait *wait;
    struct sg_runtime *rt;
    char *file; /* the whole quarantine file */
    size_t file_len;
    struct quarantine_head head;
    char *from;
    struct release_rcpt *rcpt;
    size_t nrcpt;
    size_t rcpt_replies;
    bool rcpt_refused;
    struct msg_store *store;
    struct msg_view view;
    struct upstream_conn *up;
    enum release_step step;
    char upstream[128];
    int code;        /* the reply that ended it (0: a failure of the connection) */
    char reply[1024]; /* its text, as "CODE TEXT" */
    bool file_kept;
    bool unlink_failed;
};

static struct release *releases; /* main thread only */

bool control_release_busy(const char *id)
{
    for (struct release *r = releases; r; r = r->next)
        if (strcmp(r->id, id) == 0)
            return true;
    return false;
}

static void release_free(struct release *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else if (releases == r)
        releases = r->next;
    if (r->next)
        r->next->prev = r->prev;
    if (r->up)
        upstream_close(r->up);
    control_wait_free(r->wait);
    for (size_t i = 0; i < r->nrcpt; i++) {
        free(r->rcpt[i].mailbox);
        free(r->rcpt[i].reply);
    }
    free(r->rcpt);
    free(r->from);
    quarantine_head_free(&r->head);
    free(r->file);
    msg_store_free(r->store);
    runtime_unref(r->rt);
    free(r);
}

/* "CODE TEXT" of an upstream reply, its lines joined with " / ". */
static void release_reply_text(const struct smtp_reply *rep, char *out, size_t size)
{
    int n = snprintf(out, size, "%d ", rep->code);
    size_t k = n > 0 && (size_t)n < size ? (size_t)n : 0;
    for (size_t i = 0; rep->text && i < rep->text_len && k + 4 < size; i++) {
        if (rep->text[i] == '\n') {
            memcpy(out + k, " / ", 3);
            k += 3;
        } else {
            out[k++] = rep->text[i];
        }
    }
    out[k] = '\0';
}

static void release_render(struct json_out *j, void *arg)
{
    struct release *r = arg;
    json_out_key(j, "id");
    json_out_cstr(j, r->id);
    json_out_key(j, "released");
    json_out_bool(j, !r->file_kept);
    json_out_key(j, "upstream");
    json_out_cstr(j, r->upstream[0] ? r->upstream : NULL);
    json_out_key(j, "from");
    json_out_cstr(j, r->from);
    json_out_key(j, "recipients");
    json_out_open(j, '[');
    for (size_t i = 0; i < r->nrcpt; i++) {
        json_out_open(j, '{');
        json_out_key(j, "to");
        json_out_cstr(j, r->rcpt[i].mailbox);
        json_out_key(j, "reply");
        json_out_cstr(j, r->rcpt[i].reply);
        json_out_close(j);
    }
    json_out_close(j);
    json_out_key(j, "code");
    json_out_int(j, r->code);
    json_out_key(j, "reply");
    json_out_cstr(j, r->reply);
    json_out_key(j, "file_kept");
    json_out_bool(j, r->file_kept);
    if (r->file_kept) {
        json_out_key(j, "error");
        json_out_cstr(j, r->code ? "the upstream refused the release; the message stays in "
                                   "the quarantine"
                                 : "the upstream could not be reached; the message stays in "
                                   "the quarantine");
    } else if (r->unlink_failed) {
        json_out_key(j, "warning");
        json_out_cstr(j, "delivered, but the file could not be removed: delete it, or a "
                         "second release delivers it again");
    }
}

static void release_recipients_text(const struct release *r, char *out, size_t size)
{
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->nrcpt && k < size; i++) {
        int n = snprintf(out + k, size - k, "%s<%s>", i ? "," : "", r->rcpt[i].mailbox);
        if (n < 0)
            break;
        k += (size_t)n;
    }
}

/* The end, good or not: log, answer, forget. */
static void release_finish(struct release *r, bool delivered)
{
    char to[2048];
    release_recipients_text(r, to, sizeof(to));
    r->file_kept = !delivered;
    if (delivered) {
        if (unlink(r->path) < 0 && errno != ENOENT)
            r->unlink_failed = true;
        log_info("quarantine: %s released by uid %ld: from=<%s> to=%s upstream=%s: %s", r->id,
                 r->uid, r->from, to, r->upstream, r->reply);
        if (r->unlink_failed)
            log_err("quarantine: %s delivered but %s could not be removed: %s", r->id, r->path,
                    strerror(errno));
    } else {
        log_warn("quarantine: %s release refused by uid %ld's upstream: from=<%s> to=%s "
                 "upstream=%s: %s; %s stays",
                 r->id, r->uid, r->from, to, r->upstream[0] ? r->upstream : "-", r->reply,
                 r->path);
    }
    if (r->wait->conn)
        control_answer(r->wait->conn, delivered, release_render, r);
    release_free(r);
}

static bool release_has_8bit(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80)
            return true;
    return false;
}

static void release_send_envelope(struct release *r)
{
    unsigned caps = upstream_caps(r->up);
    bool utf8 = release_has_8bit(r->from, strlen(r->from));
    for (size_t i = 0; i < r->nrcpt; i++)
        utf8 |= release_has_8bit(r->rcpt[i].mailbox, strlen(r->rcpt[i].mailbox));
    if (utf8 && !(caps & ESMTP_CAP_SMTPUTF8)) {
        snprintf(r->reply, sizeof(r->reply),
                 "the envelope has UTF-8 addresses and the upstream does not offer SMTPUTF8");
        release_finish(r, false);
        return;
    }
    const char *body = r->file + r->head.message_offset;
    size_t body_len = r->file_len - r->head.message_offset;
    char line[1200];
    int n = snprintf(line, sizeof(line), "MAIL FROM:<%s>%s%s", r->from,
                     release_has_8bit(body, body_len) && (caps & ESMTP_CAP_8BITMIME)
                         ? " BODY=8BITMIME"
                         : "",
                     utf8 ? " SMTPUTF8" : "");
    if (n > 0 && (size_t)n < sizeof(line) && (caps & ESMTP_CAP_SIZE))
        n += snprintf(line + n, sizeof(line) - (size_t)n, " SIZE=%zu", body_len);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        snprintf(r->reply, sizeof(r->reply), "the sender is too long for a MAIL command");
        release_finish(r, false);
        return;
    }
    r->step = REL_MAIL;
    upstream_command(r->up, line, (size_t)n);
    for (size_t i = 0; i < r->nrcpt; i++) {
        n = snprintf(line, sizeof(line), "RCPT TO:<%s>", r->rcpt[i].mailbox);
        if (n > 0 && (size_t)n < sizeof(line))
            upstream_command(r->up, line, (size_t)n);
        else
            upstream_command(r->up, "RCPT TO:<>", 10); /* refused: the whole release is */
    }
}

static void release_on_reply(void *ctx, const struct smtp_reply *rep)
{
    struct release *r = ctx;
    bool ok = rep->code / 100 == 2;
    switch (r->step) {
    case REL_READY:
        snprintf(r->upstream, sizeof(r->upstream), "%s", upstream_label(r->up));
        release_send_envelope(r);
        return;
    case REL_MAIL:
        if (!ok) {
            r->code = rep->code;
            release_reply_text(rep, r->reply, sizeof(r->reply));
            release_finish(r, false);
            return;
        }
        r->step = REL_RCPT;
        return;
    case REL_RCPT: {
        struct release_rcpt *rc = &r->rcpt[r->rcpt_replies++];
        char text[1024];
        release_reply_text(rep, text, sizeof(text));
        rc->code = rep->code;
        rc->reply = strdup(text);
        if (!ok && !r->rcpt_refused) {
            r->rcpt_refused = true;
            r->code = rep->code;
            /* Cut where it must: the recipient's own reply is whole in "recipients". */
            int n = snprintf(r->reply, sizeof(r->reply), "<%.300s>: ", rc->mailbox);
            snprintf(r->reply + n, sizeof(r->reply) - (size_t)n, "%.700s", text);
        }
        if (r->rcpt_replies < r->nrcpt)
            return;
        if (r->rcpt_refused) {
            release_finish(r, false);
            return;
        }
        r->step = REL_MESSAGE;
        upstream_message(r->up, &r->view, false);
        return;
    }
    case REL_MESSAGE:
        r->code = rep->code;
        release_reply_text(rep, r->reply, sizeof(r->reply));
        release_finish(r, ok);
        return;
    }
}

static void release_on_failure(void *ctx, const char *reply)
{
    struct release *r = ctx;
    /* No callback comes after this one: the connection is the module's. */
    upstream_close(r->up);
    r->up = NULL;
    r->code = 0;
    snprintf(r->reply, sizeof(r->reply), "%s", reply ? reply : "the upstream connection failed");
    size_t n = strlen(r->reply);
    while (n && (r->reply[n - 1] == '\n' || r->reply[n - 1] == '\r'))
        r->reply[--n] = '\0';
    release_finish(r, false);
}

static const struct upstream_events release_events = {
    .on_reply = release_on_reply,
    .on_failure = release_on_failure,
};

static char *release_strndup(struct quarantine_field f)
{
    return strndup(f.p ? f.p : "", f.p ? f.len : 0);
}

/* The file read and judged, the envelope and message ready: NULL after
 * answering why not. */
static const char *release_prepare(struct release *r)
{
    const char *dir = r->rt->cfg->quarantine_dir;
    if (control_quarantine_read(dir, r->id, &r->file, &r->file_len) < 0)
        return errno == ENOENT ? "no such quarantined message" : strerror(errno);
    if (quarantine_head_parse(r->file, r->file_len, true, &r->head) != QH_OK)
        return "not a quarantine file (its X-Quarantine lines do not read)";
    r->from = release_strndup(r->head.from);
    r->rcpt = calloc(r->head.nrcpt, sizeof(*r->rcpt));
    if (!r->from || !r->rcpt)
        return "out of memory";
    for (size_t i = 0; i < r->head.nrcpt; i++, r->nrcpt++)
        if (!(r->rcpt[i].mailbox = release_strndup(r->head.rcpt[i])))
            return "out of memory";
    const struct sg_config *c = r->rt->cfg;
    r->store = msg_store_new(c->spill_threshold, c->spool_dir);
    size_t body_len = r->file_len - r->head.message_offset;
    if (!r->store ||
        (body_len && msg_store_append(r->store, r->file + r->head.message_offset, body_len) < 0) ||
        msg_store_flush(r->store) < 0)
        return "cannot store the message for sending";
    msg_view_of_store(&r->view, r->store);
    return NULL;
}

/* The quarantined client, as the upstream is told of it. */
static void release_client(const struct release *r, char *addr, size_t size,
                           struct sockaddr_storage *sa, int *family)
{
    snprintf(addr, size, "%.*s", (int)(r->head.client.p ? r->head.client.len : 0),
             r->head.client.p ? r->head.client.p : "");
    memset(sa, 0, sizeof(*sa));
    struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
    if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        *family = AF_INET6;
    } else if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        *family = AF_INET;
    } else {
        /* Not an address: the upstream hears [UNAVAILABLE]. */
        addr[0] = '\0';
        v4->sin_family = AF_INET;
        *family = AF_INET;
    }
}

void control_quarantine_release(struct control_conn *c, const char *id)
{
    if (control_release_busy(id)) {
        control_answer_error(c, "%s is being released already", id);
        return;
    }
    struct release *r = calloc(1, sizeof(*r));
    if (!r || !(r->wait = control_wait_new(c))) {
        free(r);
        control_answer_error(c, "out of memory");
        return;
    }
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->uid = control_conn_uid(c);
    r->next = releases;
    if (releases)
        releases->prev = r;
    releases = r;
    r->rt = runtime_current();
    if (!r->rt) {
        release_free(r);
        control_answer_error(c, "no configuration in force");
        return;
    }
    snprintf(r->path, sizeof(r->path), "%s/%s.eml", r->rt->cfg->quarantine_dir, id);
    const char *why = release_prepare(r);
    if (why) {
        release_free(r);
        control_answer_error(c, "%s: %s", id, why);
        return;
    }
    char addr[64];
    struct sockaddr_storage client_sa;
    int family;
    release_client(r, addr, sizeof(addr), &client_sa, &family);
    char helo[256];
    snprintf(helo, sizeof(helo), "%.*s", (int)(r->head.helo.p ? r->head.helo.len : 0),
             r->head.helo.p ? r->head.helo.p : "");
    struct client_facts facts = {
        .addr = addr[0] ? addr : NULL,
        .family = family,
        .helo = helo[0] ? helo : NULL,
        .proto = "ESMTP",
    };
    const struct sg_config *cfg = r->rt->cfg;
    const struct sockaddr *local = cfg->nlisten ? (const struct sockaddr *)&cfg->listen[0].sa : NULL;
    r->up = upstream_new(control_conn_base(c), r->rt, &facts, (struct sockaddr *)&client_sa, local,
                         &release_events, r);
    if (!r->up) {
        release_free(r);
        control_answer_error(c, "out of memory");
        return;
    }
    log_info("quarantine: %s release asked by uid %ld", id, r->uid);
    /* Its reply says the connection is ready and its EHLO known. */
    r->step = REL_READY;
    upstream_command(r->up, "NOOP", 4);
}

void control_release_shutdown(void)
{
    while (releases) {
        log_warn("quarantine: %s release abandoned: the daemon is stopping; the message stays",
                 releases->id);
        release_free(releases);
    }
    /* Their connections' QUIT is not waited for. */
    upstream_discard_closing();
}
