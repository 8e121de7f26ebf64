/*
 * test_oldabi - a plugin built for an ABI version this host does not know
 * (a later one): the host must refuse it with a line naming the file and
 * both versions.  test_abi1.c is the real earlier version.
 */
#include "smtpgate/plugin.h"

SG_PLUGIN_EXPORT const struct sg_plugin smtpgate_plugin = {
    .abi_version = 42,
    .name = "test_oldabi",
};
