/* trigger.c: the trigger listener (trigger.h). Every request is bounded:
 * connection count, per-IP count, memory per connection, body size and an
 * idle timeout. Every endpoint but GET /health needs the bearer token or
 * a verified client certificate when either is configured. */
#include "trigger.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"

#define BODY_MAX 4096
#define TOKEN_MAX 4096

struct Trigger {
        struct MHD_Daemon *mhd;
        TriggerCallbacks cb;
        char *token; /* NULL: no token configured */
        bool want_client_cert;
        char *cert_pem, *key_pem, *ca_pem;
        int listen_fd;
};

/* Per-request state: the body is counted, never kept. */
typedef struct RequestState {
        size_t body_len;
        bool too_large;
} RequestState;

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                               const char *body) {
        struct MHD_Response *resp =
                MHD_create_response_from_buffer(strlen(body), (void *) body, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        (void) MHD_add_response_header(resp, "Content-Type", type);
        (void) MHD_add_response_header(resp, "Cache-Control", "no-store");
        if (status == MHD_HTTP_UNAUTHORIZED)
                (void) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
        enum MHD_Result r = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return r;
}

static enum MHD_Result respond_json(struct MHD_Connection *conn, unsigned status,
                                    const char *body) {
        return respond(conn, status, "application/json", body);
}

static enum MHD_Result respond_error(struct MHD_Connection *conn, unsigned status,
                                     const char *msg) {
        char body[256];
        (void) snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", msg);
        return respond_json(conn, status, body);
}

static bool token_ok(const Trigger *t, struct MHD_Connection *conn) {
        const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        if (!t->token || !h || strncmp(h, "Bearer ", 7) != 0)
                return false;
        const char *given = h + 7;
        size_t a = strlen(given), b = strlen(t->token);
        /* Constant time over the secret's length. */
        return a == b && CRYPTO_memcmp(given, t->token, b) == 0;
}

static bool client_cert_ok(const Trigger *t, struct MHD_Connection *conn) {
        if (!t->want_client_cert)
                return false;
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (!ci || !ci->tls_session)
                return false;
        gnutls_session_t session = (gnutls_session_t) ci->tls_session;
        unsigned int status = 0;
        unsigned int n = 0;
        if (!gnutls_certificate_get_peers(session, &n) || n == 0)
                return false;
        if (gnutls_certificate_verify_peers2(session, &status) != GNUTLS_E_SUCCESS)
                return false;
        return status == 0;
}

static bool authorized(const Trigger *t, struct MHD_Connection *conn) {
        if (!t->token && !t->want_client_cert)
                return true;
        return token_ok(t, conn) || client_cert_ok(t, conn);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_size, void **con_cls) {
        Trigger *t = cls;
        RequestState *rs = *con_cls;
        (void) version;
        (void) upload_data;

        if (!rs) {
                rs = calloc(1, sizeof(RequestState));
                if (!rs)
                        return MHD_NO;
                *con_cls = rs;
                return MHD_YES;
        }
        if (*upload_size > 0) {
                rs->body_len += *upload_size;
                if (rs->body_len > BODY_MAX)
                        rs->too_large = true;
                *upload_size = 0;
                return MHD_YES;
        }
        if (rs->too_large)
                return respond_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");

        bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
        if (strcmp(url, "/health") == 0) {
                if (!get)
                        return respond_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                             "method not allowed");
                return respond_json(conn, MHD_HTTP_OK, "{\"status\":\"ok\"}\n");
        }

        static const struct {
                const char *path;
                bool post;
        } routes[] = {
                {"/api/v1/update/trigger", true},
                {"/api/v1/update/rollback", true},
                {"/api/v1/status", false},
                {"/metrics", false},
        };
        size_t i;
        for (i = 0; i < ELEMENTSOF(routes); i++)
                if (strcmp(url, routes[i].path) == 0)
                        break;
        if (i == ELEMENTSOF(routes))
                return respond_error(conn, MHD_HTTP_NOT_FOUND, "not found");
        if (!authorized(t, conn))
                return respond_error(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized");
        if (routes[i].post ? !post : !get)
                return respond_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");

        if (i == 0 || i == 1) {
                /* A trigger names nothing: slotd only pulls from its own
                 * coordinator, so a query string or body changes nothing. */
                if (t->cb.busy(t->cb.userdata))
                        return respond_error(conn, MHD_HTTP_CONFLICT, "an operation is running");
                t->cb.request(i == 0 ? TRIGGER_UPDATE : TRIGGER_ROLLBACK, t->cb.userdata);
                return respond_json(conn, MHD_HTTP_ACCEPTED, "{\"status\":\"accepted\"}\n");
        }
        _cleanup_free_ char *text =
                i == 2 ? t->cb.status(t->cb.userdata) : t->cb.metrics(t->cb.userdata);
        if (!text)
                return respond_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "unavailable");
        return respond(conn, MHD_HTTP_OK,
                       i == 2 ? "application/json" : "text/plain; version=0.0.4; charset=utf-8",
                       text);
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
        (void) cls;
        (void) conn;
        (void) toe;
        free(*con_cls);
        *con_cls = NULL;
}

