/*
 * listen_socket - see listen_socket.h.
 */
#include "daemon/listen_socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"

static int listen_socket_bind(const struct sg_sockaddr *addr, bool reuseport, bool do_listen)
{
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
        (addr->sa.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        bind(fd, (const struct sockaddr *)&addr->sa, addr->len) < 0 ||
        (do_listen && listen(fd, LISTEN_BACKLOG) < 0)) {
        int err = errno;
        log_err("cannot listen on %s: %s", addr->text, strerror(err));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int listen_socket_open(const struct sg_sockaddr *addr, size_t n, int *fds)
{
    /* Bound without SO_REUSEPORT, the probe fails if anyone listens there. */
    int probe = listen_socket_bind(addr, false, false);
    if (probe < 0)
        return -1;
    close(probe);
    for (size_t i = 0; i < n; i++) {
        if ((fds[i] = listen_socket_bind(addr, true, true)) < 0) {
            while (i-- > 0)
                close(fds[i]);
            return -1;
        }
    }
    return 0;
}
