/*
 * sa_html - what SpamAssassin's HTML parser (its HTML.pm over
 * HTML::Parser) records of one text/html part, for the HTMLEval tests;
 * pure.
 *
 * sa_html_parse(html, len, out) reads the decoded part (UTF-8, as the
 * message model hands it over) and fills out with the facts HTML.pm's
 * get_results() gives and Message::Node::rendered() adds:
 *   - the tags seen, each with its balance (start tags minus end tags,
 *     never below 0): HTML.pm's "inside";
 *   - the counts behind its ratios: tags, elements (known HTML element
 *     names), the tags and elements seen the first time, end tags with no
 *     open one (closed_extra), words run together across tags
 *     (obfuscation), the distinct "backhair" splits;
 *   - its flags: font_low_contrast, font_invalid_color (text drawn in a
 *     colour too close to its background, or in an invalid one),
 *     font_face_bad, form_action_mailto, embeds, uri_truncated, and
 *     whether an iframe has a source;
 *   - its numbers: length (the part's characters), max_size and min_size
 *     of the fonts, image_area, and html_length and non_space_len of the
 *     rendered text;
 *   - its strings: the titles, comments, anchor texts and scripts; beside
 *     each anchor text the href its <a> had, as the key of its uri_detail
 *     entry (canon_uri: blanks and NBSP trimmed, 8,192 characters at most,
 *     "" without one);
 *   - the URIs html_uri pushes that only just fit in 8,192 characters (so
 *     a form SpamAssassin makes of one may not): the tag attributes it
 *     reads (href, src, background, action, data-saferedirecturl, base
 *     and meta refresh), uri_truncated set for one that is longer.
 *
 * What it promises: the tokenizer is HTML::Parser's (version 3, its
 * defaults and marked sections on): a "<" opens a start tag before a
 * letter, "_" or ":", an end tag before "/", a comment or declaration
 * before "!", a processing instruction before "?", and is text otherwise;
 * script, style, xmp, iframe and plaintext hold raw text to their end tag,
 * title and textarea decoded text; text ending the input is reported in
 * two pieces at its last blank, and what markup is left unterminated at
 * the end becomes a comment, as HTML::Parser does at eof.  Entities
 * (&#N; &#xH; and HTML::Entities' names, a name's longest prefix when the
 * whole is none) are decoded as it decodes them.
 *
 * Bounded by its input: one pass, no recursion; memory grows with the
 * input only.  -1 when out of memory (out is then emptied), 0 otherwise.
 *
 * What it assumes: html is UTF-8 (the model's to_utf8 output); lengths are
 * counted in characters, as SpamAssassin counts a part it decoded.
 */
#ifndef SMTPGATE_RULES_SA_HTML_H
#define SMTPGATE_RULES_SA_HTML_H

#include <stdbool.h>
#include <stddef.h>

/* A list of strings kept in one buffer: item i is text[start[i] ..
 * start[i + 1]) (the last one to len); only the last item grows. */
struct sa_html_strs {
    char *text;
    size_t len, cap;
    size_t *start;
    size_t n, ncap;
};

struct sa_html_tag {
    char *name; /* lower case; NULL: a free slot */
    long inside;
};

struct sa_html_part {
    struct sa_html_tag *tags; /* open hash table, a power of two long */
    size_t tags_cap, ntags;
    unsigned long tags_n, elements, tags_seen, elements_seen;
    unsigned long closed_extra, obfuscation, backhair_count;
    bool font_low_contrast, font_invalid_color, font_face_bad, form_action_mailto, embeds;
    bool uri_truncated, iframe_src;
    double length, max_size, min_size, image_area;
    double html_length, non_space_len;
    struct sa_html_strs title, comment, anchor, script;
    struct sa_html_strs anchor_href; /* item i: the href of anchor i */
    struct sa_html_strs long_uri;    /* pushed URIs of SA_HTML_URI_NEAR octets or more */
};

/* HTML.pm's MAX_URI_LENGTH, and how close to it a URI is kept in long_uri */
#define SA_HTML_URI_MAX  8192
#define SA_HTML_URI_NEAR (SA_HTML_URI_MAX - 32)

int sa_html_parse(const char *html, size_t len, struct sa_html_part *out);
void sa_html_part_free(struct sa_html_part *p);

/* HTML.pm's result named key, as a number: false when it is not defined
 * for this part (a ratio with no tags, an unknown name). */
bool sa_html_number(const struct sa_html_part *p, const char *key, double *v);
/* Perl's truth of the result named key (html_test). */
bool sa_html_true(const struct sa_html_part *p, const char *key);
/* The list named key (title, comment, anchor, script), NULL when the part
 * has none (Perl's undef, not an array). */
const struct sa_html_strs *sa_html_strings(const struct sa_html_part *p, const char *key);
/* The balance of tag (lower case), false when it was never seen. */
bool sa_html_inside(const struct sa_html_part *p, const char *tag, long *v);

/* ---- a message's text/html parts (its HTMLEval "html_all") ----
 * The message model hands over each part's text as it decodes it; the facts
 * are made from them the first time a rule asks, once. */
struct sa_html_set;
/* Keeps text (malloc'ed, NUL-terminated, len octets), owning it from now:
 * false when out of memory (text is then the caller's to free). */
bool sa_html_set_keep(struct sa_html_set **set, char *text, size_t len);
/* The parts' facts, made on the first call; NULL with *n 0 when there is no
 * HTML part, or when out of memory (then *nomem is set). */
const struct sa_html_part *sa_html_set_parts(struct sa_html_set *set, size_t *n, bool *nomem);
void sa_html_set_free(struct sa_html_set *set);

#endif
