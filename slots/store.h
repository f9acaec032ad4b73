/* store.h: the slot store: two slot folders, the `current` symlink, the
 * persisted slot states and the lock every operation takes. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "cleanup.h"

#define VERSION_MAX 129 /* SemVer strings are at most 128 bytes */

typedef enum SlotState {
        SLOT_EMPTY,
        SLOT_INSTALLING,
        SLOT_INSTALLED,
        SLOT_TRIAL,
        SLOT_GOOD,
        SLOT_BAD,
        _SLOT_STATE_MAX,
        _SLOT_STATE_INVALID = -EINVAL,
} SlotState;

typedef enum Phase {
        PHASE_IDLE,
        PHASE_DOWNLOADING,
        PHASE_INSTALLING,
        PHASE_SWITCHING,
        PHASE_VERIFYING,
        PHASE_ROLLING_BACK,
        PHASE_DEGRADED,
        _PHASE_MAX,
        _PHASE_INVALID = -EINVAL,
} Phase;

typedef enum Result {
        RESULT_COMPLETED,
        RESULT_FAILED,
        RESULT_ROLLED_BACK,
        RESULT_REJECTED,
        _RESULT_MAX,
        _RESULT_INVALID = -EINVAL,
} Result;

const char *slot_state_to_string(SlotState s);
SlotState slot_state_from_string(const char *s);
const char *phase_to_string(Phase p);
Phase phase_from_string(const char *s);
const char *result_to_string(Result r);
Result result_from_string(const char *s);

/* Slots are numbered 0 (a) and 1 (b). */
const char *slot_name(int slot);
int slot_from_name(const char *name); /* 0, 1 or -EINVAL */

typedef struct SlotRecord {
        SlotState state;
        char version[VERSION_MAX]; /* "" when none */
        char installed_at[32];     /* ISO 8601, "" when none */
} SlotRecord;

typedef struct LastResult {
        bool set;
        Result result;
        char from_version[VERSION_MAX];
        char to_version[VERSION_MAX];
        char time[32];
        char error[512]; /* "" when none */
        uint64_t serial; /* grows with every result, so each is counted once */
} LastResult;

typedef struct StoreState {
        Phase phase;
        SlotRecord slots[2];
        int trial_slot;          /* the slot on trial, -1 when none */
        int previous_slot;       /* where a revert returns to, -1 when none */
        uint64_t trial_deadline; /* CLOCK_REALTIME usec; 0 when none */
        LastResult last;
} StoreState;

typedef struct Store {
        char *root;
        char *state_dir;
        int root_fd;
        int slots_fd;
        int state_fd;
        int lock_fd;
        StoreState st;
        char aside[2][64]; /* the old tree store_prepare_slot() moved aside */
} Store;

/* Opens (creating what is missing) <root>/slots/{a,b} and state_dir, and
 * loads the persisted state. A store without a state file is adopted from
 * what is on disk: a slot holding a slot.ini counts as installed, the
 * active one as good. Returns 0 or -errno. */
int store_open(const char *root, const char *state_dir, Store **ret);
Store *store_free(Store *s);
DEFINE_CLEANUP_FUNC(Store *, store_free);

/* Takes the exclusive operation lock. Returns 0, or -EWOULDBLOCK when
 * another process holds it and wait is false. */
int store_lock(Store *s, bool wait);
/* Releases the lock (closing its fd: a forked child keeps no share in it). */
void store_unlock(Store *s);

/* Persists s->st atomically (temp file, fsync, rename, fsync folder). */
int store_save(Store *s);
/* Re-reads the persisted state into s->st. */
int store_load(Store *s);

/* The slot `current` points at: 0 or 1; -ENOENT when there is no
 * `current` yet; -EBADMSG when it points anywhere else. */
int store_active(Store *s);

/* Points `current` at slot with one rename of a fresh relative symlink,
 * then fsyncs the root folder. Returns 0 or -errno. */
int store_set_current(Store *s, int slot);

/* "<root>/slots/<a|b>" into a new string. */
int store_slot_path(Store *s, int slot, char **ret);

/* Makes slot an empty folder ready for unpacking. The old tree is renamed
 * aside (a trash folder) rather than deleted, so deleting it stays off the
 * critical path; store_reap() deletes trash. Refuses the active slot with
 * -EBUSY. */
int store_prepare_slot(Store *s, int slot);

/* Puts the tree store_prepare_slot() moved aside back in place of what was
 * unpacked since, so a refused package costs the slot nothing. */
int store_restore_slot(Store *s, int slot);

/* Forgets the tree moved aside: it becomes trash for store_reap(). */
void store_release_slot(Store *s, int slot);

/* Deletes an installing slot's partial tree. Refuses the active slot. */
int store_empty_slot(Store *s, int slot);

/* Deletes every trash folder left by store_prepare_slot(). */
int store_reap(Store *s);
/* True when trash is waiting to be deleted. */
bool store_has_trash(Store *s);

/* Repairs what an interrupted operation left that needs no service: a
 * leftover temporary symlink, an `installing` slot (emptied, marked
 * empty), a phase of an operation that no longer runs. A trial is left to
 * the caller, which can verify it. Needs the lock. Returns 0 or -errno;
 * *ret_changed tells whether anything was repaired. */
int store_recover(Store *s, bool *ret_changed);

/* True when the persisted state shows an operation that did not finish
 * (a phase other than idle or degraded, a trial, an installing slot). */
bool store_needs_recovery(Store *s);

