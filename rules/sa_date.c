/*
 * sa_date - SpamAssassin's header dates (see sa_date.h).
 *
 * After SpamAssassin's normalisation the text is single-space separated
 * words between a leading and a trailing space, and each of its patterns
 * but the zone name is anchored on spaces on both sides: matching them is
 * matching whole words, and removing a match (s/ ... / /) is removing the
 * words.  So the text is cut into at most SA_DATE_WORDS words once; only
 * the zone name, matched with \b, needs the words joined again.
 */
#include "rules/sa_date.h"

#include <string.h>
#include <strings.h>

#define SA_DATE_WORDS 64
#define SA_DATE_TEXT  1024

struct words {
    const char *w[SA_DATE_WORDS];
    size_t len[SA_DATE_WORDS];
    size_t n;
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool all_digits(const char *w, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_digit(w[i]))
            return false;
    return true;
}

/* digits as a number, saturated: Perl's numbers only grow past our ranges */
static long number(const char *w, size_t n)
{
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (w[i] - '0');
        if (v > 100000000)
            return 100000000;
    }
    return v;
}

static int month(const char *w, size_t n)
{
    static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    if (n != 3)
        return 0;
    for (int m = 0; m < 12; m++)
        if (strncasecmp(w, names + 3 * m, 3) == 0)
            return m + 1;
    return 0;
}

/* \d+:\d+:\d+ as a whole word */
static bool clock_word(const char *w, size_t n)
{
    int parts = 0;
    size_t i = 0;
    while (parts < 3) {
        size_t s = i;
        while (i < n && is_digit(w[i]))
            i++;
        if (i == s)
            return false;
        parts++;
        if (parts < 3) {
            if (i >= n || w[i] != ':')
                return false;
            i++;
        }
    }
    return i == n;
}

static void drop(struct words *ws, size_t at, size_t k)
{
    memmove(&ws->w[at], &ws->w[at + k], (ws->n - at - k) * sizeof(ws->w[0]));
    memmove(&ws->len[at], &ws->len[at + k], (ws->n - at - k) * sizeof(ws->len[0]));
    ws->n -= k;
}

struct zone {
    const char *name;
    int off; /* minutes east */
};
static const struct zone zones[] = {
    {"UT", 0},      {"UTC", 0},    {"NDT", -150}, {"AST", -240},  {"ADT", -180},  {"NST", -210},
    {"EST", -300},  {"EDT", -240}, {"CST", -360}, {"CDT", -300},  {"MST", -420},  {"MDT", -360},
    {"PST", -480},  {"PDT", -420}, {"HST", -600}, {"AKST", -540}, {"AKDT", -480}, {"HADT", -540},
    {"HAST", -600}, {"GMT", 0},    {"BST", 60},   {"IST", 60},    {"WET", 0},     {"WEST", 60},
    {"CET", 60},    {"CEST", 120}, {"EET", 120},  {"EEST", 180},  {"MSK", 180},   {"MSD", 240},
    {"MET", 60},    {"MEZ", 60},   {"MEST", 120}, {"MESZ", 120},  {"BRST", -120}, {"BRT", -180},
    {"AEST", 600},  {"AEDT", 660}, {"ACST", 570}, {"ACDT", 630},  {"AWST", 480},  {"NZST", 720},
    {"NZDT", 780},  {"JST", 540},  {"KST", 540},  {"HKT", 480},   {"SGT", 480},   {"PHT", 480},
    {"IDT", 180},
};

