/* slotd.c: the daemon. It recovers the store before anything else, polls
 * the coordinator every check_interval (plus a random share of
 * check_splay), and runs each update in a child process that holds the
 * store lock, so the daemon itself stays responsive (watchdog, signals)
 * and slotctl stays usable beside it. While idle it watches the running
 * service for drift. SIGHUP reloads the configuration (a bad new one is
 * refused), SIGUSR1 checks now, SIGTERM stops cleanly. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "config.h"
#include "delivery.h"
#include "fetch.h"
#include "health.h"
#include "log.h"
#include "operation.h"
#include "residency.h"
#include "service.h"
#include "status.h"
#include "trigger.h"
#include "update.h"

/* What /metrics counts since slotd started. */
typedef struct Metrics {
        uint64_t results[_RESULT_MAX];
        uint64_t rollbacks_completed;
        uint64_t rollbacks_failed;
        double last_duration_seconds;
        uint64_t last_poll_ok; /* CLOCK_REALTIME seconds */
        uint64_t polls;
        uint64_t poll_failures;
} Metrics;

typedef struct Daemon {
        const char *config_path;
        Config *config;
        Agent agent;
        sd_event *event;
        sd_event_source *poll_timer;
        sd_event_source *monitor_timer;
        sd_event_source *trim_timer;
        sd_event_source *child_source;
        sd_event_source *child_pipe_source;
        pid_t child;
        char child_version[VERSION_MAX];
        char last_notice[600]; /* the last offer/rejection logged, to log changes only */
        char last_drift[300];
        char last_available[VERSION_MAX];
        Delivery *delivery;
        sd_event_source *outbox_watch;

        /* Shared with the trigger listener's threads. */
        Trigger *trigger;
        int request_pipe[2];
        sd_event_source *request_source;
        pthread_rwlock_t config_lock; /* held for writing while the config is swapped */
        pthread_mutex_t metrics_lock;
        atomic_bool op_running;
        Metrics metrics;
        uint64_t last_result_serial; /* to count each result once */
} Daemon;

static uint64_t random_below(uint64_t n) {
        uint64_t r = 0;
        if (n == 0)
                return 0;
        (void) RAND_bytes((unsigned char *) &r, sizeof(r));
        return r % n;
}

/* "idle, 1.1.0 on slot b" and the like, for systemctl status. */
static void daemon_status(Daemon *d) {
        Store *s = d->agent.store;
        int active = store_active(s);
        if (d->child > 0)
                return; /* the child reports its own progress */
        if (active < 0)
                (void) sd_notifyf(0, "STATUS=%s, no active slot", phase_to_string(s->st.phase));
        else
                (void) sd_notifyf(0, "STATUS=%s, %s on slot %s", phase_to_string(s->st.phase),
                                  s->st.slots[active].version[0] ? s->st.slots[active].version
                                                                 : "unknown version",
                                  slot_name(active));
}

/* Logs a notice once until its text changes (a poll every minute must
 * not repeat the same line every minute). */
static void notice_once(Daemon *d, bool error, const char *text) {
        if (strcmp(d->last_notice, text) == 0)
                return;
        (void) snprintf(d->last_notice, sizeof(d->last_notice), "%s", text);
        if (error)
                log_error("%s", text);
        else
                log_info("%s", text);
}

/* Finishes what an interrupted operation left, under the store lock. */
static int daemon_recover(Daemon *d) {
        Reason reason = REASON_NULL;
        uint64_t bound = d->config->restart_timeout + d->config->health_timeout +
                         d->config->rollback_timeout + d->config->restart_timeout;
        (void) sd_notifyf(0, "STATUS=recovering the slot store\nEXTEND_TIMEOUT_USEC=%llu",
                          (unsigned long long) bound);
        int r = store_lock(d->agent.store, true);
        if (r < 0) {
                log_error("cannot lock store %s/lock: %s", d->config->state_dir, strerror(-r));
                return r;
        }
        r = op_recover(&d->agent, &reason);
        if (r < 0)
                log_error("%s", reason.text);
        store_unlock(d->agent.store);
        return r;
}

static int schedule_poll(Daemon *d, uint64_t delay_usec);

