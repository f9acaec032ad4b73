/* reason.c: filling a Reason (see reason.h). */
#include "reason.h"

#include <stdarg.h>
#include <stdio.h>

static int reason_vset(Reason *r, bool rejected, int err, const char *fmt, va_list ap) {
        if (!r)
                return err;
        r->rejected = rejected;
        (void) vsnprintf(r->text, sizeof(r->text), fmt, ap);
        return err;
}

int reason_fail(Reason *r, int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        (void) reason_vset(r, false, err, fmt, ap);
        va_end(ap);
        return err;
}

int reason_reject(Reason *r, int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        (void) reason_vset(r, true, err, fmt, ap);
        va_end(ap);
        return err;
}
