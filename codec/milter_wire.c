/*
 * milter_wire - the MTA's side of the milter protocol (see the header).
 *
 * Replies are judged strictly: a milter that sends something the protocol
 * does not allow is broken, and the plugin then applies its default_action
 * rather than guess what was meant (Postfix does the same).
 */
#include "codec/milter_wire.h"

#include <stdlib.h>
#include <string.h>

/* libmilter defines these only under _FFR_MDS_NEGOTIATE; the values are
 * what its SMFIP_MDS_256K and SMFIP_MDS_1M bits stand for. */
#ifndef MILTER_MDS_256K
#define MILTER_MDS_256K ((256 * 1024) - 1)
#endif
#ifndef MILTER_MDS_1M
#define MILTER_MDS_1M ((1024 * 1024) - 1)
#endif

/* The length field is 32 bits and counts the command octet too. */
#define MILTER_WIRE_PACKET_MAX (UINT32_MAX - 1u)

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- framing ---- */

long milter_wire_frame(const uint8_t *buf, size_t len, size_t max_data, char *cmd,
                       const uint8_t **data, size_t *data_len)
{
    if (len < MILTER_LEN_BYTES)
        return 0;
    uint32_t n = get32(buf);
    if (n == 0 || (size_t)n - 1 > max_data)
        return -1;
    if (len - MILTER_LEN_BYTES < n)
        return 0;
    *cmd = (char)buf[MILTER_LEN_BYTES];
    *data = buf + MILTER_LEN_BYTES + 1;
    *data_len = (size_t)n - 1;
    return (long)(MILTER_LEN_BYTES + (size_t)n);
}

size_t milter_wire_data_max(uint32_t protocol)
{
    if (protocol & SMFIP_MDS_1M)
        return MILTER_MDS_1M;
    if (protocol & SMFIP_MDS_256K)
        return MILTER_MDS_256K;
    return MILTER_MAX_DATA_SIZE;
}

/* ---- commands ---- */

void milter_out_init(struct milter_out *o)
{
    memset(o, 0, sizeof(*o));
}

void milter_out_free(struct milter_out *o)
{
    free(o->buf);
    milter_out_init(o);
}

void milter_out_clear(struct milter_out *o)
{
    o->len = 0;
    o->failed = false;
}

bool milter_out_failed(const struct milter_out *o)
{
    return o->failed;
}

static bool out_reserve(struct milter_out *o, size_t more)
{
    if (o->failed)
        return false;
    if (more > SIZE_MAX - o->len) {
        o->failed = true;
        return false;
    }
    if (o->len + more <= o->cap)
        return true;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + more)
        cap = cap > SIZE_MAX / 2 ? o->len + more : cap * 2;
    uint8_t *b = realloc(o->buf, cap);
    if (!b) {
        o->failed = true;
        return false;
    }
    o->buf = b;
    o->cap = cap;
    return true;
}

/* A packet is begun with its length left open, filled by out_end. */
static size_t out_begin(struct milter_out *o, char cmd)
{
    size_t start = o->len;
    if (!out_reserve(o, MILTER_LEN_BYTES + 1))
        return start;
    o->len += MILTER_LEN_BYTES;
    o->buf[o->len++] = (uint8_t)cmd;
    return start;
}

