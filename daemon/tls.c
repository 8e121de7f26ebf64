/*
 * tls - SSL_CTX construction, SNI selection, client certificate facts.
 *
 * All contexts are built on the main thread while a config loads; afterwards
 * they are only read (SSL_new, the SNI callback), which OpenSSL allows from
 * any thread.  The session ticket keys are made once per process: a reload
 * that replaces the contexts does not invalidate tickets clients hold.
 */
#include "daemon/tls.h"

#include <ctype.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TLS_MAX_NAMES 64

struct tls_cert_ctx {
    SSL_CTX *ctx;
    char **names;
    size_t nnames;
};

struct tls_server {
    struct tls_cert_ctx *certs; /* [0] is the default */
    size_t ncerts;
};

struct tls_client {
    SSL_CTX *ctx;
    bool verify;
};

static unsigned char tls_ticket_keys[80];
static bool tls_ticket_keys_made;

const char *tls_last_error(char *buf, size_t size)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(buf, size, "unknown TLS error");
    } else {
        ERR_error_string_n(e, buf, size);
    }
    ERR_clear_error();
    return buf;
}

const char *tls_bev_error(struct bufferevent *bev, char *buf, size_t size)
{
    unsigned long e = bev ? bufferevent_get_openssl_error(bev) : 0;
    if (!e)
        return tls_last_error(buf, size);
    ERR_error_string_n(e, buf, size);
    while (bufferevent_get_openssl_error(bev))
        ;
    return buf;
}

int tls_version_from_name(const char *name)
{
    static const struct {
        const char *name;
        int v;
    } t[] = {{"TLSv1", TLS1_VERSION},
             {"TLSv1.1", TLS1_1_VERSION},
             {"TLSv1.2", TLS1_2_VERSION},
             {"TLSv1.3", TLS1_3_VERSION}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(name, t[i].name) == 0)
            return t[i].v;
    return 0;
}

bool tls_name_matches(const char *pattern, const char *host)
{
    if (!pattern || !host || !*pattern || !*host)
        return false;
    if (strcasecmp(pattern, host) == 0)
        return true;
    if (pattern[0] != '*' || pattern[1] != '.' || !pattern[2])
        return false;
    /* "*.example.com" covers exactly one label: "a.example.com", not
     * "example.com" nor "a.b.example.com". */
    const char *dot = strchr(host, '.');
    if (!dot || dot == host)
        return false;
    return strcasecmp(dot + 1, pattern + 2) == 0;
}

/* ---- server ---- */

static void tls_add_name(struct tls_cert_ctx *c, const char *name, size_t len)
{
    if (c->nnames >= TLS_MAX_NAMES || len == 0 || len > 255 || memchr(name, '\0', len))
        return;
    char *n = strndup(name, len);
    if (n)
        c->names[c->nnames++] = n;
}

static void tls_collect_names(struct tls_cert_ctx *c, X509 *x)
{
    c->names = calloc(TLS_MAX_NAMES, sizeof(*c->names));
    if (!c->names)
        return;
    GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; san && i < sk_GENERAL_NAME_num(san); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
        if (g->type == GEN_DNS)
            tls_add_name(c, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                         (size_t)ASN1_STRING_length(g->d.dNSName));
    }
    GENERAL_NAMES_free(san);
    if (c->nnames == 0) {
        /* No DNS subjectAltName: the CN is the name, as clients used to check. */
        X509_NAME *subj = X509_get_subject_name(x);
        int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
        if (idx >= 0) {
            ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
            tls_add_name(c, (const char *)ASN1_STRING_get0_data(cn),
                         (size_t)ASN1_STRING_length(cn));
        }
    }
}

static int tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const struct tls_server *t = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!host)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 1; i < t->ncerts; i++)
        for (size_t j = 0; j < t->certs[i].nnames; j++)
            if (tls_name_matches(t->certs[i].names[j], host)) {
                SSL_set_SSL_CTX(ssl, t->certs[i].ctx);
                return SSL_TLSEXT_ERR_OK;
            }
    /* Unknown name: the default certificate, as Postfix does. */
    return SSL_TLSEXT_ERR_OK;
}

/* Client certificates are asked for, recorded and reported, never a reason
 * to fail the handshake: policy on them belongs to plugins. */
static int tls_accept_any_cert(int preverify, X509_STORE_CTX *x)
{
    (void)preverify;
    (void)x;
    return 1;
}

static SSL_CTX *tls_server_ctx(const struct tls_server_opts *o, size_t i, char *err,
                               size_t err_size)
{
    char e[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, err_size, "cannot create TLS context: %s", tls_last_error(e, sizeof(e)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, o->min_version ? o->min_version : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_dh_auto(ctx, 1);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (o->ciphers && *o->ciphers && !SSL_CTX_set_cipher_list(ctx, o->ciphers)) {
        snprintf(err, err_size, "tls_ciphers \"%s\": no usable cipher", o->ciphers);
        goto fail;
    }
    if (o->ciphersuites && *o->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, o->ciphersuites)) {
        snprintf(err, err_size, "tls_ciphersuites \"%s\": no usable cipher suite", o->ciphersuites);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_files[i]) != 1) {
        snprintf(err, err_size, "cannot load certificate chain %s: %s", o->cert_files[i],
                 tls_last_error(e, sizeof(e)));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key_files[i], SSL_FILETYPE_PEM) != 1) {
        snprintf(err, err_size, "cannot load private key %s: %s", o->key_files[i],
                 tls_last_error(e, sizeof(e)));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, err_size, "private key %s does not match certificate %s", o->key_files[i],
                 o->cert_files[i]);
        ERR_clear_error();
        goto fail;
    }
    /* Resumption: a server-side cache, and tickets under the process's keys. */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"smtpgate", 8);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_timeout(ctx, 3600);
    if (o->session_tickets)
        SSL_CTX_set_tlsext_ticket_keys(ctx, tls_ticket_keys, sizeof(tls_ticket_keys));
    else
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (o->ask_client_cert) {
        if (o->client_ca_file && *o->client_ca_file) {
            if (SSL_CTX_load_verify_locations(ctx, o->client_ca_file, NULL) != 1) {
                snprintf(err, err_size, "cannot load tls_client_ca_file %s: %s", o->client_ca_file,
                         tls_last_error(e, sizeof(e)));
                goto fail;
            }
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->client_ca_file);
            if (names)
                SSL_CTX_set_client_CA_list(ctx, names);
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, tls_accept_any_cert);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

