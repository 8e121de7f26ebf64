/*
 * sa_rules_fixture - what the SpamAssassin rule tests share: .cf files
 * written into a folder of their own (a name starting with '@' goes beside
 * it, for native rule files), that folder loaded with rules_load_sa, and the
 * content hits of a message as " NAME NAME ... ".  The including test
 * defines `dir`, a mkdtemp template, before including this.
 */
#ifndef SMTPGATE_TESTS_SA_RULES_FIXTURE_H
#define SMTPGATE_TESTS_SA_RULES_FIXTURE_H

static char sadir[300];

static const char *write_file(const char *name, const char *text)
{
    static char path[400];
    snprintf(path, sizeof(path), "%s/%s", name[0] == '@' ? dir : sadir,
             name[0] == '@' ? name + 1 : name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(sadir, sizeof(sadir), "%s/sa", dir);
    return mkdir(sadir, 0700);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

struct loaded {
    struct rules *r;
    struct rules_sa_report rep;
};

static struct loaded load(const char *native, bool network)
{
    struct loaded l = {0};
    const char *dirs[] = {sadir};
    struct rules_sa_opts o = {.dirs = dirs, .ndirs = 1, .network = network};
    const char *paths[1] = {NULL};
    size_t n = 0;
    if (native != NULL)
        paths[n++] = native;
    struct rules_errors errs = {0};
    int rc = rules_load_sa(paths, n, &o, NULL, &l.r, &errs, &l.rep);
    for (size_t i = 0; i < errs.n; i++) {
        char *s = rules_error_format(&errs.v[i]);
        print_message("unexpected: %s\n", s);
        free(s);
    }
    assert_int_equal(rc, 0);
    rules_errors_free(&errs);
    return l;
}

static void unload(struct loaded *l)
{
    rules_unref(l->r);
    rules_sa_report_free(&l->rep);
}

/* The content hits over msg, as " NAME NAME ... " */
static char *hits(struct rules *r, const char *msg, double *score)
{
    struct rules_msg *m = rules_msg_parse(msg, strlen(msg));
    struct rules_tx *tx = rules_tx_new(r);
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
    assert_non_null(o);
    static char buf[4096];
    size_t n = 0;
    buf[n++] = ' ';
    for (size_t i = 0; i < o->nhits; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s ", o->hits[i].rule);
    buf[n] = '\0';
    if (score != NULL)
        *score = o->score;
    rules_tx_free(tx);
    rules_msg_free(m);
    return buf;
}

static bool has(const char *h, const char *name)
{
    char w[200];
    snprintf(w, sizeof(w), " %s ", name);
    return strstr(h, w) != NULL;
}

/* Every rule of want hit msg and none of miss did; WANT(...) and NONE build the lists */
static void __attribute__((unused))
expect_hits(struct rules *r, const char *msg, const char *const *want, size_t nw,
            const char *const *miss, size_t nm)
{
    char *h = hits(r, msg, NULL);
    for (size_t i = 0; i < nw; i++)
        if (!has(h, want[i]))
            fail_msg("%s did not hit:%s", want[i], h);
    for (size_t i = 0; i < nm; i++)
        if (has(h, miss[i]))
            fail_msg("%s hit:%s", miss[i], h);
}
#define WANT(...)                                                                                  \
    (const char *[]){__VA_ARGS__}, sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)
#define NONE NULL, 0

static size_t __attribute__((unused)) skipped(const struct rules_sa_report *rep, const char *what)
{
    for (size_t i = 0; i < rep->nskipped; i++)
        if (strcmp(rep->skipped[i].what, what) == 0)
            return rep->skipped[i].count;
    return 0;
}

#endif
