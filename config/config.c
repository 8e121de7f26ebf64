/*
 * config - libconfuse front-end for the daemon's settings.
 *
 * The file is parsed first, then each "-o" override as a buffer in the same
 * syntax on top of it (a later value replaces an earlier one; a repeated
 * "upstream NAME { }" section replaces that section whole).  Every value is
 * checked by a validation callback while libconfuse still knows the line, so
 * each error an admin sees names the file and line.  Only a config without any
 * error is turned into a struct sg_config; otherwise config_load returns NULL
 * and the caller keeps what it had.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <confuse.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain/chain.h"
#include "util/log.h"
#include "codec/milter_socket.h"
#include "chain/plugin_host.h"
#include "daemon/runtime.h"

#ifndef SMTPGATE_PLUGIN_DIR
#define SMTPGATE_PLUGIN_DIR "/usr/local/lib/smtpgate/plugins"
#endif

/* The name errors carry while an override buffer is parsed ("-o #2"). */
static __thread const char *config_source_name;
static __thread int config_error_count;
static bool config_numeric_only;
static bool config_no_upstream_ok;

void config_upstream_optional(bool optional)
{
    config_no_upstream_ok = optional;
}

void config_numeric_hosts_only(bool only)
{
    config_numeric_only = only;
}

void config_where(const cfg_t *cfg, char *out, size_t out_size)
{
    const char *name = config_source_name ? config_source_name : cfg->filename;
    snprintf(out, out_size, "%s:%d", name ? name : "(config)", cfg->line);
}

/* Pass 1 only looks for plugin sections; its complaints are pass 2's to make. */
static void config_silent_error_fn(cfg_t *cfg, const char *fmt, va_list ap)
{
    (void)cfg;
    (void)fmt;
    (void)ap;
}

static void config_error_fn(cfg_t *cfg, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    const char *name = config_source_name ? config_source_name : cfg->filename;
    if (cfg->line > 0)
        log_err("%s:%d: %s", name ? name : "(config)", cfg->line, msg);
    else
        log_err("%s: %s", name ? name : "(config)", msg);
    config_error_count++;
}

const char *config_parse_sockaddr(const char *text, bool passive, struct sg_sockaddr *out)
{
    char host[256];
    const char *port;
    size_t hlen;

    memset(out, 0, sizeof(*out));
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end || end[1] != ':')
            return "expected [IPv6-address]:port";
        hlen = (size_t)(end - text - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            return "bad IPv6 address";
        memcpy(host, text + 1, hlen);
        port = end + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon)
            return "expected host:port";
        if (memchr(text, ':', (size_t)(colon - text)))
            return "IPv6 addresses need brackets: [address]:port";
        hlen = (size_t)(colon - text);
        if (hlen == 0 || hlen >= sizeof(host))
            return "missing or too long host";
        memcpy(host, text, hlen);
        port = colon + 1;
    }
    host[hlen] = '\0';

    char *endp;
    errno = 0;
    long p = strtol(port, &endp, 10);
    if (*port == '\0' || *endp != '\0' || errno || p < 1 || p > 65535)
        return "port must be a number from 1 to 65535";

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    if (config_numeric_only)
        hints.ai_flags |= AI_NUMERICHOST;
    if (passive)
        hints.ai_flags |= AI_PASSIVE;
    const char *lookup = host;
    if (strcmp(host, "*") == 0) {
        if (!passive)
            return "\"*\" is only for listen addresses";
        lookup = NULL;
        hints.ai_family = AF_INET;
    }
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(lookup, port, &hints, &res);
    if (rc != 0 || !res)
        return rc == EAI_NONAME ? "host name not found" : gai_strerror(rc);
    memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);

    char numeric[INET6_ADDRSTRLEN];
    const void *a = out->sa.ss_family == AF_INET6
                        ? (const void *)&((struct sockaddr_in6 *)&out->sa)->sin6_addr
                        : (const void *)&((struct sockaddr_in *)&out->sa)->sin_addr;
    inet_ntop(out->sa.ss_family, a, numeric, sizeof(numeric));
    snprintf(out->text, sizeof(out->text), out->sa.ss_family == AF_INET6 ? "[%s]:%ld" : "%s:%ld",
             numeric, p);
    return NULL;
}

/*
 * Values are checked by libconfuse parse callbacks: they run while the value's
 * own line is current (validation callbacks run only after the lexer has read
 * ahead, past comments, and would name the wrong line).  A string callback
 * hands the value back unchanged through result.
 */
