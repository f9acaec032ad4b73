/* service.h: the managed systemd unit, over D-Bus (sd-bus): restart it
 * and read its state. */
#pragma once

#include <stdint.h>

#include "config.h"
#include "reason.h"

typedef struct ServiceInfo {
        char load_state[32];
        char active_state[32];
        char sub_state[32];
        uint32_t main_pid;
        uint32_t n_restarts;
} ServiceInfo;

typedef struct Service Service;

/* Connects to the system or user bus and resolves the unit. Returns 0;
 * -ENOENT when the unit does not exist; other -errno when the bus cannot
 * be reached (reason names the unit and the D-Bus error). */
int service_open(BusKind bus, const char *unit, Service **ret, Reason *reason);
Service *service_free(Service *s);
DEFINE_CLEANUP_FUNC(Service *, service_free);

/* RestartUnit(unit, "replace"), then waits for the job's JobRemoved
 * signal within timeout_usec. Returns 0 when the job ended "done";
 * -ETIMEDOUT; -EIO when the job ended otherwise (reason says how). */
int service_restart(Service *s, uint64_t timeout_usec, Reason *reason);

/* Reads LoadState, ActiveState, SubState, MainPID and NRestarts. */
int service_info(Service *s, ServiceInfo *ret, Reason *reason);
