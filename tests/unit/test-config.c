/* test-config.c: slotd.conf as SPEC section 2 describes it, written to a
 * temporary folder and loaded the way slotd and slotctl load it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "config.h"

#define SEC UINT64_C(1000000)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)

/* The two keys without which nothing loads. */
#define REQUIRED "[slots]\nroot = /opt/translator\ncompatible = translator-worker\n"

static char tmpdir[64];
static char conf[PATH_MAX];

typedef struct LogEntry {
        bool is_error;
        char line[1100];
} LogEntry;

typedef struct Log {
        LogEntry entries[32];
        size_t n;
} Log;

static Log logged;

static void collect(bool is_error, const char *line, void *userdata) {
        Log *l = userdata;
        if (l->n >= ELEMENTSOF(l->entries))
                return;
        l->entries[l->n].is_error = is_error;
        (void) snprintf(l->entries[l->n].line, sizeof(l->entries[l->n].line), "%s", line);
        l->n++;
}

static size_t count(bool is_error) {
        size_t n = 0;
        for (size_t i = 0; i < logged.n; i++)
                n += logged.entries[i].is_error == is_error;
        return n;
}

/* The first logged line of that kind holding every needle, or NULL. */
static const char *find_logged(bool is_error, const char *n1, const char *n2, const char *n3) {
        for (size_t i = 0; i < logged.n; i++) {
                const LogEntry *e = &logged.entries[i];
                if (e->is_error != is_error)
                        continue;
                if (strstr(e->line, n1) && (!n2 || strstr(e->line, n2)) &&
                    (!n3 || strstr(e->line, n3)))
                        return e->line;
        }
        return NULL;
}

static void dump_log(void) {
        for (size_t i = 0; i < logged.n; i++)
                print_message("  %s: %s\n", logged.entries[i].is_error ? "error" : "warning",
                              logged.entries[i].line);
}

static void write_conf(const char *path, const char *text) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
}

/* Writes text as the config file and loads it; the log lands in `logged`. */
static int load(const char *text, Config **ret) {
        write_conf(conf, text);
        memset(&logged, 0, sizeof(logged));
        *ret = NULL;
        int r = config_load(conf, collect, &logged, ret);
        if (r == 0)
                assert_non_null(*ret);
        else
                assert_null(*ret);
        return r;
}

static Config *load_ok(const char *text) {
        Config *c = NULL;
        int r = load(text, &c);
        if (r != 0) {
                dump_log();
                fail_msg("config_load failed: %s", strerror(-r));
        }
        return c;
}

/* "<conf>:<line>:" as the log names a place in the file. */
static const char *place(unsigned line) {
        static char buf[PATH_MAX + 16];
        int n = snprintf(buf, sizeof(buf), "%s:%u:", conf, line);
        assert_true(n > 0 && (size_t) n < sizeof(buf));
        return buf;
}

static int setup(void **state) {
        (void) state;
        (void) snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-config-XXXXXX");
        if (!mkdtemp(tmpdir))
                return -1;
        int n = snprintf(conf, sizeof(conf), "%s/slotd.conf", tmpdir);
        return n > 0 && (size_t) n < sizeof(conf) ? 0 : -1;
}

static int teardown(void **state) {
        char other[PATH_MAX];
        (void) state;
        (void) unsetenv("SLOTD_CONFIG");
        (void) unlink(conf);
        if (snprintf(other, sizeof(other), "%s/other.conf", tmpdir) < (int) sizeof(other))
                (void) unlink(other);
        return rmdir(tmpdir);
}

