/*
 * upstream_pool - what smtpgate knows about each upstream MTA between sessions:
 * whether it answers, and which ESMTP extensions it offers.
 *
 * A health record exists per upstream address and outlives config reloads, so
 * a reload does not forget what the last probe learned.  The probe runs on the
 * main thread's event loop: at start and every probe_interval it connects to
 * each upstream, reads the greeting, sends EHLO and QUIT.  Workers read the
 * records lock-free (atomics) when a client connects or says EHLO.
 *
 * upstream_pool_caps() is what the proxy may advertise: the capabilities every
 * healthy upstream of the config offers, and the smallest SIZE among them.
 */
#ifndef SMTPGATE_UPSTREAM_POOL_H
#define SMTPGATE_UPSTREAM_POOL_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/runtime.h"

struct upstream_health;

/* Give every upstream of rt its health record (creating new ones as unknown). */
int upstream_pool_attach(struct sg_runtime *rt);

bool upstream_health_ok(const struct upstream_health *h);
/* What the record holds, for the control socket's status: -1 unknown, 0
 * down, 1 up; the capability bits and SIZE of the last good probe. */
int upstream_health_state(const struct upstream_health *h);
unsigned upstream_health_caps(const struct upstream_health *h);
uint64_t upstream_health_size(const struct upstream_health *h);
/* The name of capability bit i (esmtp_cap's order), NULL past the last. */
const char *upstream_cap_name(unsigned i);
void upstream_health_report(struct upstream_health *h, bool ok);
/* The upstream's final reply to a message, seconds after the message went out. */
void upstream_health_message_reply(struct upstream_health *h, int code, double seconds);

/* Is any upstream of rt healthy? */
bool upstream_pool_any_healthy(const struct sg_runtime *rt);

/* Capabilities common to rt's healthy upstreams (esmtp_cap bits) and the
 * smallest announced SIZE (0 = none announced). */
void upstream_pool_caps(const struct sg_runtime *rt, unsigned *caps, uint64_t *size_limit);

/* Probe every upstream of the runtime returned by get_runtime now, and then every
 * probe_interval seconds.  done (may be NULL) is called once after the first
 * round has finished. */
struct upstream_probe;
struct upstream_probe *upstream_probe_start(struct event_base *base,
                                            struct sg_runtime *(*get_runtime)(void),
                                            void (*done)(void *arg), void *arg);
/* SASL mechanisms (auth_relay.h bits) every healthy upstream of rt offers. */
unsigned upstream_pool_auth_mechs(const struct sg_runtime *rt);

void upstream_probe_stop(struct upstream_probe *p);

/*
 * What the upstream's last EHLO offers for client_identity: XCLIENT with ADDR
 * lets it learn the real client.  upstream_identity_refused() says, for an
 * upstream that offers that, whether client_identity = "none" must not
 * forward to it (no client_identity_none_despite_xclient): it would judge
 * every client as smtpgate's own address, and a Postfix that trusts that
 * address relays for anyone.  It logs why and the fix.
 */
enum upstream_xclient { UP_XCLIENT_UNKNOWN = -1, UP_XCLIENT_NONE, UP_XCLIENT_NO_ADDR,
                        UP_XCLIENT_ADDR };
enum upstream_xclient upstream_xclient_offered(unsigned caps, const char *xclient_attrs);
bool upstream_identity_refused(const struct sg_config *c, const char *upstream,
                               enum upstream_xclient x);
/* After a probe round: every upstream of rt judged against client_identity,
 * each problem logged with its fix.  Returns the number of errors (an
 * upstream that would make smtpgate an open relay's client); a missing
 * XCLIENT under "xclient" is a warning, and with warn_unknown so is an
 * upstream the probe could not ask. */
int upstream_pool_identity_check(const struct sg_runtime *rt, bool warn_unknown);

void upstream_pool_shutdown(void);

#endif
