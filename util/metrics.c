/*
 * metrics - a registry of metric families and their Prometheus exposition.
 *
 * Families, and the series of each, live in singly linked lists, prepended
 * under a mutex and never removed before shutdown, so a handle handed out is
 * never freed under a writer.  The exposition walks them under the same
 * mutex; values are read and written with relaxed atomics, as a metric needs
 * no ordering with anything else.
 */
#include "util/metrics.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/sockaddr.h"
#include "util/log.h"

#define METRICS_NAME_MAX 128

const double metrics_seconds_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,   0.25,   0.5,   1,    2.5,
                                          5,      10,    30,     60,    120,  300};
const size_t metrics_seconds_nbuckets =
    sizeof(metrics_seconds_buckets) / sizeof(metrics_seconds_buckets[0]);
const double metrics_bytes_buckets[] = {1024,    4096,    16384,    65536,   262144,
                                        1048576, 4194304, 16777216, 67108864};
const size_t metrics_bytes_nbuckets =
    sizeof(metrics_bytes_buckets) / sizeof(metrics_bytes_buckets[0]);

struct metrics_series {
    struct metrics_series *next;
    struct metrics_family *family;
    char *labels;               /* rendered: a="x",b="y" (escaped), "" without labels */
    _Atomic uint64_t value;     /* counter; gauge (as int64); histogram: sum's bits */
    _Atomic uint64_t buckets[]; /* histogram: per bucket, not cumulative; last is +Inf */
};

struct metrics_family {
    struct metrics_family *next;
    char *name, *help;
    enum metrics_type type;
    size_t nlabels, nbuckets;
    char *labels[METRICS_LABELS_MAX];
    double bounds[METRICS_BUCKETS_MAX];
    struct metrics_series *series;
    size_t nseries;
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_family *metrics_head;

bool metrics_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > METRICS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static void family_free(struct metrics_family *f)
{
    while (f->series) {
        struct metrics_series *s = f->series;
        f->series = s->next;
        free(s->labels);
        free(s);
    }
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f);
}

static bool family_same(const struct metrics_family *f, enum metrics_type type,
                        const char *const *labels, size_t nlabels, const double *buckets,
                        size_t nbuckets)
{
    if (f->type != type || f->nlabels != nlabels)
        return false;
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp(f->labels[i], labels[i]) != 0)
            return false;
    if (type != METRICS_HISTOGRAM)
        return true;
    if (f->nbuckets != nbuckets)
        return false;
    for (size_t i = 0; i < nbuckets; i++)
        if (f->bounds[i] != buckets[i])
            return false;
    return true;
}

struct metrics_family *metrics_family(const char *name, enum metrics_type type, const char *help,
                                      const char *const *labels, const double *buckets,
                                      size_t nbuckets)
{
    size_t nlabels = 0;
    while (labels && labels[nlabels]) {
        /* "le" belongs to histograms' buckets; "__" names are Prometheus's own */
        if (nlabels == METRICS_LABELS_MAX || !metrics_name_ok(labels[nlabels]) ||
            strcmp(labels[nlabels], "le") == 0 || strncmp(labels[nlabels], "__", 2) == 0)
            return NULL;
        nlabels++;
    }
    if (!metrics_name_ok(name) || !help || type < METRICS_COUNTER || type > METRICS_HISTOGRAM)
        return NULL;
    if (type == METRICS_HISTOGRAM) {
        if (!buckets || nbuckets == 0 || nbuckets > METRICS_BUCKETS_MAX)
            return NULL;
        for (size_t i = 1; i < nbuckets; i++)
            if (!(buckets[i] > buckets[i - 1]))
                return NULL;
    } else {
        nbuckets = 0;
    }
    pthread_mutex_lock(&metrics_lock);
    struct metrics_family *f = metrics_head;
    while (f && strcmp(f->name, name) != 0)
        f = f->next;
    if (f) {
        if (!family_same(f, type, labels, nlabels, buckets, nbuckets))
            f = NULL;
        pthread_mutex_unlock(&metrics_lock);
        return f;
    }
    f = calloc(1, sizeof(*f));
    bool ok = f && (f->name = strdup(name)) && (f->help = strdup(help));
    if (f) {
        f->type = type;
        f->nbuckets = nbuckets;
        for (size_t i = 0; i < nbuckets; i++)
            f->bounds[i] = buckets[i];
        for (size_t i = 0; ok && i < nlabels; i++, f->nlabels++)
            ok = (f->labels[i] = strdup(labels[i])) != NULL;
    }
    if (ok) {
        f->next = metrics_head;
        metrics_head = f;
    } else if (f) {
        family_free(f);
        f = NULL;
    }
    pthread_mutex_unlock(&metrics_lock);
    return f;
}

/* The text format's escaping: a label value escapes \, " and newline; a help
 * text escapes \ and newline. */
static void put_escaped(FILE *out, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", out);
        else if (*s == '\n')
            fputs("\\n", out);
        else if (quote && *s == '"')
            fputs("\\\"", out);
        else
            fputc(*s, out);
    }
}