static void test_config_every_key_parsed(void **state) {
        static const char text[] =
                "; every key of the contract, none at its default\n"
                "[agent]\n"
                "worker_id = worker07\n"
                "state_dir = /srv/slotd-state\n"
                "auto_update = no\n"
                "check_interval = 2m\n"
                "check_splay = 7s\n"
                "hooks_dir = /srv/hooks.d\n"
                "\n"
                "[slots]\n"
                "root = /opt/translator\n"
                "compatible = translator-worker\n"
                "max_package_size = 3G\n"
                "max_unpacked_size = 9G\n"
                "min_free_space = 512M\n"
                "\n"
                "[trust]\n"
                "keys = /srv/keys.d/release.pub\n"
                "allow_downgrade = yes\n"
                "\n"
                "[coordinator]\n"
                "manifest_url = https://coord:8080/m?worker={worker_id}&channel={channel}\n"
                "channel = beta\n"
                "events_url = https://coord:8080/api/v1/events\n"
                "ca_file = /srv/ca.pem\n"
                "client_cert = /srv/client.pem\n"
                "client_key = /srv/client.key\n"
                "connect_timeout = 11s\n"
                "update_timeout = 301s\n"
                "retries = 7\n"
                "\n"
                "[service]\n"
                "unit = other-worker.service\n"
                "bus = user\n"
                "restart_timeout = 91s\n"
                "\n"
                "[health]\n"
                "url = https://127.0.0.1:9443/healthz\n"
                "version_url = https://127.0.0.1:9443/version\n"
                "version_field = build\n"
                "timeout = 121s\n"
                "interval = 3s\n"
                "successes = 4\n"
                "settle = 15s\n"
                "monitor_interval = 31s\n"
                "ca_file = /srv/health-ca.pem\n"
                "insecure = yes\n"
                "\n"
                "[rollback]\n"
                "timeout = 122s\n"
                "\n"
                "[trigger]\n"
                "listen = 0.0.0.0:8443\n"
                "tls_cert = /srv/tls.pem\n"
                "tls_key = /srv/tls.key\n"
                "client_ca = /srv/clients-ca.pem\n"
                "token_file = /srv/token\n"
                "\n"
                "[events]\n"
                "spool_max = 500\n";
        _cleanup_(config_freep) Config *c = load_ok(text);

        (void) state;
        assert_int_equal(logged.n, 0);
        assert_string_equal(c->path, conf);

        assert_string_equal(c->worker_id, "worker07");
        assert_string_equal(c->state_dir, "/srv/slotd-state");
        assert_false(c->auto_update);
        assert_int_equal(c->check_interval, 120 * SEC);
        assert_int_equal(c->check_splay, 7 * SEC);
        assert_string_equal(c->hooks_dir, "/srv/hooks.d");

        assert_string_equal(c->root, "/opt/translator");
        assert_string_equal(c->compatible, "translator-worker");
        assert_int_equal(c->max_package_size, 3 * GIB);
        assert_int_equal(c->max_unpacked_size, 9 * GIB);
        assert_int_equal(c->min_free_space, 512 * MIB);

        assert_string_equal(c->keys, "/srv/keys.d/release.pub");
        assert_true(c->allow_downgrade);

        assert_string_equal(c->manifest_url, "https://coord:8080/m?worker=worker07&channel=beta");
        assert_string_equal(c->channel, "beta");
        assert_string_equal(c->events_url, "https://coord:8080/api/v1/events");
        assert_string_equal(c->ca_file, "/srv/ca.pem");
        assert_string_equal(c->client_cert, "/srv/client.pem");
        assert_string_equal(c->client_key, "/srv/client.key");
        assert_int_equal(c->connect_timeout, 11 * SEC);
        assert_int_equal(c->update_timeout, 301 * SEC);
        assert_int_equal(c->retries, 7);

        assert_string_equal(c->unit, "other-worker.service");
        assert_int_equal(c->bus, BUS_USER);
        assert_int_equal(c->restart_timeout, 91 * SEC);

        assert_string_equal(c->health_url, "https://127.0.0.1:9443/healthz");
        assert_string_equal(c->version_url, "https://127.0.0.1:9443/version");
        assert_string_equal(c->version_field, "build");
        assert_int_equal(c->health_timeout, 121 * SEC);
        assert_int_equal(c->health_interval, 3 * SEC);
        assert_int_equal(c->health_successes, 4);
        assert_int_equal(c->settle, 15 * SEC);
        assert_int_equal(c->monitor_interval, 31 * SEC);
        assert_string_equal(c->health_ca_file, "/srv/health-ca.pem");
        assert_true(c->health_insecure);

        assert_int_equal(c->rollback_timeout, 122 * SEC);

        assert_string_equal(c->listen, "0.0.0.0:8443");
        assert_string_equal(c->tls_cert, "/srv/tls.pem");
        assert_string_equal(c->tls_key, "/srv/tls.key");
        assert_string_equal(c->client_ca, "/srv/clients-ca.pem");
        assert_string_equal(c->token_file, "/srv/token");

        assert_int_equal(c->spool_max, 500);
}

