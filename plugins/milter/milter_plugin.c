/*
 * milter_plugin - the "milter" plugin: puts an external milter (OpenDKIM,
 * OpenDMARC, rspamd, clamav-milter, spamass-milter, smtpgate-milter, any
 * libmilter filter) into smtpgate's chain, called as Postfix's smtpd_milters
 * call it.
 *
 *   plugin dkim {
 *       path            = "milter.so"
 *       socket          = "inet:127.0.0.1:8891"     # or unix:/run/opendkim/opendkim.sock
 *       default_action  = "tempfail"                # accept | reject | tempfail | quarantine
 *       connect_timeout = 30                        # milter_connect_timeout
 *       command_timeout = 30                        # milter_command_timeout
 *       content_timeout = 300                       # milter_content_timeout
 *       protocol        = 6                         # milter_protocol: 2 to 6
 *       actions         = {"add_header", ...}       # the edits it may make
 *       connect_macros  = "j {daemon_name} v ..."   # milter_connect_macros, and so on
 *       reuse           = true                      # SMFIC_QUIT_NC between sessions
 *   }
 *
 * This file reads the section and maps the host's callbacks onto the
 * engine's stages (milter_session.c).  The message's header, eoh and body
 * steps all go to the milter from the plugin's eom callback, which has the
 * whole message and the edit API: the host runs them one plugin after the
 * other anyway, so the milter sees the same sequence as from Postfix.
 *
 * Promises: a section with a bad value is refused at load naming the key;
 * init never connects (smtpgate -t and a reload do not depend on the milter
 * being up: a milter that is down is a per-session default_action).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plugins/milter/milter_addr.h"
#include "plugins/milter/milter_client.h"

struct action_name {
    const char *name;
    uint32_t bit;
};

static const struct action_name action_names[] = {
    {"add_header", SMFIF_ADDHDRS},       {"change_header", SMFIF_CHGHDRS},
    {"change_body", SMFIF_CHGBODY},      {"add_rcpt", SMFIF_ADDRCPT},
    {"add_rcpt_par", SMFIF_ADDRCPT_PAR}, {"del_rcpt", SMFIF_DELRCPT},
    {"quarantine", SMFIF_QUARANTINE},    {"change_from", SMFIF_CHGFROM},
    {"set_symlist", SMFIF_SETSYMLIST},   {NULL, 0},
};

/* Every protocol step a milter may leave out or answer without a reply. */
#define MC_PROTOCOL_OFFER                                                                          \
    (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS |  \
     SMFIP_NOEOH | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_SKIP | SMFIP_HDR_LEADSPC |               \
     SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_DATA |               \
     SMFIP_NR_UNKN | SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_NR_HDR)

static const char *const macro_keys[MILTER_WIRE_STAGES] = {
    [SMFIM_CONNECT] = "connect_macros",   [SMFIM_HELO] = "helo_macros",
    [SMFIM_ENVFROM] = "mail_macros",      [SMFIM_ENVRCPT] = "rcpt_macros",
    [SMFIM_DATA] = "data_macros",         [SMFIM_EOM] = "end_of_data_macros",
    [SMFIM_EOH] = "end_of_header_macros",
};

static const char *check_socket(const char *v)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *why = NULL;
    return milter_addr_parse(v, &ss, &len, &why) < 0 ? why : NULL;
}

static const char *check_default(const char *v)
{
    for (int d = MC_DEF_ACCEPT; d <= MC_DEF_QUARANTINE; d++)
        if (strcasecmp(v, mc_default_name((enum mc_default)d)) == 0)
            return NULL;
    return "must be accept, reject, tempfail or quarantine";
}

static const char *check_action(const char *v)
{
    for (const struct action_name *a = action_names; a->name; a++)
        if (strcmp(v, a->name) == 0)
            return NULL;
    return "must be add_header, change_header, change_body, add_rcpt, add_rcpt_par, del_rcpt, "
           "quarantine, change_from or set_symlist";
}

