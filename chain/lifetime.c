/*
 * lifetime - a loaded chain's reference count and what front-ends may ask of
 * it as a whole (chain.h: chain_ref, chain_unref, chain_size,
 * chain_generation, chain_wants).
 *
 * A chain is reference-counted: the runtime holds one reference, each
 * connection another, so the instances and their shared objects stay as long
 * as some session may call into them.  The last reference runs each
 * instance's fini in reverse chain order, then its dlclose: each instance
 * holds its own dlopen reference (the loader counts them), taken when it was
 * made.
 */
#include <dlfcn.h>
#include <stdlib.h>

#include "chain/chain.h"
#include "chain/instance.h"

static void chain_free_plugins(struct chain *ch)
{
    for (size_t i = ch->n; i-- > 0;) {
        struct plugin_inst *p = &ch->plugins[i];
        if (p->initialised && p->desc->fini)
            p->desc->fini(p->instance);
        while (p->counters) {
            struct plugin_counter *c = p->counters;
            p->counters = c->next;
            free(c);
        }
        pthread_mutex_destroy(&p->counters_lock);
        if (p->dl)
            dlclose(p->dl);
        free(p->name);
        free(p->path);
    }
    free(ch->plugins);
    ch->plugins = NULL;
    ch->n = 0;
}

struct chain *chain_ref(struct chain *ch)
{
    if (ch)
        atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
    return ch;
}

void chain_unref(struct chain *ch)
{
    if (!ch || atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) != 1)
        return;
    chain_free_plugins(ch);
    free(ch);
}

size_t chain_size(const struct chain *ch)
{
    return ch ? ch->n : 0;
}

unsigned chain_generation(const struct chain *ch)
{
    return ch ? ch->generation : 0;
}

bool chain_wants(const struct chain *ch, enum sg_stage stage)
{
    return ch && (ch->stage_mask & SG_STAGE_BIT(stage));
}
