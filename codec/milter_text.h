/*
 * milter_text - conversions between what libmilter hands over or takes and
 * the wire form the filter chain works on, pure.
 *
 * milter_text_header_line(name, value, leadspc, &len)
 *      "Name:value\r\n" as the header field was received.  The MTA joins a
 *      folded value's lines with bare LF (Postfix) or CRLF: both become CRLF.
 *      Without leadspc (the MTA did not agree to SMFIP_HDR_LEADSPC and
 *      stripped the blank after the colon) one space is put back.
 * milter_text_edit_value(value, leadspc)
 *      A chain edit's value as smfi_addheader()/smfi_chgheader() take it:
 *      folding CRLFs as LF (CRs before a LF dropped), and with leadspc
 *      the space after the colon that the MTA no longer adds by itself.
 * milter_text_mailbox(arg)
 *      The mailbox of an envfrom/envrcpt argument: one pair of angle brackets
 *      removed ("<a@b>" -> "a@b", "<>" -> "").
 * milter_text_bracket(mailbox)
 *      "<mailbox>", the form smfi_chgfrom/addrcpt/delrcpt compare and add.
 * milter_text_params(argv)
 *      ESMTP parameters argv[1..] joined by one space, or NULL when none.
 *
 * Each returns a malloc'd NUL-terminated string (NULL when out of memory,
 * and for milter_text_params also when there are no parameters).
 */
#ifndef SMTPGATE_MILTER_TEXT_H
#define SMTPGATE_MILTER_TEXT_H

#include <stdbool.h>
#include <stddef.h>

char *milter_text_header_line(const char *name, const char *value, bool leadspc, size_t *len);
char *milter_text_edit_value(const char *value, bool leadspc);
char *milter_text_mailbox(const char *arg);
char *milter_text_bracket(const char *mailbox);
char *milter_text_params(char *const *argv);

#endif
