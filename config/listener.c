/*
 * listener - per-listener edge policy and per-upstream TLS, from the config.
 *
 * Values are checked by libconfuse parse callbacks while their own line is
 * current (as config.c does), so a typo names its line; what needs the whole
 * section (certificates and keys in pairs, a TLS policy without TLS, a PROXY
 * listener without trusted networks) is checked when the section is built and
 * names the section's line.  Certificate and key files are read here, at
 * config load, so a file that is not PEM refuses the config (and a reload
 * keeps the old one); the contexts are built by the daemon from the paths.
 */
#include "config/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "codec/auth_relay.h"
#include "codec/proxy_header.h"
#include "config/config_value.h"
#include "util/log.h"

static const struct sg_listener listener_plain = {
    .auth = false,
    .auth_max_failures = 3,
    .auth_failure_delay = 2,
    .auth_max_line_length = AUTH_LINE_MAX_DEFAULT,
    .proxy_timeout = 10,
    .greet_delay = -1,
};

/* ---- parse callbacks ---- */

static int listener_pass(const char *value, void *result)
{
    return config_value_pass(value, result);
}

static int listener_choice(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result,
                           const char *const *choices)
{
    return config_value_choice(cfg, opt->name, value, choices, result);
}

static const char *const tls_choices[] = {"none", "starttls", "implicit", NULL};
static const char *const require_choices[] = {"none", "mail", "auth", NULL};
static const char *const proxy_choices[] = {"none", "v1", "v2", "any", NULL};
static const char *const version_choices[] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3", NULL};
static const char *const upstream_tls_choices[] = {"none", "opportunistic", "required", NULL};

/* The schema's own string for a checked version name (outlives the cfg_t). */
static const char *listener_version(const char *name)
{
    for (size_t i = 0; version_choices[i]; i++)
        if (strcmp(name, version_choices[i]) == 0)
            return version_choices[i];
    return "TLSv1.2";
}

static int listener_cb_tls(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    return listener_choice(cfg, opt, value, result, tls_choices);
}

static int listener_cb_require(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    return listener_choice(cfg, opt, value, result, require_choices);
}

static int listener_cb_proxy(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    return listener_choice(cfg, opt, value, result, proxy_choices);
}

static int listener_cb_version(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    return listener_choice(cfg, opt, value, result, version_choices);
}

static int listener_cb_upstream_tls(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    return listener_choice(cfg, opt, value, result, upstream_tls_choices);
}

static int listener_address(cfg_t *cfg, const char *value, void *result, unsigned flags)
{
    struct sg_sockaddr sa;
    const char *why = sockaddr_parse(value, flags, &sa);
    if (why) {
        cfg_error(cfg, "listener address \"%s\": %s", value, why);
        return -1;
    }
    return listener_pass(value, result);
}

static int listener_cb_address(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    (void)opt;
    return listener_address(cfg, value, result, SOCKADDR_PASSIVE);
}

static int listener_cb_address_numeric(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    (void)opt;
    return listener_address(cfg, value, result, SOCKADDR_PASSIVE | SOCKADDR_NUMERIC);
}

/* Is file a PEM certificate (or private key)?  NULL, or the reason in err. */
static const char *listener_check_pem(const char *file, bool key, char *err, size_t err_size)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        snprintf(err, err_size, "cannot open %s: %s", file, strerror(errno));
        return err;
    }
    bool ok;
    if (key) {
        EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        ok = k != NULL;
        EVP_PKEY_free(k);
    } else {
        X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
        ok = x != NULL;
        X509_free(x);
    }
    fclose(f);
    if (!ok) {
        char e[200] = "unknown TLS error";
        unsigned long code = ERR_get_error();
        if (code)
            ERR_error_string_n(code, e, sizeof(e));
        ERR_clear_error();
        snprintf(err, err_size, "%s is not a PEM %s: %s", file, key ? "private key" : "certificate",
                 e);
        return err;
    }
    return NULL;
}

