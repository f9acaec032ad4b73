/* hooks.h: running operator hooks (hooks_dir) and package hooks (the
 * slot's hooks/ folder) at each hook point, with their context in the
 * environment and a time bound. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "reason.h"

typedef enum HookPoint {
        HOOK_PRE_INSTALL,
        HOOK_POST_INSTALL,
        HOOK_PRE_SWITCH,
        HOOK_POST_SWITCH,
        HOOK_HEALTH_CHECK,
        HOOK_POST_COMMIT,
        HOOK_PRE_ROLLBACK,
        HOOK_POST_ROLLBACK,
        _HOOK_POINT_MAX,
        _HOOK_POINT_INVALID = -EINVAL,
} HookPoint;

const char *hook_point_to_string(HookPoint p);

typedef struct HookContext {
        const char *hooks_dir; /* operator hooks, may be NULL */
        const char *slot_dir;  /* the package's slot: its hooks/ folder */
        const char *from_slot; /* "a", "b" or "" */
        const char *to_slot;
        const char *from_version; /* "" when none */
        const char *to_version;
        const char *worker_id;
        uint64_t timeout_usec; /* per hook */
        bool echo;             /* also copy hook output to stderr */
        bool no_package_hooks; /* the slot does not hold the package yet */
} HookContext;

/* Runs <hooks_dir>/<point>, then <slot_dir>/hooks/<point>, each when it
 * exists. Returns 0 when all exited 0 (or none exists); -EIO when one
 * exited non-zero or died; -ETIMEDOUT when one overran (it is killed with
 * its process group). The reason names the hook and its path. */
int hooks_run(HookPoint point, const HookContext *ctx, Reason *reason);
