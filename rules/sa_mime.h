/*
 * sa_mime - a message's MIME tree as SpamAssassin's own parser
 * (Mail::SpamAssassin::Message and Message::Node) builds it, for the eval
 * tests that read parts (MIMEEval, ImageInfo): per node its type, the last
 * Content-Type, Content-Transfer-Encoding and Content-Disposition values
 * (decoded as Node::header decodes them), the name, and for a leaf its raw
 * lines exactly as Node::raw() gives them; and the parser's flags.
 *
 * What it promises:
 *   - sa_mime_parse is a pure function over bytes: the same tree for the
 *     same input, NULL only when out of memory.  It follows Message.pm's
 *     steps: the mbox "From " line dropped; CRLF squashed when the first or
 *     last line ends in CRLF; the header read with its three-errors rule;
 *     runs of more than 20 blank body lines cut to 20; the preamble blank
 *     line inserted; multipart bodies cut at their boundaries (with the
 *     nested-boundary rule of bug 7358, the 1000-parts limit and the
 *     2048-octet line split); message/rfc822 and message/global parts
 *     decoded and parsed again, 20 levels deep at most.
 *   - nodes are in find_parts order (pre-order, children in order); the
 *     root is node 0.
 *   - lines point into the input or into buffers the tree owns: the input
 *     must outlive the tree.
 *   - sa_mime_content_type parses a Content-Type value as
 *     Mail::SpamAssassin::Util::parse_content_type does (RFC 2231 continued
 *     names joined, up to 64 pieces).
 *
 * What it assumes: header values are not RFC 2047-decoded (SpamAssassin
 * decodes them; the values these tests read are ASCII in practice).
 */
#ifndef SMTPGATE_RULES_SA_MIME_H
#define SMTPGATE_RULES_SA_MIME_H

#include <stdbool.h>
#include <stddef.h>

/* One raw line: p[0..n), then a "\n" not in p when nl (a CRLF squashed,
 * or a long line split, as SpamAssassin adds one). */
struct sa_mime_line {
    const char *p;
    size_t n;
    bool nl;
};

static inline size_t sa_mime_line_len(const struct sa_mime_line *l)
{
    return l->n + (l->nl ? 1 : 0);
}

struct sa_mime_node {
    char *type; /* $node->{type}: lower-case */
    char *ct;   /* the last Content-Type value, decoded, or NULL */
    char *cte;  /* the last Content-Transfer-Encoding value, or NULL */
    char *cd;   /* the last Content-Disposition value, or NULL */
    char *name; /* $node->{name} of a leaf, or NULL */
    size_t parent; /* (size_t)-1 for the root */
    unsigned depth;
    bool leaf;
    size_t line0, nlines; /* a leaf's raw lines in sa_mime.lines */
};

struct sa_mime {
    struct sa_mime_node *nodes;
    size_t nnodes;
    struct sa_mime_line *lines;
    size_t nlines;
    /* the top message's parse flags, as check_msg_parse_flags reads them */
    bool missing_head_body_separator;
    bool truncated_header;
    bool missing_mime_head_body_separator;
    bool missing_mime_headers;
    bool mime_epilogue_exists;
    bool mimepart_limit_exceeded;
    bool missing_boundary; /* a boundary's state is not 0 at the end */
    /* where the top message's pristine body (Message.pm's pristine_body:
     * what follows the header section as the parser ended it, CRLFs kept)
     * starts in the input; the input's length when there is none */
    size_t pristine_body_off;
    /* the eval tests' facts over the tree, each computed once by its
     * family (sa_eval_mime.c, sa_eval_image.c, sa_eval_alt.c): plain
     * blocks, freed with it */
    void *mime_facts;
    void *image_facts;
    void *alt_facts;
    /* owned buffers the lines may point into */
    char **bufs;
    size_t *buf_lens;
    size_t nbufs;
};

struct sa_mime *sa_mime_parse(const char *msg, size_t len);
void sa_mime_free(struct sa_mime *t);

/* parse_content_type over value (NULL: the header is absent): each out
 * string malloc'ed or NULL when absent; false when out of memory. */
struct sa_mime_ct {
    char *type;
    char *boundary;
    char *charset;
    char *name;
    bool missing;
};
bool sa_mime_content_type(const char *value, struct sa_mime_ct *out);
void sa_mime_ct_free(struct sa_mime_ct *ct);

/* A leaf decoded as Node::decode does (quoted-printable, base64, else
 * raw): a malloc'ed buffer of *n octets (NUL after them), NULL when out of
 * memory. */
char *sa_mime_decode(const struct sa_mime *t, size_t node, size_t *n);

#endif
