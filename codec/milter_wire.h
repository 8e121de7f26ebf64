/*
 * milter_wire - the MTA's side of the milter protocol (Sendmail's libmilter
 * protocol, versions 2 to 6, as Postfix's milter8 client speaks it), pure.
 * The command and flag values are libmilter's own (<libmilter/mfdef.h>,
 * <libmilter/mfapi.h>).
 *
 * Framing.  Every packet is a 32-bit length in network order that counts the
 * command octet and the data, the command octet, then the data.
 * milter_wire_frame() looks at the front of a buffer: it returns the octets of
 * one whole packet and points at its command and data, 0 while the packet is
 * incomplete, or -1 when the length is 0 or its data would exceed max_data
 * (MILTER_MAX_DATA_SIZE unless the negotiation chose SMFIP_MDS_256K or
 * SMFIP_MDS_1M, see milter_wire_data_max()): a
 * milter that says so is broken and its connection is not read further.
 *
 * Commands.  milter_out_*() append one whole packet each to a growable
 * buffer.  Strings are C strings (they cannot hold a NUL, which the protocol
 * uses as terminator); a body chunk is at most MILTER_CHUNK_SIZE octets, as
 * Postfix sends it.  Out of memory, or a packet over the protocol's 32-bit
 * length, makes the buffer failed: every later append does nothing and
 * milter_out_failed() says so, so a caller checks once per batch.
 *
 * Replies.  milter_wire_reply() reads the data of one packet from the milter
 * into struct milter_reply, whose pointers point into that data (valid while
 * it is).  Each kind's data is checked as Postfix checks it:
 *   accept, continue, reject, tempfail, discard, skip, progress, shutdown,
 *   conn_fail: no data;
 *   replycode: one string, every line "[45]NN" followed by "-" (not the last
 *     line) or " " or the end, lines separated by CRLF, all with the same
 *     code, no other CR or LF;
 *   quarantine: a reason string (may be empty);
 *   addheader: name, value; insheader, chgheader: a 32-bit index (chgheader:
 *     the name's nth occurrence, from 1; an empty value deletes it), name,
 *     value.  A name is 1..MILTER_WIRE_NAME_MAX octets 33..126 without ':';
 *     a value may hold LF for folded lines (the MTA's line end);
 *   chgfrom, addrcpt_par: address, optional ESMTP arguments (NULL without);
 *   addrcpt, delrcpt: address;  an address is not empty;
 *   replbody: any octets, any length within the packet.
 * Each string must end with its NUL inside the data, and no octet may follow
 * the last field.  Anything else, and SETSYMLIST outside the negotiation, is
 * MILTER_R_INVALID with the reason in why.
 *
 * Negotiation.  milter_wire_optneg() reads the milter's SMFIC_OPTNEG answer:
 * version, actions, protocol, then any number of (32-bit stage, string)
 * macro lists, stage SMFIM_CONNECT..SMFIM_EOH, each stage at most once.
 * milter_wire_negotiate() judges it against what the MTA offered: a version
 * from 2 to the offer's, no action and no protocol bit the MTA did not offer.
 * It returns 0 with the agreed values, or -1 with the reason.
 */
#ifndef SMTPGATE_MILTER_WIRE_H
#define SMTPGATE_MILTER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

#define MILTER_WIRE_VERSION     6   /* the protocol version smtpgate offers */
#define MILTER_WIRE_MIN_VERSION 2   /* the oldest one a milter may answer with */
#define MILTER_WIRE_NAME_MAX    256 /* a header name from a milter */
#define MILTER_WIRE_STAGES      (SMFIM_EOH + 1)

/* ---- framing ---- */

long milter_wire_frame(const uint8_t *buf, size_t len, size_t max_data, char *cmd,
                       const uint8_t **data, size_t *data_len);
/* The largest packet data the negotiated protocol mask lets a milter send. */
size_t milter_wire_data_max(uint32_t protocol);

/* ---- commands ---- */

struct milter_out {
    uint8_t *buf;
    size_t len, cap;
    bool failed;
};

void milter_out_init(struct milter_out *o);
void milter_out_free(struct milter_out *o);
void milter_out_clear(struct milter_out *o); /* empty, not failed, memory kept */
bool milter_out_failed(const struct milter_out *o);

