/*
 * milter_wait - lets a libmilter connection thread wait until the filter
 * chain says it can go on, running the connection's own event loop while it
 * waits, so that plugins doing their I/O on host->event_loop() make progress
 * on the only thread that drives it.
 *
 * milter_wait_new() makes a waiter with its event base; milter_wait_base()
 * is that base, handed to the chain as the front's loop.  milter_wait_notify(w)
 * is the chain's front notify (any thread, any time, also before the wait
 * starts or from one of the loop's own callbacks: the signal is remembered);
 * milter_wait_for(w, ms) runs the loop until notified or ms milliseconds
 * passed (monotonic clock) and returns true when notified, consuming the
 * signal.  milter_wait_idle(w, busy, arg, ms) runs the loop until busy(arg)
 * is false or ms passed, for the end of a connection whose plugins still have
 * events out.  milter_wait_free() has the free_fn signature, so the chain can
 * own the waiter (chain_adopt) and free it, base and all, only after the last
 * plugin that could still notify is done and every close callback has run.
 *
 * Needs libevent's thread support (evthread_use_pthreads) before the first
 * milter_wait_new(): a notify from another thread wakes the loop.
 */
#ifndef SMTPGATE_MILTER_WAIT_H
#define SMTPGATE_MILTER_WAIT_H

#include <stdbool.h>

struct milter_wait;
struct event_base;

struct milter_wait *milter_wait_new(void);
struct event_base *milter_wait_base(const struct milter_wait *w);
void milter_wait_free(void *w);
void milter_wait_notify(void *w);
bool milter_wait_for(struct milter_wait *w, unsigned ms);
bool milter_wait_idle(struct milter_wait *w, bool (*busy)(const void *arg), const void *arg,
                      unsigned ms);

#endif
