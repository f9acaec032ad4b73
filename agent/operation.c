/* operation.c: the operations on the slot store (operation.h). The order
 * of every step is what makes them crash-safe: the state on disk always
 * names what is in progress before the step that could be interrupted. */
#include "operation.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "fileio.h"
#include "hooks.h"
#include "log.h"
#include "package.h"
#include "semver.h"
#include "service.h"
#include "trial.h"
#include "unpack.h"

int agent_open(Agent *a, Config *config, Reason *reason) {
        a->config = config;
        int r = store_open(config->root, config->state_dir, &a->store);
        if (r < 0)
                return reason_fail(reason, r, "cannot open slot store %s (state in %s): %s",
                                   config->root, config->state_dir, strerror(-r));
        return 0;
}

void agent_forget_manifest(Agent *a) {
        a->verified_manifest = mfree(a->verified_manifest);
        a->verified_etag = mfree(a->verified_etag);
        a->verified_len = 0;
}

void agent_forget_keys(Agent *a) {
        a->keyring = minisign_keyring_free(a->keyring);
        agent_forget_manifest(a);
}

void agent_close(Agent *a) {
        a->store = store_free(a->store);
        agent_forget_keys(a);
}

int agent_keyring(Agent *a, const MinisignKeyring **ret, Reason *reason) {
        if (!a->keyring) {
                int r = minisign_keyring_load(a->config->keys, &a->keyring, reason);
                if (r < 0) {
                        if (reason)
                                reason->rejected = true; /* nothing can be trusted */
                        return r;
                }
        }
        *ret = a->keyring;
        return 0;
}

void agent_record_result(Agent *a, Result result, const char *from, const char *to,
                         const char *error) {
        LastResult *l = &a->store->st.last;
        l->serial++;
        l->set = true;
        l->result = result;
        (void) snprintf(l->from_version, sizeof(l->from_version), "%s", from ? from : "");
        (void) snprintf(l->to_version, sizeof(l->to_version), "%s", to ? to : "");
        (void) snprintf(l->error, sizeof(l->error), "%s", error ? error : "");
        iso8601_now(l->time, sizeof(l->time));
}

void agent_emit(Agent *a, EventType type, const char *from_version, const char *to_version,
                int from_slot, int to_slot, const char *error) {
        EventData d = EVENT_DATA_INIT;
        d.from_version = from_version && *from_version ? from_version : NULL;
        d.to_version = to_version && *to_version ? to_version : NULL;
        d.from_slot = from_slot;
        d.to_slot = to_slot;
        if (type == EVENT_UPDATE_REJECTED)
                d.reason = error;
        else
                d.error = error;
        if (type == EVENT_UPDATE_FAILED)
                d.phase = phase_to_string(a->store->st.phase);
        if (a->op_start && (type == EVENT_UPDATE_COMPLETED || type == EVENT_UPDATE_FAILED ||
                            type == EVENT_ROLLBACK_COMPLETED || type == EVENT_ROLLBACK_FAILED))
                d.duration_ms = (int64_t) ((now_mono() - a->op_start) / 1000);
        int r = outbox_emit(a->config, type, &d);
        if (r < 0)
                log_warning("cannot write event %s to the outbox in %s: %s",
                            event_type_to_string(type), a->config->state_dir, strerror(-r));
}

static const char *active_version(Agent *a) {
        int active = store_active(a->store);
        return active >= 0 ? a->store->st.slots[active].version : "";
}

/* Saves the state, turning a failure into a reason. */
static int save_state(Agent *a, Reason *reason) {
        int r = store_save(a->store);
        if (r < 0)
                return reason_fail(reason, r, "cannot write state in %s: %s", a->config->state_dir,
                                   strerror(-r));
        return 0;
}

typedef enum ActivateKind {
        ACTIVATE_UPDATE,   /* a new package: failures mark the slot bad */
        ACTIVATE_SWITCH,   /* an operator's switch */
        ACTIVATE_ROLLBACK, /* back to the previous good slot */
} ActivateKind;

typedef struct HookSlots {
        char slot_dir[4096];
        char from_version[VERSION_MAX];
        char to_version[VERSION_MAX];
        HookContext ctx;
} HookSlots;

