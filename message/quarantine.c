/*
 * quarantine - one file per quarantined message.
 *
 * Values that end up in the X-Quarantine lines come from the network (HELO,
 * addresses) or from plugins (reason): control characters are replaced, so
 * that no value can start a header line of its own.
 */
#include "message/quarantine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int quarantine_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int quarantine_line(int fd, const char *name, const char *value)
{
    char buf[1200];
    int n = snprintf(buf, sizeof(buf), "X-Quarantine-%s: %s", name, value ? value : "");
    if (n < 0)
        return -1;
    size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)buf[i] < 32 && buf[i] != '\t')
            buf[i] = '?';
    if (quarantine_write_all(fd, buf, len) < 0)
        return -1;
    return quarantine_write_all(fd, "\r\n", 2);
}

int quarantine_write(const char *dir, const struct quarantine_facts *f, const struct msg_view *msg,
                     char *out_path, size_t out_size)
{
    char tmp[4096];
    if (snprintf(out_path, out_size, "%s/%s.eml", dir, f->id) >= (int)out_size ||
        snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, f->id) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    (void)mkdir(dir, 0750);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof(when), "%a, %d %b %Y %H:%M:%S %z", localtime_r(&now, &tm));
    int rc = quarantine_line(fd, "Date", when);
    if (rc == 0)
        rc = quarantine_line(fd, "Client", f->client_addr);
    if (rc == 0)
        rc = quarantine_line(fd, "Helo", f->helo);
    if (rc == 0)
        rc = quarantine_line(fd, "Envelope-From", f->mail_from);
    for (size_t i = 0; rc == 0 && i < f->nrcpt; i++)
        rc = quarantine_line(fd, "Envelope-To", f->rcpt[i]);
    if (rc == 0)
        rc = quarantine_line(fd, "Reason", f->reason ? f->reason : "-");
    if (rc == 0)
        rc = quarantine_line(fd, "Filter", f->decided_by ? f->decided_by : "-");
    char buf[65536];
    uint64_t total = msg_view_size(msg);
    for (uint64_t off = 0; rc == 0 && off < total;) {
        ssize_t n = msg_view_read(msg, off, buf, sizeof(buf));
        if (n <= 0) {
            errno = EIO;
            rc = -1;
            break;
        }
        rc = quarantine_write_all(fd, buf, (size_t)n);
        off += (uint64_t)n;
    }
    if (rc == 0)
        rc = fsync(fd);
    int saved = errno;
    if (close(fd) < 0 && rc == 0) {
        saved = errno;
        rc = -1;
    }
    if (rc == 0 && rename(tmp, out_path) < 0) {
        saved = errno;
        rc = -1;
    }
    if (rc < 0) {
        unlink(tmp);
        errno = saved;
    }
    return rc;
}