/* Arms the one-shot timer *s delay_usec from now, creating it on first use. */
static int arm_oneshot(Daemon *d, sd_event_source **s, uint64_t delay_usec, uint64_t accuracy,
                       sd_event_time_handler_t handler) {
        uint64_t when = now_usec(CLOCK_MONOTONIC) + delay_usec;
        if (*s) {
                int r = sd_event_source_set_time(*s, when);
                if (r < 0)
                        return r;
                return sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
        }
        return sd_event_add_time(d->event, s, CLOCK_MONOTONIC, when, accuracy, handler, d);
}

/* The child's side: progress lines go up the pipe as "STATUS=..." text. */
static int child_pipe_fd = -1;

static void child_progress(uint64_t done, uint64_t total, double rate, void *userdata) {
        const char *version = userdata;
        if (child_pipe_fd >= 0)
                (void) dprintf(child_pipe_fd, "downloading %s: %d%% at %.0f MB/s\n", version,
                               total ? (int) (done * 100 / total) : 0, rate / 1e6);
}

/* Runs in the forked child: take the lock, finish leftovers, decide again
 * with the state read under the lock, download and install. The exit code
 * tells the parent what happened. */
static int child_update(Daemon *d, const Manifest *m) {
        Agent *a = &d->agent;
        Reason reason = REASON_NULL;
        a->op_start = now_usec(CLOCK_MONOTONIC);
        a->update_started = false;
        int r = store_lock(a->store, false);
        if (r == -EWOULDBLOCK) {
                log_info("store busy (slotctl?), update to %s postponed", m->version);
                return 75;
        }
        if (r < 0) {
                log_error("cannot lock store %s/lock: %s", a->config->state_dir, strerror(-r));
                return 1;
        }
        r = op_recover(a, &reason);
        if (r < 0) {
                log_error("%s", reason.text);
                return 1;
        }
        r = manifest_decide(m, a->config, &a->store->st, store_active(a->store), time(NULL),
                            &reason);
        if (r < 0) {
                log_error("update to %s rejected: %s", m->version, reason.text);
                return 3;
        }
        if (r != OFFER_INSTALL)
                return 0;
        if (a->store->st.phase == PHASE_DEGRADED) {
                log_warning("store degraded: not installing %s until an operator acts", m->version);
                return 1;
        }
        (void) dprintf(child_pipe_fd, "installing %s\n", m->version);
        log_info("updating to %s from %s", m->version, m->url);
        r = update_apply(a, m, child_progress, (void *) m->version, &reason);
        if (r < 0) {
                log_error("update to %s failed: %s", m->version, reason.text);
                return reason.rejected ? 3 : 1;
        }
        if (r == OP_UP_TO_DATE)
                log_info("%s is already installed", m->version);
        else
                log_info("updated to %s", m->version);
        return 0;
}

static int on_child_pipe(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Daemon *d = userdata;
        char buf[512];
        (void) s;
        (void) revents;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0) {
                d->child_pipe_source = sd_event_source_disable_unref(d->child_pipe_source);
                return 0;
        }
        buf[n] = '\0';
        /* Only the last complete line matters for a status display. */
        char *end = strrchr(buf, '\n');
        if (end) {
                *end = '\0';
                char *line = strrchr(buf, '\n');
                line = line ? line + 1 : buf;
                (void) sd_notifyf(0, "STATUS=%s", line);
        }
        return 0;
}

/* Runs in the forked child for a rollback requested through the listener. */
static int child_rollback(Daemon *d) {
        Agent *a = &d->agent;
        Reason reason = REASON_NULL;
        a->op_start = now_usec(CLOCK_MONOTONIC);
        int r = store_lock(a->store, false);
        if (r < 0) {
                log_info("store busy, rollback not started");
                return 75;
        }
        r = op_recover(a, &reason);
        if (r >= 0)
                r = op_rollback(a, &reason);
        if (r < 0) {
                log_error("rollback failed: %s", reason.text);
                return 1;
        }
        log_info("rolled back on request");
        return 0;
}

