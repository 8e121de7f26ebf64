/*
 * msg_store - a message's octets between end of data and the upstream's
 * final reply: in memory up to spill_threshold, else in an unlinked file.
 *
 * msg_store_append() keeps octets in memory while the total stays within
 * spill_threshold (0: spill at the first octet).  The append that would pass
 * it creates the spool file with mkostemp(O_CLOEXEC), unlinks it at once,
 * copies the memory content there and frees it; from then on appends go
 * through a 64 KiB write buffer, so the per-chunk writes of a slow client do
 * not each cost a system call.  msg_store_read() copies by offset: from
 * memory, or with pread() from the file and from the write buffer for the
 * octets not yet written, so it is correct even without msg_store_flush().
 * Reading never moves the file offset that appends use.
 *
 * msg_store_reset() frees the memory and closes the file, so an idle session
 * holds no buffer and no descriptor.
 *
 * Diagnostics: -1 with errno.  An I/O error is sticky until reset: the
 * content is incomplete, and later calls fail with the same errno rather
 * than hand out a message with a hole in it.
 */
#include "message/msg_store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MSG_STORE_WBUF  (64 * 1024)
#define MSG_STORE_FIRST 4096 /* first memory allocation */

struct msg_store {
    size_t spill_threshold;
    char *spool_dir;
    char *mem; /* memory mode: the content */
    size_t mem_len;
    size_t mem_cap;
    int fd;        /* -1 in memory mode */
    uint64_t flen; /* octets written to the file */
    char *wbuf;    /* octets after flen, not yet written */
    size_t wbuf_len;
    int err; /* sticky errno after an I/O error */
};

struct msg_store *msg_store_new(size_t spill_threshold, const char *spool_dir)
{
    struct msg_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    if (spool_dir != NULL && (s->spool_dir = strdup(spool_dir)) == NULL) {
        free(s);
        return NULL;
    }
    s->spill_threshold = spill_threshold;
    s->fd = -1;
    return s;
}

void msg_store_reset(struct msg_store *s)
{
    if (s->fd >= 0)
        (void)close(s->fd);
    s->fd = -1;
    free(s->mem);
    free(s->wbuf);
    s->mem = NULL;
    s->wbuf = NULL;
    s->mem_len = s->mem_cap = s->wbuf_len = 0;
    s->flen = 0;
    s->err = 0;
}

void msg_store_free(struct msg_store *s)
{
    if (s == NULL)
        return;
    msg_store_reset(s);
    free(s->spool_dir);
    free(s);
}

static int store_fail(struct msg_store *s, int err)
{
    s->err = err;
    errno = err;
    return -1;
}

static int store_write_all(struct msg_store *s, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(s->fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return store_fail(s, errno);
        }
        if (w == 0)
            return store_fail(s, EIO);
        p += w;
        n -= (size_t)w;
        s->flen += (uint64_t)w;
    }
    return 0;
}

/* Move to a file: memory content first, then the write buffer takes over. */
static int store_spill(struct msg_store *s)
{
    if (s->spool_dir == NULL) {
        errno = EINVAL;
        return -1;
    }
    char *wbuf = malloc(MSG_STORE_WBUF);
    size_t plen = strlen(s->spool_dir) + sizeof("/smtpgate.XXXXXX");
    char *path = malloc(plen);
    if (wbuf == NULL || path == NULL) {
        free(wbuf);
        free(path);
        errno = ENOMEM;
        return -1;
    }
    (void)snprintf(path, plen, "%s/smtpgate.XXXXXX", s->spool_dir);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        free(wbuf);
        free(path);
        errno = e;
        return -1;
    }
    /* Nobody else can open it, and a crash leaves nothing to clean up. */
    (void)unlink(path);
    free(path);
    s->fd = fd;
    s->wbuf = wbuf;
    s->wbuf_len = 0;
    s->flen = 0;
    if (s->mem_len > 0 && store_write_all(s, s->mem, s->mem_len) < 0)
        return -1;
    free(s->mem);
    s->mem = NULL;
    s->mem_len = s->mem_cap = 0;
    return 0;
}