static int listener_cb_cert(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    char err[512];
    if (listener_check_pem(value, strcmp(opt->name, "tls_key_file") == 0, err, sizeof(err))) {
        cfg_error(cfg, "'%s': %s", opt->name, err);
        return -1;
    }
    return listener_pass(value, result);
}

static int listener_cb_readable(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    FILE *f = *value ? fopen(value, "r") : NULL;
    if (*value && !f) {
        cfg_error(cfg, "'%s': cannot open %s: %s", opt->name, value, strerror(errno));
        return -1;
    }
    if (f)
        fclose(f);
    return listener_pass(value, result);
}

static int listener_cb_trusted(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    struct net_range r;
    if (!net_range_parse(value, &r)) {
        cfg_error(cfg,
                  "'%s': \"%s\" is not an address or network (192.0.2.0/24, "
                  "2001:db8::/32) without host bits",
                  opt->name, value);
        return -1;
    }
    return listener_pass(value, result);
}

static int listener_cb_mechs(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    const char *p = value;
    while (*p) {
        size_t skip = strspn(p, " ,");
        p += skip;
        size_t w = strcspn(p, " ,");
        if (w && !auth_mech_lookup(p, w)) {
            cfg_error(cfg,
                      "'%s': \"%.*s\" is not a mechanism smtpgate can relay (PLAIN, LOGIN, "
                      "CRAM-MD5, DIGEST-MD5, SCRAM-SHA-1, SCRAM-SHA-256, XOAUTH2, "
                      "OAUTHBEARER)",
                      opt->name, (int)w, p);
            return -1;
        }
        p += w;
    }
    return listener_pass(value, result);
}

static int listener_cb_name(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    size_t n = strlen(value);
    if (n > 255 || strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "0123456789.-_") != n) {
        cfg_error(cfg, "'%s' must be a domain name", opt->name);
        return -1;
    }
    return listener_pass(value, result);
}

struct listener_int {
    const char *name;
    long min, max;
};

static const struct listener_int listener_ints[] = {
    {"proxy_timeout", 1, 3600},
    {"auth_max_failures", 1, 100},
    {"auth_failure_delay", 0, 60},
    {"auth_max_line_length", 512, 65536},
    {"greet_delay", -1, 60},
};

static int listener_cb_int(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
    long min = 0, max = 0;
    for (size_t i = 0; i < sizeof(listener_ints) / sizeof(listener_ints[0]); i++)
        if (strcmp(opt->name, listener_ints[i].name) == 0) {
            min = listener_ints[i].min;
            max = listener_ints[i].max;
        }
    return config_value_int(cfg, opt->name, value, min, max, result);
}

/* The two schemas differ in the address callback only. */
#define LISTENER_OPTS(address_cb)                                                                  \
    {                                                                                              \
        CFG_STR_CB("address", NULL, CFGF_NODEFAULT, address_cb),                                   \
            CFG_STR_CB("tls", "none", CFGF_NONE, listener_cb_tls),                                 \
            CFG_STR_CB("require_tls", "none", CFGF_NONE, listener_cb_require),                     \
            CFG_STR_LIST_CB("tls_cert_file", NULL, CFGF_NONE, listener_cb_cert),                   \
            CFG_STR_LIST_CB("tls_key_file", NULL, CFGF_NONE, listener_cb_cert),                    \
            CFG_STR_CB("tls_min_version", "TLSv1.2", CFGF_NONE, listener_cb_version),              \
            CFG_STR("tls_ciphers", "", CFGF_NONE), CFG_STR("tls_ciphersuites", "", CFGF_NONE),     \
            CFG_BOOL("tls_ask_client_cert", cfg_false, CFGF_NONE),                                 \
            CFG_STR_CB("tls_client_ca_file", "", CFGF_NONE, listener_cb_readable),                 \
            CFG_BOOL("tls_session_tickets", cfg_true, CFGF_NONE),                                  \
            CFG_STR_CB("proxy_protocol", "none", CFGF_NONE, listener_cb_proxy),                    \
            CFG_STR_LIST_CB("proxy_trusted", NULL, CFGF_NONE, listener_cb_trusted),                \
            CFG_INT_CB("proxy_timeout", 10, CFGF_NONE, listener_cb_int),                           \
            CFG_BOOL("auth", cfg_true, CFGF_NONE),                                                 \
            CFG_BOOL("auth_plaintext", cfg_false, CFGF_NONE),                                      \
            CFG_STR_CB("auth_mechanisms", "", CFGF_NONE, listener_cb_mechs),                       \
            CFG_INT_CB("auth_max_failures", 3, CFGF_NONE, listener_cb_int),                        \
            CFG_INT_CB("auth_failure_delay", 2, CFGF_NONE, listener_cb_int),                       \
            CFG_INT_CB("auth_max_line_length", AUTH_LINE_MAX_DEFAULT, CFGF_NONE, listener_cb_int), \
            CFG_INT_CB("greet_delay", -1, CFGF_NONE, listener_cb_int),                             \
            CFG_END(),                                                                             \
    }

