/*
 * milter_macros - macro lists and values for the milter plugin (see the
 * header).
 *
 * Names are compared without their braces because milters spell the long
 * ones either way in their symbol lists; the name goes on the wire as the
 * list wrote it, which is what libmilter's smfi_getsymval() looks up.
 */
#include "plugins/milter/milter_macros.h"

#include <libmilter/mfapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int milter_macros_split(const char *list, struct milter_macro_list *out)
{
    memset(out, 0, sizeof(*out));
    const char *p = list ? list : "";
    while (*p) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, " \t,");
        if (n == 0)
            break;
        if (out->n < MILTER_MACROS_MAX && n < 128) {
            char *name = strndup(p, n);
            if (!name) {
                milter_macros_free(out);
                return -1;
            }
            out->names[out->n++] = name;
        }
        p += n;
    }
    return 0;
}

void milter_macros_free(struct milter_macro_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    l->n = 0;
}

/* The domain of an address, or NULL. */
static const char *macros_domain(const char *addr)
{
    const char *at = addr ? strrchr(addr, '@') : NULL;
    return at && at[1] ? at + 1 : NULL;
}

const char *milter_macros_value(const struct milter_facts *f, const char *name, char *buf,
                                size_t bufsz)
{
    char key[128];
    size_t n = strlen(name);
    if (n >= 2 && name[0] == '{' && name[n - 1] == '}') {
        name++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(key))
        return NULL;
    memcpy(key, name, n);
    key[n] = '\0';

    if (strcmp(key, "j") == 0)
        return f->host_name;
    if (strcmp(key, "v") == 0)
        return f->version;
    if (strcmp(key, "_") == 0) {
        if (!f->client_addr)
            return NULL;
        snprintf(buf, bufsz, "%s [%s]", f->client_name ? f->client_name : "unknown",
                 f->client_addr);
        return buf;
    }
    if (strcmp(key, "daemon_name") == 0)
        return f->daemon_name;
    if (strcmp(key, "daemon_addr") == 0)
        return f->daemon_addr;
    if (strcmp(key, "daemon_port") == 0 || strcmp(key, "client_port") == 0) {
        unsigned port = key[0] == 'd' ? f->daemon_port : f->client_port;
        if (!port)
            return NULL;
        snprintf(buf, bufsz, "%u", port);
        return buf;
    }
    if (strcmp(key, "client_addr") == 0)
        return f->client_addr;
    if (strcmp(key, "client_name") == 0 || strcmp(key, "client_ptr") == 0)
        return f->client_addr ? (f->client_name ? f->client_name : "unknown") : NULL;
    if (strcmp(key, "s") == 0)
        return f->helo;
    if (strcmp(key, "tls_version") == 0)
        return f->tls_version;
    if (strcmp(key, "cipher") == 0)
        return f->cipher;
    if (strcmp(key, "cert_subject") == 0)
        return f->cert_subject;
    if (strcmp(key, "cert_issuer") == 0)
        return f->cert_issuer;
    if (strcmp(key, "i") == 0)
        return f->tx_id;
    if (strcmp(key, "auth_type") == 0)
        return f->auth_authen ? "PLAIN" : NULL;
    if (strcmp(key, "auth_authen") == 0)
        return f->auth_authen;
    if (strcmp(key, "mail_addr") == 0)
        return f->mail_addr;
    if (strcmp(key, "rcpt_addr") == 0)
        return f->rcpt_addr;
    if (strcmp(key, "mail_host") == 0)
        return macros_domain(f->mail_addr);
    if (strcmp(key, "rcpt_host") == 0)
        return macros_domain(f->rcpt_addr);
    if (strcmp(key, "mail_mailer") == 0)
        return f->mail_addr ? "smtp" : NULL;
    if (strcmp(key, "rcpt_mailer") == 0)
        return f->rcpt_addr ? "smtp" : NULL;
    return NULL;
}

const char *milter_macros_default(int stage)
{
    switch (stage) {
    case SMFIM_CONNECT:
        return "j {daemon_name} {daemon_addr} v _ {client_addr} {client_name} {client_ptr}";
    case SMFIM_HELO:
        return "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}";
    case SMFIM_ENVFROM:
        return "i {auth_type} {auth_authen} {auth_ssf} {auth_author} {mail_addr} {mail_host} "
               "{mail_mailer}";
    case SMFIM_ENVRCPT:
        return "i {rcpt_addr} {rcpt_host} {rcpt_mailer}";
    case SMFIM_DATA:
    case SMFIM_EOM:
    case SMFIM_EOH:
        return "i";
    default:
        return "";
    }
}
