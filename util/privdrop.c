/*
 * privdrop - see privdrop.h.
 */
#include "util/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int privdrop_lookup(const char *user, const char *group, struct privdrop_ids *ids, char *err,
                    size_t errlen)
{
    errno = 0;
    const struct passwd *pw = getpwnam(user);
    if (!pw) {
        snprintf(err, errlen, "user \"%s\": %s", user, errno ? strerror(errno) : "no such user");
        return -1;
    }
    ids->uid = pw->pw_uid;
    ids->gid = pw->pw_gid;
    if (group && group[0]) {
        errno = 0;
        const struct group *gr = getgrnam(group);
        if (!gr) {
            snprintf(err, errlen, "group \"%s\": %s", group,
                     errno ? strerror(errno) : "no such group");
            return -1;
        }
        ids->gid = gr->gr_gid;
    }
    if (ids->uid == 0) {
        snprintf(err, errlen, "user \"%s\" is root: name an unprivileged user", user);
        return -1;
    }
    return 0;
}

/* Every capability set of this thread is empty. */
static bool privdrop_caps_empty(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) != 0)
        return false;
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
        if (data[i].effective || data[i].permitted || data[i].inheritable)
            return false;
    return true;
}

int privdrop_apply(const struct privdrop_ids *ids, const char *chroot_dir, char *err, size_t errlen)
{
    if (chroot_dir && chroot_dir[0] && (chroot(chroot_dir) != 0 || chdir("/") != 0)) {
        snprintf(err, errlen, "chroot %s: %s", chroot_dir, strerror(errno));
        return -1;
    }
    if (setgroups(1, &ids->gid) != 0 || setresgid(ids->gid, ids->gid, ids->gid) != 0 ||
        setresuid(ids->uid, ids->uid, ids->uid) != 0) {
        snprintf(err, errlen, "cannot become uid %ld gid %ld: %s", (long)ids->uid, (long)ids->gid,
                 strerror(errno));
        return -1;
    }
    if (setuid(0) == 0 || !privdrop_caps_empty()) {
        snprintf(err, errlen, "privileges are still held after becoming uid %ld", (long)ids->uid);
        return -1;
    }
    return 0;
}

const char *privdrop_dir_usable(const char *dir, const struct privdrop_ids *ids)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return strerror(errno);
    if (!S_ISDIR(st.st_mode))
        return "not a directory";
    if (!ids)
        return access(dir, W_OK | X_OK) == 0 ? NULL : strerror(errno);
    mode_t need = st.st_uid == ids->uid   ? S_IWUSR | S_IXUSR
                  : st.st_gid == ids->gid ? S_IWGRP | S_IXGRP
                                          : S_IWOTH | S_IXOTH;
    return (st.st_mode & need) == need ? NULL : "not writable by the service user";
}