static void test_config_spec_defaults_when_absent(void **state) {
        char host[HOST_NAME_MAX + 1] = "";
        _cleanup_(config_freep) Config *c = load_ok(REQUIRED);

        (void) state;
        assert_int_equal(logged.n, 0);
        assert_int_equal(gethostname(host, sizeof(host) - 1), 0);

        /* Each default the spec gives in brackets. */
        assert_string_equal(c->worker_id, host);                 /* [the host name] */
        assert_true(c->auto_update);                             /* [yes] */
        assert_int_equal(c->check_interval, 60 * SEC);           /* [60s] */
        assert_int_equal(c->check_splay, 30 * SEC);              /* [30s] */
        assert_string_equal(c->hooks_dir, "/etc/slotd/hooks.d"); /* [/etc/slotd/hooks.d] */
        assert_null(c->ca_file);                                 /* [system trust store] */
        assert_null(c->client_cert);                             /* optional */
        assert_null(c->client_key);
        assert_null(c->listen); /* empty = off */
        assert_null(c->token_file);
        assert_null(c->client_ca);

        /* Absent URLs stay absent rather than pointing anywhere. */
        assert_null(c->manifest_url);
        assert_null(c->events_url);
}

static void test_config_empty_value_means_unset(void **state) {
        _cleanup_(config_freep) Config *c = load_ok(REQUIRED "[coordinator]\nca_file =\n"
                                                             "[trigger]\nlisten =\n");
        (void) state;
        assert_null(c->ca_file);
        assert_null(c->listen);
        assert_int_equal(logged.n, 0);
}

static void test_config_durations(void **state) {
        static const struct {
                const char *text;
                uint64_t usec;
        } good[] = {
                {"90", 90 * SEC}, {"30s", 30 * SEC},   {"5m", 300 * SEC},  {"1h", 3600 * SEC},
                {"0s", 0},        {"120s", 120 * SEC}, {"2h", 7200 * SEC}, {"86400", 86400 * SEC},
        };
        static const char *const bad[] = {"soon", "-5s",  "5x",        "",
                                          "s",    "1.5s", "5 minutes", "99999999999999999999h"};
        uint64_t v;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                v = 42;
                if (parse_duration(good[i].text, &v) != 0)
                        fail_msg("duration \"%s\" refused", good[i].text);
                if (v != good[i].usec)
                        fail_msg("duration \"%s\" read as %llu usec", good[i].text,
                                 (unsigned long long) v);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                v = 42;
                if (parse_duration(bad[i], &v) != -EINVAL)
                        fail_msg("bad duration \"%s\" accepted", bad[i]);
                assert_int_equal(v, 42);
        }

        /* The same through a file, in each duration key's own field. */
        _cleanup_(config_freep) Config *c = load_ok(REQUIRED "[agent]\ncheck_interval = 90\n"
                                                             "check_splay = 5m\n"
                                                             "[service]\nrestart_timeout = 1h\n"
                                                             "[health]\ninterval = 30s\n");
        assert_int_equal(c->check_interval, 90 * SEC);
        assert_int_equal(c->check_splay, 300 * SEC);
        assert_int_equal(c->restart_timeout, 3600 * SEC);
        assert_int_equal(c->health_interval, 30 * SEC);
}

static void test_config_bad_duration_names_place_key_and_value(void **state) {
        static const char *const bad[] = {"soon", "-5s", "5x"};
        char text[256];
        Config *c = NULL;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                /* check_splay is on line 5 */
                (void) snprintf(text, sizeof(text), REQUIRED "[agent]\ncheck_splay = %s\n", bad[i]);
                assert_int_equal(load(text, &c), -EINVAL);
                const char *e = find_logged(true, place(5), "check_splay", bad[i]);
                if (!e) {
                        dump_log();
                        fail_msg("no error naming %s, check_splay and \"%s\"", place(5), bad[i]);
                }
        }
}

