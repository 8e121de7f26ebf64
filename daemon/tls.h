/*
 * tls - OpenSSL contexts for both sides of smtpgate, built once per config
 * load (main thread) and shared read-only by the workers' connections.
 *
 * tls_server_new() builds the contexts of one listener: one SSL_CTX per
 * certificate (chain file + key file), the first being the default; the others
 * are chosen by the client's SNI against the names of their certificates
 * (subjectAltName DNS names, else the CN; "*.example.com" covers one label).
 * Every context gets the same protocol floor, cipher settings, client
 * certificate request, session cache and ticket keys (process-wide, so
 * tickets stay valid across the contexts of a reload).  On failure it returns
 * NULL with a reason in err ("cannot load certificate FILE: ...").
 * tls_server_ssl() makes the SSL of one accepted connection.
 *
 * tls_client_new() builds the context for one upstream: verification against
 * a CA file (or the system's store) when verify is set; tls_client_ssl() makes
 * the SSL of one connection, with SNI and, when verifying, the expected name.
 *
 * A new config builds new contexts; a connection's SSL holds a reference to
 * its own, so sessions in flight keep the certificates they started with.
 *
 * tls_facts_collect() reads what plugins and logs are told of an established
 * connection: version, cipher, SNI, the peer certificate's subject and SHA-256
 * fingerprint.  tls_name_matches() is the pure SNI matching rule.
 */
#ifndef SMTPGATE_TLS_H
#define SMTPGATE_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct tls_server_opts {
    const char *const *cert_files;
    const char *const *key_files;
    size_t ncerts;
    int min_version;          /* TLS1_2_VERSION ... */
    const char *ciphers;      /* TLS 1.2 and below; NULL or "" = OpenSSL's default */
    const char *ciphersuites; /* TLS 1.3; NULL or "" = default */
    bool ask_client_cert;
    const char *client_ca_file; /* NULL: any client certificate is recorded, none verified */
    bool session_tickets;
};

struct tls_server;

struct tls_server *tls_server_new(const struct tls_server_opts *o, char *err, size_t err_size);
void tls_server_free(struct tls_server *t);
SSL *tls_server_ssl(const struct tls_server *t);

struct tls_client;

struct tls_client *tls_client_new(bool verify, const char *ca_file, int min_version, char *err,
                                  size_t err_size);
void tls_client_free(struct tls_client *t);
SSL *tls_client_ssl(const struct tls_client *t, const char *sni, const char *verify_name);

/* "TLSv1.2" -> TLS1_2_VERSION; 0 when not a known name. */
int tls_version_from_name(const char *name);

/* Does a certificate name (possibly "*.domain") cover host?  Case-insensitive. */
bool tls_name_matches(const char *pattern, const char *host);

struct tls_facts {
    char version[16];
    char cipher[64];
    char sni[256];
    char peer_subject[256];
    char peer_fingerprint[100]; /* SHA-256, hex pairs joined by ":" */
    bool peer_verified;
    bool resumed;
};

void tls_facts_collect(SSL *ssl, struct tls_facts *out);

/* The OpenSSL error queue's first entry (and clear it), for logs. */
const char *tls_last_error(char *buf, size_t size);

/* The first error a TLS bufferevent saved (libevent keeps them per
 * bufferevent), else the thread's queue; for logs. */
struct bufferevent;
const char *tls_bev_error(struct bufferevent *bev, char *buf, size_t size);

#endif
