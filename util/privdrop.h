/*
 * privdrop - from root to the service user: the "user", "group" and
 * "chroot" settings.
 *
 * privdrop_lookup() finds the user's uid and primary gid (and group's gid
 * when a group is named) before anything is opened, so a wrong name is an
 * error at start.  privdrop_apply() is called once everything that needs
 * root is open (listening sockets, the syslog socket, the pid file): it
 * enters the chroot folder if one is set, replaces the supplementary groups
 * with the one group, sets the gid, then the uid.  Changing every uid away
 * from 0 clears the permitted, effective and ambient capability sets (no
 * SECBIT_KEEP_CAPS is set), and privdrop_apply() checks that they are empty
 * and that uid 0 cannot be taken back.  glibc applies the set*id calls to
 * every thread of the process.
 *
 * privdrop_dir_usable() tells whether ids (or the caller when ids is NULL)
 * may create files in dir, from its owner and mode: a root-run check cannot
 * ask access(2) about another user.
 */
#ifndef SMTPGATE_PRIVDROP_H
#define SMTPGATE_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct privdrop_ids {
    uid_t uid;
    gid_t gid;
};

/* 0, or -1 with the reason in err. */
int privdrop_lookup(const char *user, const char *group, struct privdrop_ids *ids, char *err,
                    size_t errlen);
int privdrop_apply(const struct privdrop_ids *ids, const char *chroot_dir, char *err,
                   size_t errlen);

/* NULL when usable, else why not (a static string, or errno's text). */
const char *privdrop_dir_usable(const char *dir, const struct privdrop_ids *ids);

#endif