static int config_pass_string(const char *value, void *result)
{
    *(const char **)result = value;
    return 0;
}

static int config_cb_listen(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    (void)opt;
    struct sg_sockaddr sa;
    const char *why = config_parse_sockaddr(value, true, &sa);
    if (why) {
        cfg_error(cfg, "listen address \"%s\": %s", value, why);
        return -1;
    }
    return config_pass_string(value, result);
}

static int config_cb_upstream_address(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    (void)opt;
    struct sg_sockaddr sa;
    const char *why = config_parse_sockaddr(value, false, &sa);
    if (why) {
        cfg_error(cfg, "upstream address \"%s\": %s", value, why);
        return -1;
    }
    return config_pass_string(value, result);
}

static int config_check_choice(cfg_t *cfg, cfg_opt_t *opt, const char *value,
                               const char *const *choices)
{
    for (size_t i = 0; choices[i]; i++)
        if (strcmp(value, choices[i]) == 0)
            return 0;
    char list[256] = "";
    for (size_t i = 0; choices[i]; i++) {
        strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
        strncat(list, choices[i], sizeof(list) - strlen(list) - 1);
    }
    cfg_error(cfg, "'%s' is \"%s\"; expected one of: %s", opt->name, value, list);
    return -1;
}

static int config_cb_milter_socket(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    (void)opt;
    const char *why = milter_socket_check(value);
    if (why) {
        cfg_error(cfg, "milter socket \"%s\": %s", value, why);
        return -1;
    }
    return config_pass_string(value, result);
}

static const char *const identity_choices[] = {"xclient", "proxy", "none", NULL};
static const char *const newline_choices[] = {"reject", "normalize", NULL};

static int config_cb_identity(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    if (config_check_choice(cfg, opt, value, identity_choices) < 0)
        return -1;
    return config_pass_string(value, result);
}

static int config_cb_newline(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    if (config_check_choice(cfg, opt, value, newline_choices) < 0)
        return -1;
    return config_pass_string(value, result);
}

static int config_cb_facility(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    (void)opt;
    if (log_facility_from_name(value) < 0) {
        cfg_error(cfg, "unknown syslog facility \"%s\"", value);
        return -1;
    }
    return config_pass_string(value, result);
}

static int config_cb_hostname(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    (void)opt;
    size_t n = strlen(value);
    if (n == 0 || n > 255 ||
        strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789.-_") != n) {
        cfg_error(cfg, "'hostname' must be a domain name of 1 to 255 characters");
        return -1;
    }
    return config_pass_string(value, result);
}

static int config_cb_metrics(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    (void)opt;
    struct sg_sockaddr sa;
    const char *why = value[0] ? config_parse_sockaddr(value, true, &sa) : NULL;
    if (why) {
        cfg_error(cfg, "metrics_listen address \"%s\": %s", value, why);
        return -1;
    }
    return config_pass_string(value, result);
}

static int config_cb_nameserver(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    (void)opt;
    struct sg_sockaddr sa;
    char buf[128];
    /* evdns takes "ip", "ip:port" and "[v6]:port"; checked as ours, port 53 if none. */
    snprintf(buf, sizeof(buf), strchr(value, ':') ? "%s" : "%s:53", value);
    bool numeric_before = config_numeric_only;
    config_numeric_only = true;
    const char *why = value[0] ? config_parse_sockaddr(buf, false, &sa) : NULL;
    config_numeric_only = numeric_before;
    if (why) {
        cfg_error(cfg, "dns_nameserver \"%s\": %s (an IP address, with :port if not 53)", value,
                  why);
        return -1;
    }
    return config_pass_string(value, result);
}

/* Integer settings with their bounds, checked by one callback. */
struct config_int {
    const char *name;
    long def;
    long min;
    long max;
};

static const struct config_int config_ints[] = {
    {"workers", 0, 0, 256},
    {"spill_threshold", 1048576, 0, 1L << 30},
    {"max_message_size", 10240000, 1, 1L << 40},
    {"max_recipients", 1000, 1, 100000},
    {"max_connections", 10000, 1, 1000000},
    {"max_connections_per_client", 50, 0, 1000000},
    {"max_line_length", 512, 512, 65536},
    {"max_data_line_length", 8192, 998, 1 << 20},
    {"hard_error_limit", 20, 1, 1000},
    {"max_header_size", 102400, 1024, 16 << 20},
    {"command_timeout", 300, 1, 86400},
    {"data_timeout", 180, 1, 86400},
    {"connect_grace", 60, 1, 86400},
    {"upstream_connect_timeout", 30, 1, 3600},
    {"upstream_greeting_timeout", 300, 1, 3600},
    {"upstream_command_timeout", 300, 1, 3600},
    {"upstream_data_timeout", 180, 1, 3600},
    {"upstream_final_timeout", 600, 1, 3600},
    {"probe_interval", 30, 1, 86400},
    {"shutdown_grace", 30, 0, 86400},
    {"plugin_threads", 8, 1, 256},
    {"dns_timeout", 5, 1, 60},
};
#define CONFIG_NINTS (sizeof(config_ints) / sizeof(config_ints[0]))

