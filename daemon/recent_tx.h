/*
 * recent_tx - the last transactions, each the object the verdict log
 * writes, kept for the status page.
 *
 * recent_tx_enable(n) keeps the last n (0 keeps none and frees them);
 * recent_tx_add() copies one JSON object (a trailing newline is dropped) from
 * any thread; recent_tx_json() gives a malloc'd JSON array, newest first, or
 * NULL when memory runs out.  One lock guards the ring: an add is a copy and
 * two pointer moves, so the workers never wait on a reader for long.
 */
#ifndef SMTPGATE_RECENT_TX_H
#define SMTPGATE_RECENT_TX_H

#include <stdbool.h>
#include <stddef.h>

void recent_tx_enable(size_t n);
bool recent_tx_enabled(void);
void recent_tx_add(const char *json, size_t len);
char *recent_tx_json(size_t *len);

#endif