/* The environment of the hooks of a move from slot `from` to slot `to`;
 * package hooks come from the slot being made active. */
static void hook_slots(Agent *a, int from, int to, HookSlots *h) {
        StoreState *st = &a->store->st;
        (void) snprintf(h->slot_dir, sizeof(h->slot_dir), "%s/slots/%s", a->config->root,
                        slot_name(to));
        (void) snprintf(h->from_version, sizeof(h->from_version), "%s",
                        from >= 0 ? st->slots[from].version : "");
        (void) snprintf(h->to_version, sizeof(h->to_version), "%s", st->slots[to].version);
        h->ctx = (HookContext){
                .hooks_dir = a->config->hooks_dir,
                .slot_dir = h->slot_dir,
                .from_slot = from >= 0 ? slot_name(from) : "",
                .to_slot = slot_name(to),
                .from_version = h->from_version,
                .to_version = h->to_version,
                .worker_id = a->config->worker_id,
                .timeout_usec = a->config->hook_timeout,
                .echo = a->echo_hooks,
        };
}

static bool service_managed(Agent *a, SwitchFlags flags) {
        return a->config->unit && !flags.no_restart;
}

/* Runs a hook whose failure must not stop what follows (post-commit,
 * rollback hooks while reverting): the failure is logged. */
static void run_hook_logged(HookPoint point, const HookContext *ctx) {
        Reason r = REASON_NULL;
        if (hooks_run(point, ctx, &r) < 0)
                log_warning("%s", r.text);
}

/* Switches back to slot `back` after slot `failed` did not pass its
 * trial, restarts and verifies the old version within [rollback] timeout.
 * The failed slot becomes bad. When `back` cannot be verified either the
 * store is degraded and nothing switches until an operator acts. Always
 * returns a negative errno: the operation that led here failed. */
static int revert(Agent *a, int failed, int back, SwitchFlags flags, const char *why,
                  Reason *reason) {
        StoreState *st = &a->store->st;
        char failed_version[VERSION_MAX], back_version[VERSION_MAX], cause[512];
        HookSlots h = {0};
        int r;

        (void) snprintf(cause, sizeof(cause), "%s", why);
        (void) snprintf(failed_version, sizeof(failed_version), "%s", st->slots[failed].version);
        (void) snprintf(back_version, sizeof(back_version), "%s",
                        back >= 0 ? st->slots[back].version : "");
        log_warning("slot %s (%s) failed: %s; reverting", slot_name(failed), failed_version, cause);
        if (st->phase != PHASE_ROLLING_BACK)
                agent_emit(a, EVENT_UPDATE_FAILED, back_version, failed_version, back, failed,
                           cause);

        st->phase = PHASE_ROLLING_BACK;
        st->trial_slot = failed;
        st->previous_slot = back;
        (void) store_save(a->store);

        if (back < 0 || st->slots[back].state == SLOT_EMPTY) {
                st->slots[failed].state = SLOT_BAD;
                st->trial_slot = -1;
                st->phase = PHASE_DEGRADED;
                agent_record_result(a, RESULT_FAILED, "", failed_version, cause);
                (void) store_save(a->store);
                agent_emit(a, EVENT_ROLLBACK_FAILED, failed_version, NULL, failed, -1,
                           "no previous slot to return to");
                return reason_fail(reason, -EIO, "%s; no previous slot to return to: degraded",
                                   cause);
        }

        agent_emit(a, EVENT_ROLLBACK_STARTED, failed_version, back_version, failed, back, NULL);
        hook_slots(a, failed, back, &h);
        run_hook_logged(HOOK_PRE_ROLLBACK, &h.ctx);

        r = store_set_current(a->store, back);
        if (r >= 0) {
                st->slots[failed].state = SLOT_BAD;
                (void) store_save(a->store);
                if (service_managed(a, flags)) {
                        Reason rb = REASON_NULL;
                        r = trial_run(a->config, back_version, a->config->rollback_timeout, &h.ctx,
                                      &rb);
                        if (r < 0)
                                (void) snprintf(
                                        cause + strlen(cause), sizeof(cause) - strlen(cause),
                                        "; rollback to %s failed too: %s", back_version, rb.text);
                }
        } else
                (void) snprintf(cause + strlen(cause), sizeof(cause) - strlen(cause),
                                "; cannot switch back to slot %s: %s", slot_name(back),
                                strerror(-r));

        st->slots[failed].state = SLOT_BAD;
        st->trial_slot = -1;
        st->trial_deadline = 0;
        if (r < 0) {
                st->phase = PHASE_DEGRADED;
                agent_record_result(a, RESULT_FAILED, back_version, failed_version, cause);
                (void) store_save(a->store);
                agent_emit(a, EVENT_ROLLBACK_FAILED, failed_version, back_version, failed, back,
                           cause);
                return reason_fail(reason, -EIO, "%s: degraded, an operator must act", cause);
        }
        st->slots[back].state = SLOT_GOOD;
        st->phase = PHASE_IDLE;
        agent_record_result(a, RESULT_ROLLED_BACK, back_version, failed_version, cause);
        (void) store_save(a->store);
        agent_emit(a, EVENT_ROLLBACK_COMPLETED, failed_version, back_version, failed, back, NULL);
        run_hook_logged(HOOK_POST_ROLLBACK, &h.ctx);
        return reason_fail(reason, -EIO, "%s; reverted to slot %s (%s)", cause, slot_name(back),
                           back_version);
}

