/*
 * rules_msg - the message as content rules see it (see rules.h).
 *
 * Header fields come in raw (from the host, or split out of the octets by
 * rules_msg_parse); each is unfolded and RFC 2047-decoded to UTF-8 the first
 * time a rule asks for it.  The MIME view is built once, on the first body,
 * rawbody, uri or attachment question, with GMime: every text part is
 * transfer-decoded (base64, quoted-printable) and converted from its charset
 * to UTF-8 (unknown or lying charsets fall back to Windows-1252, so the text
 * is always valid UTF-8); rawbody is the concatenation of those texts, body
 * the same with HTML parts reduced to their text; the URIs come from the
 * text and from HTML links.  Every leaf part gives its content type and file
 * name for the attachment rules.
 *
 * Hostile input: a message nesting more than MIME_MAX_NESTING multiparts or
 * embedded messages is not handed to the MIME parser at all (its recursion
 * would follow the attacker); its body rules see the undecoded body.
 * Decoded text stops growing at DECODED_MAX octets, URIs at URI_MAX_COUNT.
 *
 * Out of memory: our allocations are checked; a failure leaves the view
 * partial and sets a sticky flag (rules_msg_nomem), which makes the
 * evaluation fail rather than judge a partial message.  GLib and GMime
 * abort on their own when out of memory (GLib's policy, not ours).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "rules/rules_html.h"
#include "rules/rules_int.h"
#include "rules/sa_mime.h"
#include "rules/sa_html.h"
#include "rules/sa_text.h"
#include "rules/sa_uri.h"
#include "util/alloc.h"

#define MIME_MAX_NESTING 64
#define DECODED_MAX      (32u * 1024 * 1024)
#define URI_MAX_COUNT    1000
#define PART_MAX_COUNT   1000
#define URI_TEXT_MAX     2048 /* rules_text_uris' longest */

struct rules_part {
    char *type;
    char *name;
};

/* A field of a MIME part, for mimeheader: decoded and raw, each with the
 * line end SpamAssassin's values carry. */
struct mime_field {
    char *name;
    char *value[2];
    size_t len[2];
};

struct rules_msg {
    struct rules_msg_field *fields;
    size_t nfields;
    size_t cap;
    char *raw;
    size_t raw_len;
    size_t body_offset;
    uint64_t size;
    char *all[2]; /* every field, decoded and raw */
    size_t all_len[2];
    bool mime_done;
    struct rules_buf body;
    struct rules_buf rawbody;
    char **uris;
    size_t nuris;
    struct rules_part *parts;
    size_t nparts;
    /* SpamAssassin's views (its rules read these): the rendered text of
     * each leaf, then its body; the decoded parts, cut as it cuts them */
    struct rules_buf sa_render;
    bool sa_leaf_seen;
    struct rules_buf sa_body;
    size_t *sa_body_ends;
    size_t sa_nbody;
    struct rules_buf sa_raw;
    size_t *sa_raw_ends;
    size_t sa_nraw;
    char **sa_uris;
    size_t sa_nuris;
    struct mime_field *mfields;
    size_t nmfields;
    struct sa_html_set *sa_html; /* the text/html parts, for HTMLEval (sa_html.h) */
    /* the envelope sender for the eval tests, set by the evaluator: not owned */
    const char *envelope_from;
    /* SpamAssassin's relay chain (sa_relays.c), built once, and what it is
     * built from, set by the evaluator (not owned) */
    struct sa_relays *relays;
    void (*relays_free)(struct sa_relays *);
    const struct sa_relay_conf *relay_conf;
    const struct rules_facts *relay_facts;
    /* the rule set's redirector_pattern lines, set by the evaluator before
     * the SpamAssassin views are built (not owned); NULL: none */
    const struct sa_redirs *sa_redirs;
    /* the blocklist queries' answers (sa_dnsbl.h), set by the caller: not owned */
    const struct sa_dns_queries *dns;
    struct rules_msg_date_memo date_memo; /* sa_eval_date's shift, once per message */
    struct {
        const void *owner;
        void *v;
        void (*free_fn)(void *);
    } memo[RULES_MEMO_KINDS];
    /* The SpamAssassin views cost a second rendering: built only when its
     * rules are loaded (rules_msg_want_sa before the first view, then in
     * the same MIME pass as the native views) or asked for. */
    bool sa_wanted;
    bool sa_done;
    bool pass_native, pass_sa; /* what the MIME pass under way fills */
    size_t sa_body_offset;     /* where SpamAssassin's header section ends */
    bool mbox_from;            /* the first line was an mbox "From " line: dropped */
    bool no_headers;           /* the message did not start with a header section */
    bool nomem;                /* an allocation failed: a view is partial (sticky) */
    /* SpamAssassin's MIME tree (sa_mime.h), parsed once when a test asks */
    struct sa_mime *sa_mime;
    bool sa_mime_done;
};

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_start(void)
{
    g_mime_init();
}

/* Records an allocation failure; returns NULL for the caller's use. */
static void *msg_nomem(struct rules_msg *m)
{
    m->nomem = true;
    return NULL;
}

void rules_msg_set_envelope_from(struct rules_msg *m, const char *addr)
{
    m->envelope_from = addr;
}

const char *rules_msg_envelope_from(const struct rules_msg *m)
{
    return m->envelope_from;
}

void rules_msg_set_relay_ctx(struct rules_msg *m, const struct sa_relay_conf *c,
                             const struct rules_facts *f, void (*relays_free)(struct sa_relays *))
{
    m->relay_conf = c;
    m->relay_facts = f;
    m->relays_free = relays_free;
}