/* Counts the outcome the child left in the state, once per result. */
static void count_result(Daemon *d) {
        const LastResult *l = &d->agent.store->st.last;
        if (!l->set || l->serial == d->last_result_serial)
                return;
        d->last_result_serial = l->serial;
        (void) pthread_mutex_lock(&d->metrics_lock);
        d->metrics.results[l->result]++;
        if (l->result == RESULT_ROLLED_BACK)
                d->metrics.rollbacks_completed++;
        if (d->agent.store->st.phase == PHASE_DEGRADED)
                d->metrics.rollbacks_failed++;
        (void) pthread_mutex_unlock(&d->metrics_lock);
}

static int on_trim_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        (void) userdata;
        residency_trim(NULL);
        return 0;
}

/* After a burst of work (start-up, an update, a reload, a poll that had to
 * open a new connection) the memory it mapped is given back once, a second
 * later so the burst's tail (event delivery, a listener's answer) is done.
 * A poll over the kept-alive connection keeps what it mapped: it is its
 * working set, and releasing it each time would double the CPU of a poll;
 * a new connection's TLS handshake maps some 2 MB of code (certificates,
 * key exchange) that such a poll never runs. */
static void daemon_trim_later(Daemon *d) {
        (void) arm_oneshot(d, &d->trim_timer, USEC_PER_SEC, 100000, on_trim_timer);
}

static int on_child_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Daemon *d = userdata;
        (void) s;
        d->child = 0;
        atomic_store(&d->op_running, false);
        d->child_source = sd_event_source_disable_unref(d->child_source);
        d->child_pipe_source = sd_event_source_disable_unref(d->child_pipe_source);
        (void) store_load(d->agent.store);
        count_result(d);
        (void) pthread_mutex_lock(&d->metrics_lock);
        d->metrics.last_duration_seconds =
                (double) (now_usec(CLOCK_MONOTONIC) - d->agent.op_start) / 1e6;
        (void) pthread_mutex_unlock(&d->metrics_lock);
        if (si->si_code == CLD_EXITED && si->si_status == 75)
                (void) schedule_poll(d, 5 * UINT64_C(1000000)); /* busy: try again soon */
        daemon_status(d);
        daemon_trim_later(d);
        return 0;
}

/* Runs an update (m set) or a rollback in a fresh process: slotd itself,
 * executed again with --child. A fork alone would carry the listener's
 * and the delivery thread's locks into the child; an exec starts clean.
 * The child reads the verified manifest from the cache, reports progress
 * on fd 3, and holds the store lock while it works. */
static int start_child(Daemon *d, const Manifest *m) {
        char *argv[] = {(char *) "slotd",
                        (char *) "-c",
                        d->config->path,
                        (char *) "--child",
                        (char *) (m ? "update" : "rollback"),
                        NULL};
        int pipefd[2];

        d->agent.op_start = now_usec(CLOCK_MONOTONIC);
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        sigset_t none;
        (void) sigemptyset(&none);
        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                (void) close(pipefd[0]);
                (void) close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                /* Only async-signal-safe calls until exec. */
                if (dup2(pipefd[1], 3) < 0)
                        _exit(127);
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                execv("/proc/self/exe", argv);
                _exit(127);
        }
        (void) close(pipefd[1]);
        d->child = pid;
        atomic_store(&d->op_running, true);
        (void) snprintf(d->child_version, sizeof(d->child_version), "%s",
                        m ? m->version : "rollback");
        int r = sd_event_add_child(d->event, &d->child_source, pid, WEXITED, on_child_exit, d);
        if (r >= 0)
                r = sd_event_add_io(d->event, &d->child_pipe_source, pipefd[0], EPOLLIN,
                                    on_child_pipe, d);
        if (r >= 0)
                (void) sd_event_source_set_io_fd_own(d->child_pipe_source, true);
        else
                (void) close(pipefd[0]);
        (void) sd_notifyf(0, "STATUS=%s%s", m ? "updating to " : "rolling back",
                          m ? m->version : "");
        return r;
}

