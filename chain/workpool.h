/*
 * workpool - a few threads for work that may block (a plugin callback doing
 * synchronous DNS), so that no event loop ever waits on it.
 *
 * workpool_submit_for() queues fn(arg) on behalf of a client (its address;
 * NULL for none) and returns at once; one of the pool's threads runs it.
 * The pool starts on first use with workpool_threads threads (default 8).
 * Jobs run in the order they came, except that one client never has more
 * than workpool_client_share() of them running at once: its further jobs
 * wait while those of other clients go ahead.  workpool_submit() is
 * workpool_submit_for(NULL, ...): a job no share holds back.
 * workpool_shutdown() lets running jobs finish and runs the queued ones
 * before the threads exit.
 *
 * Diagnostics: -1 when the job cannot be queued (out of memory, or the pool
 * has been shut down); the caller then decides on the spot.
 */
#ifndef SMTPGATE_WORKPOOL_H
#define SMTPGATE_WORKPOOL_H

void workpool_set_threads(unsigned n);
int workpool_submit_for(const char *client, void (*fn)(void *arg), void *arg);
int workpool_submit(void (*fn)(void *arg), void *arg);
/* Jobs of one client that may run at once: a quarter of the threads, at least one. */
unsigned workpool_client_share(void);
void workpool_shutdown(void);

#endif
