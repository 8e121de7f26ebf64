/*
 * workpool - a few threads for work that may block (a plugin callback doing
 * synchronous DNS), so that no event loop ever waits on it.
 *
 * workpool_submit() queues fn(arg) and returns at once; one of the pool's
 * threads runs it.  The pool starts on first use with workpool_threads
 * threads (default 8); queued jobs never wait for each other beyond that.
 * workpool_shutdown() lets running jobs finish and runs the queued ones
 * before the threads exit.
 *
 * Diagnostics: -1 when the job cannot be queued (out of memory, or the pool
 * has been shut down); the caller then decides on the spot.
 */
#ifndef SMTPGATE_WORKPOOL_H
#define SMTPGATE_WORKPOOL_H

void workpool_set_threads(unsigned n);
int workpool_submit(void (*fn)(void *arg), void *arg);
void workpool_shutdown(void);

#endif
