/*
 * spf_dns - the DNS under SPF checks: c-ares (a maintained stub resolver
 * library) as a libspf2 DNS layer, with libspf2's cache layer in front.
 *
 * libspf2's own resolv layer uses the system's res_* settings with their
 * retry schedule and cannot be pointed at another nameserver, so a slow
 * server stalls a check for as long as glibc likes.  This layer asks
 * through c-ares the configured nameserver, or those of /etc/resolv.conf,
 * and waits no longer than its timeout and than the calling thread's
 * deadline (spf_dns_deadline_set, set by spf_check for the duration of one
 * check).  What an answer becomes is spf_dns_reply.h's: a timeout,
 * SERVFAIL or any other failure is TRY_AGAIN (temperror); NXDOMAIN
 * HOST_NOT_FOUND, an empty answer NO_DATA; TXT strings joined as RFC 7208
 * 3.3 says; TTLs cut to 15 minutes before the cache sees them.
 *
 * spf_dns_parse_nameserver() reads "ADDR", "ADDR:PORT", "[ADDR6]:PORT".
 * spf_dns_stack_new() builds resolver (+ cache when cache_bits > 0);
 * SPF_dns_free() on the result frees every layer.  On error they return
 * -1/NULL with the reason in err.  The layers may be used from several
 * threads at once.
 *
 * For the asynchronous check (spf_async), which asks c-ares itself on an
 * event loop:
 *   spf_dns_cached()      the stack's cache's answer, or NULL when it has
 *                         none (or there is no cache): never the network
 *   spf_dns_cache_put()   gives the cache an answer obtained that way (kept
 *                         only with should_cache, as a blocking look-up's)
 *   spf_dns_channel_for() a c-ares channel set up as the stack's resolver
 *                         (its nameserver, per-try timeout and tries),
 *                         reporting its sockets to sock_cb; *timeout_ms gets
 *                         the layer's timeout.  ARES_SUCCESS, or c-ares's
 *                         error (ARES_ENOTINITIALIZED: no c-ares layer)
 */
#ifndef SMTPGATE_SPF_DNS_H
#define SMTPGATE_SPF_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#include <netinet/in.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <spf2/spf.h>

int spf_dns_parse_nameserver(const char *s, struct sockaddr_storage *ss, socklen_t *sslen);
SPF_dns_server_t *spf_dns_resolver_new(const char *nameserver, long timeout_ms, char *err,
                                       size_t errlen);
SPF_dns_server_t *spf_dns_stack_new(const char *nameserver, long timeout_ms, int cache_bits,
                                    char *err, size_t errlen);
SPF_dns_rr_t *spf_dns_cached(SPF_dns_server_t *stack, const char *domain, ns_type type);
void spf_dns_cache_put(SPF_dns_server_t *stack, SPF_dns_rr_t *rr, bool should_cache);
int spf_dns_channel_for(SPF_dns_server_t *stack, ares_sock_state_cb sock_cb, void *sock_data,
                        ares_channel *out, long *timeout_ms);
/* For the calling thread: no look-up waits past abs (CLOCK_MONOTONIC); NULL clears. */
void spf_dns_deadline_set(const struct timespec *abs);
/* Milliseconds from now to the calling thread's deadline, or -1 when none. */
long spf_dns_deadline_left(void);

#endif