int config_int_in_range(struct cfg_t *cfg, const char *name, const char *value, long min, long max,
                        void *result)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 0);
    if (*value == '\0' || *end != '\0' || errno) {
        cfg_error(cfg, "'%s' is \"%s\"; it must be a whole number", name, value);
        return -1;
    }
    if (v < min || v > max) {
        cfg_error(cfg, "'%s' is %ld; it must be from %ld to %ld", name, v, min, max);
        return -1;
    }
    *(long *)result = v;
    return 0;
}

static int config_cb_int(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    long min = 0, max = 65535; /* upstream priority */
    for (size_t i = 0; i < CONFIG_NINTS; i++) {
        if (strcmp(opt->name, config_ints[i].name) == 0) {
            min = config_ints[i].min;
            max = config_ints[i].max;
        }
    }
    return config_int_in_range(cfg, opt->name, value, min, max, result);
}

static cfg_t *config_schema(cfg_opt_t *plugin_opts, bool lenient)
{
    static cfg_opt_t upstream_opts[] = {
        CFG_STR_CB("address", NULL, CFGF_NODEFAULT, config_cb_upstream_address),
        CFG_INT_CB("priority", 10, CFGF_NONE, config_cb_int),
        CFG_END(), /* replaced by upstream_tls_cfg_opts below */
        CFG_END(),
        CFG_END(),
        CFG_END(),
        CFG_END(),
    };
    static cfg_opt_t milter_opts[] = {
        CFG_STR_CB("socket", "inet:8890@127.0.0.1", CFGF_NONE, config_cb_milter_socket),
        CFG_END(),
    };
    static cfg_opt_t opts[CONFIG_NINTS + 24];
    static bool built;
    static size_t plugin_slot;

    if (!built) {
        size_t k = 0;
        for (size_t i = 0; upstream_tls_cfg_opts[i].name; i++)
            upstream_opts[2 + i] = upstream_tls_cfg_opts[i];
        opts[k++] = (cfg_opt_t)CFG_STR_CB("hostname", "smtpgate.localdomain", CFGF_NONE,
                                          config_cb_hostname);
        opts[k++] = (cfg_opt_t)CFG_STR_LIST_CB("listen", "{\"127.0.0.1:2525\"}", CFGF_NONE,
                                               config_cb_listen);
        opts[k++] =
            (cfg_opt_t)CFG_STR_CB("client_identity", "xclient", CFGF_NONE, config_cb_identity);
        opts[k++] = (cfg_opt_t)CFG_SEC("upstream", upstream_opts, CFGF_MULTI | CFGF_TITLE);
        opts[k++] = (cfg_opt_t)CFG_SEC("listener", listener_cfg_opts(), CFGF_MULTI | CFGF_TITLE);
        opts[k++] = (cfg_opt_t)CFG_STR_CB("bare_newline", "reject", CFGF_NONE, config_cb_newline);
        opts[k++] = (cfg_opt_t)CFG_STR("spool_dir", "/var/spool/smtpgate", CFGF_NONE);
        opts[k++] =
            (cfg_opt_t)CFG_STR("quarantine_dir", "/var/spool/smtpgate/quarantine", CFGF_NONE);
        opts[k++] = (cfg_opt_t)CFG_STR_CB("metrics_listen", "", CFGF_NONE, config_cb_metrics);
        opts[k++] = (cfg_opt_t)CFG_BOOL("client_name_lookup", cfg_true, CFGF_NONE);
        opts[k++] = (cfg_opt_t)CFG_STR("plugin_dir", SMTPGATE_PLUGIN_DIR, CFGF_NONE);
        opts[k++] = (cfg_opt_t)CFG_STR_CB("dns_nameserver", "", CFGF_NONE, config_cb_nameserver);
        plugin_slot = k;
        opts[k++] = (cfg_opt_t)CFG_END(); /* the plugin section, set per load */
        opts[k++] = (cfg_opt_t)CFG_STR_CB("syslog_facility", "mail", CFGF_NONE, config_cb_facility);
        for (size_t i = 0; i < CONFIG_NINTS; i++)
            opts[k++] = (cfg_opt_t)CFG_INT_CB(config_ints[i].name, config_ints[i].def, CFGF_NONE,
                                              config_cb_int);
        opts[k++] = (cfg_opt_t)CFG_SEC("milter", milter_opts, CFGF_NONE);
        opts[k++] = (cfg_opt_t)CFG_END();
        built = true;
    }
    /* Titled and in order: the chain runs in the order of the sections. */
    opts[plugin_slot] = (cfg_opt_t)CFG_SEC("plugin", plugin_opts, CFGF_MULTI | CFGF_TITLE);

    cfg_t *cfg = cfg_init(opts, lenient ? CFGF_IGNORE_UNKNOWN : CFGF_NONE);
    if (!cfg)
        return NULL;
    cfg_set_error_function(cfg, lenient ? config_silent_error_fn : config_error_fn);
    return cfg;
}

