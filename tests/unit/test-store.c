/* test-store.c: the slot store of SPEC section 3 in a temporary folder: the
 * two slots, the `current` symlink, the persisted state, the lock and crash
 * recovery. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fileio.h"
#include "testutil.h"

#include "cleanup.h"
#include "store.h"


static char tmpdir[64];
static char root[PATH_MAX];
static char state_dir[PATH_MAX];

/* A path under the store root. */
static const char *in_root(const char *name) {
        static char bufs[8][PATH_MAX];
        static unsigned next;
        return join(bufs[next++ % ELEMENTSOF(bufs)], PATH_MAX, root, name);
}

static const char *in_state(const char *name) {
        static char bufs[4][PATH_MAX];
        static unsigned next;
        return join(bufs[next++ % ELEMENTSOF(bufs)], PATH_MAX, state_dir, name);
}

/* Names in a folder other than "." and "..", sorted, joined by spaces. */
static char *listing(const char *path) {
        struct dirent **names;
        int n = scandir(path, &names, NULL, alphasort);
        assert_true(n >= 0);
        size_t cap = 1;
        for (int i = 0; i < n; i++)
                cap += strlen(names[i]->d_name) + 1;
        char *out = calloc(1, cap);
        assert_non_null(out);
        for (int i = 0; i < n; i++) {
                if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0) {
                        if (*out)
                                strcat(out, " ");
                        strcat(out, names[i]->d_name);
                }
                free(names[i]);
        }
        free(names);
        return out;
}

static void assert_listing(const char *path, const char *want) {
        _cleanup_free_ char *got = listing(path);
        if (strcmp(got, want) != 0)
                fail_msg("%s holds \"%s\", expected \"%s\"", path, got, want);
}

static int setup(void **state) {
        (void) state;
        (void) snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-store-XXXXXX");
        if (!mkdtemp(tmpdir))
                return -1;
        /* Neither folder exists yet: store_open makes them. */
        if (snprintf(root, sizeof(root), "%s/opt/translator", tmpdir) >= (int) sizeof(root) ||
            snprintf(state_dir, sizeof(state_dir), "%s/var/lib/slotd", tmpdir) >=
                    (int) sizeof(state_dir))
                return -1;
        return 0;
}

static int teardown(void **state) {
        (void) state;
        return rm_rf(tmpdir);
}

static Store *open_store(void) {
        Store *s = NULL;
        assert_int_equal(store_open(root, state_dir, &s), 0);
        assert_non_null(s);
        return s;
}

/* Makes root and a slot tree by hand, as an image builder would. */
static void make_root(void) {
        char p[PATH_MAX];
        assert_int_equal(mkdir(join(p, sizeof(p), tmpdir, "opt"), 0755), 0);
        assert_int_equal(mkdir(root, 0755), 0);
        assert_int_equal(mkdir(in_root("slots"), 0755), 0);
        assert_int_equal(mkdir(in_root("slots/a"), 0755), 0);
        assert_int_equal(mkdir(in_root("slots/b"), 0755), 0);
}

static void test_store_open_creates_slots(void **state) {
        (void) state;
        assert_false(exists(root));
        _cleanup_(store_freep) Store *s = open_store();
        assert_true(is_dir(in_root("slots/a")));
        assert_true(is_dir(in_root("slots/b")));
        assert_true(is_dir(state_dir));
        /* Both slots start empty, nothing is active, nothing runs. */
        assert_int_equal(s->st.slots[0].state, SLOT_EMPTY);
        assert_int_equal(s->st.slots[1].state, SLOT_EMPTY);
        assert_int_equal(s->st.phase, PHASE_IDLE);
        /* Opening again keeps what is there. */
        put(in_root("slots/a/bin"), "x");
        _cleanup_(store_freep) Store *again = open_store();
        assert_true(exists(in_root("slots/a/bin")));
}

static void test_store_active_without_current(void **state) {
        (void) state;
        _cleanup_(store_freep) Store *s = open_store();
        assert_int_equal(store_active(s), -ENOENT);

        /* A `current` pointing anywhere but a slot is not taken for one. */
        assert_int_equal(symlink("/etc", in_root("current")), 0);
        assert_int_equal(store_active(s), -EBADMSG);
        assert_int_equal(unlink(in_root("current")), 0);
        assert_int_equal(symlink("slots/c", in_root("current")), 0);
        assert_int_equal(store_active(s), -EBADMSG);
}

