/* trial.h: restarting the managed service on a slot and proving it
 * healthy (SPEC section 6, steps 2 and 3). */
#pragma once

#include <stdint.h>

#include "config.h"
#include "hooks.h"
#include "reason.h"

/* Restarts [service] unit and checks, within timeout_usec: the unit stays
 * active, NRestarts does not grow, [health] url answers 2xx `successes`
 * times in a row, version_url reports expected_version, the health-check
 * hook exits 0; then for `settle` the unit stays active and unrestarted.
 * Returns 0 on a pass, -errno with the reason of the first failure. */
int trial_run(const Config *c, const char *expected_version, uint64_t timeout_usec,
              const HookContext *hooks, Reason *reason);