/* The --child side: the update or rollback process started above. */
static int child_main(Daemon *d, const char *mode) {
        Reason reason = REASON_NULL;
        child_pipe_fd = fcntl(3, F_GETFD) >= 0 ? 3 : -1;
        if (child_pipe_fd >= 0)
                (void) fcntl(child_pipe_fd, F_SETFD, FD_CLOEXEC);
        if (strcmp(mode, "rollback") == 0)
                return child_rollback(d);
        if (strcmp(mode, "update") != 0)
                return 2;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        int r = update_cached_manifest(&d->agent, &m, &reason);
        if (r < 0) {
                log_error("update: %s", reason.text);
                return reason.rejected ? 3 : 1;
        }
        return child_update(d, m);
}

/* One poll: fetch and judge the manifest here (one 304 when nothing
 * changed, over a kept-alive connection), and hand an update to a child. */
static void daemon_poll(Daemon *d, bool requested) {
        _cleanup_(check_result_done) CheckResult res = {0};
        Reason reason = REASON_NULL;
        char text[600];

        if (d->child > 0)
                return;
        if (!d->config->manifest_url) {
                notice_once(d, false, "no [coordinator] manifest_url: not polling");
                return;
        }
        (void) store_load(d->agent.store);
        int r = update_check(&d->agent, true, &res, &reason);
        (void) pthread_mutex_lock(&d->metrics_lock);
        d->metrics.polls++;
        if (r < 0)
                d->metrics.poll_failures++;
        else
                d->metrics.last_poll_ok = now_usec(CLOCK_REALTIME) / 1000000;
        (void) pthread_mutex_unlock(&d->metrics_lock);
        if (r < 0) {
                (void) snprintf(text, sizeof(text), "%s: %s",
                                reason.rejected ? "manifest rejected" : "check failed",
                                reason.text);
                if (reason.rejected && strcmp(text, d->last_notice) != 0)
                        agent_emit(&d->agent, EVENT_UPDATE_REJECTED, NULL, NULL, -1, -1,
                                   reason.text);
                notice_once(d, true, text);
                return;
        }
        const Manifest *m = res.manifest;
        switch (res.offer) {
        case OFFER_UP_TO_DATE:
                (void) snprintf(text, sizeof(text), "up to date with %s", m->version);
                notice_once(d, false, text);
                return;
        case OFFER_NOT_IN_ROLLOUT:
                (void) snprintf(text, sizeof(text), "%s offered to %d%%: outside the rollout",
                                m->version, m->percent);
                notice_once(d, false, text);
                return;
        case OFFER_KNOWN_BAD:
                (void) snprintf(text, sizeof(text),
                                "%s offered, but it failed here before: not installing again",
                                m->version);
                notice_once(d, true, text);
                return;
        default:
                break;
        }
        if (strcmp(d->last_available, m->version) != 0) {
                int active = store_active(d->agent.store);
                agent_emit(&d->agent, EVENT_UPDATE_AVAILABLE,
                           active >= 0 ? d->agent.store->st.slots[active].version : NULL,
                           m->version, -1, -1, NULL);
                (void) snprintf(d->last_available, sizeof(d->last_available), "%s", m->version);
        }
        if (!d->config->auto_update && !requested) {
                (void) snprintf(text, sizeof(text), "update %s available (auto_update = no)",
                                m->version);
                notice_once(d, false, text);
                return;
        }
        if (d->agent.store->st.phase == PHASE_DEGRADED) {
                (void) snprintf(text, sizeof(text),
                                "update %s available, but the store is degraded: an operator "
                                "must act first",
                                m->version);
                notice_once(d, true, text);
                return;
        }
        d->last_notice[0] = '\0';
        r = start_child(d, m);
        if (r < 0)
                log_error("cannot start the update to %s: %s", m->version, strerror(-r));
}

static int on_poll_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        (void) s;
        (void) usec;
        uint64_t opened = fetch_document_connections();
        daemon_poll(d, false);
        daemon_status(d);
        if (fetch_document_connections() != opened)
                daemon_trim_later(d);
        return schedule_poll(d, d->config->check_interval + random_below(d->config->check_splay));
}

static int schedule_poll(Daemon *d, uint64_t delay_usec) {
        return arm_oneshot(d, &d->poll_timer, delay_usec, 10000, on_poll_timer);
}

/* While idle: is the service up, and does it run the active slot's
 * version? A difference is drift, reported once per distinct value. */