void rules_msg_set_sa_redirs(struct rules_msg *m, const struct sa_redirs *rd)
{
    m->sa_redirs = rd;
}

void rules_msg_relay_ctx(const struct rules_msg *m, const struct sa_relay_conf **c,
                         const struct rules_facts **f)
{
    *c = m->relay_conf;
    *f = m->relay_facts;
}

void rules_msg_set_dns(struct rules_msg *m, const struct sa_dns_queries *q)
{
    m->dns = q;
}

const struct sa_dns_queries *rules_msg_dns(const struct rules_msg *m)
{
    return m->dns;
}

struct sa_relays **rules_msg_relays_slot(struct rules_msg *m)
{
    return &m->relays;
}

struct rules_msg_date_memo *rules_msg_date_memo(struct rules_msg *m)
{
    return &m->date_memo;
}

void *rules_msg_memo(const struct rules_msg *m, enum rules_msg_memo_kind k, const void *owner)
{
    return m->memo[k].v != NULL && m->memo[k].owner == owner ? m->memo[k].v : NULL;
}

void rules_msg_memo_keep(struct rules_msg *m, enum rules_msg_memo_kind k, const void *owner,
                         void *v, void (*free_fn)(void *))
{
    if (m->memo[k].v != NULL)
        m->memo[k].free_fn(m->memo[k].v);
    m->memo[k].owner = owner;
    m->memo[k].v = v;
    m->memo[k].free_fn = free_fn;
}

bool rules_msg_nomem(const struct rules_msg *m)
{
    return m->nomem || m->body.nomem || m->rawbody.nomem || m->sa_render.nomem ||
           m->sa_body.nomem || m->sa_raw.nomem;
}

struct rules_msg *rules_msg_new(void)
{
    pthread_once(&gmime_once, gmime_start);
    return util_calloc(1, sizeof(struct rules_msg));
}

int rules_msg_add_header(struct rules_msg *m, const char *name, const char *value, size_t len)
{
    char *n = util_strdup(name), *v = util_memdup(value, len);
    if (n == NULL || v == NULL ||
        util_grow(&m->fields, &m->cap, m->nfields + 1, sizeof(*m->fields)) != 0) {
        free(n);
        free(v);
        m->nomem = true;
        return -1;
    }
    m->fields[m->nfields++] = (struct rules_msg_field){.name = n, .raw = v, .raw_len = len};
    m->date_memo.state = 0; /* the shift reads the fields: worked out again */
    return 0;
}

void rules_msg_set_raw(struct rules_msg *m, char *bytes, size_t len, size_t body_offset)
{
    /* the tree points into the old bytes */
    sa_mime_free(m->sa_mime);
    m->sa_mime = NULL;
    m->sa_mime_done = false;
    free(m->raw);
    m->raw = bytes;
    m->raw_len = len;
    m->body_offset = body_offset <= len ? body_offset : len;
    m->sa_body_offset = m->body_offset;
    if (m->size < len)
        m->size = len;
}

void rules_msg_set_size(struct rules_msg *m, uint64_t size)
{
    m->size = size;
}

/* Where SpamAssassin's Message.pm ends the header section: at the empty
 * line (the body after it), at a line starting "--" (a MIME boundary: the
 * body from it), or at the fourth line that is no field (up to three are
 * read past and ignored); continuation lines belong to the section. */
static size_t sa_header_end(const char *s, size_t n)
{
    size_t i = 0;
    unsigned errors = 0;
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - s) : n, next = nl ? e + 1 : n, le = e;
        if (le > i && s[le - 1] == '\r')
            le--;
        if (le == i)
            return next;
        if (s[i] == ' ' || s[i] == '\t') {
            i = next;
            continue;
        }
        if (le - i >= 2 && s[i] == '-' && s[i + 1] == '-')
            return i;
        /* ^[\041-\071\073-\176]+[ \t]*: */
        size_t c = i;
        while (c < le && (unsigned char)s[c] > 32 && (unsigned char)s[c] < 127 && s[c] != ':')
            c++;
        size_t name_end = c;
        while (c < le && (s[c] == ' ' || s[c] == '\t'))
            c++;
        if ((name_end == i || c >= le || s[c] != ':') && ++errors > 3)
            return i;
        i = next;
    }
    return n;
}

/* Header fields as Postfix sees them: a field is "name:" with printable
 * name octets (blanks before the colon allowed); a line starting with a
 * blank continues it; anything else, or the empty line, ends the section. */
