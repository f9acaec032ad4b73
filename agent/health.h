/* health.h: the service's HTTP health and version endpoints, over libcurl. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "reason.h"

typedef struct HealthProbe HealthProbe;

int health_probe_new(const Config *c, HealthProbe **ret);
HealthProbe *health_probe_free(HealthProbe *p);
DEFINE_CLEANUP_FUNC(HealthProbe *, health_probe_free);

/* GETs [health] url within timeout_usec. Returns 0 on a 2xx, -EIO
 * otherwise (reason says what came back). */
int health_check(HealthProbe *p, uint64_t timeout_usec, Reason *reason);

/* GETs [health] version_url and reads version_field out of its JSON.
 * Returns 0 with the version copied into buf, or -errno with a reason. */
int health_version(HealthProbe *p, uint64_t timeout_usec, char *buf, size_t size, Reason *reason);
