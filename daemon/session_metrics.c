/*
 * session_metrics - the session's families: connections and TLS sessions
 * by listener (and TLS version), open sessions, transactions by result,
 * session duration and message size; and, at the first registration, the
 * chain's family of symbols (smtpgate_symbols_total).
 *
 * The unlabelled series are looked up once (pthread_once), so a session
 * costs a few relaxed atomic adds; a listener's series is one registry look-up
 * at accept (and at a TLS handshake), which the config bounds in number.
 * A listener is named by its section's title, a plain "listen" address by
 * the address.
 */
#include <pthread.h>
#include <string.h>

#include "chain/chain.h"
#include "daemon/session.h"
#include "daemon/session_int.h"
#include "util/metrics.h"

static const char *const session_results[] = {"accepted", "deferred",  "rejected",   "refused",
                                              "aborted",  "discarded", "quarantined"};
#define SESSION_NRESULTS (sizeof(session_results) / sizeof(session_results[0]))

static struct metrics_series *results[SESSION_NRESULTS];
static struct metrics_family *connections, *tls_sessions;
static struct metrics_series *open_sessions, *duration, *message_size, *early_talkers;
static pthread_once_t session_metrics_once = PTHREAD_ONCE_INIT;

static void session_metrics_init(void)
{
    static const char *const result_label[] = {"result", NULL};
    struct metrics_family *tx =
        metrics_family("smtpgate_transactions_total", METRICS_COUNTER,
                       "Transactions ended, by how they ended", result_label, NULL, 0);
    for (size_t i = 0; i < SESSION_NRESULTS; i++)
        results[i] = metrics_series(tx, &session_results[i]);
    static const char *const listener_label[] = {"listener", NULL};
    static const char *const tls_labels[] = {"listener", "version", NULL};
    connections = metrics_family("smtpgate_connections_total", METRICS_COUNTER,
                                 "Client connections admitted, by the listener they came in on",
                                 listener_label, NULL, 0);
    tls_sessions = metrics_family("smtpgate_tls_sessions_total", METRICS_COUNTER,
                                  "Client TLS handshakes completed (STARTTLS or implicit TLS), by "
                                  "listener and protocol version",
                                  tls_labels, NULL, 0);
    open_sessions =
        metrics_single("smtpgate_sessions_open", METRICS_GAUGE, "Client sessions open now");
    early_talkers = metrics_single("smtpgate_early_talkers_total", METRICS_COUNTER,
                                   "Clients refused for talking before the greeting ended "
                                   "(greet_delay)");
    duration = metrics_series(metrics_family("smtpgate_session_duration_seconds", METRICS_HISTOGRAM,
                                             "Client sessions' length, from accept to close", NULL,
                                             metrics_seconds_buckets, metrics_seconds_nbuckets),
                              NULL);
    message_size =
        metrics_series(metrics_family("smtpgate_message_size_bytes", METRICS_HISTOGRAM,
                                      "Size of the messages received whole from clients", NULL,
                                      metrics_bytes_buckets, metrics_bytes_nbuckets),
                       NULL);
}

const char *session_metrics_listener(const struct sg_config *c, const struct sg_listener *l)
{
    if (!l)
        return "-";
    if (l->name)
        return l->name;
    size_t i = (size_t)(l - c->listeners);
    return i < c->nlisten ? c->listen[i].text : "-";
}

void session_metrics_register(const struct sg_config *c)
{
    pthread_once(&session_metrics_once, session_metrics_init);
    chain_symbol_metrics_register();
    /* Every listener's count is there, at 0, before its first client. */
    for (size_t i = 0; i < c->nlisten; i++)
        metrics_series(connections,
                       (const char *const[]){session_metrics_listener(c, &c->listeners[i])});
}

void session_metrics_open(const char *listener)
{
    pthread_once(&session_metrics_once, session_metrics_init);
    metrics_add(metrics_series(connections, &listener), 1);
    metrics_gauge_add(open_sessions, 1);
}

void session_metrics_tls(const char *listener, const char *version)
{
    pthread_once(&session_metrics_once, session_metrics_init);
    metrics_add(metrics_series(tls_sessions, (const char *const[]){listener, version}), 1);
}

void session_metrics_early_talker(void)
{
    pthread_once(&session_metrics_once, session_metrics_init);
    metrics_add(early_talkers, 1);
}

void session_metrics_close(double seconds)
{
    metrics_gauge_add(open_sessions, -1);
    metrics_observe(duration, seconds);
}

void session_metrics_transaction(const char *result, bool whole_message, uint64_t size)
{
    pthread_once(&session_metrics_once, session_metrics_init);
    for (size_t i = 0; i < SESSION_NRESULTS; i++)
        if (strcmp(result, session_results[i]) == 0)
            metrics_add(results[i], 1);
    if (whole_message)
        metrics_observe(message_size, (double)size);
}