struct rules_msg *rules_msg_parse(const char *bytes, size_t len)
{
    struct rules_msg *m = rules_msg_new();
    if (m == NULL)
        return NULL;
    size_t i = 0;
    long cur = -1;
    /* an mbox separator, "From " and not the obsolete "From :": not a
     * field, and not part of the message (SpamAssassin drops it too) */
    if (len >= 5 && memcmp(bytes, "From", 4) == 0 && (bytes[4] == ' ' || bytes[4] == '\t')) {
        size_t k = 4;
        while (k < len && (bytes[k] == ' ' || bytes[k] == '\t'))
            k++;
        if (k < len && bytes[k] != ':') {
            const char *nl = memchr(bytes, '\n', len);
            size_t skip = nl ? (size_t)(nl - bytes) + 1 : len;
            bytes += skip;
            len -= skip;
            m->mbox_from = true;
        }
    }
    while (i < len) {
        size_t e = i;
        while (e < len && bytes[e] != '\n')
            e++;
        size_t next = e < len ? e + 1 : e;
        size_t le = e;
        if (le > i && bytes[le - 1] == '\r')
            le--;
        if (le == i) {
            i = next;
            break;
        }
        if ((bytes[i] == ' ' || bytes[i] == '\t') && cur >= 0) {
            struct rules_msg_field *f = &m->fields[cur];
            size_t add = le - i + 2;
            char *v = util_reallocarray(f->raw, f->raw_len + add + 1, 1);
            if (v == NULL) {
                rules_msg_free(m);
                return NULL;
            }
            memcpy(v + f->raw_len, "\r\n", 2);
            memcpy(v + f->raw_len + 2, bytes + i, le - i);
            f->raw_len += add;
            v[f->raw_len] = '\0';
            f->raw = v;
            i = next;
            continue;
        }
        size_t c = i;
        while (c < le && (unsigned char)bytes[c] > 32 && (unsigned char)bytes[c] < 127 &&
               bytes[c] != ':')
            c++;
        size_t name_end = c;
        while (c < le && (bytes[c] == ' ' || bytes[c] == '\t'))
            c++;
        if (c >= le || bytes[c] != ':' || name_end == i) {
            /* the header section ends without its empty line */
            m->no_headers = m->nfields == 0;
            break;
        }
        char *name = util_memdup(bytes + i, name_end - i);
        if (name == NULL || rules_msg_add_header(m, name, bytes + c + 1, le - c - 1) != 0) {
            free(name);
            rules_msg_free(m);
            return NULL;
        }
        free(name);
        cur = (long)m->nfields - 1;
        i = next;
    }
    char *copy = util_memdup(bytes, len);
    if (copy == NULL) {
        rules_msg_free(m);
        return NULL;
    }
    rules_msg_set_raw(m, copy, len, i);
    m->sa_body_offset = sa_header_end(copy, len);
    m->size = len;
    return m;
}

void rules_msg_free(struct rules_msg *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nfields; i++) {
        struct rules_msg_field *f = &m->fields[i];
        free(f->name);
        free(f->raw);
        free(f->decoded);
        for (size_t k = 0; k < f->naddrs; k++)
            free(f->addrs[k]);
        free(f->addrs);
        for (size_t k = 0; k < f->nnames; k++)
            free(f->names[k]);
        free(f->names);
    }
    free(m->fields);
    sa_mime_free(m->sa_mime);
    free(m->raw);
    free(m->all[0]);
    free(m->all[1]);
    free(m->body.p);
    free(m->rawbody.p);
    for (size_t i = 0; i < m->nuris; i++)
        free(m->uris[i]);
    free(m->uris);
    for (size_t i = 0; i < m->nparts; i++) {
        free(m->parts[i].type);
        free(m->parts[i].name);
    }
    free(m->parts);
    free(m->sa_render.p);
    free(m->sa_body.p);
    free(m->sa_body_ends);
    free(m->sa_raw.p);
    free(m->sa_raw_ends);
    for (size_t i = 0; i < m->sa_nuris; i++)
        free(m->sa_uris[i]);
    free(m->sa_uris);
    sa_html_set_free(m->sa_html);
    for (size_t i = 0; i < m->nmfields; i++) {
        free(m->mfields[i].name);
        free(m->mfields[i].value[0]);
        free(m->mfields[i].value[1]);
    }
    free(m->mfields);
    if (m->relays != NULL && m->relays_free != NULL)
        m->relays_free(m->relays);
    for (size_t k = 0; k < RULES_MEMO_KINDS; k++)
        if (m->memo[k].v != NULL)
            m->memo[k].free_fn(m->memo[k].v);
    free(m);
}

size_t rules_msg_field_count(const struct rules_msg *m)
{
    return m->nfields;
}

struct rules_msg_field *rules_msg_field(struct rules_msg *m, size_t i)
{
    return &m->fields[i];
}

uint64_t rules_msg_size(const struct rules_msg *m)
{
    return m->size;
}

struct sa_mime *rules_msg_sa_mime(struct rules_msg *m)
{
    if (!m->sa_mime_done) {
        m->sa_mime_done = true;
        m->sa_mime = sa_mime_parse(m->raw ? m->raw : "", m->raw_len);
        if (m->sa_mime == NULL)
            m->nomem = true;
    }
    return m->sa_mime;
}

const char *rules_msg_full(struct rules_msg *m, size_t *len)
{
    *len = m->raw_len;
    return m->raw ? m->raw : "";
}

/* Always valid UTF-8, NUL octets turned into blanks (they would cut C
 * strings); NULL when out of memory (recorded in m). */
static char *utf8_valid(struct rules_msg *m, const char *s, size_t n)
{
    if (n == 0)
        s = "";
    if (memchr(s, '\0', n) == NULL && g_utf8_validate(s, (gssize)n, NULL)) {
        char *d = util_memdup(s, n);
        return d ? d : msg_nomem(m);
    }
    char *tmp = util_memdup(s, n);
    if (tmp == NULL)
        return msg_nomem(m);
    for (size_t i = 0; i < n; i++)
        if (tmp[i] == '\0')
            tmp[i] = ' ';
    if (g_utf8_validate(tmp, (gssize)n, NULL))
        return tmp;
    gsize w = 0;
    gchar *conv = g_convert(tmp, (gssize)n, "UTF-8", "WINDOWS-1252", NULL, &w, NULL);
    if (conv == NULL)
        conv = g_convert(tmp, (gssize)n, "UTF-8", "ISO-8859-1", NULL, &w, NULL);
    char *out;
    if (conv != NULL && g_utf8_validate(conv, (gssize)w, NULL)) {
        out = util_memdup(conv, w);
    } else {
        gchar *valid = g_utf8_make_valid(tmp, (gssize)n);
        out = util_strdup(valid);
        g_free(valid);
    }
    g_free(conv);
    free(tmp);
    return out ? out : msg_nomem(m);
}

