/*
 * sa_html - SpamAssassin's HTML facts of one part (see sa_html.h).
 *
 * Two halves: a port of HTML::Parser's tokenizer (parse_buf and its eof
 * flush, which decide what is a tag, a comment or text, and so every
 * count), and the handlers of HTML.pm that record the facts.  Both follow
 * the Perl and C they copy step by step, quirks included (the text that
 * ends the input split at its last blank, a "]" in a marked section
 * skipping the octet after it, the bgcolor attribute never reaching the
 * text style), because the rules' thresholds were tuned on those numbers.
 *
 * Not kept: the URIs (sa_uri and the body model have them) but whether an
 * iframe has one, the text's invisible/visible split beyond the flags, and
 * the charsets of meta tags (HTML.pm collects them but never hands them
 * over, so html_charset_faraway never sees any).
 */
#include "rules/sa_html.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "util/alloc.h"

/* SpamAssassin parses its "</style>" and "</script>" fixes at most this
 * many times: it loops until the element is closed, which a dropped end tag
 * (a marked section to ignore) would never do. */
#define CLOSE_TRIES 16
#define ATTR_MAX    256 /* attributes of one tag looked at; more are dropped */

enum ms_type { MS_NONE, MS_INCLUDE, MS_RCDATA, MS_CDATA, MS_IGNORE };

struct style {
    const char *tag; /* one of the text-style element names, or "default" */
    char fg[16], bg[16];
    double size;
    bool display_none, hidden;
};

struct attr {
    char *name;
    char *value;
};

struct parser {
    struct sa_html_part *out;
    bool nomem;
    bool chars; /* the part has non-ASCII text: SpamAssassin counts characters */
    const char *literal;
    bool is_cdata;
    const char *pending_end;
    bool no_dash_dash;
    unsigned char *ms_stack;
    size_t ms_n, ms_cap;
    enum ms_type ms;
    struct style *st;
    size_t nst, st_cap;
    double basefont;
    /* the rendered text: its pieces joined, the last one's start and kind */
    char *text;
    size_t text_len, text_cap;
    size_t last_start;
    bool have_piece, last_ws, last_invisible;
    long title_index;
    uint64_t backhair; /* the length pairs seen, a bit each */
    pcre2_code *face_re;
    pcre2_match_data *face_md;
    char *href; /* the href html_uri left on the <a> being read */
};

/* ---- small helpers ---- */

