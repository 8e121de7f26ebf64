/*
 * control_quarantine - quarantine list, show and delete over the control
 * socket (control.h): the files quarantine_write() leaves in quarantine_dir,
 * read back with quarantine_head_parse().
 *
 * An ID names dir/ID.eml and nothing else: control_request_parse() let only
 * IDs through that hold no '/' and no "..", it is judged again here, and the
 * file is opened relative to the folder without following a symbolic link,
 * and must be a regular file.  The quarantine folder is the one of the
 * configuration in force.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/control_int.h"
#include "daemon/runtime.h"
#include "message/quarantine_read.h"
#include "util/log.h"

/* What list reads of each file before it knows where its head ends. */
#define CONTROL_HEAD_READ (64 * 1024)
/* Files one list names; more are counted, not listed. */
#define CONTROL_LIST_MAX 10000
/* The message text one show carries; the file holds the rest. */
#define CONTROL_SHOW_MAX (1024 * 1024)

/* ID.eml opened inside dir: the descriptor, or -1 with errno. */
static int control_quarantine_open(const char *dir, const char *id, struct stat *st)
{
    if (!control_id_valid(id, strlen(id))) {
        errno = EINVAL;
        return -1;
    }
    char name[CONTROL_ID_MAX + 8];
    snprintf(name, sizeof(name), "%s.eml", id);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    int err = errno;
    close(dfd);
    if (fd < 0) {
        errno = err == ELOOP ? EINVAL : err;
        return -1;
    }
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    return fd;
}

static ssize_t control_read_at(int fd, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* The first limit octets of fd (all of it when limit is 0). */
static int control_read_fd(int fd, const struct stat *st, size_t limit, char **buf, size_t *len)
{
    size_t want = (size_t)st->st_size;
    if (limit && want > limit)
        want = limit;
    *buf = malloc(want ? want : 1);
    if (!*buf)
        return -1;
    ssize_t n = control_read_at(fd, *buf, want);
    if (n < 0) {
        int err = errno;
        free(*buf);
        *buf = NULL;
        errno = err;
        return -1;
    }
    *len = (size_t)n;
    return 0;
}

int control_quarantine_read(const char *dir, const char *id, char **buf, size_t *len)
{
    struct stat st;
    int fd = control_quarantine_open(dir, id, &st);
    if (fd < 0)
        return -1;
    int rc = control_read_fd(fd, &st, 0, buf, len);
    int err = errno;
    close(fd);
    errno = err;
    return rc;
}

/* An ID from a directory entry's name: "ID.eml", the temporary ".ID.tmp" files
 * quarantine_write() renames from are not messages yet. */
static bool control_entry_id(const char *name, char *id, size_t size)
{
    size_t n = strlen(name);
    if (n < 5 || strcmp(name + n - 4, ".eml") != 0 || n - 4 >= size ||
        !control_id_valid(name, n - 4))
        return false;
    memcpy(id, name, n - 4);
    id[n - 4] = '\0';
    return true;
}

size_t control_quarantine_count(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    char id[CONTROL_ID_MAX + 1];
    while ((e = readdir(d)))
        n += control_entry_id(e->d_name, id, sizeof(id));
    closedir(d);
    return n;
}

static void control_field(struct json_out *j, const char *key, struct quarantine_field f)
{
    json_out_key(j, key);
    if (f.p)
        json_out_str(j, f.p, f.len);
    else
        json_out_cstr(j, NULL);
}

/* The members every entry has, from its head. */
static void control_render_head(struct json_out *j, const struct quarantine_head *h,
                                uint64_t message_size)
{
    control_field(j, "date", h->date);
    control_field(j, "client", h->client);
    control_field(j, "helo", h->helo);
    control_field(j, "from", h->from);
    json_out_key(j, "to");
    json_out_open(j, '[');
    for (size_t i = 0; i < h->nrcpt; i++)
        json_out_str(j, h->rcpt[i].p, h->rcpt[i].len);
    json_out_close(j);
    control_field(j, "reason", h->reason);
    control_field(j, "filter", h->filter);
    json_out_key(j, "size");
    json_out_int(j, (int64_t)message_size);
}

/* ---- list ---- */

struct control_entry {
    char id[CONTROL_ID_MAX + 1];
    char *buf;
    uint64_t file_size;
    enum quarantine_head_status st;
    struct quarantine_head head;
};

struct control_list {
    const char *dir;
    struct control_entry *v;
    size_t n;
    size_t skipped; /* past CONTROL_LIST_MAX */
    const char *error;
};

static void control_entry_load(const char *dir, struct control_entry *e)
{
    struct stat st;
    e->st = QH_INVALID;
    int fd = control_quarantine_open(dir, e->id, &st);
    if (fd < 0)
        return;
    e->file_size = (uint64_t)st.st_size;
    size_t len = 0;
    if (control_read_fd(fd, &st, CONTROL_HEAD_READ, &e->buf, &len) == 0) {
        bool whole = len == (size_t)st.st_size;
        e->st = quarantine_head_parse(e->buf, len, whole, &e->head);
        if (e->st == QH_INCOMPLETE) {
            /* A long recipient list: the whole file, then. */
            free(e->buf);
            e->buf = NULL;
            e->st = control_read_fd(fd, &st, 0, &e->buf, &len) == 0
                        ? quarantine_head_parse(e->buf, len, true, &e->head)
                        : QH_INVALID;
        }
    }
    close(fd);
}

static int control_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct control_entry *)a)->id, ((const struct control_entry *)b)->id);
}

