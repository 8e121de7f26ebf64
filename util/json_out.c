#include "util/json_out.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Room kept back so that a closing quote, "null", the closers,
 * ',"truncated":true', "}\n" and the NUL always fit. */
#define JSON_RESERVE 40

static bool json_fits(const struct json_out *j, size_t n)
{
    return !j->truncated && j->len + n + JSON_RESERVE + j->depth <= j->cap;
}

static void json_raw(struct json_out *j, const char *s, size_t n)
{
    memcpy(j->buf + j->len, s, n);
    j->len += n;
}

void json_out_init(struct json_out *j, char *buf, size_t cap)
{
    memset(j, 0, sizeof(*j));
    j->buf = buf;
    j->cap = cap;
    if (cap < JSON_RESERVE + 2) {
        j->truncated = true;
        return;
    }
    json_out_open(j, '{');
}

/* A value starts: the comma before it, unless it is the first or follows a key. */
static bool json_value_start(struct json_out *j, size_t need)
{
    if (!json_fits(j, need + 1)) {
        j->truncated = true;
        return false;
    }
    if (j->need_comma)
        json_raw(j, ",", 1);
    j->need_comma = true;
    return true;
}

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        k = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        k = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        k = 4, min = 0x10000;
    else
        return 0;
    if (n < k)
        return 0;
    unsigned cp = c & (0x7F >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

static void json_string_body(struct json_out *j, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        char esc[8];
        size_t n;
        const char *out = esc;
        size_t step = 1;
        if (p[i] == '"' || p[i] == '\\') {
            esc[0] = '\\', esc[1] = (char)p[i], n = 2;
        } else if (p[i] < 0x20 || p[i] == 0x7F) {
            n = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
        } else if (p[i] < 0x80) {
            out = (const char *)p + i, n = 1;
        } else if ((step = utf8_len(p + i, len - i)) > 0) {
            out = (const char *)p + i, n = step;
        } else {
            out = "\xEF\xBF\xBD", n = 3, step = 1;
        }
        if (!json_fits(j, n + 1)) {
            j->truncated = true;
            return;
        }
        json_raw(j, out, n);
        i += step;
    }
}

void json_out_key(struct json_out *j, const char *key)
{
    if (!json_value_start(j, strlen(key) + 3))
        return;
    json_raw(j, "\"", 1);
    json_string_body(j, key, strlen(key));
    json_raw(j, "\":", 2);
    j->need_comma = false;
}

void json_out_str(struct json_out *j, const char *s, size_t len)
{
    if (!json_value_start(j, 2))
        return;
    json_raw(j, "\"", 1);
    json_string_body(j, s, len);
    json_raw(j, "\"", 1); /* the reserve holds it even when the body was cut */
}

void json_out_cstr(struct json_out *j, const char *s)
{
    if (!s) {
        if (json_value_start(j, 4))
            json_raw(j, "null", 4);
        return;
    }
    json_out_str(j, s, strlen(s));
}

void json_out_int(struct json_out *j, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof(t), "%lld", (long long)v);
    if (json_value_start(j, (size_t)n))
        json_raw(j, t, (size_t)n);
}

void json_out_num(struct json_out *j, double v)
{
    char t[32];
    int n = isfinite(v) ? snprintf(t, sizeof(t), "%.6g", v) : snprintf(t, sizeof(t), "null");
    if (json_value_start(j, (size_t)n))
        json_raw(j, t, (size_t)n);
}

void json_out_bool(struct json_out *j, bool v)
{
    if (json_value_start(j, v ? 4 : 5))
        json_raw(j, v ? "true" : "false", v ? 4 : 5);
}

void json_out_open(struct json_out *j, char kind)
{
    if (j->depth >= sizeof(j->stack) || !json_value_start(j, 2)) {
        j->truncated = true;
        return;
    }
    json_raw(j, kind == '[' ? "[" : "{", 1);
    j->stack[j->depth++] = kind == '[' ? ']' : '}';
    j->need_comma = false;
}

void json_out_close(struct json_out *j)
{
    if (j->depth <= 1)
        return; /* the top object closes at finish */
    json_raw(j, &j->stack[--j->depth], 1);
    j->need_comma = true;
}

size_t json_out_finish(struct json_out *j)
{
    if (j->cap < JSON_RESERVE + 2) {
        if (j->cap > 0)
            j->buf[0] = '\0';
        return 0;
    }
    /* A key left without its value (cut) gets null, so the object stays valid. */
    if (!j->need_comma && j->len > 0 && j->buf[j->len - 1] == ':')
        json_raw(j, "null", 4), j->need_comma = true;
    while (j->depth > 1) {
        json_raw(j, &j->stack[--j->depth], 1);
        j->need_comma = true;
    }
    if (j->truncated) {
        if (j->need_comma)
            json_raw(j, ",", 1);
        json_raw(j, "\"truncated\":true", 16);
    }
    json_raw(j, "}\n", 2);
    j->buf[j->len] = '\0';
    j->depth = 0;
    return j->len;
}
