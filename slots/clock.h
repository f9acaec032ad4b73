/* clock.h: microsecond clocks, the unit of every duration in slotd. */
#pragma once

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
