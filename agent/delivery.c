/* delivery.c: the delivery thread (delivery.h). It sleeps until kicked or
 * until its backoff ends; after a failure it waits 1 s, doubling to 60 s,
 * with jitter, before it tries again. */
#include "delivery.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "fetch.h"
#include "log.h"
#include "outbox.h"

#define BATCH 500
#define BUSY_RETRY_USEC (1 * USEC_PER_SEC)

struct Delivery {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool kick, reload, stop, done;
        char *config_path;
};

static void timespec_at(uint64_t realtime_usec, struct timespec *ts) {
        ts->tv_sec = (time_t) (realtime_usec / USEC_PER_SEC);
        ts->tv_nsec = (long) (realtime_usec % USEC_PER_SEC) * 1000;
}

static void *delivery_main(void *arg) {
        Delivery *d = arg;
        Config *c = NULL;
        unsigned failures = 0;
        uint64_t next_try = 0; /* CLOCK_REALTIME usec; 0: only when kicked */

        if (config_load(d->config_path, NULL, NULL, &c) < 0)
                c = NULL;
        (void) pthread_mutex_lock(&d->lock);
        for (;;) {
                while (!d->stop && !d->kick && !d->reload) {
                        if (next_try == 0) {
                                (void) pthread_cond_wait(&d->cond, &d->lock);
                                continue;
                        }
                        struct timespec ts;
                        timespec_at(next_try, &ts);
                        if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) == ETIMEDOUT)
                                break;
                }
                if (d->stop)
                        break;
                bool reload = d->reload;
                /* A kick while backing off waits for the backoff. */
                if (!reload && d->kick && failures > 0 && now_usec(CLOCK_REALTIME) < next_try) {
                        d->kick = false;
                        continue;
                }
                d->kick = d->reload = false;
                (void) pthread_mutex_unlock(&d->lock);

                if (reload) {
                        Config *fresh = NULL;
                        if (config_load(d->config_path, NULL, NULL, &fresh) >= 0) {
                                config_free(c);
                                c = fresh;
                        }
                        failures = 0;
                }
                Reason reason = REASON_NULL;
                int r = c ? outbox_deliver(c, BATCH, &reason) : 0;
                uint64_t now = now_usec(CLOCK_REALTIME);
                if (r == -EBUSY)
                        next_try = now + BUSY_RETRY_USEC; /* slotctl is sending them */
                else if (r < 0) {
                        if (failures == 0)
                                log_warning("%s (will retry)", reason.text);
                        failures++;
                        next_try = now + fetch_backoff_usec(failures - 1);
                } else {
                        if (failures > 0)
                                log_info("events delivered again to %s", c->events_url);
                        failures = 0;
                        next_try = 0;
                        if (r > 0 && outbox_pending(c) > 0)
                                next_try = now; /* more than one batch waiting */
                }
                (void) pthread_mutex_lock(&d->lock);
        }
        d->done = true;
        (void) pthread_cond_broadcast(&d->cond);
        (void) pthread_mutex_unlock(&d->lock);
        config_free(c);
        return NULL;
}

int delivery_start(const char *config_path, Delivery **ret) {
        Delivery *d = calloc(1, sizeof(Delivery));
        if (!d)
                return -ENOMEM;
        if (config_path && !(d->config_path = strdup(config_path))) {
                free(d);
                return -ENOMEM;
        }
        (void) pthread_mutex_init(&d->lock, NULL);
        (void) pthread_cond_init(&d->cond, NULL);
        d->kick = true; /* what an earlier run left goes out first */
        int r = pthread_create(&d->thread, NULL, delivery_main, d);
        if (r != 0) {
                free(d->config_path);
                free(d);
                return -r;
        }
        *ret = d;
        return 0;
}

static void delivery_signal(Delivery *d, bool reload) {
        if (!d)
                return;
        (void) pthread_mutex_lock(&d->lock);
        if (reload)
                d->reload = true;
        else
                d->kick = true;
        (void) pthread_cond_signal(&d->cond);
        (void) pthread_mutex_unlock(&d->lock);
}

void delivery_kick(Delivery *d) {
        delivery_signal(d, false);
}

void delivery_reload(Delivery *d) {
        delivery_signal(d, true);
}

Delivery *delivery_stop(Delivery *d) {
        if (!d)
                return NULL;
        struct timespec ts;
        timespec_at(now_usec(CLOCK_REALTIME) + 2 * USEC_PER_SEC, &ts);
        (void) pthread_mutex_lock(&d->lock);
        d->stop = true;
        (void) pthread_cond_broadcast(&d->cond);
        while (!d->done)
                if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) == ETIMEDOUT)
                        break;
        bool done = d->done;
        (void) pthread_mutex_unlock(&d->lock);
        if (!done) {
                /* A POST in flight to a hanging collector: leave it; the
                 * process exits and the event stays in the outbox. */
                (void) pthread_detach(d->thread);
                return NULL;
        }
        (void) pthread_join(d->thread, NULL);
        (void) pthread_mutex_destroy(&d->lock);
        (void) pthread_cond_destroy(&d->cond);
        free(d->config_path);
        free(d);
        return NULL;
}
