/*
 * metrics - a registry of atomic counters and their Prometheus exposition.
 *
 * Counters live in one singly linked list, prepended under a mutex and never
 * removed before shutdown, so a handle handed out is never freed under a
 * reader.  The exposition copies name and value of each under the same
 * mutex; the values themselves are read with relaxed atomics, as counters
 * need no ordering with anything else.
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

struct metrics_counter {
    struct metrics_counter *next;
    _Atomic uint64_t value;
    char name[];
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_counter *metrics_head;

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

struct metrics_counter *metrics_counter(const char *name)
{
    if (!metrics_name_ok(name))
        return NULL;
    pthread_mutex_lock(&metrics_lock);
    struct metrics_counter *c = metrics_head;
    while (c && strcmp(c->name, name) != 0)
        c = c->next;
    if (!c) {
        size_t n = strlen(name);
        c = calloc(1, sizeof(*c) + n + 1);
        if (c) {
            memcpy(c->name, name, n + 1);
            atomic_init(&c->value, 0);
            c->next = metrics_head;
            metrics_head = c;
        }
    }
    pthread_mutex_unlock(&metrics_lock);
    return c;
}

void metrics_add(struct metrics_counter *c, uint64_t delta)
{
    if (c)
        atomic_fetch_add_explicit(&c->value, delta, memory_order_relaxed);
}

uint64_t metrics_value(const struct metrics_counter *c)
{
    return c ? atomic_load_explicit(&c->value, memory_order_relaxed) : 0;
}

static int metrics_cmp(const void *a, const void *b)
{
    const struct metrics_counter *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

char *metrics_format(size_t *len)
{
    pthread_mutex_lock(&metrics_lock);
    size_t n = 0;
    for (struct metrics_counter *c = metrics_head; c; c = c->next)
        n++;
    struct metrics_counter **all = calloc(n ? n : 1, sizeof(*all));
    char *out = NULL;
    size_t cap = 64 + n * (2 * METRICS_NAME_MAX + 64), used = 0;
    if (all && (out = malloc(cap))) {
        size_t k = 0;
        for (struct metrics_counter *c = metrics_head; c; c = c->next)
            all[k++] = c;
        qsort(all, n, sizeof(*all), metrics_cmp);
        out[0] = '\0';
        for (size_t i = 0; i < n; i++)
            used += (size_t)snprintf(out + used, cap - used, "# TYPE %s counter\n%s %llu\n",
                                     all[i]->name, all[i]->name,
                                     (unsigned long long)metrics_value(all[i]));
    }
    pthread_mutex_unlock(&metrics_lock);
    free(all);
    if (len)
        *len = out ? used : 0;
    return out;
}

struct metrics_http {
    struct evhttp *http;
};

static void metrics_http_cb(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const char *uri = evhttp_request_get_uri(req);
    if (!uri || strncmp(uri, "/metrics", 8) != 0 || (uri[8] != '\0' && uri[8] != '?')) {
        evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics");
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
        log_err("metrics_listen %s: cannot listen", address);
        if (fd >= 0)
            evutil_closesocket(fd);
        evhttp_free(m->http);
        free(m);
        return NULL;
    }
    return m;
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
        struct metrics_counter *c = metrics_head;
        metrics_head = c->next;
        free(c);
    }
    pthread_mutex_unlock(&metrics_lock);
}
