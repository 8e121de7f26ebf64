/*
 * json_in - a recursive-descent reader, bounded by JSON_IN_MAX_DEPTH.
 *
 * Containers grow their item arrays by doubling; a failure anywhere frees
 * what the value under construction holds, so a NULL result leaves nothing
 * behind.
 */
#include "util/json_in.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct json_reader {
    const char *p;
    size_t len;
    size_t pos;
    const char *err;
};

static bool json_fail(struct json_reader *r, const char *why)
{
    if (!r->err)
        r->err = why;
    return false;
}

static void json_blank(struct json_reader *r)
{
    while (r->pos < r->len && (r->p[r->pos] == ' ' || r->p[r->pos] == '\t' ||
                               r->p[r->pos] == '\n' || r->p[r->pos] == '\r'))
        r->pos++;
}

static void json_clear(struct json_value *v)
{
    if (v->type == JSON_STRING)
        free(v->str);
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT) {
        for (size_t i = 0; i < v->n; i++) {
            json_clear(&v->items[i]);
            if (v->keys)
                free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
    }
    memset(v, 0, sizeof(*v));
}

void json_free(struct json_value *v)
{
    if (!v)
        return;
    json_clear(v);
    free(v);
}

static bool json_literal(struct json_reader *r, const char *word)
{
    size_t n = strlen(word);
    if (r->len - r->pos < n || memcmp(r->p + r->pos, word, n) != 0)
        return json_fail(r, "unknown literal");
    r->pos += n;
    return true;
}

static bool json_number(struct json_reader *r, struct json_value *v)
{
    size_t start = r->pos, i = r->pos;
    const char *p = r->p;
#define DIGIT(k) ((k) < r->len && p[k] >= '0' && p[k] <= '9')
    if (i < r->len && p[i] == '-')
        i++;
    if (i < r->len && p[i] == '0')
        i++;
    else if (DIGIT(i))
        while (DIGIT(i))
            i++;
    else
        return json_fail(r, "bad number");
    if (i < r->len && p[i] == '.') {
        i++;
        if (!DIGIT(i))
            return json_fail(r, "bad number");
        while (DIGIT(i))
            i++;
    }
    if (i < r->len && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < r->len && (p[i] == '+' || p[i] == '-'))
            i++;
        if (!DIGIT(i))
            return json_fail(r, "bad number");
        while (DIGIT(i))
            i++;
    }
#undef DIGIT
    char tmp[64];
    size_t n = i - start;
    if (n >= sizeof(tmp))
        return json_fail(r, "number too long");
    memcpy(tmp, p + start, n);
    tmp[n] = '\0';
    v->type = JSON_NUMBER;
    v->number = strtod(tmp, NULL);
    r->pos = i;
    return true;
}

static int json_hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static size_t json_put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The length of the valid UTF-8 sequence at p (n octets left), or 0. */
static size_t json_utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                          : c >= 0xF0 && c <= 0xF4   ? 4
                                                     : 0;
    if (k == 0 || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    /* Overlong forms, surrogates, and code points past U+10FFFF. */
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) || (c == 0xF0 && p[1] < 0x90) ||
        (c == 0xF4 && p[1] > 0x8F))
        return 0;
    return k;
}

/* At the opening quote; *out malloc'd, NUL-terminated. */
static bool json_string(struct json_reader *r, char **out, size_t *out_len)
{
    r->pos++;
    /* Decoded text is never longer than its JSON form up to the closing quote. */
    size_t i = r->pos;
    while (i < r->len && r->p[i] != '"')
        i += r->p[i] == '\\' ? 2 : 1;
    size_t cap = (i < r->len ? i : r->len) - r->pos + 1;
    char *s = malloc(cap);
    if (!s)
        return json_fail(r, "out of memory");
    size_t n = 0;
    for (;;) {
        if (r->pos >= r->len) {
            free(s);
            return json_fail(r, "unterminated string");
        }
        unsigned char c = (unsigned char)r->p[r->pos];
        if (c == '"') {
            r->pos++;
            break;
        }
        if (c < 0x20) {
            free(s);
            return json_fail(r, "control character in a string");
        }
        if (c != '\\') {
            size_t k = json_utf8_len((const unsigned char *)r->p + r->pos, r->len - r->pos);
            if (k == 0) {
                free(s);
                return json_fail(r, "invalid UTF-8 in a string");
            }
            memcpy(s + n, r->p + r->pos, k);
            n += k;
            r->pos += k;
            continue;
        }
        if (r->pos + 1 >= r->len) {
            free(s);
            return json_fail(r, "unterminated string");
        }
        char e = r->p[r->pos + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e != '\0' && simple && e != 'u') {
            static const char map[] = "\"\\/\b\f\n\r\t";
            s[n++] = map[simple - "\"\\/bfnrt"];
            r->pos += 2;
            continue;
        }
        if (e != 'u' || r->len - r->pos < 6) {
            free(s);
            return json_fail(r, "bad escape in a string");
        }
        int hi = json_hex4(r->p + r->pos + 2);
        r->pos += 6;
        uint32_t cp = (uint32_t)hi;
        if (hi < 0) {
            free(s);
            return json_fail(r, "bad \\u escape");
        }
        if (hi >= 0xD800 && hi <= 0xDBFF) {
            int lo = r->len - r->pos >= 6 && r->p[r->pos] == '\\' && r->p[r->pos + 1] == 'u'
                         ? json_hex4(r->p + r->pos + 2)
                         : -1;
            if (lo < 0xDC00 || lo > 0xDFFF) {
                free(s);
                return json_fail(r, "lone surrogate in a string");
            }
            r->pos += 6;
            cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
        } else if (hi >= 0xDC00 && hi <= 0xDFFF) {
            free(s);
            return json_fail(r, "lone surrogate in a string");
        }
        n += json_put_utf8(s + n, cp);
    }
    s[n] = '\0';
    *out = s;
    *out_len = n;
    return true;
}

