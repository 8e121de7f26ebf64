/*
 * auth_relay - the pure parts of relaying SMTP AUTH (RFC 4954) to the
 * upstream, which stays the authority on every credential.
 *
 * Mechanisms: smtpgate relays those whose exchange is plain challenge and
 * response, not bound to the TLS channel (no "-PLUS" variants, which the
 * upstream could not check through a proxy).  auth_mechs_parse() turns a list
 * of names ("PLAIN LOGIN CRAM-MD5", as an EHLO AUTH line has them) into bits
 * of relayable mechanisms; unknown names are dropped.  auth_mechs_format()
 * writes bits back as names.
 *
 * auth_cmd_parse() checks the arguments of "AUTH mechanism [initial-response]"
 * (RFC 4954 4): a known mechanism, an initial response that is base64 or "=".
 * auth_response_check() checks one client response line of a 334 round:
 * base64, empty, or "*" (cancel), at most max_len octets.
 *
 * auth_login_guess() reads the login name out of the client's own data for the
 * mechanisms that carry it in the clear (PLAIN: authcid; LOGIN: the first
 * response; CRAM-MD5: the name before the digest; SCRAM: "n=" of the first
 * message).  The name becomes the session's login only after the upstream's
 * 235.  It is a name, never a secret: passwords are never decoded into it, and
 * nothing of the exchange itself is ever logged.
 */
#ifndef SMTPGATE_AUTH_RELAY_H
#define SMTPGATE_AUTH_RELAY_H

#include <stdbool.h>
#include <stddef.h>

enum auth_mech {
    AUTH_MECH_PLAIN = 1u << 0,
    AUTH_MECH_LOGIN = 1u << 1,
    AUTH_MECH_CRAM_MD5 = 1u << 2,
    AUTH_MECH_DIGEST_MD5 = 1u << 3,
    AUTH_MECH_SCRAM_SHA_1 = 1u << 4,
    AUTH_MECH_SCRAM_SHA_256 = 1u << 5,
    AUTH_MECH_XOAUTH2 = 1u << 6,
    AUTH_MECH_OAUTHBEARER = 1u << 7,
};

/* RFC 4954 4: a line of an AUTH exchange may be up to 12288 octets. */
#define AUTH_LINE_MAX_DEFAULT 12288
#define AUTH_LOGIN_MAX        256

unsigned auth_mechs_parse(const char *list, size_t len);
size_t auth_mechs_format(unsigned mechs, char *out, size_t out_size);

/* One mechanism's bit, 0 if not relayable. */
unsigned auth_mech_lookup(const char *name, size_t len);

enum auth_status {
    AUTH_OK = 0,
    AUTH_SYNTAX,       /* 501 5.5.4 */
    AUTH_UNKNOWN_MECH, /* 504 5.5.4 */
    AUTH_TOO_LONG,     /* 500 5.5.6 */
    AUTH_CANCEL,       /* "*": the client gave up; 501 5.7.0 from the upstream */
};

struct auth_cmd {
    unsigned mech;
    const char *initial; /* NULL when absent; "=" is an empty initial response */
    size_t initial_len;
};

enum auth_status auth_cmd_parse(const char *arg, size_t len, struct auth_cmd *out);
enum auth_status auth_response_check(const char *line, size_t len, size_t max_len);

/* RFC 4648 base64 without whitespace; returns the decoded length, or
 * (size_t)-1 if not valid or it would not fit out_size. */
size_t auth_base64_decode(const char *in, size_t len, unsigned char *out, size_t out_size);

/* step: 0 for the initial response, 1.. for the responses after each 334.
 * Writes a printable name into out (at most AUTH_LOGIN_MAX-1 chars) and
 * returns true when this step carries it. */
bool auth_login_guess(unsigned mech, unsigned step, const char *data, size_t len, char *out,
                      size_t out_size);

const char *auth_status_reply(enum auth_status st);

/* How much of a command line may be logged: "AUTH mechanism" without the
 * initial response; the whole line for every other command. */
size_t auth_loggable_len(const char *line, size_t len);

#endif