void milter_out_optneg(struct milter_out *o, uint32_t version, uint32_t actions, uint32_t protocol);
/* SMFIC_MACRO for the command `stage` ('C', 'H', 'M', 'R', 'T', 'E', 'N'):
 * n name/value pairs; a NULL value sends the name's pair as empty. */
void milter_out_macros(struct milter_out *o, char stage, const char *const *names,
                       const char *const *values, size_t n);
/* family: SMFIA_INET ('4'), SMFIA_INET6 ('6'), SMFIA_UNIX ('L'); SMFIA_UNKNOWN
 * ('U') sends the host name only, as for a client of unknown address. */
void milter_out_connect(struct milter_out *o, const char *hostname, char family, uint16_t port,
                        const char *address);
void milter_out_helo(struct milter_out *o, const char *helo);
/* SMFIC_MAIL or SMFIC_RCPT: "<address>" then each ESMTP argument. */
void milter_out_envelope(struct milter_out *o, char cmd, const char *path, const char *const *args,
                         size_t nargs);
void milter_out_header(struct milter_out *o, const char *name, const char *value);
/* -1 (nothing appended) when len > MILTER_CHUNK_SIZE. */
int milter_out_body(struct milter_out *o, const uint8_t *chunk, size_t len);
/* SMFIC_UNKNOWN with the command line as the client sent it. */
void milter_out_unknown(struct milter_out *o, const char *line);
/* A command without data: SMFIC_EOH, SMFIC_DATA, SMFIC_BODYEOB, SMFIC_ABORT,
 * SMFIC_QUIT, SMFIC_QUIT_NC. */
void milter_out_simple(struct milter_out *o, char cmd);

/* ---- replies ---- */

enum milter_reply_kind {
    MILTER_R_INVALID = 0,
    MILTER_R_ACCEPT,
    MILTER_R_CONTINUE,
    MILTER_R_REJECT,
    MILTER_R_TEMPFAIL,
    MILTER_R_DISCARD,
    MILTER_R_REPLYCODE,
    MILTER_R_QUARANTINE,
    MILTER_R_SKIP,
    MILTER_R_PROGRESS,
    MILTER_R_SHUTDOWN,
    MILTER_R_CONN_FAIL,
    MILTER_R_ADDHEADER,
    MILTER_R_INSHEADER,
    MILTER_R_CHGHEADER,
    MILTER_R_CHGFROM,
    MILTER_R_ADDRCPT,
    MILTER_R_ADDRCPT_PAR,
    MILTER_R_DELRCPT,
    MILTER_R_REPLBODY,
};

struct milter_reply {
    enum milter_reply_kind kind;
    int code;            /* replycode: 400..599 */
    const char *text;    /* replycode: the whole reply; quarantine: the reason */
    uint32_t index;      /* insheader, chgheader */
    const char *name;    /* headers */
    const char *value;   /* headers */
    const char *addr;    /* chgfrom, addrcpt, addrcpt_par, delrcpt */
    const char *args;    /* chgfrom, addrcpt_par: ESMTP arguments, or NULL */
    const uint8_t *body; /* replbody */
    size_t body_len;
    const char *why; /* MILTER_R_INVALID: what is wrong */
};

enum milter_reply_kind milter_wire_reply(char cmd, const uint8_t *data, size_t len,
                                         struct milter_reply *out);
/* A modification (header, envelope or body), as opposed to a verdict. */
bool milter_wire_is_edit(enum milter_reply_kind kind);
const char *milter_wire_reply_name(enum milter_reply_kind kind);

/* ---- negotiation ---- */

struct milter_optneg {
    uint32_t version, actions, protocol;
    /* Macro lists the milter asked for, per SMFIM_ stage, pointing into the
     * reply's data; NULL: none asked (the MTA's defaults apply). */
    const char *macros[MILTER_WIRE_STAGES];
};

int milter_wire_optneg(const uint8_t *data, size_t len, struct milter_optneg *out,
                       const char **why);
int milter_wire_negotiate(const struct milter_optneg *offer, const struct milter_optneg *reply,
                          struct milter_optneg *agreed, const char **why);

#endif
