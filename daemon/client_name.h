/*
 * client_name - the client's verified host name (forward-confirmed reverse
 * DNS), as Postfix's smtpd works it out, with libevent's evdns on the
 * session's own event loop.
 *
 * client_name_start() asks for the PTR record of the client's address, then
 * for the addresses of the first name found, and calls done() once:
 *   NAME_OK          with the name, when one of its addresses is the client's
 *   NAME_UNAVAILABLE no PTR, or the name does not lead back (Postfix's
 *                    "unknown", XCLIENT NAME=[UNAVAILABLE])
 *   NAME_TEMPUNAVAIL the DNS did not answer in time or failed
 *                    (XCLIENT NAME=[TEMPUNAVAIL])
 * done() is never called from inside client_name_start(), nor after
 * client_name_cancel().  The evdns base's own timeout and attempts bound the
 * wait (dns_timeout).
 */
#ifndef SMTPGATE_CLIENT_NAME_H
#define SMTPGATE_CLIENT_NAME_H

#include <event2/dns.h>
#include <sys/socket.h>

enum client_name_status { NAME_OK, NAME_UNAVAILABLE, NAME_TEMPUNAVAIL };

typedef void (*client_name_done)(void *arg, enum client_name_status st, const char *name);

struct client_name_lookup;

struct client_name_lookup *client_name_start(struct evdns_base *dns, const struct sockaddr *sa,
                                             client_name_done done, void *arg);
void client_name_cancel(struct client_name_lookup *l);

/* A DNS base for a worker's loop: the nameserver given ("ip[:port]"), or the
 * system's resolv.conf; timeout in seconds.  NULL (logged) on failure. */
struct evdns_base *client_name_dns_new(struct event_base *base, const char *nameserver,
                                       unsigned timeout);

#endif