static void control_render_list(struct json_out *j, void *arg)
{
    struct control_list *l = arg;
    json_out_key(j, "dir");
    json_out_cstr(j, l->dir);
    json_out_key(j, "count");
    json_out_int(j, (int64_t)(l->n + l->skipped));
    if (l->skipped) {
        json_out_key(j, "not_listed");
        json_out_int(j, (int64_t)l->skipped);
    }
    json_out_key(j, "messages");
    json_out_open(j, '[');
    for (size_t i = 0; i < l->n; i++) {
        const struct control_entry *e = &l->v[i];
        json_out_open(j, '{');
        json_out_key(j, "id");
        json_out_cstr(j, e->id);
        if (e->st == QH_OK) {
            control_render_head(j, &e->head, e->file_size - e->head.message_offset);
        } else {
            json_out_key(j, "invalid");
            json_out_bool(j, true);
            json_out_key(j, "size");
            json_out_int(j, (int64_t)e->file_size);
        }
        json_out_close(j);
    }
    json_out_close(j);
}

void control_quarantine_list(struct control_conn *c)
{
    struct sg_runtime *rt = runtime_current();
    if (!rt) {
        control_answer_error(c, "no configuration in force");
        return;
    }
    struct control_list l = {.dir = rt->cfg->quarantine_dir};
    DIR *d = opendir(l.dir);
    if (!d && errno != ENOENT) {
        control_answer_error(c, "%s: %s", l.dir, strerror(errno));
        runtime_unref(rt);
        return;
    }
    size_t cap = 0;
    struct dirent *de;
    char id[CONTROL_ID_MAX + 1];
    while (d && (de = readdir(d))) {
        if (!control_entry_id(de->d_name, id, sizeof(id)))
            continue;
        if (l.n == CONTROL_LIST_MAX) {
            l.skipped++;
            continue;
        }
        if (l.n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            struct control_entry *v = realloc(l.v, ncap * sizeof(*v));
            if (!v) {
                l.skipped++;
                continue;
            }
            l.v = v;
            cap = ncap;
        }
        struct control_entry *e = &l.v[l.n++];
        memset(e, 0, sizeof(*e));
        memcpy(e->id, id, sizeof(id));
    }
    if (d)
        closedir(d);
    for (size_t i = 0; i < l.n; i++)
        control_entry_load(l.dir, &l.v[i]);
    if (l.n)
        qsort(l.v, l.n, sizeof(*l.v), control_entry_cmp);
    control_answer(c, true, control_render_list, &l);
    for (size_t i = 0; i < l.n; i++) {
        if (l.v[i].st == QH_OK)
            quarantine_head_free(&l.v[i].head);
        free(l.v[i].buf);
    }
    free(l.v);
    runtime_unref(rt);
}