static void test_store_set_current_relative_symlink(void **state) {
        char target[PATH_MAX];
        struct stat st;
        ssize_t n;

        (void) state;
        _cleanup_(store_freep) Store *s = open_store();
        put(in_root("slots/b/marker"), "b");

        assert_int_equal(store_set_current(s, 1), 0);
        n = readlink(in_root("current"), target, sizeof(target) - 1);
        assert_true(n > 0);
        target[n] = '\0';
        /* Relative, so the root can be moved or bind-mounted elsewhere. */
        assert_string_equal(target, "slots/b");
        assert_int_equal(store_active(s), 1);
        /* It resolves: the service finds its files through it. */
        assert_int_equal(stat(in_root("current/marker"), &st), 0);
        /* Nothing but the two slots folder and the link. */
        assert_listing(root, "current slots");

        /* Switching back replaces the link in place. */
        assert_int_equal(store_set_current(s, 0), 0);
        n = readlink(in_root("current"), target, sizeof(target) - 1);
        assert_true(n > 0);
        target[n] = '\0';
        assert_string_equal(target, "slots/a");
        assert_int_equal(store_active(s), 0);
        assert_listing(root, "current slots");

        assert_int_equal(store_set_current(s, 2), -EINVAL);
        assert_int_equal(store_set_current(s, -1), -EINVAL);
        assert_int_equal(store_active(s), 0);
}

static void test_store_set_current_over_stale_temp(void **state) {
        char target[64];

        (void) state;
        _cleanup_(store_freep) Store *s = open_store();
        /* A temp link left by a switch that died half-way. */
        assert_int_equal(symlink("slots/a", in_root(".current.tmp")), 0);
        assert_int_equal(store_set_current(s, 1), 0);
        ssize_t n = readlink(in_root("current"), target, sizeof(target) - 1);
        assert_true(n > 0);
        target[n] = '\0';
        assert_string_equal(target, "slots/b");
        assert_false(exists(in_root(".current.tmp")));
}

static void fill_state(StoreState *st) {
        memset(st, 0, sizeof(*st));
        st->phase = PHASE_VERIFYING;
        st->slots[0] = (SlotRecord){.state = SLOT_GOOD};
        (void) snprintf(st->slots[0].version, sizeof(st->slots[0].version), "1.0.0");
        (void) snprintf(st->slots[0].installed_at, sizeof(st->slots[0].installed_at),
                        "2026-11-28T10:00:00Z");
        st->slots[1] = (SlotRecord){.state = SLOT_TRIAL};
        (void) snprintf(st->slots[1].version, sizeof(st->slots[1].version), "1.1.0-rc.1+build.7");
        (void) snprintf(st->slots[1].installed_at, sizeof(st->slots[1].installed_at),
                        "2026-11-29T12:00:00Z");
        st->trial_slot = 1;
        st->previous_slot = 0;
        st->trial_deadline = UINT64_C(1795000000123456);
        st->last.set = true;
        st->last.result = RESULT_ROLLED_BACK;
        st->last.serial = 42;
        (void) snprintf(st->last.from_version, sizeof(st->last.from_version), "0.9.0");
        (void) snprintf(st->last.to_version, sizeof(st->last.to_version), "1.0.0");
        (void) snprintf(st->last.time, sizeof(st->last.time), "2026-11-27T08:30:00Z");
        (void) snprintf(st->last.error, sizeof(st->last.error),
                        "health check failed: \"version\" is 0.9.0, not 1.0.0\n(after 120 s)");
}

static void assert_state_equal(const StoreState *a, const StoreState *b) {
        assert_int_equal(a->phase, b->phase);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(a->slots[i].state, b->slots[i].state);
                assert_string_equal(a->slots[i].version, b->slots[i].version);
                assert_string_equal(a->slots[i].installed_at, b->slots[i].installed_at);
        }
        assert_int_equal(a->trial_slot, b->trial_slot);
        assert_int_equal(a->previous_slot, b->previous_slot);
        assert_int_equal(a->trial_deadline, b->trial_deadline);
        assert_int_equal(a->last.set, b->last.set);
        if (a->last.set) {
                assert_int_equal(a->last.result, b->last.result);
                assert_int_equal(a->last.serial, b->last.serial);
                assert_string_equal(a->last.from_version, b->last.from_version);
                assert_string_equal(a->last.to_version, b->last.to_version);
                assert_string_equal(a->last.time, b->last.time);
                assert_string_equal(a->last.error, b->last.error);
        }
}

