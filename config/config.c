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
#include <assert.h>
#include "config/config.h"

#include <confuse.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/milter_socket.h"
#include "config/config_value.h"
#include "config/plugin_section.h"
#include "util/build_info.h"
#include "util/log.h"
#include "util/sockaddr.h"

/*
 * The last error of a parse: where it was, and whether the parse may go on
 * without that line (a bad value or an unknown key) or the text's structure
 * is broken there (a syntax error, after which nothing more can be trusted).
 * Configurations are loaded by one thread at a time (the main thread).
 */
static struct {
    int text; /* index of the text being parsed (config_text), -1 none */
    int line;
    bool syntax;
} config_last_error;
static int config_current_text;

/* Every cfg_t (sections too: libconfuse copies it) carries the name of the
 * text being parsed as its filename, so an error needs no other state. */
static void config_error_fn(cfg_t *cfg, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    const char *name = config_value_source(cfg);
    if (cfg->line > 0)
        log_err("%s:%d: %s", name, cfg->line, msg);
    else
        log_err("%s: %s", name, msg);
    config_last_error.text = config_current_text;
    config_last_error.line = cfg->line;
    config_last_error.syntax = strstr(msg, "unexpected") || strstr(msg, "end of file") ||
                               strstr(msg, "unterminated") || strstr(msg, "syntax");
}

/*
 * Values are checked by libconfuse parse callbacks: they run while the value's
 * own line is current (validation callbacks run only after the lexer has read
 * ahead, past comments, and would name the wrong line).  A string callback
 * hands the value back unchanged through result.
 */
#define config_pass_string config_value_pass

/* An address setting: what names it in errors ("listen"); "" allowed when
 * empty_ok (an optional one, off when empty). */
static int config_address(cfg_t *cfg, const char *what, const char *value, void *result,
                          unsigned flags, bool empty_ok)
{
    struct sg_sockaddr sa;
    const char *why = value[0] || !empty_ok ? sockaddr_parse(value, flags, &sa) : NULL;
    if (why) {
        cfg_error(cfg, "%s address \"%s\": %s", what, value, why);
        return -1;
    }
    return config_pass_string(value, result);
}

/* Each address callback twice: resolving names, and refusing them
 * (config_load_opts.numeric_hosts picks the schema with the second). */
#define CONFIG_ADDRESS_CB(fn, what, flags, empty_ok)                                               \
    static int fn(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)                     \
    {                                                                                              \
        (void)opt;                                                                                 \
        return config_address(cfg, what, value, result, flags, empty_ok);                          \
    }                                                                                              \
    static int fn##_numeric(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)           \
    {                                                                                              \
        (void)opt;                                                                                 \
        return config_address(cfg, what, value, result, (flags) | SOCKADDR_NUMERIC, empty_ok);     \
    }

CONFIG_ADDRESS_CB(config_cb_listen, "listen", SOCKADDR_PASSIVE, false)
CONFIG_ADDRESS_CB(config_cb_upstream_address, "upstream", 0, false)
CONFIG_ADDRESS_CB(config_cb_metrics, "metrics_listen", SOCKADDR_PASSIVE, true)

static int config_check_choice(cfg_t *cfg, cfg_opt_t *opt, const char *value,
                               const char *const *choices)
{
    const char *ignored;
    return config_value_choice(cfg, opt->name, value, choices, &ignored);
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
    if (n == 0 || n > CONFIG_HOSTNAME_MAX ||
        strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789.-_") != n) {
        cfg_error(cfg, "'hostname' must be a domain name of 1 to 255 characters");
        return -1;
    }
    return config_pass_string(value, result);
}

static int config_cb_nameserver(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    (void)opt;
    struct sg_sockaddr sa;
    char buf[128];
    /* evdns takes "ip", "ip:port" and "[v6]:port"; checked as ours, port 53 if
     * none.  Always numeric: the resolver cannot look up its own server. */
    int n = snprintf(buf, sizeof(buf), strchr(value, ':') ? "%s" : "%s:53", value);
    const char *why = n < 0 || (size_t)n >= sizeof(buf) ? "too long"
                      : value[0]                        ? sockaddr_parse(buf, SOCKADDR_NUMERIC, &sa)
                                                        : NULL;
    if (why) {
        cfg_error(cfg, "dns_nameserver \"%s\": %s (an IP address, with :port if not 53)", value,
                  why);
        return -1;
    }
    return config_pass_string(value, result);
}

