/*
 * rate_rule - one rate limit rule as the admin writes it, parsed; pure.
 *
 *   KIND per KEY COUNT/WINDOW      connections, messages, recipients
 *   concurrency per KEY COUNT      connections open at once
 *
 * KIND    connections | messages | recipients | concurrency
 * KEY     client | client_network | sender | sender_domain | login |
 *         recipient_domain; which keys a kind may use follows from when it
 *         is counted: connections and concurrency at connect (client,
 *         client_network), messages at MAIL (not recipient_domain),
 *         recipients at RCPT (any)
 * COUNT   1 to 1000000000
 * WINDOW  [N]UNIT, UNIT s, m, h or d, N from 1 (absent: 1); 1 s to 7 d
 *
 * Words are separated by blanks (spaces, tabs), case does not matter,
 * leading and trailing blanks are allowed.  rate_rule_parse() takes the
 * bytes and their length (no NUL needed), fills *out and returns 0, or
 * returns -1 with a static reason in *why.
 */
#ifndef SMTPGATE_RATE_RULE_H
#define SMTPGATE_RATE_RULE_H

#include <stddef.h>
#include <stdint.h>

enum rate_kind { RATE_CONNECTIONS = 0, RATE_MESSAGES, RATE_RECIPIENTS, RATE_CONCURRENCY };

enum rate_key {
    RATE_KEY_CLIENT = 0,
    RATE_KEY_CLIENT_NETWORK,
    RATE_KEY_SENDER,
    RATE_KEY_SENDER_DOMAIN,
    RATE_KEY_LOGIN,
    RATE_KEY_RECIPIENT_DOMAIN,
};

#define RATE_COUNT_MAX     1000000000ULL
#define RATE_WINDOW_MIN_MS 1000ULL
#define RATE_WINDOW_MAX_MS (7ULL * 86400 * 1000)

struct rate_rule {
    enum rate_kind kind;
    enum rate_key key;
    uint64_t count;
    uint64_t window_ms; /* 0 for concurrency */
};

int rate_rule_parse(const char *s, size_t len, struct rate_rule *out, const char **why);

/* "connections", "client_network"...: the words of the syntax. */
const char *rate_kind_name(enum rate_kind kind);
const char *rate_key_name(enum rate_key key);

#endif
