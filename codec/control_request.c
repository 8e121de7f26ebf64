/*
 * control_request - the control socket's request line.
 *
 * The line is split into at most four words first, so that every command's
 * check is a look at a word count and at whole words; nothing is copied but
 * the ID, after it has been judged.
 */
#include "codec/control_request.h"

#include <string.h>
#include <strings.h>

#define CONTROL_MAX_WORDS 4

struct control_word {
    const char *p;
    size_t len;
};

static bool control_word_is(const struct control_word *w, const char *s)
{
    size_t n = strlen(s);
    return w->len == n && strncasecmp(w->p, s, n) == 0;
}

bool control_id_valid(const char *id, size_t len)
{
    if (len == 0 || len > CONTROL_ID_MAX)
        return false;
    unsigned char first = (unsigned char)id[0];
    if (!((first >= '0' && first <= '9') || (first >= 'A' && first <= 'Z') ||
          (first >= 'a' && first <= 'z')))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || (c == '.' && i + 1 < len && id[i + 1] == '.'))
            return false;
    }
    return true;
}

/* Whole seconds, no sign, no leading garbage, within the bound. */
static bool control_grace(const struct control_word *w, unsigned *out)
{
    if (w->len == 0 || w->len > 6)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < w->len; i++) {
        if (w->p[i] < '0' || w->p[i] > '9')
            return false;
        v = v * 10 + (unsigned)(w->p[i] - '0');
    }
    if (v > CONTROL_GRACE_MAX)
        return false;
    *out = v;
    return true;
}

/* Split at blanks; -1 when a control octet is there or there are too many words. */
static int control_split(const char *line, size_t len, struct control_word *w)
{
    int n = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)line[i];
        if (c == ' ' || c == '\t') {
            i++;
            continue;
        }
        if (n == CONTROL_MAX_WORDS)
            return -1;
        size_t start = i;
        while (i < len && line[i] != ' ' && line[i] != '\t') {
            unsigned char d = (unsigned char)line[i];
            if (d < 0x20 || d == 0x7f)
                return -2;
            i++;
        }
        w[n].p = line + start;
        w[n].len = i - start;
        n++;
    }
    return n;
}

const char *control_request_parse(const char *line, size_t len, struct control_request *out)
{
    memset(out, 0, sizeof(*out));
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len > CONTROL_LINE_MAX)
        return "request line too long";
    struct control_word w[CONTROL_MAX_WORDS];
    int n = control_split(line, len, w);
    if (n == -2)
        return "control characters in the request";
    if (n < 0)
        return "too many words";
    if (n == 0)
        return "empty request";
    if (control_word_is(&w[0], "status") || control_word_is(&w[0], "reload") ||
        control_word_is(&w[0], "sessions")) {
        if (n != 1)
            return "this command takes no argument";
        out->cmd = control_word_is(&w[0], "status")   ? CONTROL_STATUS
                   : control_word_is(&w[0], "reload") ? CONTROL_RELOAD
                                                      : CONTROL_SESSIONS;
        return NULL;
    }
    if (control_word_is(&w[0], "drain")) {
        if (n > 2)
            return "usage: drain [GRACE]";
        out->cmd = CONTROL_DRAIN;
        if (n == 2) {
            if (!control_grace(&w[1], &out->grace))
                return "drain: GRACE must be whole seconds from 0 to 86400";
            out->has_grace = true;
        }
        return NULL;
    }
    if (!control_word_is(&w[0], "quarantine"))
        return "unknown command";
    if (n < 2)
        return "usage: quarantine list|show ID|release ID|delete ID";
    if (control_word_is(&w[1], "list")) {
        if (n != 2)
            return "quarantine list takes no argument";
        out->cmd = CONTROL_QUARANTINE_LIST;
        return NULL;
    }
    if (control_word_is(&w[1], "show"))
        out->cmd = CONTROL_QUARANTINE_SHOW;
    else if (control_word_is(&w[1], "release"))
        out->cmd = CONTROL_QUARANTINE_RELEASE;
    else if (control_word_is(&w[1], "delete"))
        out->cmd = CONTROL_QUARANTINE_DELETE;
    else
        return "usage: quarantine list|show ID|release ID|delete ID";
    if (n != 3)
        return "usage: quarantine show|release|delete ID";
    if (!control_id_valid(w[2].p, w[2].len))
        return "not a quarantine ID (letters, digits, '.', '_', '-'; no \"..\")";
    memcpy(out->id, w[2].p, w[2].len);
    out->id[w[2].len] = '\0';
    return NULL;
}

const char *control_cmd_name(enum control_cmd cmd)
{
    switch (cmd) {
    case CONTROL_STATUS:
        return "status";
    case CONTROL_RELOAD:
        return "reload";
    case CONTROL_DRAIN:
        return "drain";
    case CONTROL_SESSIONS:
        return "sessions";
    case CONTROL_QUARANTINE_LIST:
        return "quarantine list";
    case CONTROL_QUARANTINE_SHOW:
        return "quarantine show";
    case CONTROL_QUARANTINE_RELEASE:
        return "quarantine release";
    case CONTROL_QUARANTINE_DELETE:
        return "quarantine delete";
    }
    return "?";
}
