/* status.c: the status document (status.h). */
#include "status.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "health.h"
#include "service.h"

static json_t *str_or_null(const char *s) {
        return s && *s ? json_string(s) : json_null();
}

/* The unit's state over D-Bus and the version it reports; what cannot be
 * read is null, with the reason in "error". */
static json_t *service_status(const Config *c) {
        _cleanup_(service_freep) Service *svc = NULL;
        _cleanup_(health_probe_freep) HealthProbe *probe = NULL;
        Reason reason = REASON_NULL;
        ServiceInfo info;
        char running[256] = "";

        if (!c->unit)
                return json_pack("{s:n, s:n, s:n}", "unit", "active_state", "running_version");
        if (service_open(c->bus, c->unit, &svc, &reason) < 0 ||
            service_info(svc, &info, &reason) < 0)
                return json_pack("{s:s, s:n, s:n, s:s}", "unit", c->unit, "active_state",
                                 "running_version", "error", reason.text);
        if (c->version_url && health_probe_new(c, &probe) == 0)
                (void) health_version(probe, 2000000, running, sizeof(running), &reason);
        return json_pack("{s:s, s:s, s:s, s:o, s:i, s:i}", "unit", c->unit, "active_state",
                         info.active_state, "sub_state", info.sub_state, "running_version",
                         str_or_null(running), "main_pid", (int) info.main_pid, "n_restarts",
                         (int) info.n_restarts);
}

int status_build(Agent *a, json_t **ret) {
        const StoreState *st = &a->store->st;
        int active = store_active(a->store);

        json_t *slots = json_object();
        if (!slots)
                return -ENOMEM;
        for (int i = 0; i < 2; i++)
                (void) json_object_set_new(slots, slot_name(i),
                                           json_pack("{s:s, s:o, s:o}", "state",
                                                     slot_state_to_string(st->slots[i].state),
                                                     "version", str_or_null(st->slots[i].version),
                                                     "installed_at",
                                                     str_or_null(st->slots[i].installed_at)));

        json_t *last = json_null();
        if (st->last.set)
                last = json_pack("{s:s, s:o, s:o, s:o, s:o}", "result",
                                 result_to_string(st->last.result), "from_version",
                                 str_or_null(st->last.from_version), "to_version",
                                 str_or_null(st->last.to_version), "time",
                                 str_or_null(st->last.time), "error", str_or_null(st->last.error));

        json_t *service = service_status(a->config);

        json_t *doc = json_pack(
                "{s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:s, s:o, s:o}", "worker_id",
                a->config->worker_id, "phase", phase_to_string(st->phase), "active_slot",
                active >= 0 ? json_string(slot_name(active)) : json_null(), "slots", slots,
                "service", service ? service : json_null(), "last_result", last, "events_pending",
                (json_int_t) outbox_pending(a->config), "root", a->config->root, "trial_slot",
                st->trial_slot >= 0 ? json_string(slot_name(st->trial_slot)) : json_null(),
                "previous_slot",
                st->previous_slot >= 0 ? json_string(slot_name(st->previous_slot)) : json_null());
        if (!doc)
                return -ENOMEM;
        char err[600];
        outbox_last_error(a->config, err, sizeof(err));
        (void) json_object_set_new(doc, "events_last_error", str_or_null(err));
        *ret = doc;
        return 0;
}

static const char *jstr(json_t *o, const char *key, const char *fallback) {
        json_t *v = json_object_get(o, key);
        return json_is_string(v) ? json_string_value(v) : fallback;
}

void status_print_text(json_t *doc, FILE *out) {
        json_t *slots = json_object_get(doc, "slots");
        const char *active = jstr(doc, "active_slot", NULL);

        (void) fprintf(out, "worker:          %s\n", jstr(doc, "worker_id", "-"));
        (void) fprintf(out, "phase:           %s\n", jstr(doc, "phase", "-"));
        (void) fprintf(out, "active slot:     %s\n", active ? active : "none");
        for (int i = 0; i < 2; i++) {
                const char *name = slot_name(i);
                json_t *s = json_object_get(slots, name);
                (void) fprintf(out, "slot %s:%s         %-10s %-16s %s\n", name,
                               active && strcmp(active, name) == 0 ? "*" : " ",
                               jstr(s, "state", "-"), jstr(s, "version", "-"),
                               jstr(s, "installed_at", ""));
        }
        json_t *svc = json_object_get(doc, "service");
        const char *unit = jstr(svc, "unit", NULL);
        if (unit)
                (void) fprintf(out, "service:         %s: %s, running %s\n", unit,
                               jstr(svc, "active_state", "unknown"),
                               jstr(svc, "running_version", "unknown"));
        else
                (void) fprintf(out, "service:         none configured\n");
        json_t *last = json_object_get(doc, "last_result");
        if (json_is_object(last)) {
                const char *err = jstr(last, "error", NULL);
                (void) fprintf(out, "last result:     %s %s -> %s at %s%s%s\n",
                               jstr(last, "result", "-"), jstr(last, "from_version", "none"),
                               jstr(last, "to_version", "none"), jstr(last, "time", "-"),
                               err ? ": " : "", err ? err : "");
        } else
                (void) fprintf(out, "last result:     none\n");
        const char *event_error = jstr(doc, "events_last_error", NULL);
        (void) fprintf(out, "events pending:  %lld%s%s\n",
                       (long long) json_integer_value(json_object_get(doc, "events_pending")),
                       event_error ? ", last delivery error: " : "",
                       event_error ? event_error : "");
}