/* Text in charset to UTF-8; NULL when out of memory (recorded in m). */
static char *to_utf8(struct rules_msg *m, const char *s, size_t n, const char *charset,
                     size_t *out_len)
{
    char *out = NULL;
    if (charset != NULL && g_ascii_strcasecmp(charset, "utf-8") != 0 &&
        g_ascii_strcasecmp(charset, "us-ascii") != 0) {
        const char *name = g_mime_charset_iconv_name(charset);
        gsize w = 0;
        gchar *conv = g_convert(s, (gssize)n, "UTF-8", name ? name : charset, NULL, &w, NULL);
        if (conv != NULL) {
            out = utf8_valid(m, conv, w);
            g_free(conv);
            if (out == NULL)
                return NULL;
        }
    }
    if (out == NULL && (out = utf8_valid(m, s, n)) == NULL)
        return NULL;
    *out_len = strlen(out);
    return out;
}

/* As SpamAssassin unfolds (s/\n[ \t]+/ /g): a line end and the blanks
 * after it are one blank; other line ends go. */
static void unfold(const char *raw, size_t n, struct rules_buf *b)
{
    size_t i = 0;
    while (i < n && (raw[i] == ' ' || raw[i] == '\t'))
        i++;
    for (; i < n; i++) {
        if (raw[i] == '\n' && i + 1 < n && (raw[i + 1] == ' ' || raw[i + 1] == '\t')) {
            while (i + 1 < n && (raw[i + 1] == ' ' || raw[i + 1] == '\t'))
                i++;
            rules_buf_addc(b, ' ');
        } else if (raw[i] != '\r' && raw[i] != '\n') {
            rules_buf_addc(b, raw[i]);
        }
    }
    while (b->len > 0 && (b->p[b->len - 1] == ' ' || b->p[b->len - 1] == '\t'))
        b->len--;
}

const char *rules_msg_field_decoded(struct rules_msg *m, size_t i)
{
    struct rules_msg_field *f = &m->fields[i];
    if (f->decoded != NULL)
        return f->decoded;
    struct rules_buf b = {0};
    unfold(f->raw, f->raw_len, &b);
    char *text = rules_buf_cstr(&b);
    if (text == NULL) {
        free(b.p);
        m->nomem = true;
        return "";
    }
    char *dec = g_mime_utils_header_decode_text(NULL, text);
    f->decoded = dec ? utf8_valid(m, dec, strlen(dec)) : utf8_valid(m, text, b.len);
    g_free(dec);
    free(b.p);
    return f->decoded ? f->decoded : "";
}

/* Appends a valid UTF-8 copy of s to (*v)[*n]; false when out of memory. */
static bool add_string(struct rules_msg *m, char ***v, size_t *n, const char *s, size_t len)
{
    char *copy = utf8_valid(m, s, len);
    char **nv = copy ? util_reallocarray(*v, *n + 1, sizeof(**v)) : NULL;
    if (nv == NULL) {
        free(copy);
        m->nomem = true;
        return false;
    }
    *v = nv;
    (*v)[(*n)++] = copy;
    return true;
}

void rules_msg_field_addrs(struct rules_msg *m, size_t i)
{
    struct rules_msg_field *f = &m->fields[i];
    if (f->addr_done)
        return;
    f->addr_done = true;
    struct rules_buf b = {0};
    unfold(f->raw, f->raw_len, &b);
    const char *text = rules_buf_cstr(&b);
    InternetAddressList *list = text ? internet_address_list_parse(NULL, text) : NULL;
    free(b.p);
    if (text == NULL)
        m->nomem = true;
    if (list == NULL)
        return;
    int n = internet_address_list_length(list);
    for (int k = 0; k < n && k < 1000; k++) {
        InternetAddress *ia = internet_address_list_get_address(list, k);
        const char *name = internet_address_get_name(ia);
        if (name != NULL && !add_string(m, &f->names, &f->nnames, name, strlen(name)))
            break;
        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
            if (!add_string(m, &f->addrs, &f->naddrs, addr ? addr : "", addr ? strlen(addr) : 0))
                break;
        }
    }
    g_object_unref(list);
}

const char *rules_msg_all_headers(struct rules_msg *m, bool raw, size_t *len)
{
    int k = raw ? 1 : 0;
    if (m->all[k] == NULL) {
        struct rules_buf b = {0};
        for (size_t i = 0; i < m->nfields; i++) {
            rules_buf_add(&b, m->fields[i].name, strlen(m->fields[i].name));
            rules_buf_add(&b, ": ", 2);
            if (raw) {
                const char *v = m->fields[i].raw;
                size_t n = m->fields[i].raw_len;
                while (n > 0 && (*v == ' ' || *v == '\t'))
                    v++, n--;
                rules_buf_add(&b, v, n);
            } else {
                const char *v = rules_msg_field_decoded(m, i);
                rules_buf_add(&b, v, strlen(v));
            }
            rules_buf_addc(&b, '\n');
        }
        m->all[k] = rules_buf_cstr(&b);
        m->all_len[k] = b.len;
        if (m->all[k] == NULL) {
            free(b.p);
            m->nomem = true;
            *len = 0;
            return "";
        }
    }
    *len = m->all_len[k];
    return m->all[k];
}