static void daemon_monitor(Daemon *d) {
        const Config *c = d->config;
        _cleanup_(service_freep) Service *svc = NULL;
        _cleanup_(health_probe_freep) HealthProbe *probe = NULL;
        Reason reason = REASON_NULL;
        ServiceInfo info;
        char running[256], text[300];

        if (d->child > 0 || !c->unit)
                return;
        Store *s = d->agent.store;
        (void) store_load(s);
        if (s->st.phase != PHASE_IDLE)
                return;
        int active = store_active(s);
        if (active < 0)
                return;
        if (service_open(c->bus, c->unit, &svc, &reason) < 0 ||
            service_info(svc, &info, &reason) < 0) {
                notice_once(d, true, reason.text);
                return;
        }
        if (strcmp(info.active_state, "active") != 0) {
                (void) snprintf(text, sizeof(text), "%s is %s (%s)", c->unit, info.active_state,
                                info.sub_state);
                notice_once(d, true, text);
                return;
        }
        if ((!c->version_url && !c->health_url) || health_probe_new(c, &probe) < 0)
                return;
        if (c->health_url && health_check(probe, 5 * USEC_PER_SEC, &reason) < 0) {
                notice_once(d, true, reason.text);
                return;
        }
        if (!c->version_url)
                return;
        if (health_version(probe, 5000000, running, sizeof(running), &reason) < 0) {
                notice_once(d, true, reason.text);
                return;
        }
        const char *expected = s->st.slots[active].version;
        if (strcmp(running, expected) != 0) {
                (void) snprintf(text, sizeof(text), "version drift: %s runs %s, slot %s holds %s",
                                c->unit, running, slot_name(active), expected);
                if (strcmp(text, d->last_drift) != 0) {
                        EventData ev = EVENT_DATA_INIT;
                        ev.from_version = expected;
                        ev.running_version = running;
                        ev.to_slot = active;
                        log_warning("%s", text);
                        (void) outbox_emit(c, EVENT_VERSION_DRIFT, &ev);
                        (void) snprintf(d->last_drift, sizeof(d->last_drift), "%s", text);
                }
        } else
                d->last_drift[0] = '\0';
}

static int on_monitor_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        daemon_monitor(d);
        (void) sd_event_source_set_time(s, usec + d->config->monitor_interval);
        return 0;
}

/* A new file in the outbox (from slotd, its update child or slotctl). */
static int on_outbox_change(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        Daemon *d = userdata;
        (void) s;
        (void) ev;
        delivery_kick(d->delivery);
        return 0;
}

/* --- the trigger listener's side (other threads) --- */

static bool trigger_busy(void *userdata) {
        Daemon *d = userdata;
        if (atomic_load(&d->op_running))
                return true;
        /* slotctl may hold the store lock too. */
        char path[4096];
        (void) pthread_rwlock_rdlock(&d->config_lock);
        (void) snprintf(path, sizeof(path), "%s/lock", d->config->state_dir);
        (void) pthread_rwlock_unlock(&d->config_lock);
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return false;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK;
        (void) flock(fd, LOCK_UN);
        return false;
}

static void trigger_request(TriggerRequest what, void *userdata) {
        Daemon *d = userdata;
        char c = what == TRIGGER_UPDATE ? 'u' : 'r';
        (void) write(d->request_pipe[1], &c, 1);
}

static char *trigger_status(void *userdata) {
        Daemon *d = userdata;
        Agent a = {0};
        char *text = NULL;
        (void) pthread_rwlock_rdlock(&d->config_lock);
        a.config = d->config;
        if (store_open(d->config->root, d->config->state_dir, &a.store) >= 0) {
                _cleanup_(json_decrefp) json_t *doc = NULL;
                if (status_build(&a, &doc) >= 0)
                        text = json_dumps(doc, JSON_COMPACT);
                a.store = store_free(a.store);
        }
        (void) pthread_rwlock_unlock(&d->config_lock);
        return text;
}

