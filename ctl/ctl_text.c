/*
 * ctl_text - the answer's tree, written as indented "key: value" lines.
 *
 * Strings are written as they are but for control octets (shown as '?'), so
 * that nothing in an answer (a client's HELO, a sender, a message) can move
 * the terminal's cursor or start a line of its own; the message keeps its
 * line breaks and tabs.
 */
#include "ctl/ctl_text.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

static void ctl_text_string(FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        fputc(c < 0x20 || c == 0x7f ? '?' : c, out);
    }
}

static bool ctl_text_plain(const struct json_value *v)
{
    return v->type != JSON_OBJECT && v->type != JSON_ARRAY;
}

static void ctl_text_scalar(FILE *out, const struct json_value *v)
{
    switch (v->type) {
    case JSON_NULL:
        fputs("-", out);
        break;
    case JSON_BOOL:
        fputs(v->boolean ? "yes" : "no", out);
        break;
    case JSON_NUMBER:
        if (v->number == floor(v->number) && fabs(v->number) < 1e15)
            fprintf(out, "%.0f", v->number);
        else
            fprintf(out, "%g", v->number);
        break;
    case JSON_STRING:
        ctl_text_string(out, v->str, v->str_len);
        break;
    default:
        break;
    }
}

/* Short plain values fit one line ("to: a@x, b@y"); long ones (errors) get
 * a line each. */
static bool ctl_text_inline(const struct json_value *arr)
{
    size_t width = 0;
    for (size_t i = 0; i < arr->n; i++) {
        if (!ctl_text_plain(&arr->items[i]))
            return false;
        width += arr->items[i].type == JSON_STRING ? arr->items[i].str_len + 2 : 8;
    }
    return width <= 100;
}

static void ctl_text_members(FILE *out, const struct json_value *obj, int indent, bool top);

static void ctl_text_member(FILE *out, const char *key, const struct json_value *v, int indent)
{
    fprintf(out, "%*s%s:", indent, "", key);
    if (ctl_text_plain(v)) {
        fputc(' ', out);
        ctl_text_scalar(out, v);
        fputc('\n', out);
        return;
    }
    if (v->type == JSON_ARRAY && ctl_text_inline(v)) {
        fputs(v->n ? " " : " -", out);
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                fputs(", ", out);
            ctl_text_scalar(out, &v->items[i]);
        }
        fputc('\n', out);
        return;
    }
    fputc('\n', out);
    if (v->type == JSON_OBJECT) {
        ctl_text_members(out, v, indent + 2, false);
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const struct json_value *item = &v->items[i];
        if (item->type == JSON_OBJECT && item->n) {
            /* "- first: value", the other members under it */
            fprintf(out, "%*s- ", indent + 2, "");
            ctl_text_member(out, item->keys[0], &item->items[0], 0);
            struct json_value rest = *item;
            rest.keys++;
            rest.items++;
            rest.n--;
            ctl_text_members(out, &rest, indent + 4, false);
        } else {
            fprintf(out, "%*s- ", indent + 2, "");
            if (ctl_text_plain(item))
                ctl_text_scalar(out, item);
            fputc('\n', out);
        }
    }
}

static void ctl_text_members(FILE *out, const struct json_value *obj, int indent, bool top)
{
    for (size_t i = 0; i < obj->n; i++) {
        const char *k = obj->keys[i];
        if (top && (strcmp(k, "ok") == 0 || strcmp(k, "command") == 0 ||
                    strcmp(k, "error") == 0 || strcmp(k, "message") == 0))
            continue;
        ctl_text_member(out, k, &obj->items[i], indent);
    }
}

void ctl_text_print(FILE *out, const struct json_value *answer)
{
    if (answer->type != JSON_OBJECT)
        return;
    const struct json_value *err = json_get(answer, "error");
    if (err && err->type == JSON_STRING) {
        fputs("error: ", out);
        ctl_text_string(out, err->str, err->str_len);
        fputc('\n', out);
    }
    ctl_text_members(out, answer, 0, true);
    const struct json_value *msg = json_get(answer, "message");
    if (msg && msg->type == JSON_STRING) {
        fputc('\n', out);
        for (size_t i = 0; i < msg->str_len; i++) {
            char c = msg->str[i];
            if (c == '\r' && i + 1 < msg->str_len && msg->str[i + 1] == '\n')
                continue;
            /* A message may carry terminal escapes: only text and line breaks pass. */
            fputc((unsigned char)c < 0x20 && c != '\t' && c != '\n' ? '?' : c, out);
        }
        if (msg->str_len && msg->str[msg->str_len - 1] != '\n')
            fputc('\n', out);
    }
}