static char *render_labels(const struct metrics_family *f, const char *const *values)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return NULL;
    for (size_t i = 0; i < f->nlabels; i++) {
        fprintf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
        put_escaped(out, values[i] ? values[i] : "", true);
        fputc('"', out);
    }
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* The series of values; a new one only while the family has fewer than max
 * (otherwise NULL, *full set). */
static struct metrics_series *series_get(struct metrics_family *f, const char *const *values,
                                         size_t max, bool *full)
{
    *full = false;
    if (!f || (f->nlabels && !values))
        return NULL;
    char *labels = render_labels(f, values);
    if (!labels)
        return NULL;
    pthread_mutex_lock(&metrics_lock);
    struct metrics_series *s = f->series;
    while (s && strcmp(s->labels, labels) != 0)
        s = s->next;
    if (!s && f->nseries >= max)
        *full = true;
    else if (!s) {
        size_t nb = f->type == METRICS_HISTOGRAM ? f->nbuckets + 1 : 0;
        s = calloc(1, sizeof(*s) + nb * sizeof(s->buckets[0]));
        if (s) {
            s->family = f;
            s->labels = labels;
            labels = NULL;
            s->next = f->series;
            f->series = s;
            f->nseries++;
        }
    }
    pthread_mutex_unlock(&metrics_lock);
    free(labels);
    return s;
}

struct metrics_series *metrics_series(struct metrics_family *f, const char *const *values)
{
    bool full;
    return series_get(f, values, SIZE_MAX, &full);
}

struct metrics_series *metrics_series_capped(struct metrics_family *f, const char *const *values,
                                             size_t max, struct metrics_series *overflow)
{
    bool full;
    struct metrics_series *s = series_get(f, values, max, &full);
    return full ? overflow : s;
}

struct metrics_series *metrics_single(const char *name, enum metrics_type type, const char *help)
{
    return metrics_series(metrics_family(name, type, help, NULL,
                                         type == METRICS_HISTOGRAM ? metrics_seconds_buckets : NULL,
                                         metrics_seconds_nbuckets),
                          NULL);
}

void metrics_add(struct metrics_series *s, uint64_t delta)
{
    if (s && s->family->type == METRICS_COUNTER)
        atomic_fetch_add_explicit(&s->value, delta, memory_order_relaxed);
}

void metrics_gauge_add(struct metrics_series *s, int64_t delta)
{
    if (s && s->family->type == METRICS_GAUGE)
        atomic_fetch_add_explicit(&s->value, (uint64_t)delta, memory_order_relaxed);
}

void metrics_gauge_set(struct metrics_series *s, int64_t value)
{
    if (s && s->family->type == METRICS_GAUGE)
        atomic_store_explicit(&s->value, (uint64_t)value, memory_order_relaxed);
}

void metrics_observe(struct metrics_series *s, double value)
{
    if (!s || s->family->type != METRICS_HISTOGRAM || value != value)
        return;
    const struct metrics_family *f = s->family;
    size_t b = 0;
    while (b < f->nbuckets && value > f->bounds[b])
        b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&s->value, memory_order_relaxed), next;
    do {
        double sum;
        memcpy(&sum, &old, sizeof(sum));
        sum += value;
        memcpy(&next, &sum, sizeof(next));
    } while (!atomic_compare_exchange_weak_explicit(&s->value, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}

static uint64_t series_count(const struct metrics_series *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= s->family->nbuckets; i++)
        n += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
    return n;
}

int64_t metrics_value(const struct metrics_series *s)
{
    if (!s)
        return 0;
    if (s->family->type == METRICS_HISTOGRAM)
        return (int64_t)series_count(s);
    return (int64_t)atomic_load_explicit(&s->value, memory_order_relaxed);
}

static int family_cmp(const void *a, const void *b)
{
    const struct metrics_family *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int series_cmp(const void *a, const void *b)
{
    const struct metrics_series *const *x = a, *const *y = b;
    return strcmp((*x)->labels, (*y)->labels);
}

static void put_sample(FILE *out, const char *name, const char *suffix, const char *labels,
                       const char *extra)
{
    bool any = labels[0] || extra;
    fprintf(out, "%s%s%s%s%s%s%s", name, suffix, any ? "{" : "", labels,
            labels[0] && extra ? "," : "", extra ? extra : "", any ? "}" : "");
}

static void format_series(FILE *out, const struct metrics_family *f, const struct metrics_series *s)
{
    if (f->type == METRICS_COUNTER) {
        put_sample(out, f->name, "", s->labels, NULL);
        fprintf(out, " %llu\n", (unsigned long long)metrics_value(s));
        return;
    }
    if (f->type == METRICS_GAUGE) {
        put_sample(out, f->name, "", s->labels, NULL);
        fprintf(out, " %lld\n", (long long)metrics_value(s));
        return;
    }
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= f->nbuckets; i++) {
        char le[48];
        cumulative += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        if (i < f->nbuckets)
            snprintf(le, sizeof(le), "le=\"%.17g\"", f->bounds[i]);
        else
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        put_sample(out, f->name, "_bucket", s->labels, le);
        fprintf(out, " %llu\n", (unsigned long long)cumulative);
    }
    uint64_t bits = atomic_load_explicit(&s->value, memory_order_relaxed);
    double sum;
    memcpy(&sum, &bits, sizeof(sum));
    put_sample(out, f->name, "_sum", s->labels, NULL);
    fprintf(out, " %.17g\n", sum);
    put_sample(out, f->name, "_count", s->labels, NULL);
    /* the +Inf bucket's, so the two never disagree within one scrape */
    fprintf(out, " %llu\n", (unsigned long long)cumulative);
}

