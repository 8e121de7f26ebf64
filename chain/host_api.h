/*
 * host_api - the host function table handed to every plugin's init and
 * reload (chain/host_api.c).  Its size member is sizeof(struct sg_host) of
 * this build, so that plugins can test later members with SG_HAS().
 */
#ifndef SMTPGATE_CHAIN_HOST_API_H
#define SMTPGATE_CHAIN_HOST_API_H

#include "smtpgate/plugin.h"

extern const struct sg_host host_api_table;

#endif