struct tls_server *tls_server_new(const struct tls_server_opts *o, char *err, size_t err_size)
{
    if (o->ncerts == 0) {
        snprintf(err, err_size, "no certificate");
        return NULL;
    }
    if (!tls_ticket_keys_made) {
        if (RAND_bytes(tls_ticket_keys, sizeof(tls_ticket_keys)) != 1) {
            snprintf(err, err_size, "no random bytes for session ticket keys");
            return NULL;
        }
        tls_ticket_keys_made = true;
    }
    struct tls_server *t = calloc(1, sizeof(*t));
    if (t)
        t->certs = calloc(o->ncerts, sizeof(*t->certs));
    if (!t || !t->certs) {
        free(t);
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < o->ncerts; i++) {
        t->certs[i].ctx = tls_server_ctx(o, i, err, err_size);
        if (!t->certs[i].ctx) {
            tls_server_free(t);
            return NULL;
        }
        t->ncerts++;
        tls_collect_names(&t->certs[i], SSL_CTX_get0_certificate(t->certs[i].ctx));
    }
    SSL_CTX_set_tlsext_servername_callback(t->certs[0].ctx, tls_sni_cb);
    SSL_CTX_set_tlsext_servername_arg(t->certs[0].ctx, t);
    return t;
}

void tls_server_free(struct tls_server *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncerts; i++) {
        SSL_CTX_free(t->certs[i].ctx);
        for (size_t j = 0; j < t->certs[i].nnames; j++)
            free(t->certs[i].names[j]);
        free(t->certs[i].names);
    }
    free(t->certs);
    free(t);
}

SSL *tls_server_ssl(const struct tls_server *t)
{
    return SSL_new(t->certs[0].ctx);
}

/* ---- client ---- */

struct tls_client *tls_client_new(bool verify, const char *ca_file, int min_version, char *err,
                                  size_t err_size)
{
    char e[256];
    struct tls_client *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    t->verify = verify;
    t->ctx = SSL_CTX_new(TLS_client_method());
    if (!t->ctx) {
        snprintf(err, err_size, "cannot create TLS context: %s", tls_last_error(e, sizeof(e)));
        free(t);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(t->ctx, min_version ? min_version : TLS1_2_VERSION);
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
    if (verify) {
        int ok = ca_file && *ca_file ? SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL)
                                     : SSL_CTX_set_default_verify_paths(t->ctx);
        if (ok != 1) {
            snprintf(err, err_size, "cannot load CA file %s: %s", ca_file ? ca_file : "(system)",
                     tls_last_error(e, sizeof(e)));
            tls_client_free(t);
            return NULL;
        }
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
    }
    return t;
}

void tls_client_free(struct tls_client *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

SSL *tls_client_ssl(const struct tls_client *t, const char *sni, const char *verify_name)
{
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl)
        return NULL;
    if (sni && *sni)
        SSL_set_tlsext_host_name(ssl, sni);
    if (t->verify && verify_name && *verify_name) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(ssl, verify_name) != 1) {
            SSL_free(ssl);
            return NULL;
        }
    }
    return ssl;
}

/* ---- facts ---- */

void tls_facts_collect(SSL *ssl, struct tls_facts *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->version, sizeof(out->version), "%s", SSL_get_version(ssl));
    const char *c = SSL_get_cipher_name(ssl);
    snprintf(out->cipher, sizeof(out->cipher), "%s", c ? c : "");
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (sni) {
        /* Printable only: it goes into logs and to plugins. */
        size_t j = 0;
        for (size_t i = 0; sni[i] && j + 1 < sizeof(out->sni); i++)
            out->sni[j++] = isprint((unsigned char)sni[i]) ? sni[i] : '?';
        out->sni[j] = '\0';
    }
    out->resumed = SSL_session_reused(ssl) == 1;
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (peer) {
        BIO *b = BIO_new(BIO_s_mem());
        if (b) {
            X509_NAME_print_ex(b, X509_get_subject_name(peer), 0,
                               XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
            int n = BIO_read(b, out->peer_subject, (int)sizeof(out->peer_subject) - 1);
            out->peer_subject[n > 0 ? n : 0] = '\0';
            for (char *p = out->peer_subject; *p; p++)
                if (!isprint((unsigned char)*p))
                    *p = '?';
            BIO_free(b);
        }
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        if (X509_digest(peer, EVP_sha256(), md, &mdlen) == 1) {
            size_t k = 0;
            for (unsigned i = 0; i < mdlen && k + 3 < sizeof(out->peer_fingerprint); i++)
                k += (size_t)snprintf(out->peer_fingerprint + k, sizeof(out->peer_fingerprint) - k,
                                      i ? ":%02X" : "%02X", md[i]);
        }
        out->peer_verified = SSL_get_verify_result(ssl) == X509_V_OK;
        X509_free(peer);
    }
}
