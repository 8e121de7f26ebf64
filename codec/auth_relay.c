/*
 * auth_relay - mechanism table, AUTH argument and response checks, login name
 * extraction.  Pure: strings in, bits and names out.
 */
#include "codec/auth_relay.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    unsigned bit;
} auth_mech_table[] = {
    {"PLAIN", AUTH_MECH_PLAIN},
    {"LOGIN", AUTH_MECH_LOGIN},
    {"CRAM-MD5", AUTH_MECH_CRAM_MD5},
    {"DIGEST-MD5", AUTH_MECH_DIGEST_MD5},
    {"SCRAM-SHA-1", AUTH_MECH_SCRAM_SHA_1},
    {"SCRAM-SHA-256", AUTH_MECH_SCRAM_SHA_256},
    {"XOAUTH2", AUTH_MECH_XOAUTH2},
    {"OAUTHBEARER", AUTH_MECH_OAUTHBEARER},
};
#define AUTH_NMECHS (sizeof(auth_mech_table) / sizeof(auth_mech_table[0]))

unsigned auth_mech_lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < AUTH_NMECHS; i++)
        if (strlen(auth_mech_table[i].name) == len &&
            strncasecmp(auth_mech_table[i].name, name, len) == 0)
            return auth_mech_table[i].bit;
    return 0;
}

unsigned auth_mechs_parse(const char *list, size_t len)
{
    unsigned bits = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
            i++;
        size_t start = i;
        while (i < len && list[i] != ' ' && list[i] != '\t' && list[i] != ',')
            i++;
        if (i > start)
            bits |= auth_mech_lookup(list + start, i - start);
    }
    return bits;
}

size_t auth_mechs_format(unsigned mechs, char *out, size_t out_size)
{
    size_t n = 0;
    if (out_size == 0)
        return 0;
    out[0] = '\0';
    for (size_t i = 0; i < AUTH_NMECHS; i++) {
        if (!(mechs & auth_mech_table[i].bit))
            continue;
        size_t l = strlen(auth_mech_table[i].name);
        if (n + (n ? 1 : 0) + l + 1 > out_size)
            break;
        if (n)
            out[n++] = ' ';
        memcpy(out + n, auth_mech_table[i].name, l);
        n += l;
        out[n] = '\0';
    }
    return n;
}

static bool auth_is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* base64 syntax: groups of four, "=" padding only at the end. */
static bool auth_b64_valid(const char *s, size_t len)
{
    if (len % 4 != 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (auth_is_b64(s[i]))
            continue;
        if (s[i] != '=' || i + 2 < len)
            return false;
        if (i == len - 2 && s[len - 1] != '=')
            return false;
    }
    return true;
}

enum auth_status auth_cmd_parse(const char *arg, size_t len, struct auth_cmd *out)
{
    memset(out, 0, sizeof(*out));
    size_t i = 0;
    while (i < len && arg[i] != ' ')
        i++;
    if (i == 0)
        return AUTH_SYNTAX;
    for (size_t k = 0; k < i; k++) {
        char c = arg[k];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return AUTH_SYNTAX;
    }
    if (i > 20)
        return AUTH_UNKNOWN_MECH;
    out->mech = auth_mech_lookup(arg, i);
    if (!out->mech)
        return AUTH_UNKNOWN_MECH;
    if (i == len)
        return AUTH_OK;
    const char *ir = arg + i + 1;
    size_t ir_len = len - i - 1;
    if (ir_len == 0 || memchr(ir, ' ', ir_len))
        return AUTH_SYNTAX;
    if (!(ir_len == 1 && ir[0] == '=') && !auth_b64_valid(ir, ir_len))
        return AUTH_SYNTAX;
    out->initial = ir;
    out->initial_len = ir_len;
    return AUTH_OK;
}

enum auth_status auth_response_check(const char *line, size_t len, size_t max_len)
{
    if (len > max_len)
        return AUTH_TOO_LONG;
    if (len == 1 && line[0] == '*')
        return AUTH_CANCEL;
    if (!auth_b64_valid(line, len))
        return AUTH_SYNTAX;
    return AUTH_OK;
}

