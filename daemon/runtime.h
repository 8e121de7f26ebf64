/*
 * runtime - process-wide state shared by the main thread and the workers: the
 * config in force, and the connection counts that the limits are checked
 * against.
 *
 * runtime_config() hands out a reference to the current config; the main
 * thread replaces it on SIGHUP with runtime_set_config().  Sessions keep the
 * reference they took at accept for their whole life.
 *
 * runtime_conn_open() admits or refuses a new connection against
 * max_connections and max_connections_per_client and counts it;
 * runtime_conn_close() uncounts it.  These run once per connection (accept and
 * close), never per command.
 */
#ifndef SMTPGATE_RUNTIME_H
#define SMTPGATE_RUNTIME_H

#include <stdbool.h>
#include <sys/socket.h>

#include "config/config.h"

void runtime_set_config(struct sg_config *c); /* takes over the caller's reference */
struct sg_config *runtime_config(void);       /* new reference */

enum runtime_admit { ADMIT_OK, ADMIT_TOO_MANY, ADMIT_TOO_MANY_FROM_CLIENT };
enum runtime_admit runtime_conn_open(const struct sg_config *c, const struct sockaddr *peer);
void runtime_conn_close(const struct sockaddr *peer);
unsigned runtime_conn_count(void);

void runtime_shutdown(void);

#endif
