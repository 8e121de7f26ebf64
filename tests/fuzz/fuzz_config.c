// fuzz-sources: config/config.c util/log.c chain/plugin_conf.c chain/loader.c chain/host_api.c
// fuzz-sources: chain/instance.c chain/chain.c chain/chain_conn.c chain/reply.c util/metrics.c
// fuzz-sources: daemon/runtime.c chain/workpool.c message/msg_store.c config/listener.c
// fuzz-sources: daemon/tls.c codec/auth_relay.c util/net.c util/alloc.c
// fuzz-pkgs: -ldl libevent_openssl
/*
 * Config text from anywhere (a file, an -o override) must give a config or
 * errors, never a crash.  Host names are refused rather than resolved: a fuzz
 * run must not send DNS queries.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "config/config.h"
#include "chain/plugin_host.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet = -1;
    if (quiet < 0) {
        /* Errors are the expected outcome; keep them out of the fuzzer's output. */
        quiet = open("/dev/null", O_WRONLY);
        if (quiet >= 0)
            dup2(quiet, 2);
        log_open("fuzz_config", true, 0);
        config_numeric_hosts_only(true);
        plugin_host_disable_loading(true);
    }
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    const char *ov[] = {text};
    struct sg_config *c = config_load(NULL, ov, 1);
    if (c)
        config_unref(c);
    free(text);
    return 0;
}
