/* outbox.h: events upstream (SPEC section 8). Every event is written to a
 * durable outbox under state_dir before delivery is tried, sent to the
 * journal, then POSTed to events_url as CloudEvents 1.0 JSON in order and
 * removed only after a 2xx. */
#pragma once

#include <stdint.h>

#include "config.h"
#include "reason.h"

typedef enum EventType {
        EVENT_AGENT_STARTED,
        EVENT_UPDATE_AVAILABLE,
        EVENT_UPDATE_STARTED,
        EVENT_UPDATE_DOWNLOADED,
        EVENT_UPDATE_INSTALLED,
        EVENT_UPDATE_SWITCHED,
        EVENT_UPDATE_COMPLETED,
        EVENT_UPDATE_FAILED,
        EVENT_UPDATE_REJECTED,
        EVENT_ROLLBACK_STARTED,
        EVENT_ROLLBACK_COMPLETED,
        EVENT_ROLLBACK_FAILED,
        EVENT_VERSION_DRIFT,
        EVENT_EVENTS_DROPPED,
        _EVENT_TYPE_MAX,
        _EVENT_TYPE_INVALID = -22,
} EventType;

const char *event_type_to_string(EventType t);
/* The journal MESSAGE_ID of a type (32 hex digits). */
const char *event_type_message_id(EventType t);

/* What an event says; NULL strings, negative slots and durations are
 * left out of its data. */
typedef struct EventData {
        const char *from_version;
        const char *to_version;
        int from_slot;
        int to_slot;
        int64_t duration_ms;
        const char *error;
        const char *phase;
        const char *reason;
        const char *running_version;
        int64_t dropped;
} EventData;

#define EVENT_DATA_INIT                                                                            \
        { .from_slot = -1, .to_slot = -1, .duration_ms = -1, .dropped = -1 }

/* Writes the event durably to the outbox and to the journal. Past
 * spool_max the oldest events are dropped and a worker_events_dropped
 * event says how many. Returns 0 or -errno. */
int outbox_emit(const Config *c, EventType type, const EventData *data);

/* Events waiting for delivery. */
uint64_t outbox_pending(const Config *c);

/* POSTs pending events in order, at most max of them, stopping at the
 * first failure. Returns the number delivered; -EBUSY when another process
 * is delivering; -errno (reason set) when the first pending one could not
 * be delivered. */
int outbox_deliver(const Config *c, unsigned max, Reason *reason);

/* The last delivery error, kept on disk for `slotctl status`; "" when the
 * last attempt succeeded. */
void outbox_last_error(const Config *c, char *buf, size_t size);