static bool hspace(int c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool name_first(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool name_char(int c)
{
    return name_first(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static bool not_space_gt(int c)
{
    return !hspace(c) && c != '>';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static bool grow(struct parser *p, void *pp, size_t *cap, size_t need, size_t size)
{
    if (p->nomem)
        return false;
    if (util_grow(pp, cap, need, size) != 0) {
        p->nomem = true;
        return false;
    }
    return true;
}

static void text_add(struct parser *p, const char *s, size_t n)
{
    if (!grow(p, &p->text, &p->text_cap, p->text_len + n + 1, 1))
        return;
    memcpy(p->text + p->text_len, s, n);
    p->text_len += n;
}

/* ---- string lists ---- */

static void strs_new_item(struct parser *p, struct sa_html_strs *l)
{
    if (!grow(p, &l->start, &l->ncap, l->n + 1, sizeof(*l->start)))
        return;
    l->start[l->n++] = l->len;
}

static void strs_append(struct parser *p, struct sa_html_strs *l, const char *s, size_t n)
{
    if (l->n == 0 || !grow(p, &l->text, &l->cap, l->len + n + 1, 1))
        return;
    memcpy(l->text + l->len, s, n);
    l->len += n;
    l->text[l->len] = '\0';
}

static void strs_free(struct sa_html_strs *l)
{
    free(l->text);
    free(l->start);
    *l = (struct sa_html_strs){0};
}

/* ---- the tags seen: HTML.pm's %inside ---- */

static size_t tag_hash(const char *s, size_t n)
{
    size_t h = 1469598103934665603ull & SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * (1099511628211ull & SIZE_MAX);
    return h;
}

static struct sa_html_tag *tag_find(const struct sa_html_part *o, const char *s, size_t n)
{
    if (o->tags_cap == 0)
        return NULL;
    size_t mask = o->tags_cap - 1;
    for (size_t i = tag_hash(s, n) & mask;; i = (i + 1) & mask) {
        struct sa_html_tag *t = &o->tags[i];
        if (t->name == NULL)
            return t;
        if (strlen(t->name) == n && memcmp(t->name, s, n) == 0)
            return t;
    }
}

/* The slot of tag s (lower case), made when new; NULL when out of memory. */
static struct sa_html_tag *tag_get(struct parser *p, const char *s, size_t n, bool *is_new)
{
    struct sa_html_part *o = p->out;
    *is_new = false;
    if (p->nomem)
        return NULL;
    if ((o->ntags + 1) * 2 > o->tags_cap) {
        size_t cap = o->tags_cap ? o->tags_cap * 2 : 32;
        struct sa_html_tag *v = util_calloc(cap, sizeof(*v));
        if (v == NULL) {
            p->nomem = true;
            return NULL;
        }
        struct sa_html_part tmp = {.tags = v, .tags_cap = cap};
        for (size_t i = 0; i < o->tags_cap; i++)
            if (o->tags[i].name != NULL)
                *tag_find(&tmp, o->tags[i].name, strlen(o->tags[i].name)) = o->tags[i];
        free(o->tags);
        o->tags = v;
        o->tags_cap = cap;
    }
    struct sa_html_tag *t = tag_find(o, s, n);
    if (t->name == NULL) {
        t->name = util_strndup(s, n);
        if (t->name == NULL) {
            p->nomem = true;
            return NULL;
        }
        t->inside = 0;
        o->ntags++;
        *is_new = true;
    }
    return t;
}

static long inside(const struct parser *p, const char *tag)
{
    const struct sa_html_tag *t = tag_find(p->out, tag, strlen(tag));
    return t && t->name ? t->inside : 0;
}

/* ---- HTML.pm's tables ---- */

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static const char *const elements[] = {
    "a",      "abbr",       "acronym",  "address",  "area",     "b",       "base",     "bdo",
    "big",    "blockquote", "body",     "br",       "button",   "caption", "cite",     "code",
    "col",    "colgroup",   "dd",       "del",      "dfn",      "div",     "dl",       "dt",
    "em",     "fieldset",   "form",     "h1",       "h2",       "h3",      "h4",       "h5",
    "h6",     "head",       "hr",       "html",     "i",        "img",     "input",    "ins",
    "kbd",    "label",      "legend",   "li",       "link",     "map",     "meta",     "noscript",
    "object", "ol",         "optgroup", "option",   "p",        "param",   "pre",      "q",
    "samp",   "script",     "select",   "small",    "span",     "strong",  "style",    "sub",
    "sup",    "table",      "tbody",    "td",       "textarea", "tfoot",   "th",       "thead",
    "title",  "tr",         "tt",       "ul",       "var",      "applet",  "basefont", "center",
    "dir",    "font",       "frame",    "frameset", "iframe",   "isindex", "menu",     "noframes",
    "s",      "strike",     "u",        "nobr",     "x-sigsep", "x-tab",   NULL};
static const char *const elements_uri[] = {"body", "table", "tr",    "td",   "a",      "area",
                                           "link", "img",   "frame", "iframe", "embed", "script",
                                           "form", "base",  "bgsound", "meta", NULL};
static const char *const tricks[] = {"bgsound", "embed", "listing", "plaintext", "xmp", NULL};
static const char *const text_style_tags[] = {"body", "font", "table", "tr",       "th",
                                              "td",   "big",  "small", "basefont", "marquee",
                                              "span", "p",    "div",   "a",        NULL};
static const char *const ws_line[] = {"br", "div", NULL};
static const char *const ws_blank[] = {"li", "th", "td", "dt", "dd", "embed", "h1",
                                       "h2", "h3", "h4", "h5", "h6", NULL};
static const char *const ws_para[] = {"p",         "hr",  "blockquote", "pre", "listing",
                                      "plaintext", "xmp", "title",      NULL};

struct literal_tag {
    const char *name;
    bool cdata;
};
static const struct literal_tag literal_tags[] = {
    {"script", true},    {"style", true},  {"xmp", true},       {"iframe", true},
    {"plaintext", true}, {"title", false}, {"textarea", false}, {NULL, false},
};

struct named_color {
    const char *name;
    uint32_t rgb;
};
static const struct named_color colors[] = {
    {"aliceblue", 0xf0f8ff},
    {"antiquewhite", 0xfaebd7},
    {"aqua", 0x00ffff},
    {"aquamarine", 0x7fffd4},
    {"azure", 0xf0ffff},
    {"beige", 0xf5f5dc},
    {"bisque", 0xffe4c4},
    {"black", 0x000000},
    {"blanchedalmond", 0xffebcd},
    {"blue", 0x0000ff},
    {"blueviolet", 0x8a2be2},
    {"brown", 0xa52a2a},
    {"burlywood", 0xdeb887},
    {"cadetblue", 0x5f9ea0},
    {"chartreuse", 0x7fff00},
    {"chocolate", 0xd2691e},
    {"coral", 0xff7f50},
    {"cornflowerblue", 0x6495ed},
    {"cornsilk", 0xfff8dc},
    {"crimson", 0xdc143c},
    {"cyan", 0x00ffff},
    {"darkblue", 0x00008b},
    {"darkcyan", 0x008b8b},
    {"darkgoldenrod", 0xb8860b},
    {"darkgray", 0xa9a9a9},
    {"darkgreen", 0x006400},
    {"darkgrey", 0xa9a9a9},
    {"darkkhaki", 0xbdb76b},
    {"darkmagenta", 0x8b008b},
    {"darkolivegreen", 0x556b2f},
    {"darkorange", 0xff8c00},
    {"darkorchid", 0x9932cc},
    {"darkred", 0x8b0000},
    {"darksalmon", 0xe9967a},
    {"darkseagreen", 0x8fbc8f},
    {"darkslateblue", 0x483d8b},
    {"darkslategray", 0x2f4f4f},
    {"darkslategrey", 0x2f4f4f},
    {"darkturquoise", 0x00ced1},
    {"darkviolet", 0x9400d3},
    {"deeppink", 0xff1493},
    {"deepskyblue", 0x00bfff},
    {"dimgray", 0x696969},
    {"dimgrey", 0x696969},
    {"dodgerblue", 0x1e90ff},
    {"firebrick", 0xb22222},
    {"floralwhite", 0xfffaf0},
    {"forestgreen", 0x228b22},
    {"fuchsia", 0xff00ff},
    {"gainsboro", 0xdcdcdc},
    {"ghostwhite", 0xf8f8ff},
    {"gold", 0xffd700},
    {"goldenrod", 0xdaa520},
    {"gray", 0x808080},
    {"green", 0x008000},
    {"greenyellow", 0xadff2f},
    {"grey", 0x808080},
    {"honeydew", 0xf0fff0},
    {"hotpink", 0xff69b4},
    {"indianred", 0xcd5c5c},
    {"indigo", 0x4b0082},
    {"ivory", 0xfffff0},
    {"khaki", 0xf0e68c},
    {"lavender", 0xe6e6fa},
    {"lavenderblush", 0xfff0f5},
    {"lawngreen", 0x7cfc00},
    {"lemonchiffon", 0xfffacd},
    {"lightblue", 0xadd8e6},
    {"lightcoral", 0xf08080},
    {"lightcyan", 0xe0ffff},
    {"lightgoldenrodyellow", 0xfafad2},
    {"lightgray", 0xd3d3d3},
    {"lightgreen", 0x90ee90},
    {"lightgrey", 0xd3d3d3},
    {"lightpink", 0xffb6c1},
    {"lightsalmon", 0xffa07a},
    {"lightseagreen", 0x20b2aa},
    {"lightskyblue", 0x87cefa},
    {"lightslategray", 0x778899},
    {"lightslategrey", 0x778899},
    {"lightsteelblue", 0xb0c4de},
    {"lightyellow", 0xffffe0},
    {"lime", 0x00ff00},
    {"limegreen", 0x32cd32},
    {"linen", 0xfaf0e6},
    {"magenta", 0xff00ff},
    {"maroon", 0x800000},
    {"mediumaquamarine", 0x66cdaa},
    {"mediumblue", 0x0000cd},
    {"mediumorchid", 0xba55d3},
    {"mediumpurple", 0x9370db},
    {"mediumseagreen", 0x3cb371},
    {"mediumslateblue", 0x7b68ee},
    {"mediumspringgreen", 0x00fa9a},
    {"mediumturquoise", 0x48d1cc},
    {"mediumvioletred", 0xc71585},
    {"midnightblue", 0x191970},
    {"mintcream", 0xf5fffa},
    {"mistyrose", 0xffe4e1},
    {"moccasin", 0xffe4b5},
    {"navajowhite", 0xffdead},
    {"navy", 0x000080},
    {"oldlace", 0xfdf5e6},
    {"olive", 0x808000},
    {"olivedrab", 0x6b8e23},
    {"orange", 0xffa500},
    {"orangered", 0xff4500},
    {"orchid", 0xda70d6},
    {"palegoldenrod", 0xeee8aa},
    {"palegreen", 0x98fb98},
    {"paleturquoise", 0xafeeee},
    {"palevioletred", 0xdb7093},
    {"papayawhip", 0xffefd5},
    {"peachpuff", 0xffdab9},
    {"peru", 0xcd853f},
    {"pink", 0xffc0cb},
    {"plum", 0xdda0dd},
    {"powderblue", 0xb0e0e6},
    {"purple", 0x800080},
    {"red", 0xff0000},
    {"rosybrown", 0xbc8f8f},
    {"royalblue", 0x4169e1},
    {"saddlebrown", 0x8b4513},
    {"salmon", 0xfa8072},
    {"sandybrown", 0xf4a460},
    {"seagreen", 0x2e8b57},
    {"seashell", 0xfff5ee},
    {"sienna", 0xa0522d},
    {"silver", 0xc0c0c0},
    {"skyblue", 0x87ceeb},
    {"slateblue", 0x6a5acd},
    {"slategray", 0x708090},
    {"slategrey", 0x708090},
    {"snow", 0xfffafa},
    {"springgreen", 0x00ff7f},
    {"steelblue", 0x4682b4},
    {"tan", 0xd2b48c},
    {"teal", 0x008080},
    {"thistle", 0xd8bfd8},
    {"tomato", 0xff6347},
    {"turquoise", 0x40e0d0},
    {"violet", 0xee82ee},
    {"wheat", 0xf5deb3},
    {"white", 0xffffff},
    {"whitesmoke", 0xf5f5f5},
    {"yellow", 0xffff00},
    {"yellowgreen", 0x9acd32},
    {NULL, 0},
};

struct entity {
    const char *name;
    uint32_t cp;
    bool semicolon; /* only with its ";" (HTML 4's names past Latin-1) */
};
/* HTML::Entities' table: HTML 4's names, case-sensitive, none longer
 * than NAME_MAX_LEN */
#define NAME_MAX_LEN 8
static const struct entity entities[] = {
    {"AElig", 0xc6, false},   {"Aacute", 0xc1, false},   {"Acirc", 0xc2, false},
    {"Agrave", 0xc0, false},  {"Alpha", 0x391, true},    {"Aring", 0xc5, false},
    {"Atilde", 0xc3, false},  {"Auml", 0xc4, false},     {"Beta", 0x392, true},
    {"Ccedil", 0xc7, false},  {"Chi", 0x3a7, true},      {"Dagger", 0x2021, true},
    {"Delta", 0x394, true},   {"ETH", 0xd0, false},      {"Eacute", 0xc9, false},
    {"Ecirc", 0xca, false},   {"Egrave", 0xc8, false},   {"Epsilon", 0x395, true},
    {"Eta", 0x397, true},     {"Euml", 0xcb, false},     {"Gamma", 0x393, true},
    {"Iacute", 0xcd, false},  {"Icirc", 0xce, false},    {"Igrave", 0xcc, false},
    {"Iota", 0x399, true},    {"Iuml", 0xcf, false},     {"Kappa", 0x39a, true},
    {"Lambda", 0x39b, true},  {"Mu", 0x39c, true},       {"Ntilde", 0xd1, false},
    {"Nu", 0x39d, true},      {"OElig", 0x152, true},    {"Oacute", 0xd3, false},
    {"Ocirc", 0xd4, false},   {"Ograve", 0xd2, false},   {"Omega", 0x3a9, true},
    {"Omicron", 0x39f, true}, {"Oslash", 0xd8, false},   {"Otilde", 0xd5, false},
    {"Ouml", 0xd6, false},    {"Phi", 0x3a6, true},      {"Pi", 0x3a0, true},
    {"Prime", 0x2033, true},  {"Psi", 0x3a8, true},      {"Rho", 0x3a1, true},
    {"Scaron", 0x160, true},  {"Sigma", 0x3a3, true},    {"THORN", 0xde, false},
    {"Tau", 0x3a4, true},     {"Theta", 0x398, true},    {"Uacute", 0xda, false},
    {"Ucirc", 0xdb, false},   {"Ugrave", 0xd9, false},   {"Upsilon", 0x3a5, true},
    {"Uuml", 0xdc, false},    {"Xi", 0x39e, true},       {"Yacute", 0xdd, false},
    {"Yuml", 0x178, true},    {"Zeta", 0x396, true},     {"aacute", 0xe1, false},
    {"acirc", 0xe2, false},   {"acute", 0xb4, false},    {"aelig", 0xe6, false},
    {"agrave", 0xe0, false},  {"alefsym", 0x2135, true}, {"alpha", 0x3b1, true},
    {"amp", 0x26, false},     {"and", 0x2227, true},     {"ang", 0x2220, true},
    {"apos", 0x27, false},    {"aring", 0xe5, false},    {"asymp", 0x2248, true},
    {"atilde", 0xe3, false},  {"auml", 0xe4, false},     {"bdquo", 0x201e, true},
    {"beta", 0x3b2, true},    {"brvbar", 0xa6, false},   {"bull", 0x2022, true},
    {"cap", 0x2229, true},    {"ccedil", 0xe7, false},   {"cedil", 0xb8, false},
    {"cent", 0xa2, false},    {"chi", 0x3c7, true},      {"circ", 0x2c6, true},
    {"clubs", 0x2663, true},  {"cong", 0x2245, true},    {"copy", 0xa9, false},
    {"crarr", 0x21b5, true},  {"cup", 0x222a, true},     {"curren", 0xa4, false},
    {"dArr", 0x21d3, true},   {"dagger", 0x2020, true},  {"darr", 0x2193, true},
    {"deg", 0xb0, false},     {"delta", 0x3b4, true},    {"diams", 0x2666, true},
    {"divide", 0xf7, false},  {"eacute", 0xe9, false},   {"ecirc", 0xea, false},
    {"egrave", 0xe8, false},  {"empty", 0x2205, true},   {"emsp", 0x2003, true},
    {"ensp", 0x2002, true},   {"epsilon", 0x3b5, true},  {"equiv", 0x2261, true},
    {"eta", 0x3b7, true},     {"eth", 0xf0, false},      {"euml", 0xeb, false},
    {"euro", 0x20ac, true},   {"exist", 0x2203, true},   {"fnof", 0x192, true},
    {"forall", 0x2200, true}, {"frac12", 0xbd, false},   {"frac14", 0xbc, false},
    {"frac34", 0xbe, false},  {"frasl", 0x2044, true},   {"gamma", 0x3b3, true},
    {"ge", 0x2265, true},     {"gt", 0x3e, false},       {"hArr", 0x21d4, true},
    {"harr", 0x2194, true},   {"hearts", 0x2665, true},  {"hellip", 0x2026, true},
    {"iacute", 0xed, false},  {"icirc", 0xee, false},    {"iexcl", 0xa1, false},
    {"igrave", 0xec, false},  {"image", 0x2111, true},   {"infin", 0x221e, true},
    {"int", 0x222b, true},    {"iota", 0x3b9, true},     {"iquest", 0xbf, false},
    {"isin", 0x2208, true},   {"iuml", 0xef, false},     {"kappa", 0x3ba, true},
    {"lArr", 0x21d0, true},   {"lambda", 0x3bb, true},   {"lang", 0x2329, true},
    {"laquo", 0xab, false},   {"larr", 0x2190, true},    {"lceil", 0x2308, true},
    {"ldquo", 0x201c, true},  {"le", 0x2264, true},      {"lfloor", 0x230a, true},
    {"lowast", 0x2217, true}, {"loz", 0x25ca, true},     {"lrm", 0x200e, true},
    {"lsaquo", 0x2039, true}, {"lsquo", 0x2018, true},   {"lt", 0x3c, false},
    {"macr", 0xaf, false},    {"mdash", 0x2014, true},   {"micro", 0xb5, false},
    {"middot", 0xb7, false},  {"minus", 0x2212, true},   {"mu", 0x3bc, true},
    {"nabla", 0x2207, true},  {"nbsp", 0xa0, false},     {"ndash", 0x2013, true},
    {"ne", 0x2260, true},     {"ni", 0x220b, true},      {"not", 0xac, false},
    {"notin", 0x2209, true},  {"nsub", 0x2284, true},    {"ntilde", 0xf1, false},
    {"nu", 0x3bd, true},      {"oacute", 0xf3, false},   {"ocirc", 0xf4, false},
    {"oelig", 0x153, true},   {"ograve", 0xf2, false},   {"oline", 0x203e, true},
    {"omega", 0x3c9, true},   {"omicron", 0x3bf, true},  {"oplus", 0x2295, true},
    {"or", 0x2228, true},     {"ordf", 0xaa, false},     {"ordm", 0xba, false},
    {"oslash", 0xf8, false},  {"otilde", 0xf5, false},   {"otimes", 0x2297, true},
    {"ouml", 0xf6, false},    {"para", 0xb6, false},     {"part", 0x2202, true},
    {"permil", 0x2030, true}, {"perp", 0x22a5, true},    {"phi", 0x3c6, true},
    {"pi", 0x3c0, true},      {"piv", 0x3d6, true},      {"plusmn", 0xb1, false},
    {"pound", 0xa3, false},   {"prime", 0x2032, true},   {"prod", 0x220f, true},
    {"prop", 0x221d, true},   {"psi", 0x3c8, true},      {"quot", 0x22, false},
    {"rArr", 0x21d2, true},   {"radic", 0x221a, true},   {"rang", 0x232a, true},
    {"raquo", 0xbb, false},   {"rarr", 0x2192, true},    {"rceil", 0x2309, true},
    {"rdquo", 0x201d, true},  {"real", 0x211c, true},    {"reg", 0xae, false},
    {"rfloor", 0x230b, true}, {"rho", 0x3c1, true},      {"rlm", 0x200f, true},
    {"rsaquo", 0x203a, true}, {"rsquo", 0x2019, true},   {"sbquo", 0x201a, true},
    {"scaron", 0x161, true},  {"sdot", 0x22c5, true},    {"sect", 0xa7, false},
    {"shy", 0xad, false},     {"sigma", 0x3c3, true},    {"sigmaf", 0x3c2, true},
    {"sim", 0x223c, true},    {"spades", 0x2660, true},  {"sub", 0x2282, true},
    {"sube", 0x2286, true},   {"sum", 0x2211, true},     {"sup1", 0xb9, false},
    {"sup2", 0xb2, false},    {"sup3", 0xb3, false},     {"sup", 0x2283, true},
    {"supe", 0x2287, true},   {"szlig", 0xdf, false},    {"tau", 0x3c4, true},
    {"there4", 0x2234, true}, {"theta", 0x3b8, true},    {"thetasym", 0x3d1, true},
    {"thinsp", 0x2009, true}, {"thorn", 0xfe, false},    {"tilde", 0x2dc, true},
    {"times", 0xd7, false},   {"trade", 0x2122, true},   {"uArr", 0x21d1, true},
    {"uacute", 0xfa, false},  {"uarr", 0x2191, true},    {"ucirc", 0xfb, false},
    {"ugrave", 0xf9, false},  {"uml", 0xa8, false},      {"upsih", 0x3d2, true},
    {"upsilon", 0x3c5, true}, {"uuml", 0xfc, false},     {"weierp", 0x2118, true},
    {"xi", 0x3be, true},      {"yacute", 0xfd, false},   {"yen", 0xa5, false},
    {"yuml", 0xff, false},    {"zeta", 0x3b6, true},     {"zwj", 0x200d, true},
    {"zwnj", 0x200c, true},   {NULL, 0, false},
};

/* ---- entities ---- */

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static bool alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* HTML::Entities::decode over s[0..n) into a new string (never longer:
 * every reference is at least as long as its UTF-8); NULL out of memory. */
static char *decode(struct parser *p, const char *s, size_t n, size_t *outn)
{
    char *o = util_malloc(n + 1);
    if (o == NULL) {
        p->nomem = true;
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '&') {
            o[k++] = s[i++];
            continue;
        }
        size_t j = i + 1;
        uint32_t cp = 0;
        bool found = false;
        if (j < n && s[j] == '#') {
            j++;
            uint64_t num = 0;
            bool ok = false;
            if (j < n && (s[j] == 'x' || s[j] == 'X')) {
                j++;
                while (j < n) {
                    int c = s[j], d = c >= '0' && c <= '9'   ? c - '0'
                                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                             : -1;
                    if (d < 0)
                        break;
                    num = num << 4 | (unsigned)d;
                    if (num > 0x10ffff) {
                        ok = false;
                        break;
                    }
                    j++;
                    ok = true;
                }
            } else {
                while (j < n && s[j] >= '0' && s[j] <= '9') {
                    num = num * 10 + (unsigned)(s[j] - '0');
                    if (num > 0x10ffff) {
                        ok = false;
                        break;
                    }
                    j++;
                    ok = true;
                }
            }
            if (num && ok && num != 0xfffe && num != 0xffff) {
                cp = (uint32_t)num;
                if ((cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0xfdd0 && cp <= 0xfdef) ||
                    (cp & 0xfffe) == 0xfffe)
                    cp = 0xfffd;
                found = true;
            }
        } else {
            size_t b = j;
            while (j < n && alnum((unsigned char)s[j]))
                j++;
            bool semi = j < n && s[j] == ';';
            for (size_t e = 0; j > b && entities[e].name; e++)
                if (strlen(entities[e].name) == j - b &&
                    memcmp(entities[e].name, s + b, j - b) == 0 &&
                    (semi || !entities[e].semicolon)) {
                    cp = entities[e].cp;
                    found = true;
                    break;
                }
            /* not a name: its longest prefix that is one of the names
             * needing no ";" ("&copy2" is "©2"), as HTML::Parser expands */
            for (size_t end = j - b > NAME_MAX_LEN ? b + NAME_MAX_LEN : j - 1; !found && end > b;
                 end--)
                for (size_t e = 0; entities[e].name; e++)
                    if (!entities[e].semicolon && strlen(entities[e].name) == end - b &&
                        memcmp(entities[e].name, s + b, end - b) == 0) {
                        cp = entities[e].cp;
                        found = true;
                        j = end;
                        break;
                    }
        }
        if (!found) {
            memcpy(o + k, s + i, j - i);
            k += j - i;
            i = j;
            continue;
        }
        if (j < n && s[j] == ';')
            j++;
        k += put_utf8(o + k, cp);
        i = j;
    }
    o[k] = '\0';
    *outn = k;
    return o;
}

/* ---- colours (HTML.pm's name_to_rgb) ---- */

/* A decimal number, saturated: Perl's would be a float past 2^53 anyway. */
static const char *digits(const char *q, unsigned long long *v)
{
    *v = 0;
    while (*q >= '0' && *q <= '9') {
        if (*v < 1000000000000000ull)
            *v = *v * 10 + (unsigned long long)(*q - '0');
        q++;
    }
    return q;
}

/* rgb\((\d+)%?,\s*(\d+)%?,\s*(\d+)%?\s*\) anywhere in c, the first match */
static bool rgb_match(const char *c, bool pct, unsigned long long v[3])
{
    for (const char *r = strstr(c, "rgb("); r != NULL; r = strstr(r + 1, "rgb(")) {
        const char *q = r + 4;
        bool ok = true;
        for (int k = 0; k < 3 && ok; k++) {
            if (!(*q >= '0' && *q <= '9')) {
                ok = false;
                break;
            }
            q = digits(q, &v[k]);
            if (pct && *q++ != '%') {
                ok = false;
                break;
            }
            if (k < 2) {
                if (*q++ != ',') {
                    ok = false;
                    break;
                }
                while (hspace((unsigned char)*q))
                    q++;
            }
        }
        if (!ok)
            continue;
        while (hspace((unsigned char)*q))
            q++;
        if (*q == ')')
            return true;
    }
    return false;
}

/* dec2hex: two digits at least */
static size_t dec2hex(char *o, size_t room, unsigned long long v)
{
    int n = snprintf(o, room, "%s%llx", v < 16 ? "0" : "", v);
    return n < 0 ? 0 : (size_t)n >= room ? room - 1 : (size_t)n;
}

static void name_to_rgb(const char *in, size_t n, char out[16])
{
    char *c = util_malloc(n + 1);
    if (c == NULL) {
        strcpy(out, "invalid"); /* what an unreadable colour gives */
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        c[k++] = lower(in[i]);
    c[k] = '\0';
    char *v = c;
    while (hspace((unsigned char)*v))
        v++;
    size_t vn = strlen(v);
    while (vn > 0 && hspace((unsigned char)v[vn - 1]))
        v[--vn] = '\0';
    for (size_t i = 0; colors[i].name; i++)
        if (strcmp(colors[i].name, v) == 0) {
            snprintf(out, 16, "#%06x", (unsigned)colors[i].rgb);
            free(c);
            return;
        }
    bool hexform = true;
    for (size_t i = 0; i < vn; i++)
        if (!(v[i] == '#' || (v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
            hexform = false;
    bool rgbform = false;
    for (const char *r = strstr(v, "rgb("); r != NULL && !rgbform; r = strstr(r + 1, "rgb(")) {
        const char *q = r + 4;
        while ((*q >= '0' && *q <= '9') || *q == '%' || *q == ',' || *q == ' ')
            q++;
        rgbform = *q == ')';
    }
    if (!hexform && !rgbform) {
        strcpy(out, "invalid");
        free(c);
        return;
    }
    char made[64];
    unsigned long long w[3];
    const char *col = v;
    if (rgb_match(v, true, w)) {
        size_t m = 1;
        made[0] = '#';
        for (int i = 0; i < 3; i++)
            m +=
                dec2hex(made + m, sizeof(made) - m, (unsigned long long)((double)w[i] / 100 * 255));
        col = made;
    }
    if (col == v && rgb_match(v, false, w)) {
        size_t m = 1;
        made[0] = '#';
        for (int i = 0; i < 3; i++)
            m += dec2hex(made + m, sizeof(made) - m, w[i]);
        col = made;
    }
    if (col[0] != '#') {
        strcpy(out, "invalid");
        free(c);
        return;
    }
    char h[8];
    size_t hn = 0;
    for (size_t i = 0; col[i] && hn < 7; i++)
        if ((col[i] >= '0' && col[i] <= '9') || (col[i] >= 'a' && col[i] <= 'f'))
            h[hn++] = col[i];
    if (hn > 6)
        hn = 6;
    if (hn > 3 && hn < 6)
        hn = 3;
    while (hn % 3)
        h[hn++] = '0';
    h[hn] = '\0';
    if (hn == 3)
        snprintf(out, 16, "#%c%c%c%c%c%c", h[0], h[0], h[1], h[1], h[2], h[2]);
    else
        snprintf(out, 16, "#%s", h);
    free(c);
}

/* ---- the rendered text (display_text) ---- */

static void display(struct parser *p, const char *s, size_t n, bool ws, bool invisible)
{
    if (ws) {
        if (p->have_piece && !p->last_ws && !p->last_invisible && p->text_len > p->last_start &&
            p->text[p->text_len - 1] == ' ')
            p->text_len--;
        p->last_start = p->text_len;
        text_add(p, s, n);
    } else {
        p->last_start = p->text_len;
        bool strip = p->have_piece && !invisible && p->last_ws, first = true;
        for (size_t i = 0; i < n;) {
            unsigned char c = (unsigned char)s[i];
            bool run = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == 0x0b;
            /* NBSP's octets are a blank only where SpamAssassin reads octets */
            bool nbsp = !p->chars && c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] == 0xa0;
            if (run) {
                while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' ||
                                 s[i] == '\f' || s[i] == 0x0b))
                    i++;
            } else if (nbsp) {
                i += 2;
            } else {
                text_add(p, s + i, 1);
                i++;
                first = false;
                continue;
            }
            if (!(strip && first))
                text_add(p, " ", 1);
            first = false;
        }
    }
    p->have_piece = true;
    p->last_ws = ws;
    p->last_invisible = !ws && invisible;
}

/* ---- characters as SpamAssassin's patterns see them ---- */

static uint32_t utf8_at(const char *s, size_t n, size_t i, size_t *len)
{
    unsigned char c = (unsigned char)s[i];
    size_t k = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 1;
    if (i + k > n)
        k = 1;
    uint32_t cp = k == 1 ? c : k == 2 ? c & 0x1f : k == 3 ? c & 0x0f : c & 0x07;
    for (size_t j = 1; j < k; j++) {
        if (((unsigned char)s[i + j] & 0xc0) != 0x80) {
            *len = 1;
            return c;
        }
        cp = cp << 6 | ((unsigned char)s[i + j] & 0x3f);
    }
    *len = k;
    return cp;
}

static bool uni_space(uint32_t cp)
{
    return cp == ' ' || (cp >= '\t' && cp <= '\r') || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
           cp == 0x205f || cp == 0x3000;
}

/* [^\s\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]: not a blank, not ASCII punctuation */
static bool word_class(uint32_t cp)
{
    if (uni_space(cp))
        return false;
    return !((cp >= 0x21 && cp <= 0x2f) || (cp >= 0x3a && cp <= 0x40) ||
             (cp >= 0x5b && cp <= 0x60) || (cp >= 0x7b && cp <= 0x7e));
}

static bool perl_word(int c)
{
    return alnum(c) || c == '_';
}

/* The characters of s[0..n) (code points of UTF-8, octets otherwise). */
static size_t char_count(const char *s, size_t n, bool chars)
{
    if (!chars)
        return n;
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

/* The last character of s[0..n) (code point), 0 when empty. */
static uint32_t last_char(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    size_t i = n - 1;
    while (i > 0 && n - i < 4 && ((unsigned char)s[i] & 0xc0) == 0x80)
        i--;
    size_t len;
    uint32_t cp = utf8_at(s, n, i, &len);
    return i + len == n ? cp : (unsigned char)s[n - 1];
}

/* Perl's \w over a character of a decoded part: ASCII's, and a non-ASCII
 * character that is not a blank nor in the Latin-1 punctuation block
 * (near enough for mail's scripts: letters, digits, ideographs). */
static bool uni_word(uint32_t cp)
{
    if (cp < 0x80)
        return perl_word((int)cp);
    if (uni_space(cp) || (cp >= 0xa1 && cp <= 0xbf && cp != 0xaa && cp != 0xb5 && cp != 0xba) ||
        cp == 0xd7 || cp == 0xf7 || (cp >= 0x2000 && cp <= 0x206f))
        return false;
    return true;
}

/* Perl's \w as the part is read: Unicode's over characters, ASCII's over
 * octets */
static bool is_word(const struct parser *p, uint32_t cp)
{
    return p->chars ? uni_word(cp) : cp < 0x80 && perl_word((int)cp);
}

/* HTML.pm's backhair: the previous piece ends in 1-7 word characters at a
 * word boundary (Perl's leftmost match: the longest such tail), and this
 * text starts with 1-7 of them up to one (greedy: the longest); counted by
 * the pair of lengths, of which there are 49. */
static void backhair(struct parser *p, const char *text, size_t n)
{
    const char *prev = p->text + p->last_start;
    size_t pn = p->text_len - p->last_start;
    /* the previous piece's last 8 characters, last first (enough to see
     * a run of 7 and what stands before it) */
    uint32_t tail[8];
    size_t nt = 0, e = pn;
    while (e > 0 && nt < 8) {
        size_t b = e - 1, len = 1;
        while (p->chars && b > 0 && e - b < 4 && ((unsigned char)prev[b] & 0xc0) == 0x80)
            b--;
        uint32_t cp = p->chars ? utf8_at(prev, e, b, &len) : (unsigned char)prev[b];
        if (b + len != e) { /* not one whole character: its last octet alone */
            cp = (unsigned char)prev[e - 1];
            b = e - 1;
        }
        tail[nt++] = cp;
        e = b;
    }
    size_t run = 0;
    while (run < nt && run < 7 && word_class(tail[run]))
        run++;
    size_t start = 0;
    for (size_t k = run; k >= 1 && start == 0; k--)
        if ((k < nt && is_word(p, tail[k])) != is_word(p, tail[k - 1]))
            start = k;
    if (start == 0)
        return;
    uint32_t head[8];
    size_t nh = 0;
    for (size_t i = 0; i < n && nh < 8;) {
        size_t len = 1;
        head[nh++] = p->chars ? utf8_at(text, n, i, &len) : (unsigned char)text[i];
        i += len;
    }
    size_t lead = 0;
    while (lead < nh && lead < 7 && word_class(head[lead]))
        lead++;
    for (size_t k = lead; k >= 1; k--)
        if (is_word(p, head[k - 1]) != (k < nh && is_word(p, head[k]))) {
            p->backhair |= (uint64_t)1 << ((start - 1) * 7 + (k - 1));
            return;
        }
}

/* ---- HTML.pm's handlers ---- */

static const struct style *top(const struct parser *p)
{
    return &p->st[p->nst - 1];
}

static void last6(const char *c, char out[7])
{
    size_t n = strlen(c), k = n > 6 ? 6 : n;
    memcpy(out, c + n - k, k);
    out[k] = '\0';
}

static bool hex6(const char *c, int rgb[3])
{
    if (*c == '#')
        c++;
    if (strlen(c) != 6)
        return false;
    for (int i = 0; i < 6; i++)
        if (!((c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'f')))
            return false;
    for (int i = 0; i < 3; i++) {
        char h[3] = {c[2 * i], c[2 * i + 1], 0};
        rgb[i] = (int)strtol(h, NULL, 16);
    }
    return true;
}

static bool font_invisible(struct parser *p)
{
    const struct style *s = top(p);
    char f6[7], b6[7];
    last6(s->fg, f6);
    last6(s->bg, b6);
    if (strcmp(f6, b6) == 0) {
        p->out->font_low_contrast = true;
        return true;
    }
    int a[3], b[3];
    if (hex6(s->fg, a) && hex6(s->bg, b)) {
        double r = a[0] - b[0], g = a[1] - b[1], bl = a[2] - b[2];
        double d = sqrt(pow(0.2126 * r, 2) + pow(0.7152 * g, 2) + pow(0.0722 * bl, 2));
        if (d < 12) {
            p->out->font_low_contrast = true;
            return true;
        }
    }
    if (strcmp(s->fg, "invalid") == 0 || strcmp(s->bg, "invalid") == 0) {
        p->out->font_invalid_color = true;
        return true;
    }
    return s->size <= 1 || s->display_none || s->hidden;
}

static void on_text(struct parser *p, const char *raw, size_t rn)
{
    if (rn == 0 || p->ms == MS_IGNORE)
        return;
    size_t n = rn;
    char *dec = NULL;
    const char *text = raw;
    if (!p->is_cdata) {
        dec = decode(p, raw, rn, &n);
        if (dec == NULL)
            return;
        text = dec;
    }
    struct sa_html_part *o = p->out;
    if (inside(p, "script") > 0) {
        strs_new_item(p, &o->script);
        strs_append(p, &o->script, text, n);
        goto done;
    }
    if (inside(p, "style") > 0)
        goto done;
    if (inside(p, "a") > 0)
        strs_append(p, &o->anchor, text, n);
    if (inside(p, "title") > 0)
        strs_append(p, &o->title, text, n);
    bool invisible = false;
    bool visible_text = false;
    for (size_t i = 0; i < n && !visible_text; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == 0x0b)
            continue;
        if (!p->chars && c == 0xc2 && i + 1 < n && (unsigned char)text[i + 1] == 0xa0) {
            i++;
            continue;
        }
        visible_text = true;
    }
    if (visible_text)
        invisible = font_invisible(p);
    if (p->have_piece) {
        size_t len;
        uint32_t first = utf8_at(text, n, 0, &len);
        uint32_t last = last_char(p->text + p->last_start, p->text_len - p->last_start);
        if (word_class(first) && p->text_len > p->last_start && word_class(last))
            o->obfuscation++;
        backhair(p, text, n);
    }
    display(p, text, n, false, invisible);
done:
    free(dec);
}

static void on_comment(struct parser *p, const char *s, size_t n)
{
    if (p->ms == MS_IGNORE)
        return;
    strs_new_item(p, &p->out->comment);
    strs_append(p, &p->out->comment, s, n);
}

static void fire_pending(struct parser *p);

static void on_declaration(struct parser *p, const char *s, size_t n)
{
    fire_pending(p);
    if (p->ms == MS_IGNORE)
        return;
    if (n >= 9 && strncasecmp(s, "<!doctype", 9) == 0) {
        p->out->elements++;
        p->out->tags_n++;
        bool is_new;
        struct sa_html_tag *t = tag_get(p, "!doctype", 8, &is_new);
        if (t != NULL)
            t->inside = 0;
    }
}

static const char *attr_get(const struct attr *a, size_t na, const char *name)
{
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].name, name) == 0)
            return a[i].value;
    return NULL;
}

static void push_style(struct parser *p, const struct style *s)
{
    if (!grow(p, &p->st, &p->st_cap, p->nst + 1, sizeof(*p->st)))
        return;
    p->st[p->nst++] = *s;
}

static const char *style_tag_name(const char *tag)
{
    for (size_t i = 0; text_style_tags[i]; i++)
        if (strcmp(text_style_tags[i], tag) == 0)
            return text_style_tags[i];
    return "td";
}

static bool stack_has(const struct parser *p, const char *tag)
{
    for (size_t i = 0; i < p->nst; i++)
        if (strcmp(p->st[i].tag, tag) == 0)
            return true;
    return false;
}

static void close_table_tag(struct parser *p, const char *tag)
{
    if (!stack_has(p, tag))
        return;
    while (p->nst > 1) {
        const char *t = p->st[p->nst - 1].tag;
        bool font_td = strcmp(t, "font") == 0 || strcmp(t, "td") == 0;
        if ((strcmp(tag, "td") == 0 && font_td) ||
            (strcmp(tag, "tr") == 0 && (font_td || strcmp(t, "tr") == 0)))
            p->nst--;
        else
            break;
    }
}

static void close_tag(struct parser *p, const char *tag)
{
    if (!stack_has(p, tag))
        return;
    while (p->nst > 0) {
        const char *t = p->st[--p->nst].tag;
        if (strcmp(t, tag) == 0)
            break;
    }
}

/* Perl's /^\s*([+-]?\d+)/ reading of a size: false without digits. */
static bool lead_int(const char *s, bool sign, double *v)
{
    while (hspace((unsigned char)*s))
        s++;
    const char *d = s;
    if (sign) {
        if (*d != '+' && *d != '-')
            return false;
        d++;
    }
    if (!(*d >= '0' && *d <= '9'))
        return false;
    double x = 0;
    while (*d >= '0' && *d <= '9')
        x = x * 10 + (*d++ - '0');
    *v = sign && *s == '-' ? -x : x;
    return true;
}

static bool ok_attribute(const char *tag, const char *name)
{
    if (strcmp(tag, "basefont") == 0 || strcmp(tag, "font") == 0)
        return strcmp(name, "color") == 0 || strcmp(name, "face") == 0 || strcmp(name, "size") == 0;
    if (strcmp(tag, "body") == 0)
        return strcmp(name, "text") == 0 || strcmp(name, "bgcolor") == 0 ||
               strcmp(name, "link") == 0 || strcmp(name, "alink") == 0 ||
               strcmp(name, "vlink") == 0 || strcmp(name, "background") == 0;
    if (strcmp(tag, "marquee") == 0)
        return strcmp(name, "bgcolor") == 0 || strcmp(name, "background") == 0;
    if (strcmp(tag, "table") == 0 || strcmp(tag, "td") == 0 || strcmp(tag, "th") == 0 ||
        strcmp(tag, "tr") == 0)
        return strcmp(name, "bgcolor") == 0 || strcmp(name, "style") == 0;
    if (strcmp(tag, "span") == 0 || strcmp(tag, "p") == 0 || strcmp(tag, "div") == 0 ||
        strcmp(tag, "a") == 0)
        return strcmp(name, "style") == 0;
    return false;
}

/* Where the last layer of v[0..n) begins: after its last comma outside
 * quotes and parentheses (0 when there is none) */
static size_t css_last_layer(const char *v, size_t n)
{
    size_t layer = 0;
    int depth = 0;
    char quote = 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (quote) {
            if (c == quote)
                quote = 0;
        } else if (depth > 0) {
            if (c == ')')
                depth = 0;
            else if (c == '"' || c == '\'')
                quote = c;
        } else if (c == '(') {
            depth = 1;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == ',') {
            layer = i + 1;
        }
    }
    return layer;
}

/* parse_css_background's last layer, its first token that is a colour */
static void css_background(const char *v, size_t n, char bg[16])
{
    size_t layer = css_last_layer(v, n);
    /* a comma ending the value leaves an empty layer: the one before is last */
    size_t from = layer, to = n;
    bool empty = true;
    for (size_t i = from; i < to; i++)
        if (v[i] != ' ')
            empty = false;
    if (empty && layer > 0) {
        to = layer - 1;
        from = css_last_layer(v, to);
    }
    /* its tokens: split at blanks outside quotes and parentheses */
    size_t i = from;
    while (i < to) {
        while (i < to && v[i] == ' ')
            i++;
        size_t b = i;
        int depth = 0;
        char quote = 0;
        while (i < to) {
            char c = v[i];
            if (quote) {
                if (c == quote)
                    quote = 0;
            } else if (depth > 0) {
                if (c == ')') {
                    depth = 0;
                    i++;
                    break;
                } else if (c == '"' || c == '\'') {
                    quote = c;
                }
            } else if (c == ' ') {
                break;
            } else if (c == '(') {
                depth = 1;
            } else if (c == '"' || c == '\'') {
                quote = c;
            }
            i++;
        }
        if (i > b) {
            char col[16];
            name_to_rgb(v + b, i - b, col);
            if (strcmp(col, "invalid") != 0) {
                memcpy(bg, col, 16);
                return;
            }
        }
    }
}

/* strcasestr over ASCII, without needing _GNU_SOURCE */
static const char *ci_find(const char *s, const char *w)
{
    size_t n = strlen(w);
    for (; *s; s++)
        if (strncasecmp(s, w, n) == 0)
            return s;
    return NULL;
}

static bool ieq_prefix(const char *s, const char *pre)
{
    return strncasecmp(s, pre, strlen(pre)) == 0;
}

static void apply_style(struct style *nw, const struct style *parent, const char *v)
{
    size_t n = strlen(v);
    for (size_t b = 0; b <= n;) {
        const char *semi = memchr(v + b, ';', n - b);
        size_t e = semi ? (size_t)(semi - v) : n;
        /* one declaration, trimmed as the patterns' \s* trim it */
        size_t s = b, t = e;
        while (s < t && hspace((unsigned char)v[s]))
            s++;
        while (t > s && hspace((unsigned char)v[t - 1]))
            t--;
        char d[512];
        size_t dn = t - s < sizeof(d) - 1 ? t - s : sizeof(d) - 1;
        memcpy(d, v + s, dn);
        d[dn] = '\0';
        bool bgc = ieq_prefix(d, "background-color:"), fgc = !bgc && ieq_prefix(d, "color:");
        if (bgc || fgc) {
            const char *val = d + (bgc ? 17 : 6);
            while (hspace((unsigned char)*val))
                val++;
            char lv[512];
            size_t ln = strlen(val);
            for (size_t i = 0; i <= ln; i++)
                lv[i] = lower(val[i]);
            if (ln > 0) {
                /* s/\s*!\s*important$// */
                if (ln >= 9 && strcmp(lv + ln - 9, "important") == 0) {
                    size_t k = ln - 9;
                    while (k > 0 && hspace((unsigned char)lv[k - 1]))
                        k--;
                    if (k > 0 && lv[k - 1] == '!') {
                        k--;
                        while (k > 0 && hspace((unsigned char)lv[k - 1]))
                            k--;
                        lv[k] = '\0';
                        ln = k;
                    }
                }
                char *target = bgc ? nw->bg : nw->fg;
                if (strstr(lv, "rgb") != NULL) {
                    unsigned long c[3] = {0, 0, 0};
                    int k = 0;
                    bool digits = false;
                    unsigned long cur = 0;
                    for (size_t i = 0; i <= ln && k < 3; i++) {
                        char ch = lv[i];
                        if (ch >= '0' && ch <= '9') {
                            if (cur < 100000)
                                cur = cur * 10 + (unsigned long)(ch - '0');
                            digits = true;
                        } else if (ch == ',' || ch == '\0') {
                            if (ch == ',' || digits)
                                c[k++] = cur > 255 ? 255 : cur;
                            cur = 0;
                            digits = false;
                        }
                    }
                    snprintf(target, 16, "#%02lx%02lx%02lx", c[0], c[1], c[2]);
                } else if (strcmp(lv, "inherit") == 0) {
                } else if (strcmp(lv, "transparent") == 0) {
                    strcpy(target, "transparent");
                } else {
                    name_to_rgb(lv, ln, target);
                }
            }
        } else if (strncmp(d, "background:", 11) == 0) {
            const char *val = d + 11;
            while (hspace((unsigned char)*val))
                val++;
            if (*val) {
                char lv[512];
                size_t ln = strlen(val);
                for (size_t i = 0; i <= ln; i++)
                    lv[i] = lower(val[i]);
                css_background(lv, ln, nw->bg);
            }
        } else {
            /* ([a-z_-]+)\s*:\s*(\S.*?) : only display and visibility matter */
            size_t k = 0;
            while ((d[k] >= 'a' && d[k] <= 'z') || (d[k] >= 'A' && d[k] <= 'Z') || d[k] == '_' ||
                   d[k] == '-')
                k++;
            size_t nk = k;
            while (hspace((unsigned char)d[k]))
                k++;
            if (nk > 0 && d[k] == ':') {
                k++;
                while (hspace((unsigned char)d[k]))
                    k++;
                if (d[k]) {
                    if (nk == 7 && strncmp(d, "display", 7) == 0)
                        nw->display_none = strcasecmp(d + k, "none") == 0;
                    else if (nk == 10 && strncmp(d, "visibility", 10) == 0)
                        nw->hidden = strcasecmp(d + k, "hidden") == 0;
                }
            }
        }
        b = e + 1;
    }
    if (strcmp(nw->bg, "transparent") == 0)
        memcpy(nw->bg, parent->bg, 16);
    if (strcmp(nw->fg, "transparent") == 0)
        memcpy(nw->fg, nw->bg, 16);
}

static void text_style(struct parser *p, const char *tag, const struct attr *a, size_t na, int num)
{
    if (strcmp(tag, "th") == 0)
        tag = "td";
    if (num != 1) {
        if (strcmp(tag, "body") != 0)
            close_tag(p, tag);
        return;
    }
    if (strcmp(tag, "basefont") == 0) {
        const char *sz = attr_get(a, na, "size");
        double v;
        if (sz != NULL && lead_int(sz, false, &v)) {
            p->basefont = v;
            return;
        }
    }
    if (strcmp(tag, "td") == 0 || strcmp(tag, "tr") == 0)
        close_table_tag(p, tag);
    if (p->nst == 0)
        return;
    struct style nw = *top(p);
    const struct style parent = *top(p);
    nw.tag = style_tag_name(tag);
    if (strcmp(tag, "big") == 0 || strcmp(tag, "small") == 0) {
        nw.size += tag[0] == 'b' ? 1 : -1;
        push_style(p, &nw);
        return;
    }
    for (size_t i = 0; i < na; i++) {
        const char *name = a[i].name, *v = a[i].value;
        if (!ok_attribute(tag, name) || attr_get(a, i, name) != NULL)
            continue;
        if (strcmp(name, "text") == 0 || strcmp(name, "color") == 0) {
            name_to_rgb(v, strlen(v), nw.fg);
        } else if (strcmp(name, "size") == 0) {
            double x;
            if (lead_int(v, true, &x))
                nw.size = p->basefont + x;
            else if (lead_int(v, false, &x))
                nw.size = x;
        } else if (strcmp(name, "style") == 0) {
            apply_style(&nw, &parent, v);
        }
        if (nw.size > p->out->max_size)
            p->out->max_size = nw.size;
        else if (nw.size < p->out->min_size)
            p->out->min_size = nw.size;
    }
    push_style(p, &nw);
}

static void whitespace(struct parser *p, const char *tag)
{
    if (in_list(ws_line, tag))
        display(p, "\n", 1, true, false);
    else if (in_list(ws_blank, tag))
        display(p, " ", 1, true, false);
    else if (in_list(ws_para, tag))
        display(p, "\n\n", 2, true, false);
}

/* Perl's /^(\d+)(\%)?$/ over a width or height */
static double dimension(const char *v, double pct)
{
    const char *s = v;
    double x = 0;
    if (!(*s >= '0' && *s <= '9'))
        return 0;
    while (*s >= '0' && *s <= '9')
        x = x * 10 + (*s++ - '0');
    bool is_pct = *s == '%';
    if (is_pct)
        s++;
    if (!(*s == '\0' || (s[0] == '\n' && s[1] == '\0')))
        return 0;
    return is_pct ? x * pct : x;
}

static bool face_bad(struct parser *p, const char *face)
{
    if (p->face_re == NULL) {
        int err;
        PCRE2_SIZE off;
        p->face_re = pcre2_compile(
            (PCRE2_SPTR) "^\\s*[\"'.]?[a-z ][a-z -]*[a-z]\\d?[\"']?(?:,\\s*[\"']?[a-z][a-z "
                         "-]*[a-z]\\d?[\"']?)*;?$",
            PCRE2_ZERO_TERMINATED, PCRE2_CASELESS, &err, &off, NULL);
        p->face_md = p->face_re ? pcre2_match_data_create_from_pattern(p->face_re, NULL) : NULL;
        if (p->face_md == NULL) {
            p->nomem = true;
            return false;
        }
    }
    return pcre2_match(p->face_re, (PCRE2_SPTR)face, strlen(face), 0, 0, p->face_md, NULL) < 0;
}

static const char *canon_uri(struct parser *p, const char *v, size_t *n);

static void tests(struct parser *p, const char *tag, const struct attr *a, size_t na)
{
    struct sa_html_part *o = p->out;
    const char *v;
    if (strcmp(tag, "font") == 0 && (v = attr_get(a, na, "face")) != NULL && face_bad(p, v))
        o->font_face_bad = true;
    if (strcmp(tag, "img") == 0 && inside(p, "a") > 0)
        strs_append(p, &o->anchor, "<img>\n", 6);
    const char *w, *h;
    if (strcmp(tag, "img") == 0 && (w = attr_get(a, na, "width")) != NULL &&
        (h = attr_get(a, na, "height")) != NULL) {
        double width = dimension(w, 8), height = dimension(h, 6);
        if (width <= 0)
            width = 200;
        if (height <= 0)
            height = 200;
        o->image_area += width * height;
    }
    if (strcmp(tag, "form") == 0 && (v = attr_get(a, na, "action")) != NULL &&
        ci_find(v, "mailto:") != NULL)
        o->form_action_mailto = true;
    if (strcmp(tag, "object") == 0 || strcmp(tag, "embed") == 0)
        o->embeds = true;
    if (strcmp(tag, "a") == 0) {
        strs_new_item(p, &o->anchor);
        strs_append(p, &o->anchor, "", 0);
        /* anchor_last: the href as html_uri left it, canonicalised again */
        size_t hn = 0;
        const char *href = p->href ? canon_uri(p, p->href, &hn) : "";
        strs_new_item(p, &o->anchor_href);
        strs_append(p, &o->anchor_href, href, hn);
    }
    if (strcmp(tag, "title") == 0) {
        p->title_index++;
        strs_new_item(p, &o->title);
        strs_append(p, &o->title, "", 0);
    }
}

/* canon_uri: v with blanks and NBSP trimmed off both ends, cut to
 * SA_HTML_URI_MAX characters (uri_truncated then set); its length in *n */
static const char *canon_uri(struct parser *p, const char *v, size_t *n)
{
    size_t len = strlen(v);
    while (len > 0) {
        if (hspace((unsigned char)*v))
            v++, len--;
        else if (len >= 2 && (unsigned char)v[0] == 0xc2 && (unsigned char)v[1] == 0xa0)
            v += 2, len -= 2;
        else
            break;
    }
    while (len > 0) {
        if (hspace((unsigned char)v[len - 1]))
            len--;
        else if (len >= 2 && (unsigned char)v[len - 2] == 0xc2 && (unsigned char)v[len - 1] == 0xa0)
            len -= 2;
        else
            break;
    }
    size_t chars = 0, cut = len;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)v[i] & 0xc0) == 0x80)
            continue;
        if (chars++ == SA_HTML_URI_MAX) {
            cut = i;
            break;
        }
    }
    if (cut < len) {
        p->out->uri_truncated = true;
        len = cut;
    }
    *n = len;
    return v;
}

