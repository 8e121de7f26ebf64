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
#include "util/alloc.h"

#define MIME_MAX_NESTING 64
#define DECODED_MAX      (32u * 1024 * 1024)
#define URI_MAX_COUNT    1000
#define PART_MAX_COUNT   1000

struct rules_part {
    char *type;
    char *name;
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
    bool nomem; /* an allocation failed: a view is partial (sticky) */
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

bool rules_msg_nomem(const struct rules_msg *m)
{
    return m->nomem || m->body.nomem || m->rawbody.nomem;
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
    return 0;
}

void rules_msg_set_raw(struct rules_msg *m, char *bytes, size_t len, size_t body_offset)
{
    free(m->raw);
    m->raw = bytes;
    m->raw_len = len;
    m->body_offset = body_offset <= len ? body_offset : len;
    if (m->size < len)
        m->size = len;
}

void rules_msg_set_size(struct rules_msg *m, uint64_t size)
{
    m->size = size;
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
        if (c >= le || bytes[c] != ':' || name_end == i)
            break;
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

static void unfold(const char *raw, size_t n, struct rules_buf *b)
{
    size_t i = 0;
    while (i < n && (raw[i] == ' ' || raw[i] == '\t'))
        i++;
    for (; i < n; i++)
        if (raw[i] != '\r' && raw[i] != '\n')
            rules_buf_addc(b, raw[i]);
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
    add_part(m, type ? type : "text/plain", name);
    bool text = ct == NULL || g_mime_content_type_is_type(ct, "text", "*");
    bool html = ct != NULL && g_mime_content_type_is_type(ct, "text", "html");
    g_free(type);
    if (!text)
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
    if (utf8 != NULL)
        add_text(m, utf8, n, html);
    free(utf8);
    g_object_unref(out);
}

static void walk(struct rules_msg *m, GMimeObject *obj, unsigned depth)
{
    if (obj == NULL || depth > MIME_MAX_NESTING || m->nparts >= PART_MAX_COUNT)
        return;
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; i++)
            walk(m, g_mime_multipart_get_part(mp, i), depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
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

static void mime_build(struct rules_msg *m)
{
    if (m->mime_done)
        return;
    m->mime_done = true;
    if (m->raw == NULL)
        return;
    /* decoded text is about as long as the message: one allocation each */
    rules_buf_reserve(&m->body, m->raw_len);
    rules_buf_reserve(&m->rawbody, m->raw_len);
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
    if (utf8 != NULL)
        add_text(m, utf8, len, false);
    free(utf8);
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