static const struct sg_option milter_options[] = {
    {"socket", SG_OPT_STRING, NULL, check_socket, 0, 0},
    {"default_action", SG_OPT_STRING, "\"tempfail\"", check_default, 0, 0},
    {"connect_timeout", SG_OPT_FLOAT, "30", NULL, 0.001, 3600},
    {"command_timeout", SG_OPT_FLOAT, "30", NULL, 0.001, 3600},
    {"content_timeout", SG_OPT_FLOAT, "300", NULL, 0.001, 3600},
    {"protocol", SG_OPT_INT, "6", NULL, 2, 6},
    {"actions", SG_OPT_LIST,
     "{\"add_header\", \"change_header\", \"change_body\", \"add_rcpt\", \"add_rcpt_par\", "
     "\"del_rcpt\", \"quarantine\", \"change_from\", \"set_symlist\"}",
     check_action, 0, 0},
    {"connect_macros", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"helo_macros", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"mail_macros", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"rcpt_macros", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"data_macros", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"end_of_header_macros", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"end_of_data_macros", SG_OPT_STRING, NULL, NULL, 0, 0},
    {"daemon_name", SG_OPT_STRING, "\"smtpgate\"", NULL, 0, 0},
    {"reuse", SG_OPT_BOOL, "true", NULL, 0, 0},
    {NULL, 0, NULL, NULL, 0, 0},
};

static void conf_free(struct mc_conf *cf)
{
    if (!cf)
        return;
    mc_idle_drain(cf);
    pthread_mutex_destroy(&cf->idle_lock);
    for (int i = 0; i < MILTER_WIRE_STAGES; i++)
        milter_macros_free(&cf->macros[i]);
    free(cf->name);
    free(cf->socket);
    free(cf->daemon_name);
    free(cf);
}

static int milter_init(const struct sg_host *h, const struct sg_section *sec, void **instance)
{
    struct mc_conf *cf = calloc(1, sizeof(*cf));
    if (!cf)
        return -1;
    pthread_mutex_init(&cf->idle_lock, NULL);
    cf->host = h;
    const char *sock = h->opt_string(sec, "socket");
    if (!sock || !*sock) {
        h->config_error(sec, "socket",
                        "a milter plugin needs its milter's socket, "
                        "e.g. socket = \"inet:127.0.0.1:8891\"");
        conf_free(cf);
        return -1;
    }
    const char *why = NULL;
    cf->name = strdup(h->section_name(sec));
    cf->socket = strdup(sock);
    cf->daemon_name = strdup(h->opt_string(sec, "daemon_name"));
    if (!cf->name || !cf->socket || !cf->daemon_name ||
        milter_addr_parse(sock, &cf->addr, &cf->addrlen, &why) < 0) {
        if (why)
            h->config_error(sec, "socket", "%s", why);
        conf_free(cf);
        return -1;
    }
    cf->connect_timeout = h->opt_float(sec, "connect_timeout");
    cf->command_timeout = h->opt_float(sec, "command_timeout");
    cf->content_timeout = h->opt_float(sec, "content_timeout");
    const char *def = h->opt_string(sec, "default_action");
    for (int d = MC_DEF_ACCEPT; d <= MC_DEF_QUARANTINE; d++)
        if (strcasecmp(def, mc_default_name((enum mc_default)d)) == 0)
            cf->def = (enum mc_default)d;
    cf->version = (uint32_t)h->opt_int(sec, "protocol");
    for (size_t i = 0, n = h->opt_list_size(sec, "actions"); i < n; i++) {
        const char *a = h->opt_list_item(sec, "actions", i);
        for (const struct action_name *an = action_names; an->name; an++)
            if (strcmp(a, an->name) == 0)
                cf->actions |= an->bit;
    }
    cf->protocol = MC_PROTOCOL_OFFER;
    cf->reuse = h->opt_bool(sec, "reuse");
    for (int st = 0; st < MILTER_WIRE_STAGES; st++) {
        const char *list = h->opt_is_set(sec, macro_keys[st]) ? h->opt_string(sec, macro_keys[st])
                                                              : milter_macros_default(st);
        if (milter_macros_split(list, &cf->macros[st]) < 0) {
            conf_free(cf);
            return -1;
        }
    }
    if (SG_HAS(h, verdict_timeout))
        cf->verdict_timeout = h->verdict_timeout(sec);
    /* A deadline past the section's timeout is cut to it (the host's
     * failure_verdict would otherwise come first): said when the admin set one. */
    static const char *const tkeys[] = {"connect_timeout", "command_timeout", "content_timeout"};
    const double tvals[] = {cf->connect_timeout, cf->command_timeout, cf->content_timeout};
    for (int i = 0; i < 3 && cf->verdict_timeout > 0 && SG_HAS(h, config_warning); i++)
        if (h->opt_is_set(sec, tkeys[i]) && tvals[i] >= cf->verdict_timeout)
            h->config_warning(sec, tkeys[i],
                              "%gs is not below the section's timeout (%gs): the wait ends "
                              "shortly before that timeout instead; raise timeout to allow more",
                              tvals[i], cf->verdict_timeout);
    if (SG_HAS(h, set_stages))
        h->set_stages(sec, SG_STAGE_BIT(SG_STAGE_CONNECT) | SG_STAGE_BIT(SG_STAGE_HELO) |
                               SG_STAGE_BIT(SG_STAGE_MAIL) | SG_STAGE_BIT(SG_STAGE_RCPT) |
                               SG_STAGE_BIT(SG_STAGE_DATA) | SG_STAGE_BIT(SG_STAGE_EOM));
    *instance = cf;
    return 0;
}