static int config_upstream_cmp(const void *a, const void *b)
{
    const struct sg_upstream_cfg *x = a, *y = b;
    return x->priority - y->priority;
}

static unsigned config_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

/* Checks that need the whole file: libconfuse validates only values given. */
static int config_check_complete(cfg_t *cfg, const char *file)
{
    int errors = 0;
    for (unsigned i = 0; i < cfg_size(cfg, "upstream"); i++) {
        cfg_t *u = cfg_getnsec(cfg, "upstream", i);
        if (!cfg_getstr(u, "address")) {
            log_err("%s:%d: upstream %s has no address", file ? file : "-o", u->line, cfg_title(u));
            errors++;
        }
    }
    return errors;
}

static struct sg_config *config_build(cfg_t *cfg, const char *file)
{
    struct sg_config *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->hostname = strdup(cfg_getstr(cfg, "hostname"));
    c->spool_dir = strdup(cfg_getstr(cfg, "spool_dir"));
    c->quarantine_dir = strdup(cfg_getstr(cfg, "quarantine_dir"));
    c->metrics_listen = strdup(cfg_getstr(cfg, "metrics_listen"));

    c->nlisten = cfg_size(cfg, "listen");
    /* With "listener" sections only, the built-in default "listen" is not wanted. */
    if (listener_config_count(cfg) > 0 && !(cfg_getopt(cfg, "listen")->flags & CFGF_MODIFIED))
        c->nlisten = 0;
    size_t nplain = c->nlisten;
    c->listen = calloc(nplain + listener_config_count(cfg) + 1, sizeof(*c->listen));
    for (size_t i = 0; c->listen && i < c->nlisten; i++)
        config_parse_sockaddr(cfg_getnstr(cfg, "listen", (unsigned)i), true, &c->listen[i]);

    int edge_errors = 0;
    if (c->listen && listener_config_build(cfg, c, nplain, file) < 0)
        edge_errors++;
    c->nupstreams = cfg_size(cfg, "upstream");
    c->upstreams = calloc(c->nupstreams ? c->nupstreams : 1, sizeof(*c->upstreams));
    for (size_t i = 0; c->upstreams && i < c->nupstreams; i++) {
        cfg_t *u = cfg_getnsec(cfg, "upstream", (unsigned)i);
        c->upstreams[i].name = strdup(cfg_title(u));
        c->upstreams[i].priority = (int)cfg_getint(u, "priority");
        config_parse_sockaddr(cfg_getstr(u, "address"), false, &c->upstreams[i].addr);
        if (upstream_tls_build(u, &c->upstreams[i], file) < 0)
            edge_errors++;
    }
    /* Stable for equal priorities: qsort is not, so break ties by position. */
    for (size_t i = 0; i < c->nupstreams; i++)
        c->upstreams[i].priority = c->upstreams[i].priority * 1024 + (int)i;
    if (c->upstreams)
        qsort(c->upstreams, c->nupstreams, sizeof(*c->upstreams), config_upstream_cmp);
    for (size_t i = 0; i < c->nupstreams; i++)
        c->upstreams[i].priority /= 1024;

