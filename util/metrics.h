/*
 * metrics - named counters, process-wide, for the daemon and its plugins.
 *
 * metrics_counter() finds or creates the counter of that name (names are
 * Prometheus metric names: [a-zA-Z_][a-zA-Z0-9_]*, at most 128 octets) and
 * returns a handle that stays valid until metrics_shutdown(); NULL for a bad
 * name or when out of memory.  Adding is one atomic operation, any thread;
 * finding takes a lock, so hot paths keep the handle.
 *
 * metrics_format() writes every counter in the Prometheus text format, sorted
 * by name, into a malloc'd string.  metrics_http_start() serves that at
 * /metrics on an evhttp server of the given event loop.
 */
#ifndef SMTPGATE_METRICS_H
#define SMTPGATE_METRICS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct metrics_counter;

struct metrics_counter *metrics_counter(const char *name);
void metrics_add(struct metrics_counter *c, uint64_t delta);
uint64_t metrics_value(const struct metrics_counter *c);
bool metrics_name_ok(const char *name);

char *metrics_format(size_t *len);

struct metrics_http;
/* address: "host:port"; NULL and a log line if it cannot listen. */
struct metrics_http *metrics_http_start(struct event_base *base, const char *address);
void metrics_http_stop(struct metrics_http *m);

void metrics_shutdown(void);

#endif
