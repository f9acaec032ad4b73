/* operation.h: what slotctl and slotd do to the store: install a package,
 * switch, roll back, mark slots, and finish what an interrupted operation
 * left. Each runs under the store lock, which the caller takes. */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "minisign.h"
#include "outbox.h"
#include "reason.h"
#include "store.h"

typedef struct Agent {
        Config *config;
        Store *store;
        MinisignKeyring *keyring; /* loaded on first use */
        /* The manifest this process last verified, with the ETag it came
         * with: an unchanged manifest (304) is taken from here, not read
         * back from the cache and checked again. Verified with keyring. */
        char *verified_manifest;
        size_t verified_len;
        char *verified_etag;
        bool progress;            /* show progress lines on stdout */
        bool echo_hooks;          /* copy hook output to stderr */
        bool update_started;      /* worker_update_started already sent for this operation */
        bool allow_downgrade;     /* the signed manifest allows this downgrade */
        uint64_t op_start;        /* CLOCK_MONOTONIC usec when the operation began */
} Agent;

/* Outcomes above 0 that are not errors. */
enum {
        OP_DONE = 0,
        OP_UP_TO_DATE = 1, /* nothing to do */
};

typedef struct SwitchFlags {
        bool no_restart;
        bool force;
} SwitchFlags;

/* Opens the store of a loaded config. Returns 0 or -errno (reason set). */
int agent_open(Agent *a, Config *config, Reason *reason);
void agent_close(Agent *a);
/* Drops the manifest kept as verified (verified_*). */
void agent_forget_manifest(Agent *a);
/* Drops the keyring and what was verified with it (the keys may change). */
void agent_forget_keys(Agent *a);

/* Loads the trusted keys of [trust] keys. */
int agent_keyring(Agent *a, const MinisignKeyring **ret, Reason *reason);

/* Verifies a package file and reads its metadata. */
int op_verify(Agent *a, const char *path, const char *sig_path, char **ret_summary, Reason *reason);

/* Verifies, unpacks into the inactive slot, switches to it and (with a
 * service) verifies it; reverts on failure. OP_UP_TO_DATE when the active
 * slot already runs that version. */
int op_install(Agent *a, const char *path, const char *sig_path, Reason *reason);

/* The same for a package whose SHA-256 was just checked against a signed
 * manifest (a download into state_dir): with sig_path NULL no detached
 * signature is required. */
int op_install_downloaded(Agent *a, const char *path, const char *sig_path, Reason *reason);

/* Switches to slot (or the other one when slot < 0). */
int op_switch(Agent *a, int slot, SwitchFlags flags, Reason *reason);

/* Switches back to the previous good slot. */
int op_rollback(Agent *a, Reason *reason);

/* Sets a slot's state by hand (good or bad). */
int op_mark(Agent *a, int slot, SlotState state, Reason *reason);

/* Repairs what an interrupted operation left, and finishes a trial.
 * Needs the lock. */
int op_recover(Agent *a, Reason *reason);

/* Sets last_result (time now, serial advanced); the caller saves. */
void agent_record_result(Agent *a, Result result, const char *from, const char *to,
                         const char *error);

/* Writes an event to the outbox and the journal; failures are logged. */
void agent_emit(Agent *a, EventType type, const char *from_version, const char *to_version,
                int from_slot, int to_slot, const char *error);

/* Deletes old slot trees in a detached child so the caller need not wait. */
void op_reap_in_background(Agent *a);
