/*
 * plugin_host - the host function table plugins call (plugin_host_table,
 * declared in chain_impl.h with the functions it is made of), the chain's
 * reference counting (chain.h), and the counters each instance counts its
 * verdicts in.  Loading plugins and building a chain from a configuration is
 * plugin_load.h's.
 */
#ifndef SMTPGATE_PLUGIN_HOST_H
#define SMTPGATE_PLUGIN_HOST_H

#include "chain/chain_impl.h"

#endif