static void out_bytes(struct milter_out *o, const void *p, size_t n)
{
    if (n == 0 || !out_reserve(o, n))
        return;
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void out_str(struct milter_out *o, const char *s)
{
    out_bytes(o, s ? s : "", (s ? strlen(s) : 0) + 1);
}

static void out_u32(struct milter_out *o, uint32_t v)
{
    uint8_t b[4];
    put32(b, v);
    out_bytes(o, b, 4);
}

static void out_end(struct milter_out *o, size_t start)
{
    if (o->failed)
        return;
    size_t n = o->len - start - MILTER_LEN_BYTES;
    if (n > MILTER_WIRE_PACKET_MAX) {
        o->failed = true;
        return;
    }
    put32(o->buf + start, (uint32_t)n);
}

void milter_out_optneg(struct milter_out *o, uint32_t version, uint32_t actions, uint32_t protocol)
{
    size_t st = out_begin(o, SMFIC_OPTNEG);
    out_u32(o, version);
    out_u32(o, actions);
    out_u32(o, protocol);
    out_end(o, st);
}

void milter_out_macros(struct milter_out *o, char stage, const char *const *names,
                       const char *const *values, size_t n)
{
    size_t st = out_begin(o, SMFIC_MACRO);
    out_bytes(o, &stage, 1);
    for (size_t i = 0; i < n; i++) {
        out_str(o, names[i]);
        out_str(o, values[i]);
    }
    out_end(o, st);
}

void milter_out_connect(struct milter_out *o, const char *hostname, char family, uint16_t port,
                        const char *address)
{
    size_t st = out_begin(o, SMFIC_CONNECT);
    out_str(o, hostname);
    out_bytes(o, &family, 1);
    if (family != SMFIA_UNKNOWN) {
        uint8_t p[2] = {(uint8_t)(port >> 8), (uint8_t)port};
        out_bytes(o, p, 2);
        out_str(o, address);
    }
    out_end(o, st);
}

void milter_out_helo(struct milter_out *o, const char *helo)
{
    size_t st = out_begin(o, SMFIC_HELO);
    out_str(o, helo);
    out_end(o, st);
}

void milter_out_envelope(struct milter_out *o, char cmd, const char *path, const char *const *args,
                         size_t nargs)
{
    size_t st = out_begin(o, cmd);
    /* The milter sees the path in brackets, as Postfix sends it. */
    out_bytes(o, "<", 1);
    out_bytes(o, path, strlen(path));
    out_str(o, ">");
    for (size_t i = 0; i < nargs; i++)
        out_str(o, args[i]);
    out_end(o, st);
}

void milter_out_header(struct milter_out *o, const char *name, const char *value)
{
    size_t st = out_begin(o, SMFIC_HEADER);
    out_str(o, name);
    out_str(o, value);
    out_end(o, st);
}

int milter_out_body(struct milter_out *o, const uint8_t *chunk, size_t len)
{
    if (len > MILTER_CHUNK_SIZE)
        return -1;
    size_t st = out_begin(o, SMFIC_BODY);
    out_bytes(o, chunk, len);
    out_end(o, st);
    return 0;
}

void milter_out_unknown(struct milter_out *o, const char *line)
{
    size_t st = out_begin(o, SMFIC_UNKNOWN);
    out_str(o, line);
    out_end(o, st);
}

void milter_out_simple(struct milter_out *o, char cmd)
{
    out_end(o, out_begin(o, cmd));
}

/* ---- replies ---- */

/* Reads one NUL-terminated string at *pos; NULL when there is none. */
static const char *take_str(const uint8_t *data, size_t len, size_t *pos)
{
    if (*pos >= len)
        return NULL;
    const uint8_t *nul = memchr(data + *pos, '\0', len - *pos);
    if (!nul)
        return NULL;
    const char *s = (const char *)data + *pos;
    *pos = (size_t)(nul - data) + 1;
    return s;
}

static bool header_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > MILTER_WIRE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 33 || c > 126 || c == ':')
            return false;
    }
    return true;
}

/* "[45]NN" then '-' (more lines follow), ' ' or the end, per line; lines
 * joined by CRLF, every line with the first one's code. */