/* Prometheus label values: backslash, quote and newline escaped. */
static void label_escape(const char *in, char *out, size_t size) {
        size_t o = 0;
        for (; *in && o + 3 < size; in++) {
                if (*in == '\\' || *in == '"') {
                        out[o++] = '\\';
                        out[o++] = *in;
                } else if (*in == '\n') {
                        out[o++] = '\\';
                        out[o++] = 'n';
                } else
                        out[o++] = *in;
        }
        out[o] = '\0';
}

static char *trigger_metrics(void *userdata) {
        Daemon *d = userdata;
        Metrics m;
        Store *s = NULL;
        char *text = NULL;
        size_t len = 0;

        (void) pthread_mutex_lock(&d->metrics_lock);
        m = d->metrics;
        (void) pthread_mutex_unlock(&d->metrics_lock);

        FILE *f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        (void) fprintf(f, "# HELP slotd_updates_total Update operations by result.\n"
                          "# TYPE slotd_updates_total counter\n");
        for (int i = 0; i < _RESULT_MAX; i++)
                (void) fprintf(f, "slotd_updates_total{result=\"%s\"} %llu\n", result_to_string(i),
                               (unsigned long long) m.results[i]);
        (void) fprintf(f,
                       "# HELP slotd_update_failures_total Updates that failed or were "
                       "rejected.\n# TYPE slotd_update_failures_total counter\n"
                       "slotd_update_failures_total %llu\n",
                       (unsigned long long) (m.results[RESULT_FAILED] +
                                             m.results[RESULT_ROLLED_BACK] +
                                             m.results[RESULT_REJECTED]));
        (void) fprintf(f,
                       "# HELP slotd_rollbacks_total Automatic reverts by result.\n"
                       "# TYPE slotd_rollbacks_total counter\n"
                       "slotd_rollbacks_total{result=\"completed\"} %llu\n"
                       "slotd_rollbacks_total{result=\"failed\"} %llu\n",
                       (unsigned long long) m.rollbacks_completed,
                       (unsigned long long) m.rollbacks_failed);
        (void) fprintf(f,
                       "# HELP slotd_last_update_duration_seconds Duration of the last "
                       "operation.\n# TYPE slotd_last_update_duration_seconds gauge\n"
                       "slotd_last_update_duration_seconds %.3f\n",
                       m.last_duration_seconds);
        (void) fprintf(f,
                       "# HELP slotd_polls_total Coordinator polls.\n# TYPE slotd_polls_total "
                       "counter\nslotd_polls_total %llu\n"
                       "# HELP slotd_poll_failures_total Polls that failed.\n"
                       "# TYPE slotd_poll_failures_total counter\nslotd_poll_failures_total "
                       "%llu\n"
                       "# HELP slotd_last_successful_poll_timestamp_seconds Time of the last "
                       "good poll.\n# TYPE slotd_last_successful_poll_timestamp_seconds "
                       "gauge\nslotd_last_successful_poll_timestamp_seconds %llu\n",
                       (unsigned long long) m.polls, (unsigned long long) m.poll_failures,
                       (unsigned long long) m.last_poll_ok);

        (void) pthread_rwlock_rdlock(&d->config_lock);
        if (store_open(d->config->root, d->config->state_dir, &s) >= 0) {
                int active = store_active(s);
                char version[2 * VERSION_MAX] = "";
                if (active >= 0)
                        label_escape(s->st.slots[active].version, version, sizeof(version));
                (void) fprintf(f,
                               "# HELP slotd_active_version_info The active slot and its "
                               "version.\n# TYPE slotd_active_version_info gauge\n"
                               "slotd_active_version_info{slot=\"%s\",version=\"%s\"} 1\n"
                               "# HELP slotd_phase Current phase (1 for the current one).\n"
                               "# TYPE slotd_phase gauge\n",
                               active >= 0 ? slot_name(active) : "", version);
                for (int i = 0; i < _PHASE_MAX; i++)
                        (void) fprintf(f, "slotd_phase{phase=\"%s\"} %d\n", phase_to_string(i),
                                       s->st.phase == i);
                s = store_free(s);
        }
        (void) fprintf(f,
                       "# HELP slotd_outbox_events Events waiting for delivery.\n"
                       "# TYPE slotd_outbox_events gauge\nslotd_outbox_events %llu\n",
                       (unsigned long long) outbox_pending(d->config));
        (void) pthread_rwlock_unlock(&d->config_lock);
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}

