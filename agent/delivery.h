/* delivery.h: slotd's event delivery, on a thread of its own, so a
 * collector that hangs or is away never stalls the daemon's event loop
 * (triggers, updates, watchdog). */
#pragma once

#include "cleanup.h"

typedef struct Delivery Delivery;

/* Starts the thread; it reads its own copy of the configuration at
 * config_path (NULL: the default). Returns 0 or -errno. */
int delivery_start(const char *config_path, Delivery **ret);

/* New events are waiting: deliver now unless backing off after a failure. */
void delivery_kick(Delivery *d);

/* The configuration changed (SIGHUP): read it again before the next pass. */
void delivery_reload(Delivery *d);

/* Stops the thread, waiting a moment for a pass in flight; what is not
 * delivered stays in the outbox for the next start. */
Delivery *delivery_stop(Delivery *d);
