/* trigger.h: slotd's HTTP(S) listener for the coordinator (SPEC section
 * 9), on libmicrohttpd's own threads. It never acts on the store itself:
 * requests go to the daemon through callbacks that must be thread-safe. */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "reason.h"

typedef enum TriggerRequest {
        TRIGGER_UPDATE,
        TRIGGER_ROLLBACK,
} TriggerRequest;

typedef struct TriggerCallbacks {
        /* True while an operation runs (answered 409). */
        bool (*busy)(void *userdata);
        /* Queues a request for the daemon's event loop. */
        void (*request)(TriggerRequest what, void *userdata);
        /* The status document as JSON text (malloc'd), or NULL. */
        char *(*status)(void *userdata);
        /* The Prometheus text (malloc'd), or NULL. */
        char *(*metrics)(void *userdata);
        void *userdata;
} TriggerCallbacks;

typedef struct Trigger Trigger;

/* Starts listening on [trigger] listen, or on the socket systemd passed
 * (socket activation). Returns 0 with *ret NULL when neither is set; a
 * negative errno with a reason when the listener cannot start. */
int trigger_start(const Config *c, const TriggerCallbacks *cb, Trigger **ret, Reason *reason);
Trigger *trigger_stop(Trigger *t);
