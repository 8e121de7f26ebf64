/*
 * build_info - the version and the installed paths compiled into every
 * program, from the header make generates (Makefile: BUILD_INFO_H) out of
 * VERSION, PREFIX, SYSCONFDIR, LOCALSTATEDIR and the like.  A build without
 * it (the fuzz harnesses compile sources directly) gets the /usr/local
 * layout.
 */
#ifndef SMTPGATE_BUILD_INFO_H
#define SMTPGATE_BUILD_INFO_H

#if defined(__has_include)
#if __has_include("smtpgate_build.h")
#include "smtpgate_build.h"
#endif
#endif

#ifndef SMTPGATE_VERSION
#define SMTPGATE_VERSION "unknown"
#endif
#ifndef SMTPGATE_CONFIG_FILE
#define SMTPGATE_CONFIG_FILE "/usr/local/etc/smtpgate/smtpgate.conf"
#endif
#ifndef SMTPGATE_CONF_DIR
#define SMTPGATE_CONF_DIR "/usr/local/etc/smtpgate"
#endif
#ifndef SMTPGATE_PLUGIN_DIR
#define SMTPGATE_PLUGIN_DIR "/usr/local/lib/smtpgate/plugins"
#endif
#ifndef SMTPGATE_SPOOL_DIR
#define SMTPGATE_SPOOL_DIR "/var/spool/smtpgate"
#endif
#ifndef SMTPGATE_RUN_DIR
#define SMTPGATE_RUN_DIR "/run"
#endif

#endif