static const char *replycode_check(const char *text, int *code)
{
    const char *p = text;
    int first = -1;
    for (;;) {
        if (!(p[0] == '4' || p[0] == '5') || p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9')
            return "reply code is not 4xx or 5xx";
        int c = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
        if (first < 0)
            first = c;
        else if (c != first)
            return "reply lines carry different codes";
        const char *eol = strstr(p, "\r\n");
        const char *end = eol ? eol : p + strlen(p);
        if (p[3] != '\0' && p[3] != ' ' && p[3] != '-' && p + 3 != end)
            return "reply code not followed by a blank or '-'";
        bool more = eol != NULL;
        if (more != (p + 3 < end && p[3] == '-'))
            return "a reply line's '-' does not match whether more lines follow";
        for (const char *q = p; q < end; q++)
            if (*q == '\r' || *q == '\n')
                return "bare CR or LF in the reply";
        if (!more)
            break;
        p = eol + 2;
    }
    *code = first;
    return NULL;
}

static enum milter_reply_kind invalid(struct milter_reply *out, const char *why)
{
    memset(out, 0, sizeof(*out));
    out->kind = MILTER_R_INVALID;
    out->why = why;
    return MILTER_R_INVALID;
}

static enum milter_reply_kind parse_header_edit(enum milter_reply_kind kind, const uint8_t *data,
                                                size_t len, struct milter_reply *out)
{
    size_t pos = 0;
    if (kind != MILTER_R_ADDHEADER) {
        if (len < 4)
            return invalid(out, "header index missing");
        out->index = get32(data);
        pos = 4;
    }
    out->name = take_str(data, len, &pos);
    out->value = out->name ? take_str(data, len, &pos) : NULL;
    if (!out->value)
        return invalid(out, "header name or value not NUL-terminated");
    if (!header_name_ok(out->name))
        return invalid(out, "malformed header name");
    if (pos != len)
        return invalid(out, "data after the header value");
    out->kind = kind;
    return kind;
}

static enum milter_reply_kind parse_envelope_edit(enum milter_reply_kind kind, const uint8_t *data,
                                                  size_t len, struct milter_reply *out)
{
    size_t pos = 0;
    out->addr = take_str(data, len, &pos);
    if (!out->addr)
        return invalid(out, "address not NUL-terminated");
    if (out->addr[0] == '\0')
        return invalid(out, "empty address");
    bool may_have_args = kind == MILTER_R_CHGFROM || kind == MILTER_R_ADDRCPT_PAR;
    if (may_have_args && pos < len) {
        out->args = take_str(data, len, &pos);
        if (!out->args)
            return invalid(out, "ESMTP arguments not NUL-terminated");
    }
    if (pos != len)
        return invalid(out, "data after the address");
    out->kind = kind;
    return kind;
}

enum milter_reply_kind milter_wire_reply(char cmd, const uint8_t *data, size_t len,
                                         struct milter_reply *out)
{
    memset(out, 0, sizeof(*out));
    enum milter_reply_kind bare = MILTER_R_INVALID;
    switch (cmd) {
    case SMFIR_ACCEPT:
        bare = MILTER_R_ACCEPT;
        break;
    case SMFIR_CONTINUE:
        bare = MILTER_R_CONTINUE;
        break;
    case SMFIR_REJECT:
        bare = MILTER_R_REJECT;
        break;
    case SMFIR_TEMPFAIL:
        bare = MILTER_R_TEMPFAIL;
        break;
    case SMFIR_DISCARD:
        bare = MILTER_R_DISCARD;
        break;
    case SMFIR_SKIP:
        bare = MILTER_R_SKIP;
        break;
    case SMFIR_PROGRESS:
        bare = MILTER_R_PROGRESS;
        break;
    case SMFIR_SHUTDOWN:
        bare = MILTER_R_SHUTDOWN;
        break;
    case SMFIR_CONN_FAIL:
        bare = MILTER_R_CONN_FAIL;
        break;
    case SMFIR_REPLYCODE: {
        size_t pos = 0;
        const char *text = take_str(data, len, &pos);
        if (!text || pos != len)
            return invalid(out, "reply text not one NUL-terminated string");
        int code;
        const char *why = replycode_check(text, &code);
        if (why)
            return invalid(out, why);
        out->text = text;
        out->code = code;
        out->kind = MILTER_R_REPLYCODE;
        return out->kind;
    }
    case SMFIR_QUARANTINE: {
        size_t pos = 0;
        out->text = take_str(data, len, &pos);
        if (!out->text || pos != len)
            return invalid(out, "quarantine reason not one NUL-terminated string");
        out->kind = MILTER_R_QUARANTINE;
        return out->kind;
    }
    case SMFIR_ADDHEADER:
        return parse_header_edit(MILTER_R_ADDHEADER, data, len, out);
    case SMFIR_INSHEADER:
        return parse_header_edit(MILTER_R_INSHEADER, data, len, out);
    case SMFIR_CHGHEADER:
        return parse_header_edit(MILTER_R_CHGHEADER, data, len, out);
    case SMFIR_CHGFROM:
        return parse_envelope_edit(MILTER_R_CHGFROM, data, len, out);
    case SMFIR_ADDRCPT:
        return parse_envelope_edit(MILTER_R_ADDRCPT, data, len, out);
    case SMFIR_ADDRCPT_PAR:
        return parse_envelope_edit(MILTER_R_ADDRCPT_PAR, data, len, out);
    case SMFIR_DELRCPT:
        return parse_envelope_edit(MILTER_R_DELRCPT, data, len, out);
    case SMFIR_REPLBODY:
        out->body = data;
        out->body_len = len;
        out->kind = MILTER_R_REPLBODY;
        return out->kind;
    case SMFIR_SETSYMLIST:
        return invalid(out, "SETSYMLIST outside the negotiation");
    default:
        return invalid(out, "unknown reply command");
    }
    if (len != 0)
        return invalid(out, "data after a reply that has none");
    out->kind = bare;
    return bare;
}

bool milter_wire_is_edit(enum milter_reply_kind kind)
{
    return kind >= MILTER_R_ADDHEADER && kind <= MILTER_R_REPLBODY;
}

const char *milter_wire_reply_name(enum milter_reply_kind kind)
{
    static const char *const names[] = {
        "invalid",    "accept",  "continue", "reject",      "tempfail",  "discard",   "replycode",
        "quarantine", "skip",    "progress", "shutdown",    "conn_fail", "addheader", "insheader",
        "chgheader",  "chgfrom", "addrcpt",  "addrcpt_par", "delrcpt",   "replbody",
    };
    return (size_t)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

/* ---- negotiation ---- */

int milter_wire_optneg(const uint8_t *data, size_t len, struct milter_optneg *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    if (len < MILTER_OPTLEN) {
        *why = "option negotiation shorter than its three words";
        return -1;
    }
    out->version = get32(data);
    out->actions = get32(data + 4);
    out->protocol = get32(data + 8);
    size_t pos = MILTER_OPTLEN;
    while (pos < len) {
        if (len - pos < 4) {
            *why = "macro list stage cut short";
            return -1;
        }
        uint32_t stage = get32(data + pos);
        pos += 4;
        if (stage >= MILTER_WIRE_STAGES) {
            *why = "macro list for an unknown stage";
            return -1;
        }
        if (out->macros[stage]) {
            *why = "two macro lists for one stage";
            return -1;
        }
        out->macros[stage] = take_str(data, len, &pos);
        if (!out->macros[stage]) {
            *why = "macro list not NUL-terminated";
            return -1;
        }
    }
    return 0;
}

int milter_wire_negotiate(const struct milter_optneg *offer, const struct milter_optneg *reply,
                          struct milter_optneg *agreed, const char **why)
{
    if (reply->version < MILTER_WIRE_MIN_VERSION || reply->version > offer->version) {
        *why = "protocol version not between 2 and the one offered";
        return -1;
    }
    if (reply->actions & ~offer->actions) {
        *why = "asks for actions that were not offered";
        return -1;
    }
    if (reply->protocol & ~offer->protocol) {
        *why = "asks for protocol steps that were not offered";
        return -1;
    }
    *agreed = *reply;
    return 0;
}