/* push_uri: a URI that only just fits is kept, for the forms made of it */
static void push_uri(struct parser *p, const char *v)
{
    size_t n;
    bool was = p->out->uri_truncated;
    p->out->uri_truncated = false;
    const char *u = canon_uri(p, v, &n);
    bool cut = p->out->uri_truncated;
    p->out->uri_truncated = was || cut;
    if (!cut && n >= SA_HTML_URI_NEAR) {
        strs_new_item(p, &p->out->long_uri);
        strs_append(p, &p->out->long_uri, u, n);
    }
}

/* The value of attribute name, or of one named like "x/name" (html_uri's
 * fix of bad markup, which then stands for it) */
static const char *uri_attr(const struct attr *a, size_t na, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < na; i++) {
        const char *sl = a[i].name;
        while ((sl = strchr(sl, '/')) != NULL) {
            if (sl > a[i].name && perl_word((unsigned char)sl[-1]) && strncmp(sl + 1, name, nl) == 0)
                return a[i].value;
            sl++;
        }
    }
    return attr_get(a, na, name);
}

/* html_uri: the URIs a start tag gives; p->href is the href an <a> keeps */
static void html_uri(struct parser *p, const char *tag, const struct attr *a, size_t na)
{
    static const char *const background[] = {"body", "table", "tr", "td", NULL};
    static const char *const links[] = {"a", "area", "link", NULL};
    static const char *const sources[] = {"img", "frame", "iframe", "embed", "script", "bgsound", NULL};
    const char *v;
    if (in_list(background, tag)) {
        if ((v = attr_get(a, na, "background")) != NULL)
            push_uri(p, v);
    } else if (in_list(links, tag)) {
        if ((v = uri_attr(a, na, "href")) != NULL) {
            /* the BOM's octets go (U+FEFF, as UTF-8) */
            size_t n = strlen(v), k = 0;
            char *h = util_malloc(n + 1);
            if (h == NULL) {
                p->nomem = true;
                return;
            }
            for (size_t i = 0; i < n; i++) {
                if (i + 2 < n + 0 && (unsigned char)v[i] == 0xef && (unsigned char)v[i + 1] == 0xbb &&
                    (unsigned char)v[i + 2] == 0xbf) {
                    i += 2;
                    continue;
                }
                h[k++] = v[i];
            }
            h[k] = '\0';
            push_uri(p, h);
            if (strcmp(tag, "a") == 0) {
                free(p->href);
                p->href = h;
            } else {
                free(h);
            }
        }
        if ((v = attr_get(a, na, "data-saferedirecturl")) != NULL)
            push_uri(p, v);
    } else if (in_list(sources, tag)) {
        if ((v = uri_attr(a, na, "src")) != NULL)
            push_uri(p, v);
    } else if (strcmp(tag, "form") == 0) {
        if ((v = attr_get(a, na, "action")) != NULL)
            push_uri(p, v);
    } else if (strcmp(tag, "base") == 0) {
        /* a true value: not "" and not "0" */
        if ((v = attr_get(a, na, "href")) != NULL && *v && strcmp(v, "0") != 0) {
            size_t n;
            const char *u = canon_uri(p, v, &n);
            char *c = util_memdup(u, n);
            if (c == NULL) {
                p->nomem = true;
                return;
            }
            push_uri(p, c);
            free(c);
        }
    } else if (strcmp(tag, "meta") == 0) {
        const char *eq = attr_get(a, na, "http-equiv"), *content = attr_get(a, na, "content");
        if (eq == NULL || content == NULL || ci_find(eq, "refresh") == NULL)
            return;
        /* the value after the last "url =" of its first line (none there:
         * the whole value), as html_uri's first substitution leaves it */
        const char *from = content, *eol = content + strcspn(content, "\n");
        for (const char *q = content; (q = ci_find(q, "url")) != NULL && q < eol; q++) {
            if (q > content && perl_word((unsigned char)q[-1]))
                continue;
            const char *r = q + 3;
            while (hspace((unsigned char)*r))
                r++;
            if (*r != '=')
                continue;
            r++;
            while (hspace((unsigned char)*r))
                r++;
            from = r;
        }
        /* its second: the first ';', the blanks before it, and the rest of
         * that line go */
        struct sa_html_strs keep = {0};
        const char *semi = strchr(from, ';');
        size_t n = strlen(from);
        if (semi != NULL) {
            size_t k = (size_t)(semi - from);
            while (k > 0 && hspace((unsigned char)from[k - 1]))
                k--;
            const char *rest = semi + strcspn(semi, "\n");
            strs_new_item(p, &keep);
            strs_append(p, &keep, from, k);
            strs_append(p, &keep, rest, strlen(rest));
            push_uri(p, keep.text ? keep.text : "");
            strs_free(&keep);
            return;
        }
        char *c = util_memdup(from, n);
        if (c == NULL) {
            p->nomem = true;
            return;
        }
        push_uri(p, c);
        free(c);
    }
}

