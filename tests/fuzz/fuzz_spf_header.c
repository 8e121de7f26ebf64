// fuzz-sources: plugins/spf/spf_header.c plugins/spf/spf_result.c util/net.c util/alloc.c
/*
 * What the SPF plugin reads from and writes into headers comes from the
 * client.  The input is read as a received Authentication-Results value
 * (authserv-id), as an exemption network, and used as HELO, sender and
 * problem text of Received-SPF and Authentication-Results values, which
 * must stay one header field: every CR is followed by LF and a tab, there
 * is no other CR, LF or NUL, and nothing outside visible ASCII but the tab.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spf/spf_header.h"
#include "util/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_field_ok(const char *v)
{
    if (v == NULL)
        abort();
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\r') {
            if (p[1] != '\n' || p[2] != '\t')
                abort();
            p += 2;
            continue;
        }
        if ((c < 0x20 && c != '\t') || c > 0x7e)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char id[64];
    if (spf_header_authserv_id((const char *)data, size, id, sizeof id) && strlen(id) >= sizeof id)
        abort();

    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    struct net_range net;
    const char *why;
    if (net_range_parse_text(s, strlen(s), 0, &net, &why) == 0) {
        if (net.prefix > 128)
            abort();
        (void)net_ranges_match_text(&net, 1, "192.0.2.3");
        (void)net_ranges_match_text(&net, 1, "2001:db8::1");
    }
    for (int r = 0; r < SPFC__COUNT; r++) {
        struct spf_check_result res = {.result = (enum spf_result)r, .sender = s, .domain = s};
        res.identity = (r & 1) ? SPF_ID_HELO : SPF_ID_MAILFROM;
        if (r & 2)
            res.mechanism = s;
        else
            res.problem = s;
        char *v = spf_header_received(&res, "192.0.2.3", s, s, (r & 4) ? s : "mx.example.org");
        fuzz_field_ok(v);
        free(v);
        const struct spf_check_result *one[] = {&res};
        v = spf_header_auth_results("mx.example.org", one, 1);
        fuzz_field_ok(v);
        free(v);
    }
    free(s);
    return 0;
}
