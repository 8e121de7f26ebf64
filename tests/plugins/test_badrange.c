/*
 * test_badrange - a plugin whose options table declares a range the host
 * cannot enforce (a range on a string): the host must refuse it at load,
 * naming the option, before any of its values is read.
 */
#include "smtpgate/plugin.h"

static int badrange_init(const struct sg_host *h, const struct sg_section *sec, void **instance)
{
    (void)h;
    (void)sec;
    *instance = NULL;
    return 0;
}

static const struct sg_option badrange_options[] = {
    {"count", SG_OPT_INT, "3", NULL, 1, 5},
    {"label", SG_OPT_STRING, "\"x\"", NULL, 1, 5},
    {NULL, 0, NULL, NULL, 0, 0},
};

SG_PLUGIN_EXPORT const struct sg_plugin smtpgate_plugin = {
    .abi_version = SG_PLUGIN_ABI_VERSION,
    .name = "test_badrange",
    .version = "1",
    .description = "an options table with a range on a string, for smtpgate's tests",
    .options = badrange_options,
    .init = badrange_init,
};
