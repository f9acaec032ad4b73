/* trial.c: the health verdict on a freshly restarted service (trial.h).
 * Until the first good answer it probes often, so a quick service is
 * verified as soon as it answers; then every [health] interval. */
#include "trial.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "clock.h"
#include "health.h"
#include "service.h"

#define FAST_PROBE_USEC UINT64_C(50000)

static void sleep_until(uint64_t when) {
        uint64_t now = now_mono();
        if (when <= now)
                return;
        sleep_usec(when - now);
}

static uint64_t min_u64(uint64_t a, uint64_t b) {
        return a < b ? a : b;
}

/* The unit must be running and not restarted since base_restarts. A unit
 * still activating is given time; anything else fails at once. Returns 1
 * when active, 0 when still activating, -errno on failure. */
static int unit_ok(Service *svc, const char *unit, uint32_t base_restarts, Reason *reason) {
        ServiceInfo info;
        int r = service_info(svc, &info, reason);
        if (r < 0)
                return r;
        if (info.n_restarts > base_restarts)
                return reason_fail(reason, -EIO,
                                   "%s restarted by itself (NRestarts %u -> %u): crash loop", unit,
                                   base_restarts, info.n_restarts);
        if (strcmp(info.active_state, "active") == 0 || strcmp(info.active_state, "reloading") == 0)
                return 1;
        if (strcmp(info.active_state, "activating") == 0 &&
            strcmp(info.sub_state, "auto-restart") == 0)
                return reason_fail(reason, -EIO,
                                   "%s restarted by itself (auto-restart pending): crash loop",
                                   unit);
        if (strcmp(info.active_state, "activating") == 0)
                return 0;
        return reason_fail(reason, -EIO, "%s is %s (%s)", unit, info.active_state, info.sub_state);
}

int trial_run(const Config *c, const char *expected_version, uint64_t timeout_usec,
              const HookContext *hooks, Reason *reason) {
        _cleanup_(service_freep) Service *svc = NULL;
        _cleanup_(health_probe_freep) HealthProbe *probe = NULL;
        uint64_t start = now_mono(), deadline = start + timeout_usec;
        int r;

        r = service_open(c->bus, c->unit, &svc, reason);
        if (r < 0)
                return r;
        r = service_restart(svc, min_u64(c->restart_timeout, timeout_usec), reason);
        if (r < 0)
                return r;

        ServiceInfo info;
        r = service_info(svc, &info, reason);
        if (r < 0)
                return r;
        uint32_t base_restarts = info.n_restarts;

        r = health_probe_new(c, &probe);
        if (r < 0)
                return reason_fail(reason, r, "cannot set up health probes: %s", strerror(-r));

        Reason last = REASON_NULL;
        uint64_t successes = 0;
        for (;;) {
                uint64_t now = now_mono();
                if (now >= deadline) {
                        return reason_fail(reason, -ETIMEDOUT, "%s not healthy within %llu s%s%s",
                                           c->unit, (unsigned long long) (timeout_usec / 1000000),
                                           last.text[0] ? ": " : "", last.text);
                }
                r = unit_ok(svc, c->unit, base_restarts, reason);
                if (r < 0)
                        return r;
                if (r > 0) {
                        uint64_t full = c->health_interval > USEC_PER_SEC ? c->health_interval
                                                                          : USEC_PER_SEC;
                        uint64_t budget = min_u64(deadline - now, full);
                        Reason probe_reason = REASON_NULL;
                        int pr = c->health_url ? health_check(probe, budget, &probe_reason) : 0;
                        if (pr == 0)
                                successes++;
                        else {
                                successes = 0;
                                /* A probe cut short by the deadline says less than the
                                 * answers before it. */
                                if (pr != -ETIMEDOUT || budget == full)
                                        last = probe_reason;
                        }
                }
                if (successes >= c->health_successes) {
                        if (c->version_url) {
                                char running[256];
                                r = health_version(probe,
                                                   min_u64(deadline - now_mono() + 1, 5000000),
                                                   running, sizeof(running), reason);
                                if (r < 0)
                                        return r;
                                if (strcmp(running, expected_version) != 0)
                                        return reason_fail(reason, -EIO,
                                                           "%s runs version %s, expected %s",
                                                           c->unit, running, expected_version);
                        }
                        r = hooks_run(HOOK_HEALTH_CHECK, hooks, reason);
                        if (r < 0)
                                return r;
                        break;
                }
                /* Paced from the start of this probe: fast until the first good
                 * answer, then every interval, so `successes` passes span
                 * (successes - 1) intervals. */
                uint64_t next = now + (successes > 0 ? c->health_interval
                                                     : min_u64(c->health_interval, FAST_PROBE_USEC));
                sleep_until(min_u64(next, deadline));
        }

        /* Settle: a service that dies soon after its first good answer fails. */
        uint64_t settle_end = now_mono() + c->settle;
        while (c->settle > 0) {
                r = unit_ok(svc, c->unit, base_restarts, reason);
                if (r < 0)
                        return r;
                if (r == 0)
                        return reason_fail(reason, -EIO, "%s left the active state while settling",
                                           c->unit);
                uint64_t now = now_mono();
                if (now >= settle_end)
                        break;
                sleep_until(min_u64(now + min_u64(c->health_interval, 500000), settle_end));
        }
        return 0;
}
