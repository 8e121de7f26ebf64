/*
 * sa_eval_image - SpamAssassin's image eval tests (Plugin::ImageInfo),
 * natively, over the MIME tree as its parser builds it (sa_mime.h):
 *
 *   image_count(TYPE, MIN[, MAX])     base64 image/gif, image/png,
 *                                     image/jpeg (image/jpg) leaves of TYPE
 *                                     (gif, png, jpeg or all) counted
 *   pixel_coverage(TYPE, MIN[, MAX])  their pixels (width x height) summed
 *   image_size_exact(TYPE, H, W)      an image of TYPE is H x W
 *   image_size_range(TYPE, MINH, MINW[, MAXH[, MAXW]])
 *                                     an image of TYPE is within the bounds
 *   image_named(NAME)                 an image (with its dimensions read)
 *                                     is named NAME
 *   image_name_regex(RE)              such a name matches RE
 *   image_to_text_ratio(TYPE, MIN, MAX)
 *                                     the octets of the body (the decoded
 *                                     text for a rawbody rule, the rendered
 *                                     for a body rule) per pixel of TYPE, in
 *                                     [MIN, MAX)
 *   each a count in [MIN, MAX] (no MAX: no upper bound), as result_check.
 *
 * What it promises: the images are read once per message (their
 * dimensions by sa_image.h, as ImageInfo reads them); an image is counted
 * even when its dimensions cannot be read, its pixels and name only when
 * they can.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/rules_int.h"
#include "rules/sa_eval.h"
#include "rules/sa_image.h"
#include "rules/sa_mime.h"
#include "util/alloc.h"

#define NTYPES 3 /* gif, png, jpeg; "all" is their sum */

struct dims {
    uint32_t h, w;
    int type;
    const char *name; /* the node's, or NULL */
};

struct sa_image_facts {
    double count[NTYPES + 1], pixels[NTYPES + 1];
    size_t n;
    struct dims d[]; /* the images whose dimensions were read */
};

static int type_index(const char *t)
{
    static const char *const names[] = {"gif", "png", "jpeg", "all"};
    for (int i = 0; i <= NTYPES; i++)
        if (strcmp(t, names[i]) == 0)
            return i;
    return -1;
}

static struct sa_image_facts *facts(struct rules_msg *m)
{
    struct sa_mime *t = rules_msg_sa_mime(m);
    if (t == NULL)
        return NULL;
    if (t->image_facts != NULL)
        return t->image_facts;
    size_t nimg = 0;
    for (size_t i = 0; i < t->nnodes; i++)
        nimg += t->nodes[i].leaf && strncmp(t->nodes[i].type, "image/", 6) == 0;
    struct sa_image_facts *f = util_calloc(1, sizeof(*f) + nimg * sizeof(struct dims));
    if (f == NULL)
        return NULL;
    for (size_t i = 0; i < t->nnodes; i++) {
        const struct sa_mime_node *nd = &t->nodes[i];
        /* find_parts(qr@^image/(?:gif|png|jpe?g)$@, 1), base64 only */
        int type = -1;
        if (!nd->leaf || nd->cte == NULL || strcasecmp(nd->cte, "base64") != 0)
            continue;
        if (strcmp(nd->type, "image/gif") == 0)
            type = SA_IMAGE_GIF;
        else if (strcmp(nd->type, "image/png") == 0)
            type = SA_IMAGE_PNG;
        else if (strcmp(nd->type, "image/jpeg") == 0 || strcmp(nd->type, "image/jpg") == 0)
            type = SA_IMAGE_JPEG;
        if (type < 0)
            continue;
        size_t n;
        char *data = sa_mime_decode(t, i, &n);
        if (data == NULL) {
            free(f);
            return NULL;
        }
        uint32_t w, h;
        if (sa_image_dims((enum sa_image_type)type, (const unsigned char *)data, n, &w, &h)) {
            f->pixels[type] += (double)w * (double)h;
            f->d[f->n++] = (struct dims){h, w, type, nd->name && *nd->name ? nd->name : NULL};
        }
        f->count[type]++;
        free(data);
    }
    for (int k = 0; k < NTYPES; k++) {
        f->count[NTYPES] += f->count[k];
        f->pixels[NTYPES] += f->pixels[k];
    }
    t->image_facts = f;
    return f;
}

