// fuzz-sources: config/config.c config/config_value.c config/listener.c config/plugin_section.c
// fuzz-sources: util/log.c util/sockaddr.c util/net.c codec/auth_relay.c codec/milter_socket.c
// fuzz-pkgs: openssl
/*
 * Config text from anywhere (a file, an -o override) must give a config or
 * errors, never a crash.  Host names are refused rather than resolved: a fuzz
 * run must not send DNS queries.  Settings only: no plugin is loaded (that is
 * chain/'s, after the settings), whatever path an input names.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "config/config.h"
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
    }
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    const char *ov[] = {text};
    const struct config_load_opts opts = {.numeric_hosts = true};
    struct sg_config *c = config_load(NULL, ov, 1, &opts);
    if (c)
        config_unref(c);
    free(text);
    return 0;
}
