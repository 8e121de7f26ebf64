/*
 * status_page - / and /status.json on the metrics listener (status_page.h).
 *
 * The page is daemon/status_page.html, built into the binary (.incbin) so
 * that an installed smtpgate needs no file beside it and the page always
 * matches the daemon that serves it.  Every number on it comes from
 * /metrics, which the page fetches and parses itself: the page cannot show
 * a count the metrics do not.
 */
#include "daemon/status_page.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/recent_tx.h"
#include "util/build_info.h"
#include "util/json_out.h"
#include "util/metrics.h"

__asm__(".section .rodata\n"
        ".global status_page_html\n"
        ".type status_page_html, @object\n"
        ".balign 16\n"
        "status_page_html:\n"
        ".incbin \"daemon/status_page.html\"\n"
        ".global status_page_html_end\n"
        "status_page_html_end:\n"
        ".byte 0\n"
        ".previous\n");
extern const char status_page_html[], status_page_html_end[];

static char status_host[256];
static time_t status_started;

static void status_send(struct evhttp_request *req, const char *type, const char *body, size_t len)
{
    struct evbuffer *out = evbuffer_new();
    if (!out || evbuffer_add(out, body, len) < 0) {
        if (out)
            evbuffer_free(out);
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    /* Nothing on the page may load or run from anywhere but this listener. */
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'");
    evhttp_send_reply(req, HTTP_OK, "OK", out);
    evbuffer_free(out);
}

static void status_html_cb(struct evhttp_request *req, void *arg)
{
    (void)arg;
    status_send(req, "text/html; charset=utf-8", status_page_html,
                (size_t)(status_page_html_end - status_page_html));
}

static void status_json_cb(struct evhttp_request *req, void *arg)
{
    (void)arg;
    char head[1024];
    struct json_out j;
    json_out_init(&j, head, sizeof(head));
    json_out_key(&j, "version");
    json_out_cstr(&j, SMTPGATE_VERSION);
    json_out_key(&j, "hostname");
    json_out_cstr(&j, status_host);
    json_out_key(&j, "started");
    json_out_int(&j, (int64_t)status_started);
    json_out_key(&j, "now");
    json_out_int(&j, (int64_t)time(NULL));
    size_t n = json_out_finish(&j);
    /* head is "{...}\n": the recent array goes in before its closing brace. */
    while (n > 0 && head[n - 1] != '}')
        n--;
    size_t rlen;
    char *recent = recent_tx_json(&rlen);
    char *body = recent ? malloc(n + rlen + 16) : NULL;
    if (!body) {
        free(recent);
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    size_t k = n - 1;
    memcpy(body, head, k);
    memcpy(body + k, ",\"recent\":", 10);
    k += 10;
    memcpy(body + k, recent, rlen);
    k += rlen;
    body[k++] = '}';
    body[k++] = '\n';
    free(recent);
    status_send(req, "application/json", body, k);
    free(body);
}

int status_page_attach(struct metrics_http *m, const char *hostname, size_t recent)
{
    snprintf(status_host, sizeof(status_host), "%s", hostname ? hostname : "");
    status_started = time(NULL);
    if (metrics_http_route(m, "/", status_html_cb, NULL) < 0 ||
        metrics_http_route(m, "/status.json", status_json_cb, NULL) < 0)
        return -1;
    recent_tx_enable(recent);
    return 0;
}
