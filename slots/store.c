/* store.c: the slot store (store.h). The active slot is read off the
 * `current` symlink, the one truth that systemd's service also follows;
 * everything else (slot states, phase, trial, last result) lives in
 * state_dir/state.json, rewritten atomically. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "package.h"

#define STATE_FILE "state.json"
#define LOCK_FILE "lock"
#define CURRENT "current"
#define CURRENT_TMP ".current.tmp"
#define TRASH_PREFIX ".trash-"
#define ASIDE_PREFIX ".aside-"
#define STATE_MAX (64 * 1024)

static const char *const slot_state_table[_SLOT_STATE_MAX] = {
        [SLOT_EMPTY] = "empty",         [SLOT_INSTALLING] = "installing",
        [SLOT_INSTALLED] = "installed", [SLOT_TRIAL] = "trial",
        [SLOT_GOOD] = "good",           [SLOT_BAD] = "bad",
};

static const char *const phase_table[_PHASE_MAX] = {
        [PHASE_IDLE] = "idle",
        [PHASE_DOWNLOADING] = "downloading",
        [PHASE_INSTALLING] = "installing",
        [PHASE_SWITCHING] = "switching",
        [PHASE_VERIFYING] = "verifying",
        [PHASE_ROLLING_BACK] = "rolling-back",
        [PHASE_DEGRADED] = "degraded",
};

static const char *const result_table[_RESULT_MAX] = {
        [RESULT_COMPLETED] = "completed",
        [RESULT_FAILED] = "failed",
        [RESULT_ROLLED_BACK] = "rolled_back",
        [RESULT_REJECTED] = "rejected",
};

static int table_lookup(const char *const *table, int n, const char *s) {
        if (!s)
                return -EINVAL;
        for (int i = 0; i < n; i++)
                if (table[i] && strcmp(table[i], s) == 0)
                        return i;
        return -EINVAL;
}

const char *slot_state_to_string(SlotState s) {
        return s >= 0 && s < _SLOT_STATE_MAX ? slot_state_table[s] : NULL;
}
SlotState slot_state_from_string(const char *s) {
        return table_lookup(slot_state_table, _SLOT_STATE_MAX, s);
}
const char *phase_to_string(Phase p) {
        return p >= 0 && p < _PHASE_MAX ? phase_table[p] : NULL;
}
Phase phase_from_string(const char *s) {
        return table_lookup(phase_table, _PHASE_MAX, s);
}
const char *result_to_string(Result r) {
        return r >= 0 && r < _RESULT_MAX ? result_table[r] : NULL;
}
Result result_from_string(const char *s) {
        return table_lookup(result_table, _RESULT_MAX, s);
}

const char *slot_name(int slot) {
        return slot == 0 ? "a" : slot == 1 ? "b" : NULL;
}

int slot_from_name(const char *name) {
        if (!name)
                return -EINVAL;
        if (strcmp(name, "a") == 0 || strcmp(name, "A") == 0)
                return 0;
        if (strcmp(name, "b") == 0 || strcmp(name, "B") == 0)
                return 1;
        return -EINVAL;
}

static void state_reset(StoreState *st) {
        memset(st, 0, sizeof(*st));
        st->phase = PHASE_IDLE;
        st->trial_slot = -1;
        st->previous_slot = -1;
        st->slots[0].state = st->slots[1].state = SLOT_EMPTY;
}

static void copy_string(char *dst, size_t size, const char *src) {
        (void) snprintf(dst, size, "%s", src ? src : "");
}

static json_t *json_string_or_null(const char *s) {
        return s && *s ? json_string(s) : json_null();
}

static json_t *json_slot_or_null(int slot) {
        return slot == 0 || slot == 1 ? json_string(slot_name(slot)) : json_null();
}

static int state_to_json(const StoreState *st, char **ret) {
        _cleanup_(json_decrefp) json_t *slots = json_object();
        if (!slots)
                return -ENOMEM;
        for (int i = 0; i < 2; i++) {
                json_t *o = json_pack("{s:s, s:o, s:o}", "state",
                                      slot_state_to_string(st->slots[i].state), "version",
                                      json_string_or_null(st->slots[i].version), "installed_at",
                                      json_string_or_null(st->slots[i].installed_at));
                if (!o || json_object_set_new(slots, slot_name(i), o) < 0)
                        return -ENOMEM;
        }
        json_t *last = json_null();
        if (st->last.set)
                last = json_pack("{s:s, s:o, s:o, s:o, s:o, s:I}", "result",
                                 result_to_string(st->last.result), "from_version",
                                 json_string_or_null(st->last.from_version), "to_version",
                                 json_string_or_null(st->last.to_version), "time",
                                 json_string_or_null(st->last.time), "error",
                                 json_string_or_null(st->last.error), "serial",
                                 (json_int_t) st->last.serial);
        _cleanup_(json_decrefp) json_t *doc =
                json_pack("{s:i, s:s, s:O, s:o, s:o, s:I, s:o}", "format", 1, "phase",
                          phase_to_string(st->phase), "slots", slots, "trial_slot",
                          json_slot_or_null(st->trial_slot), "previous_slot",
                          json_slot_or_null(st->previous_slot), "trial_deadline",
                          (json_int_t) st->trial_deadline, "last_result", last);
        if (!doc)
                return -ENOMEM;
        char *s = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static const char *json_str(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

static int state_from_json(const char *text, size_t len, StoreState *ret) {
        StoreState st;
        state_reset(&st);

        _cleanup_(json_decrefp) json_t *doc = json_loadb(text, len, 0, NULL);
        if (!json_is_object(doc))
                return -EBADMSG;

        st.phase = phase_from_string(json_str(doc, "phase"));
        if (st.phase < 0)
                return -EBADMSG;

        json_t *slots = json_object_get(doc, "slots");
        for (int i = 0; i < 2; i++) {
                json_t *o = json_object_get(slots, slot_name(i));
                if (!json_is_object(o))
                        return -EBADMSG;
                st.slots[i].state = slot_state_from_string(json_str(o, "state"));
                if (st.slots[i].state < 0)
                        return -EBADMSG;
                copy_string(st.slots[i].version, sizeof(st.slots[i].version),
                            json_str(o, "version"));
                copy_string(st.slots[i].installed_at, sizeof(st.slots[i].installed_at),
                            json_str(o, "installed_at"));
        }
        st.trial_slot = slot_from_name(json_str(doc, "trial_slot"));
        if (st.trial_slot < 0)
                st.trial_slot = -1;
        st.previous_slot = slot_from_name(json_str(doc, "previous_slot"));
        if (st.previous_slot < 0)
                st.previous_slot = -1;
        json_t *d = json_object_get(doc, "trial_deadline");
        st.trial_deadline = json_is_integer(d) ? (uint64_t) json_integer_value(d) : 0;

        json_t *last = json_object_get(doc, "last_result");
        if (json_is_object(last)) {
                st.last.result = result_from_string(json_str(last, "result"));
                if (st.last.result >= 0) {
                        st.last.set = true;
                        copy_string(st.last.from_version, sizeof(st.last.from_version),
                                    json_str(last, "from_version"));
                        copy_string(st.last.to_version, sizeof(st.last.to_version),
                                    json_str(last, "to_version"));
                        copy_string(st.last.time, sizeof(st.last.time), json_str(last, "time"));
                        copy_string(st.last.error, sizeof(st.last.error), json_str(last, "error"));
                        json_t *serial = json_object_get(last, "serial");
                        st.last.serial =
                                json_is_integer(serial) ? (uint64_t) json_integer_value(serial) : 0;
                }
        }
        *ret = st;
        return 0;
}

int store_save(Store *s) {
        _cleanup_free_ char *text = NULL;
        int r = state_to_json(&s->st, &text);
        if (r < 0)
                return r;
        return write_file_atomic_at(s->state_fd, STATE_FILE, text, strlen(text), 0644);
}

/* Reads the [package] version out of a slot's slot.ini, for adoption of a
 * store that has no state file yet (a layout made by hand or by another
 * tool). */
