/*
 * example - a small, complete smtpgate plugin to copy.
 *
 * It refuses recipients on a configured list (exact addresses, or whole
 * domains written "@example.org"), and stamps every message it lets through
 * with a header carrying smtpgate's transaction id, so a delivered message
 * can be traced back to smtpgate's log line.
 *
 *   plugin example {
 *       path              = "/usr/local/lib/smtpgate/plugins/example.so"
 *       refuse_recipients = {"abuse-trap@example.org", "@spam.example"}
 *       reply             = "550 5.1.1 Mailbox not accepted here"
 *       header            = "X-Smtpgate-Id"
 *       max_recipients    = 100    # 0: no limit; more get 452 4.5.3
 *   }
 *
 * Build it out of tree against the installed SDK:
 *
 *   cc -shared -fPIC $(pkg-config --cflags smtpgate-plugin) -o example.so example.c
 *
 * What it shows: one exported descriptor (plugin ABI 2); options declared
 * with a check function or a range, so the admin's mistakes are reported
 * with file and line before anything runs; instance state made in init and
 * freed in fini; a per recipient verdict with a reply; a note on the
 * transaction's log line, through a host member tested with SG_HAS() as one
 * added after ABI 2 would be; an edit at end of message.  It keeps no state
 * per connection, so it needs no locking.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <smtpgate/plugin.h>

struct example {
    const struct sg_host *host;
    char **refused; /* addresses, or "@domain" */
    size_t nrefused;
    char *reply;
    char *header;
    size_t max_recipients; /* 0: no limit */
};

static const char *example_check_header(const char *value)
{
    if (!*value)
        return "must not be empty";
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p <= 32 || (unsigned char)*p >= 127 || *p == ':')
            return "must be a header field name (printable, no colon, no space)";
    return NULL;
}

static const char *example_check_reply(const char *value)
{
    if (value[0] != '5' || strlen(value) < 4)
        return "must be a 5xx reply such as \"550 5.1.1 text\"";
    return NULL;
}

static void example_free(struct example *e)
{
    for (size_t i = 0; i < e->nrefused; i++)
        free(e->refused[i]);
    free(e->refused);
    free(e->reply);
    free(e->header);
    free(e);
}

static int example_init(const struct sg_host *host, const struct sg_section *sec, void **instance)
{
    struct example *e = calloc(1, sizeof(*e));
    if (!e)
        return -1;
    e->host = host;
    /* within 0..100000: the host checked the declared range */
    e->max_recipients = (size_t)host->opt_int(sec, "max_recipients");
    size_t n = host->opt_list_size(sec, "refuse_recipients");
    e->refused = calloc(n ? n : 1, sizeof(*e->refused));
    e->reply = strdup(host->opt_string(sec, "reply"));
    e->header = strdup(host->opt_string(sec, "header"));
    if (!e->refused || !e->reply || !e->header) {
        example_free(e);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *item = host->opt_list_item(sec, "refuse_recipients", i);
        if (!strchr(item, '@')) {
            host->config_error(sec, "refuse_recipients",
                               "\"%s\" is neither an address nor an @domain", item);
            example_free(e);
            return -1;
        }
        if (!(e->refused[e->nrefused] = strdup(item))) {
            example_free(e);
            return -1;
        }
        e->nrefused++;
    }
    *instance = e;
    return 0;
}

static void example_fini(void *instance)
{
    example_free(instance);
}

static bool example_refused(const struct example *e, const char *rcpt)
{
    const char *at = strrchr(rcpt, '@');
    for (size_t i = 0; i < e->nrefused; i++) {
        const char *r = e->refused[i];
        if (r[0] == '@' ? at && strcasecmp(at, r) == 0 : strcasecmp(rcpt, r) == 0)
            return true;
    }
    return false;
}

static enum sg_verdict example_rcpt(struct sg_ctx *ctx, void *instance, const char *rcpt,
                                    const char *params)
{
    (void)params;
    struct example *e = instance;
    const struct sg_envelope *env = e->host->envelope(ctx);
    if (e->max_recipients && env && env->nrcpt >= e->max_recipients) {
        e->host->set_reply(ctx, "452 4.5.3 Too many recipients");
        return SG_TEMPFAIL;
    }
    if (!example_refused(e, rcpt))
        return SG_CONTINUE;
    e->host->log(ctx, SG_LOG_INFO, "refusing recipient <%s>", rcpt);
    e->host->counter_add(ctx, "refused_recipients", 1);
    /* tx_note is part of ABI 2, so SG_HAS() is always true here; a member a
     * later host adds is tested the same way before it is used. */
    if (SG_HAS(e->host, tx_note))
        e->host->tx_note(ctx, "refused a listed recipient");
    e->host->set_reply(ctx, e->reply);
    return SG_REJECT;
}

static enum sg_verdict example_eom(struct sg_ctx *ctx, void *instance)
{
    struct example *e = instance;
    const struct sg_envelope *env = e->host->envelope(ctx);
    if (env && e->host->add_header(ctx, e->header, env->tx_id) < 0)
        e->host->log(ctx, SG_LOG_WARNING, "could not add %s", e->header);
    return SG_CONTINUE;
}

static const struct sg_option example_options[] = {
    {"refuse_recipients", SG_OPT_LIST, "{}", NULL, 0, 0},
    {"reply", SG_OPT_STRING, "\"550 5.1.1 Mailbox not accepted here\"", example_check_reply, 0, 0},
    {"header", SG_OPT_STRING, "\"X-Smtpgate-Id\"", example_check_header, 0, 0},
    {"max_recipients", SG_OPT_INT, "0", NULL, 0, 100000},
    {NULL, 0, NULL, NULL, 0, 0},
};

SG_PLUGIN_EXPORT const struct sg_plugin smtpgate_plugin = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "example",
    .version = "1.0",
    .description = "refuse listed recipients, stamp messages with the transaction id",
    .options = example_options,
    .init = example_init,
    .fini = example_fini,
    .rcpt = example_rcpt,
    .eom = example_eom,
};
