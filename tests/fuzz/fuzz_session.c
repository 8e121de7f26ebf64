// fuzz-sources: util/*.c codec/*.c message/*.c config/*.c chain/*.c daemon/*.c !daemon/main.c
// fuzz-pkgs: libevent_openssl libevent_pthreads -ldl
/*
 * Whole SMTP sessions from the network: the input is everything one client
 * sends - commands, DATA, BDAT chunks, pipelined or not - written at once
 * into a real loopback connection to the session code, followed by the end
 * of its sending side.  The session relays to an upstream that lives in this
 * process (a plain SMTP receiver on another loopback socket that says yes to
 * everything, offering PIPELINING, CHUNKING, 8BITMIME, SMTPUTF8 and XCLIENT),
 * so every path from parse to relay and back runs as in the daemon, on one
 * event loop.
 *
 * What must hold for any input: no crash, no sanitizer report, no leak, and
 * the session ends by itself once the client's input is spent - the loop is
 * bounded, and a session still alive at the bound is a hang (abort).
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "config/config.h"
#include "daemon/runtime.h"
#include "daemon/session.h"
#include "daemon/upstream.h"
#include "daemon/upstream_pool.h"
#include "util/log.h"

#define MAX_INPUT     (64 * 1024)
#define SESSION_BOUND 10 /* seconds of real time a session may take */

static struct event_base *base;
static struct sg_runtime *rt;
static int client_listen_fd;
static struct sockaddr_in client_listen_addr;
static struct session_list sessions;
static unsigned upstream_open;
static int sessions_gone;

/* ---- the upstream in this process ---- */

enum up_mode { UP_CMD, UP_DATA, UP_BDAT };

struct up_conn {
    enum up_mode mode;
    size_t bdat_left;
};

static void up_say(struct bufferevent *bev, const char *text)
{
    evbuffer_add_printf(bufferevent_get_output(bev), "%s\r\n", text);
}

static void up_close(struct bufferevent *bev, struct up_conn *c)
{
    bufferevent_free(bev);
    free(c);
    upstream_open--;
}

static void up_command(struct bufferevent *bev, struct up_conn *c, const char *line)
{
    if (!strncasecmp(line, "EHLO", 4))
        up_say(bev, "250-up.fuzz.test\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n"
                    "250-CHUNKING\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n"
                    "250 XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT");
    else if (!strncasecmp(line, "XCLIENT", 7))
        up_say(bev, "220 up.fuzz.test ESMTP");
    else if (!strncasecmp(line, "DATA", 4)) {
        c->mode = UP_DATA;
        up_say(bev, "354 go ahead");
    } else if (!strncasecmp(line, "BDAT ", 5)) {
        c->bdat_left = strtoul(line + 5, NULL, 10);
        c->mode = UP_BDAT;
    } else if (!strncasecmp(line, "QUIT", 4))
        up_say(bev, "221 2.0.0 Bye");
    else
        up_say(bev, "250 2.0.0 Ok");
}

static void up_read_cb(struct bufferevent *bev, void *arg)
{
    struct up_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        if (c->mode == UP_BDAT) {
            size_t n = evbuffer_get_length(in);
            if (n > c->bdat_left)
                n = c->bdat_left;
            evbuffer_drain(in, n);
            c->bdat_left -= n;
            if (c->bdat_left > 0)
                return;
            c->mode = UP_CMD;
            up_say(bev, "250 2.0.0 Ok: chunk");
            continue;
        }
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF_STRICT);
        if (!line)
            return;
        if (c->mode == UP_DATA) {
            if (len == 1 && line[0] == '.') {
                c->mode = UP_CMD;
                up_say(bev, "250 2.0.0 Ok: queued as FUZZ");
            }
        } else {
            up_command(bev, c, line);
        }
        free(line);
    }
}

static void up_event_cb(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        up_close(bev, arg);
}

static void up_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                         void *arg)
{
    (void)l, (void)sa, (void)len, (void)arg;
    struct up_conn *c = calloc(1, sizeof(*c));
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c || !bev)
        abort();
    upstream_open++;
    bufferevent_setcb(bev, up_read_cb, NULL, up_event_cb, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    up_say(bev, "220 up.fuzz.test ESMTP");
}

/* ---- the client side ---- */

struct client {
    struct bufferevent *bev;
};

static void client_read_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev, (void)what, (void)arg;
}

static void session_gone(void *arg)
{
    (void)arg;
    sessions_gone++;
}

static void probe_done(void *arg)
{
    (void)arg;
    event_base_loopbreak(base);
}

static struct sg_runtime *current_runtime(void)
{
    return runtime_ref(rt);
}

static void bound_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    *(bool *)arg = true;
}

/* Run the loop until done() or the bound: one pass at a time, so that a
 * quick session costs no more than its own events. */