static void adopt_version(Store *s, int slot, char *buf, size_t size) {
        char path[PATH_MAX];
        _cleanup_free_ char *text = NULL;
        size_t len;
        PackageMeta meta;

        buf[0] = '\0';
        (void) snprintf(path, sizeof(path), "%s/slots/%s/slot.ini", s->root, slot_name(slot));
        if (read_file_bounded(path, 64 * 1024, &text, &len) < 0 ||
            package_meta_parse(text, len, NULL, &meta, NULL) < 0)
                return;
        copy_string(buf, size, meta.version);
}

static int state_adopt(Store *s) {
        state_reset(&s->st);
        int active = store_active(s);
        for (int i = 0; i < 2; i++) {
                adopt_version(s, i, s->st.slots[i].version, sizeof(s->st.slots[i].version));
                if (s->st.slots[i].version[0])
                        s->st.slots[i].state = i == active ? SLOT_GOOD : SLOT_INSTALLED;
        }
        return 0;
}

int store_load(Store *s) {
        char path[PATH_MAX];
        _cleanup_free_ char *text = NULL;
        size_t len;

        (void) snprintf(path, sizeof(path), "%s/" STATE_FILE, s->state_dir);
        int r = read_file_bounded(path, STATE_MAX, &text, &len);
        if (r == -ENOENT)
                return state_adopt(s);
        if (r < 0)
                return r;
        return state_from_json(text, len, &s->st);
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        free(s->root);
        free(s->state_dir);
        safe_close(s->root_fd);
        safe_close(s->slots_fd);
        safe_close(s->state_fd);
        safe_close(s->lock_fd);
        free(s);
        return NULL;
}