/* control_socket: an absolute path that fits a sockaddr_un (108 octets with
 * its NUL), or "" for none. */
static int config_cb_control_socket(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    (void)opt;
    size_t n = strlen(value);
    if (n && (value[0] != '/' || n > 107)) {
        cfg_error(cfg, "control_socket \"%s\": an absolute path of at most 107 octets, or \"\" "
                       "for none",
                  value);
        return -1;
    }
    return config_pass_string(value, result);
}

/* control_socket_mode: octal permission bits, as chmod(1) takes them; the
 * socket is never executable nor set-id, so only rw bits are meaningful. */
static int config_cb_socket_mode(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    (void)opt;
    size_t n = strlen(value);
    char *end = NULL;
    unsigned long m = n ? strtoul(value, &end, 8) : 0;
    if (n == 0 || n > 4 || *end != '\0' || (m & ~0666ul) || !(m & 0600ul) ||
        strspn(value, "01234567") != n) {
        cfg_error(cfg, "control_socket_mode \"%s\": octal read/write bits that include the "
                       "owner's, such as \"0600\" or \"0660\"",
                  value);
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
    {"greet_delay", 0, 0, 60},
    {"upstream_connect_timeout", 30, 1, 3600},
    {"upstream_greeting_timeout", 300, 1, 3600},
    {"upstream_command_timeout", 300, 1, 3600},
    {"upstream_data_timeout", 180, 1, 3600},
    {"upstream_final_timeout", 600, 1, 3600},
    {"probe_interval", 30, 1, 86400},
    {"shutdown_grace", 30, 0, 86400},
    {"plugin_threads", 8, 1, 256},
    {"dns_timeout", 5, 1, 60},
    {"status_recent", 50, 0, 1000},
};
#define CONFIG_NINTS (sizeof(config_ints) / sizeof(config_ints[0]))

static int config_cb_int(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    long min = 0, max = 65535; /* upstream priority */
    for (size_t i = 0; i < CONFIG_NINTS; i++) {
        if (strcmp(opt->name, config_ints[i].name) == 0) {
            min = config_ints[i].min;
            max = config_ints[i].max;
        }
    }
    return config_value_int(cfg, opt->name, value, min, max, result);
}

/* One load's schema: libconfuse copies it in cfg_init, so it lives on the
 * loader's stack; numeric picks the address callbacks that refuse names. */
struct config_schema {
    cfg_opt_t upstream[8];
    cfg_opt_t milter[2];
    cfg_opt_t top[CONFIG_NINTS + 32];
};

static cfg_t *config_schema(struct config_schema *s, bool numeric)
{
    size_t k = 0;
    cfg_opt_t *u = s->upstream;
    u[k++] = (cfg_opt_t)CFG_STR_CB("address", NULL, CFGF_NODEFAULT,
                                   numeric ? config_cb_upstream_address_numeric
                                           : config_cb_upstream_address);
    u[k++] = (cfg_opt_t)CFG_INT_CB("priority", 10, CFGF_NONE, config_cb_int);
    for (size_t i = 0; upstream_tls_cfg_opts[i].name && k + 1 < 8; i++)
        u[k++] = upstream_tls_cfg_opts[i];
    u[k] = (cfg_opt_t)CFG_END();
    s->milter[0] =
        (cfg_opt_t)CFG_STR_CB("socket", "inet:8890@127.0.0.1", CFGF_NONE, config_cb_milter_socket);
    s->milter[1] = (cfg_opt_t)CFG_END();

    cfg_opt_t *o = s->top;
    k = 0;
    o[k++] =
        (cfg_opt_t)CFG_STR_CB("hostname", "smtpgate.localdomain", CFGF_NONE, config_cb_hostname);
    o[k++] = (cfg_opt_t)CFG_STR_LIST_CB("listen", "{\"127.0.0.1:2525\"}", CFGF_NONE,
                                        numeric ? config_cb_listen_numeric : config_cb_listen);
    o[k++] = (cfg_opt_t)CFG_STR_CB("client_identity", "xclient", CFGF_NONE, config_cb_identity);
    o[k++] = (cfg_opt_t)CFG_SEC("upstream", s->upstream, CFGF_MULTI | CFGF_TITLE);
    o[k++] = (cfg_opt_t)CFG_SEC("listener", listener_cfg_opts(numeric), CFGF_MULTI | CFGF_TITLE);
    o[k++] = (cfg_opt_t)CFG_STR_CB("bare_newline", "reject", CFGF_NONE, config_cb_newline);
    o[k++] = (cfg_opt_t)CFG_STR("spool_dir", SMTPGATE_SPOOL_DIR, CFGF_NONE);
    o[k++] = (cfg_opt_t)CFG_STR("quarantine_dir", SMTPGATE_SPOOL_DIR "/quarantine", CFGF_NONE);
    o[k++] = (cfg_opt_t)CFG_STR_CB("metrics_listen", "", CFGF_NONE,
                                   numeric ? config_cb_metrics_numeric : config_cb_metrics);
    o[k++] = (cfg_opt_t)CFG_STR("verdict_log", "", CFGF_NONE);
    o[k++] = (cfg_opt_t)CFG_STR("greet_delay_skip_symbol", "DNSBL_ALLOWLISTED", CFGF_NONE);
    o[k++] = (cfg_opt_t)CFG_BOOL("status_page", cfg_true, CFGF_NONE);
    o[k++] = (cfg_opt_t)CFG_BOOL("client_name_lookup", cfg_true, CFGF_NONE);
    o[k++] = (cfg_opt_t)CFG_BOOL("strict_envelopes", cfg_false, CFGF_NONE);
    o[k++] = (cfg_opt_t)CFG_STR("plugin_dir", SMTPGATE_PLUGIN_DIR, CFGF_NONE);
    o[k++] = (cfg_opt_t)CFG_STR_CB("dns_nameserver", "", CFGF_NONE, config_cb_nameserver);
    o[k++] = (cfg_opt_t)CFG_STR_CB("syslog_facility", "mail", CFGF_NONE, config_cb_facility);
    o[k++] = (cfg_opt_t)CFG_STR("user", "", CFGF_NONE);
    o[k++] = (cfg_opt_t)CFG_STR("group", "", CFGF_NONE);
    o[k++] = (cfg_opt_t)CFG_STR("chroot", "", CFGF_NONE);
    o[k++] = (cfg_opt_t)CFG_BOOL("allow_root", cfg_false, CFGF_NONE);
    o[k++] = (cfg_opt_t)CFG_STR("pidfile", "", CFGF_NONE);
    o[k++] = (cfg_opt_t)CFG_STR_CB("control_socket", SMTPGATE_RUN_DIR "/smtpgate/control.sock",
                                   CFGF_NONE, config_cb_control_socket);
    o[k++] = (cfg_opt_t)CFG_STR_CB("control_socket_mode", "0600", CFGF_NONE, config_cb_socket_mode);
    o[k++] = (cfg_opt_t)CFG_BOOL("client_identity_none_despite_xclient", cfg_false, CFGF_NONE);
    for (size_t i = 0; i < CONFIG_NINTS; i++)
        o[k++] = (cfg_opt_t)CFG_INT_CB(config_ints[i].name, config_ints[i].def, CFGF_NONE,
                                       config_cb_int);
    o[k++] = (cfg_opt_t)CFG_SEC("milter", s->milter, CFGF_NONE);
    o[k++] = (cfg_opt_t)CFG_END();
    /* The table is sized by hand; a key added past it would write beyond. */
    assert(k <= sizeof s->top / sizeof s->top[0]);

    cfg_t *cfg = cfg_init(s->top, CFGF_NONE);
    if (cfg)
        cfg_set_error_function(cfg, config_error_fn);
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
static int config_check_complete(cfg_t *cfg)
{
    int errors = 0;
    for (unsigned i = 0; i < cfg_size(cfg, "upstream"); i++) {
        cfg_t *u = cfg_getnsec(cfg, "upstream", i);
        if (!cfg_getstr(u, "address")) {
            log_err("%s:%d: upstream %s has no address", config_value_source(u), u->line,
                    cfg_title(u));
            errors++;
        }
    }
    return errors;
}

static int config_build_upstreams(cfg_t *cfg, struct sg_config *c, unsigned addr_flags)
{
    int errors = 0;
    c->nupstreams = cfg_size(cfg, "upstream");
    c->upstreams = calloc(c->nupstreams ? c->nupstreams : 1, sizeof(*c->upstreams));
    for (size_t i = 0; c->upstreams && i < c->nupstreams; i++) {
        cfg_t *u = cfg_getnsec(cfg, "upstream", (unsigned)i);
        struct sg_upstream_cfg *uc = &c->upstreams[i];
        uc->name = strdup(cfg_title(u));
        uc->source = strdup(config_value_source(u));
        uc->line = u->line;
        uc->priority = (int)cfg_getint(u, "priority");
        sockaddr_parse(cfg_getstr(u, "address"), addr_flags, &uc->addr);
        if (upstream_tls_settings(u, &uc->tls) < 0)
            errors++;
    }
    /* Stable for equal priorities: qsort is not, so break ties by position. */
    for (size_t i = 0; i < c->nupstreams; i++)
        c->upstreams[i].priority = c->upstreams[i].priority * 1024 + (int)i;
    if (c->upstreams)
        qsort(c->upstreams, c->nupstreams, sizeof(*c->upstreams), config_upstream_cmp);
    for (size_t i = 0; i < c->nupstreams; i++)
        c->upstreams[i].priority /= 1024;
    return errors;
}

static struct sg_config *config_build(cfg_t *cfg, const char *file,
                                      const struct config_load_opts *opts)
{
    struct sg_config *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    unsigned addr_flags = opts->numeric_hosts ? SOCKADDR_NUMERIC : 0;
    c->hostname = strdup(cfg_getstr(cfg, "hostname"));
    c->spool_dir = strdup(cfg_getstr(cfg, "spool_dir"));
    c->quarantine_dir = strdup(cfg_getstr(cfg, "quarantine_dir"));
    c->metrics_listen = strdup(cfg_getstr(cfg, "metrics_listen"));
    c->verdict_log = strdup(cfg_getstr(cfg, "verdict_log"));
    c->plugin_dir = strdup(cfg_getstr(cfg, "plugin_dir"));
    c->user = strdup(cfg_getstr(cfg, "user"));
    c->group = strdup(cfg_getstr(cfg, "group"));
    c->chroot_dir = strdup(cfg_getstr(cfg, "chroot"));
    c->pidfile = strdup(cfg_getstr(cfg, "pidfile"));
    c->control_socket = strdup(cfg_getstr(cfg, "control_socket"));
    c->control_socket_mode = (unsigned)strtoul(cfg_getstr(cfg, "control_socket_mode"), NULL, 8);
    c->allow_root = cfg_getbool(cfg, "allow_root");
    c->identity_none_despite_xclient = cfg_getbool(cfg, "client_identity_none_despite_xclient");

    size_t nplain = cfg_size(cfg, "listen");
    size_t nsec = listener_config_count(cfg);
    /* With "listener" sections only, the built-in default "listen" is not wanted. */
    if (nsec > 0 && !(cfg_getopt(cfg, "listen")->flags & CFGF_MODIFIED))
        nplain = 0;
    c->listen = calloc(nplain + nsec + 1, sizeof(*c->listen));
    c->listeners = calloc(nplain + nsec + 1, sizeof(*c->listeners));
    for (size_t i = 0; c->listen && i < nplain; i++)
        sockaddr_parse(cfg_getnstr(cfg, "listen", (unsigned)i), addr_flags | SOCKADDR_PASSIVE,
                       &c->listen[i]);

    int edge_errors = 0;
    if (c->listen && c->listeners &&
        listener_config_build(cfg, c->listen, c->listeners, nplain, &c->nlisten, addr_flags) < 0)
        edge_errors++;
    edge_errors += config_build_upstreams(cfg, c, addr_flags);

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
    c->greet_delay = (unsigned)cfg_getint(cfg, "greet_delay");
    c->greet_delay_skip_symbol = strdup(cfg_getstr(cfg, "greet_delay_skip_symbol"));
    c->upstream_connect_timeout = (unsigned)cfg_getint(cfg, "upstream_connect_timeout");
    c->upstream_greeting_timeout = (unsigned)cfg_getint(cfg, "upstream_greeting_timeout");
    c->upstream_command_timeout = (unsigned)cfg_getint(cfg, "upstream_command_timeout");
    c->upstream_data_timeout = (unsigned)cfg_getint(cfg, "upstream_data_timeout");
    c->upstream_final_timeout = (unsigned)cfg_getint(cfg, "upstream_final_timeout");
    c->probe_interval = (unsigned)cfg_getint(cfg, "probe_interval");
    c->status_recent = (unsigned)cfg_getint(cfg, "status_recent");
    c->status_page = cfg_getbool(cfg, "status_page");
    c->shutdown_grace = (unsigned)cfg_getint(cfg, "shutdown_grace");
    c->plugin_threads = (unsigned)cfg_getint(cfg, "plugin_threads");
    c->client_name_lookup = cfg_getbool(cfg, "client_name_lookup");
    c->strict_envelopes = cfg_getbool(cfg, "strict_envelopes");
    c->dns_nameserver = strdup(cfg_getstr(cfg, "dns_nameserver"));
    c->dns_timeout = (unsigned)cfg_getint(cfg, "dns_timeout");
    c->milter_socket = strdup(cfg_getstr(cfg_getsec(cfg, "milter"), "socket"));

    if (edge_errors) {
        config_unref(c);
        return NULL;
    }
    bool ok = c->hostname && c->spool_dir && c->quarantine_dir && c->metrics_listen &&
              c->verdict_log && c->greet_delay_skip_symbol && c->plugin_dir && c->user && c->group && c->chroot_dir &&
              c->pidfile && c->control_socket && c->dns_nameserver && c->listen && c->upstreams && c->listeners &&
              c->milter_socket;
    for (size_t i = 0; ok && i < c->nupstreams; i++)
        ok = c->upstreams[i].name && c->upstreams[i].source;
    if (!ok) {
        log_err("%s: out of memory", file ? file : "(config)");
        config_unref(c);
        return NULL;
    }
    if (c->nupstreams == 0 && !opts->upstream_optional) {
        log_err("%s: no 'upstream NAME { address = \"host:port\" }' section", file ? file : "-o");
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
/* A line that reads like a setting or a section ("key =", "name {"). */
static bool config_line_is_setting(const char *p)
{
    p += strspn(p, " \t");
    size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
    if (n == 0)
        return false;
    p += n;
    p += strspn(p, " \t");
    if (*p == '=' || *p == '{')
        return true;
    /* "upstream NAME {" */
    n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
    return n > 0 && p[n + strspn(p + n, " \t")] == '{';
}

/* The line a string opened on: a string that runs into a line reading like
 * a setting (or to the end) lacks its closing quote there.  A string may
 * hold a newline (a multi-line SMTP reply), so the next line decides. */
static int config_unterminated_line(const char *t, const char *open)
{
    int line = 1;
    for (const char *p = t; p < open; p++)
        line += *p == '\n';
    return line;
}

static void config_blank_line_at(char *t, char *at)
{
    char *start = at;
    while (start > t && start[-1] != '\n')
        start--;
    for (char *p = start; *p && *p != '\n'; p++)
        *p = ' ';
}

/* Returns the number of unterminated strings found (each logged, its line
 * blanked so that the rest of the text can still be judged, and put in
 * lines[], up to max of them). */
static int config_blank_comments(char *t, const char *name, int *lines, size_t max)
{
    char quote = 0;
    char *opened = NULL;
    int errors = 0;
    for (char *p = t; *p; p++) {
        if (quote) {
            if (*p == '\n' && config_line_is_setting(p + 1)) {
                int line = config_unterminated_line(t, opened);
                log_err("%s:%d: unterminated string", name, line);
                if ((size_t)errors < max)
                    lines[errors] = line;
                errors++;
                config_blank_line_at(t, opened);
                quote = 0;
            } else if (*p == '\\' && p[1] && p[1] != '\n') {
                p++;
            } else if (*p == quote) {
                quote = 0;
            }
            continue;
        }
        if (*p == '"' || *p == '\'') {
            quote = *p;
            opened = p;
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
    if (quote) {
        int line = config_unterminated_line(t, opened);
        log_err("%s:%d: unterminated string", name, line);
        if ((size_t)errors < max)
            lines[errors] = line;
        config_blank_line_at(t, opened);
        errors++;
    }
    return errors;
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

/*
 * Name the text being parsed in cfg and in its single (not CFGF_MULTI)
 * sections: cfg_init made those before any text, without a filename, and
 * reuses them; a section made while parsing copies its parent's.
 */
static int config_set_source(cfg_t *cfg, const char *name)
{
    char *fn = strdup(name);
    if (!fn)
        return -1;
    free(cfg->filename);
    cfg->filename = fn;
    for (cfg_opt_t *o = cfg->opts; o && o->name; o++) {
        if (o->type != CFGT_SEC || (o->flags & CFGF_MULTI))
            continue;
        for (unsigned i = 0; i < cfg_opt_size(o); i++)
            if (config_set_source(cfg_opt_getnsec(o, i), name) < 0)
                return -1;
    }
    return 0;
}

/* Most errors one load reports: each costs a parse of its own. */
#define CONFIG_MAX_ERRORS 32

/*
 * A text of the configuration (the file, or an override) as read, and the
 * lines left out of it so far: those of the errors already reported.
 */
struct config_text {
    char name[32]; /* "-o #N"; the file's name is the file argument */
    const char *source;
    char *orig;
    int blank[CONFIG_MAX_ERRORS];
    size_t nblank;
};

static void config_text_blank(char *t, int line)
{
    for (int l = 1; *t && l < line; t++)
        l += *t == '\n';
    for (; *t && *t != '\n'; t++)
        *t = ' ';
}

/*
 * One text into cfg: its plugin sections are taken out first (into
 * plugins, see plugin_section.h), the rest goes to libconfuse.  cfg's
 * filename is set to the text's name, and libconfuse copies it into every
 * section, so each error names its source.  *errors counts the
 * unterminated strings found (and left out, as their lines).
 */
static int config_parse_text(cfg_t *cfg, struct config_text *ct, struct plugin_sections *plugins,
                             int *errors)
{
    const char *name = ct->source;
    char *text = strdup(ct->orig);
    if (!text)
        return CFG_PARSE_ERROR;
    for (size_t i = 0; i < ct->nblank; i++)
        config_text_blank(text, ct->blank[i]);
    int found[CONFIG_MAX_ERRORS];
    int n = config_blank_comments(text, name, found, CONFIG_MAX_ERRORS);
    *errors += n;
    /* Reported once: from now on those lines are left out. */
    for (int i = 0; i < n && i < CONFIG_MAX_ERRORS && ct->nblank < CONFIG_MAX_ERRORS; i++)
        ct->blank[ct->nblank++] = found[i];
    char err[256];
    int line = 0;
    int rc = CFG_SUCCESS;
    if (plugin_sections_take(text, name, plugins, &line, err, sizeof(err)) < 0) {
        log_err("%s:%d: %s", name, line, err);
        config_last_error.text = -1;
        rc = CFG_PARSE_ERROR;
    } else if (config_set_source(cfg, name) < 0) {
        rc = CFG_PARSE_ERROR;
    } else if (strspn(text, " \t\r\n") < strlen(text)) {
        FILE *fp = fmemopen(text, strlen(text), "r");
        if (!fp) {
            log_err("%s: %s", name, strerror(errno));
            rc = CFG_PARSE_ERROR;
        } else {
            rc = cfg_parse_fp(cfg, fp);
            fclose(fp);
        }
    }
    free(text);
    return rc;
}

/*
 * Every error, in one load: libconfuse stops at the first one, so after a
 * bad value or an unknown key that line is left out and everything is
 * parsed again, from a fresh schema, until the texts parse or a syntax
 * error (after which nothing more can be trusted) ends it.  Each error is
 * logged once, as libconfuse or a callback meets it.
 */
struct sg_config *config_load_all(const char *file, const char *const *overrides, size_t noverrides,
                                  const struct config_load_opts *opts, int *errors)
{
    static const struct config_load_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    *errors = 0;
    size_t ntexts = noverrides + (file ? 1 : 0);
    struct config_text *texts = calloc(ntexts ? ntexts : 1, sizeof(*texts));
    if (!texts) {
        log_err("out of memory reading the configuration");
        (*errors)++;
        return NULL;
    }
    size_t k = 0;
    if (file) {
        texts[k].source = file;
        if (!(texts[k].orig = config_read_file(file))) {
            log_err("%s: cannot read: %s", file, strerror(errno));
            (*errors)++;
        }
        k++;
    }
    for (size_t i = 0; i < noverrides; i++, k++) {
        snprintf(texts[k].name, sizeof(texts[k].name), "-o #%zu", i + 1);
        texts[k].source = texts[k].name;
        if (!(texts[k].orig = strdup(overrides[i])))
            (*errors)++;
    }
    struct config_schema schema;
    struct plugin_sections plugins = {0};
    cfg_t *cfg = NULL;
    bool parsed = false;
    bool readable = *errors == 0;
    for (int attempt = 0; readable && attempt <= CONFIG_MAX_ERRORS; attempt++) {
        cfg = config_schema(&schema, opts->numeric_hosts);
        if (!cfg) {
            log_err("out of memory reading the configuration");
            (*errors)++;
            break;
        }
        int rc = CFG_SUCCESS;
        int strings = 0;
        config_last_error.text = -1;
        for (k = 0; rc == CFG_SUCCESS && k < ntexts; k++) {
            config_current_text = (int)k;
            rc = config_parse_text(cfg, &texts[k], &plugins, &strings);
        }
        *errors += strings;
        if (rc == CFG_SUCCESS) {
            parsed = true;
            break;
        }
        (*errors)++;
        int t = config_last_error.text;
        bool resumable = !config_last_error.syntax && t >= 0 && (size_t)t < ntexts &&
                         config_last_error.line > 0 && texts[t].nblank < CONFIG_MAX_ERRORS;
        if (!resumable)
            break;
        texts[t].blank[texts[t].nblank++] = config_last_error.line;
        cfg_free(cfg);
        cfg = NULL;
        plugin_sections_clear(&plugins);
        plugins = (struct plugin_sections){0};
    }
    struct sg_config *c = NULL;
    if (parsed) {
        int incomplete = config_check_complete(cfg);
        *errors += incomplete;
        if (!incomplete && !(c = config_build(cfg, file, opts)))
            (*errors)++;
    }
    if (c) {
        c->plugins = plugins;
        plugins = (struct plugin_sections){0};
    }
    plugin_sections_clear(&plugins);
    if (cfg)
        cfg_free(cfg);
    for (k = 0; k < ntexts; k++)
        free(texts[k].orig);
    free(texts);
    return c;
}

struct sg_config *config_load(const char *file, const char *const *overrides, size_t noverrides,
                              const struct config_load_opts *opts)
{
    int errors;
    struct sg_config *c = config_load_all(file, overrides, noverrides, opts, &errors);
    if (c && errors) {
        config_unref(c);
        return NULL;
    }
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
        free(c->upstreams[i].source);
        upstream_tls_settings_free(&c->upstreams[i].tls);
    }
    listener_config_free(c->listeners, c->nlisten);
    free(c->listeners);
    free(c->upstreams);
    plugin_sections_clear(&c->plugins);
    free(c->plugin_dir);
    free(c->user);
    free(c->group);
    free(c->chroot_dir);
    free(c->pidfile);
    free(c->control_socket);
    free(c->quarantine_dir);
    free(c->metrics_listen);
    free(c->verdict_log);
    free(c->dns_nameserver);
    free(c->greet_delay_skip_symbol);
    free(c->listen);
    free(c->hostname);
    free(c->spool_dir);
    free(c->milter_socket);
    free(c);
}

const struct sg_listener *listener_find(const struct sg_config *c, const struct sockaddr *local)
{
    return listener_match(c->listeners, c->listen, c->nlisten, local);
}