/* The iframe's source as html_uri and push_uri take it: the src attribute
 * (or one named like "x/src"), blanks and NBSP trimmed, not empty. */
static void iframe_uri(struct parser *p, const struct attr *a, size_t na)
{
    for (size_t i = 0; i < na; i++) {
        const char *nm = a[i].name;
        const char *sl = strstr(nm, "/src");
        bool srcname = strcmp(nm, "src") == 0 || (sl != NULL && sl > nm && perl_word(sl[-1]));
        if (!srcname)
            continue;
        const char *v = a[i].value;
        size_t n = strlen(v);
        while (n > 0) {
            if (hspace((unsigned char)*v))
                v++, n--;
            else if (n >= 2 && (unsigned char)v[0] == 0xc2 && (unsigned char)v[1] == 0xa0)
                v += 2, n -= 2;
            else
                break;
        }
        while (n > 0) {
            if (hspace((unsigned char)v[n - 1]))
                n--;
            else if (n >= 2 && (unsigned char)v[n - 2] == 0xc2 && (unsigned char)v[n - 1] == 0xa0)
                n -= 2;
            else
                break;
        }
        if (n > 0)
            p->out->iframe_src = true;
    }
}

static bool namespaced(const char *tag)
{
    /* ^(?:o|st\d):[\w-]+/?$ */
    const char *s = tag;
    if (s[0] == 'o')
        s++;
    else if (s[0] == 's' && s[1] == 't' && s[2] >= '0' && s[2] <= '9')
        s += 3;
    else
        return false;
    if (*s++ != ':')
        return false;
    size_t k = 0;
    while (perl_word((unsigned char)s[k]) || s[k] == '-')
        k++;
    if (k == 0)
        return false;
    s += k;
    if (*s == '/')
        s++;
    return *s == '\0' || (s[0] == '\n' && s[1] == '\0');
}