static bool word_octet(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* The first \b([A-Z]{2,4}(?:-DST)?)\b of t, as Perl finds it: a zone it
 * names, or false. */
static bool zone_name(const char *t, size_t n, int *off)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && word_octet(t[i - 1]))
            continue;
        size_t k = 0;
        while (k < 4 && i + k < n && t[i + k] >= 'A' && t[i + k] <= 'Z')
            k++;
        /* greedy, then shorter: each length with -DST first, then without */
        for (; k >= 2; k--) {
            size_t e = i + k;
            size_t cand[2] = {e + 4, e};
            bool dst_ok = e + 4 <= n && memcmp(t + e, "-DST", 4) == 0;
            for (int c = dst_ok ? 0 : 1; c < 2; c++) {
                size_t end = cand[c];
                if (end < n && word_octet(t[end]))
                    continue;
                if (word_octet(t[end - 1]) == false)
                    continue;
                for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++)
                    if (strlen(zones[z].name) == end - i &&
                        memcmp(zones[z].name, t + i, end - i) == 0) {
                        *off = zones[z].off;
                        return true;
                    }
                return false; /* the first match names no zone: -0000 */
            }
        }
    }
    return false;
}

static int64_t days_from_civil(long y, int m, long d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)era * 146097 + doe - 719468;
}

bool sa_date_parse(const char *s, size_t n, int64_t *t)
{
    struct words ws = {.n = 0};
    for (size_t i = 0; i < n;) {
        while (i < n && (is_space(s[i]) || s[i] == ','))
            i++;
        size_t b = i;
        while (i < n && !is_space(s[i]) && s[i] != ',')
            i++;
        if (i > b) {
            if (ws.n == SA_DATE_WORDS)
                break; /* a date is in its first words: the rest cannot matter much */
            ws.w[ws.n] = s + b;
            ws.len[ws.n++] = i - b;
        }
    }
    long dd = 0, yyyy = 0;
    int mon = 0;
    size_t ylen = 0;
    bool found = false;
    for (size_t i = 0; i + 2 < ws.n && !found; i++)
        if (all_digits(ws.w[i], ws.len[i]) && month(ws.w[i + 1], ws.len[i + 1]) &&
            ws.len[i + 2] == 4 && all_digits(ws.w[i + 2], 4)) {
            dd = number(ws.w[i], ws.len[i]);
            mon = month(ws.w[i + 1], ws.len[i + 1]);
            yyyy = number(ws.w[i + 2], 4);
            ylen = 4;
            drop(&ws, i, 3);
            found = true;
        }
    for (size_t i = 0; i + 3 < ws.n && !found; i++)
        if (month(ws.w[i], ws.len[i]) && all_digits(ws.w[i + 1], ws.len[i + 1]) &&
            clock_word(ws.w[i + 2], ws.len[i + 2]) && ws.len[i + 3] == 4 &&
            all_digits(ws.w[i + 3], 4)) {
            dd = number(ws.w[i + 1], ws.len[i + 1]);
            mon = month(ws.w[i], ws.len[i]);
            yyyy = number(ws.w[i + 3], 4);
            ylen = 4;
            drop(&ws, i, 4);
            found = true;
        }
    for (size_t i = 0; i + 2 < ws.n && !found; i++)
        if (all_digits(ws.w[i], ws.len[i]) && month(ws.w[i + 1], ws.len[i + 1]) &&
            (ws.len[i + 2] == 2 || ws.len[i + 2] == 3) && all_digits(ws.w[i + 2], ws.len[i + 2])) {
            dd = number(ws.w[i], ws.len[i]);
            mon = month(ws.w[i + 1], ws.len[i + 1]);
            ylen = ws.len[i + 2];
            yyyy = number(ws.w[i + 2], ylen);
            drop(&ws, i, 3);
            found = true;
        }
    if (!found)
        return false;
    if (ylen == 2 && yyyy < 50)
        yyyy += 2000;
    else if (ylen != 4)
        yyyy += 1900;

    long hh = 0, mm = 0, ss = 0;
    for (size_t i = 0; i < ws.n; i++) {
        const char *w = ws.w[i];
        size_t l = ws.len[i], h = 0;
        while (h < l && h < 2 && is_digit(w[h]))
            h++;
        if (h == 0 || h >= l || w[h] != ':' || h + 3 > l || !is_digit(w[h + 1]) ||
            !is_digit(w[h + 2]))
            continue;
        if (h + 3 != l &&
            !(h + 6 == l && w[h + 3] == ':' && is_digit(w[h + 4]) && is_digit(w[h + 5])))
            continue;
        hh = number(w, h);
        mm = number(w + h + 1, 2);
        ss = h + 6 == l ? number(w + h + 4, 2) : 0;
        drop(&ws, i, 1);
        break;
    }

    int off = 0;
    bool numeric = false;
    for (size_t i = 0; i < ws.n; i++)
        if (ws.len[i] == 5 && (ws.w[i][0] == '+' || ws.w[i][0] == '-') &&
            all_digits(ws.w[i] + 1, 4)) {
            int v = (int)number(ws.w[i] + 1, 4);
            off = (v / 100) * 60 + v % 100;
            if (ws.w[i][0] == '-')
                off = -off;
            numeric = true;
            break;
        }
    if (!numeric) {
        char text[SA_DATE_TEXT];
        size_t tn = 0;
        text[tn++] = ' ';
        for (size_t i = 0; i < ws.n && tn + ws.len[i] + 1 < sizeof(text); i++) {
            memcpy(text + tn, ws.w[i], ws.len[i]);
            tn += ws.len[i];
            text[tn++] = ' ';
        }
        if (!zone_name(text, tn, &off))
            off = 0;
    }

    if (ss > 59)
        ss = 59;
    if (mm > 59)
        mm = 59;
    if (hh > 23)
        hh = 23;
    long max_dd = 31;
    if (mon == 4 || mon == 6 || mon == 9 || mon == 11)
        max_dd = 30;
    else if (mon == 2)
        max_dd = (yyyy % 4 == 0 && (yyyy % 100 != 0 || yyyy % 400 == 0)) ? 29 : 28;
    if (dd > max_dd) {
        dd = 1;
        if (++mon > 12) {
            mon = 1;
            yyyy++;
        }
    }
    if (yyyy > 2037)
        yyyy = 2037;
    else if (yyyy < 1970)
        yyyy = 1970;
    if (dd == 0)
        return false;
    int64_t time = days_from_civil(yyyy, mon, dd) * 86400 + hh * 3600 + mm * 60 + ss;
    int64_t secs = (int64_t)off * 60;
    if (secs <= 0)
        time -= secs;
    else if (time < secs)
        time = 0;
    else
        time -= secs;
    *t = time;
    return true;
}

