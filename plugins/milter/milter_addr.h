/*
 * milter_addr - where the milter plugin connects: a milter's socket as an
 * admin writes it, pure.
 *
 * Both spellings in use are taken, so a line can be copied from Postfix's
 * smtpd_milters or from the milter's own configuration:
 *
 *   inet:HOST:PORT        Postfix ("inet:127.0.0.1:8891", "inet:[::1]:8891")
 *   inet:PORT@HOST        libmilter ("inet:8891@127.0.0.1")
 *   inet6:PORT@HOST       libmilter, IPv6 ("inet6:8891@::1")
 *   inet6:[HOST]:PORT     IPv6 in Postfix's bracket form
 *   unix:PATH, local:PATH an absolute path that fits a sockaddr_un
 *
 * HOST is a numeric address or "localhost" (127.0.0.1, or ::1 after inet6:):
 * the plugin never asks a resolver, so a milter that cannot be reached
 * without DNS is a configuration error at load, not a stall per session.
 *
 * milter_addr_parse() fills *out and *len and returns 0, or returns -1 with
 * a static reason in *why (out untouched).  It reads spec only.
 */
#ifndef SMTPGATE_MILTER_ADDR_H
#define SMTPGATE_MILTER_ADDR_H

#include <sys/socket.h>

int milter_addr_parse(const char *spec, struct sockaddr_storage *out, socklen_t *len,
                      const char **why);

#endif
