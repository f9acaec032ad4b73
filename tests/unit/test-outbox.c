/* test-outbox.c: the durable event outbox of SPEC section 8 in a temporary
 * state folder: one CloudEvents file per event, in emission order, bounded
 * by spool_max with a dropped-events notice. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
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

#include "fileio.h"
#include "testutil.h"

#include "cleanup.h"
#include "config.h"
#include "outbox.h"
#include "reason.h"

static char tmpdir[64];
static char outbox_dir[PATH_MAX];
static char worker[] = "gpu-07";

static Config cfg;

static int setup(void **state) {
        (void) state;
        (void) snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-outbox-XXXXXX");
        if (!mkdtemp(tmpdir))
                return -1;
        if (snprintf(outbox_dir, sizeof(outbox_dir), "%s/outbox", tmpdir) >=
            (int) sizeof(outbox_dir))
                return -1;
        cfg = (Config){
                .worker_id = worker,
                .state_dir = tmpdir,
                .spool_max = 10000,
                .events_url = NULL,
        };
        return 0;
}

static int teardown(void **state) {
        (void) state;
        return rm_rf(tmpdir);
}

typedef struct Listing {
        struct dirent **names;
        int n;
} Listing;

static int no_dots(const struct dirent *de) {
        return strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
}

static void listing_done(Listing *l) {
        for (int i = 0; i < l->n; i++)
                free(l->names[i]);
        free(l->names);
}

/* Every entry of the outbox folder, sorted by name. */
static Listing list_outbox(void) {
        Listing l = {0};
        l.n = scandir(outbox_dir, &l.names, no_dots, alphasort);
        assert_true(l.n >= 0);
        return l;
}

static json_t *load_event(const char *name) {
        char path[PATH_MAX + 300];
        json_error_t err;
        (void) snprintf(path, sizeof(path), "%s/%s", outbox_dir, name);
        json_t *ev = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
        if (!ev)
                fail_msg("%s is not JSON: %s", name, err.text);
        return ev;
}

static const char *str(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        if (!json_is_string(v))
                fail_msg("\"%s\" is missing or not a string", key);
        return json_string_value(v);
}

static bool is_uuid4(const char *s) {
        if (strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!strchr("0123456789abcdef", s[i]))
                        return false;
        }
        return s[14] == '4' && strchr("89ab", s[19]);
}

/* Checks the CloudEvents envelope and returns data. */
static json_t *check_envelope(json_t *ev, const char *type) {
        assert_string_equal(str(ev, "specversion"), "1.0");
        const char *id = str(ev, "id");
        if (!is_uuid4(id))
                fail_msg("id %s is not a UUID v4", id);
        assert_string_equal(str(ev, "source"), "/workers/gpu-07");
        assert_string_equal(str(ev, "type"), type);
        const char *t = str(ev, "time");
        assert_true(strlen(t) >= 20);
        assert_int_equal(t[strlen(t) - 1], 'Z');
        assert_int_equal(t[10], 'T');
        json_t *data = json_object_get(ev, "data");
        assert_true(json_is_object(data));
        assert_string_equal(str(data, "worker_id"), "gpu-07");
        return data;
}

static void emit_version(EventType type, int i) {
        char v[32];
        EventData d = EVENT_DATA_INIT;
        (void) snprintf(v, sizeof(v), "1.0.%d", i);
        d.to_version = v;
        assert_int_equal(outbox_emit(&cfg, type, &d), 0);
}

static void test_outbox_emit_cloudevent(void **state) {
        (void) state;
        EventData d = EVENT_DATA_INIT;
        d.from_version = "1.2.0";
        d.to_version = "1.3.0";
        d.from_slot = 0;
        d.to_slot = 1;
        d.duration_ms = 0;
        assert_int_equal(outbox_emit(&cfg, EVENT_UPDATE_SWITCHED, &d), 0);

        _cleanup_(listing_done) Listing l = list_outbox();
        assert_int_equal(l.n, 1);
        _cleanup_(json_decrefp) json_t *ev = load_event(l.names[0]->d_name);
        json_t *data = check_envelope(ev, "worker_update_switched");
        /* The given fields, and nothing left unset. */
        assert_int_equal(json_object_size(data), 6);
        assert_string_equal(str(data, "from_version"), "1.2.0");
        assert_string_equal(str(data, "to_version"), "1.3.0");
        assert_string_equal(str(data, "from_slot"), "a");
        assert_string_equal(str(data, "to_slot"), "b");
        assert_true(json_is_integer(json_object_get(data, "duration_ms")));
        assert_int_equal(json_integer_value(json_object_get(data, "duration_ms")), 0);
}

