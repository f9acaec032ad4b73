/* outbox.c: the durable event outbox (outbox.h). One file per event in
 * <state_dir>/outbox, named by a zero-padded sequence so the folder order
 * is the emission order; written temp-fsync-rename-fsync like all state. A
 * redelivered event keeps its id, so a collector can drop duplicates. */
#include "outbox.h"

#include "fetch.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileio.h"
#include "store.h"

#define OUTBOX_DIR "outbox"
#define SEQ_FILE "outbox.seq"
#define ERROR_FILE "outbox.error"
#define EVENT_MAX (64 * 1024)
#define NAME_MAX_LEN 64
#define DROPPED_SUFFIX "-dropped.json"
#define DELIVERY_LOCK "outbox.lock"

static const struct {
        const char *name;
        const char *message_id;
} event_types[_EVENT_TYPE_MAX] = {
        [EVENT_AGENT_STARTED] = {"worker_agent_started", "06a79c6668e1471691255268565c61b4"},
        [EVENT_UPDATE_AVAILABLE] = {"worker_update_available", "423b3193d5fa45e999dad571ba444291"},
        [EVENT_UPDATE_STARTED] = {"worker_update_started", "7ab16da5e857400198816e5e020356ee"},
        [EVENT_UPDATE_DOWNLOADED] = {"worker_update_downloaded",
                                     "e94b75a1d8a14180b84ab490fb0829a0"},
        [EVENT_UPDATE_INSTALLED] = {"worker_update_installed", "d0de0abeca1042f3914a3066ef0ca96d"},
        [EVENT_UPDATE_SWITCHED] = {"worker_update_switched", "9fbb57a28ec645e8bcf5465c8bfa8bdf"},
        [EVENT_UPDATE_COMPLETED] = {"worker_update_completed", "c86228154c9c4772849139dcb37b5018"},
        [EVENT_UPDATE_FAILED] = {"worker_update_failed", "e8cbf7afd77c474da5b0f5fe84d96690"},
        [EVENT_UPDATE_REJECTED] = {"worker_update_rejected", "5f68a31c5d6341e89f290046657ee784"},
        [EVENT_ROLLBACK_STARTED] = {"worker_rollback_started", "d7815d6bb0de44ffa013862d613e5ef7"},
        [EVENT_ROLLBACK_COMPLETED] = {"worker_rollback_completed",
                                      "a3640fcdd42644afb2544dd774a8df8d"},
        [EVENT_ROLLBACK_FAILED] = {"worker_rollback_failed", "f4a0ea57463a48df8a45ddcd071a8ea4"},
        [EVENT_VERSION_DRIFT] = {"worker_version_drift", "2f48bd34304142ef9990400f457de3bb"},
        [EVENT_EVENTS_DROPPED] = {"worker_events_dropped", "f00ca5c6d018404599dc1c9a1fa9a59b"},
};

const char *event_type_to_string(EventType t) {
        return t >= 0 && t < _EVENT_TYPE_MAX ? event_types[t].name : NULL;
}

const char *event_type_message_id(EventType t) {
        return t >= 0 && t < _EVENT_TYPE_MAX ? event_types[t].message_id : NULL;
}

static int open_outbox(const Config *c, int *ret_state_fd, int *ret_dir_fd) {
        char path[4096];
        (void) snprintf(path, sizeof(path), "%s/" OUTBOX_DIR, c->state_dir);
        int r = mkdir_p(path, 0700);
        if (r < 0)
                return r;
        int sfd = open(c->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sfd < 0)
                return -errno;
        int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                r = -errno;
                (void) close(sfd);
                return r;
        }
        *ret_state_fd = sfd;
        *ret_dir_fd = dfd;
        return 0;
}

/* The names of pending events, sorted: oldest first. */
typedef struct NameList {
        char (*names)[NAME_MAX_LEN];
        size_t n, cap;
} NameList;

static void name_list_done(NameList *l) {
        free(l->names);
}

static int cmp_names(const void *a, const void *b) {
        return strcmp(a, b);
}