/* The trial is over and passed: the slot becomes good. An operator's
 * rollback ends as rolled_back, with the rollback event and hook. */
static int commit(Agent *a, int from, int to, const HookSlots *h, bool rollback, const char *forced,
                  Reason *reason) {
        StoreState *st = &a->store->st;
        st->slots[to].state = SLOT_GOOD;
        st->trial_slot = -1;
        st->trial_deadline = 0;
        st->phase = PHASE_IDLE;
        agent_record_result(a, rollback ? RESULT_ROLLED_BACK : RESULT_COMPLETED, h->from_version,
                            h->to_version, forced);
        int r = save_state(a, reason);
        if (r < 0)
                return r;
        agent_emit(a, rollback ? EVENT_ROLLBACK_COMPLETED : EVENT_UPDATE_COMPLETED, h->from_version,
                   h->to_version, from, to, NULL);
        run_hook_logged(rollback ? HOOK_POST_ROLLBACK : HOOK_POST_COMMIT, &h->ctx);
        return 0;
}

/* Verifies the active trial slot `to` (restart, health), then commits it
 * or reverts to `from`. */
static int finish_trial(Agent *a, int from, int to, SwitchFlags flags, bool rollback,
                        Reason *reason) {
        StoreState *st = &a->store->st;
        HookSlots h = {0};
        hook_slots(a, from, to, &h);

        char forced[600] = "";
        if (service_managed(a, flags)) {
                Reason why = REASON_NULL;
                st->phase = PHASE_VERIFYING;
                (void) store_save(a->store);
                int r = trial_run(a->config, st->slots[to].version, a->config->health_timeout,
                                  &h.ctx, &why);
                if (r < 0 && !flags.force)
                        return revert(a, to, from, flags, why.text, reason);
                if (r < 0) {
                        log_warning("slot %s kept by --force although: %s", slot_name(to),
                                    why.text);
                        (void) snprintf(forced, sizeof(forced), "kept by --force although: %s",
                                        why.text);
                }
        }
        return commit(a, from, to, &h, rollback, forced[0] ? forced : NULL, reason);
}

/* An activation that stopped before the link moved: `current` is as it
 * was; a new package's slot is marked bad when its own step refused it. */
static int fail_before_switch(Agent *a, const HookSlots *h, int from, int to, bool mark_bad, int r,
                              Reason *reason) {
        StoreState *st = &a->store->st;
        if (mark_bad)
                st->slots[to].state = SLOT_BAD;
        st->phase = PHASE_IDLE;
        agent_record_result(a, RESULT_FAILED, h->from_version, h->to_version,
                            reason ? reason->text : NULL);
        (void) store_save(a->store);
        agent_emit(a, EVENT_UPDATE_FAILED, h->from_version, h->to_version, from, to,
                   reason ? reason->text : NULL);
        return r;
}

/* Makes slot `to` the one `current` points at and, where a service is
 * configured and restart is wanted, proves it healthy. The state names the
 * trial before the link moves, so a crash at any point is finished by
 * op_recover(). */