int msg_store_flush(struct msg_store *s)
{
    if (s->err != 0) {
        errno = s->err;
        return -1;
    }
    if (s->fd < 0 || s->wbuf_len == 0)
        return 0;
    size_t n = s->wbuf_len;
    s->wbuf_len = 0;
    return store_write_all(s, s->wbuf, n);
}

static int store_mem_append(struct msg_store *s, const void *bytes, size_t len)
{
    size_t need = s->mem_len + len;
    if (need > s->mem_cap) {
        size_t cap = s->mem_cap ? s->mem_cap : MSG_STORE_FIRST;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        /* No point in room the spill will never let us use. */
        if (cap > s->spill_threshold)
            cap = need > s->spill_threshold ? need : s->spill_threshold;
        char *mem = realloc(s->mem, cap);
        if (mem == NULL) {
            errno = ENOMEM;
            return -1;
        }
        s->mem = mem;
        s->mem_cap = cap;
    }
    memcpy(s->mem + s->mem_len, bytes, len);
    s->mem_len = need;
    return 0;
}

int msg_store_append(struct msg_store *s, const void *bytes, size_t len)
{
    if (s->err != 0) {
        errno = s->err;
        return -1;
    }
    if (len == 0)
        return 0;
    if (s->fd < 0) {
        if (len <= s->spill_threshold && s->mem_len <= s->spill_threshold - len)
            return store_mem_append(s, bytes, len);
        /* On failure the content stays in memory, as it was. */
        if (store_spill(s) < 0)
            return -1;
    }
    if (s->wbuf_len + len <= MSG_STORE_WBUF) {
        memcpy(s->wbuf + s->wbuf_len, bytes, len);
        s->wbuf_len += len;
        if (s->wbuf_len == MSG_STORE_WBUF)
            return msg_store_flush(s);
        return 0;
    }
    if (msg_store_flush(s) < 0)
        return -1;
    if (len >= MSG_STORE_WBUF)
        return store_write_all(s, bytes, len);
    memcpy(s->wbuf, bytes, len);
    s->wbuf_len = len;
    return 0;
}

uint64_t msg_store_size(const struct msg_store *s)
{
    return s->fd < 0 ? s->mem_len : s->flen + s->wbuf_len;
}

bool msg_store_spilled(const struct msg_store *s)
{
    return s->fd >= 0;
}

const char *msg_store_peek(const struct msg_store *s, uint64_t offset, size_t *len)
{
    if (s->fd >= 0 || s->err != 0 || offset > s->mem_len)
        return NULL;
    *len = s->mem_len - (size_t)offset;
    return s->mem ? s->mem + offset : "";
}

ssize_t msg_store_read(struct msg_store *s, uint64_t offset, void *buf, size_t len)
{
    if (s->err != 0) {
        errno = s->err;
        return -1;
    }
    uint64_t size = msg_store_size(s);
    if (offset >= size || len == 0)
        return 0;
    if (len > SSIZE_MAX)
        len = SSIZE_MAX;
    if (len > size - offset)
        len = (size_t)(size - offset);
    if (s->fd < 0) {
        memcpy(buf, s->mem + offset, len);
        return (ssize_t)len;
    }
    char *out = buf;
    size_t done = 0;
    while (done < len && offset + done < s->flen) {
        uint64_t avail = s->flen - (offset + done);
        size_t want = len - done < avail ? len - done : (size_t)avail;
        ssize_t r = pread(s->fd, out + done, want, (off_t)(offset + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0) {
            /* The file is shorter than what we wrote to it. */
            errno = EIO;
            return -1;
        }
        done += (size_t)r;
    }
    if (done < len) {
        size_t from = (size_t)(offset + done - s->flen);
        memcpy(out + done, s->wbuf + from, len - done);
        done = len;
    }
    return (ssize_t)done;
}

int msg_store_sink(void *ctx, const char *bytes, size_t len)
{
    return msg_store_append(ctx, bytes, len) < 0 ? -1 : 0;
}