static void on_tag(struct parser *p, const char *tag, const struct attr *a, size_t na, int num)
{
    fire_pending(p);
    if (p->ms == MS_IGNORE)
        return;
    struct sa_html_part *o = p->out;
    bool ns = namespaced(tag);
    bool element = in_list(elements, tag);
    bool is_new;
    struct sa_html_tag *t = tag_get(p, tag, strlen(tag), &is_new);
    if (t == NULL)
        return;
    if (element || ns) {
        o->elements++;
        o->elements_seen += is_new;
    }
    o->tags_n++;
    o->tags_seen += is_new;
    t->inside += num;
    if (t->inside < 0) {
        t->inside = 0;
        o->closed_extra++;
    }
    if (ns || !(element || in_list(tricks, tag)))
        return;
    if (in_list(text_style_tags, tag))
        text_style(p, tag, a, na, num);
    whitespace(p, tag);
    if (num == 1) {
        if (strcmp(tag, "iframe") == 0)
            iframe_uri(p, a, na);
        free(p->href);
        p->href = NULL;
        if (in_list(elements_uri, tag))
            html_uri(p, tag, a, na);
        tests(p, tag, a, na);
    }
}

static void fire_pending(struct parser *p)
{
    if (p->pending_end == NULL)
        return;
    const char *t = p->pending_end;
    p->pending_end = NULL;
    on_tag(p, t, NULL, 0, -1);
}