static int activate(Agent *a, int to, ActivateKind kind, SwitchFlags flags, Reason *reason) {
        StoreState *st = &a->store->st;
        int from = store_active(a->store);
        HookSlots h = {0};
        int r;

        if (from < 0)
                from = -1;
        hook_slots(a, from, to, &h);

        /* A unit that cannot be reached makes a switch pointless: find out
         * before the link moves, not as a failed trial of either version. */
        if (service_managed(a, flags)) {
                _cleanup_(service_freep) Service *svc = NULL;
                r = service_open(a->config->bus, a->config->unit, &svc, reason);
                if (r < 0)
                        return fail_before_switch(a, &h, from, to, false, r, reason);
        }

        r = 0;
        if (kind == ACTIVATE_ROLLBACK) {
                agent_emit(a, EVENT_ROLLBACK_STARTED, h.from_version, h.to_version, from, to, NULL);
                r = hooks_run(HOOK_PRE_ROLLBACK, &h.ctx, reason);
        }
        if (r >= 0)
                r = hooks_run(HOOK_PRE_SWITCH, &h.ctx, reason);
        if (r < 0)
                return fail_before_switch(a, &h, from, to, kind == ACTIVATE_UPDATE, r, reason);

        st->previous_slot = from;
        st->trial_slot = to;
        st->slots[to].state = SLOT_TRIAL;
        st->phase = PHASE_SWITCHING;
        st->trial_deadline =
                now_usec(CLOCK_REALTIME) + a->config->restart_timeout + a->config->health_timeout;
        r = save_state(a, reason);
        if (r < 0)
                return r;

        r = store_set_current(a->store, to);
        if (r < 0) {
                reason_fail(reason, r, "cannot switch %s/current to slot %s: %s", a->config->root,
                            slot_name(to), strerror(-r));
                st->slots[to].state = SLOT_INSTALLED;
                st->trial_slot = -1;
                st->phase = PHASE_IDLE;
                agent_record_result(a, RESULT_FAILED, h.from_version, h.to_version,
                                    reason ? reason->text : NULL);
                (void) store_save(a->store);
                return r;
        }

        agent_emit(a, EVENT_UPDATE_SWITCHED, h.from_version, h.to_version, from, to, NULL);
        Reason why = REASON_NULL;
        r = hooks_run(HOOK_POST_SWITCH, &h.ctx, &why);
        if (r < 0 && !flags.force)
                return revert(a, to, from, flags, why.text, reason);

        return finish_trial(a, from, to, flags, kind == ACTIVATE_ROLLBACK, reason);
}

typedef struct InstallProgress {
        bool show;
        uint64_t total_size;
} InstallProgress;

static void install_progress(uint64_t entries, uint64_t bytes, void *userdata) {
        InstallProgress *p = userdata;
        if (!p->show)
                return;
        (void) printf("\runpacking: %llu files, %.1f MB", (unsigned long long) entries,
                      (double) bytes / 1e6);
        (void) fflush(stdout);
}

/* The archive's slot.ini must say what the pre-read said: the same fd is
 * read twice, and this guards the second read. */
static int install_meta_check(const char *ini, size_t len, void *userdata, Reason *reason) {
        const PackageMeta *expected = userdata;
        PackageMeta meta;
        int r = package_meta_parse(ini, len, expected->name, &meta, reason);
        if (r < 0)
                return r;
        if (strcmp(meta.version, expected->version) != 0)
                return reason_reject(reason, -EBADMSG, "slot.ini changed while unpacking");
        return 0;
}

typedef struct UnpackContext {
        InstallProgress progress;
        PackageMeta meta;
} UnpackContext;

static void unpack_progress_cb(uint64_t entries, uint64_t bytes, void *userdata) {
        UnpackContext *c = userdata;
        install_progress(entries, bytes, &c->progress);
}

static int unpack_meta_cb(const char *ini, size_t len, void *userdata, Reason *reason) {
        UnpackContext *c = userdata;
        return install_meta_check(ini, len, &c->meta, reason);
}

