/*
 * smtp_cmd - SMTP command line parser (RFC 5321 section 4.1), pure.
 *
 * smtp_cmd_parse() splits one command line (without its CRLF or LF) into a verb
 * and its argument.  smtp_path_parse() parses the argument of MAIL and RCPT:
 * "FROM:<path> params" / "TO:<path> params".  smtp_bdat_parse() parses
 * "size [LAST]".  smtp_helo_parse() checks an EHLO/HELO argument.
 *
 * All functions read only the bytes they are given, allocate nothing, and
 * return pointers into the caller's buffer.
 *
 * Diagnostics: the return values are smtp_cmd_status codes; the caller turns
 * them into SMTP replies (see smtp_cmd_status_reply()).
 */
#ifndef SMTPGATE_SMTP_CMD_H
#define SMTPGATE_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_verb {
    SMTP_VERB_UNKNOWN = 0,
    SMTP_VERB_HELO,
    SMTP_VERB_EHLO,
    SMTP_VERB_MAIL,
    SMTP_VERB_RCPT,
    SMTP_VERB_DATA,
    SMTP_VERB_BDAT,
    SMTP_VERB_RSET,
    SMTP_VERB_NOOP,
    SMTP_VERB_QUIT,
    SMTP_VERB_VRFY,
    SMTP_VERB_EXPN,
    SMTP_VERB_HELP,
    SMTP_VERB_STARTTLS,
    SMTP_VERB_AUTH,
    SMTP_VERB__COUNT
};

enum smtp_cmd_status {
    SMTP_CMD_OK = 0,
    SMTP_CMD_EMPTY,         /* empty or all-blank line: 500 5.5.2 */
    SMTP_CMD_BAD_CHAR,      /* NUL or other control character in the line: 500 5.5.2 */
    SMTP_CMD_UNKNOWN_VERB,  /* 500 5.5.1 */
    SMTP_CMD_ARG_REQUIRED,  /* e.g. "EHLO" alone, "VRFY" alone: 501 5.5.4 */
    SMTP_CMD_ARG_FORBIDDEN, /* e.g. "DATA x", "QUIT x": 501 5.5.4 */
    SMTP_CMD_BAD_SYNTAX,    /* argument malformed (generic): 501 5.5.4 */
    SMTP_CMD_BAD_SENDER,    /* MAIL FROM path malformed: 501 5.1.7 */
    SMTP_CMD_BAD_RECIPIENT, /* RCPT TO path malformed: 501 5.1.3 */
    SMTP_CMD_BAD_DOMAIN,    /* EHLO/HELO argument malformed: 501 5.5.4 */
    SMTP_CMD_PATH_TOO_LONG, /* path > 256, local part > 64, domain > 255: 501 5.5.4 */
};

struct smtp_cmd {
    enum smtp_verb verb;
    const char *verb_text; /* the verb as typed, for logging UNKNOWN ones */
    size_t verb_len;
    const char *arg; /* after the single SP (leading blanks skipped); NULL if none */
    size_t arg_len;  /* trailing blanks removed */
};

/* Parse a command line.  line excludes the line terminator. */
enum smtp_cmd_status smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out);

struct smtp_path {
    const char *mailbox; /* inside the angle brackets, source route removed; "" for <> */
    size_t mailbox_len;
    bool null_path;     /* <> */
    bool utf8;          /* mailbox contains octets >= 0x80 (needs SMTPUTF8) */
    bool postmaster;    /* RCPT TO:<Postmaster> without domain (RFC 5321 4.5.1) */
    const char *params; /* ESMTP parameters after the path; NULL if none */
    size_t params_len;
};

/*
 * Parse the argument of MAIL (is_mail=true: "FROM:") or RCPT ("TO:").  Accepts
 * "FROM:<a@b>", "FROM: <a@b>" (one blank after the colon, as Postfix does) and
 * the null path "<>" (MAIL only).  The keyword is case-insensitive.
 */
enum smtp_cmd_status smtp_path_parse(const char *arg, size_t len, bool is_mail,
                                     struct smtp_path *out);

/*
 * The same, as lenient as Postfix with strict_rfc821_envelopes = no: the
 * brackets may be missing, any blanks may follow the colon, RFC 5322 comments
 * and a phrase before "<...>" are dropped, a source route is dropped, quoted
 * or backslash-escaped words may appear anywhere in the local part, which has
 * no 64-octet limit, and a MAIL sender may lack its domain.  The address is
 * the first blank-delimited word (blanks inside quotes, brackets or after a
 * backslash do not count); the words after it are the ESMTP parameters.
 *
 * out->mailbox is the canonical RFC 5321 form, written to canon: a dot-atom
 * local part as is, any other quoted with "\" before '"' and '\' — the only
 * form the upstream is ever sent, so it cannot read the address differently.
 * canon_size must be at least 2 * len + 3.
 */
enum smtp_cmd_status smtp_path_parse_lenient(const char *arg, size_t len, bool is_mail, char *canon,
                                             size_t canon_size, struct smtp_path *out);

/* Parse "BDAT chunk-size [LAST]".  chunk-size is 1*DIGIT, at most 18 digits. */
enum smtp_cmd_status smtp_bdat_parse(const char *arg, size_t len, uint64_t *size, bool *last);

/* Check an EHLO/HELO argument: a domain or an address literal ("[1.2.3.4]",
 * "[IPv6:...]").  Lenient as Postfix is by default: any printable non-blank word
 * is accepted, so only empty or control characters fail. */
enum smtp_cmd_status smtp_helo_parse(const char *arg, size_t len, const char **name,
                                     size_t *name_len);

/* The SMTP reply (code, enhanced code, text) for a non-OK status, e.g.
 * "501 5.1.7 Bad sender address syntax". Never NULL. */
const char *smtp_cmd_status_reply(enum smtp_cmd_status st);

const char *smtp_verb_name(enum smtp_verb verb);

#endif
