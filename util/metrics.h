/*
 * metrics - a process-wide registry of metric families, for the daemon and
 * its plugins, exposed in the Prometheus text format.
 *
 * metrics_family() finds or creates a family: a name ([a-zA-Z_][a-zA-Z0-9_]*,
 * at most 128 octets; counters end in "_total"), a help text, a type, its label
 * names (a NULL-terminated list, at most METRICS_LABELS_MAX) and, for a
 * histogram, its bucket upper bounds (ascending; +Inf is implied).  Asking
 * again for a name with the same type and labels gives the same family; with
 * others, NULL.  metrics_series() finds or creates the series of one set of
 * label values (as many as the family has labels).  Both take a lock, so hot
 * paths look their handles up once and keep them; handles stay valid until
 * metrics_shutdown().
 *
 * Updating a series is one atomic operation (a histogram's sum: a
 * compare-and-swap loop), from any thread.  Every update ignores a NULL
 * series, so a failed look-up costs a count, never a crash.
 *
 * metrics_format() writes every family, sorted by name, each with # HELP and
 * # TYPE and its series sorted by their labels, into a malloc'd string.
 * metrics_http_start() serves that at /metrics on an evhttp server;
 * metrics_http_route() adds the daemon's other read-only pages to it.
 */
#ifndef SMTPGATE_METRICS_H
#define SMTPGATE_METRICS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_LABELS_MAX  4
#define METRICS_BUCKETS_MAX 24

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

struct metrics_family;
struct metrics_series;

struct metrics_family *metrics_family(const char *name, enum metrics_type type, const char *help,
                                      const char *const *labels, const double *buckets,
                                      size_t nbuckets);
struct metrics_series *metrics_series(struct metrics_family *f, const char *const *values);
/* As metrics_series, for label values that come from outside the
 * configuration (a plugin's symbol names): a new series is made only while
 * the family has fewer than max series; past that, every new set of values
 * gets overflow (a series of the family the caller made first, its
 * "other"), so the family's cardinality stays bounded. */
struct metrics_series *metrics_series_capped(struct metrics_family *f, const char *const *values,
                                             size_t max, struct metrics_series *overflow);
/* The series of a family without labels. */
struct metrics_series *metrics_single(const char *name, enum metrics_type type, const char *help);

void metrics_add(struct metrics_series *s, uint64_t delta);      /* counter */
void metrics_gauge_add(struct metrics_series *s, int64_t delta); /* gauge */
void metrics_gauge_set(struct metrics_series *s, int64_t value); /* gauge */
void metrics_observe(struct metrics_series *s, double value);    /* histogram */
/* A counter's value, a gauge's, or a histogram's count. */
int64_t metrics_value(const struct metrics_series *s);

bool metrics_name_ok(const char *name);

/* Bucket sets the daemon's histograms share. */
extern const double metrics_seconds_buckets[];
extern const size_t metrics_seconds_nbuckets;
extern const double metrics_bytes_buckets[];
extern const size_t metrics_bytes_nbuckets;

char *metrics_format(size_t *len);

struct metrics_http;
/* address: "host:port"; NULL and a log line if it cannot listen. */
struct metrics_http *metrics_http_start(struct event_base *base, const char *address);
/* Another page on the same listener: cb answers GET/HEAD of exactly path
 * (its query string aside).  0, or -1 when path is taken or memory ran out. */
struct evhttp_request;
int metrics_http_route(struct metrics_http *m, const char *path,
                       void (*cb)(struct evhttp_request *req, void *arg), void *arg);
void metrics_http_stop(struct metrics_http *m);

void metrics_shutdown(void);

#endif