static void test_store_state_round_trip(void **state) {
        StoreState want;

        (void) state;
        fill_state(&want);
        {
                _cleanup_(store_freep) Store *s = open_store();
                s->st = want;
                assert_int_equal(store_save(s), 0);
        }
        /* A fresh process reads back every field. */
        _cleanup_(store_freep) Store *s = open_store();
        assert_state_equal(&s->st, &want);

        /* store_load replaces what is in memory with what is on disk. */
        memset(&s->st, 0x5a, sizeof(s->st));
        assert_int_equal(store_load(s), 0);
        assert_state_equal(&s->st, &want);

        /* And the empty things come back empty. */
        StoreState blank;
        memset(&blank, 0, sizeof(blank));
        blank.phase = PHASE_IDLE;
        blank.trial_slot = -1;
        blank.previous_slot = -1;
        s->st = blank;
        assert_int_equal(store_save(s), 0);
        _cleanup_(store_freep) Store *t = open_store();
        assert_state_equal(&t->st, &blank);
        assert_false(t->st.last.set);
}

static void test_store_every_phase_state_and_result_persisted(void **state) {
        (void) state;
        _cleanup_(store_freep) Store *s = open_store();
        for (int p = 0; p < _PHASE_MAX; p++)
                for (int st = 0; st < _SLOT_STATE_MAX; st++) {
                        int result = (p + st) % _RESULT_MAX;
                        s->st.phase = p;
                        s->st.slots[st % 2].state = st;
                        s->st.last.set = true;
                        s->st.last.result = result;
                        assert_int_equal(store_save(s), 0);
                        _cleanup_(store_freep) Store *t = open_store();
                        assert_int_equal(t->st.phase, p);
                        assert_int_equal(t->st.slots[st % 2].state, st);
                        assert_true(t->st.last.set);
                        assert_int_equal(t->st.last.result, result);
                }
        /* The names are the ones of the contract. */
        assert_string_equal(phase_to_string(PHASE_ROLLING_BACK), "rolling-back");
        assert_string_equal(result_to_string(RESULT_ROLLED_BACK), "rolled_back");
        assert_int_equal(phase_from_string("rolling-back"), PHASE_ROLLING_BACK);
        assert_int_equal(slot_state_from_string("trial"), SLOT_TRIAL);
        assert_int_equal(slot_state_from_string("bogus"), -EINVAL);
}

static void test_store_state_file_is_json(void **state) {
        StoreState want;
        json_error_t err;

        (void) state;
        fill_state(&want);
        _cleanup_(store_freep) Store *s = open_store();
        s->st = want;
        assert_int_equal(store_save(s), 0);

        /* Every file store_save leaves in state_dir parses as JSON, the
         * state among them, and no temp file is left. */
        DIR *d = opendir(state_dir);
        struct dirent *de;
        _cleanup_free_ char *text = NULL;
        assert_non_null(d);
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (strstr(de->d_name, "tmp"))
                        fail_msg("temp file %s left in state_dir", de->d_name);
                char *t = slurp(in_state(de->d_name));
                json_t *doc = json_loads(t, JSON_REJECT_DUPLICATES, &err);
                if (!doc)
                        fail_msg("%s is not JSON: %s (line %d)\n%s", de->d_name, err.text, err.line,
                                 t);
                assert_true(json_is_object(doc));
                json_decref(doc);
                if (strstr(t, "1.1.0-rc.1+build.7") && !text)
                        text = t;
                else
                        free(t);
        }
        (void) closedir(d);
        assert_non_null(text);
        /* The words an operator reads in it are the contract's words. */
        assert_non_null(strstr(text, "\"verifying\""));
        assert_non_null(strstr(text, "\"trial\""));
        assert_non_null(strstr(text, "\"rolled_back\""));
}

static void test_store_lock_excludes_second_store(void **state) {
        (void) state;
        Store *first = open_store();
        _cleanup_(store_freep) Store *second = open_store();

        assert_int_equal(store_lock(first, false), 0);
        assert_int_equal(store_lock(second, false), -EWOULDBLOCK);
        /* Still refused on a second try. */
        assert_int_equal(store_lock(second, false), -EWOULDBLOCK);
        /* Freed, the lock goes with it. */
        first = store_free(first);
        assert_null(first);
        assert_int_equal(store_lock(second, false), 0);
        _cleanup_(store_freep) Store *third = open_store();
        assert_int_equal(store_lock(third, false), -EWOULDBLOCK);
}

