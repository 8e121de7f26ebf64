// fuzz-sources: util/json_in.c util/json_out.c
/*
 * Any octets as a control socket answer: a tree or a reason, never a crash,
 * and the reader bounded (depth).  The input is copied to a buffer of
 * exactly its size.  What parses is written again with json_out and must
 * read back to the same shape: the two ends of the control socket agree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_in.h"
#include "util/json_out.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_write(struct json_out *j, const struct json_value *v)
{
    switch (v->type) {
    case JSON_NULL:
        json_out_cstr(j, NULL);
        break;
    case JSON_BOOL:
        json_out_bool(j, v->boolean);
        break;
    case JSON_NUMBER:
        json_out_int(j, 0);
        break;
    case JSON_STRING:
        json_out_str(j, v->str, v->str_len);
        break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        json_out_open(j, v->type == JSON_ARRAY ? '[' : '{');
        for (size_t i = 0; i < v->n; i++) {
            if (v->type == JSON_OBJECT)
                json_out_key(j, v->keys[i]);
            fuzz_write(j, &v->items[i]);
        }
        json_out_close(j);
        break;
    }
}

static size_t fuzz_count(const struct json_value *v)
{
    size_t n = 1;
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT)
        for (size_t i = 0; i < v->n; i++)
            n += fuzz_count(&v->items[i]);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    const char *err = NULL;
    size_t at = 0;
    struct json_value *v = json_parse(buf, size, &err, &at);
    if (!v) {
        if (!err || at > size)
            abort();
        free(buf);
        return 0;
    }
    for (size_t i = 0; v->type == JSON_STRING && i < v->str_len; i++)
        if (v->str[v->str_len] != '\0')
            abort();
    /* json_out nests 8 deep: rewrite shallow trees only, inside an object. */
    size_t cap = 64 + size * 8;
    char *out = malloc(cap);
    if (out && v->type == JSON_OBJECT) {
        struct json_out j;
        json_out_init(&j, out, cap);
        bool shallow = true;
        for (size_t i = 0; i < v->n; i++)
            if (v->items[i].type == JSON_ARRAY || v->items[i].type == JSON_OBJECT)
                shallow = false;
        if (shallow) {
            for (size_t i = 0; i < v->n; i++) {
                json_out_key(&j, v->keys[i]);
                fuzz_write(&j, &v->items[i]);
            }
            size_t len = json_out_finish(&j);
            struct json_value *back = json_parse(out, len, &err, &at);
            if (!back || j.truncated || fuzz_count(back) != fuzz_count(v))
                abort();
            json_free(back);
        }
    }
    free(out);
    json_free(v);
    free(buf);
    return 0;
}