cfg_opt_t *listener_cfg_opts(bool numeric)
{
    static cfg_opt_t resolving[] = LISTENER_OPTS(listener_cb_address);
    static cfg_opt_t numeric_only[] = LISTENER_OPTS(listener_cb_address_numeric);
    return numeric ? numeric_only : resolving;
}

cfg_opt_t upstream_tls_cfg_opts[] = {
    CFG_STR_CB("tls", "none", CFGF_NONE, listener_cb_upstream_tls),
    CFG_STR_CB("tls_ca_file", "", CFGF_NONE, listener_cb_readable),
    CFG_STR_CB("tls_verify_name", "", CFGF_NONE, listener_cb_name),
    CFG_STR_CB("tls_min_version", "TLSv1.2", CFGF_NONE, listener_cb_version),
    CFG_END(),
};

/* ---- building ---- */

size_t listener_config_count(cfg_t *cfg)
{
    return cfg_size(cfg, "listener");
}

static char *listener_strdup(const char *v, bool *oom)
{
    char *d = strdup(v ? v : "");
    if (!d)
        *oom = true;
    return d;
}

static int listener_build_one(cfg_t *sec, struct sg_listener *l)
{
    const char *where = config_value_source(sec);
    const char *title = cfg_title(sec);
    bool oom = false;
    *l = listener_plain;
    l->name = listener_strdup(title, &oom);
    l->source = listener_strdup(where, &oom);
    l->line = sec->line;
    if (oom)
        return -1;
    const char *tls = cfg_getstr(sec, "tls");
    l->tls = strcmp(tls, "starttls") == 0   ? LISTENER_TLS_STARTTLS
             : strcmp(tls, "implicit") == 0 ? LISTENER_TLS_IMPLICIT
                                            : LISTENER_TLS_NONE;
    const char *req = cfg_getstr(sec, "require_tls");
    l->require_tls = strcmp(req, "mail") == 0   ? REQUIRE_TLS_MAIL
                     : strcmp(req, "auth") == 0 ? REQUIRE_TLS_AUTH
                                                : REQUIRE_TLS_NONE;
    const char *pp = cfg_getstr(sec, "proxy_protocol");
    l->proxy_protocol = strcmp(pp, "v1") == 0    ? PROXY_HDR_ALLOW_V1
                        : strcmp(pp, "v2") == 0  ? PROXY_HDR_ALLOW_V2
                        : strcmp(pp, "any") == 0 ? PROXY_HDR_ALLOW_V1 | PROXY_HDR_ALLOW_V2
                                                 : 0;
    l->proxy_timeout = (unsigned)cfg_getint(sec, "proxy_timeout");
    l->auth = cfg_getbool(sec, "auth");
    l->auth_plaintext = cfg_getbool(sec, "auth_plaintext");
    const char *mechs = cfg_getstr(sec, "auth_mechanisms");
    l->auth_mechs = auth_mechs_parse(mechs, strlen(mechs));
    l->auth_max_failures = (unsigned)cfg_getint(sec, "auth_max_failures");
    l->auth_failure_delay = (unsigned)cfg_getint(sec, "auth_failure_delay");
    l->auth_max_line_length = (size_t)cfg_getint(sec, "auth_max_line_length");
    l->greet_delay = (int)cfg_getint(sec, "greet_delay");

    size_t ncert = cfg_size(sec, "tls_cert_file"), nkey = cfg_size(sec, "tls_key_file");
    if (ncert != nkey) {
        log_err("%s:%d: listener %s: %zu tls_cert_file but %zu tls_key_file; they go in pairs",
                where, sec->line, l->name, ncert, nkey);
        return -1;
    }
    if (l->tls != LISTENER_TLS_NONE && ncert == 0) {
        log_err("%s:%d: listener %s: tls = \"%s\" needs tls_cert_file and tls_key_file", where,
                sec->line, l->name, tls);
        return -1;
    }
    if (l->require_tls != REQUIRE_TLS_NONE && l->tls != LISTENER_TLS_STARTTLS) {
        log_err("%s:%d: listener %s: require_tls = \"%s\" needs tls = \"starttls\"", where,
                sec->line, l->name, req);
        return -1;
    }
    size_t nt = cfg_size(sec, "proxy_trusted");
    if (l->proxy_protocol && nt == 0) {
        log_err("%s:%d: listener %s: proxy_protocol = \"%s\" needs proxy_trusted = {networks "
                "of the proxies}",
                where, sec->line, l->name, pp);
        return -1;
    }
    l->trusted = calloc(nt ? nt : 1, sizeof(*l->trusted));
    if (!l->trusted)
        return -1;
    for (size_t i = 0; i < nt; i++)
        net_range_parse(cfg_getnstr(sec, "proxy_trusted", (unsigned)i), &l->trusted[l->ntrusted++]);

    l->tls_cert_files = calloc(ncert + 1, sizeof(*l->tls_cert_files));
    l->tls_key_files = calloc(ncert + 1, sizeof(*l->tls_key_files));
    if (!l->tls_cert_files || !l->tls_key_files)
        return -1;
    for (; l->tls_ncerts < ncert; l->tls_ncerts++) {
        unsigned i = (unsigned)l->tls_ncerts;
        l->tls_cert_files[i] = listener_strdup(cfg_getnstr(sec, "tls_cert_file", i), &oom);
        l->tls_key_files[i] = listener_strdup(cfg_getnstr(sec, "tls_key_file", i), &oom);
    }
    l->tls_min_version = listener_version(cfg_getstr(sec, "tls_min_version"));
    l->tls_ciphers = listener_strdup(cfg_getstr(sec, "tls_ciphers"), &oom);
    l->tls_ciphersuites = listener_strdup(cfg_getstr(sec, "tls_ciphersuites"), &oom);
    l->tls_ask_client_cert = cfg_getbool(sec, "tls_ask_client_cert");
    l->tls_client_ca_file = listener_strdup(cfg_getstr(sec, "tls_client_ca_file"), &oom);
    l->tls_session_tickets = cfg_getbool(sec, "tls_session_tickets");
    return oom ? -1 : 0;
}