/* Reads and checks a verified package's metadata. */
static int read_meta(Agent *a, int fd, const char *path, PackageMeta *ret, Reason *reason) {
        _cleanup_free_ char *ini = NULL;
        size_t len;
        int r = unpack_read_slot_ini(fd, &ini, &len, reason);
        if (r < 0)
                return r;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return reason_fail(reason, -errno, "cannot seek %s: %s", path, strerror(errno));
        return package_meta_parse(ini, len, a->config->compatible, ret, reason);
}

int op_verify(Agent *a, const char *path, const char *sig_path, char **ret_summary,
              Reason *reason) {
        const MinisignKeyring *kr;
        PackageMeta meta;
        int r = agent_keyring(a, &kr, reason);
        if (r < 0)
                return r;

        _cleanup_close_ int fd = -1;
        r = package_open_verified(path, sig_path, kr, a->config->max_package_size, &fd, reason);
        if (r < 0)
                return r;
        r = read_meta(a, fd, path, &meta, reason);
        if (r < 0)
                return r;

        if (ret_summary && asprintf(ret_summary, "%s: good signature, package %s %s", path,
                                    meta.name, meta.version) < 0)
                return -ENOMEM;
        return 0;
}

static int install(Agent *a, const char *path, const char *sig_path, bool hash_verified,
                   Reason *reason) {
        StoreState *st = &a->store->st;
        const MinisignKeyring *kr;
        UnpackContext uc = {.progress = {.show = a->progress}};
        char from_version[VERSION_MAX];
        _cleanup_free_ char *slot_dir = NULL;
        _cleanup_close_ int fd = -1, slot_fd = -1;
        SlotRecord previous;
        int r, target;

        (void) snprintf(from_version, sizeof(from_version), "%s", active_version(a));

        if (hash_verified && !sig_path) {
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        r = reason_fail(reason, -errno, "cannot open %s: %s", path,
                                        strerror(errno));
                        goto refused;
                }
        } else {
                r = agent_keyring(a, &kr, reason);
                if (r < 0)
                        goto refused;
                r = package_open_verified(path, sig_path, kr, a->config->max_package_size, &fd,
                                          reason);
                if (r < 0)
                        goto refused;
        }
        r = read_meta(a, fd, path, &uc.meta, reason);
        if (r < 0)
                goto refused;

        int active = store_active(a->store);
        if (active >= 0 && st->slots[active].version[0]) {
                int c = semver_compare(uc.meta.version, st->slots[active].version);
                if (c == 0 && st->slots[active].state == SLOT_GOOD)
                        return OP_UP_TO_DATE;
                if (c < 0 && !a->config->allow_downgrade && !a->allow_downgrade) {
                        r = reason_reject(reason, -EPERM,
                                          "downgrade from %s to %s refused ([trust] "
                                          "allow_downgrade = no)",
                                          st->slots[active].version, uc.meta.version);
                        goto refused;
                }
        }

        target = active == 0 ? 1 : 0;
        previous = st->slots[target];

        HookSlots h = {0};
        hook_slots(a, active, target, &h);
        (void) snprintf(h.to_version, sizeof(h.to_version), "%s", uc.meta.version);
        h.ctx.no_package_hooks = true;
        if (!a->update_started)
                agent_emit(a, EVENT_UPDATE_STARTED, from_version, uc.meta.version, active, target,
                           NULL);
        a->update_started = true;
        r = hooks_run(HOOK_PRE_INSTALL, &h.ctx, reason);
        if (r < 0) {
                agent_record_result(a, RESULT_FAILED, from_version, uc.meta.version,
                                    reason ? reason->text : NULL);
                (void) store_save(a->store);
                agent_emit(a, EVENT_UPDATE_FAILED, from_version, uc.meta.version, active, target,
                           reason ? reason->text : NULL);
                return r;
        }
        h.ctx.no_package_hooks = false;
        st->slots[target] = (SlotRecord){.state = SLOT_INSTALLING};
        (void) snprintf(st->slots[target].version, sizeof(st->slots[target].version), "%s",
                        uc.meta.version);
        st->phase = PHASE_INSTALLING;
        r = save_state(a, reason);
        if (r < 0)
                return r;

        r = store_prepare_slot(a->store, target);
        if (r < 0) {
                reason_fail(reason, r, "cannot empty slot %s: %s", slot_name(target), strerror(-r));
                goto undo;
        }

        r = store_slot_path(a->store, target, &slot_dir);
        if (r < 0)
                goto undo;

        UnpackLimits limits = {
                .max_unpacked_size = a->config->max_unpacked_size,
                .max_entries = a->config->max_entries,
                .min_free_space = a->config->min_free_space,
        };
        r = unpack_archive_fd(fd, slot_dir, &limits, unpack_meta_cb, unpack_progress_cb, &uc,
                              reason);
        if (uc.progress.show)
                (void) printf("\n");
        if (r < 0)
                goto undo;

        r = hooks_run(HOOK_POST_INSTALL, &h.ctx, reason);
        if (r < 0)
                goto undo;

        slot_fd = open(slot_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (slot_fd < 0 || syncfs(slot_fd) < 0) {
                r = reason_fail(reason, -errno, "cannot sync slot %s (%s): %s", slot_name(target),
                                slot_dir, strerror(errno));
                goto undo;
        }

        st->slots[target].state = SLOT_INSTALLED;
        iso8601_now(st->slots[target].installed_at, sizeof(st->slots[target].installed_at));
        r = save_state(a, reason);
        if (r < 0)
                return r;
        store_release_slot(a->store, target);
        agent_emit(a, EVENT_UPDATE_INSTALLED, from_version, uc.meta.version, active, target, NULL);

        return activate(a, target, ACTIVATE_UPDATE, (SwitchFlags){0}, reason);

undo:
        /* The package was refused or could not be unpacked: put the slot's
         * previous tree back, so the backup a rollback needs survives. */
        if (store_restore_slot(a->store, target) == 0)
                st->slots[target] = previous;
        else
                st->slots[target] = (SlotRecord){.state = SLOT_EMPTY};
        agent_record_result(a, reason && reason->rejected ? RESULT_REJECTED : RESULT_FAILED,
                            from_version, uc.meta.version, reason ? reason->text : NULL);
        agent_emit(a, reason && reason->rejected ? EVENT_UPDATE_REJECTED : EVENT_UPDATE_FAILED,
                   from_version, uc.meta.version, active, target, reason ? reason->text : NULL);
        st->phase = PHASE_IDLE;
        (void) store_save(a->store);
        return r;

refused:
        if (reason && reason->rejected) {
                agent_record_result(a, RESULT_REJECTED, from_version, uc.meta.version,
                                    reason->text);
                (void) store_save(a->store);
                agent_emit(a, EVENT_UPDATE_REJECTED, from_version, uc.meta.version, -1, -1,
                           reason->text);
        } else
                agent_emit(a, EVENT_UPDATE_FAILED, from_version, uc.meta.version, -1, -1,
                           reason ? reason->text : NULL);
        return r;
}

