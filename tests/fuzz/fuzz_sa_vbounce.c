// fuzz-sources: rules/*.c !rules/smtpgate-rules.c util/alloc.c util/net.c
// fuzz-pkgs: libpcre2-8 gmime-3.0 libcares
/*
 * VBounce's search of a bounce for the admin's relays reads whatever a
 * client sends: the rendered body's lines and the pristine body's joined
 * Received lines.  Whatever the input, evaluation ends with a verdict, the
 * pristine body's offset lies within the input, and the test answers
 * the same under both its names, whatever the rule's type and arguments.  The input is copied to a buffer
 * of exactly its size, so any read past it is caught.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rules/rules_int.h"
#include "rules/sa_mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char cf[] = "welcomelist_bounce_relays relay.mine.example *.out.mine.example\n"
                         "body VB_ANY eval:have_any_bounce_relays()\n"
                         "body VB_MINE eval:check_welcomelist_bounce_relays()\n"
                         "rawbody VB_OLD eval:check_whitelist_bounce_relays(1)\n";

static struct rules *rules;

static void load_once(void)
{
    char dir[] = "/tmp/fuzz_sa_vbounce.XXXXXX", path[64];
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(path, sizeof(path), "%s/20_vb.cf", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(cf, f) < 0 || fclose(f) != 0)
        abort();
    const char *dirs[] = {dir};
    struct rules_sa_opts o = {.dirs = dirs, .ndirs = 1};
    struct rules_errors errs = {0};
    if (rules_load_sa(NULL, 0, &o, NULL, &rules, &errs, NULL) != 0 || errs.n != 0)
        abort();
    rules_errors_free(&errs);
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (rules == NULL)
        load_once();
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct rules_msg *m = rules_msg_parse(buf, size);
    struct rules_tx *tx = rules_tx_new(rules);
    const struct rules_outcome *o = rules_tx_eval(tx, RULES_STAGE_CONTENT, NULL, m);
    if (o == NULL)
        abort();
    struct sa_mime *t = rules_msg_sa_mime(m);
    size_t len;
    rules_msg_full(m, &len);
    if (t != NULL && t->pristine_body_off > len)
        abort();
    bool any = false, mine = false, old = false;
    for (size_t i = 0; i < o->nhits; i++) {
        any |= strcmp(o->hits[i].rule, "VB_ANY") == 0;
        mine |= strcmp(o->hits[i].rule, "VB_MINE") == 0;
        old |= strcmp(o->hits[i].rule, "VB_OLD") == 0;
    }
    /* a relay is listed; the two names are one test, whatever the rule's
     * type and arguments */
    if (!any || mine != old)
        abort();
    rules_tx_free(tx);
    rules_msg_free(m);
    free(buf);
    return 0;
}