bool sa_date_in_received(const char *s, size_t n, int64_t *t)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_space(s[i]))
            continue;
        /* .? greedy first: one octet (not a line end), then none */
        for (int skip = 1; skip >= 0; skip--) {
            size_t j = i + 1;
            if (skip) {
                if (j >= n || s[j] == '\n')
                    continue;
                j++;
            }
            size_t b = j;
            while (j < n && is_digit(s[j]))
                j++;
            if (j == b || j >= n || s[j] != ' ')
                continue;
            j++;
            if (j + 3 >= n || is_space(s[j]) || is_space(s[j + 1]) || is_space(s[j + 2]) ||
                s[j + 3] != ' ')
                continue;
            j += 4;
            b = j;
            while (j < n && is_digit(s[j]))
                j++;
            if (j == b || j >= n || s[j] != ' ')
                continue;
            j++;
            b = j;
            while (j < n && (is_digit(s[j]) || s[j] == ':'))
                j++;
            if (!clock_word(s + b, j - b)) {
                /* \d+:\d+:\d+ then a space: a longer run of digits and colons cannot match */
                continue;
            }
            if (j >= n || s[j] != ' ')
                continue;
            j++;
            b = j;
            while (j < n && !is_space(s[j]))
                j++;
            if (j == b)
                continue;
            return sa_date_parse(s + i, j - i, t);
        }
    }
    return false;
}