int listener_config_build(cfg_t *cfg, struct sg_sockaddr *listen, struct sg_listener *listeners,
                          size_t nplain, size_t *nlisten, unsigned addr_flags)
{
    size_t nsec = cfg_size(cfg, "listener");
    for (size_t i = 0; i < nplain; i++)
        listeners[i] = listener_plain;
    *nlisten = nplain;
    int rc = 0;
    for (size_t i = 0; i < nsec; i++) {
        cfg_t *sec = cfg_getnsec(cfg, "listener", (unsigned)i);
        const char *where = config_value_source(sec);
        struct sg_listener *l = &listeners[nplain + i];
        const char *addr = cfg_getstr(sec, "address");
        *nlisten = nplain + i + 1;
        if (!addr) {
            log_err("%s:%d: listener %s has no address", where, sec->line, cfg_title(sec));
            *l = listener_plain;
            rc = -1;
            continue;
        }
        sockaddr_parse(addr, addr_flags | SOCKADDR_PASSIVE, &listen[nplain + i]);
        for (size_t k = 0; k < nplain + i; k++)
            if (strcmp(listen[k].text, listen[nplain + i].text) == 0) {
                log_err("%s:%d: listener %s: address %s is already listened on", where, sec->line,
                        cfg_title(sec), listen[k].text);
                rc = -1;
            }
        if (listener_build_one(sec, l) < 0)
            rc = -1;
    }
    return rc;
}

