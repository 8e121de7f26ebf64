/*
 * test_abi1 - a plugin as it was built for plugin ABI version 1, before
 * struct sg_host and struct sg_conn_info carried their size and struct
 * sg_option its range.  Its descriptor is written out here in ABI 1's
 * layout, as the ABI 1 header declared it, so that it stays an ABI 1 plugin
 * whatever plugin.h becomes: the host must refuse it at load with
 * "test_abi1.so is built for plugin ABI version 1; this smtpgate has
 * version N", and never call into it.
 */
#include <stdbool.h>
#include <stddef.h>

#include "smtpgate/plugin.h" /* SG_PLUGIN_EXPORT only */

/* ABI 1's struct sg_option */
struct abi1_option {
    const char *name;
    int type;
    const char *def;
    const char *(*check)(const char *value);
};

/* ABI 1's struct sg_plugin: the same first member as every ABI version. */
struct abi1_plugin {
    unsigned abi_version;
    const char *name;
    const char *version;
    const char *description;
    const struct abi1_option *options;
    unsigned blocking_stages;
    int (*init)(const void *host, const void *sec, void **instance);
    int (*reload)(const void *host, const void *sec, void *previous, void **instance);
    void (*fini)(void *instance);
    int (*connect)(void *ctx, void *instance);
    int (*helo)(void *ctx, void *instance);
    int (*mail)(void *ctx, void *instance, const char *arg, const char *params);
    int (*rcpt)(void *ctx, void *instance, const char *arg, const char *params);
    int (*data)(void *ctx, void *instance);
    int (*header)(void *ctx, void *instance, const void *h);
    int (*eoh)(void *ctx, void *instance);
    int (*body)(void *ctx, void *instance, const void *chunk, size_t len);
    int (*eom)(void *ctx, void *instance);
    void (*abort)(void *ctx, void *instance);
    void (*close)(void *ctx, void *instance);
};

static int abi1_init(const void *host, const void *sec, void **instance)
{
    (void)host;
    (void)sec;
    *instance = NULL;
    return 0;
}

static const struct abi1_option abi1_options[] = {
    {"greeting", 1 /* ABI 1's SG_OPT_STRING */, "\"hello\"", NULL},
    {NULL, 0, NULL, NULL},
};

SG_PLUGIN_EXPORT const struct abi1_plugin smtpgate_plugin = {
    .abi_version = 1,
    .name = "test_abi1",
    .version = "1",
    .description = "a plugin of plugin ABI version 1, for smtpgate's tests",
    .options = abi1_options,
    .init = abi1_init,
};