static void test_config_sizes(void **state) {
        static const struct {
                const char *text;
                uint64_t bytes;
        } good[] = {
                {"4096", 4096}, {"256M", 256 * MIB}, {"2G", 2 * GIB}, {"8K", 8192}, {"0", 0},
        };
        uint64_t v;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                v = 42;
                if (parse_size(good[i].text, &v) != 0 || v != good[i].bytes)
                        fail_msg("size \"%s\" not read as %llu", good[i].text,
                                 (unsigned long long) good[i].bytes);
        }
        v = 42;
        assert_int_equal(parse_size("1Q", &v), -EINVAL);
        assert_int_equal(parse_size("-1G", &v), -EINVAL);
        assert_int_equal(parse_size("G", &v), -EINVAL);
        assert_int_equal(parse_size("99999999999G", &v), -EINVAL); /* past 2^64 */
        assert_int_equal(v, 42);

        _cleanup_(config_freep) Config *c =
                load_ok("[slots]\nroot = /opt/translator\ncompatible = translator-worker\n"
                        "max_package_size = 4096\nmax_unpacked_size = 2G\nmin_free_space = 256M\n");
        assert_int_equal(c->max_package_size, 4096);
        assert_int_equal(c->max_unpacked_size, 2 * GIB);
        assert_int_equal(c->min_free_space, 256 * MIB);

        Config *bad = NULL;
        assert_int_equal(load(REQUIRED "max_package_size = 1Q\n", &bad), -EINVAL);
        assert_non_null(find_logged(true, place(4), "max_package_size", "1Q"));
}

static void test_config_booleans(void **state) {
        static const char *const yes[] = {"yes", "true", "on", "1", "Yes", "TRUE"};
        static const char *const no[] = {"no", "false", "off", "0", "No", "FALSE"};
        bool b;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                b = false;
                assert_int_equal(parse_bool(yes[i], &b), 0);
                assert_true(b);
        }
        for (size_t i = 0; i < ELEMENTSOF(no); i++) {
                b = true;
                assert_int_equal(parse_bool(no[i], &b), 0);
                assert_false(b);
        }
        b = true;
        assert_int_equal(parse_bool("maybe", &b), -EINVAL);
        assert_int_equal(parse_bool("", &b), -EINVAL);
        assert_true(b);

        _cleanup_(config_freep) Config *c = load_ok(REQUIRED "[agent]\nauto_update = off\n"
                                                             "[trust]\nallow_downgrade = true\n"
                                                             "[health]\ninsecure = on\n");
        assert_false(c->auto_update);
        assert_true(c->allow_downgrade);
        assert_true(c->health_insecure);

        Config *bad = NULL;
        assert_int_equal(load(REQUIRED "[trust]\nallow_downgrade = maybe\n", &bad), -EINVAL);
        assert_non_null(find_logged(true, place(5), "allow_downgrade", "maybe"));
}

static void test_config_bad_enum_and_count_refused(void **state) {
        Config *c = NULL;

        (void) state;
        assert_int_equal(load(REQUIRED "[service]\nbus = session\n", &c), -EINVAL);
        assert_non_null(find_logged(true, place(5), "bus", "session"));
        assert_int_equal(load(REQUIRED "[coordinator]\nretries = many\n", &c), -EINVAL);
        assert_non_null(find_logged(true, place(5), "retries", "many"));
        assert_int_equal(load(REQUIRED "[events]\nspool_max = -1\n", &c), -EINVAL);
        assert_non_null(find_logged(true, place(5), "spool_max", "-1"));
}

