/* config.c: slotd.conf (config.h). A table maps each section/key to a
 * parser and a field; inih reads the file; config_finalize() applies the
 * defaults and the rules that span several keys. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"

typedef int (*parse_fn)(const char *value, void *field);

typedef struct ConfigItem {
        const char *section;
        const char *key;
        parse_fn parse;
        size_t offset;
        const char *expect; /* what a good value looks like, for errors */
} ConfigItem;

int parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = {"yes", "true", "on", "1"};
        static const char *const no[] = {"no", "false", "off", "0"};
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

/* A number followed by an optional unit from units[]; the unit's factor
 * multiplies it, with overflow checked. */
typedef struct Unit {
        const char *suffix;
        uint64_t factor;
} Unit;

static int parse_with_units(const char *s, const Unit *units, size_t n_units, uint64_t bare,
                            uint64_t *ret) {
        if (!isdigit((unsigned char) *s))
                return -EINVAL;
        errno = 0;
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno != 0)
                return -EINVAL;
        while (*end == ' ')
                end++;
        uint64_t factor = 0;
        if (*end == '\0')
                factor = bare;
        for (size_t i = 0; i < n_units && factor == 0; i++)
                if (strcasecmp(end, units[i].suffix) == 0)
                        factor = units[i].factor;
        if (factor == 0)
                return -EINVAL;
        if (v > UINT64_MAX / factor)
                return -EINVAL;
        *ret = (uint64_t) v * factor;
        return 0;
}

int parse_duration(const char *s, uint64_t *ret_usec) {
        static const Unit units[] = {
                {"ms", 1000},
                {"s", USEC_PER_SEC},
                {"m", 60 * USEC_PER_SEC},
                {"h", 3600 * USEC_PER_SEC},
        };
        return parse_with_units(s, units, ELEMENTSOF(units), USEC_PER_SEC, ret_usec);
}

int parse_size(const char *s, uint64_t *ret_bytes) {
        static const Unit units[] = {
                {"K", UINT64_C(1) << 10},
                {"M", UINT64_C(1) << 20},
                {"G", UINT64_C(1) << 30},
                {"T", UINT64_C(1) << 40},
        };
        return parse_with_units(s, units, ELEMENTSOF(units), 1, ret_bytes);
}

static int parse_string_field(const char *value, void *field) {
        char **p = field;
        char *copy = NULL;
        if (*value) {
                copy = strdup(value);
                if (!copy)
                        return -ENOMEM;
        }
        free(*p);
        *p = copy;
        return 0;
}

static int parse_bool_field(const char *value, void *field) {
        return parse_bool(value, field);
}

static int parse_duration_field(const char *value, void *field) {
        return parse_duration(value, field);
}

static int parse_size_field(const char *value, void *field) {
        return parse_size(value, field);
}

static int parse_count_field(const char *value, void *field) {
        return parse_with_units(value, NULL, 0, 1, field);
}

/* Rules of a single key live in its parser, so a bad value is reported
 * with its file:line, key and value like any other. */
static int parse_path_field(const char *value, void *field) {
        if (*value && *value != '/')
                return -EINVAL;
        return parse_string_field(value, field);
}

/* A parsed value of 0 refused (the config is then thrown away whole). */
static int refuse_zero(int r, const void *field) {
        return r < 0 ? r : *(const uint64_t *) field == 0 ? -EINVAL : 0;
}

static int parse_positive_duration_field(const char *value, void *field) {
        return refuse_zero(parse_duration_field(value, field), field);
}

static int parse_positive_count_field(const char *value, void *field) {
        return refuse_zero(parse_count_field(value, field), field);
}

static int parse_bus_field(const char *value, void *field) {
        BusKind *b = field;
        if (strcmp(value, "system") == 0)
                *b = BUS_SYSTEM;
        else if (strcmp(value, "user") == 0)
                *b = BUS_USER;
        else
                return -EINVAL;
        return 0;
}

#define STR(sec, key, field)                                                                       \
        { sec, key, parse_string_field, offsetof(Config, field), NULL }
#define BOOL(sec, key, field)                                                                      \
        { sec, key, parse_bool_field, offsetof(Config, field), "yes or no" }
#define DUR(sec, key, field)                                                                       \
        {                                                                                          \
                sec, key, parse_duration_field, offsetof(Config, field),                           \
                        "a duration such as 90, 30s, 5m or 1h"                                     \
        }
#define SIZE(sec, key, field)                                                                      \
        { sec, key, parse_size_field, offsetof(Config, field), "a size such as 4096, 256M or 2G" }
#define COUNT(sec, key, field)                                                                     \
        { sec, key, parse_count_field, offsetof(Config, field), "a whole number" }