int op_install(Agent *a, const char *path, const char *sig_path, Reason *reason) {
        return install(a, path, sig_path, false, reason);
}

int op_install_downloaded(Agent *a, const char *path, const char *sig_path, Reason *reason) {
        return install(a, path, sig_path, true, reason);
}

/* Whether a slot may become active, and why not. */
static int check_switch_target(Agent *a, int slot, bool force, Reason *reason) {
        SlotState s = a->store->st.slots[slot].state;
        if (s == SLOT_EMPTY || s == SLOT_INSTALLING)
                return reason_fail(reason, -ENOENT, "slot %s is %s: nothing to switch to",
                                   slot_name(slot), slot_state_to_string(s));
        if (s == SLOT_BAD && !force)
                return reason_fail(reason, -EPERM,
                                   "slot %s is marked bad: refusing to switch (--force overrides)",
                                   slot_name(slot));
        return 0;
}

int op_switch(Agent *a, int slot, SwitchFlags flags, Reason *reason) {
        int active = store_active(a->store);
        if (slot < 0)
                slot = active == 0 ? 1 : 0;
        if (slot == active)
                return OP_UP_TO_DATE;
        int r = check_switch_target(a, slot, flags.force, reason);
        if (r < 0)
                return r;
        return activate(a, slot, ACTIVATE_SWITCH, flags, reason);
}