static void test_config_manifest_url_expanded(void **state) {
        char host[HOST_NAME_MAX + 1] = "", want[512];

        (void) state;
        {
                _cleanup_(config_freep) Config *c =
                        load_ok(REQUIRED "[agent]\nworker_id = w42\n"
                                         "[coordinator]\nchannel = canary\n"
                                         "manifest_url = https://c/{channel}/m?worker={worker_id}&"
                                         "channel={channel}&again={worker_id}\n");
                assert_string_equal(c->manifest_url,
                                    "https://c/canary/m?worker=w42&channel=canary&again=w42");
                /* The channel itself stays as written. */
                assert_string_equal(c->channel, "canary");
        }
        {
                /* worker_id defaults to the host name, and that is what goes in. */
                _cleanup_(config_freep) Config *c = load_ok(
                        REQUIRED
                        "[coordinator]\nchannel = stable\n"
                        "manifest_url = https://c/m?worker={worker_id}&channel={channel}\n");
                assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
                (void) snprintf(want, sizeof(want), "https://c/m?worker=%s&channel=stable", host);
                assert_string_equal(c->manifest_url, want);
        }
        {
                /* Unknown placeholders and lone braces are left alone. */
                _cleanup_(config_freep) Config *c = load_ok(
                        REQUIRED "[agent]\nworker_id = w1\n"
                                 "[coordinator]\nmanifest_url = https://c/{other}/{worker_id/x\n");
                assert_string_equal(c->manifest_url, "https://c/{other}/{worker_id/x");
        }

        char *out = NULL;
        assert_int_equal(config_expand("{worker_id}{channel}{worker_id}", "ab", "c", &out), 0);
        assert_string_equal(out, "abcab");
        free(out);
}

static void test_config_unknown_key_warns_and_loads(void **state) {
        (void) state;
        _cleanup_(config_freep) Config *c =
                load_ok(REQUIRED "[agent]\nworker_id = w1\ncheck_intreval = 5s\n"
                                 "[bogus]\nthing = 1\n");
        /* Loaded, the known keys applied, the typo left at its default. */
        assert_string_equal(c->worker_id, "w1");
        assert_int_equal(c->check_interval, 60 * SEC);
        assert_int_equal(count(true), 0);
        assert_int_equal(count(false), 2);
        const char *w = find_logged(false, place(6), "check_intreval", NULL);
        if (!w) {
                dump_log();
                fail_msg("no warning naming %s and the key", place(6));
        }
        assert_non_null(find_logged(false, place(8), "thing", NULL));
}

static void test_config_bad_value_is_einval_with_place(void **state) {
        Config *c = NULL;

        (void) state;
        /* The bad key is on line 7, after comments and blank lines. */
        assert_int_equal(load("; slotd\n"
                              "\n" REQUIRED "[health]\n"
                              "timeout = soon\n",
                              &c),
                         -EINVAL);
        const char *e = find_logged(true, place(7), "timeout", "soon");
        if (!e) {
                dump_log();
                fail_msg("no error naming %s, the key and the value", place(7));
        }
        /* Only one problem, said once. */
        assert_int_equal(count(true), 1);
}

static void test_config_missing_required_keys(void **state) {
        Config *c = NULL;

        (void) state;
        assert_int_equal(load("[slots]\ncompatible = translator-worker\n", &c), -EINVAL);
        assert_non_null(find_logged(true, conf, "root", NULL));

        assert_int_equal(load("[slots]\nroot = /opt/translator\n", &c), -EINVAL);
        assert_non_null(find_logged(true, conf, "compatible", NULL));

        /* An empty value is as good as missing. */
        assert_int_equal(load("[slots]\nroot =\ncompatible = translator-worker\n", &c), -EINVAL);
        assert_non_null(find_logged(true, conf, "root", NULL));

        assert_int_equal(load("", &c), -EINVAL);
        assert_int_equal(count(true), 2);
}

static void test_config_missing_file_is_enoent(void **state) {
        char missing[PATH_MAX];
        Config *c = NULL;

        (void) state;
        assert_true(snprintf(missing, sizeof(missing), "%s/nope.conf", tmpdir) <
                    (int) sizeof(missing));
        assert_int_equal(config_load(missing, collect, &logged, &c), -ENOENT);
        assert_null(c);
}

