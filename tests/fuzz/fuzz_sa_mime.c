// fuzz-sources: rules/sa_mime.c rules/sa_image.c util/alloc.c
/*
 * SpamAssassin's MIME tree is parsed from whatever a client sends: any
 * octets must give a tree (or NULL only when out of memory), never a crash
 * or a hang, and the tree must hold together: the root first, each node's
 * parent before it and one level up, every leaf's lines inside the line
 * list, every line inside the input or a buffer the tree owns, each node
 * decoding to at most its raw size.  Each leaf is also read as a GIF, a
 * PNG and a JPEG.  The input is copied to a buffer of exactly its size, so
 * any read past len is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_image.h"
#include "rules/sa_mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const struct sa_mime *t, const char *buf, size_t size,
                  const struct sa_mime_line *l)
{
    if (l->n == 0)
        return 1;
    if (l->p >= buf && l->p + l->n <= buf + size)
        return 1;
    if (l->n == 1 && l->p[0] == '\n')
        return 1; /* the parser's own empty line */
    for (size_t i = 0; i < t->nbufs; i++)
        if (l->p >= t->bufs[i] && l->p + l->n <= t->bufs[i] + t->buf_lens[i])
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct sa_mime *t = sa_mime_parse(buf, size);
    if (t != NULL) {
        if (t->nnodes == 0 || t->nodes[0].parent != (size_t)-1 || t->nodes[0].depth != 0)
            abort();
        for (size_t i = 0; i < t->nnodes; i++) {
            const struct sa_mime_node *n = &t->nodes[i];
            if (n->type == NULL)
                abort();
            if (i > 0 && (n->parent >= i || n->depth != t->nodes[n->parent].depth + 1 ||
                          t->nodes[n->parent].leaf))
                abort();
            if (!n->leaf)
                continue;
            if (n->line0 + n->nlines > t->nlines || n->line0 + n->nlines < n->line0)
                abort();
            size_t raw = 0;
            for (size_t k = 0; k < n->nlines; k++) {
                const struct sa_mime_line *l = &t->lines[n->line0 + k];
                if (!inside(t, buf, size, l))
                    abort();
                raw += sa_mime_line_len(l);
            }
            size_t dn;
            char *d = sa_mime_decode(t, i, &dn);
            if (d != NULL) {
                if (dn > raw || d[dn] != '\0')
                    abort();
                uint32_t w, h;
                for (int ty = SA_IMAGE_GIF; ty <= SA_IMAGE_JPEG; ty++)
                    if (sa_image_dims((enum sa_image_type)ty, (const unsigned char *)d, dn, &w, &h) &&
                        (w == 0 || h == 0))
                        abort();
                free(d);
            }
        }
        sa_mime_free(t);
    }
    struct sa_mime_ct ct;
    char *v = malloc(size + 1);
    if (v != NULL) {
        memcpy(v, data, size);
        v[size] = '\0';
        if (sa_mime_content_type(v, &ct)) {
            if (ct.type == NULL || strlen(ct.type) > size + 10)
                abort();
            sa_mime_ct_free(&ct);
        }
        free(v);
    }
    free(buf);
    return 0;
}