/* --- back on the event loop --- */

static int on_request(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Daemon *d = userdata;
        char buf[64];
        (void) s;
        (void) revents;
        ssize_t n = read(fd, buf, sizeof(buf));
        bool update = false, rollback = false;
        for (ssize_t i = 0; i < n; i++) {
                update |= buf[i] == 'u';
                rollback |= buf[i] == 'r';
        }
        if (d->child > 0)
                return 0;
        if (rollback) {
                log_info("rollback requested through the trigger listener");
                int r = start_child(d, NULL);
                if (r < 0)
                        log_error("cannot start the rollback: %s", strerror(-r));
        } else if (update) {
                log_info("check requested through the trigger listener");
                d->last_notice[0] = '\0';
                /* An explicit trigger installs what is offered, even with
                 * auto_update = no. */
                daemon_poll(d, true);
                daemon_status(d);
        }
        return 0;
}

static int on_sigusr1(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;
        (void) s;
        (void) si;
        log_info("check requested (SIGUSR1)");
        d->last_notice[0] = '\0';
        return schedule_poll(d, 0);
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;
        (void) s;
        (void) sd_notify(0, "STOPPING=1\nSTATUS=stopping");
        if (d->child > 0) {
                /* A download resumes next time; a trial is finished on start. */
                (void) kill(d->child, SIGTERM);
                (void) waitpid(d->child, NULL, 0);
                d->child = 0;
        }
        log_info("stopping on signal %u", si->ssi_signo);
        return sd_event_exit(d->event, 0);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;
        Config *fresh = NULL;
        (void) s;
        (void) si;
        (void) sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
                          (unsigned long long) now_usec(CLOCK_MONOTONIC));
        int r = config_load(d->config_path, log_config_line, NULL, &fresh);
        if (r < 0)
                log_error("reload refused, keeping the running configuration: %s",
                          r == -EINVAL ? "invalid configuration" : strerror(-r));
        else if (strcmp(fresh->root, d->config->root) != 0 ||
                 strcmp(fresh->state_dir, d->config->state_dir) != 0) {
                log_error("reload refused: [slots] root and [agent] state_dir need a restart");
                fresh = config_free(fresh);
        } else if (d->child > 0) {
                log_error("reload refused while an update runs; send SIGHUP again later");
                fresh = config_free(fresh);
        } else {
                (void) pthread_rwlock_wrlock(&d->config_lock);
                config_free(d->config);
                d->config = d->agent.config = fresh;
                (void) pthread_rwlock_unlock(&d->config_lock);
                agent_forget_keys(&d->agent);
                delivery_reload(d->delivery);
                /* New periods take effect now, not after the old ones end. */
                (void) schedule_poll(d, fresh->check_interval + random_below(fresh->check_splay));
                if (d->monitor_timer)
                        (void) sd_event_source_set_time_relative(d->monitor_timer,
                                                                 fresh->monitor_interval);
                log_info("configuration reloaded from %s", fresh->path);
                daemon_trim_later(d);
        }
        (void) sd_notify(0, "READY=1");
        daemon_status(d);
        return 0;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {"child", required_argument, NULL, 'C'},
                {},
        };
        const char *child_mode = NULL;
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
                } else if (c == 'C') {
                        child_mode = optarg;
                } else if (c == 'V') {
                        (void) printf("slotd " SLOTD_VERSION "\n");
                        return 0;
                } else
                        return 2;
        }

        r = config_load(d.config_path, log_config_line, NULL, &d.config);
        if (r < 0) {
                if (r != -EINVAL)
                        log_error("cannot read config %s: %s", config_resolve_path(d.config_path),
                                  strerror(-r));
                return 2;
        }
        r = agent_open(&d.agent, d.config, &reason);
        if (r < 0) {
                log_error("%s", reason.text);
                return 1;
        }
        if (child_mode) {
                r = child_main(&d, child_mode);
                agent_close(&d.agent);
                config_free(d.config);
                return r;
        }
        r = daemon_recover(&d);
        if (r < 0)
                return 1;
        d.last_result_serial = d.agent.store->st.last.serial;
        op_reap_in_background(&d.agent);

        sigset_t mask;
        (void) sigemptyset(&mask);
        (void) sigaddset(&mask, SIGTERM);
        (void) sigaddset(&mask, SIGINT);
        (void) sigaddset(&mask, SIGHUP);
        (void) sigaddset(&mask, SIGUSR1);
        (void) sigaddset(&mask, SIGCHLD);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_default(&d.event);
        if (r >= 0)
                r = sd_event_add_signal(d.event, NULL, SIGTERM, on_sigterm, &d);
        if (r >= 0)
                r = sd_event_add_signal(d.event, NULL, SIGINT, on_sigterm, &d);
        if (r >= 0)
                r = sd_event_add_signal(d.event, NULL, SIGHUP, on_sighup, &d);
        if (r >= 0)
                r = sd_event_add_signal(d.event, NULL, SIGUSR1, on_sigusr1, &d);
        if (r >= 0)
                r = sd_event_set_watchdog(d.event, true);
        /* The first poll comes soon after start, spread a little. */
        if (r >= 0)
                r = schedule_poll(&d, random_below(d.config->check_splay < 5000000
                                                           ? d.config->check_splay
                                                           : 5000000));
        if (r >= 0 && d.config->unit)
                r = sd_event_add_time_relative(d.event, &d.monitor_timer, CLOCK_MONOTONIC,
                                               d.config->monitor_interval, 100000, on_monitor_timer,
                                               &d);
        if (r >= 0 && d.monitor_timer)
                r = sd_event_source_set_enabled(d.monitor_timer, SD_EVENT_ON);
        if (r >= 0 && d.config->events_url) {
                char outbox[4096];
                (void) snprintf(outbox, sizeof(outbox), "%s/outbox", d.config->state_dir);
                (void) mkdir(outbox, 0700);
                r = sd_event_add_inotify(d.event, &d.outbox_watch, outbox,
                                         IN_MOVED_TO | IN_CLOSE_WRITE, on_outbox_change, &d);
        }
        if (r < 0) {
                log_error("cannot set up the event loop: %s", strerror(-r));
                return 1;
        }

        (void) pthread_rwlock_init(&d.config_lock, NULL);
        (void) pthread_mutex_init(&d.metrics_lock, NULL);
        if (pipe2(d.request_pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
            sd_event_add_io(d.event, &d.request_source, d.request_pipe[0], EPOLLIN, on_request,
                            &d) < 0) {
                log_error("cannot set up the request pipe: %s", strerror(errno));
                return 1;
        }
        TriggerCallbacks cb = {
                .busy = trigger_busy,
                .request = trigger_request,
                .status = trigger_status,
                .metrics = trigger_metrics,
                .userdata = &d,
        };
        r = trigger_start(d.config, &cb, &d.trigger, &reason);
        if (r < 0) {
                log_error("%s", reason.text);
                return 1;
        }
        {
                Store *s = d.agent.store;
                int active = store_active(s);
                agent_emit(&d.agent, EVENT_AGENT_STARTED, NULL,
                           active >= 0 ? s->st.slots[active].version : NULL, -1, active, NULL);
        }
        if (d.config->events_url && delivery_start(d.config_path, &d.delivery) < 0) {
                log_error("cannot start the event delivery thread");
                return 1;
        }

        (void) sd_notify(0, "READY=1");
        daemon_status(&d);
        daemon_trim_later(&d);
        log_info("slotd %s started for %s (worker %s)", SLOTD_VERSION, d.config->root,
                 d.config->worker_id);
        r = sd_event_loop(d.event);
        d.trigger = trigger_stop(d.trigger);
        d.request_source = sd_event_source_unref(d.request_source);

        d.poll_timer = sd_event_source_unref(d.poll_timer);
        d.delivery = delivery_stop(d.delivery);
        d.outbox_watch = sd_event_source_unref(d.outbox_watch);
        d.monitor_timer = sd_event_source_unref(d.monitor_timer);
        d.trim_timer = sd_event_source_unref(d.trim_timer);
        d.event = sd_event_unref(d.event);
        agent_close(&d.agent);
        config_free(d.config);
        return r < 0 ? 1 : 0;
}