/* ---- the tokenizer (HTML::Parser's hparser.c) ---- */

struct buf {
    const char *b;
    size_t end;
};

static int at(const struct buf *B, size_t i)
{
    return i < B->end ? (unsigned char)B->b[i] : 0;
}

#define NONE ((size_t)-1)

static void end_tag_event(struct parser *p, const char *s, size_t n)
{
    char name[64];
    char *big = NULL;
    char *t = name;
    if (n >= sizeof(name)) {
        big = util_malloc(n + 1);
        if (big == NULL) {
            p->nomem = true;
            return;
        }
        t = big;
    }
    for (size_t i = 0; i < n; i++)
        t[i] = lower(s[i]);
    t[n] = '\0';
    on_tag(p, t, NULL, 0, -1);
    free(big);
}

static void free_attrs(struct attr *a, size_t na)
{
    for (size_t i = 0; i < na; i++) {
        free(a[i].name);
        free(a[i].value);
    }
}

static size_t parse_start(struct parser *p, const struct buf *B, size_t beg)
{
    const char *b = B->b;
    size_t end = B->end, s = beg + 2;
    struct attr a[ATTR_MAX];
    size_t na = 0;
    size_t result = beg; /* premature until the ">" */
    while (s < end && not_space_gt((unsigned char)b[s]))
        s++;
    size_t tag_end = s;
    while (s < end && hspace((unsigned char)b[s]))
        s++;
    if (s == end)
        goto out;
    while (s < end && not_space_gt((unsigned char)b[s])) {
        size_t nb = s++;
        while (s < end && not_space_gt((unsigned char)b[s]) && b[s] != '=')
            s++;
        if (s == end)
            goto out;
        size_t ne = s;
        while (s < end && hspace((unsigned char)b[s]))
            s++;
        if (s == end)
            goto out;
        size_t vb = 0, ve = 0;
        bool has_value = false, stop = false;
        if (b[s] == '=') {
            s++;
            while (s < end && hspace((unsigned char)b[s]))
                s++;
            if (s == end)
                goto out;
            if (b[s] == '>') {
                vb = ve = s;
                has_value = true;
                stop = true;
            } else if (b[s] == '"' || b[s] == '\'') {
                char q = b[s++];
                vb = s;
                while (s < end && b[s] != q)
                    s++;
                if (s == end)
                    goto out;
                ve = s++;
                has_value = true;
            } else {
                vb = s;
                while (s < end && not_space_gt((unsigned char)b[s]))
                    s++;
                if (s == end)
                    goto out;
                ve = s;
                has_value = true;
            }
            if (!stop) {
                while (s < end && hspace((unsigned char)b[s]))
                    s++;
                if (s == end)
                    goto out;
            }
        }
        if (na < ATTR_MAX) {
            char *name = util_strndup(b + nb, ne - nb);
            size_t vn;
            char *value =
                has_value ? decode(p, b + vb, ve - vb, &vn) : util_strndup(b + nb, ne - nb);
            if (name == NULL || value == NULL) {
                free(name);
                free(value);
                p->nomem = true;
                goto out;
            }
            for (char *q = name; *q; q++)
                *q = lower(*q);
            if (!has_value)
                for (char *q = value; *q; q++)
                    *q = lower(*q);
            a[na].name = name;
            a[na].value = value;
            na++;
        }
        if (stop)
            break;
    }
    if (s < end && b[s] == '>') {
        s++;
        size_t tn = tag_end - (beg + 1);
        char *tag = util_strndup(b + beg + 1, tn);
        if (tag == NULL) {
            p->nomem = true;
            goto out;
        }
        for (char *q = tag; *q; q++)
            *q = lower(*q);
        on_tag(p, tag, a, na, 1);
        for (size_t i = 0; literal_tags[i].name; i++)
            if (strcmp(tag, literal_tags[i].name) == 0) {
                p->literal = literal_tags[i].name;
                p->is_cdata = literal_tags[i].cdata;
                break;
            }
        free(tag);
        result = s;
    } else {
        result = NONE;
    }
out:
    free_attrs(a, na);
    return result;
}

