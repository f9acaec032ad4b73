/* config.h: slotd.conf, the INI configuration shared by slotd and slotctl. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"

#define CONFIG_DEFAULT_PATH "/etc/slotd/slotd.conf"

typedef enum BusKind {
        BUS_SYSTEM,
        BUS_USER,
        _BUS_KIND_MAX,
        _BUS_KIND_INVALID = -22,
} BusKind;

typedef struct Config {
        char *path;

        /* [agent] */
        char *worker_id;
        char *state_dir;
        bool auto_update;
        uint64_t check_interval; /* durations in microseconds */
        uint64_t check_splay;
        char *hooks_dir;
        uint64_t hook_timeout;

        /* [slots] */
        char *root;
        char *compatible;
        uint64_t max_package_size; /* sizes in bytes */
        uint64_t max_unpacked_size;
        uint64_t min_free_space;
        uint64_t max_entries;

        /* [trust] */
        char *keys;
        bool allow_downgrade;

        /* [coordinator] */
        char *manifest_url; /* after {worker_id}/{channel} expansion */
        char *channel;
        char *events_url;
        char *ca_file;
        char *client_cert;
        char *client_key;
        uint64_t connect_timeout;
        uint64_t update_timeout;
        uint64_t retries;
        uint64_t retry_backoff; /* first backoff step, doubled per retry */
        uint64_t stall_timeout; /* abort a download that receives nothing this long */

        /* [service] */
        char *unit;
        BusKind bus;
        uint64_t restart_timeout;

        /* [health] */
        char *health_url;
        char *version_url;
        char *version_field;
        uint64_t health_timeout;
        uint64_t health_interval;
        uint64_t health_successes;
        uint64_t settle;
        uint64_t monitor_interval;
        char *health_ca_file;
        bool health_insecure;

        /* [rollback] */
        uint64_t rollback_timeout;

        /* [trigger] */
        char *listen;
        char *tls_cert;
        char *tls_key;
        char *client_ca;
        char *token_file;

        /* [events] */
        uint64_t spool_max;
} Config;

/* Called for each problem found while loading: warnings (unknown keys)
 * and errors (bad values), each one line naming file:line. */
typedef void (*config_log_fn)(bool is_error, const char *line, void *userdata);

/* The path config_load() reads: path, else $SLOTD_CONFIG, else the default. */
const char *config_resolve_path(const char *path);

/* Loads path (NULL: $SLOTD_CONFIG, else CONFIG_DEFAULT_PATH). Returns 0;
 * -EINVAL when a value is bad or a required key is missing; -errno when
 * the file cannot be read. Every problem goes through log_fn. */
int config_load(const char *path, config_log_fn log_fn, void *userdata, Config **ret);
Config *config_free(Config *c);
DEFINE_CLEANUP_FUNC(Config *, config_free);

/* Parsers, exposed for tests. Return 0 or -EINVAL. */
int parse_duration(const char *s, uint64_t *ret_usec);
int parse_size(const char *s, uint64_t *ret_bytes);
int parse_bool(const char *s, bool *ret);

/* Replaces {worker_id} and {channel} in a URL template. */
int config_expand(const char *tmpl, const char *worker_id, const char *channel, char **ret);
