/* clock.h: microsecond clocks, the unit of every duration in slotd. */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <time.h>

#define USEC_PER_SEC UINT64_C(1000000)

static inline uint64_t now_usec(clockid_t clock) {
        struct timespec ts;
        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static inline uint64_t now_mono(void) {
        return now_usec(CLOCK_MONOTONIC);
}

/* Sleeps usec, signals notwithstanding. */
static inline void sleep_usec(uint64_t usec) {
        struct timespec ts = {.tv_sec = (time_t) (usec / USEC_PER_SEC),
                              .tv_nsec = (long) (usec % USEC_PER_SEC) * 1000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}