static void test_store_lock_rereads_state(void **state) {
        (void) state;
        _cleanup_(store_freep) Store *reader = open_store();
        {
                _cleanup_(store_freep) Store *writer = open_store();
                assert_int_equal(store_lock(writer, false), 0);
                writer->st.phase = PHASE_DEGRADED;
                writer->st.slots[1].state = SLOT_BAD;
                assert_int_equal(store_save(writer), 0);
        }
        /* What another process saved while we waited is what we work on. */
        assert_int_equal(reader->st.phase, PHASE_IDLE);
        assert_int_equal(store_lock(reader, false), 0);
        assert_int_equal(reader->st.phase, PHASE_DEGRADED);
        assert_int_equal(reader->st.slots[1].state, SLOT_BAD);
}

/* Finds the folder (other than a and b) in slots/ that holds name. */
static bool aside_holds(const char *name) {
        DIR *d = opendir(in_root("slots"));
        struct dirent *de;
        bool found = false;
        assert_non_null(d);
        while ((de = readdir(d)) && !found) {
                char p[PATH_MAX];
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                    strcmp(de->d_name, "a") == 0 || strcmp(de->d_name, "b") == 0)
                        continue;
                int n = snprintf(p, sizeof(p), "%s/slots/%s/%s", root, de->d_name, name);
                assert_true(n > 0 && (size_t) n < sizeof(p));
                found = exists(p);
        }
        (void) closedir(d);
        return found;
}

static void test_store_prepare_refuses_active_slot(void **state) {
        (void) state;
        _cleanup_(store_freep) Store *s = open_store();
        put(in_root("slots/a/app"), "running");
        assert_int_equal(store_set_current(s, 0), 0);

        assert_int_equal(store_prepare_slot(s, 0), -EBUSY);
        assert_int_equal(store_empty_slot(s, 0), -EBUSY);
        _cleanup_free_ char *kept = slurp(in_root("slots/a/app"));
        assert_string_equal(kept, "running");
        assert_listing(in_root("slots"), "a b");
        assert_int_equal(store_prepare_slot(s, 2), -EINVAL);
}

static void test_store_prepare_moves_old_tree_aside(void **state) {
        (void) state;
        _cleanup_(store_freep) Store *s = open_store();
        put(in_root("slots/a/app"), "running");
        assert_int_equal(store_set_current(s, 0), 0);
        assert_int_equal(mkdir(in_root("slots/b/lib"), 0755), 0);
        put(in_root("slots/b/lib/old.so"), "old");

        assert_int_equal(store_prepare_slot(s, 1), 0);
        /* b is there and empty, ready for unpacking... */
        assert_true(is_dir(in_root("slots/b")));
        assert_listing(in_root("slots/b"), "");
        /* ...the old tree is kept aside, not yet deleted... */
        assert_true(aside_holds("lib/old.so"));
        /* ...and the active slot is as it was. */
        assert_listing(in_root("slots/a"), "app");
        assert_int_equal(store_active(s), 0);

        /* An empty slot is simply used. */
        assert_int_equal(store_prepare_slot(s, 1), 0);
        assert_listing(in_root("slots/b"), "");
}

static void test_store_restore_puts_old_tree_back(void **state) {
        (void) state;
        _cleanup_(store_freep) Store *s = open_store();
        assert_int_equal(store_set_current(s, 0), 0);
        put(in_root("slots/b/version"), "1.0.0");

        assert_int_equal(store_prepare_slot(s, 1), 0);
        /* An unpack that got part-way, then was refused. */
        put(in_root("slots/b/half"), "partial");
        assert_int_equal(store_restore_slot(s, 1), 0);

        assert_listing(in_root("slots/b"), "version");
        _cleanup_free_ char *v = slurp(in_root("slots/b/version"));
        assert_string_equal(v, "1.0.0");
        /* Nothing is left aside. */
        assert_listing(in_root("slots"), "a b");
        assert_false(store_has_trash(s));
}