/* ImageInfo's result_check: MIN <= v (<= MAX), and v != MAX when asked */
static bool result_check(const struct sa_eval_call *c, size_t imin, double v, bool nomaxequal)
{
    if (v < c->num[imin])
        return false;
    bool has_max = c->args.n > imin + 1;
    if (has_max && v > c->num[imin + 1])
        return false;
    if (nomaxequal && v == c->num[imin + 1])
        return false;
    return true;
}

/* the type, then numbers from argument 1 on (min..max of them) */
static bool typed_check(struct sa_eval_call *c, size_t min, size_t max, char *why, size_t wn)
{
    if (!sa_eval_nargs(c, min, max, why, wn))
        return false;
    for (size_t i = 1; i < c->args.n; i++)
        if (!sa_eval_number(c, i, false, why, wn))
            return false;
    return true;
}

static bool count_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return typed_check(c, 2, 3, why, wn);
}

static int count_or_pixels(const struct sa_eval_call *c, struct rules_msg *m, bool pixels)
{
    struct sa_image_facts *f = facts(m);
    if (f == NULL)
        return -1;
    int k = type_index(c->args.v[0]);
    if (k < 0)
        return 0; /* no such count: undef */
    return result_check(c, 1, pixels ? f->pixels[k] : f->count[k], false);
}

static int image_count(const struct sa_eval_call *c, struct rules_msg *m)
{
    return count_or_pixels(c, m, false);
}

static int pixel_coverage(const struct sa_eval_call *c, struct rules_msg *m)
{
    return count_or_pixels(c, m, true);
}

static bool exact_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return typed_check(c, 3, 3, why, wn);
}

static bool of_type(const struct dims *d, int k)
{
    return k == NTYPES || d->type == k;
}

static int size_exact(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_image_facts *f = facts(m);
    if (f == NULL)
        return -1;
    int k = type_index(c->args.v[0]);
    for (size_t i = 0; k >= 0 && i < f->n; i++)
        if (of_type(&f->d[i], k) && f->d[i].h == c->num[1] && f->d[i].w == c->num[2])
            return 1;
    return 0;
}

static bool range_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return typed_check(c, 3, 5, why, wn);
}

static int size_range(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_image_facts *f = facts(m);
    if (f == NULL)
        return -1;
    int k = type_index(c->args.v[0]);
    for (size_t i = 0; k >= 0 && i < f->n; i++) {
        const struct dims *d = &f->d[i];
        if (!of_type(d, k) || d->h < c->num[1] || d->w < c->num[2])
            continue;
        if ((c->args.n > 3 && d->h > c->num[3]) || (c->args.n > 4 && d->w > c->num[4]))
            continue;
        return 1;
    }
    return 0;
}

static bool named_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 1, 1, why, wn);
}

static int image_named(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_image_facts *f = facts(m);
    if (f == NULL)
        return -1;
    for (size_t i = 0; i < f->n; i++)
        if (f->d[i].name != NULL && strcmp(f->d[i].name, c->args.v[0]) == 0)
            return 1;
    return 0;
}

static bool regex_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 1, 1, why, wn) && sa_eval_compile(c, c->args.v[0], 0, why, wn);
}

static int name_regex(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_image_facts *f = facts(m);
    if (f == NULL)
        return -1;
    for (size_t i = 0; i < f->n; i++) {
        const char *nm = f->d[i].name;
        if (nm == NULL)
            continue;
        int rc = sa_eval_match(c, 0, NULL, nm, strlen(nm), 0, NULL, NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static bool ratio_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return typed_check(c, 3, 3, why, wn);
}

static int text_ratio(const struct sa_eval_call *c, struct rules_msg *m)
{
    struct sa_image_facts *f = facts(m);
    if (f == NULL)
        return -1;
    int k = type_index(c->args.v[0]);
    if (k < 0 || f->pixels[k] <= 0)
        return 0;
    size_t len, nends;
    const size_t *ends;
    if (c->rawbody)
        rules_msg_sa_rawbody(m, &len, &ends, &nends);
    else
        rules_msg_sa_body(m, &len, &ends, &nends);
    if (rules_msg_nomem(m))
        return -1;
    if (len == 0)
        return 0;
    return result_check(c, 1, (double)len / f->pixels[k], true);
}

const struct sa_eval_def sa_eval_image_defs[] = {
    {"image_count", image_count, count_check},
    {"pixel_coverage", pixel_coverage, count_check},
    {"image_size_exact", size_exact, exact_check},
    {"image_size_range", size_range, range_check},
    {"image_named", image_named, named_check},
    {"image_name_regex", name_regex, regex_check},
    {"image_to_text_ratio", text_ratio, ratio_check},
    {NULL, NULL, NULL},
};