#define PATH(sec, key, field)                                                                      \
        { sec, key, parse_path_field, offsetof(Config, field), "an absolute path" }
#define POSITIVE_DUR(sec, key, field)                                                              \
        {                                                                                          \
                sec, key, parse_positive_duration_field, offsetof(Config, field),                  \
                        "a duration above 0 such as 90, 30s, 5m or 1h"                             \
        }
#define POSITIVE_COUNT(sec, key, field)                                                            \
        { sec, key, parse_positive_count_field, offsetof(Config, field), "a whole number above 0" }

static const ConfigItem config_items[] = {
        STR("agent", "worker_id", worker_id),
        PATH("agent", "state_dir", state_dir),
        BOOL("agent", "auto_update", auto_update),
        POSITIVE_DUR("agent", "check_interval", check_interval),
        DUR("agent", "check_splay", check_splay),
        STR("agent", "hooks_dir", hooks_dir),
        DUR("agent", "hook_timeout", hook_timeout),
        PATH("slots", "root", root),
        STR("slots", "compatible", compatible),
        SIZE("slots", "max_package_size", max_package_size),
        SIZE("slots", "max_unpacked_size", max_unpacked_size),
        SIZE("slots", "min_free_space", min_free_space),
        COUNT("slots", "max_entries", max_entries),
        STR("trust", "keys", keys),
        BOOL("trust", "allow_downgrade", allow_downgrade),
        STR("coordinator", "manifest_url", manifest_url),
        STR("coordinator", "channel", channel),
        STR("coordinator", "events_url", events_url),
        STR("coordinator", "ca_file", ca_file),
        STR("coordinator", "client_cert", client_cert),
        STR("coordinator", "client_key", client_key),
        DUR("coordinator", "connect_timeout", connect_timeout),
        DUR("coordinator", "update_timeout", update_timeout),
        COUNT("coordinator", "retries", retries),
        DUR("coordinator", "retry_backoff", retry_backoff),
        DUR("coordinator", "stall_timeout", stall_timeout),
        STR("service", "unit", unit),
        {"service", "bus", parse_bus_field, offsetof(Config, bus), "system or user"},
        DUR("service", "restart_timeout", restart_timeout),
        STR("health", "url", health_url),
        STR("health", "version_url", version_url),
        STR("health", "version_field", version_field),
        DUR("health", "timeout", health_timeout),
        POSITIVE_DUR("health", "interval", health_interval),
        POSITIVE_COUNT("health", "successes", health_successes),
        DUR("health", "settle", settle),
        DUR("health", "monitor_interval", monitor_interval),
        STR("health", "ca_file", health_ca_file),
        BOOL("health", "insecure", health_insecure),
        DUR("rollback", "timeout", rollback_timeout),
        STR("trigger", "listen", listen),
        STR("trigger", "tls_cert", tls_cert),
        STR("trigger", "tls_key", tls_key),
        STR("trigger", "client_ca", client_ca),
        STR("trigger", "token_file", token_file),
        COUNT("events", "spool_max", spool_max),
};

static void config_defaults(Config *c) {
        c->auto_update = true;
        c->hook_timeout = 120 * USEC_PER_SEC;
        c->check_interval = 60 * USEC_PER_SEC;
        c->check_splay = 30 * USEC_PER_SEC;
        c->max_package_size = UINT64_C(2) << 30;
        c->max_unpacked_size = UINT64_C(8) << 30;
        c->min_free_space = UINT64_C(256) << 20;
        c->max_entries = 1000000;
        c->allow_downgrade = false;
        c->connect_timeout = 10 * USEC_PER_SEC;
        c->update_timeout = 300 * USEC_PER_SEC;
        c->retries = 5;
        c->retry_backoff = 1 * USEC_PER_SEC;
        c->stall_timeout = 30 * USEC_PER_SEC;
        c->bus = BUS_SYSTEM;
        c->restart_timeout = 90 * USEC_PER_SEC;
        c->health_timeout = 120 * USEC_PER_SEC;
        c->health_interval = 2 * USEC_PER_SEC;
        c->health_successes = 3;
        c->settle = 0;
        c->monitor_interval = 30 * USEC_PER_SEC;
        c->rollback_timeout = 120 * USEC_PER_SEC;
        c->spool_max = 10000;
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(config_items); i++)
                if (config_items[i].parse == parse_string_field ||
                    config_items[i].parse == parse_path_field)
                        free(*(char **) ((char *) c + config_items[i].offset));
        free(c->path);
        free(c);
        return NULL;
}

typedef struct LoadContext {
        Config *config;
        const char *path;
        FILE *file;
        char *line_buf;
        size_t line_cap;
        char *long_values[16]; /* values of lines longer than inih's buffer */
        unsigned n_long;
        unsigned line;
        int error;
        config_log_fn log_fn;
        void *userdata;
} LoadContext;