static void test_store_release_and_reap_delete_old_tree(void **state) {
        (void) state;
        _cleanup_(store_freep) Store *s = open_store();
        assert_int_equal(store_set_current(s, 0), 0);
        assert_int_equal(mkdir(in_root("slots/b/ro"), 0755), 0);
        put(in_root("slots/b/ro/old"), "old");
        assert_int_equal(chmod(in_root("slots/b/ro"), 0555), 0);

        assert_int_equal(store_prepare_slot(s, 1), 0);
        put(in_root("slots/b/new"), "new");
        assert_false(store_has_trash(s));
        store_release_slot(s, 1);
        assert_true(store_has_trash(s));
        assert_true(aside_holds("ro/old"));

        assert_int_equal(store_reap(s), 0);
        assert_false(store_has_trash(s));
        assert_false(aside_holds("ro/old"));
        assert_listing(in_root("slots"), "a b");
        /* The new install stays. */
        assert_listing(in_root("slots/b"), "new");
        /* After release, a restore has nothing to put back. */
        assert_int_equal(store_restore_slot(s, 1), 0);
        assert_listing(in_root("slots/b"), "");
}

/* An install killed half-way: b installing with a partial tree, a temp
 * link from an unfinished switch, the phase still "installing". */
static void make_interrupted_install(void) {
        _cleanup_(store_freep) Store *s = open_store();
        put(in_root("slots/a/app"), "running");
        assert_int_equal(store_set_current(s, 0), 0);
        s->st.slots[0] = (SlotRecord){.state = SLOT_GOOD};
        (void) snprintf(s->st.slots[0].version, sizeof(s->st.slots[0].version), "1.0.0");
        s->st.slots[1] = (SlotRecord){.state = SLOT_INSTALLING};
        (void) snprintf(s->st.slots[1].version, sizeof(s->st.slots[1].version), "1.1.0");
        s->st.phase = PHASE_INSTALLING;
        assert_int_equal(store_save(s), 0);
        assert_int_equal(mkdir(in_root("slots/b/lib"), 0755), 0);
        put(in_root("slots/b/lib/half.so"), "partial");
        assert_int_equal(symlink("slots/b", in_root(".current.tmp")), 0);
}

static void test_store_recover_interrupted_install(void **state) {
        bool changed = false;

        (void) state;
        make_interrupted_install();
        {
                _cleanup_(store_freep) Store *s = open_store();
                assert_int_equal(store_lock(s, false), 0);
                assert_int_equal(store_recover(s, &changed), 0);
                assert_true(changed);

                /* The half-unpacked slot is emptied and marked empty. */
                assert_true(is_dir(in_root("slots/b")));
                assert_listing(in_root("slots/b"), "");
                assert_int_equal(s->st.slots[1].state, SLOT_EMPTY);
                assert_string_equal(s->st.slots[1].version, "");
                /* The stale temp link is gone, `current` untouched. */
                assert_false(exists(in_root(".current.tmp")));
                assert_int_equal(store_active(s), 0);
                /* No operation runs any more. */
                assert_int_equal(s->st.phase, PHASE_IDLE);
                /* The active slot and its record are as they were. */
                assert_listing(in_root("slots/a"), "app");
                assert_int_equal(s->st.slots[0].state, SLOT_GOOD);
                assert_string_equal(s->st.slots[0].version, "1.0.0");
        }
        /* The repair was persisted... */
        _cleanup_(store_freep) Store *s = open_store();
        assert_int_equal(s->st.slots[1].state, SLOT_EMPTY);
        assert_int_equal(s->st.phase, PHASE_IDLE);
        /* ...and a second recovery finds nothing to do. */
        assert_int_equal(store_lock(s, false), 0);
        changed = true;
        assert_int_equal(store_recover(s, &changed), 0);
        assert_false(changed);
}

static void test_store_recover_leaves_active_slot_alone(void **state) {
        bool changed = false;

        (void) state;
        {
                _cleanup_(store_freep) Store *s = open_store();
                put(in_root("slots/b/app"), "running");
                assert_int_equal(store_set_current(s, 1), 0);
                /* A record that claims the active slot is half-installed. */
                s->st.slots[1] = (SlotRecord){.state = SLOT_INSTALLING};
                (void) snprintf(s->st.slots[1].version, sizeof(s->st.slots[1].version), "2.0.0");
                s->st.phase = PHASE_INSTALLING;
                assert_int_equal(store_save(s), 0);
        }
        _cleanup_(store_freep) Store *s = open_store();
        assert_int_equal(store_lock(s, false), 0);
        assert_int_equal(store_recover(s, &changed), 0);
        /* The running tree is never deleted. */
        _cleanup_free_ char *kept = slurp(in_root("slots/b/app"));
        assert_string_equal(kept, "running");
        assert_int_equal(store_active(s), 1);
        assert_int_equal(s->st.phase, PHASE_IDLE);
}

