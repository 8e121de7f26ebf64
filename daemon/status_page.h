/*
 * status_page - the live page at / of the metrics listener, and the JSON
 * it reads besides /metrics.
 *
 * status_page_attach() adds "/" (one self-contained HTML page: no asset
 * from elsewhere, so it works on a host without internet) and
 * "/status.json" (version, host name, start time, the recent transactions
 * of recent_tx) to the listener, and turns recent_tx on with `recent`
 * entries.  Read-only: both answer GET and HEAD only, as /metrics does.
 */
#ifndef SMTPGATE_STATUS_PAGE_H
#define SMTPGATE_STATUS_PAGE_H

#include <stddef.h>

struct metrics_http;

int status_page_attach(struct metrics_http *m, const char *hostname, size_t recent);

#endif
