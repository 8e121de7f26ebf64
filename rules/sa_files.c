/*
 * sa_files - the list of SpamAssassin files to read (see sa_files.h).
 * A folder named by the admin that cannot be opened is an error; one of
 * the default folders that does not exist is simply not there (a site
 * without /etc/spamassassin).  sa-update's folder, once it exists, replaces
 * the package's rules whatever it holds, as in SpamAssassin: an empty one
 * then means no rules, and the load says so.
 */
#include "rules/sa_files.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/alloc.h"

struct list {
    char **v;
    size_t n, cap;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool push(struct list *l, char *s)
{
    if (s == NULL || util_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v)) != 0) {
        free(s);
        return false;
    }
    l->v[l->n++] = s;
    return true;
}

/* The folder's files ending in ext, sorted; 1 when there is no such
 * folder, -1 on error. */
static int add_ext(struct list *l, const char *dir, const char *ext, char **why)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return 1;
        util_asprintf(why, "cannot read the folder %s: %s", dir, strerror(errno));
        return -1;
    }
    size_t first = l->n;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        /* SpamAssassin's _get_cf_pre_files_in_dir: /\.cf$/ (/\.pre$/) and a
         * plain file */
        size_t en = strlen(ext);
        if (n < en || strcmp(e->d_name + n - en, ext) != 0)
            continue;
        char *p = NULL;
        if (util_asprintf(&p, "%s/%s", dir, e->d_name) < 0 || !push(l, p)) {
            *why = NULL;
            rc = -1;
            break;
        }
        struct stat st;
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(l->v[--l->n]);
            continue;
        }
    }
    closedir(d);
    if (rc == 0 && l->n > first + 1)
        qsort(l->v + first, l->n - first, sizeof(*l->v), cmp_str);
    return rc;
}

static int add_dir(struct list *l, const char *dir, char **why)
{
    return add_ext(l, dir, ".cf", why);
}

/* SpamAssassin's first_existing_path: the path is there (whatever it holds). */
static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int sa_files_list(const struct rules_sa_opts *o, const char *version, char ***out, size_t *n,
                  char **why)
{
    struct list l = {0};
    *why = NULL;
    *out = NULL;
    *n = 0;
    if (o->dirs != NULL) {
        for (size_t i = 0; i < o->ndirs; i++) {
            int rc = add_dir(&l, o->dirs[i], why);
            if (rc == 1)
                util_asprintf(why, "cannot read the folder %s: %s", o->dirs[i], strerror(ENOENT));
            if (rc != 0)
                goto fail;
        }
    } else {
        char *update = NULL;
        if (util_asprintf(&update, "%s/%s", SA_UPDATE_DIR, version) < 0)
            goto fail;
        const char *rules_dir = exists(update) ? update : SA_DEFAULT_RULES_DIR;
        int rc = add_dir(&l, rules_dir, why);
        free(update);
        if (rc < 0 || add_dir(&l, SA_SITE_DIR, why) < 0)
            goto fail;
    }
    for (size_t i = 0; i < o->nlocal; i++)
        if (!push(&l, util_strdup(o->local[i])))
            goto fail;
    if (l.n == 0) {
        util_asprintf(why, "no SpamAssassin rule files (*.cf) found: is the spamassassin "
                           "package installed?");
        goto fail;
    }
    *out = l.v;
    *n = l.n;
    return 0;
fail:
    sa_files_free(l.v, l.n);
    return -1;
}

int sa_files_pre(const struct rules_sa_opts *o, const char *version, char ***out, size_t *n)
{
    struct list l = {0};
    char *why = NULL;
    *out = NULL;
    *n = 0;
    int rc = 0;
    if (o->dirs != NULL) {
        for (size_t i = 0; i < o->ndirs && rc >= 0; i++)
            rc = add_ext(&l, o->dirs[i], ".pre", &why);
    } else {
        /* the site's first, then the rules folder's, as SpamAssassin reads them */
        char *update = NULL;
        if (util_asprintf(&update, "%s/%s", SA_UPDATE_DIR, version) < 0)
            rc = -1;
        if (rc >= 0)
            rc = add_ext(&l, SA_SITE_DIR, ".pre", &why);
        if (rc >= 0)
            rc = add_ext(&l, exists(update) ? update : SA_DEFAULT_RULES_DIR, ".pre", &why);
        free(update);
    }
    /* a folder that cannot be read has no .pre file to offer: sa_files_list
     * reports it */
    bool nomem = rc < 0 && why == NULL;
    free(why);
    if (nomem) {
        sa_files_free(l.v, l.n);
        return -1;
    }
    *out = l.v;
    *n = l.n;
    return 0;
}

void sa_files_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}
