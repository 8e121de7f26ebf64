/*
 * spf_memo - the answers one SPF check has had so far, as a libspf2 DNS
 * layer, so that check_host can be evaluated again from the start each
 * time one more answer arrives (memoised replay) instead of waiting inside
 * a look-up.
 *
 * spf_memo_layer(m) answers a look-up from the memo: an answer added with
 * spf_memo_add() for that name and type (names compared without case),
 * else one that the shared stack's cache holds (spf_dns_cached(): no
 * network), which is then kept too.  Anything else is a miss: the first
 * miss of an evaluation is recorded (spf_memo_missed) and answered
 * TRY_AGAIN, and so is every look-up after it, so the evaluation ends
 * without asking for names that a real answer might not lead to.  Its
 * result is to be thrown away: the caller asks the missed name, adds the
 * answer and evaluates again.  check_host asks the same questions in the
 * same order given the same answers, so the last evaluation, the one
 * without a miss, is the check's result, with the RFC 7208 limits counted
 * as in one pass.
 *
 * After spf_memo_expire() a miss is not recorded: it is answered TRY_AGAIN
 * at once (the check's time is up), so the next evaluation is the last.
 * At most SPF_MEMO_MAX answers are kept; past that every miss is answered
 * TRY_AGAIN as after expiry.
 *
 * A memo belongs to one check on one thread: no locking.
 */
#ifndef SMTPGATE_SPF_MEMO_H
#define SMTPGATE_SPF_MEMO_H

#include <stdbool.h>
#include <stddef.h>

#include <netinet/in.h>
#include <arpa/nameser.h>
#include <spf2/spf.h>

#define SPF_MEMO_MAX 256

struct spf_memo;

/* stack: the shared DNS stack whose cache is read, or NULL for none. */
struct spf_memo *spf_memo_new(SPF_dns_server_t *stack);
void spf_memo_free(struct spf_memo *m);
SPF_dns_server_t *spf_memo_layer(struct spf_memo *m);
/* Forget the last evaluation's miss: before each evaluation. */
void spf_memo_rearm(struct spf_memo *m);
/* The first miss of the last evaluation: false when there was none.  The
 * name stays valid until the next spf_memo_rearm(); should_cache is what
 * the check asked the look-up with (false for names made by macros). */
bool spf_memo_missed(const struct spf_memo *m, const char **name, ns_type *type,
                     bool *should_cache);
/* Takes rr, the answer to name and type; -1 when full or out of memory
 * (rr freed). */
int spf_memo_add(struct spf_memo *m, const char *name, ns_type type, SPF_dns_rr_t *rr);
void spf_memo_expire(struct spf_memo *m);
size_t spf_memo_count(const struct spf_memo *m);

#endif
