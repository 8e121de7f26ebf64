/*
 * reply - a plugin's reply text checked and put in wire form; the host's
 * default reply when a plugin gives none.  Pure: strings in, strings out.
 *
 *   chain_reply_wire(reply, cls)   "550 5.7.1 text" lines separated by "\n"
 *                                  (or CRLF) as wire lines joined by CRLF,
 *                                  without the final CRLF, every line of code
 *                                  class cls ('4' or '5'); malloc'd, or NULL
 *                                  when malformed
 *   chain_default_reply(stage, v)  the refusal a stage gets for reject or
 *                                  tempfail without a (valid) reply
 */
#ifndef SMTPGATE_CHAIN_REPLY_H
#define SMTPGATE_CHAIN_REPLY_H

#include "smtpgate/plugin.h"

char *chain_reply_wire(const char *reply, char cls);
const char *chain_default_reply(enum sg_stage stage, enum sg_verdict v);

#endif