/* Parses "host:port" / "[v6]:port" into a listening socket. */
static int open_listener(const char *listen_addr, int *ret, Reason *reason) {
        char host[256];
        const char *port;
        if (listen_addr[0] == '[') {
                const char *end = strchr(listen_addr, ']');
                if (!end || end[1] != ':')
                        return reason_fail(reason, -EINVAL, "bad [trigger] listen = %s",
                                           listen_addr);
                (void) snprintf(host, sizeof(host), "%.*s", (int) (end - listen_addr - 1),
                                listen_addr + 1);
                port = end + 2;
        } else {
                const char *colon = strrchr(listen_addr, ':');
                if (!colon)
                        return reason_fail(reason, -EINVAL,
                                           "bad [trigger] listen = %s (expected host:port)",
                                           listen_addr);
                (void) snprintf(host, sizeof(host), "%.*s", (int) (colon - listen_addr),
                                listen_addr);
                port = colon + 1;
        }
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                        *res = NULL;
        int e = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
        if (e != 0)
                return reason_fail(reason, -EINVAL, "bad [trigger] listen = %s: %s", listen_addr,
                                   gai_strerror(e));
        int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        int r = 0;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0)
                r = -errno;
        freeaddrinfo(res);
        if (r < 0) {
                if (fd >= 0)
                        (void) close(fd);
                return reason_fail(reason, r, "cannot listen on %s: %s", listen_addr, strerror(-r));
        }
        *ret = fd;
        return 0;
}

static bool socket_is_loopback(int fd) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0)
                return false;
        if (ss.ss_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) &ss;
                return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
        }
        if (ss.ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &ss;
                return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
        }
        return ss.ss_family == AF_UNIX;
}

static int read_pem(const char *path, const char *what, char **ret, Reason *reason) {
        int r = read_file_bounded(path, 1024 * 1024, ret, NULL);
        if (r < 0)
                return reason_fail(reason, r, "cannot read [trigger] %s %s: %s", what, path,
                                   strerror(-r));
        return 0;
}

Trigger *trigger_stop(Trigger *t) {
        if (!t)
                return NULL;
        if (t->mhd) {
                /* A socket passed by systemd stays systemd's: stopping would
                 * shutdown(2) it and fail slotd.socket. Quiesced, it keeps
                 * listening for the next start. */
                if (t->listen_fd < 0)
                        (void) MHD_quiesce_daemon(t->mhd);
                MHD_stop_daemon(t->mhd);
        }
        if (t->listen_fd >= 0)
                (void) close(t->listen_fd);
        if (t->token)
                OPENSSL_cleanse(t->token, strlen(t->token));
        free(t->token);
        free(t->cert_pem);
        free(t->key_pem);
        free(t->ca_pem);
        free(t);
        return NULL;
}
DEFINE_CLEANUP_FUNC(Trigger *, trigger_stop);

int trigger_start(const Config *c, const TriggerCallbacks *cb, Trigger **ret, Reason *reason) {
        int fd = -1, r;
        int n = sd_listen_fds(true);
        if (n > 1)
                return reason_fail(reason, -EINVAL,
                                   "systemd passed %d sockets; the trigger listener takes one", n);
        if (n == 1)
                fd = SD_LISTEN_FDS_START;
        else if (!c->listen) {
                *ret = NULL;
                return 0;
        }

        if (fd >= 0 && !c->token_file && !c->client_ca && !socket_is_loopback(fd))
                return reason_fail(reason, -EINVAL,
                                   "the socket passed by systemd is not on a loopback address: "
                                   "set [trigger] token_file or client_ca");

        _cleanup_(trigger_stopp) Trigger *t = calloc(1, sizeof(Trigger));
        if (!t)
                return -ENOMEM;
        t->cb = *cb;
        t->listen_fd = -1;
        if (fd < 0) {
                r = open_listener(c->listen, &fd, reason);
                if (r < 0)
                        return r;
                t->listen_fd = fd; /* ours to close; a passed socket is systemd's */
        }

        if (c->token_file) {
                size_t len;
                r = read_file_bounded(c->token_file, TOKEN_MAX, &t->token, &len);
                if (r < 0)
                        return reason_fail(reason, r, "cannot read [trigger] token_file %s: %s",
                                           c->token_file, strerror(-r));
                while (len > 0 && strchr("\r\n \t", t->token[len - 1]))
                        t->token[--len] = '\0';
                if (len == 0)
                        return reason_fail(reason, -EINVAL, "[trigger] token_file %s is empty",
                                           c->token_file);
        }

        /* ITC lets a socket passed by systemd be quiesced, not shut down,
         * when slotd stops (see trigger_stop()). */
        /* No MHD_USE_ERROR_LOG: connection-level noise (resets, TLS alerts)
         * is not an operator's concern. */
        unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC;
        struct MHD_OptionItem opts[16];
        size_t o = 0;
        opts[o++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, fd, NULL};
        opts[o++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, 512, NULL};
        opts[o++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, 256, NULL};
        opts[o++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 10, NULL};
        opts[o++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, 32 * 1024, NULL};
        opts[o++] =
                (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t) request_done, NULL};
        if (c->tls_cert) {
                if ((r = read_pem(c->tls_cert, "tls_cert", &t->cert_pem, reason)) < 0 ||
                    (r = read_pem(c->tls_key, "tls_key", &t->key_pem, reason)) < 0)
                        return r;
                flags |= MHD_USE_TLS;
                opts[o++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, t->cert_pem};
                opts[o++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, t->key_pem};
                if (c->client_ca) {
                        if ((r = read_pem(c->client_ca, "client_ca", &t->ca_pem, reason)) < 0)
                                return r;
                        opts[o++] =
                                (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, t->ca_pem};
                        t->want_client_cert = true;
                }
        } else if (c->client_ca)
                return reason_fail(reason, -EINVAL,
                                   "[trigger] client_ca needs tls_cert and tls_key (HTTPS)");
        opts[o++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

        t->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, t, MHD_OPTION_ARRAY, opts,
                                  MHD_OPTION_END);
        if (!t->mhd)
                return reason_fail(reason, -EIO, "cannot start the trigger listener on %s",
                                   c->listen ? c->listen : "the socket passed by systemd");
        *ret = TAKE_PTR(t);
        return 0;
}
