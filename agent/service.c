/* service.c: the managed unit over sd-bus (service.h). */
#include "service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "cleanup.h"
#include "clock.h"

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"

struct Service {
        sd_bus *bus;
        char *unit;
        char *unit_path;
        const char *bus_name; /* "system" or "user", for messages */
};

static void bus_errorp(sd_bus_error *e) {
        sd_bus_error_free(e);
}
#define _cleanup_bus_error_ _cleanup_(bus_errorp)

static void bus_messagep(sd_bus_message **m) {
        *m = sd_bus_message_unref(*m);
}
#define _cleanup_bus_message_ _cleanup_(bus_messagep)

static const char *bus_error_text(const sd_bus_error *e, int r) {
        return e && e->message ? e->message : strerror(-r);
}

Service *service_free(Service *s) {
        if (!s)
                return NULL;
        sd_bus_flush_close_unref(s->bus);
        free(s->unit);
        free(s->unit_path);
        free(s);
        return NULL;
}

static int get_string_property(Service *s, const char *iface, const char *name, char *buf,
                               size_t size, Reason *reason) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *v = NULL;
        int r = sd_bus_get_property_string(s->bus, SD_DEST, s->unit_path, iface, name, &error, &v);
        if (r < 0)
                return reason_fail(reason, r, "cannot read %s of %s: %s", name, s->unit,
                                   bus_error_text(&error, r));
        (void) snprintf(buf, size, "%s", v);
        return 0;
}

int service_open(BusKind bus, const char *unit, Service **ret, Reason *reason) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        const char *path;
        int r;

        _cleanup_(service_freep) Service *s = calloc(1, sizeof(Service));
        if (!s)
                return -ENOMEM;
        s->unit = strdup(unit);
        if (!s->unit)
                return -ENOMEM;
        s->bus_name = bus == BUS_USER ? "user" : "system";

        r = bus == BUS_USER ? sd_bus_open_user(&s->bus) : sd_bus_open_system(&s->bus);
        if (r < 0)
                return reason_fail(reason, r, "cannot connect to the %s bus for %s: %s",
                                   s->bus_name, unit, strerror(-r));

        r = sd_bus_call_method(s->bus, SD_DEST, SD_PATH, SD_MANAGER, "LoadUnit", &error, &reply,
                               "s", unit);
        if (r < 0)
                return reason_fail(reason, r, "cannot look up unit %s on the %s bus: %s", unit,
                                   s->bus_name, bus_error_text(&error, r));
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return reason_fail(reason, r, "bad reply to LoadUnit(%s): %s", unit, strerror(-r));
        s->unit_path = strdup(path);
        if (!s->unit_path)
                return -ENOMEM;

        char load_state[32];
        r = get_string_property(s, "org.freedesktop.systemd1.Unit", "LoadState", load_state,
                                sizeof(load_state), reason);
        if (r < 0)
                return r;
        if (strcmp(load_state, "loaded") != 0)
                return reason_fail(reason, -ENOENT, "unit %s not found on the %s bus (%s)", unit,
                                   s->bus_name, load_state);
        *ret = TAKE_PTR(s);
        return 0;
}

static int get_u32_property(Service *s, const char *iface, const char *name, uint32_t *ret,
                            Reason *reason) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = sd_bus_get_property_trivial(s->bus, SD_DEST, s->unit_path, iface, name, &error, 'u',
                                            ret);
        if (r < 0)
                return reason_fail(reason, r, "cannot read %s of %s: %s", name, s->unit,
                                   bus_error_text(&error, r));
        return 0;
}

int service_info(Service *s, ServiceInfo *ret, Reason *reason) {
        static const char unit_iface[] = "org.freedesktop.systemd1.Unit";
        static const char service_iface[] = "org.freedesktop.systemd1.Service";
        ServiceInfo info = {0};
        int r;

        if ((r = get_string_property(s, unit_iface, "LoadState", info.load_state,
                                     sizeof(info.load_state), reason)) < 0 ||
            (r = get_string_property(s, unit_iface, "ActiveState", info.active_state,
                                     sizeof(info.active_state), reason)) < 0 ||
            (r = get_string_property(s, unit_iface, "SubState", info.sub_state,
                                     sizeof(info.sub_state), reason)) < 0)
                return r;
        /* Only service units have these; a missing one reads as 0. */
        if (strcmp(info.load_state, "loaded") == 0 && strstr(s->unit, ".service")) {
                if ((r = get_u32_property(s, service_iface, "MainPID", &info.main_pid, reason)) <
                            0 ||
                    (r = get_u32_property(s, service_iface, "NRestarts", &info.n_restarts,
                                          reason)) < 0)
                        return r;
        }
        *ret = info;
        return 0;
}

typedef struct JobWait {
        const char *job_path;
        bool done;
        char result[32];
} JobWait;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        JobWait *w = userdata;
        const char *path, *unit, *result;
        uint32_t id;
        (void) ret_error;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (w->job_path && strcmp(path, w->job_path) == 0) {
                w->done = true;
                (void) snprintf(w->result, sizeof(w->result), "%s", result);
        }
        return 0;
}

int service_restart(Service *s, uint64_t timeout_usec, Reason *reason) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        sd_bus_slot *match = NULL;
        JobWait w = {0};
        const char *job;
        int r;

        /* The match comes first so a job that ends at once is not missed. */
        r = sd_bus_match_signal(s->bus, &match, SD_DEST, SD_PATH, SD_MANAGER, "JobRemoved",
                                on_job_removed, &w);
        if (r < 0)
                return reason_fail(reason, r, "cannot watch systemd jobs on the %s bus: %s",
                                   s->bus_name, strerror(-r));
        (void) sd_bus_call_method(s->bus, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", NULL, NULL,
                                  "");

        r = sd_bus_call_method(s->bus, SD_DEST, SD_PATH, SD_MANAGER, "RestartUnit", &error, &reply,
                               "ss", s->unit, "replace");
        if (r < 0) {
                reason_fail(reason, r, "cannot restart %s: %s", s->unit, bus_error_text(&error, r));
                goto out;
        }
        r = sd_bus_message_read(reply, "o", &job);
        if (r < 0) {
                reason_fail(reason, r, "bad reply to RestartUnit(%s)", s->unit);
                goto out;
        }
        w.job_path = job;

        uint64_t deadline = now_mono() + timeout_usec;
        while (!w.done) {
                r = sd_bus_process(s->bus, NULL);
                if (r < 0) {
                        reason_fail(reason, r, "lost the %s bus while restarting %s: %s",
                                    s->bus_name, s->unit, strerror(-r));
                        goto out;
                }
                if (r > 0)
                        continue;
                uint64_t now = now_mono();
                if (now >= deadline) {
                        r = reason_fail(reason, -ETIMEDOUT,
                                        "restart of %s did not finish within %llu s", s->unit,
                                        (unsigned long long) (timeout_usec / 1000000));
                        goto out;
                }
                r = sd_bus_wait(s->bus, deadline - now);
                if (r < 0 && r != -EINTR) {
                        reason_fail(reason, r, "lost the %s bus while restarting %s: %s",
                                    s->bus_name, s->unit, strerror(-r));
                        goto out;
                }
        }
        r = 0;
        if (strcmp(w.result, "done") != 0)
                r = reason_fail(reason, -EIO, "restart of %s ended with result \"%s\"", s->unit,
                                w.result);
out:
        sd_bus_slot_unref(match);
        return r;
}