/* ---- show ---- */

struct control_show {
    const char *id;
    char path[4096];
    const char *buf;
    size_t len;
    struct quarantine_head head;
};

static void control_render_show(struct json_out *j, void *arg)
{
    struct control_show *s = arg;
    json_out_key(j, "id");
    json_out_cstr(j, s->id);
    json_out_key(j, "file");
    json_out_cstr(j, s->path);
    control_render_head(j, &s->head, s->len - s->head.message_offset);
    size_t n = s->len - s->head.message_offset;
    json_out_key(j, "message_truncated");
    json_out_bool(j, n > CONTROL_SHOW_MAX);
    json_out_key(j, "message");
    json_out_str(j, s->buf + s->head.message_offset, n > CONTROL_SHOW_MAX ? CONTROL_SHOW_MAX : n);
}

/* The error answer for a file that cannot be had; true when one was sent. */
static bool control_quarantine_missing(struct control_conn *c, const char *id, int err)
{
    if (err == ENOENT)
        control_answer_error(c, "no quarantined message %s", id);
    else if (err == EINVAL)
        control_answer_error(c, "%s: not a quarantined message", id);
    else
        control_answer_error(c, "%s: %s", id, strerror(err));
    return true;
}

void control_quarantine_show(struct control_conn *c, const char *id)
{
    struct sg_runtime *rt = runtime_current();
    if (!rt) {
        control_answer_error(c, "no configuration in force");
        return;
    }
    struct control_show s = {.id = id};
    snprintf(s.path, sizeof(s.path), "%s/%s.eml", rt->cfg->quarantine_dir, id);
    char *buf = NULL;
    if (control_quarantine_read(rt->cfg->quarantine_dir, id, &buf, &s.len) < 0) {
        control_quarantine_missing(c, id, errno);
    } else if (quarantine_head_parse(buf, s.len, true, &s.head) != QH_OK) {
        control_answer_error(c, "%s: not a quarantine file (its X-Quarantine lines do not read)",
                             id);
    } else {
        s.buf = buf;
        control_answer(c, true, control_render_show, &s);
        quarantine_head_free(&s.head);
    }
    free(buf);
    runtime_unref(rt);
}

/* ---- delete ---- */

struct control_deleted {
    const char *id;
    const char *path;
};

static void control_render_deleted(struct json_out *j, void *arg)
{
    struct control_deleted *d = arg;
    json_out_key(j, "id");
    json_out_cstr(j, d->id);
    json_out_key(j, "file");
    json_out_cstr(j, d->path);
    json_out_key(j, "deleted");
    json_out_bool(j, true);
}

void control_quarantine_delete(struct control_conn *c, const char *id)
{
    if (control_release_busy(id)) {
        control_answer_error(c, "%s is being released; not deleted", id);
        return;
    }
    struct sg_runtime *rt = runtime_current();
    if (!rt) {
        control_answer_error(c, "no configuration in force");
        return;
    }
    const char *dir = rt->cfg->quarantine_dir;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.eml", dir, id);
    struct stat st;
    int fd = control_quarantine_open(dir, id, &st);
    int dfd = fd >= 0 ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    char name[CONTROL_ID_MAX + 8];
    snprintf(name, sizeof(name), "%s.eml", id);
    if (fd < 0 || dfd < 0 || unlinkat(dfd, name, 0) < 0) {
        control_quarantine_missing(c, id, errno);
    } else {
        log_info("quarantine: %s deleted by uid %ld: %s", id, control_conn_uid(c), path);
        struct control_deleted d = {.id = id, .path = path};
        control_answer(c, true, control_render_deleted, &d);
    }
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    runtime_unref(rt);
}