static void test_store_recover_keeps_trial(void **state) {
        bool changed = true;

        (void) state;
        {
                _cleanup_(store_freep) Store *s = open_store();
                put(in_root("slots/a/app"), "1.0.0");
                put(in_root("slots/b/app"), "1.1.0");
                assert_int_equal(store_set_current(s, 1), 0);
                s->st.slots[0].state = SLOT_GOOD;
                s->st.slots[1].state = SLOT_TRIAL;
                s->st.trial_slot = 1;
                s->st.previous_slot = 0;
                s->st.phase = PHASE_VERIFYING;
                assert_int_equal(store_save(s), 0);
        }
        /* A trial is left for the caller to verify again or revert. */
        _cleanup_(store_freep) Store *s = open_store();
        assert_int_equal(store_lock(s, false), 0);
        assert_int_equal(store_recover(s, &changed), 0);
        assert_false(changed);
        assert_int_equal(s->st.phase, PHASE_VERIFYING);
        assert_int_equal(s->st.slots[1].state, SLOT_TRIAL);
        assert_int_equal(s->st.trial_slot, 1);
        assert_listing(in_root("slots/a"), "app");
        assert_listing(in_root("slots/b"), "app");
}

static void test_store_adopts_existing_layout(void **state) {
        (void) state;
        make_root();
        put(in_root("slots/a/slot.ini"), "[package]\nname = translator-worker\nversion = 1.0.0\n");
        assert_int_equal(symlink("slots/a", in_root("current")), 0);

        _cleanup_(store_freep) Store *s = open_store();
        assert_int_equal(store_active(s), 0);
        assert_int_equal(s->st.slots[0].state, SLOT_GOOD);
        assert_string_equal(s->st.slots[0].version, "1.0.0");
        assert_int_equal(s->st.slots[1].state, SLOT_EMPTY);
        assert_string_equal(s->st.slots[1].version, "");
        assert_int_equal(s->st.phase, PHASE_IDLE);
        /* Adoption does not touch the tree. */
        assert_listing(in_root("slots/a"), "slot.ini");
}

static void test_store_adopts_inactive_slot_as_installed(void **state) {
        (void) state;
        make_root();
        put(in_root("slots/a/slot.ini"), "[package]\nname = translator-worker\nversion = 1.0.0\n");
        put(in_root("slots/b/slot.ini"), "[package]\nname=translator-worker\nversion=1.1.0-rc.2\n");
        assert_int_equal(symlink("slots/b", in_root("current")), 0);

        _cleanup_(store_freep) Store *s = open_store();
        assert_int_equal(s->st.slots[0].state, SLOT_INSTALLED);
        assert_string_equal(s->st.slots[0].version, "1.0.0");
        assert_int_equal(s->st.slots[1].state, SLOT_GOOD);
        assert_string_equal(s->st.slots[1].version, "1.1.0-rc.2");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_store_open_creates_slots, setup, teardown),
                cmocka_unit_test_setup_teardown(test_store_active_without_current, setup, teardown),
                cmocka_unit_test_setup_teardown(test_store_set_current_relative_symlink, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_store_set_current_over_stale_temp, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_store_state_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_store_every_phase_state_and_result_persisted,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_store_state_file_is_json, setup, teardown),
                cmocka_unit_test_setup_teardown(test_store_lock_excludes_second_store, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_store_lock_rereads_state, setup, teardown),
                cmocka_unit_test_setup_teardown(test_store_prepare_refuses_active_slot, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_store_prepare_moves_old_tree_aside, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_store_restore_puts_old_tree_back, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_store_release_and_reap_delete_old_tree, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_store_recover_interrupted_install, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_store_recover_leaves_active_slot_alone, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_store_recover_keeps_trial, setup, teardown),
                cmocka_unit_test_setup_teardown(test_store_adopts_existing_layout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_store_adopts_inactive_slot_as_installed, setup,
                                                teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