const char *rules_msg_header(struct rules_msg *m, const char *name, size_t nth)
{
    for (size_t i = 0; i < m->nfields; i++)
        if (strcasecmp(m->fields[i].name, name) == 0 && nth-- == 0)
            return rules_msg_field_decoded(m, i);
    return NULL;
}

/* ---- MIME ---- */

static void add_uri(void *arg, const char *s, size_t n)
{
    struct rules_msg *m = arg;
    if (m->nuris >= URI_MAX_COUNT)
        return;
    for (size_t i = 0; i < m->nuris; i++)
        if (strlen(m->uris[i]) == n && memcmp(m->uris[i], s, n) == 0)
            return;
    add_string(m, &m->uris, &m->nuris, s, n);
}

/* Line ends as LF: SpamAssassin's, and what makes /x$/m work on mail that
 * came over SMTP.  In place; the new length. */
static size_t crlf_to_lf(char *s, size_t n)
{
    size_t w = 0;
    for (size_t r = 0; r < n; r++)
        if (!(s[r] == '\r' && r + 1 < n && s[r + 1] == '\n'))
            s[w++] = s[r];
    s[w] = '\0';
    return w;
}

static bool ends_add(struct rules_msg *m, size_t **v, size_t *n, size_t end)
{
    size_t *nv = util_reallocarray(*v, *n + 1, sizeof(**v));
    if (nv == NULL) {
        m->nomem = true;
        return false;
    }
    *v = nv;
    (*v)[(*n)++] = end;
    return true;
}

static void sa_uri_add(void *arg, const char *s, size_t n)
{
    struct rules_msg *m = arg;
    if (m->sa_nuris >= URI_MAX_COUNT)
        return;
    for (size_t i = 0; i < m->sa_nuris; i++)
        if (strlen(m->sa_uris[i]) == n && memcmp(m->sa_uris[i], s, n) == 0)
            return;
    add_string(m, &m->sa_uris, &m->sa_nuris, s, n);
}

/* A URI found (a link, or in the text): its forms go to the uri rules. */
static void sa_uri_found(void *arg, const char *s, size_t n)
{
    struct rules_msg *m = arg;
    sa_uri_forms(s, n, m->sa_redirs, sa_uri_add, m);
}

/* A URI of the text: SpamAssassin gives it its scheme first
 * (_process_text_uri_list), so "www.x" is listed as "http://www.x" only,
 * where a link's "www.x" is listed as written too. */
static void sa_text_uri_found(void *arg, const char *s, size_t n)
{
    const char *pre = NULL;
    if (n >= 4 && strncasecmp(s, "ftp.", 4) == 0)
        pre = "ftp://";
    else if (n >= 3 && strncasecmp(s, "www", 3) == 0)
        pre = "http://";
    if (pre == NULL) {
        sa_uri_found(arg, s, n);
        return;
    }
    char buf[URI_TEXT_MAX + 8];
    if (n > URI_TEXT_MAX)
        n = URI_TEXT_MAX;
    size_t pl = strlen(pre);
    memcpy(buf, pre, pl);
    memcpy(buf + pl, s, n);
    sa_uri_found(arg, buf, pl + n);
}

/* Octets that end an address of the text, as Thunderbird's rules that
 * SpamAssassin follows say (its tbirdenddelimemail); '@' ends the local part. */
static bool mail_end(unsigned char c, bool local)
{
    return c >= 0x80 || c <= ' ' || c == 0x1b || strchr("><\"`}]{[|,('", c) != NULL ||
           (local && c == '@');
}

/* The e-mail addresses of SpamAssassin's body text as mailto: URIs
 * (_process_text_uri_list): trailing punctuation off, a domain with a dot
 * and a top-level label of letters (SpamAssassin checks its TLD list). */
static void sa_text_mail(struct rules_msg *m, const char *s, size_t n)
{
    const char *p = s, *end = s + n;
    while ((p = memchr(p, '@', (size_t)(end - p))) != NULL && m->sa_nuris < URI_MAX_COUNT) {
        const char *a = p, *e = p + 1;
        while (a > s && (size_t)(p - a) < 251 && !mail_end((unsigned char)a[-1], true))
            a--;
        while (e < end && (size_t)(e - p) < 252 && !mail_end((unsigned char)*e, false))
            e++;
        p++;
        if (a == p - 1 || e == p)
            continue;
        if (a > s && !isalnum((unsigned char)*a) &&
            strchr("><\"'`,{[(| \t\n\r\f\v\x1b", a[-1]) == NULL)
            continue;
        /* s/[-~!@#^&*()_+=:;'?,.]*$// */
        while (e > p && strchr("-~!@#^&*()_+=:;'?,.", e[-1]) != NULL)
            e--;
        const char *at = p - 1;
        if (e <= p)
            continue;
        /* s/^(?:skype|e?-?mail)?:+//i */
        const char *lp = a, *colon = memchr(a, ':', (size_t)(at - a));
        if (colon != NULL) {
            size_t w = (size_t)(colon - a);
            if (w == 0 || (w == 5 && strncasecmp(a, "skype", 5) == 0) ||
                (w == 4 && strncasecmp(a, "mail", 4) == 0) ||
                (w == 5 && strncasecmp(a, "email", 5) == 0) ||
                (w == 6 && strncasecmp(a, "e-mail", 6) == 0) ||
                (w == 5 && strncasecmp(a, "-mail", 5) == 0)) {
                lp = colon;
                while (lp < at && *lp == ':')
                    lp++;
            }
        }
        if (lp == at)
            continue;
        /* the domain: up to ? & or >, with a dot and a top-level label of letters */
        const char *he = p;
        while (he < e && *he != '?' && *he != '&' && *he != '>')
            he++;
        const char *dot = NULL;
        for (const char *q = p; q < he; q++)
            if (*q == '.')
                dot = q;
        if (dot == NULL || he - dot < 3)
            continue;
        bool letters = true;
        for (const char *q = dot + 1; q < he; q++)
            letters = letters && isalpha((unsigned char)*q);
        if (!letters)
            continue;
        char buf[520];
        int k = snprintf(buf, sizeof(buf), "mailto:%.*s", (int)(e - lp), lp);
        if (k > 0 && (size_t)k < sizeof(buf))
            sa_uri_found(m, buf, (size_t)k);
    }
}

