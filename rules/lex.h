/*
 * lex - the rule file's lexical level: a cursor over one file's text, its
 * blanks, comments and continuation lines, words, quoted strings, patterns,
 * numbers and sizes; and the checks of values (names, replies, header
 * fields).  Pure: errors go to the build through cur_error_at(), with the
 * cursor's file, line and column.  Not installed.
 *
 * A statement starts at the first column; a line starting with a blank
 * continues the statement above.  "#" starts a comment where a token could
 * start.  CR is a blank: only LF ends a line.
 *
 * After the first error of a statement (c->failed) further errors of that
 * statement are dropped.  cur_nomem() records an allocation failure and
 * fails the statement; every function that allocates calls it itself.
 */
#ifndef SMTPGATE_RULES_LEX_H
#define SMTPGATE_RULES_LEX_H

#include "rules/rules_int.h"

#define NAME_MAX_LEN   128
#define STRING_MAX_LEN 65536

struct cur {
    struct rules_build *b;
    const char *file; /* interned */
    const char *p;
    const char *end;
    const char *line_start;
    unsigned line;
    bool failed; /* this statement has an error already */
};

unsigned cur_col(const struct cur *c, const char *at);
void cur_error_at(struct cur *c, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Always false (so NULL-returning callers can test it the same way). */
bool cur_nomem(struct cur *c);

bool lex_is_blank(char ch);
bool lex_is_eol(char ch);
/* Steps past the line end at c->p. */
void cur_newline(struct cur *c);
/* True when the line at s holds nothing but blanks and maybe a comment. */
bool lex_line_is_empty(const char *s, const char *end);
void lex_skip_to_eol(struct cur *c);
/* Blanks, comments, and line ends before a continuation line. */
void lex_skip_ws(struct cur *c);
/* At the end of the statement (after lex_skip_ws). */
bool lex_at_eos(struct cur *c);
/* To the next line that starts a statement. */
void lex_skip_statement(struct cur *c);
bool lex_next_is_string(struct cur *c);

/* A run of octets up to a blank, a line end, a quote or a comment. */
bool cur_word(struct cur *c, const char **w, size_t *n);
bool lex_word_is(const char *w, size_t n, const char *kw);
/* A "quoted string" with \" \\ \n \r \t \xHH, malloc'ed; NULL on error. */
char *cur_string(struct cur *c, size_t *len_out, const char *what);
/* The same without line ends, for replies, reasons and headers. */
char *cur_line_string(struct cur *c, const char *what);
/* /regex/flags or m{regex}flags into rule's pattern, pflags, pat_pos. */
bool cur_pattern(struct cur *c, struct rule *rule);
bool cur_number(struct cur *c, double *out, const char *what);
/* "-1.5", "3", "10.25": decimal, no exponent, finite. */
bool lex_number_parse(const char *w, size_t n, double *out);

/* 1024, 10k, 5M, 1G (binary multiples). */
bool lex_size_parse(const char *w, size_t n, uint64_t *out);
bool lex_valid_name(const char *w, size_t n);
bool lex_valid_field_name(const char *w, size_t n);
/* Checks "550 5.7.1 text": first digit want ('4' or '5'), enhanced code of
 * the same class.  NULL if fine, else the reason. */
const char *rules_reply_check(const char *reply, char want);
/* Checks "Name: value"; NULL and malloc'ed name and value when fine, else
 * the reason.  NULL with *name NULL: out of memory. */
const char *rules_header_check(const char *text, char **name, char **value);

#endif