int op_rollback(Agent *a, Reason *reason) {
        StoreState *st = &a->store->st;
        int active = store_active(a->store);
        int target = active == 0 ? 1 : active == 1 ? 0 : -1;

        if (target < 0 || st->slots[target].state != SLOT_GOOD)
                return reason_fail(reason, -ENOENT,
                                   "no previous good slot to roll back to (slot %s is %s)",
                                   target < 0 ? "a" : slot_name(target),
                                   slot_state_to_string(st->slots[target < 0 ? 0 : target].state));
        return activate(a, target, ACTIVATE_ROLLBACK, (SwitchFlags){0}, reason);
}

int op_mark(Agent *a, int slot, SlotState state, Reason *reason) {
        StoreState *st = &a->store->st;
        SlotState s = st->slots[slot].state;
        if (s == SLOT_EMPTY || s == SLOT_INSTALLING)
                return reason_fail(reason, -ENOENT, "slot %s is %s: nothing to mark",
                                   slot_name(slot), slot_state_to_string(s));
        st->slots[slot].state = state;
        if (st->trial_slot == slot) {
                st->trial_slot = -1;
                st->trial_deadline = 0;
        }
        /* An operator's verdict ends a degraded store's wait. */
        if (st->phase == PHASE_DEGRADED || st->phase == PHASE_VERIFYING ||
            st->phase == PHASE_SWITCHING)
                st->phase = PHASE_IDLE;
        return save_state(a, reason);
}

int op_recover(Agent *a, Reason *reason) {
        StoreState *st = &a->store->st;
        int r = store_recover(a->store, NULL);
        if (r < 0)
                return reason_fail(reason, r, "cannot recover slot store %s: %s", a->config->root,
                                   strerror(-r));

        if (st->trial_slot < 0) {
                if (st->phase == PHASE_SWITCHING || st->phase == PHASE_VERIFYING ||
                    st->phase == PHASE_ROLLING_BACK) {
                        st->phase = PHASE_IDLE;
                        return save_state(a, reason);
                }
                return 0;
        }

        int trial = st->trial_slot, active = store_active(a->store);
        int back = st->previous_slot;
        Reason why = REASON_NULL;

        if (st->phase == PHASE_ROLLING_BACK) {
                log_notice("resuming the revert of slot %s to slot %s", slot_name(trial),
                           back >= 0 ? slot_name(back) : "none");
                r = revert(a, trial, back, (SwitchFlags){0},
                           st->last.error[0] ? st->last.error : "interrupted while reverting",
                           &why);
        } else if (active != trial) {
                /* Interrupted before the link moved: the switch never happened. */
                st->slots[trial].state = SLOT_INSTALLED;
                st->trial_slot = -1;
                st->trial_deadline = 0;
                st->phase = PHASE_IDLE;
                agent_record_result(a, RESULT_FAILED, active_version(a), st->slots[trial].version,
                                    "interrupted before the switch");
                return save_state(a, reason);
        } else {
                /* The link moved but nobody gave a verdict: verify now. */
                log_notice("slot %s (%s) was left on trial; verifying it", slot_name(trial),
                           st->slots[trial].version);
                r = finish_trial(a, back, trial, (SwitchFlags){0}, false, &why);
        }
        if (r >= 0)
                return 0;
        /* A completed revert leaves a safe store: later commands go on. */
        log_warning("%s", why.text);
        if (st->phase == PHASE_IDLE)
                return 0;
        return reason_fail(reason, r, "%s", why.text);
}

void op_reap_in_background(Agent *a) {
        if (!store_has_trash(a->store))
                return;
        pid_t pid = fork();
        if (pid != 0) {
                if (pid > 0)
                        (void) waitpid(pid, NULL, 0);
                return;
        }
        /* The intermediate child exits at once so the reaper is not our
         * child; the reaper must not hold the store lock. */
        if (fork() != 0)
                _exit(0);
        (void) setsid();
        store_unlock(a->store);
        (void) setpriority(PRIO_PROCESS, 0, 10);
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull >= 0) {
                (void) dup2(devnull, STDIN_FILENO);
                (void) dup2(devnull, STDOUT_FILENO);
                (void) dup2(devnull, STDERR_FILENO);
        }
        (void) store_reap(a->store);
        _exit(0);
}
