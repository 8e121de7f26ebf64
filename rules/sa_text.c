/*
 * sa_text - SpamAssassin's whitespace and line rules for body and rawbody
 * (see sa_text.h).  Each function is one pass over its input, no
 * allocation but out's growth, no recursion.
 */
#include "rules/sa_text.h"

#include <string.h>

size_t sa_text_space(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0)
        return 0;
    if (u[0] == ' ' || (u[0] >= '\t' && u[0] <= '\r'))
        return 1;
    if (n >= 2 && u[0] == 0xc2 && (u[1] == 0x85 || u[1] == 0xa0))
        return 2;
    if (n >= 3 && u[0] == 0xe1 && u[1] == 0x9a && u[2] == 0x80)
        return 3;
    if (n >= 3 && u[0] == 0xe2 && u[1] == 0x80 &&
        (u[2] <= 0x8a || u[2] == 0xa8 || u[2] == 0xa9 || u[2] == 0xaf))
        return 3;
    if (n >= 3 && u[0] == 0xe2 && u[1] == 0x81 && u[2] == 0x9f)
        return 3;
    if (n >= 3 && u[0] == 0xe3 && u[1] == 0x80 && u[2] == 0x80)
        return 3;
    return 0;
}

/* s/\n+\s*\n+/\x00/g; s/\s+/ /g; tr/\x00/\n/ in one pass: within a run of
 * whitespace, what lies from its first to its last line end (when they
 * differ) is the paragraph break; the rest of the run, before and after,
 * is a blank each. */
void sa_text_paragraphs(const char *text, size_t n, struct rules_buf *out)
{
    size_t i = 0;
    while (i < n) {
        size_t w = sa_text_space(text + i, n - i);
        if (w == 0) {
            size_t j = i + 1;
            while (j < n && (unsigned char)text[j] > ' ' && (unsigned char)text[j] < 0x80)
                j++;
            /* a multi-octet character that is not whitespace: copied whole */
            if (j == i + 1 && (unsigned char)text[i] >= 0x80)
                while (j < n && ((unsigned char)text[j] & 0xc0) == 0x80)
                    j++;
            rules_buf_add(out, text + i, j - i);
            i = j;
            continue;
        }
        size_t start = i, first_nl = n, last_nl = n, nls = 0;
        while (i < n && (w = sa_text_space(text + i, n - i)) > 0) {
            if (text[i] == '\n') {
                if (nls++ == 0)
                    first_nl = i;
                last_nl = i;
            }
            i += w;
        }
        if (nls < 2) {
            rules_buf_addc(out, ' ');
            continue;
        }
        if (first_nl > start)
            rules_buf_addc(out, ' ');
        rules_buf_addc(out, '\n');
        if (last_nl + 1 < i)
            rules_buf_addc(out, ' ');
    }
}

size_t sa_text_line_end(const char *s, size_t n)
{
    const char *nl = memchr(s, '\n', n);
    size_t len = nl ? (size_t)(nl - s) + 1 : n;
    if (len <= SA_TEXT_LINE_MAX)
        return len;
    /* rindex($line, ' ', MAX) + 1, or MAX when there is no blank */
    for (size_t k = SA_TEXT_LINE_MAX + 1; k-- > 0;)
        if (s[k] == ' ')
            return k + 1;
    return SA_TEXT_LINE_MAX;
}

/* index($text, c, MAX) within the first 2 * MAX octets, or 0. */
static size_t cut_at(const char *s, size_t n, char c)
{
    size_t lim = n < 2 * SA_TEXT_LINE_MAX ? n : 2 * SA_TEXT_LINE_MAX;
    const char *p = memchr(s + SA_TEXT_LINE_MAX, c, lim - SA_TEXT_LINE_MAX);
    return p ? (size_t)(p - s) + 1 : 0;
}

size_t sa_text_chunk_end(const char *s, size_t n)
{
    if (n <= 2 * SA_TEXT_LINE_MAX)
        return n;
    size_t k = cut_at(s, n, '\n');
    if (k == 0)
        k = cut_at(s, n, '>');
    if (k == 0)
        k = cut_at(s, n, ' ');
    return k ? k : SA_TEXT_LINE_MAX + 1;
}
