/*
 * rate_rule - parser of "KIND per KEY COUNT/WINDOW" (contract in
 * rate_rule.h).
 *
 * The input is read by index against its length only: it need not be
 * NUL-terminated and no byte past len is ever looked at (the fuzz harness
 * hands over exact-size copies).  Numbers are read digit by digit with an
 * overflow check before each step, never with strtoull, whose idea of
 * blanks, signs and locales is not the syntax's.
 */
#include "rate_rule.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static const char *const kind_names[] = {"connections", "messages", "recipients", "concurrency"};
static const char *const key_names[] = {"client",        "client_network", "sender",
                                        "sender_domain", "login",          "recipient_domain"};

const char *rate_kind_name(enum rate_kind kind)
{
    return (unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[kind] : "?";
}

const char *rate_key_name(enum rate_key key)
{
    return (unsigned)key < sizeof(key_names) / sizeof(key_names[0]) ? key_names[key] : "?";
}

struct cursor {
    const char *s;
    size_t len, pos;
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The next blank-separated word: its start and length (0 at the end). */
static size_t next_word(struct cursor *c, const char **word)
{
    while (c->pos < c->len && is_blank(c->s[c->pos]))
        c->pos++;
    *word = c->s + c->pos;
    size_t start = c->pos;
    while (c->pos < c->len && !is_blank(c->s[c->pos]))
        c->pos++;
    return c->pos - start;
}

static int word_index(const char *w, size_t n, const char *const *names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(names[i]) == n && strncasecmp(w, names[i], n) == 0)
            return (int)i;
    return -1;
}

/* Digits at w[*i...]: false if none, or the value passes max. */
static bool read_number(const char *w, size_t n, size_t *i, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t start = *i;
    while (*i < n && w[*i] >= '0' && w[*i] <= '9') {
        unsigned d = (unsigned)(w[*i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
        (*i)++;
    }
    *out = v;
    return *i > start;
}

static bool key_allowed(enum rate_kind kind, enum rate_key key)
{
    switch (kind) {
    case RATE_CONNECTIONS:
    case RATE_CONCURRENCY:
        return key == RATE_KEY_CLIENT || key == RATE_KEY_CLIENT_NETWORK;
    case RATE_MESSAGES:
        return key != RATE_KEY_RECIPIENT_DOMAIN;
    case RATE_RECIPIENTS:
        return true;
    }
    return false;
}

static int parse_window(const char *w, size_t n, size_t i, uint64_t *ms, const char **why)
{
    uint64_t num = 1;
    if (i < n && w[i] >= '0' && w[i] <= '9' &&
        !read_number(w, n, &i, RATE_WINDOW_MAX_MS / 1000, &num)) {
        *why = "the window is too long (at most 7d)";
        return -1;
    }
    if (i + 1 != n) {
        *why = "the window must be a number and a unit: s, m, h or d (\"1m\")";
        return -1;
    }
    uint64_t unit;
    switch (w[i] | 0x20) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60000;
        break;
    case 'h':
        unit = 3600000;
        break;
    case 'd':
        unit = 86400000;
        break;
    default:
        *why = "the window must be a number and a unit: s, m, h or d (\"1m\")";
        return -1;
    }
    if (num == 0 || num > RATE_WINDOW_MAX_MS / unit) {
        *why = num == 0 ? "the window must not be empty" : "the window is too long (at most 7d)";
        return -1;
    }
    *ms = num * unit;
    return 0;
}

int rate_rule_parse(const char *s, size_t len, struct rate_rule *out, const char **why)
{
    static const char *dummy;
    if (why == NULL)
        why = &dummy;
    struct cursor c = {s, s ? len : 0, 0};
    const char *w;
    size_t n = next_word(&c, &w);
    int kind = word_index(w, n, kind_names, 4);
    if (kind < 0) {
        *why = "must start with connections, messages, recipients or concurrency";
        return -1;
    }
    n = next_word(&c, &w);
    if (n != 3 || strncasecmp(w, "per", 3) != 0) {
        *why = "want \"per\" after the kind (\"messages per sender 100/1h\")";
        return -1;
    }
    n = next_word(&c, &w);
    int key = word_index(w, n, key_names, 6);
    if (key < 0) {
        *why = "unknown key: want client, client_network, sender, sender_domain, login or "
               "recipient_domain";
        return -1;
    }
    if (!key_allowed((enum rate_kind)kind, (enum rate_key)key)) {
        *why = kind == RATE_MESSAGES ? "messages cannot be counted per recipient_domain"
                                     : "connections are counted per client or client_network";
        return -1;
    }
    n = next_word(&c, &w);
    size_t i = 0;
    uint64_t count;
    if (!read_number(w, n, &i, RATE_COUNT_MAX, &count) || count == 0) {
        *why = "want a count from 1 to 1000000000";
        return -1;
    }
    uint64_t window_ms = 0;
    if (kind == RATE_CONCURRENCY) {
        if (i != n) {
            *why = "concurrency takes a count only (\"concurrency per client 10\")";
            return -1;
        }
    } else {
        if (i >= n || w[i] != '/') {
            *why = "want COUNT/WINDOW (\"30/1m\")";
            return -1;
        }
        if (parse_window(w, n, i + 1, &window_ms, why) < 0)
            return -1;
    }
    if (next_word(&c, &w) != 0) {
        *why = "unexpected text after the rule";
        return -1;
    }
    if (out) {
        out->kind = (enum rate_kind)kind;
        out->key = (enum rate_key)key;
        out->count = count;
        out->window_ms = window_ms;
    }
    return 0;
}