static const char *type_name(enum metrics_type t)
{
    return t == METRICS_COUNTER ? "counter" : t == METRICS_GAUGE ? "gauge" : "histogram";
}

static void format_family(FILE *out, const struct metrics_family *f)
{
    fprintf(out, "# HELP %s ", f->name);
    put_escaped(out, f->help, false);
    fprintf(out, "\n# TYPE %s %s\n", f->name, type_name(f->type));
    size_t n = 0;
    for (const struct metrics_series *s = f->series; s; s = s->next)
        n++;
    const struct metrics_series **all = calloc(n ? n : 1, sizeof(*all));
    if (!all)
        return;
    size_t k = 0;
    for (const struct metrics_series *s = f->series; s; s = s->next)
        all[k++] = s;
    qsort(all, n, sizeof(*all), series_cmp);
    for (size_t i = 0; i < n; i++)
        format_series(out, f, all[i]);
    free(all);
}

char *metrics_format(size_t *len)
{
    char *text = NULL;
    size_t used = 0;
    FILE *out = open_memstream(&text, &used);
    if (!out) {
        if (len)
            *len = 0;
        return NULL;
    }
    pthread_mutex_lock(&metrics_lock);
    size_t n = 0;
    for (struct metrics_family *f = metrics_head; f; f = f->next)
        n++;
    struct metrics_family **all = calloc(n ? n : 1, sizeof(*all));
    if (all) {
        size_t k = 0;
        for (struct metrics_family *f = metrics_head; f; f = f->next)
            all[k++] = f;
        qsort(all, n, sizeof(*all), family_cmp);
        for (size_t i = 0; i < n; i++)
            format_family(out, all[i]);
    }
    pthread_mutex_unlock(&metrics_lock);
    bool failed = !all || ferror(out);
    free(all);
    if (fclose(out) != 0 || failed) {
        free(text);
        text = NULL;
        used = 0;
    }
    if (len)
        *len = used;
    return text;
}

struct metrics_http {
    struct evhttp *http;
};

static void metrics_http_cb(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const char *uri = evhttp_request_get_uri(req);
    if (!uri || strncmp(uri, "/metrics", 8) != 0 || (uri[8] != '\0' && uri[8] != '?')) {
        evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics or /");
        return;
    }
    size_t len;
    char *text = metrics_format(&len);
    struct evbuffer *body = evbuffer_new();
    if (!text || !body) {
        free(text);
        if (body)
            evbuffer_free(body);
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    evbuffer_add(body, text, len);
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, HTTP_OK, "OK", body);
    evbuffer_free(body);
}

struct metrics_http *metrics_http_start(struct event_base *base, const char *address)
{
    struct sg_sockaddr sa;
    const char *why = sockaddr_parse(address, SOCKADDR_PASSIVE, &sa);
    if (why) {
        log_err("metrics_listen %s: %s", address, why);
        return NULL;
    }
    struct metrics_http *m = calloc(1, sizeof(*m));
    if (!m || !(m->http = evhttp_new(base))) {
        free(m);
        log_err("metrics_listen %s: out of memory", address);
        return NULL;
    }
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(m->http, metrics_http_cb, NULL);
    evutil_socket_t fd = socket(sa.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&sa.sa, sa.len) < 0 || listen(fd, 64) < 0 ||
        !evhttp_accept_socket_with_handle(m->http, fd)) {
        int err = errno;
        log_err("metrics_listen %s: cannot listen: %s", address, strerror(err));
        if (fd >= 0)
            evutil_closesocket(fd);
        evhttp_free(m->http);
        free(m);
        return NULL;
    }
    return m;
}

int metrics_http_route(struct metrics_http *m, const char *path,
                       void (*cb)(struct evhttp_request *req, void *arg), void *arg)
{
    return m && evhttp_set_cb(m->http, path, cb, arg) == 0 ? 0 : -1;
}

void metrics_http_stop(struct metrics_http *m)
{
    if (!m)
        return;
    evhttp_free(m->http);
    free(m);
}

void metrics_shutdown(void)
{
    pthread_mutex_lock(&metrics_lock);
    while (metrics_head) {
        struct metrics_family *f = metrics_head;
        metrics_head = f->next;
        family_free(f);
    }
    pthread_mutex_unlock(&metrics_lock);
}
