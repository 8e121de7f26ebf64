/*
 * sockaddr - socket addresses as an admin writes them: "host:port",
 * "[v6-address]:port", and "*:port" for a listening socket on every IPv4
 * address.
 *
 * sockaddr_parse() fills out (address, length, and its normalised text
 * "1.2.3.4:25" / "[::1]:25") and returns NULL, or returns a static reason
 * ("expected host:port", "port must be a number from 1 to 65535", ...) and
 * leaves out zeroed.  With SOCKADDR_PASSIVE the address is for listening
 * ("*" allowed); with SOCKADDR_NUMERIC a host name is refused instead of
 * resolved (tests and fuzzing must never query a DNS server, and some
 * settings only take addresses).  Without it a name is resolved now, with
 * getaddrinfo(), and the first address is taken.
 */
#ifndef SMTPGATE_SOCKADDR_H
#define SMTPGATE_SOCKADDR_H

#include <sys/socket.h>

/* "[" + INET6_ADDRSTRLEN (46 with its NUL) + "]:" + five digits + NUL fits. */
#define SOCKADDR_TEXT_MAX 80

struct sg_sockaddr {
    struct sockaddr_storage sa;
    socklen_t len;
    char text[SOCKADDR_TEXT_MAX]; /* normalised: "1.2.3.4:25", "[::1]:25" */
};

enum sockaddr_flags {
    SOCKADDR_PASSIVE = 1 << 0, /* for a listening socket: "*" allowed */
    SOCKADDR_NUMERIC = 1 << 1, /* refuse host names instead of resolving them */
};

const char *sockaddr_parse(const char *text, unsigned flags, struct sg_sockaddr *out);

#endif
