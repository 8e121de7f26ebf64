/*
 * milter_wait - lets a libmilter connection thread sleep until the filter
 * chain says it can go on.
 *
 * milter_wait_new() makes a waiter; milter_wait_notify(w) is the chain's
 * front notify (any thread, any time, also before the wait starts: the
 * signal is remembered); milter_wait_for(w, ms) sleeps until notified or ms
 * milliseconds passed (monotonic clock) and returns true when notified,
 * consuming the signal.  milter_wait_free() has the free_fn signature, so the
 * chain can own the waiter (chain_adopt) and free it only after the last
 * plugin that could still notify is done.
 */
#ifndef SMTPGATE_MILTER_WAIT_H
#define SMTPGATE_MILTER_WAIT_H

#include <stdbool.h>

struct milter_wait;

struct milter_wait *milter_wait_new(void);
void milter_wait_free(void *w);
void milter_wait_notify(void *w);
bool milter_wait_for(struct milter_wait *w, unsigned ms);

#endif