/* rawbody as SpamAssassin cuts it: each part, long ones in pieces. */
static void sa_raw_add(struct rules_msg *m, const char *text, size_t n)
{
    if (m->sa_raw.len + n > DECODED_MAX)
        return;
    size_t off = 0;
    while (off < n) {
        size_t k = sa_text_chunk_end(text + off, n - off);
        rules_buf_add(&m->sa_raw, text + off, k);
        off += k;
        if (!ends_add(m, &m->sa_raw_ends, &m->sa_nraw, m->sa_raw.len))
            return;
    }
}

/* A leaf part begins: SpamAssassin puts a line end between parts. */
static void sa_leaf(struct rules_msg *m)
{
    if (m->sa_render.len > 0)
        rules_buf_addc(&m->sa_render, '\n');
}

static void sa_render_add(struct rules_msg *m, const char *text, size_t n, bool html)
{
    if (m->sa_render.len + n > DECODED_MAX)
        return;
    if (html)
        rules_html_text_sa(text, n, &m->sa_render, sa_uri_found, m);
    else
        rules_buf_add(&m->sa_render, text, n);
}

static void add_text(struct rules_msg *m, const char *text, size_t n, bool html)
{
    if (m->rawbody.len + n > DECODED_MAX)
        return;
    if (m->rawbody.len > 0) {
        rules_buf_addc(&m->rawbody, '\n');
        rules_buf_addc(&m->body, '\n');
    }
    rules_buf_add(&m->rawbody, text, n);
    size_t from = m->body.len;
    if (html)
        rules_html_text(text, n, &m->body, add_uri, m);
    else
        rules_buf_add(&m->body, text, n);
    if (m->body.len > from)
        rules_text_uris(m->body.p + from, m->body.len - from, add_uri, m);
}

static void add_part(struct rules_msg *m, const char *type, const char *name)
{
    if (m->nparts >= PART_MAX_COUNT)
        return;
    char *t = util_strdup(type), *nm = name ? utf8_valid(m, name, strlen(name)) : NULL;
    struct rules_part *p =
        t && (nm || !name) ? util_reallocarray(m->parts, m->nparts + 1, sizeof(*p)) : NULL;
    if (p == NULL) {
        free(t);
        free(nm);
        m->nomem = true;
        return;
    }
    m->parts = p;
    for (char *q = t; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    p[m->nparts].type = t;
    p[m->nparts].name = nm;
    m->nparts++;
}

static void leaf(struct rules_msg *m, GMimeObject *obj)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    char *type = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
    const char *name = g_mime_part_get_filename(GMIME_PART(obj));
    if (m->pass_native)
        add_part(m, type ? type : "text/plain", name);
    bool text = ct == NULL || g_mime_content_type_is_type(ct, "text", "*");
    bool html = ct != NULL && g_mime_content_type_is_type(ct, "text", "html");
    /* SpamAssassin renders text/plain and text/html; its rawbody has every
     * text and message part but text/calendar */
    bool sa_rendered = html || ct == NULL || g_mime_content_type_is_type(ct, "text", "plain");
    bool sa_raw = (text || g_mime_content_type_is_type(ct, "message", "*")) &&
                  !(ct != NULL && g_mime_content_type_is_type(ct, "text", "calendar"));
    g_free(type);
    text = text && m->pass_native;
    sa_raw = sa_raw && m->pass_sa;
    sa_rendered = sa_rendered && m->pass_sa;
    if (m->pass_sa)
        sa_leaf(m);
    if (!text && !sa_raw && !sa_rendered)
        return;
    GMimeDataWrapper *dw = g_mime_part_get_content(GMIME_PART(obj));
    if (dw == NULL)
        return;
    GMimeStream *out = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(dw, out);
    GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out));
    const char *charset = g_mime_object_get_content_type_parameter(obj, "charset");
    size_t n = 0;
    char *utf8 = to_utf8(m, ba ? (const char *)ba->data : "", ba ? ba->len : 0, charset, &n);
    if (utf8 != NULL) {
        n = crlf_to_lf(utf8, n);
        if (text)
            add_text(m, utf8, n, html);
        if (sa_raw)
            sa_raw_add(m, utf8, n);
        if (sa_rendered)
            sa_render_add(m, utf8, n, html);
        /* HTMLEval reads each non-empty HTML part: kept, parsed if asked */
        if (sa_rendered && html && n > 0) {
            if (sa_html_set_keep(&m->sa_html, utf8, n))
                utf8 = NULL;
            else
                m->nomem = true;
        }
    }
    free(utf8);
    g_object_unref(out);
}