    const char *id = cfg_getstr(cfg, "client_identity");
    c->identity = strcmp(id, "proxy") == 0  ? IDENTITY_PROXY
                  : strcmp(id, "none") == 0 ? IDENTITY_NONE
                                            : IDENTITY_XCLIENT;
    c->newline_policy = strcmp(cfg_getstr(cfg, "bare_newline"), "normalize") == 0
                            ? DATA_NEWLINE_NORMALIZE
                            : DATA_NEWLINE_REJECT;
    c->syslog_facility = log_facility_from_name(cfg_getstr(cfg, "syslog_facility"));

    long w = cfg_getint(cfg, "workers");
    c->workers = w == 0 ? config_cores() : (unsigned)w;
    c->spill_threshold = (size_t)cfg_getint(cfg, "spill_threshold");
    c->max_message_size = (uint64_t)cfg_getint(cfg, "max_message_size");
    c->max_recipients = (unsigned)cfg_getint(cfg, "max_recipients");
    c->max_connections = (unsigned)cfg_getint(cfg, "max_connections");
    c->max_connections_per_client = (unsigned)cfg_getint(cfg, "max_connections_per_client");
    c->max_line_length = (size_t)cfg_getint(cfg, "max_line_length");
    c->max_data_line_length = (size_t)cfg_getint(cfg, "max_data_line_length");
    c->hard_error_limit = (unsigned)cfg_getint(cfg, "hard_error_limit");
    c->max_header_size = (size_t)cfg_getint(cfg, "max_header_size");
    c->command_timeout = (unsigned)cfg_getint(cfg, "command_timeout");
    c->data_timeout = (unsigned)cfg_getint(cfg, "data_timeout");
    c->connect_grace = (unsigned)cfg_getint(cfg, "connect_grace");
    c->upstream_connect_timeout = (unsigned)cfg_getint(cfg, "upstream_connect_timeout");
    c->upstream_greeting_timeout = (unsigned)cfg_getint(cfg, "upstream_greeting_timeout");
    c->upstream_command_timeout = (unsigned)cfg_getint(cfg, "upstream_command_timeout");
    c->upstream_data_timeout = (unsigned)cfg_getint(cfg, "upstream_data_timeout");
    c->upstream_final_timeout = (unsigned)cfg_getint(cfg, "upstream_final_timeout");
    c->probe_interval = (unsigned)cfg_getint(cfg, "probe_interval");
    c->shutdown_grace = (unsigned)cfg_getint(cfg, "shutdown_grace");
    c->plugin_threads = (unsigned)cfg_getint(cfg, "plugin_threads");
    c->client_name_lookup = cfg_getbool(cfg, "client_name_lookup");
    c->dns_nameserver = strdup(cfg_getstr(cfg, "dns_nameserver"));
    c->dns_timeout = (unsigned)cfg_getint(cfg, "dns_timeout");

    if (edge_errors) {
        config_unref(c);
        return NULL;
    }
    bool ok = c->hostname && c->spool_dir && c->quarantine_dir && c->metrics_listen &&
              c->dns_nameserver && c->listen && c->upstreams && c->listeners;
    for (size_t i = 0; ok && i < c->nupstreams; i++)
        ok = c->upstreams[i].name != NULL;
    if (!ok) {
        log_err("%s: out of memory", file ? file : "(config)");
        config_unref(c);
        return NULL;
    }
    if (c->nupstreams == 0 && !config_no_upstream_ok) {
        log_err("%s: no 'upstream NAME { address = \"host:port\" }' section", file ? file : "-o");
        config_unref(c);
        return NULL;
    }
    c->milter_socket = strdup(cfg_getstr(cfg_getsec(cfg, "milter"), "socket"));
    if (!c->milter_socket) {
        log_err("%s: out of memory", file ? file : "(config)");
        config_unref(c);
        return NULL;
    }
    return c;
}

/*
 * libconfuse 3.3 miscounts lines after comments (each one shifts later line
 * numbers), so comments are blanked out here, newlines kept, and the parser
 * sees text whose line numbers are the file's.  Quoted strings are left alone
 * ('#' may appear in a value); an unterminated string or comment is left for
 * the parser to report.
 */
static void config_blank_comments(char *t)
{
    char quote = 0;
    for (char *p = t; *p; p++) {
        if (quote) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == quote)
                quote = 0;
            continue;
        }
        if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
            while (*p && *p != '\n')
                *p++ = ' ';
            if (!*p)
                break;
        } else if (p[0] == '/' && p[1] == '*') {
            char *end = strstr(p + 2, "*/");
            if (!end)
                break;
            for (; p < end + 2; p++)
                if (*p != '\n')
                    *p = ' ';
            p--;
        }
    }
}