static void test_config_env_honoured_when_path_null(void **state) {
        char other[PATH_MAX];
        Config *c = NULL;

        (void) state;
        assert_true(snprintf(other, sizeof(other), "%s/other.conf", tmpdir) < (int) sizeof(other));
        write_conf(other, REQUIRED "[agent]\nworker_id = from-env\n");
        assert_int_equal(setenv("SLOTD_CONFIG", other, 1), 0);
        memset(&logged, 0, sizeof(logged));
        assert_int_equal(config_load(NULL, collect, &logged, &c), 0);
        assert_non_null(c);
        assert_string_equal(c->path, other);
        assert_string_equal(c->worker_id, "from-env");
        c = config_free(c);

        /* An explicit path wins over the environment. */
        write_conf(conf, REQUIRED "[agent]\nworker_id = from-path\n");
        assert_int_equal(config_load(conf, collect, &logged, &c), 0);
        assert_string_equal(c->worker_id, "from-path");
        c = config_free(c);

        /* The environment naming a missing file is that file's error. */
        assert_int_equal(unlink(other), 0);
        assert_int_equal(config_load(NULL, collect, &logged, &c), -ENOENT);
        assert_null(c);
}

static void test_config_public_listener_needs_auth(void **state) {
        Config *c = NULL;

        (void) state;
        assert_int_equal(load(REQUIRED "[trigger]\nlisten = 0.0.0.0:8443\n", &c), -EINVAL);
        assert_non_null(find_logged(true, conf, "listen", "0.0.0.0:8443"));
        assert_int_equal(load(REQUIRED "[trigger]\nlisten = [::]:8443\n", &c), -EINVAL);
        assert_int_equal(load(REQUIRED "[trigger]\nlisten = 192.0.2.7:8443\n", &c), -EINVAL);
        /* Names that only start like a loopback address are not one. */
        assert_int_equal(load(REQUIRED "[trigger]\nlisten = 127.example.net:8443\n", &c), -EINVAL);
        assert_int_equal(load(REQUIRED "[trigger]\nlisten = localhost.example.net:8443\n", &c),
                         -EINVAL);
        /* Client certificates need HTTPS. */
        assert_int_equal(load(REQUIRED "[trigger]\nlisten = 0.0.0.0:8443\n"
                                       "client_ca = /etc/slotd/ca.pem\n",
                              &c),
                         -EINVAL);
        assert_non_null(find_logged(true, conf, "client_ca", "tls_cert"));

        static const char *const fine[] = {
                REQUIRED "[trigger]\nlisten = 0.0.0.0:8443\ntoken_file = /etc/slotd/token\n",
                REQUIRED "[trigger]\nlisten = 0.0.0.0:8443\nclient_ca = /etc/slotd/ca.pem\n"
                         "tls_cert = /etc/slotd/tls.pem\ntls_key = /etc/slotd/tls.key\n",
                REQUIRED "[trigger]\nlisten = 127.0.0.1:8443\n",
                REQUIRED "[trigger]\nlisten = 127.0.0.53:8443\n",
                REQUIRED "[trigger]\nlisten = [::1]:8443\n",
                REQUIRED "[trigger]\nlisten = localhost:8443\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(fine); i++) {
                if (load(fine[i], &c) != 0) {
                        dump_log();
                        fail_msg("refused: %s", fine[i]);
                }
                c = config_free(c);
        }
}

/* Builds a URL of exactly len characters: a long path, then the query
 * with the placeholders, so the part past 200 bytes holds a '='. */
static void long_url(char *buf, size_t len, const char *query) {
        static const char host[] = "https://coordinator.example.internal:8080/";
        size_t q = strlen(query);
        assert_true(len > strlen(host) + q);
        memcpy(buf, host, strlen(host));
        memset(buf + strlen(host), 'p', len - strlen(host) - q);
        memcpy(buf + len - q, query, q + 1);
}

