/*
 * milter_client - what the milter plugin's two halves share: an instance's
 * settings (milter_plugin.c reads them) and the per-session protocol engine
 * (milter_session.c runs it on the connection's event loop).
 *
 * One struct mc_sess per SMTP session and milter: it owns the connection to
 * the milter (a bufferevent on the session's loop), the negotiated protocol,
 * and at most one call of the chain that waits for the milter (ctx).  The
 * plugin's callbacks hand each stage to mc_stage_*(); they return the verdict
 * at once (the milter wants no reply, or is out of the way) or SG_PENDING, in
 * which case the engine resolves ctx when the milter answers, fails or times
 * out.
 *
 * Assumes the host's threading contract: callbacks of one connection never
 * overlap, and the loop's own callbacks run on the thread that runs the
 * session.  The session's end (mc_sess_release, the conn data's free
 * function) may come from another thread: it then hands the teardown to the
 * loop with event_base_once() when the loop outlives the session (smtpgate),
 * so the connection is only ever touched on its own loop; a loop that ends
 * with the session (smtpgate-milter) runs no more, and the teardown is done
 * at once.
 */
#ifndef SMTPGATE_MILTER_CLIENT_H
#define SMTPGATE_MILTER_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "codec/milter_wire.h"
#include "plugins/milter/milter_macros.h"
#include "smtpgate/plugin.h"

enum mc_default { MC_DEF_ACCEPT = 0, MC_DEF_REJECT, MC_DEF_TEMPFAIL, MC_DEF_QUARANTINE };

#define MC_IDLE_MAX     32  /* connections kept for reuse, per instance */
#define MC_IDLE_SECONDS 120 /* how long one is kept */

/* A milter connection between sessions (after SMFIC_QUIT_NC): only the
 * socket and what was negotiated on it, on no event loop. */
struct mc_idle {
    int fd;
    uint32_t version, actions, protocol;
    char *macro_req[MILTER_WIRE_STAGES];
    long since;
};

struct mc_conf {
    const struct sg_host *host;
    char *name;
    char *socket;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    double connect_timeout, command_timeout, content_timeout;
    double verdict_timeout; /* the host's timeout for one call (0: unknown) */
    enum mc_default def;
    uint32_t version, actions, protocol; /* offered */
    struct milter_macro_list macros[MILTER_WIRE_STAGES];
    char *daemon_name;
    bool reuse;

    pthread_mutex_t idle_lock;
    struct mc_idle idle[MC_IDLE_MAX];
    size_t nidle;
};

struct mc_sess;

const char *mc_default_name(enum mc_default d);

struct mc_sess *mc_sess_new(struct mc_conf *cf, struct sg_ctx *ctx);
void mc_sess_release(void *sess); /* the conn data's free function */

enum sg_verdict mc_stage_connect(struct mc_sess *s, struct sg_ctx *ctx);
enum sg_verdict mc_stage_helo(struct mc_sess *s, struct sg_ctx *ctx);
enum sg_verdict mc_stage_envelope(struct mc_sess *s, struct sg_ctx *ctx, bool rcpt,
                                  const char *addr, const char *params);
enum sg_verdict mc_stage_data(struct mc_sess *s, struct sg_ctx *ctx);
enum sg_verdict mc_stage_message(struct mc_sess *s, struct sg_ctx *ctx);
void mc_stage_abort(struct mc_sess *s, struct sg_ctx *ctx);

void mc_idle_drain(struct mc_conf *cf);

#endif