static void test_outbox_emit_leaves_out_unset_fields(void **state) {
        (void) state;
        EventData d = EVENT_DATA_INIT;
        assert_int_equal(outbox_emit(&cfg, EVENT_AGENT_STARTED, &d), 0);
        d.error = "sha256 mismatch";
        d.phase = "downloading";
        d.duration_ms = 5;
        assert_int_equal(outbox_emit(&cfg, EVENT_UPDATE_FAILED, &d), 0);

        _cleanup_(listing_done) Listing l = list_outbox();
        assert_int_equal(l.n, 2);
        _cleanup_(json_decrefp) json_t *first = load_event(l.names[0]->d_name);
        json_t *data = check_envelope(first, "worker_agent_started");
        /* NULL strings, negative slots, durations and counts: only the id. */
        assert_int_equal(json_object_size(data), 1);

        _cleanup_(json_decrefp) json_t *second = load_event(l.names[1]->d_name);
        data = check_envelope(second, "worker_update_failed");
        assert_int_equal(json_object_size(data), 4);
        assert_string_equal(str(data, "error"), "sha256 mismatch");
        assert_string_equal(str(data, "phase"), "downloading");
        assert_int_equal(json_integer_value(json_object_get(data, "duration_ms")), 5);
        assert_null(json_object_get(data, "from_slot"));
        assert_null(json_object_get(data, "dropped"));
}

static void test_outbox_emit_order_and_ids(void **state) {
        (void) state;
        /* More than ten, so a name sorting by text rather than number shows. */
        const int n = 23;
        for (int i = 0; i < n; i++)
                emit_version(i % 2 ? EVENT_UPDATE_STARTED : EVENT_UPDATE_AVAILABLE, i);
        assert_int_equal(outbox_pending(&cfg), n);

        _cleanup_(listing_done) Listing l = list_outbox();
        assert_int_equal(l.n, n);
        _cleanup_(json_decrefp) json_t *ids = json_object();
        for (int i = 0; i < n; i++) {
                char want[32];
                _cleanup_(json_decrefp) json_t *ev = load_event(l.names[i]->d_name);
                json_t *data = check_envelope(ev, i % 2 ? "worker_update_started"
                                                        : "worker_update_available");
                (void) snprintf(want, sizeof(want), "1.0.%d", i);
                if (strcmp(str(data, "to_version"), want) != 0)
                        fail_msg("file %d (%s) holds %s, emitted as %s", i, l.names[i]->d_name,
                                 str(data, "to_version"), want);
                const char *id = str(ev, "id");
                if (json_object_get(ids, id))
                        fail_msg("id %s given twice", id);
                assert_int_equal(json_object_set_new(ids, id, json_true()), 0);
        }
}

static void test_outbox_pending_counts(void **state) {
        (void) state;
        assert_int_equal(outbox_pending(&cfg), 0);
        emit_version(EVENT_UPDATE_AVAILABLE, 1);
        assert_int_equal(outbox_pending(&cfg), 1);
        emit_version(EVENT_UPDATE_STARTED, 2);
        emit_version(EVENT_UPDATE_DOWNLOADED, 3);
        assert_int_equal(outbox_pending(&cfg), 3);
}

/* Checks the outbox holds the events to_version 1.0.first.. in order, then
 * one dropped-events notice counting dropped. */
static void assert_spool(int first, int events, int64_t dropped) {
        _cleanup_(listing_done) Listing l = list_outbox();
        assert_int_equal(l.n, events + 1);
        assert_int_equal(outbox_pending(&cfg), events + 1);
        for (int i = 0; i < events; i++) {
                char want[32];
                _cleanup_(json_decrefp) json_t *ev = load_event(l.names[i]->d_name);
                json_t *data = check_envelope(ev, "worker_update_available");
                (void) snprintf(want, sizeof(want), "1.0.%d", first + i);
                if (strcmp(str(data, "to_version"), want) != 0)
                        fail_msg("event %d holds %s, expected %s", i, str(data, "to_version"),
                                 want);
        }
        /* The notice is the newest entry. */
        _cleanup_(json_decrefp) json_t *notice = load_event(l.names[events]->d_name);
        json_t *data = check_envelope(notice, "worker_events_dropped");
        json_t *n = json_object_get(data, "dropped");
        assert_true(json_is_integer(n));
        assert_int_equal(json_integer_value(n), dropped);
}

static void test_outbox_spool_max_drops_oldest(void **state) {
        (void) state;
        cfg.spool_max = 5;
        for (int i = 1; i <= 5; i++)
                emit_version(EVENT_UPDATE_AVAILABLE, i);
        /* At the limit nothing is dropped yet. */
        assert_int_equal(outbox_pending(&cfg), 5);

        for (int i = 6; i <= 12; i++)
                emit_version(EVENT_UPDATE_AVAILABLE, i);
        /* 8 dropped: the 4 newest events and the notice remain. */
        assert_spool(9, 4, 8);

        emit_version(EVENT_UPDATE_AVAILABLE, 13);
        assert_spool(10, 4, 9);
}

static void test_outbox_deliver_without_url(void **state) {
        (void) state;
        Reason reason = REASON_NULL;
        emit_version(EVENT_UPDATE_AVAILABLE, 1);
        emit_version(EVENT_UPDATE_STARTED, 2);

        assert_int_equal(outbox_deliver(&cfg, 100, &reason), 0);
        assert_int_equal(outbox_pending(&cfg), 2);
        _cleanup_(listing_done) Listing l = list_outbox();
        assert_int_equal(l.n, 2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_outbox_emit_cloudevent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_outbox_emit_leaves_out_unset_fields, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_outbox_emit_order_and_ids, setup, teardown),
                cmocka_unit_test_setup_teardown(test_outbox_pending_counts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_outbox_spool_max_drops_oldest, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_outbox_deliver_without_url, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