static int open_dir(const char *path, int *ret) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret = fd;
        return 0;
}

int store_open(const char *root, const char *state_dir, Store **ret) {
        char path[PATH_MAX];
        int r;

        _cleanup_(store_freep) Store *s = calloc(1, sizeof(Store));
        if (!s)
                return -ENOMEM;
        s->root_fd = s->slots_fd = s->state_fd = s->lock_fd = -1;
        s->root = strdup(root);
        s->state_dir = strdup(state_dir);
        if (!s->root || !s->state_dir)
                return -ENOMEM;

        for (int i = 0; i < 2; i++) {
                (void) snprintf(path, sizeof(path), "%s/slots/%s", root, slot_name(i));
                r = mkdir_p(path, 0755);
                if (r < 0)
                        return r;
        }
        r = mkdir_p(state_dir, 0700);
        if (r < 0)
                return r;

        r = open_dir(root, &s->root_fd);
        if (r < 0)
                return r;
        (void) snprintf(path, sizeof(path), "%s/slots", root);
        r = open_dir(path, &s->slots_fd);
        if (r < 0)
                return r;
        r = open_dir(state_dir, &s->state_fd);
        if (r < 0)
                return r;

        r = store_load(s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int store_lock(Store *s, bool wait) {
        if (s->lock_fd < 0) {
                s->lock_fd = openat(s->state_fd, LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                if (s->lock_fd < 0)
                        return -errno;
        }
        for (;;) {
                if (flock(s->lock_fd, LOCK_EX | (wait ? 0 : LOCK_NB)) == 0)
                        break;
                if (errno == EINTR)
                        continue;
                return errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
        }
        /* Another process may have changed the state while we waited. */
        return store_load(s);
}

void store_unlock(Store *s) {
        s->lock_fd = safe_close(s->lock_fd);
}

int store_active(Store *s) {
        char target[64];
        ssize_t n = readlinkat(s->root_fd, CURRENT, target, sizeof(target) - 1);
        if (n < 0)
                return errno == ENOENT ? -ENOENT : -errno;
        target[n] = '\0';
        if (strcmp(target, "slots/a") == 0)
                return 0;
        if (strcmp(target, "slots/b") == 0)
                return 1;
        return -EBADMSG;
}

int store_set_current(Store *s, int slot) {
        char target[16];

        if (slot != 0 && slot != 1)
                return -EINVAL;
        (void) snprintf(target, sizeof(target), "slots/%s", slot_name(slot));
        (void) unlinkat(s->root_fd, CURRENT_TMP, 0);
        if (symlinkat(target, s->root_fd, CURRENT_TMP) < 0)
                return -errno;
        if (renameat(s->root_fd, CURRENT_TMP, s->root_fd, CURRENT) < 0) {
                int r = -errno;
                (void) unlinkat(s->root_fd, CURRENT_TMP, 0);
                return r;
        }
        if (fsync(s->root_fd) < 0)
                return -errno;
        return 0;
}

int store_slot_path(Store *s, int slot, char **ret) {
        if (slot != 0 && slot != 1)
                return -EINVAL;
        if (asprintf(ret, "%s/slots/%s", s->root, slot_name(slot)) < 0)
                return -ENOMEM;
        return 0;
}

static bool dir_is_empty_at(int dirfd, const char *name) {
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return false;
        DIR *d = fdopendir(fd);
        if (!d) {
                (void) close(fd);
                return false;
        }
        bool empty = true;
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                        empty = false;
                        break;
                }
        (void) closedir(d);
        return empty;
}

/* Renames name (in slots/) to a unique trash name; missing is fine. Only
 * trash is ever deleted in the background, so a tree moved aside for a
 * running install cannot vanish under it. */
static int trash_at(Store *s, const char *name) {
        char trash[64];
        for (unsigned i = 0;; i++) {
                (void) snprintf(trash, sizeof(trash), TRASH_PREFIX "%d-%u", (int) getpid(), i);
                if (renameat(s->slots_fd, name, s->slots_fd, trash) == 0)
                        return 0;
                if (errno == ENOENT)
                        return 0;
                if (errno != EEXIST && errno != ENOTEMPTY)
                        return -errno;
        }
}

int store_prepare_slot(Store *s, int slot) {
        const char *name = slot_name(slot);
        if (!name)
                return -EINVAL;
        if (store_active(s) == slot)
                return -EBUSY;

        if (dir_is_empty_at(s->slots_fd, name))
                return 0;

        char aside[64];
        (void) snprintf(aside, sizeof(aside), ASIDE_PREFIX "%s", name);
        int r = trash_at(s, aside);
        if (r < 0)
                return r;
        if (renameat(s->slots_fd, name, s->slots_fd, aside) < 0)
                return -errno;
        (void) snprintf(s->aside[slot], sizeof(s->aside[slot]), "%s", aside);
        if (mkdirat(s->slots_fd, name, 0755) < 0 && errno != EEXIST)
                return -errno;
        if (fsync(s->slots_fd) < 0)
                return -errno;
        return 0;
}

int store_restore_slot(Store *s, int slot) {
        const char *name = slot_name(slot);
        if (!name)
                return -EINVAL;
        if (!s->aside[slot][0])
                return store_empty_slot(s, slot);

        char path[PATH_MAX];
        (void) snprintf(path, sizeof(path), "%s/slots/%s", s->root, name);
        int r = rm_rf(path);
        if (r < 0)
                return r;
        if (renameat(s->slots_fd, s->aside[slot], s->slots_fd, name) < 0)
                return -errno;
        s->aside[slot][0] = '\0';
        if (fsync(s->slots_fd) < 0)
                return -errno;
        return 0;
}

void store_release_slot(Store *s, int slot) {
        if (slot != 0 && slot != 1)
                return;
        if (s->aside[slot][0])
                (void) trash_at(s, s->aside[slot]);
        s->aside[slot][0] = '\0';
}

int store_empty_slot(Store *s, int slot) {
        const char *name = slot_name(slot);
        if (!name)
                return -EINVAL;
        if (store_active(s) == slot)
                return -EBUSY;
        _cleanup_close_ int fd =
                openat(s->slots_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno != ENOENT)
                        return -errno;
                if (mkdirat(s->slots_fd, name, 0755) < 0)
                        return -errno;
                return 0;
        }
        return rm_rf_children(fd);
}

static int for_each_trash(Store *s, bool remove, bool *ret_found) {
        int dfd = openat(s->slots_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        DIR *d = fdopendir(dfd);
        if (!d) {
                int r = -errno;
                (void) close(dfd);
                return r;
        }
        int ret = 0;
        bool found = false;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (strncmp(de->d_name, TRASH_PREFIX, strlen(TRASH_PREFIX)) != 0)
                        continue;
                found = true;
                if (!remove)
                        break;
                char path[PATH_MAX];
                (void) snprintf(path, sizeof(path), "%s/slots/%s", s->root, de->d_name);
                int r = rm_rf(path);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        (void) closedir(d);
        if (ret_found)
                *ret_found = found;
        return ret;
}

int store_reap(Store *s) {
        return for_each_trash(s, true, NULL);
}

bool store_has_trash(Store *s) {
        bool found = false;
        (void) for_each_trash(s, false, &found);
        return found;
}

int store_recover(Store *s, bool *ret_changed) {
        bool changed = false;
        int r, active = store_active(s);

        if (unlinkat(s->root_fd, CURRENT_TMP, 0) == 0)
                changed = true;

        /* A tree moved aside by an install that died is trash now: the
         * contract empties an interrupted slot rather than guessing. */
        for (int i = 0; i < 2; i++) {
                char aside[64];
                (void) snprintf(aside, sizeof(aside), ASIDE_PREFIX "%s", slot_name(i));
                r = trash_at(s, aside);
                if (r < 0)
                        return r;
        }

        for (int i = 0; i < 2; i++) {
                if (s->st.slots[i].state != SLOT_INSTALLING || i == active)
                        continue;
                r = store_empty_slot(s, i);
                if (r < 0)
                        return r;
                s->st.slots[i] = (SlotRecord){.state = SLOT_EMPTY};
                changed = true;
        }

        /* A phase before the switch belongs to an operation that is gone. */
        if (s->st.phase == PHASE_DOWNLOADING || s->st.phase == PHASE_INSTALLING) {
                s->st.phase = PHASE_IDLE;
                changed = true;
        }

        if (changed) {
                r = store_save(s);
                if (r < 0)
                        return r;
        }
        if (ret_changed)
                *ret_changed = changed;
        return 0;
}


bool store_needs_recovery(Store *s) {
        const StoreState *st = &s->st;
        if (st->phase != PHASE_IDLE && st->phase != PHASE_DEGRADED)
                return true;
        if (st->trial_slot >= 0)
                return true;
        for (int i = 0; i < 2; i++)
                if (st->slots[i].state == SLOT_INSTALLING || st->slots[i].state == SLOT_TRIAL)
                        return true;
        return faccessat(s->root_fd, CURRENT_TMP, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}