static size_t skip_until_gt(const struct buf *B, size_t s)
{
    char quote = 0, prev = ' ';
    while (s < B->end) {
        char c = B->b[s];
        if (!quote && c == '>')
            return s;
        if (c == '"' || c == '\'') {
            if (c == quote)
                quote = 0;
            else if (!quote && (prev == ' ' || prev == '='))
                quote = c;
        }
        prev = B->b[s++];
    }
    return B->end;
}

static size_t parse_end(struct parser *p, const struct buf *B, size_t beg)
{
    size_t s = beg + 2, end = B->end;
    if (s < end && not_space_gt(at(B, s))) {
        size_t nb = s++;
        while (s < end && not_space_gt((unsigned char)B->b[s]))
            s++;
        size_t ne = s;
        s = skip_until_gt(B, s);
        if (s < end) {
            s++;
            end_tag_event(p, B->b + nb, ne - nb);
            return s;
        }
        return beg;
    }
    s = skip_until_gt(B, s);
    if (s < end) {
        s++;
        on_comment(p, B->b + beg, s - beg);
        return s;
    }
    return beg;
}

/* after "<!--" at beg: the comment's end, beg when it is not there yet */
static size_t parse_comment(struct parser *p, const struct buf *B, size_t beg)
{
    size_t s = beg, end = B->end;
    if (p->no_dash_dash) {
        while (s < end && B->b[s] != '>')
            s++;
        if (s < end) {
            s++;
            on_comment(p, B->b + beg - 4, s - (beg - 4));
            return s;
        }
        return beg;
    }
    for (;;) {
        while (s < end && B->b[s] != '-')
            s++;
        size_t tok_end = s;
        if (s >= end)
            return beg;
        s++;
        if (at(B, s) == '-') {
            s++;
            while (hspace(at(B, s)))
                s++;
            if (at(B, s) == '>') {
                s++;
                on_comment(p, B->b + beg - 4, s - (beg - 4));
                return s;
            }
        }
        if (s >= end)
            return beg;
        s = tok_end + 1;
    }
}

static void ms_update(struct parser *p)
{
    p->ms = MS_NONE;
    for (size_t i = 0; i < p->ms_n; i++)
        if (p->ms_stack[i] > p->ms)
            p->ms = (enum ms_type)p->ms_stack[i];
    p->is_cdata = p->ms == MS_CDATA;
}

static void ms_pop(struct parser *p)
{
    if (p->ms_n > 0)
        p->ms_n--;
    ms_update(p);
}

/* "<![": a marked section's start; NONE when it is not one, beg when cut */
static size_t parse_marked(struct parser *p, const struct buf *B, size_t beg)
{
    size_t s = beg + 3, end = B->end;
    enum ms_type type = MS_NONE;
    bool tokens = false;
    for (;;) {
        while (hspace(at(B, s)))
            s++;
        while (name_first(at(B, s))) {
            size_t nb = s++;
            while (name_char(at(B, s)))
                s++;
            size_t nn = s - nb;
            while (hspace(at(B, s)))
                s++;
            if (s >= end)
                return beg;
            tokens = true;
            enum ms_type t = MS_NONE;
            const char *nm = B->b + nb;
            if (nn == 7 && strncasecmp(nm, "include", 7) == 0)
                t = MS_INCLUDE;
            else if (nn == 6 && strncasecmp(nm, "rcdata", 6) == 0)
                t = MS_RCDATA;
            else if (nn == 5 && strncasecmp(nm, "cdata", 5) == 0)
                t = MS_CDATA;
            else if (nn == 6 && strncasecmp(nm, "ignore", 6) == 0)
                t = MS_IGNORE;
            if (t > type)
                type = t;
        }
        if (at(B, s) == '-') {
            s++;
            if (at(B, s) != '-')
                return NONE;
            s++;
            for (;;) {
                while (s < end && B->b[s] != '-')
                    s++;
                if (s >= end)
                    return beg;
                s++;
                if (at(B, s) == '-') {
                    s++;
                    break;
                }
            }
            continue;
        }
        break;
    }
    if (at(B, s) != '[')
        return NONE;
    s++;
    if (!tokens)
        type = MS_INCLUDE;
    fire_pending(p);
    if (!grow(p, &p->ms_stack, &p->ms_cap, p->ms_n + 1, 1))
        return s;
    p->ms_stack[p->ms_n++] = (unsigned char)type;
    ms_update(p);
    return s;
}

static size_t decl_fail(struct parser *p, const struct buf *B, size_t beg, size_t s)
{
    while (s < B->end && B->b[s] != '>')
        s++;
    if (s < B->end) {
        s++;
        on_comment(p, B->b + beg, s - beg);
        return s;
    }
    return beg;
}

static size_t parse_decl(struct parser *p, const struct buf *B, size_t beg)
{
    size_t s = beg + 2, end = B->end;
    const char *b = B->b;
    if (at(B, s) == '-') {
        s++;
        if (s >= end)
            return beg;
        if (b[s] != '-')
            return decl_fail(p, B, beg, s);
        s++;
        size_t r = parse_comment(p, B, s);
        return r == s ? beg : r;
    }
    if (at(B, s) == '[') {
        size_t r = parse_marked(p, B, beg);
        return r == NONE ? decl_fail(p, B, beg, s) : r;
    }
    if (at(B, s) == '>') {
        s++;
        on_comment(p, b + beg, s - beg);
        return s;
    }
    int c = at(B, s);
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
        return decl_fail(p, B, beg, s);
    size_t id = s++;
    while (s < end && name_char((unsigned char)b[s]))
        s++;
    if (s >= end)
        return beg;
    size_t idn = s - id;
    if (!((idn == 7 && strncasecmp(b + id, "doctype", 7) == 0) ||
          (idn == 6 && strncasecmp(b + id, "entity", 6) == 0)))
        return decl_fail(p, B, beg, s);
    for (;;) {
        while (s < end && hspace((unsigned char)b[s]))
            s++;
        if (s >= end)
            return beg;
        if (b[s] == '"' || b[s] == '\'') {
            char q = b[s++];
            while (s < end && b[s] != q)
                s++;
            if (s >= end)
                return beg;
            s++;
        } else if (b[s] == '-') {
            s++;
            if (s >= end)
                return beg;
            if (b[s] != '-')
                return decl_fail(p, B, beg, s);
            s++;
            for (;;) {
                while (s < end && b[s] != '-')
                    s++;
                if (s >= end)
                    return beg;
                s++;
                if (s >= end)
                    return beg;
                if (b[s] == '-') {
                    s++;
                    break;
                }
            }
        } else if (b[s] != '>') {
            s++;
            while (s < end && not_space_gt((unsigned char)b[s]))
                s++;
            if (s >= end)
                return beg;
        } else {
            break;
        }
    }
    s++;
    on_declaration(p, b + beg, s - beg);
    return s;
}

static size_t parse_process(struct parser *p, const struct buf *B, size_t beg)
{
    for (size_t s = beg + 2; s < B->end; s++)
        if (B->b[s] == '>') {
            fire_pending(p);
            return s + 1;
        }
    return beg;
}

/* parse_buf: from s, as far as the input decides; where it stopped */
static size_t parse_buf(struct parser *p, const struct buf *B, size_t s)
{
    const char *b = B->b;
    size_t end = B->end, t = s;
    for (;;) {
        if (p->nomem)
            return end;
        while (p->literal) {
            const char *l = p->literal;
            while (s < end && b[s] != '<')
                s++;
            if (s >= end)
                return t;
            size_t end_text = s++;
            if (at(B, s) == '/') {
                s++;
                size_t k = 0;
                while (l[k] && lower((char)at(B, s)) == l[k])
                    s++, k++;
                if (!l[k] && strcmp(l, "plaintext") != 0) {
                    size_t nb = end_text + 2, ne = s;
                    while (hspace(at(B, s)))
                        s++;
                    if (at(B, s) == '>') {
                        s++;
                        if (t != end_text)
                            on_text(p, b + t, end_text - t);
                        end_tag_event(p, b + nb, ne - nb);
                        p->literal = NULL;
                        p->is_cdata = false;
                        t = s;
                    }
                }
            }
        }
        while (p->ms == MS_CDATA || p->ms == MS_RCDATA) {
            while (s < end && b[s] != ']')
                s++;
            if (s < end) {
                size_t end_text = s++;
                if (at(B, s) == ']' && at(B, s + 1) == '>') {
                    s += 2;
                    if (t != end_text)
                        on_text(p, b + t, end_text - t);
                    fire_pending(p);
                    t = s;
                    ms_pop(p);
                    continue;
                }
            }
            if (s >= end)
                return t;
        }
        while (s < end && b[s] != '<') {
            if (p->ms != MS_NONE && b[s] == ']') {
                size_t end_text = s++;
                if (at(B, s) == ']') {
                    s++;
                    if (at(B, s) == '>') {
                        s++;
                        on_text(p, b + t, end_text - t);
                        fire_pending(p);
                        t = s;
                        ms_pop(p);
                        continue;
                    }
                }
            }
            s++;
        }
        if (s > end)
            s = end;
        if (s != t) {
            if (s < end && b[s] == '<') {
                on_text(p, b + t, s - t);
                t = s;
            } else {
                /* the text ends the input: the last word (and blanks) wait */
                long q = (long)s - 1, lt = (long)t;
                if (hspace((unsigned char)b[q])) {
                    while (q >= lt && hspace((unsigned char)b[q]))
                        q--;
                } else {
                    while (q >= lt && !hspace((unsigned char)b[q]))
                        q--;
                    while (q >= lt && hspace((unsigned char)b[q]))
                        q--;
                }
                s = (size_t)(q + 1);
                if (s != t)
                    on_text(p, b + t, s - t);
                return s;
            }
        }
        if (end - s < 3)
            return s;
        int c = at(B, s + 1);
        size_t np = NONE;
        if (name_first(c))
            np = parse_start(p, B, t);
        else if (c == '/')
            np = parse_end(p, B, t);
        else if (c == '!')
            np = parse_decl(p, B, t);
        else if (c == '?')
            np = parse_process(p, B, t);
        s++;
        if (np != NONE) {
            if (np == t)
                return t;
            t = s = np;
        }
    }
}

