// fuzz-sources: plugins/state/client_key.c util/net.c
/*
 * Client addresses and mailboxes from the network must give a key or -1,
 * never a crash; a key always fits its buffer, is NUL-terminated, and is
 * canonical: a key read back as input gives itself.  The input is copied to
 * a NUL-terminated buffer of exactly its size plus one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/client_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fixed_point(int (*fn)(const char *, char *, size_t), const char *in)
{
    char out[80], again[80];
    int n = fn(in, out, sizeof(out));
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(out) || strlen(out) != (size_t)n)
        abort();
    if (fn(out, again, sizeof(again)) != n || strcmp(out, again) != 0)
        abort();
}

static int address(const char *in, char *out, size_t len)
{
    return client_key_address(in, out, len);
}

static int domain(const char *in, char *out, size_t len)
{
    /* The key is a domain; read it back as one. */
    char mailbox[96];
    if (strlen(in) > 80)
        return -1;
    if (strchr(in, '@') == NULL) {
        strcpy(mailbox, "x@");
        strcat(mailbox, in);
        in = mailbox;
    }
    return client_key_domain(in, out, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    fixed_point(address, buf);
    fixed_point(domain, buf);
    char out[300], again[300];
    int n = client_key_network(buf, size ? data[0] % 40 : 24, size ? data[0] % 130 : 64, out,
                               sizeof(out));
    if (n >= 0 && ((size_t)n >= sizeof(out) || strlen(out) != (size_t)n || !strchr(out, '/')))
        abort();
    n = client_key_sender(buf, size && (data[0] & 1), out, sizeof(out));
    if (n >= 0) {
        if ((size_t)n >= sizeof(out) || strlen(out) != (size_t)n)
            abort();
        /* Lower case, extension stripped or not: a key is its own key. */
        if (client_key_sender(out, false, again, sizeof(again)) != n || strcmp(out, again) != 0)
            abort();
    }
    free(buf);
    return 0;
}
