/* slotd.c: the daemon. It recovers the store on start, tells systemd it is
 * ready, and serves until SIGTERM; SIGHUP reloads the configuration (a bad
 * new one is refused and the old one kept). It takes the store lock only
 * while it works on the store, so slotctl stays usable beside it. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "operation.h"

typedef struct Daemon {
        const char *config_path;
        Config *config;
        Agent agent;
        sd_event *event;
} Daemon;

static void config_log(bool is_error, const char *line, void *userdata) {
        (void) userdata;
        if (is_error)
                log_error("%s", line);
        else
                log_warning("%s", line);
}

static void daemon_status(Daemon *d) {
        Store *s = d->agent.store;
        int active = store_active(s);
        if (active < 0)
                (void) sd_notifyf(0, "STATUS=%s, no active slot", phase_to_string(s->st.phase));
        else
                (void) sd_notifyf(0, "STATUS=%s, %s on slot %s", phase_to_string(s->st.phase),
                                  s->st.slots[active].version[0] ? s->st.slots[active].version
                                                                 : "unknown version",
                                  slot_name(active));
}

/* Finishes what an interrupted operation left, under the store lock. */
static int daemon_recover(Daemon *d) {
        Reason reason = REASON_NULL;
        int r = store_lock(d->agent.store, true);
        if (r < 0) {
                log_error("cannot lock store %s/lock: %s", d->config->state_dir, strerror(-r));
                return r;
        }
        r = op_recover(&d->agent, &reason);
        if (r < 0)
                log_error("%s", reason.text);
        d->agent.store->lock_fd = safe_close(d->agent.store->lock_fd);
        return r;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;
        Config *fresh = NULL;
        (void) s;
        (void) si;
        (void) sd_notify(0, "RELOADING=1");
        int r = config_load(d->config_path, config_log, NULL, &fresh);
        if (r < 0)
                log_error("reload refused, keeping the running configuration: %s",
                          r == -EINVAL ? "invalid configuration" : strerror(-r));
        else if (strcmp(fresh->root, d->config->root) != 0 ||
                 strcmp(fresh->state_dir, d->config->state_dir) != 0) {
                log_error("reload refused: [slots] root and [agent] state_dir need a restart");
                fresh = config_free(fresh);
        } else {
                config_free(d->config);
                d->config = d->agent.config = fresh;
                log_info("configuration reloaded from %s", fresh->path);
        }
        (void) sd_notify(0, "READY=1");
        daemon_status(d);
        return 0;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        Daemon d = {0};
        Reason reason = REASON_NULL;
        int c, r;

        log_setup("slotd", getenv("JOURNAL_STREAM") != NULL);
        while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0) {
                if (c == 'c')
                        d.config_path = optarg;
                else if (c == 'h') {
                        (void) printf("usage: slotd [-c CONFIG]\n");
                        return 0;
                } else
                        return 2;
        }

        r = config_load(d.config_path, config_log, NULL, &d.config);
        if (r < 0) {
                if (r != -EINVAL)
                        log_error("cannot read config %s: %s",
                                  d.config_path ? d.config_path : CONFIG_DEFAULT_PATH,
                                  strerror(-r));
                return 2;
        }
        r = agent_open(&d.agent, d.config, &reason);
        if (r < 0) {
                log_error("%s", reason.text);
                return 1;
        }
        r = daemon_recover(&d);
        if (r < 0)
                return 1;
        op_reap_in_background(&d.agent);

        sigset_t mask;
        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGTERM);
        (void) sigaddset(&mask, SIGINT);
        (void) sigaddset(&mask, SIGHUP);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_default(&d.event);
        if (r >= 0)
                r = sd_event_add_signal(d.event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(d.event, NULL, SIGINT, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(d.event, NULL, SIGHUP, on_sighup, &d);
        if (r >= 0)
                r = sd_event_set_watchdog(d.event, true);
        if (r < 0) {
                log_error("cannot set up the event loop: %s", strerror(-r));
                return 1;
        }

        (void) sd_notify(0, "READY=1");
        daemon_status(&d);
        log_info("slotd started for %s (worker %s)", d.config->root, d.config->worker_id);
        r = sd_event_loop(d.event);
        (void) sd_notify(0, "STOPPING=1");

        d.event = sd_event_unref(d.event);
        agent_close(&d.agent);
        config_free(d.config);
        return r < 0 ? 1 : 0;
}