static void milter_fini(void *instance)
{
    conf_free(instance);
}

static struct mc_sess *sess_of(struct sg_ctx *ctx, struct mc_conf *cf)
{
    return cf->host->conn_data(ctx);
}

static enum sg_verdict milter_connect(struct sg_ctx *ctx, void *instance)
{
    struct mc_conf *cf = instance;
    struct mc_sess *s = mc_sess_new(cf, ctx);
    if (!s) {
        cf->host->log(ctx, SG_LOG_ERR, "milter %s: out of memory", cf->socket);
        return SG_TEMPFAIL;
    }
    cf->host->set_conn_data(ctx, s, mc_sess_release);
    return mc_stage_connect(s, ctx);
}

static enum sg_verdict milter_helo(struct sg_ctx *ctx, void *instance)
{
    struct mc_sess *s = sess_of(ctx, instance);
    return s ? mc_stage_helo(s, ctx) : SG_CONTINUE;
}

static enum sg_verdict milter_mail(struct sg_ctx *ctx, void *instance, const char *from,
                                   const char *params)
{
    struct mc_sess *s = sess_of(ctx, instance);
    return s ? mc_stage_envelope(s, ctx, false, from, params) : SG_CONTINUE;
}

static enum sg_verdict milter_rcpt(struct sg_ctx *ctx, void *instance, const char *rcpt,
                                   const char *params)
{
    struct mc_sess *s = sess_of(ctx, instance);
    return s ? mc_stage_envelope(s, ctx, true, rcpt, params) : SG_CONTINUE;
}

static enum sg_verdict milter_data(struct sg_ctx *ctx, void *instance)
{
    struct mc_sess *s = sess_of(ctx, instance);
    return s ? mc_stage_data(s, ctx) : SG_CONTINUE;
}

static enum sg_verdict milter_eom(struct sg_ctx *ctx, void *instance)
{
    struct mc_sess *s = sess_of(ctx, instance);
    return s ? mc_stage_message(s, ctx) : SG_CONTINUE;
}

static void milter_abort(struct sg_ctx *ctx, void *instance)
{
    struct mc_sess *s = sess_of(ctx, instance);
    if (s)
        mc_stage_abort(s, ctx);
}

SG_PLUGIN_EXPORT const struct sg_plugin smtpgate_plugin = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "milter",
    .version = "1",
    .description = "calls an external milter (the MTA side of the milter protocol, as Postfix)",
    .options = milter_options,
    .init = milter_init,
    .fini = milter_fini,
    .connect = milter_connect,
    .helo = milter_helo,
    .mail = milter_mail,
    .rcpt = milter_rcpt,
    .data = milter_data,
    .eom = milter_eom,
    .abort = milter_abort,
};