/* HTML::Parser's eof: what is left in its buffer */
static void parse_eof(struct parser *p, const struct buf *B, size_t s)
{
    size_t end = B->end;
    while (s < end && !p->nomem) {
        if (p->literal) {
            const char *l = p->literal;
            if (strcmp(l, "plaintext") == 0 || strcmp(l, "xmp") == 0 || strcmp(l, "iframe") == 0 ||
                strcmp(l, "textarea") == 0)
                break;
            if (strcmp(l, "script") == 0 || strcmp(l, "style") == 0)
                on_tag(p, l, NULL, 0, -1);
            else
                p->pending_end = l;
            p->literal = NULL;
            s = parse_buf(p, B, s);
            continue;
        }
        if (!p->no_dash_dash && B->b[s] == '<') {
            p->no_dash_dash = true;
            s = parse_buf(p, B, s);
            continue;
        }
        if (B->b[s] == '<') {
            int c = at(B, s + 1);
            if (s + 1 == end || name_first(c) || c == '/' || c == '!' || c == '?') {
                on_comment(p, B->b + s, end - s);
                s = end;
            }
        }
        break;
    }
    if (s < end)
        on_text(p, B->b + s, end - s);
    fire_pending(p);
}

/* ---- the whole part ---- */

/* HTML.pm's parse() before HTML::Parser sees the text, its three
 * substitutions in turn: &nbsp; a blank, <x/> as <x>, the curly double
 * quotes straight (as octets: the UTF-8 the model gives).  Each only
 * shortens, so they run in place over one copy. */
static char *prepare(const char *h, size_t n, size_t *out_n)
{
    char *o = util_malloc(n + 1);
    if (o == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (h[i] == '&' && n - i >= 6 && memcmp(h + i, "&nbsp;", 6) == 0) {
            o[k++] = ' ';
            i += 6;
        } else {
            o[k++] = h[i++];
        }
    }
    n = k;
    k = 0;
    for (size_t i = 0; i < n;) {
        if (o[i] == '<' && i + 1 < n && perl_word((unsigned char)o[i + 1])) {
            size_t j = i + 1;
            while (j < n && perl_word((unsigned char)o[j]))
                j++;
            size_t w = j;
            while (j < n && hspace((unsigned char)o[j]))
                j++;
            memmove(o + k, o + i, w - i);
            k += w - i;
            if (j + 1 < n && o[j] == '/' && o[j + 1] == '>') {
                o[k++] = '>';
                i = j + 2;
            } else {
                i = w;
            }
            continue;
        }
        o[k++] = o[i++];
    }
    n = k;
    k = 0;
    for (size_t i = 0; i < n;) {
        if ((unsigned char)o[i] == 0xe2 && n - i >= 3 && (unsigned char)o[i + 1] == 0x80 &&
            ((unsigned char)o[i + 2] == 0x9c || (unsigned char)o[i + 2] == 0x9d)) {
            o[k++] = '"';
            i += 3;
        } else {
            o[k++] = o[i++];
        }
    }
    o[k] = '\0';
    *out_n = k;
    return o;
}

void sa_html_part_free(struct sa_html_part *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->tags_cap; i++)
        free(p->tags[i].name);
    free(p->tags);
    strs_free(&p->title);
    strs_free(&p->comment);
    strs_free(&p->anchor);
    strs_free(&p->script);
    strs_free(&p->anchor_href);
    strs_free(&p->long_uri);
    *p = (struct sa_html_part){0};
}

int sa_html_parse(const char *html, size_t len, struct sa_html_part *out)
{
    *out = (struct sa_html_part){0};
    struct parser p = {.out = out, .basefont = 3, .title_index = -1};
    for (size_t i = 0; i < len && !p.chars; i++)
        p.chars = (unsigned char)html[i] >= 0x80;
    out->length = (double)char_count(html, len, true);
    out->max_size = out->min_size = 3;
    struct style def = {.tag = "default", .fg = "#000000", .bg = "#ffffff", .size = 3};
    push_style(&p, &def);
    size_t n;
    char *text = prepare(html, len, &n);
    if (text == NULL) {
        p.nomem = true;
        goto done;
    }
    struct buf B = {text, n};
    size_t s = parse_buf(&p, &B, 0);
    /* SpamAssassin's "</style>", "</script>" until the element is closed */
    static const char *const closers[] = {"style", "script"};
    for (size_t c = 0; c < 2 && !p.nomem; c++) {
        for (int tries = 0; tries < CLOSE_TRIES && inside(&p, closers[c]) > 0 && !p.nomem;
             tries++) {
            size_t rest = B.end - s, cn = strlen(closers[c]) + 3;
            char *nb = util_malloc(rest + cn + 1);
            if (nb == NULL) {
                p.nomem = true;
                break;
            }
            memcpy(nb, B.b + s, rest);
            snprintf(nb + rest, cn + 1, "</%s>", closers[c]);
            free(text);
            text = nb;
            B = (struct buf){text, rest + cn};
            s = parse_buf(&p, &B, 0);
        }
    }
    if (!p.nomem)
        parse_eof(&p, &B, s);
    if (!p.nomem) {
        out->html_length = (double)char_count(p.text, p.text_len, p.chars);
        size_t spaces = 0;
        for (size_t i = 0; i < p.text_len;) {
            size_t l;
            uint32_t cp = p.chars ? utf8_at(p.text, p.text_len, i, &l) : (unsigned char)p.text[i];
            if (!p.chars)
                l = 1;
            spaces += p.chars ? uni_space(cp)
                              : (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == 0x0b);
            i += l;
        }
        out->non_space_len = out->html_length - (double)spaces;
        out->backhair_count = (unsigned long)__builtin_popcountll(p.backhair);
    }
done:
    free(text);
    free(p.text);
    free(p.st);
    free(p.ms_stack);
    pcre2_match_data_free(p.face_md);
    pcre2_code_free(p.face_re);
    free(p.href);
    if (p.nomem) {
        sa_html_part_free(out);
        return -1;
    }
    return 0;
}

/* ---- the results by name ---- */

bool sa_html_inside(const struct sa_html_part *p, const char *tag, long *v)
{
    const struct sa_html_tag *t = tag_find(p, tag, strlen(tag));
    if (t == NULL || t->name == NULL)
        return false;
    *v = t->inside;
    return true;
}

bool sa_html_number(const struct sa_html_part *p, const char *key, double *v)
{
    const double tags = (double)p->tags_n;
    if (strcmp(key, "length") == 0)
        *v = p->length;
    else if (strcmp(key, "max_size") == 0)
        *v = p->max_size;
    else if (strcmp(key, "min_size") == 0)
        *v = p->min_size;
    else if (strcmp(key, "image_area") == 0)
        *v = p->image_area;
    else if (strcmp(key, "html_length") == 0)
        *v = p->html_length;
    else if (strcmp(key, "non_space_len") == 0)
        *v = p->non_space_len;
    else if (strcmp(key, "closed_extra_ratio") == 0 && p->tags_n > 0)
        *v = (double)p->closed_extra / tags;
    else if (strcmp(key, "bad_tag_ratio") == 0 && p->tags_n > 0 && p->elements > 0)
        *v = (tags - (double)p->elements) / tags;
    else if (strcmp(key, "non_element_ratio") == 0 && p->tags_seen > 0 && p->elements_seen > 0)
        *v = ((double)p->tags_seen - (double)p->elements_seen) / (double)p->tags_seen;
    else if (strcmp(key, "obfuscation_ratio") == 0 && p->tags_n > 0 && p->obfuscation > 0)
        *v = (double)p->obfuscation / tags;
    else if (strcmp(key, "backhair_count") == 0 && p->backhair_count > 0)
        *v = (double)p->backhair_count;
    else if (strcmp(key, "html") == 0)
        *v = 1;
    else
        return false;
    return true;
}

const struct sa_html_strs *sa_html_strings(const struct sa_html_part *p, const char *key)
{
    const struct sa_html_strs *l = strcmp(key, "title") == 0     ? &p->title
                                   : strcmp(key, "comment") == 0 ? &p->comment
                                   : strcmp(key, "anchor") == 0  ? &p->anchor
                                   : strcmp(key, "script") == 0  ? &p->script
                                                                 : NULL;
    return l != NULL && l->n > 0 ? l : NULL;
}

bool sa_html_true(const struct sa_html_part *p, const char *key)
{
    if (strcmp(key, "font_low_contrast") == 0)
        return p->font_low_contrast;
    if (strcmp(key, "font_invalid_color") == 0)
        return p->font_invalid_color;
    if (strcmp(key, "font_face_bad") == 0)
        return p->font_face_bad;
    if (strcmp(key, "form_action_mailto") == 0)
        return p->form_action_mailto;
    if (strcmp(key, "embeds") == 0)
        return p->embeds;
    if (strcmp(key, "uri_truncated") == 0)
        return p->uri_truncated;
    if (strcmp(key, "inside") == 0)
        return true;
    if (sa_html_strings(p, key) != NULL)
        return true;
    double v;
    return sa_html_number(p, key, &v) && v != 0;
}

/* ---- the parts of a message ---- */

struct sa_html_set {
    char **text;
    size_t *len;
    size_t n, cap, len_cap;
    struct sa_html_part *parts;
    bool built, nomem;
};

bool sa_html_set_keep(struct sa_html_set **set, char *text, size_t len)
{
    if (*set == NULL && (*set = util_calloc(1, sizeof(**set))) == NULL)
        return false;
    struct sa_html_set *s = *set;
    if (util_grow(&s->text, &s->cap, s->n + 1, sizeof(*s->text)) != 0 ||
        util_grow(&s->len, &s->len_cap, s->n + 1, sizeof(*s->len)) != 0) {
        s->nomem = true;
        return false;
    }
    s->text[s->n] = text;
    s->len[s->n] = len;
    s->n++;
    return true;
}

const struct sa_html_part *sa_html_set_parts(struct sa_html_set *s, size_t *n, bool *nomem)
{
    *n = 0;
    if (s == NULL)
        return NULL;
    if (!s->built) {
        s->built = true;
        s->parts = s->n ? util_calloc(s->n, sizeof(*s->parts)) : NULL;
        if (s->parts == NULL && s->n > 0)
            s->nomem = true;
        for (size_t i = 0; i < s->n && !s->nomem; i++)
            if (sa_html_parse(s->text[i], s->len[i], &s->parts[i]) != 0)
                s->nomem = true;
        /* the texts are not needed any more */
        for (size_t i = 0; i < s->n; i++) {
            free(s->text[i]);
            s->text[i] = NULL;
        }
    }
    if (s->nomem) {
        *nomem = true;
        return NULL;
    }
    *n = s->n;
    return s->parts;
}

void sa_html_set_free(struct sa_html_set *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->text[i]);
        if (s->parts != NULL)
            sa_html_part_free(&s->parts[i]);
    }
    free(s->text);
    free(s->len);
    free(s->parts);
    free(s);
}
