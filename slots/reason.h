/* reason.h: the one-sentence explanation a library call leaves behind.
 *
 * Library functions return 0 or -errno. Where an operator must be told which
 * file, entry or key failed, and whether the input itself was refused (exit 3)
 * rather than the operation failing (exit 1), the caller passes a Reason; the
 * library fills it and the program logs it once. A NULL Reason is allowed. */
#pragma once

#include <stdbool.h>

typedef struct Reason {
        bool rejected; /* the input was refused: bad signature, unsafe archive, ... */
        char text[512];
} Reason;

#define REASON_NULL                                                                                \
        { .rejected = false, .text = "" }

/* Records a failure of the operation; returns err (a negative errno). */
int reason_fail(Reason *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records a rejection of the input; returns err (a negative errno). */
int reason_reject(Reason *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