static char *config_read_file(const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return NULL;
    char *text = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *n = realloc(text, cap);
            if (!n || cap > (64u << 20)) {
                free(n ? n : text);
                fclose(f);
                errno = n ? EFBIG : ENOMEM;
                return NULL;
            }
            text = n;
        }
        size_t r = fread(text + len, 1, 4096, f);
        len += r;
        if (r < 4096)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(text);
        errno = EIO;
        return NULL;
    }
    text[len] = '\0';
    return text;
}

static int config_parse_text(cfg_t *cfg, const char *name, char *text)
{
    config_blank_comments(text);
    config_source_name = name;
    int rc = cfg_parse_buf(cfg, text);
    config_source_name = NULL;
    return rc;
}

/* The file, then each override, into cfg; CFG_SUCCESS or the first failure. */
static int config_parse_all(cfg_t *cfg, const char *file, const char *const *overrides,
                            size_t noverrides, bool report)
{
    int rc = CFG_SUCCESS;
    if (file) {
        char *text = config_read_file(file);
        if (!text) {
            if (report) {
                log_err("%s: cannot read: %s", file, strerror(errno));
                config_error_count++;
            }
            rc = CFG_FILE_ERROR;
        } else {
            rc = config_parse_text(cfg, file, text);
            free(text);
        }
    }
    for (size_t i = 0; rc == CFG_SUCCESS && i < noverrides; i++) {
        char name[32];
        snprintf(name, sizeof(name), "-o #%zu", i + 1);
        char *text = strdup(overrides[i]);
        if (!text) {
            rc = CFG_PARSE_ERROR;
            break;
        }
        rc = config_parse_text(cfg, name, text);
        free(text);
    }
    return rc;
}

/*
 * Two passes, because a plugin's options are known only once its shared
 * object is loaded: the first collects the plugin sections' paths (nothing
 * else is judged), the plugins are loaded, and the second parse knows every
 * option and reports every error.
 */
struct sg_config *config_load(const char *file, const char *const *overrides, size_t noverrides)
{
    config_error_count = 0;
    config_source_name = NULL;
    struct plugin_prep *prep = plugin_prep_new();
    cfg_t *first = prep ? config_schema(plugin_prep_pass1_opts(), true) : NULL;
    if (!first) {
        plugin_prep_free(prep);
        log_err("out of memory reading the configuration");
        return NULL;
    }
    plugin_prep_use(prep);
    config_parse_all(first, file, overrides, noverrides, false);
    plugin_prep_set_dir(prep, cfg_getstr(first, "plugin_dir"));
    cfg_free(first);
    plugin_prep_use(NULL);
    config_error_count += plugin_prep_load(prep);

    cfg_opt_t *plugin_opts = plugin_prep_section_opts(prep);
    cfg_t *cfg = plugin_opts ? config_schema(plugin_opts, false) : NULL;
    if (!cfg) {
        plugin_prep_free(prep);
        log_err("out of memory reading the configuration");
        return NULL;
    }
    plugin_prep_use(prep);
    int rc = config_parse_all(cfg, file, overrides, noverrides, true);
    plugin_prep_use(NULL);

    struct sg_config *c = NULL;
    if (rc == CFG_SUCCESS && config_error_count == 0 && config_check_complete(cfg, file) == 0)
        c = config_build(cfg, file);
    else if (config_error_count == 0 && rc != CFG_SUCCESS)
        log_err("%s: configuration not valid", file ? file : "-o");
    if (c) {
        struct sg_config *running = runtime_config();
        int errors = 0;
        c->generation = running ? running->generation + 1 : 1;
        c->chain =
            plugin_prep_build(prep, cfg, running ? running->chain : NULL, c->generation, &errors);
        if (running)
            config_unref(running);
        if (errors) {
            config_unref(c);
            c = NULL;
        }
    }
    cfg_free(cfg);
    plugin_prep_free(prep);
    return c;
}

struct sg_config *config_ref(struct sg_config *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void config_unref(struct sg_config *c)
{
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; c->upstreams && i < c->nupstreams; i++) {
        free(c->upstreams[i].name);
        upstream_tls_free(&c->upstreams[i]);
    }
    listener_config_free(c);
    free(c->upstreams);
    chain_unref(c->chain);
    free(c->quarantine_dir);
    free(c->metrics_listen);
    free(c->dns_nameserver);
    free(c->listen);
    free(c->hostname);
    free(c->spool_dir);
    free(c->milter_socket);
    free(c);
}
