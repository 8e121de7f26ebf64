/*
 * milter_socket - the libmilter socket specification of smtpgate-milter's
 * "milter { socket = ... }" setting, checked before libmilter sees it.
 *
 *   inet:PORT             every IPv4 address
 *   inet:PORT@ADDR        an IPv4 address ("inet:8890@127.0.0.1")
 *   inet6:PORT[@ADDR]     IPv6 ("inet6:8890@::1"), no brackets
 *   unix:PATH, local:PATH an absolute path that fits a sockaddr_un
 *
 * milter_socket_check() is pure: it takes the text and returns NULL when
 * libmilter will accept it, or a static reason naming what is wrong.  Host
 * names are refused: the daemon must not depend on a resolver to start.
 *
 * milter_socket_address() gives the address a local client connects to for a
 * listener on spec (a wildcard or missing address means loopback), as a
 * sockaddr_in, sockaddr_in6 or sockaddr_un; -1 when spec is not valid.
 */
#ifndef SMTPGATE_MILTER_SOCKET_H
#define SMTPGATE_MILTER_SOCKET_H

#include <sys/socket.h>

const char *milter_socket_check(const char *spec);
int milter_socket_address(const char *spec, struct sockaddr_storage *out, socklen_t *len);

#endif