static void config_log(LoadContext *ctx, bool is_error, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void config_log(LoadContext *ctx, bool is_error, const char *fmt, ...) {
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (ctx->log_fn)
                ctx->log_fn(is_error, buf, ctx->userdata);
        if (is_error && ctx->error == 0)
                ctx->error = -EINVAL;
}

#define LONG_VALUE_MARK '\x01'
#define LINE_MAX_BYTES (64 * 1024)

/* inih hands lines through this reader so every handler call knows the
 * line number it came from. inih's line buffer is short (200 bytes in
 * Debian's build), too short for a URL with a query string: a longer
 * "key = value" line reaches inih as "key = <mark><n>" and the handler
 * takes the value from the side table. */
static char *counting_reader(char *buf, int size, void *stream) {
        LoadContext *ctx = stream;
        ssize_t n = getline(&ctx->line_buf, &ctx->line_cap, ctx->file);
        if (n < 0)
                return NULL;
        ctx->line++;
        if (n < size - 1) {
                memcpy(buf, ctx->line_buf, (size_t) n + 1);
                return buf;
        }
        const char *first = ctx->line_buf + strspn(ctx->line_buf, " \t");
        if (*first == ';' || *first == '#') {
                /* A long comment says nothing to inih either. */
                (void) snprintf(buf, (size_t) size, ";\n");
                return buf;
        }
        char *eq = strchr(ctx->line_buf, '=');
        if (n > LINE_MAX_BYTES || !eq || eq - ctx->line_buf > size - 16 ||
            ctx->n_long >= ELEMENTSOF(ctx->long_values)) {
                /* Not a key line we can carry: make inih report this line. */
                (void) snprintf(buf, (size_t) size, "%c\n", LONG_VALUE_MARK);
                return buf;
        }
        char *value = strdup(eq + 1);
        if (!value)
                return NULL;
        ctx->long_values[ctx->n_long] = value;
        (void) snprintf(buf, (size_t) size, "%.*s= %c%u\n", (int) (eq - ctx->line_buf),
                        ctx->line_buf, LONG_VALUE_MARK, ctx->n_long);
        ctx->n_long++;
        return buf;
}

/* Trims a value carried past inih the way inih trims: white space, and
 * an inline comment starting with ';' after white space. */
static char *long_value(LoadContext *ctx, const char *marker) {
        unsigned i = (unsigned) strtoul(marker + 1, NULL, 10);
        if (i >= ctx->n_long)
                return NULL;
        char *v = ctx->long_values[i];
        while (*v == ' ' || *v == '\t')
                v++;
        for (char *p = v; *p; p++)
                if (*p == ';' && p > v && (p[-1] == ' ' || p[-1] == '\t')) {
                        *p = '\0';
                        break;
                }
        size_t len = strlen(v);
        while (len > 0 && strchr(" \t\r\n", v[len - 1]))
                v[--len] = '\0';
        return v;
}

static int config_handler(void *user, const char *section, const char *key, const char *value) {
        LoadContext *ctx = user;
        if (value[0] == LONG_VALUE_MARK) {
                value = long_value(ctx, value);
                if (!value)
                        return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(config_items); i++) {
                const ConfigItem *it = &config_items[i];
                if (strcmp(it->section, section) != 0 || strcmp(it->key, key) != 0)
                        continue;
                int r = it->parse(value, (char *) ctx->config + it->offset);
                if (r == -ENOMEM)
                        return 0;
                if (r < 0)
                        config_log(ctx, true, "%s:%u: bad value for [%s] %s: \"%s\" (expected %s)",
                                   ctx->path, ctx->line, section, key, value,
                                   it->expect ? it->expect : "text");
                return 1;
        }
        config_log(ctx, false, "%s:%u: unknown key \"%s\" in [%s], ignored", ctx->path, ctx->line,
                   key, section);
        return 1;
}

int config_expand(const char *tmpl, const char *worker_id, const char *channel, char **ret) {
        static const char *const names[] = {"{worker_id}", "{channel}"};
        const char *values[] = {worker_id ? worker_id : "", channel ? channel : ""};
        size_t cap = strlen(tmpl) + 1;
        for (const char *p = tmpl; *p; p++)
                cap += strlen(values[0]) + strlen(values[1]);

        _cleanup_free_ char *out = malloc(cap);
        if (!out)
                return -ENOMEM;
        char *o = out;
        for (const char *p = tmpl; *p;) {
                size_t i;
                for (i = 0; i < ELEMENTSOF(names); i++)
                        if (strncmp(p, names[i], strlen(names[i])) == 0)
                                break;
                if (i < ELEMENTSOF(names)) {
                        o = stpcpy(o, values[i]);
                        p += strlen(names[i]);
                } else
                        *o++ = *p++;
        }
        *o = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

/* Only an address literal in 127.0.0.0/8 or ::1, or "localhost", counts:
 * a name such as "127.example.net" may resolve anywhere. */
static bool listen_is_loopback(const char *listen) {
        char host[256];
        const char *end;

        if (listen[0] == '[') {
                listen++;
                end = strchr(listen, ']');
        } else
                end = strrchr(listen, ':');
        if (!end)
                end = listen + strlen(listen);
        if ((size_t) (end - listen) >= sizeof(host))
                return false;
        memcpy(host, listen, (size_t) (end - listen));
        host[end - listen] = '\0';

        struct in_addr a4;
        struct in6_addr a6;
        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        if (inet_pton(AF_INET6, host, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6);
        return strcmp(host, "localhost") == 0;
}

static int set_default(char **field, const char *value) {
        if (*field)
                return 0;
        *field = strdup(value);
        return *field ? 0 : -ENOMEM;
}

/* Defaults that depend on other keys, and rules spanning several keys. */
static int config_finalize(LoadContext *ctx) {
        Config *c = ctx->config;
        char host[HOST_NAME_MAX + 1] = "";
        int r;

        if (!c->worker_id) {
                if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
                        (void) snprintf(host, sizeof(host), "worker");
                r = set_default(&c->worker_id, host);
                if (r < 0)
                        return r;
        }
        if ((r = set_default(&c->state_dir, "/var/lib/slotd")) < 0 ||
            (r = set_default(&c->hooks_dir, "/etc/slotd/hooks.d")) < 0 ||
            (r = set_default(&c->keys, "/etc/slotd/keys.d")) < 0 ||
            (r = set_default(&c->channel, "stable")) < 0 ||
            (r = set_default(&c->version_field, "codebase_version")) < 0)
                return r;

        if (!c->root)
                config_log(ctx, true, "%s: missing required key [slots] root", ctx->path);
        if (!c->compatible)
                config_log(ctx, true, "%s: missing required key [slots] compatible", ctx->path);
        if (!!c->client_cert != !!c->client_key)
                config_log(ctx, true, "%s: [coordinator] client_cert and client_key go together",
                           ctx->path);
        if (c->client_ca && !c->tls_cert)
                config_log(ctx, true, "%s: [trigger] client_ca needs tls_cert and tls_key (HTTPS)",
                           ctx->path);
        if (!!c->tls_cert != !!c->tls_key)
                config_log(ctx, true, "%s: [trigger] tls_cert and tls_key go together", ctx->path);
        if (c->listen && !listen_is_loopback(c->listen) && !c->token_file && !c->client_ca)
                config_log(ctx, true,
                           "%s: [trigger] listen = %s is not loopback and needs token_file or "
                           "client_ca",
                           ctx->path, c->listen);

        if (c->manifest_url) {
                char *expanded;
                r = config_expand(c->manifest_url, c->worker_id, c->channel, &expanded);
                if (r < 0)
                        return r;
                free(c->manifest_url);
                c->manifest_url = expanded;
        }
        if (c->events_url) {
                char *expanded;
                r = config_expand(c->events_url, c->worker_id, c->channel, &expanded);
                if (r < 0)
                        return r;
                free(c->events_url);
                c->events_url = expanded;
        }
        return 0;
}

const char *config_resolve_path(const char *path) {
        if (path)
                return path;
        const char *env = getenv("SLOTD_CONFIG");
        return env && *env ? env : CONFIG_DEFAULT_PATH;
}

int config_load(const char *path, config_log_fn log_fn, void *userdata, Config **ret) {
        path = config_resolve_path(path);

        _cleanup_(config_freep) Config *c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;
        config_defaults(c);
        c->path = strdup(path);
        if (!c->path)
                return -ENOMEM;

        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return -errno;

        LoadContext ctx = {
                .config = c,
                .path = path,
                .file = f,
                .log_fn = log_fn,
                .userdata = userdata,
        };
        int r = ini_parse_stream(counting_reader, &ctx, config_handler, &ctx);
        free(ctx.line_buf);
        for (unsigned i = 0; i < ctx.n_long; i++)
                free(ctx.long_values[i]);
        if (r < 0)
                return -ENOMEM;
        if (r > 0)
                config_log(&ctx, true, "%s:%d: malformed line (expected [section] or key = value)",
                           path, r);
        r = config_finalize(&ctx);
        if (r < 0)
                return r;
        if (ctx.error < 0)
                return ctx.error;
        *ret = TAKE_PTR(c);
        return 0;
}