static bool run_until(bool (*done)(void), int seconds)
{
    bool expired = false;
    struct event *bound = evtimer_new(base, bound_cb, &expired);
    struct timeval t = {.tv_sec = seconds};
    if (!bound || evtimer_add(bound, &t) < 0)
        abort();
    while (!done() && !expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(bound);
    return done();
}

static bool all_closed(void)
{
    return sessions.count == 0 && upstream_open == 0;
}

static int gone_mark;

static bool session_ended(void)
{
    return sessions_gone != gone_mark;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    log_open("fuzz_session", false, LOG_LOCAL7);
    base = event_base_new();
    struct sockaddr_in up = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct evconnlistener *l =
        evconnlistener_new_bind(base, up_accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                128, (struct sockaddr *)&up, sizeof(up));
    if (!l)
        abort();
    socklen_t alen = sizeof(up);
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&up, &alen);

    client_listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    client_listen_addr =
        (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    alen = sizeof(client_listen_addr);
    if (bind(client_listen_fd, (struct sockaddr *)&client_listen_addr, alen) < 0 ||
        listen(client_listen_fd, 16) < 0 ||
        getsockname(client_listen_fd, (struct sockaddr *)&client_listen_addr, &alen) < 0)
        abort();

    static char spool[] = "/tmp/fuzz-session-XXXXXX";
    if (!mkdtemp(spool))
        abort();
    char listen_opt[96], upstream_opt[128], spool_opt[96];
    snprintf(listen_opt, sizeof(listen_opt), "listen = {\"127.0.0.1:%u\"}",
             ntohs(client_listen_addr.sin_port));
    snprintf(upstream_opt, sizeof(upstream_opt), "upstream u { address = \"127.0.0.1:%u\" }",
             ntohs(up.sin_port));
    snprintf(spool_opt, sizeof(spool_opt), "spool_dir = \"%s\"", spool);
    const char *overrides[] = {
        listen_opt,
        upstream_opt,
        spool_opt,
        "hostname = \"gate.fuzz.test\"",
        "client_identity = \"xclient\"",
        "client_name_lookup = false",
        "spill_threshold = 16384", /* big messages go through the spool file too */
        "max_message_size = 1000000",
        "command_timeout = 5",
        "data_timeout = 5",
        "upstream_final_timeout = 5",
    };
    struct config_load_opts opts = {.numeric_hosts = true};
    struct sg_config *cfg =
        config_load(NULL, overrides, sizeof(overrides) / sizeof(overrides[0]), &opts);
    if (!cfg)
        abort();
    rt = runtime_new(cfg, 1);
    if (!rt || upstream_pool_attach(rt) < 0)
        abort();
    runtime_set(runtime_ref(rt));
    /* The first probe learns the upstream's extensions, as the daemon's does at start. */
    struct upstream_probe *probe = upstream_probe_start(base, current_runtime, probe_done, NULL);
    if (!probe)
        abort();
    event_base_dispatch(base);
    upstream_probe_stop(probe);
    run_until(all_closed, 2);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    if (cfd < 0 ||
        connect(cfd, (struct sockaddr *)&client_listen_addr, sizeof(client_listen_addr)) < 0)
        abort();
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    int sfd = accept(client_listen_fd, (struct sockaddr *)&peer, &plen);
    if (sfd < 0)
        abort();
    evutil_make_socket_nonblocking(sfd);
    int one = 1;
    setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    struct session_host host = {.base = base, .sessions = &sessions, .gone = session_gone};
    gone_mark = sessions_gone;
    session_start(&host, sfd, (struct sockaddr *)&peer, plen,
                  runtime_ref(rt)); /* the session owns a reference */

    evutil_make_socket_nonblocking(cfd);
    struct bufferevent *client = bufferevent_socket_new(base, cfd, BEV_OPT_CLOSE_ON_FREE);
    if (!client)
        abort();
    bufferevent_setcb(client, client_read_cb, client_write_cb, client_event_cb, NULL);
    /* An exact-size copy, so reading past the input is caught by ASan. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    evbuffer_add(bufferevent_get_output(client), copy, size);
    free(copy);
    bufferevent_enable(client, EV_READ | EV_WRITE);
    if (size == 0)
        shutdown(cfd, SHUT_WR);

    if (!run_until(session_ended, SESSION_BOUND)) {
        fprintf(stderr, "fuzz_session: the session did not end within %d s of the input's end\n",
                SESSION_BOUND);
        abort();
    }
    bufferevent_free(client);
    /* The upstream connection says QUIT after its session: let it finish. */
    if (!run_until(all_closed, 5)) {
        fprintf(stderr, "fuzz_session: an upstream connection outlived its session\n");
        abort();
    }
    return 0;
}