static int list_events(int dir_fd, NameList *ret) {
        int dfd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0)
                return -errno;
        DIR *d = fdopendir(dfd);
        if (!d) {
                (void) close(dfd);
                return -errno;
        }
        rewinddir(d);
        NameList l = {0};
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                if (de->d_name[0] == '.' || len < 6 || len >= NAME_MAX_LEN ||
                    strcmp(de->d_name + len - 5, ".json") != 0)
                        continue;
                if (l.n == l.cap) {
                        size_t cap = l.cap ? l.cap * 2 : 64;
                        void *p = realloc(l.names, cap * sizeof(*l.names));
                        if (!p) {
                                (void) closedir(d);
                                free(l.names);
                                return -ENOMEM;
                        }
                        l.names = p;
                        l.cap = cap;
                }
                memcpy(l.names[l.n++], de->d_name, len + 1);
        }
        (void) closedir(d);
        if (l.n > 1)
                qsort(l.names, l.n, sizeof(*l.names), cmp_names);
        *ret = l;
        return 0;
}

/* The next sequence number, kept in a file under an flock so slotctl and
 * slotd, which both emit, never take the same one. */
static int next_seq(int state_fd, uint64_t *ret) {
        _cleanup_close_ int fd = openat(state_fd, SEQ_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX) < 0)
                return -errno;
        char buf[32] = "";
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        uint64_t seq = n > 0 ? strtoull(buf, NULL, 10) : 0;
        seq++;
        int len = snprintf(buf, sizeof(buf), "%020llu\n", (unsigned long long) seq);
        if (pwrite(fd, buf, (size_t) len, 0) != len || fsync(fd) < 0)
                return -EIO;
        *ret = seq;
        return 0;
}

static void uuid4(char buf[37]) {
        uint8_t b[16];
        if (RAND_bytes(b, sizeof(b)) != 1)
                memset(b, 0, sizeof(b));
        b[6] = (uint8_t) ((b[6] & 0x0f) | 0x40);
        b[8] = (uint8_t) ((b[8] & 0x3f) | 0x80);
        (void) snprintf(buf, 37,
                        "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                        b[12], b[13], b[14], b[15]);
}

static void set_str(json_t *o, const char *key, const char *v) {
        if (v)
                (void) json_object_set_new(o, key, json_string(v));
}

static json_t *event_json(const Config *c, EventType type, const EventData *d, const char *id,
                          const char *time) {
        json_t *data = json_pack("{s:s}", "worker_id", c->worker_id);
        if (!data)
                return NULL;
        set_str(data, "from_version", d->from_version);
        set_str(data, "to_version", d->to_version);
        if (d->from_slot >= 0)
                set_str(data, "from_slot", slot_name(d->from_slot));
        if (d->to_slot >= 0)
                set_str(data, "to_slot", slot_name(d->to_slot));
        if (d->duration_ms >= 0)
                (void) json_object_set_new(data, "duration_ms", json_integer(d->duration_ms));
        set_str(data, "error", d->error);
        set_str(data, "phase", d->phase);
        set_str(data, "reason", d->reason);
        set_str(data, "running_version", d->running_version);
        if (d->dropped >= 0)
                (void) json_object_set_new(data, "dropped", json_integer(d->dropped));

        char source[300];
        (void) snprintf(source, sizeof(source), "/workers/%s", c->worker_id);
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id", id,
                         "source", source, "type", event_type_to_string(type), "time", time,
                         "datacontenttype", "application/json", "data", data);
}

static void journal_event(const Config *c, EventType type, const EventData *d) {
        char msg[700];
        int n = snprintf(msg, sizeof(msg), "%s", event_type_to_string(type));
        if (d->from_version || d->to_version)
                n += snprintf(msg + n, sizeof(msg) - (size_t) n, ": %s -> %s",
                              d->from_version ? d->from_version : "none",
                              d->to_version ? d->to_version : "none");
        if (n < (int) sizeof(msg) && (d->error || d->reason))
                (void) snprintf(msg + n, sizeof(msg) - (size_t) n, " (%s)",
                                d->error ? d->error : d->reason);
        int priority = type == EVENT_UPDATE_FAILED || type == EVENT_ROLLBACK_FAILED ? 3
                       : type == EVENT_UPDATE_REJECTED || type == EVENT_VERSION_DRIFT ||
                                       type == EVENT_EVENTS_DROPPED
                               ? 4
                               : 6;
        (void) sd_journal_send(
                "MESSAGE=%s", msg, "MESSAGE_ID=%s", event_type_message_id(type), "PRIORITY=%d",
                priority, "SLOTD_EVENT=%s", event_type_to_string(type), "SLOTD_WORKER_ID=%s",
                c->worker_id, "SLOTD_FROM_VERSION=%s", d->from_version ? d->from_version : "",
                "SLOTD_TO_VERSION=%s", d->to_version ? d->to_version : "", "SLOTD_FROM_SLOT=%s",
                d->from_slot >= 0 ? slot_name(d->from_slot) : "", "SLOTD_TO_SLOT=%s",
                d->to_slot >= 0 ? slot_name(d->to_slot) : "", "SLOTD_ERROR=%s",
                d->error    ? d->error
                : d->reason ? d->reason
                            : "",
                NULL);
}