static bool json_value_at(struct json_reader *r, struct json_value *v, unsigned depth);

/* Room for one more item (and key) in a container. */
static bool json_grow(struct json_reader *r, struct json_value *v, size_t *cap, bool keys)
{
    if (v->n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 4;
    struct json_value *items = realloc(v->items, ncap * sizeof(*items));
    if (!items)
        return json_fail(r, "out of memory");
    v->items = items;
    if (keys) {
        char **k = realloc(v->keys, ncap * sizeof(*k));
        if (!k)
            return json_fail(r, "out of memory");
        v->keys = k;
    }
    *cap = ncap;
    return true;
}

static bool json_container(struct json_reader *r, struct json_value *v, unsigned depth,
                           bool object)
{
    if (depth >= JSON_IN_MAX_DEPTH)
        return json_fail(r, "nested too deep");
    v->type = object ? JSON_OBJECT : JSON_ARRAY;
    char close = object ? '}' : ']';
    size_t cap = 0;
    r->pos++;
    json_blank(r);
    if (r->pos < r->len && r->p[r->pos] == close) {
        r->pos++;
        return true;
    }
    for (;;) {
        if (!json_grow(r, v, &cap, object))
            return false;
        char *key = NULL;
        if (object) {
            size_t klen;
            json_blank(r);
            if (r->pos >= r->len || r->p[r->pos] != '"')
                return json_fail(r, "expected a member name");
            if (!json_string(r, &key, &klen))
                return false;
            json_blank(r);
            if (r->pos >= r->len || r->p[r->pos] != ':') {
                free(key);
                return json_fail(r, "expected ':'");
            }
            r->pos++;
        }
        struct json_value *item = &v->items[v->n];
        memset(item, 0, sizeof(*item));
        if (object)
            v->keys[v->n] = key;
        v->n++; /* counted now, so that a failure inside frees it */
        if (!json_value_at(r, item, depth + 1))
            return false;
        json_blank(r);
        if (r->pos < r->len && r->p[r->pos] == ',') {
            r->pos++;
            continue;
        }
        if (r->pos < r->len && r->p[r->pos] == close) {
            r->pos++;
            return true;
        }
        return json_fail(r, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool json_value_at(struct json_reader *r, struct json_value *v, unsigned depth)
{
    json_blank(r);
    if (r->pos >= r->len)
        return json_fail(r, "expected a value");
    switch (r->p[r->pos]) {
    case '{':
        return json_container(r, v, depth, true);
    case '[':
        return json_container(r, v, depth, false);
    case '"':
        if (!json_string(r, &v->str, &v->str_len))
            return false;
        v->type = JSON_STRING;
        return true;
    case 't':
        v->type = JSON_BOOL;
        v->boolean = true;
        return json_literal(r, "true");
    case 'f':
        v->type = JSON_BOOL;
        return json_literal(r, "false");
    case 'n':
        v->type = JSON_NULL;
        return json_literal(r, "null");
    default:
        return json_number(r, v);
    }
}

struct json_value *json_parse(const char *buf, size_t len, const char **err, size_t *err_at)
{
    struct json_reader r = {.p = buf, .len = len};
    struct json_value *v = calloc(1, sizeof(*v));
    if (!v) {
        *err = "out of memory";
        *err_at = 0;
        return NULL;
    }
    if (json_value_at(&r, v, 0)) {
        json_blank(&r);
        if (r.pos == r.len)
            return v;
        json_fail(&r, "text after the value");
    }
    *err = r.err;
    *err_at = r.pos;
    json_free(v);
    return NULL;
}

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return &obj->items[i];
    return NULL;
}