void listener_config_free(struct sg_listener *listeners, size_t n)
{
    for (size_t i = 0; listeners && i < n; i++) {
        struct sg_listener *l = &listeners[i];
        free(l->name);
        free(l->source);
        free(l->trusted);
        for (size_t k = 0; k < l->tls_ncerts; k++) {
            free(l->tls_cert_files[k]);
            free(l->tls_key_files[k]);
        }
        free(l->tls_cert_files);
        free(l->tls_key_files);
        free(l->tls_ciphers);
        free(l->tls_ciphersuites);
        free(l->tls_client_ca_file);
    }
}

int upstream_tls_settings(cfg_t *sec, struct sg_upstream_tls *t)
{
    const char *where = config_value_source(sec);
    const char *mode = cfg_getstr(sec, "tls");
    t->mode = strcmp(mode, "required") == 0        ? UPSTREAM_TLS_REQUIRED
              : strcmp(mode, "opportunistic") == 0 ? UPSTREAM_TLS_OPPORTUNISTIC
                                                   : UPSTREAM_TLS_NONE;
    const char *name = cfg_getstr(sec, "tls_verify_name");
    if (t->mode == UPSTREAM_TLS_NONE)
        return 0;
    if (t->mode == UPSTREAM_TLS_REQUIRED && !*name) {
        log_err("%s:%d: upstream %s: tls = \"required\" needs tls_verify_name, the name its "
                "certificate must carry",
                where, sec->line, cfg_title(sec));
        return -1;
    }
    t->verify_name = *name ? strdup(name) : NULL;
    t->ca_file = strdup(cfg_getstr(sec, "tls_ca_file"));
    t->min_version = listener_version(cfg_getstr(sec, "tls_min_version"));
    return (*name && !t->verify_name) || !t->ca_file ? -1 : 0;
}

void upstream_tls_settings_free(struct sg_upstream_tls *t)
{
    free(t->verify_name);
    free(t->ca_file);
    t->verify_name = NULL;
    t->ca_file = NULL;
}

static bool listener_same_port(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (b->sa_family == AF_INET && a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_port ==
               ((const struct sockaddr_in *)b)->sin_port;
    if (b->sa_family == AF_INET6 && a->ss_family == AF_INET6)
        return ((const struct sockaddr_in6 *)a)->sin6_port ==
               ((const struct sockaddr_in6 *)b)->sin6_port;
    return false;
}

static bool listener_same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (a->ss_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static bool listener_wildcard(const struct sockaddr_storage *a)
{
    static const uint8_t zero[16];
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, zero, 16) == 0;
}

const struct sg_listener *listener_match(const struct sg_listener *listeners,
                                         const struct sg_sockaddr *listen, size_t n,
                                         const struct sockaddr *local)
{
    if (!listeners)
        return &listener_plain;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            const struct sockaddr_storage *a = &listen[i].sa;
            if (!listener_same_port(a, local))
                continue;
            if (pass == 0 ? listener_same_addr(a, local) : listener_wildcard(a))
                return &listeners[i];
        }
    return &listener_plain;
}
