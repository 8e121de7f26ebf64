/*
 * listen_socket - see listen_socket.h.
 */
#include "daemon/listen_socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"

int listen_socket_open(const struct sg_sockaddr *addr)
{
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (addr->sa.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        bind(fd, (const struct sockaddr *)&addr->sa, addr->len) < 0 ||
        listen(fd, LISTEN_BACKLOG) < 0) {
        int err = errno;
        log_err("cannot listen on %s: %s", addr->text, strerror(err));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}