static int write_event(const Config *c, int state_fd, int dir_fd, EventType type,
                       const EventData *d) {
        char id[37], when[32], name[NAME_MAX_LEN];
        uint64_t seq = 0;
        int r = next_seq(state_fd, &seq);
        if (r < 0)
                return r;
        uuid4(id);
        iso8601_now(when, sizeof(when));
        _cleanup_(json_decrefp) json_t *ev = event_json(c, type, d, id, when);
        if (!ev)
                return -ENOMEM;
        _cleanup_free_ char *text = json_dumps(ev, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        /* The dropped-events notice is named apart: trimming merges it. */
        (void) snprintf(name, sizeof(name), "%020llu%s", (unsigned long long) seq,
                        type == EVENT_EVENTS_DROPPED ? DROPPED_SUFFIX : ".json");
        return write_file_atomic_at(dir_fd, name, text, strlen(text), 0600);
}

static bool is_dropped_notice(const char *name) {
        size_t len = strlen(name), sl = strlen(DROPPED_SUFFIX);
        return len > sl && strcmp(name + len - sl, DROPPED_SUFFIX) == 0;
}

/* The count a pending dropped-events notice carries. */
static int64_t notice_count(const Config *c, const char *name) {
        char path[4200];
        _cleanup_free_ char *text = NULL;
        size_t len;
        (void) snprintf(path, sizeof(path), "%s/" OUTBOX_DIR "/%s", c->state_dir, name);
        if (read_file_bounded(path, EVENT_MAX, &text, &len) < 0)
                return 0;
        _cleanup_(json_decrefp) json_t *ev = json_loadb(text, len, 0, NULL);
        json_t *n = json_object_get(json_object_get(ev, "data"), "dropped");
        return json_is_integer(n) ? json_integer_value(n) : 0;
}

/* Keeps the outbox within spool_max: past it, the oldest events go, and
 * one dropped-events notice, always the newest entry, carries the whole
 * count (earlier notices are merged into it). Returns the count for a new
 * notice, 0 when nothing was dropped. */
static int64_t trim_outbox(const Config *c, int dir_fd) {
        _cleanup_(name_list_done) NameList l = {0};
        if (list_events(dir_fd, &l) < 0 || l.n <= c->spool_max)
                return 0;

        size_t notices = 0;
        for (size_t i = 0; i < l.n; i++)
                notices += is_dropped_notice(l.names[i]);
        /* Room for spool_max - 1 events and the one notice. */
        size_t events = l.n - notices;
        size_t keep = c->spool_max > 0 ? c->spool_max - 1 : 0;
        int64_t total = 0;
        for (size_t i = 0; i < l.n; i++) {
                if (is_dropped_notice(l.names[i])) {
                        total += notice_count(c, l.names[i]);
                        (void) unlinkat(dir_fd, l.names[i], 0);
                } else if (events > keep) {
                        if (unlinkat(dir_fd, l.names[i], 0) == 0)
                                total++;
                        events--;
                }
        }
        (void) fsync(dir_fd);
        return total;
}

int outbox_emit(const Config *c, EventType type, const EventData *data) {
        _cleanup_close_ int state_fd = -1, dir_fd = -1;
        journal_event(c, type, data);
        int r = open_outbox(c, &state_fd, &dir_fd);
        if (r < 0)
                return r;
        r = write_event(c, state_fd, dir_fd, type, data);
        if (r < 0)
                return r;
        int64_t dropped = trim_outbox(c, dir_fd);
        if (dropped > 0) {
                EventData dd = EVENT_DATA_INIT;
                dd.dropped = dropped;
                journal_event(c, EVENT_EVENTS_DROPPED, &dd);
                r = write_event(c, state_fd, dir_fd, EVENT_EVENTS_DROPPED, &dd);
        }
        return r;
}

uint64_t outbox_pending(const Config *c) {
        _cleanup_close_ int state_fd = -1, dir_fd = -1;
        _cleanup_(name_list_done) NameList l = {0};
        if (open_outbox(c, &state_fd, &dir_fd) < 0 || list_events(dir_fd, &l) < 0)
                return 0;
        return l.n;
}

static void record_error(int state_fd, const char *text) {
        if (!text[0]) {
                (void) unlinkat(state_fd, ERROR_FILE, 0);
                return;
        }
        (void) write_file_atomic_at(state_fd, ERROR_FILE, text, strlen(text), 0600);
}

void outbox_last_error(const Config *c, char *buf, size_t size) {
        char path[4096];
        _cleanup_free_ char *text = NULL;
        (void) snprintf(path, sizeof(path), "%s/" ERROR_FILE, c->state_dir);
        buf[0] = '\0';
        if (read_file_bounded(path, 1024, &text, NULL) == 0)
                (void) snprintf(buf, size, "%s", text);
}

static size_t discard_body(char *data, size_t size, size_t n, void *userdata) {
        (void) data;
        (void) userdata;
        return size * n;
}

int outbox_deliver(const Config *c, unsigned max, Reason *reason) {
        /* One handle, kept: a backlog goes over one kept-alive connection. */
        static CURL *h;
        _cleanup_close_ int state_fd = -1, dir_fd = -1;
        _cleanup_(name_list_done) NameList l = {0};
        int r;

        if (!c->events_url)
                return 0;
        r = open_outbox(c, &state_fd, &dir_fd);
        if (r < 0)
                return reason_fail(reason, r, "cannot open the outbox: %s", strerror(-r));
        /* One deliverer at a time (slotd, slotctl): two would send the same
         * events twice. The lock goes with the fd. */
        _cleanup_close_ int lock_fd =
                openat(state_fd, DELIVERY_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock_fd < 0)
                return reason_fail(reason, -errno, "cannot open the outbox lock: %s",
                                   strerror(errno));
        if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK
                               ? reason_fail(reason, -EBUSY, "another process delivers events")
                               : reason_fail(reason, -errno, "cannot lock the outbox: %s",
                                             strerror(errno));
        r = list_events(dir_fd, &l);
        if (r < 0)
                return reason_fail(reason, r, "cannot list the outbox: %s", strerror(-r));
        if (l.n == 0)
                return 0;
        if (!h && !(h = curl_easy_init()))
                return reason_fail(reason, -ENOMEM, "cannot initialise libcurl");
        struct curl_slist *headers =
                curl_slist_append(NULL, "Content-Type: application/cloudevents+json");
        if (!headers)
                return -ENOMEM;

        int delivered = 0;
        for (size_t i = 0; i < l.n && (unsigned) delivered < max; i++) {
                char path[4200];
                _cleanup_free_ char *body = NULL;
                size_t len;
                (void) snprintf(path, sizeof(path), "%s/" OUTBOX_DIR "/%s", c->state_dir,
                                l.names[i]);
                r = read_file_bounded(path, EVENT_MAX, &body, &len);
                if (r == -ENOENT)
                        continue; /* delivered by another process meanwhile */
                if (r < 0) {
                        /* An unreadable event would block the queue forever. */
                        (void) unlinkat(dir_fd, l.names[i], 0);
                        continue;
                }
                char errbuf[CURL_ERROR_SIZE] = "";
                curl_easy_reset(h);
                fetch_setup(h, c, c->events_url);
                /* A redirect would turn the POST into a GET: none followed. */
                (void) curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
                (void) curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
                (void) curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) len);
                (void) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
                (void) curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
                (void) curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
                (void) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                                        (long) (c->connect_timeout / 1000) + 10000L);
                CURLcode cc = curl_easy_perform(h);
                long status = 0;
                (void) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
                (void) curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
                if (cc != CURLE_OK || status < 200 || status > 299) {
                        if (cc != CURLE_OK && cc != CURLE_HTTP_RETURNED_ERROR)
                                reason_fail(reason, -EIO, "cannot deliver events to %s: %s",
                                            c->events_url,
                                            errbuf[0] ? errbuf : curl_easy_strerror(cc));
                        else
                                reason_fail(reason, -EIO, "cannot deliver events to %s: HTTP %ld",
                                            c->events_url, status);
                        if (reason)
                                record_error(state_fd, reason->text);
                        curl_slist_free_all(headers);
                        return delivered > 0 ? delivered : -EIO;
                }
                (void) unlinkat(dir_fd, l.names[i], 0);
                delivered++;
        }
        curl_slist_free_all(headers);
        (void) fsync(dir_fd);
        record_error(state_fd, "");
        return delivered;
}
