/*
 * spf_async - one SPF check (spf_check_host) whose DNS waits on a libevent
 * loop instead of a thread.
 *
 * spf_async_start(base, stack, req, done, arg) evaluates check_host
 * against a memo of the answers had so far (spf_memo): each evaluation
 * that needs a name not yet answered is thrown away, the name is asked
 * through a c-ares channel of the check's own, whose sockets and timeouts
 * are events on base, and the check is evaluated again once the answer is
 * in.  The evaluation without a miss is the result: the same as one
 * blocking pass over the same answers, RFC 7208's limits (10 DNS terms, 2
 * void look-ups) included.  The stack is the plugin's shared DNS stack:
 * its cache answers first, and what the check learns goes into it as a
 * blocking look-up's answer would; its c-ares layer gives the nameserver,
 * the per-try timeout and the tries.
 *
 * req->deadline (CLOCK_MONOTONIC; required) is the whole check's: at that
 * moment the question in flight is cancelled and answered TRY_AGAIN, and so
 * is every later one, which makes the result a temperror as a blocking
 * check's at its deadline.
 *
 * done(arg, res, rc) is called exactly once, on the loop's thread from one
 * of the check's events (never within spf_async_start), with rc as
 * spf_check_host() returns it; res is the caller's to free with
 * spf_check_result_free().  By then everything of the check is gone from
 * base.  NULL from spf_async_start (out of memory): nothing started,
 * done is never called.  A stack without a c-ares layer (a test's zone)
 * answers from its cache, if any, and gives temperror for the rest.
 *
 * The request's strings are copied.  Not thread-safe per check: a check
 * lives on base's thread only.
 */
#ifndef SMTPGATE_SPF_ASYNC_H
#define SMTPGATE_SPF_ASYNC_H

#include "spf_check.h"

struct event_base;
struct spf_async;

typedef void (*spf_async_done_fn)(void *arg, struct spf_check_result *res, int rc);

struct spf_async *spf_async_start(struct event_base *base, SPF_dns_server_t *stack,
                                  const struct spf_check_request *req, spf_async_done_fn done,
                                  void *arg);

#endif
