// fuzz-sources: plugins/ratelimit/rate_rule.c
/*
 * A rate limit rule from the admin's file must parse or be refused with a
 * reason, never crash or read past its length; what parses must be within
 * the documented bounds, name a key its kind may use, and parse again the
 * same from its canonical text.  The input is copied to a buffer of
 * exactly its size, so any read past len is caught.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit/rate_rule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct rate_rule r;
    const char *why = NULL;
    if (rate_rule_parse(buf, size, &r, &why) != 0) {
        if (why == NULL || *why == '\0')
            abort();
        free(buf);
        return 0;
    }
    if (r.count == 0 || r.count > RATE_COUNT_MAX)
        abort();
    if (r.kind == RATE_CONCURRENCY
            ? r.window_ms != 0
            : r.window_ms < RATE_WINDOW_MIN_MS || r.window_ms > RATE_WINDOW_MAX_MS ||
                  r.window_ms % 1000 != 0)
        abort();
    if ((r.kind == RATE_CONNECTIONS || r.kind == RATE_CONCURRENCY) && r.key != RATE_KEY_CLIENT &&
        r.key != RATE_KEY_CLIENT_NETWORK)
        abort();
    if (r.kind == RATE_MESSAGES && r.key == RATE_KEY_RECIPIENT_DOMAIN)
        abort();
    char text[128];
    if (r.kind == RATE_CONCURRENCY)
        snprintf(text, sizeof(text), "%s per %s %llu", rate_kind_name(r.kind), rate_key_name(r.key),
                 (unsigned long long)r.count);
    else
        snprintf(text, sizeof(text), "%s per %s %llu/%llus", rate_kind_name(r.kind),
                 rate_key_name(r.key), (unsigned long long)r.count,
                 (unsigned long long)(r.window_ms / 1000));
    struct rate_rule again;
    if (rate_rule_parse(text, strlen(text), &again, &why) != 0 || again.kind != r.kind ||
        again.key != r.key || again.count != r.count || again.window_ms != r.window_ms)
        abort();
    free(buf);
    return 0;
}
