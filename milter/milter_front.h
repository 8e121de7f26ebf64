/*
 * milter_front - the libmilter callbacks of smtpgate-milter: every callback
 * the MTA makes drives the filter chain of the configuration in force when
 * the MTA connected, as the proxy's session does for an SMTP client.
 *
 * milter_front_register() hands the callback table to smfi_register(); call
 * it once, before smfi_main().  milter_front_connections() counts the MTA
 * connections open now (any thread), for a shutdown that lets them finish.
 * The configuration comes from milter_conf_current() (milter_conf.h): each
 * MTA connection takes a reference at negotiation (or at connect when the
 * MTA reuses a connection) and keeps it to the end, so a reload never
 * changes the chain under a connection.
 *
 * Mapping, per callback:
 *
 *   negotiate  actions and protocol steps from chain_wants(); macros by
 *              smfi_setsymlist (see MILTER_FRONT_*_MACROS)
 *   connect    chain_conn_new() with the client's address, port, name; the
 *              connect stage
 *   helo       chain_set_helo(), TLS facts from {tls_version} {cipher}
 *              {cert_subject}; the helo stage
 *   envfrom    chain_tx_begin(), {auth_authen}; the mail stage
 *   envrcpt    the rcpt stage, per recipient; chain_rcpt_accepted()
 *   data       the data stage
 *   header, eoh, body
 *              the message rebuilt as received into a msg_store and a
 *              msg_headers
 *   eom        chain_run_message(), then the edits (milter_edits.c) and
 *              smfi_quarantine()
 *   abort      chain_tx_end()
 *   close      chain_conn_release()
 *   unknown    nothing in the chain looks at unknown commands; negotiated
 *              away, answered "continue" if the MTA sends one all the same
 *
 * Verdicts: CHAIN_REFUSE -> SMFIS_REJECT (5xx) or SMFIS_TEMPFAIL (4xx) with
 * the chain's exact code, enhanced code and text (smfi_setreply, or
 * smfi_setmlreply for several lines); CHAIN_DISCARD -> SMFIS_DISCARD;
 * CHAIN_QUARANTINE -> smfi_quarantine + SMFIS_ACCEPT; a message that passes
 * -> edits + SMFIS_ACCEPT.  Before end of message a passing stage answers
 * SMFIS_CONTINUE: the chain itself skips plugins after an accept, and the
 * MTA must keep calling for the envelope facts later plugins need.
 *
 * Diagnostics: one log line per message (queue id, verdict, deciding plugin,
 * plugin times); out of memory or a failed edit tempfails with 451 4.3.0.
 */
#ifndef SMTPGATE_MILTER_FRONT_H
#define SMTPGATE_MILTER_FRONT_H

#define MILTER_FRONT_CONNECT_MACROS                                                                \
    "{client_addr} {client_name} {client_port} {daemon_addr} {daemon_port} j"
#define MILTER_FRONT_HELO_MACROS "{tls_version} {cipher} {cert_subject}"
#define MILTER_FRONT_MAIL_MACROS "i {auth_authen}"
#define MILTER_FRONT_EOM_MACROS  "i"

int milter_front_register(const char *name);
unsigned milter_front_connections(void);

#endif