/* "value" + "\n", line ends LF, leading blanks gone; NULL when out of memory. */
static char *mime_value(struct rules_msg *m, const char *v, size_t *len)
{
    if (v == NULL)
        v = "";
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == '\n' || v[n - 1] == '\r'))
        n--;
    char *t = utf8_valid(m, v, n);
    if (t == NULL)
        return NULL;
    n = crlf_to_lf(t, strlen(t));
    char *out = util_reallocarray(t, n + 2, 1);
    if (out == NULL) {
        free(t);
        m->nomem = true;
        return NULL;
    }
    out[n] = '\n';
    out[n + 1] = '\0';
    *len = n + 1;
    return out;
}

/* The fields of one MIME part (or container), for mimeheader rules. */
static void mime_fields(struct rules_msg *m, GMimeObject *obj)
{
    GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
    int n = hl ? g_mime_header_list_get_count(hl) : 0;
    for (int i = 0; i < n && m->nmfields < PART_MAX_COUNT * 4; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *name = g_mime_header_get_name(h);
        struct mime_field f = {0};
        f.name = util_strdup(name ? name : "");
        f.value[0] = mime_value(m, g_mime_header_get_value(h), &f.len[0]);
        f.value[1] = mime_value(m, g_mime_header_get_raw_value(h), &f.len[1]);
        struct mime_field *v = f.name && f.value[0] && f.value[1]
                                   ? util_reallocarray(m->mfields, m->nmfields + 1, sizeof(*v))
                                   : NULL;
        if (v == NULL) {
            free(f.name);
            free(f.value[0]);
            free(f.value[1]);
            m->nomem = true;
            return;
        }
        m->mfields = v;
        m->mfields[m->nmfields++] = f;
    }
}

static void walk(struct rules_msg *m, GMimeObject *obj, unsigned depth)
{
    if (obj == NULL || depth > MIME_MAX_NESTING || m->nparts >= PART_MAX_COUNT)
        return;
    if (m->pass_sa)
        mime_fields(m, obj);
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; i++)
            walk(m, g_mime_multipart_get_part(mp, i), depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        if (m->pass_native)
            add_part(m, "message/rfc822", NULL);
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (inner != NULL)
            walk(m, g_mime_message_get_mime_part(inner), depth + 1);
    } else if (GMIME_IS_PART(obj)) {
        leaf(m, obj);
    }
}

/* How many nested containers the message may declare: a bounded count of
 * "multipart/" and "message/rfc822" anywhere, cheap and conservative.  Found
 * from their "/" with memchr, which is vectorised, then checked around it. */
static bool too_nested(const char *s, size_t n)
{
    size_t count = 0;
    const char *p = s, *end = s + n;
    while ((p = memchr(p, '/', (size_t)(end - p))) != NULL) {
        size_t before = (size_t)(p - s), after = (size_t)(end - p);
        if ((before >= 9 && strncasecmp(p - 9, "multipart", 9) == 0) ||
            (before >= 7 && after >= 7 && strncasecmp(p - 7, "message", 7) == 0 &&
             strncasecmp(p + 1, "rfc822", 6) == 0))
            if (++count > MIME_MAX_NESTING)
                return true;
        p++;
    }
    return false;
}

/* One MIME pass filling the native views, SpamAssassin's, or both. */
static void mime_parse(struct rules_msg *m, bool native, bool sa)
{
    if (m->raw == NULL)
        return;
    if (sa && m->sa_body_offset != m->body_offset) {
        /* SpamAssassin read past lines that are no fields: its body starts
         * elsewhere, and without a MIME structure of its own */
        m->pass_native = false;
        m->pass_sa = true;
        const char *b = m->raw + m->sa_body_offset;
        size_t n = m->raw_len - m->sa_body_offset, len;
        char *utf8 = to_utf8(m, b, n, NULL, &len);
        if (utf8 != NULL) {
            len = crlf_to_lf(utf8, len);
            sa_raw_add(m, utf8, len);
            sa_render_add(m, utf8, len, false);
        }
        free(utf8);
        sa = false;
        if (!native)
            return;
    }
    m->pass_native = native;
    m->pass_sa = sa;
    /* decoded text is about as long as the message: one allocation each */
    if (native) {
        rules_buf_reserve(&m->body, m->raw_len);
        rules_buf_reserve(&m->rawbody, m->raw_len);
    }
    if (!too_nested(m->raw, m->raw_len)) {
        GMimeStream *st = g_mime_stream_mem_new_with_buffer(m->raw, m->raw_len);
        GMimeParser *p = g_mime_parser_new_with_stream(st);
        g_mime_parser_set_format(p, GMIME_FORMAT_MESSAGE);
        GMimeMessage *msg = g_mime_parser_construct_message(p, NULL);
        if (msg != NULL) {
            walk(m, g_mime_message_get_mime_part(msg), 0);
            g_object_unref(msg);
        }
        g_object_unref(p);
        g_object_unref(st);
        if (msg != NULL)
            return;
    }
    const char *b = m->raw + m->body_offset;
    size_t n = m->raw_len - m->body_offset, len;
    char *utf8 = to_utf8(m, b, n, NULL, &len);
    if (utf8 != NULL) {
        len = crlf_to_lf(utf8, len);
        if (native)
            add_text(m, utf8, len, false);
        if (sa) {
            sa_raw_add(m, utf8, len);
            sa_render_add(m, utf8, len, false);
        }
    }
    free(utf8);
}

