/*
 * sa_files - which SpamAssassin files a load reads, in SpamAssassin's
 * order: the rules folder (sa-update's /var/lib/spamassassin/<version> when
 * it exists, which then replaces /usr/share/spamassassin, as SpamAssassin
 * decides), then the site folder /etc/spamassassin, each
 * folder's *.cf sorted by name; then the admin's own files.  The .pre
 * files (the site's, then the rules folder's, as SpamAssassin reads them)
 * matter only for the plugins smtpgate emulates that SpamAssassin loads on
 * request (sa_cond): their loadplugin lines are read before the rules.
 * Not installed.
 */
#ifndef SMTPGATE_RULES_SA_FILES_H
#define SMTPGATE_RULES_SA_FILES_H

#include <stddef.h>

#include "rules/rules.h"

#define SA_DEFAULT_RULES_DIR "/usr/share/spamassassin"
#define SA_UPDATE_DIR        "/var/lib/spamassassin"
#define SA_SITE_DIR          "/etc/spamassassin"

/* The files to read (malloc'ed array of malloc'ed paths) in *out, *n.
 * 0, or -1 with *why (malloc'ed; NULL: out of memory) when a folder given
 * cannot be read or no .cf file is found at all. */
int sa_files_list(const struct rules_sa_opts *o, const char *version, char ***out, size_t *n,
                  char **why);
/* The .pre files, in SpamAssassin's order, in *out, *n; a folder that is
 * not there has none.  0, or -1 when out of memory. */
int sa_files_pre(const struct rules_sa_opts *o, const char *version, char ***out, size_t *n);
void sa_files_free(char **v, size_t n);

#endif
