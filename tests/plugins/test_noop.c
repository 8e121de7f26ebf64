/*
 * test_noop - hooked at every stage, decides nothing: what the chain itself
 * costs, for the benchmark (five of these against none).
 */
#include <stddef.h>

#include "smtpgate/plugin.h"

static int noop_init(const struct sg_host *h, const struct sg_section *sec, void **instance)
{
    (void)h;
    (void)sec;
    *instance = NULL;
    return 0;
}

static enum sg_verdict noop_conn(struct sg_ctx *ctx, void *instance)
{
    (void)ctx;
    (void)instance;
    return SG_CONTINUE;
}

static enum sg_verdict noop_arg(struct sg_ctx *ctx, void *instance, const char *arg,
                                const char *params)
{
    (void)ctx;
    (void)instance;
    (void)arg;
    (void)params;
    return SG_CONTINUE;
}

static enum sg_verdict noop_header(struct sg_ctx *ctx, void *instance, const struct sg_header *h)
{
    (void)ctx;
    (void)instance;
    (void)h;
    return SG_CONTINUE;
}

static enum sg_verdict noop_body(struct sg_ctx *ctx, void *instance, const void *chunk, size_t len)
{
    (void)ctx;
    (void)instance;
    (void)chunk;
    (void)len;
    return SG_CONTINUE;
}

static void noop_end(struct sg_ctx *ctx, void *instance)
{
    (void)ctx;
    (void)instance;
}

SG_PLUGIN_EXPORT const struct sg_plugin smtpgate_plugin = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "test_noop",
    .version = "1",
    .description = "every callback, no opinion",
    .init = noop_init,
    .connect = noop_conn,
    .helo = noop_conn,
    .mail = noop_arg,
    .rcpt = noop_arg,
    .data = noop_conn,
    .header = noop_header,
    .eoh = noop_conn,
    .body = noop_body,
    .eom = noop_conn,
    .abort = noop_end,
    .close = noop_end,
};