static int auth_b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

size_t auth_base64_decode(const char *in, size_t len, unsigned char *out, size_t out_size)
{
    if (!auth_b64_valid(in, len))
        return (size_t)-1;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (in[i + (size_t)k] == '=') {
                v[k] = 0;
                pad++;
            } else {
                v[k] = auth_b64_value(in[i + (size_t)k]);
            }
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t take = (size_t)(3 - pad);
        if (n + take > out_size)
            return (size_t)-1;
        unsigned char b[3] = {(unsigned char)(w >> 16), (unsigned char)(w >> 8), (unsigned char)w};
        memcpy(out + n, b, take);
        n += take;
    }
    return n;
}

/* Keep a name only if it is printable and short: it goes into logs and
 * XCLIENT (xtext-encoded there). */
static bool auth_name_out(const unsigned char *p, size_t n, char *out, size_t out_size)
{
    if (n == 0 || n >= out_size || n >= AUTH_LOGIN_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7E)
            return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

bool auth_login_guess(unsigned mech, unsigned step, const char *data, size_t len, char *out,
                      size_t out_size)
{
    unsigned char buf[1024];
    if (!data || len == 0 || (len == 1 && data[0] == '='))
        return false;
    size_t n = auth_base64_decode(data, len, buf, sizeof(buf));
    if (n == (size_t)-1)
        return false;

    switch (mech) {
    case AUTH_MECH_PLAIN: {
        /* authzid NUL authcid NUL passwd: the name is authcid, the part
         * between the two NULs; the password is never looked at. */
        if (step > 1)
            return false;
        unsigned char *nul1 = memchr(buf, '\0', n);
        if (!nul1)
            return false;
        unsigned char *a = nul1 + 1;
        unsigned char *nul2 = memchr(a, '\0', n - (size_t)(a - buf));
        if (!nul2)
            return false;
        return auth_name_out(a, (size_t)(nul2 - a), out, out_size);
    }
    case AUTH_MECH_LOGIN:
        /* The initial response (if any) or the answer to "Username:". */
        if (step > 1)
            return false;
        return auth_name_out(buf, n, out, out_size);
    case AUTH_MECH_CRAM_MD5: {
        if (step != 1)
            return false;
        unsigned char *sp = memchr(buf, ' ', n);
        return sp && auth_name_out(buf, (size_t)(sp - buf), out, out_size);
    }
    case AUTH_MECH_SCRAM_SHA_1:
    case AUTH_MECH_SCRAM_SHA_256: {
        /* client-first-message: gs2-header "n=" saslname "," ... */
        if (step > 1)
            return false;
        for (size_t i = 0; i + 2 < n; i++) {
            if ((i == 0 || buf[i - 1] == ',') && buf[i] == 'n' && buf[i + 1] == '=') {
                unsigned char *s = buf + i + 2;
                unsigned char *comma = memchr(s, ',', n - (size_t)(s - buf));
                if (!comma)
                    return false;
                return auth_name_out(s, (size_t)(comma - s), out, out_size);
            }
        }
        return false;
    }
    default:
        return false;
    }
}

const char *auth_status_reply(enum auth_status st)
{
    switch (st) {
    case AUTH_OK:
        return "250 2.0.0 Ok";
    case AUTH_SYNTAX:
        return "501 5.5.4 Syntax: AUTH mechanism [initial-response]";
    case AUTH_UNKNOWN_MECH:
        return "504 5.5.4 Unrecognized authentication type";
    case AUTH_TOO_LONG:
        return "500 5.5.6 Authentication exchange line is too long";
    case AUTH_CANCEL:
        return "501 5.7.0 Authentication aborted";
    }
    return "501 5.5.4 Syntax error";
}

size_t auth_loggable_len(const char *line, size_t len)
{
    if (len < 4 || strncasecmp(line, "AUTH", 4) != 0 || (len > 4 && line[4] != ' '))
        return len;
    size_t i = 5;
    while (i < len && line[i] != ' ')
        i++;
    return i < len ? i : len;
}