static void test_config_long_value_read_whole(void **state) {
        char url[400], want[400], text[800];

        (void) state;
        /* 300 characters, well past inih's 200-byte default line. */
        long_url(url, 300, "/manifest?worker={worker_id}&channel={channel}");
        long_url(want, 300 - strlen("{worker_id}{channel}") + strlen("w1beta"),
                 "/manifest?worker=w1&channel=beta");

        int n = snprintf(text, sizeof(text),
                         REQUIRED "[agent]\nworker_id = w1\n"
                                  "[coordinator]\nmanifest_url = %s\nchannel = beta\n",
                         url);
        assert_true(n > 0 && (size_t) n < sizeof(text));
        {
                _cleanup_(config_freep) Config *c = load_ok(text);
                assert_string_equal(c->manifest_url, want);
                assert_string_equal(c->channel, "beta");
                assert_int_equal(logged.n, 0);
        }

        /* The line after the long one keeps its number (line 10). */
        assert_true(strlen(text) + 40 < sizeof(text));
        strcat(text, "[events]\nspool_max = oops\n");
        Config *bad = NULL;
        int r = load(text, &bad);
        if (r != -EINVAL || !find_logged(true, place(10), "spool_max", "oops")) {
                dump_log();
                fail_msg("no error naming %s after a long line (config_load: %d)", place(10), r);
        }
}

static void test_config_long_lines_parsed_like_short_ones(void **state) {
        char url[400], comment[400], text[2400];

        (void) state;
        long_url(url, 260, "/m?worker={worker_id}");
        /* A long comment line, prose without any '='. */
        memset(comment, 'c', sizeof(comment));
        memcpy(comment, "; ", 2);
        comment[300] = '\0';

        int n = snprintf(text, sizeof(text),
                         "%s\n"                                /* 1 */
                         "# manifest_url = %s\n"               /* 2: commented out */
                         REQUIRED                              /* 3-5 */
                         "[agent]\n"                           /* 6 */
                         "worker_id = w9\n"                    /* 7 */
                         "[coordinator]\n"                     /* 8 */
                         "manifest_url =   %s   ; the usual\n" /* 9: trimmed, comment cut */
                         "events_url = %s\t\r\n"               /* 10 */
                         "long_unknown_key = %s\n"             /* 11 */
                         "retries = 9\n",                      /* 12 */
                         comment, url, url, url, url);
        assert_true(n > 0 && (size_t) n < sizeof(text));

        char want[400];
        long_url(want, 260 - strlen("{worker_id}") + strlen("w9"), "/m?worker=w9");
        _cleanup_(config_freep) Config *c = load_ok(text);
        assert_string_equal(c->manifest_url, want);
        assert_string_equal(c->events_url, want);
        assert_int_equal(c->retries, 9);
        /* The unknown long key is a warning on its own line, nothing else is. */
        assert_int_equal(count(true), 0);
        assert_int_equal(count(false), 1);
        assert_non_null(find_logged(false, place(11), "long_unknown_key", NULL));
}

static void test_config_zero_where_positive_needed_names_line(void **state) {
        static const char *const bad[] = {
                "[health]\nsuccesses = 0\n",
                "[health]\ninterval = 0s\n",
                "[agent]\ncheck_interval = 0\n",
        };
        static const char *const key[] = {"successes", "interval", "check_interval"};
        char text[256];
        Config *c = NULL;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                (void) snprintf(text, sizeof(text), REQUIRED "%s", bad[i]);
                assert_int_equal(load(text, &c), -EINVAL);
                if (!find_logged(true, place(5), key[i], "0")) {
                        dump_log();
                        fail_msg("no error naming %s and %s", place(5), key[i]);
                }
        }
        assert_int_equal(
                load("[slots]\nroot = opt/translator\ncompatible = translator-worker\n", &c),
                -EINVAL);
        assert_non_null(find_logged(true, place(2), "root", "opt/translator"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_config_every_key_parsed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_spec_defaults_when_absent, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_config_empty_value_means_unset, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_config_durations, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_bad_duration_names_place_key_and_value,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_sizes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_booleans, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_bad_enum_and_count_refused, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_config_manifest_url_expanded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_unknown_key_warns_and_loads, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_config_bad_value_is_einval_with_place, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_config_missing_required_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_missing_file_is_enoent, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_config_env_honoured_when_path_null, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_config_public_listener_needs_auth, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_config_long_value_read_whole, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_long_lines_parsed_like_short_ones,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_zero_where_positive_needed_names_line,
                                                setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
