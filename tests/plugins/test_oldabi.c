/*
 * test_oldabi - a plugin built for another ABI version: the host must refuse
 * it with a line naming the file and both versions.
 */
#include "smtpgate/plugin.h"

SG_PLUGIN_EXPORT const struct sg_plugin smtpgate_plugin = {
    .abi_version = SG_PLUGIN_ABI_VERSION + 41,
    .name = "test_oldabi",
};