/* SpamAssassin's body: the Subject (decoded, its line end) or an empty
 * line, then the rendered parts with its whitespace rule, in elements of
 * one line each; its URIs are those of that text and of the HTML links. */
static void sa_body_build(struct rules_msg *m)
{
    const char *subject = NULL;
    for (size_t i = 0; i < m->nfields; i++)
        if (strcasecmp(m->fields[i].name, "Subject") == 0)
            subject = rules_msg_field_decoded(m, i); /* the last one, as get_header() */
    if (subject != NULL && *subject != '\0')
        rules_buf_add(&m->sa_body, subject, strlen(subject));
    rules_buf_addc(&m->sa_body, '\n');
    sa_text_paragraphs(m->sa_render.p ? m->sa_render.p : "", m->sa_render.len, &m->sa_body);
    free(m->sa_render.p);
    m->sa_render = (struct rules_buf){.nomem = m->sa_render.nomem};
    if (m->sa_body.len > 0) {
        rules_text_uris(m->sa_body.p, m->sa_body.len, sa_text_uri_found, m);
        sa_text_mail(m, m->sa_body.p, m->sa_body.len);
    }
    for (size_t off = 0; off < m->sa_body.len && !m->sa_body.nomem;) {
        off += sa_text_line_end(m->sa_body.p + off, m->sa_body.len - off);
        if (!ends_add(m, &m->sa_body_ends, &m->sa_nbody, off))
            return;
    }
}

static void mime_build(struct rules_msg *m)
{
    if (m->mime_done)
        return;
    bool sa = m->sa_wanted && !m->sa_done;
    mime_parse(m, true, sa);
    m->mime_done = true;
    if (sa) {
        sa_body_build(m);
        m->sa_done = true;
    }
}

static void sa_build(struct rules_msg *m)
{
    if (m->sa_done)
        return;
    m->sa_wanted = true;
    if (!m->mime_done) {
        mime_build(m);
        return;
    }
    mime_parse(m, false, true);
    sa_body_build(m);
    m->sa_done = true;
}

void rules_msg_want_sa(struct rules_msg *m)
{
    m->sa_wanted = true;
}

const char *rules_msg_body(struct rules_msg *m, size_t *len)
{
    mime_build(m);
    *len = m->body.len;
    const char *s = m->body.p ? rules_buf_cstr(&m->body) : NULL;
    if (s == NULL)
        *len = 0;
    return s ? s : "";
}

const char *rules_msg_rawbody(struct rules_msg *m, size_t *len)
{
    mime_build(m);
    *len = m->rawbody.len;
    const char *s = m->rawbody.p ? rules_buf_cstr(&m->rawbody) : NULL;
    if (s == NULL)
        *len = 0;
    return s ? s : "";
}

size_t rules_msg_uri_count(struct rules_msg *m)
{
    mime_build(m);
    return m->nuris;
}

const char *rules_msg_uri(struct rules_msg *m, size_t i)
{
    mime_build(m);
    return i < m->nuris ? m->uris[i] : NULL;
}

size_t rules_msg_part_count(struct rules_msg *m)
{
    mime_build(m);
    return m->nparts;
}

const char *rules_msg_part_type(struct rules_msg *m, size_t i)
{
    mime_build(m);
    return i < m->nparts ? m->parts[i].type : NULL;
}

const char *rules_msg_part_name(struct rules_msg *m, size_t i)
{
    mime_build(m);
    return i < m->nparts ? m->parts[i].name : NULL;
}

/* ---- SpamAssassin's views ---- */

const char *rules_msg_sa_body(struct rules_msg *m, size_t *len, const size_t **ends, size_t *nends)
{
    sa_build(m);
    const char *s = m->sa_body.p ? rules_buf_cstr(&m->sa_body) : NULL;
    *len = s ? m->sa_body.len : 0;
    *ends = m->sa_body_ends;
    *nends = s ? m->sa_nbody : 0;
    return s ? s : "";
}

const struct sa_html_part *rules_msg_sa_html(struct rules_msg *m, size_t *n)
{
    sa_build(m);
    return sa_html_set_parts(m->sa_html, n, &m->nomem);
}

const char *rules_msg_sa_rawbody(struct rules_msg *m, size_t *len, const size_t **ends,
                                 size_t *nends)
{
    sa_build(m);
    const char *s = m->sa_raw.p ? rules_buf_cstr(&m->sa_raw) : NULL;
    *len = s ? m->sa_raw.len : 0;
    *ends = m->sa_raw_ends;
    *nends = s ? m->sa_nraw : 0;
    return s ? s : "";
}

size_t rules_msg_sa_uri_count(struct rules_msg *m)
{
    sa_build(m);
    return m->sa_nuris;
}

const char *rules_msg_sa_uri(struct rules_msg *m, size_t i)
{
    sa_build(m);
    return i < m->sa_nuris ? m->sa_uris[i] : NULL;
}

bool rules_msg_mbox_from(const struct rules_msg *m)
{
    return m->mbox_from;
}

bool rules_msg_no_headers(const struct rules_msg *m)
{
    return m->no_headers;
}

size_t rules_msg_mime_field_count(struct rules_msg *m)
{
    sa_build(m);
    return m->nmfields;
}

const char *rules_msg_mime_field(struct rules_msg *m, size_t i, bool raw, const char **value,
                                 size_t *len)
{
    sa_build(m);
    *value = m->mfields[i].value[raw ? 1 : 0];
    *len = m->mfields[i].len[raw ? 1 : 0];
    return m->mfields[i].name;
}
